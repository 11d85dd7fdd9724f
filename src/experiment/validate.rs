//! Reading an experiment file: TOML into [`Experiment`], then every reference checked (names
//! of captures and runs, durations, packet matches and their relations, checks, broken
//! variants), each refusal one line naming the place in the file.

use super::matcher::PacketMatch;
use super::{Broken, Check, Experiment, Step, template_regex};
use crate::error::{Error, Result};

/// Parse an experiment (after template substitution), checking its references: its name,
/// its steps (names of captures and runs, durations, link states), then its checks (packet
/// matches, then what each check refers to).
pub fn parse(text: &str, file: &str) -> Result<Experiment> {
    // Names and expressions quoted from the file are escaped: the refusal stays one line.
    parse_unescaped(text, file).map_err(crate::topology::one_line)
}

/// [`parse`], with the file's values as they are in the messages.
fn parse_unescaped(text: &str, file: &str) -> Result<Experiment> {
    let e: Experiment = toml::from_str(text).map_err(|err| {
        let place = err.span().map_or("file".to_string(), |s| {
            let (l, c) = crate::topology::line_col(text, s.start);
            format!("line {l}, column {c}")
        });
        Error::Topology {
            file: file.into(),
            place,
            message: err.message().trim().replace('\n', " "),
        }
    })?;
    let refuse = Refuse { file };
    if !safe_name(&e.name) {
        return Err(refuse.at(
            "name",
            format!(
                "'{}' is not a name of letters, digits, '-', '_' and '.'",
                e.name
            ),
        ));
    }
    let mut names = StepNames::default();
    for (k, step) in e.steps.iter().chain(&e.cleanup).enumerate() {
        names
            .check_step(step)
            .map_err(|m| refuse.at(format!("steps[{k}]"), m))?;
    }
    for (i, c) in e.checks.iter().enumerate() {
        if let Some(seq) = &c.sequence {
            check_relations(seq)
                .map_err(|(k, msg)| refuse.at(format!("checks[{i}].sequence[{k}]"), msg))?;
        }
        if let Some(m) = &c.count {
            m.validate()
                .map_err(|msg| refuse.at(format!("checks[{i}].count"), msg))?;
        }
    }
    for (i, c) in e.checks.iter().enumerate() {
        check_check(c, &names).map_err(|(field, m)| refuse.at(format!("checks[{i}]{field}"), m))?;
    }
    for (i, b) in e.broken.iter().enumerate() {
        // The break's steps run first and its cleanup last: names are given in that order.
        let mut names = StepNames::default();
        let all = b
            .steps
            .iter()
            .chain(&e.steps)
            .chain(&e.cleanup)
            .chain(&b.cleanup);
        for (k, step) in all.enumerate() {
            names
                .check_step(step)
                .map_err(|m| refuse.at(format!("broken[{i}] with its steps, step {k}"), m))?;
        }
        check_broken(&e, b).map_err(|m| refuse.at(format!("broken[{i}]"), m))?;
    }
    Ok(e)
}

/// Makes the errors of one experiment file.
struct Refuse<'a> {
    file: &'a str,
}

impl Refuse<'_> {
    /// An error at `place` of the file.
    fn at(&self, place: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Topology {
            file: self.file.into(),
            place: place.into(),
            message: message.into(),
        }
    }
}

/// A name usable as a file name: letters, digits, '-', '_' and '.', not starting with '.'.
fn safe_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !n.starts_with('.')
}

/// A duration in seconds a step may take: 0 to 3600.
fn seconds_ok(x: f64) -> bool {
    x.is_finite() && (0.0..=3600.0).contains(&x)
}

/// The names steps give, in order, for later steps and checks to refer to.
#[derive(Default)]
struct StepNames {
    captures: Vec<String>,
    runs: Vec<String>,
}

