//! Reading an experiment file: TOML into [`Experiment`], then every reference checked (names
//! of captures and runs, durations, packet matches and their relations, checks, broken
//! variants), each refusal one line naming the place in the file.

use super::matcher::PacketMatch;
use super::{Broken, Check, Experiment, Step, template_regex};
use crate::error::{Error, Result};

/// Parse an experiment (after template substitution), checking its references: its name,
/// its steps (names of captures and runs, durations, link states), then its checks (packet
/// matches, then what each check refers to). `{var.NAME}` takes the value of `[vars]`.
pub fn parse(text: &str, file: &str) -> Result<Experiment> {
    parse_variant(text, file, None)
}

/// [`parse`], with `{var.NAME}` taking the values broken variant `broken` (from 1) gives, if
/// any, over those of `[vars]`.
pub fn parse_variant(text: &str, file: &str, broken: Option<usize>) -> Result<Experiment> {
    // Names and expressions quoted from the file are escaped: the refusal stays one line.
    fill_vars(text, file, broken)
        .and_then(|t| parse_unescaped(&t, file))
        .map_err(crate::topology::one_line)
}

/// Replace every `{var.NAME}` of `text` by the experiment's `[vars]` value, or broken variant
/// `broken`'s. A text that is not TOML is returned as it is (its parse says why).
fn fill_vars(text: &str, file: &str, broken: Option<usize>) -> Result<String> {
    let refuse = Refuse { file };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Ok(text.to_string());
    };
    let strings = |v: Option<&toml::Value>, place: &str| -> Result<Vec<(String, String)>> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let Some(t) = v.as_table() else {
            return Err(refuse.at(place, "vars is a table of names and strings"));
        };
        t.iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) if !s.contains(['"', '\\', '\'', '\n']) => Ok((k.clone(), s.to_string())),
                Some(_) => Err(refuse.at(
                    format!("{place}.{k}"),
                    "a variable's value has no quotes, backslashes or line breaks",
                )),
                None => Err(refuse.at(format!("{place}.{k}"), "a variable's value is a string")),
            })
            .collect()
    };
    let mut vars = strings(doc.get("vars"), "vars")?;
    if let Some(k) = broken {
        let b = doc
            .get("broken")
            .and_then(|b| b.as_array())
            .and_then(|a| a.get(k.wrapping_sub(1)));
        if let Some(b) = b {
            for (name, value) in strings(b.get("vars"), &format!("broken[{}].vars", k - 1))? {
                match vars.iter_mut().find(|(n, _)| *n == name) {
                    Some(v) => v.1 = value,
                    None => {
                        return Err(refuse.at(
                            format!("broken[{}].vars", k - 1),
                            format!("'{name}' is not a variable of [vars]"),
                        ));
                    }
                }
            }
        }
    }
    let re = regex::Regex::new(r"\{vars?\.([A-Za-z0-9_-]+)\}").expect("valid regex");
    let mut unknown = None;
    let out = re.replace_all(text, |c: &regex::Captures| {
        match vars.iter().find(|(n, _)| n == &c[1]) {
            Some((_, v)) => v.clone(),
            None => {
                unknown.get_or_insert_with(|| c[1].to_string());
                String::new()
            }
        }
    });
    match unknown {
        Some(u) => Err(refuse.at(
            "vars",
            format!("'{{var.{u}}}' is used but [vars] does not define '{u}'"),
        )),
        None => Ok(out.into_owned()),
    }
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
    if let Some(n) = &e.needs
        && n != "fake-internet"
    {
        return Err(refuse.at(
            "needs",
            format!("'{n}' is not something a lab can have: `fake-internet`"),
        ));
    }
    if let Some(t) = &e.topology
        && crate::topology::builtin_text(t).is_none()
    {
        return Err(refuse.at(
            "topology",
            format!(
                "'{t}' is not a built-in topology: {}",
                crate::topology::BUILTINS
                    .iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
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
            Step::OvsShow { name } => {
                if self.runs.contains(name) {
                    return Err(format!("two steps' outputs are named '{name}'"));
                }
                self.runs.push(name.clone());
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
            Step::Nat { state } if state != "on" && state != "off" => {
                return Err(format!("nat state '{state}' is neither on nor off"));
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name='x'\nchapter='1'\ntitle='t'\ndescription='d'\n\
        [[steps]]\naction='capture'\nnode='a'\n\
        [[steps]]\naction='run'\nnode='a'\nname='r'\ncommand='echo {var.word}'\n";

    fn err(text: &str) -> String {
        parse(text, "x.toml")
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn an_ovs_show_step_names_an_output_checks_may_read() {
        let head = "name='x'\nchapter='1'\ntitle='t'\ndescription='d'\n\
            [[steps]]\naction='ovs-show'\nname='ovs'\n";
        let check = "[[checks]]\ndescription='c'\ncommand='ovs'\noutput_matches='Bridge'\n";
        let e = parse(&format!("{head}{check}"), "x.toml").expect("a check reads the rows");
        assert!(matches!(&e.steps[0], Step::OvsShow { name } if name == "ovs"));
        let twice = format!("{head}[[steps]]\naction='ovs-show'\nname='ovs'\n");
        assert!(err(&twice).contains("two steps' outputs are named 'ovs'"));
    }

    #[test]
    fn a_topology_must_be_a_built_in_one() {
        let text = |t: &str| {
            format!("name='x'\nchapter='1'\ntitle='t'\ntopology='{t}'\ndescription='d'\n")
        };
        let e = parse(&text("ovs-lab"), "x.toml").expect("ovs-lab is built in");
        assert_eq!(e.topology_name(), "ovs-lab");
        let m = err(&text("ovs-labb"));
        assert!(m.contains("'ovs-labb' is not a built-in topology"), "{m}");
        assert!(
            m.contains("`ovs-lab`") && m.contains("`tcpip-illustrated`"),
            "{m}"
        );
        let plain = parse(
            "name='x'\nchapter='1'\ntitle='t'\ndescription='d'\n",
            "x.toml",
        );
        assert_eq!(plain.unwrap().topology_name(), "tcpip-illustrated");
    }

    #[test]
    fn relations_must_name_earlier_packets() {
        let check = |seq: &str| {
            format!(
                "{HEAD}[vars]\nword='hi'\n[[checks]]\ndescription='c'\ncapture='a'\nsequence=[{seq}]\n"
            )
        };
        assert!(
            parse(
                &check("{bind='syn',flags='S'},{ack='syn.seq + 1'}"),
                "x.toml"
            )
            .is_ok()
        );
        assert!(
            err(&check("{ack='syn.seq + 1'}"))
                .contains("checks[0].sequence[0]: 'syn' names no earlier packet")
        );
        assert!(err(&check("{ttl='prev.ttl - 1'}")).contains("'prev' names no earlier packet"));
        assert!(err(&check("{gap='< 1'}")).contains("no gap to a previous one"));
        assert!(err(&check("{ttl='syn.colour'}")).contains("not a field of a named packet"));
        assert!(err(&check("{bind='prev'}")).contains("bind = \"prev\""));
    }

    #[test]
    fn counts_values_and_broken_variants_are_checked() {
        let base = format!("{HEAD}[vars]\nword='hi'\n");
        let count =
            format!("{base}[[checks]]\ndescription='c'\ncapture='a'\ncount={{proto='tcp'}}\n");
        assert!(err(&count).contains("needs `at_least` or `at_most`"));
        assert!(parse(&format!("{count}at_most=0\n"), "x.toml").is_ok());
        let related = format!(
            "{base}[[checks]]\ndescription='c'\ncapture='a'\ncount={{ack='s.seq'}}\nat_least=1\n"
        );
        assert!(err(&related).contains("on their own"));
        let value = format!(
            "{base}[[checks]]\ndescription='v'\ncommand='r'\nvalue={{regex='rtt [0-9]+',within='1..2'}}\n"
        );
        assert!(err(&value).contains("put the number in a group"));
        let ok = format!(
            "{base}[[checks]]\ndescription='v'\ncommand='r'\nvalue={{regex='rtt ([0-9]+)',within='1..2'}}\n"
        );
        let e = parse(&ok, "x.toml").unwrap();
        assert!(e.broken.is_empty());
        let broken = |fails: &str| format!("{ok}[[broken]]\ndescription='b'\nfails=[{fails}]\n");
        assert!(parse(&broken("'v'"), "x.toml").is_ok());
        assert!(err(&broken("'w'")).contains("no check is described as 'w'"));
        assert!(err(&broken("")).contains("at least one check"));
    }

    #[test]
    fn variables_fill_the_text_and_broken_variants_replace_them() {
        let text = format!(
            "{HEAD}[vars]\nword='hi'\n[[checks]]\ndescription='v'\ncommand='r'\noutput_matches='hi'\n\
             [[broken]]\ndescription='b'\nvars={{word='bye'}}\nfails=['v']\n"
        );
        let cmd = |e: &Experiment| match &e.steps[1] {
            Step::Run { command, .. } => command.clone(),
            _ => panic!("a run step"),
        };
        assert_eq!(cmd(&parse(&text, "x.toml").unwrap()), "echo hi");
        assert_eq!(
            cmd(&parse_variant(&text, "x.toml", Some(1)).unwrap()),
            "echo bye"
        );
        assert!(err(&text.replace("word='hi'", "other='hi'")).contains("does not define 'word'"));
        let stranger = text.replace("vars={word='bye'}", "vars={nope='x'}");
        let e = parse_variant(&stranger, "x.toml", Some(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'nope' is not a variable"), "{e}");
        assert!(err(&text.replace("word='hi'", "word='a\"b'")).contains("no quotes"));
    }

    #[test]
    fn host_side_steps_are_checked() {
        let step = |s: &str| {
            format!("name='x'\nchapter='1'\ntitle='t'\ndescription='d'\n[[steps]]\n{s}\n")
        };
        assert!(
            err(&step(
                "action='sysctl'\nnode='a'\nkey='kernel.panic'\nvalue='1'"
            ))
            .contains("not a key of the node's network namespace")
        );
        assert!(
            err(&step(
                "action='sysctl'\nnode='a'\nkey='net.ipv4/../x'\nvalue='1'"
            ))
            .contains("not a key")
        );
        assert!(
            parse(
                &step(
                    "action='sysctl'\nnode='a'\nkey='net.ipv4.conf.all.send_redirects'\nvalue='1'"
                ),
                "x.toml"
            )
            .is_ok()
        );
        assert!(
            err(&step("action='route'\nnode='a'\nop='flush'\nto='default'"))
                .contains("not add, del or replace")
        );
        assert!(
            err(&step("action='route'\nnode='a'\nop='add'\nto='sun'")).contains("not a prefix")
        );
        assert!(
            err(&step(
                "action='wait-tcp-state'\nnode='a'\nstate='sleeping'\nport=1"
            ))
            .contains("not one of established")
        );
    }
}