impl StepNames {
    /// Check one step against the steps before it, and record the name it gives.
    fn check_step(&mut self, step: &Step) -> std::result::Result<(), String> {
        match step {
            Step::Capture { node, name, .. } => {
                let n = name.clone().unwrap_or_else(|| node.clone());
                if !safe_name(&n) {
                    return Err(format!(
                        "capture name '{n}' must be letters, digits, '-', '_' and '.'"
                    ));
                }
                if self.captures.contains(&n) {
                    return Err(format!("two captures are named '{n}': give one a `name`"));
                }
                self.captures.push(n);
            }
            Step::Run {
                name,
                timeout,
                input,
                ..
            } => {
                if input.iter().any(|c| !seconds_ok(c.after)) {
                    return Err("input: each `after` is 0 to 3600 seconds".into());
                }
                if let Some(n) = name {
                    if self.runs.contains(n) {
                        return Err(format!("two run steps are named '{n}'"));
                    }
                    self.runs.push(n.clone());
                }
                if timeout.is_some_and(|t| !seconds_ok(t) || t == 0.0) {
                    return Err("timeout must be a number of seconds from 0 to 3600".into());
                }
            }
            Step::Join { name } if !self.runs.contains(name) => {
                return Err(format!(
                    "join names '{name}', which no earlier run step is named"
                ));
            }
            Step::Wait { seconds } if !seconds_ok(*seconds) => {
                return Err(format!("wait of {seconds} s: give 0 to 3600 seconds"));
            }
            Step::WaitListen {
                timeout: Some(t), ..
            } if !seconds_ok(*t) => {
                return Err(format!("timeout of {t} s: give 0 to 3600 seconds"));
            }
            Step::Link { state, .. } if state != "up" && state != "down" => {
                return Err(format!("link state '{state}' is neither up nor down"));
            }
            Step::Sysctl { key, value, .. } => check_sysctl(key, value)?,
            Step::Route { op, to, .. } => {
                if !["add", "del", "replace"].contains(&op.as_str()) {
                    return Err(format!("route op '{op}' is not add, del or replace"));
                }
                if to != "default" && to.parse::<ipnet::Ipv4Net>().is_err() {
                    return Err(format!(
                        "route to '{to}' is not a prefix like 140.252.1.0/24 or `default`"
                    ));
                }
            }
            Step::WaitTcpState { state, timeout, .. } => {
                if crate::sys::tcp_state_code(state).is_none() {
                    return Err(format!(
                        "TCP state '{state}' is not one of {}",
                        crate::sys::TCP_STATES.join(", ")
                    ));
                }
                if timeout.is_some_and(|t| !seconds_ok(t)) {
                    return Err("timeout must be a number of seconds from 0 to 3600".into());
                }
            }
            Step::Conditions { set, clear, .. } => {
                if set.is_empty() != *clear {
                    return Err("a conditions step either sets conditions or clears them".into());
                }
                Step::conditions_update(set).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Check one check: it names exactly one subject, which a step gave, with what that kind of
/// check needs. An error is (the field it is at, e.g. `.output_matches`, or "", message).
fn check_check(c: &Check, names: &StepNames) -> std::result::Result<(), (&'static str, String)> {
    let kinds = [
        c.command.is_some(),
        c.capture.is_some(),
        c.routes_of.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if kinds != 1 {
        return Err((
            "",
            "a check names exactly one of `command`, `capture` or `routes_of`".into(),
        ));
    }
    if let Some(cmd) = &c.command {
        if !names.runs.contains(cmd) {
            return Err(("", format!("no run step is named '{cmd}'")));
        }
        for (field, re) in [
            (".output_matches", &c.output_matches),
            (".output_lacks", &c.output_lacks),
            (".value.regex", &c.value.as_ref().map(|v| v.regex.clone())),
        ] {
            if let Some(re) = re {
                // Templates such as {netb.eth1.mac} are filled in before the run: check the
                // expression with a stand-in for them.
                let stand_in = template_regex().replace_all(re, "X");
                let r = regex::Regex::new(&stand_in)
                    .map_err(|err| (field, err.to_string().replace('\n', " ")))?;
                if field == ".value.regex" && r.captures_len() < 2 {
                    return Err((field, "put the number in a group: (...)".into()));
                }
            }
        }
        if let Some(v) = &c.value
            && v.within.refers_to().is_some()
        {
            return Err((
                ".value.within",
                "give a range or a comparison with a number".into(),
            ));
        }
    } else if c.output_matches.is_some()
        || c.output_lacks.is_some()
        || c.value.is_some()
        || c.exit_code.is_some()
    {
        return Err((
            "",
            "exit_code, output_matches, output_lacks and value are for a `command` check".into(),
        ));
    }
    if let Some(cap) = &c.capture {
        if !names.captures.contains(cap) {
            return Err(("", format!("no capture step is named '{cap}'")));
        }
        let kinds = [
            c.sequence.is_some(),
            c.retransmits.is_some(),
            c.count.is_some(),
        ];
        if kinds.iter().filter(|x| **x).count() != 1 {
            return Err((
                "",
                "a capture check needs one of `sequence`, `count` or `retransmits`".into(),
            ));
        }
        if let Some(m) = &c.count {
            if !m.references().is_empty() || m.gap.is_some() || m.bind.is_some() {
                return Err((".count", "a count matches packets on their own: no bind, gap or relations to named packets".into()));
            }
            if c.at_least.is_none() && c.at_most.is_none() {
                return Err(("", "a count check needs `at_least` or `at_most`".into()));
            }
        }
    } else if c.sequence.is_some() || c.count.is_some() || c.retransmits.is_some() {
        return Err((
            "",
            "sequence, count and retransmits are for a `capture` check".into(),
        ));
    }
    Ok(())
}

/// The names a sequence's relations use must be bound by an earlier element (`prev`: there is
/// an earlier element).
fn check_relations(seq: &[PacketMatch]) -> std::result::Result<(), (usize, String)> {
    let mut bound: Vec<&str> = Vec::new();
    for (k, m) in seq.iter().enumerate() {
        m.validate().map_err(|e| (k, e))?;
        for r in m.references() {
            let ok = if r == "prev" {
                k > 0
            } else {
                bound.contains(&r)
            };
            if !ok {
                return Err((
                    k,
                    format!(
                        "'{r}' names no earlier packet of the sequence (name one with bind = \"{r}\")"
                    ),
                ));
            }
        }
        if m.gap.is_some() && k == 0 {
            return Err((
                k,
                "the first packet of a sequence has no gap to a previous one".into(),
            ));
        }
        if let Some(b) = &m.bind {
            bound.push(b);
        }
    }
    Ok(())
}

/// A broken variant names steps and checks of this experiment that exist.
fn check_broken(e: &Experiment, b: &Broken) -> std::result::Result<(), String> {
    if b.fails.is_empty() {
        return Err("a broken lab names at least one check that `fails`".into());
    }
    for d in b.fails.iter().chain(&b.passes) {
        if !e.checks.iter().any(|c| &c.description == d) {
            return Err(format!("no check is described as '{d}'"));
        }
    }
    if let Some(d) = b.fails.iter().find(|d| b.passes.contains(d)) {
        return Err(format!("'{d}' is in both `fails` and `passes`"));
    }
    Ok(())
}

/// A `sysctl` step writes one `net.` key of the node's namespace: no path tricks, one line.
fn check_sysctl(key: &str, value: &str) -> std::result::Result<(), String> {
    let rest = key.strip_prefix("net.").unwrap_or("");
    let ok = !rest.is_empty()
        && rest.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !ok {
        return Err(format!(
            "sysctl '{key}' is not a key of the node's network namespace (net.ipv4..., net.core...)"
        ));
    }
    if value.contains('\n') || value.len() > 256 {
        return Err(format!("sysctl {key}: the value is one short line"));
    }
    Ok(())
}
