//! The book's experiments as data: `experiments/*.toml`, each a named scenario (steps: start
//! captures, run commands in nodes, wait, cut or restore lines, change an MTU) followed by
//! checks on the commands and on the captured packets. Embedded in the binary.

pub mod matcher;
pub mod run;

use crate::error::{Error, Result};
use matcher::PacketMatch;
use serde::Deserialize;

/// The experiments shipped with tcplab, as (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("arp.toml", include_str!("../../experiments/arp.toml")),
    (
        "proxy-arp.toml",
        include_str!("../../experiments/proxy-arp.toml"),
    ),
    (
        "ping-slip.toml",
        include_str!("../../experiments/ping-slip.toml"),
    ),
    (
        "traceroute.toml",
        include_str!("../../experiments/traceroute.toml"),
    ),
    (
        "routing-tables.toml",
        include_str!("../../experiments/routing-tables.toml"),
    ),
    (
        "udp-port-unreachable.toml",
        include_str!("../../experiments/udp-port-unreachable.toml"),
    ),
    (
        "fragmentation.toml",
        include_str!("../../experiments/fragmentation.toml"),
    ),
    (
        "tcp-handshake.toml",
        include_str!("../../experiments/tcp-handshake.toml"),
    ),
    (
        "tcp-rst.toml",
        include_str!("../../experiments/tcp-rst.toml"),
    ),
    (
        "tcp-retransmit.toml",
        include_str!("../../experiments/tcp-retransmit.toml"),
    ),
];

/// One experiment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Its name (`tcplab experiment run NAME`).
    pub name: String,
    /// The book chapter (section) it reproduces.
    pub chapter: String,
    /// One line.
    pub title: String,
    /// What it shows.
    pub description: String,
    /// What to do, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Done at the end whatever happened (restore an MTU, bring a line back up).
    #[serde(default)]
    pub cleanup: Vec<Step>,
    /// What must be true afterwards.
    #[serde(default)]
    pub checks: Vec<Check>,
}

/// A step.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Start capturing on a node (all its interfaces unless named).
    Capture {
        /// node
        node: String,
        /// interfaces (empty: all)
        #[serde(default)]
        interfaces: Vec<String>,
        /// name checks refer to (default: the node's name)
        #[serde(default)]
        name: Option<String>,
    },
    /// Run a shell command in a node.
    Run {
        /// node
        node: String,
        /// `sh -c` command line
        command: String,
        /// name checks refer to
        #[serde(default)]
        name: Option<String>,
        /// do not wait for it (it is waited for at `join` or at the end)
        #[serde(default)]
        background: bool,
        /// seconds before it is killed (default 20)
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Wait for a background command.
    Join {
        /// its name
        name: String,
    },
    /// Wait until a TCP port is listening in a node (a server started in the background is
    /// ready), at most `timeout` seconds (default 10).
    WaitListen {
        /// node
        node: String,
        /// TCP port
        port: u16,
        /// seconds
        #[serde(default)]
        timeout: Option<f64>,
    },
    /// Sleep.
    Wait {
        /// seconds
        seconds: f64,
    },
    /// Cut (`down`) or restore (`up`) a line: NODE:IFACE or two NODEs.
    Link {
        /// `up` or `down`
        state: String,
        /// NODE:IFACE, or the two nodes of a point-to-point line
        ends: Vec<String>,
    },
    /// Set the MTU of interfaces: NODE:IFACE or the two nodes of a line.
    Mtu {
        /// as for `link`
        ends: Vec<String>,
        /// new MTU
        mtu: u32,
    },
    /// Stop every capture (done anyway before the checks).
    Stop {},
}

/// A check: on a command (`command`), on captured packets (`capture` with `sequence` or
/// `retransmits`), or on routing tables (`routes_of`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// What it proves, in a sentence.
    pub description: String,
    /// The `name` of a `run` step.
    #[serde(default)]
    pub command: Option<String>,
    /// Its expected exit code.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// A regular expression its output (stdout and stderr) must match.
    #[serde(default)]
    pub output_matches: Option<String>,
    /// The `name` of a capture.
    #[serde(default)]
    pub capture: Option<String>,
    /// Only packets seen on this interface of the capture.
    #[serde(default)]
    pub interface: Option<String>,
    /// Packets that must be seen in this order (others may come between).
    #[serde(default)]
    pub sequence: Option<Vec<PacketMatch>>,
    /// A TCP segment retransmitted with growing gaps.
    #[serde(default)]
    pub retransmits: Option<RetransmitCheck>,
    /// Nodes whose routing tables must hold every route of the topology.
    #[serde(default)]
    pub routes_of: Option<Vec<String>>,
}

/// Retransmissions of one segment from `src` to `dst`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetransmitCheck {
    /// sender address
    pub src: String,
    /// receiver address
    pub dst: String,
    /// at least this many retransmissions of one segment (default 3)
    #[serde(default = "default_min_retransmits")]
    pub min: usize,
}

fn default_min_retransmits() -> usize {
    3
}

/// Parse an experiment (after template substitution), checking its references.
pub fn parse(text: &str, file: &str) -> Result<Experiment> {
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
    let bad = |place: String, message: String| Error::Topology {
        file: file.into(),
        place,
        message,
    };
    let mut captures: Vec<String> = Vec::new();
    let mut runs: Vec<String> = Vec::new();
    let safe_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && !n.starts_with('.')
    };
    if !safe_name(&e.name) {
        return Err(bad(
            "name".into(),
            format!(
                "'{}' is not a name of letters, digits, '-', '_' and '.'",
                e.name
            ),
        ));
    }
    let seconds_ok = |x: f64| x.is_finite() && (0.0..=3600.0).contains(&x);
    for (k, s) in e.steps.iter().chain(&e.cleanup).enumerate() {
        let place = format!("steps[{k}]");
        match s {
            Step::Capture { node, name, .. } => {
                let n = name.clone().unwrap_or_else(|| node.clone());
                if !safe_name(&n) {
                    return Err(bad(
                        place,
                        format!("capture name '{n}' must be letters, digits, '-', '_' and '.'"),
                    ));
                }
                if captures.contains(&n) {
                    return Err(bad(
                        place,
                        format!("two captures are named '{n}': give one a `name`"),
                    ));
                }
                captures.push(n);
            }
            Step::Run { name, timeout, .. } => {
                if let Some(n) = name {
                    if runs.contains(n) {
                        return Err(bad(place, format!("two run steps are named '{n}'")));
                    }
                    runs.push(n.clone());
                }
                if timeout.is_some_and(|t| !seconds_ok(t) || t == 0.0) {
                    return Err(bad(
                        place,
                        "timeout must be a number of seconds from 0 to 3600".into(),
                    ));
                }
            }
            Step::Join { name } if !runs.contains(name) => {
                return Err(bad(
                    place,
                    format!("join names '{name}', which no earlier run step is named"),
                ));
            }
            Step::Wait { seconds } if !seconds_ok(*seconds) => {
                return Err(bad(
                    place,
                    format!("wait of {seconds} s: give 0 to 3600 seconds"),
                ));
            }
            Step::WaitListen {
                timeout: Some(t), ..
            } if !seconds_ok(*t) => {
                return Err(bad(
                    place,
                    format!("timeout of {t} s: give 0 to 3600 seconds"),
                ));
            }
            Step::Link { state, .. } if state != "up" && state != "down" => {
                return Err(bad(
                    place,
                    format!("link state '{state}' is neither up nor down"),
                ));
            }
            _ => {}
        }
    }
    for (i, c) in e.checks.iter().enumerate() {
        for (k, m) in c.sequence.iter().flatten().enumerate() {
            m.validate()
                .map_err(|msg| bad(format!("checks[{i}].sequence[{k}]"), msg))?;
        }
    }
    for (i, c) in e.checks.iter().enumerate() {
        let place = format!("checks[{i}]");
        let kinds = [
            c.command.is_some(),
            c.capture.is_some(),
            c.routes_of.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if kinds != 1 {
            return Err(bad(
                place,
                "a check names exactly one of `command`, `capture` or `routes_of`".into(),
            ));
        }
        if let Some(cmd) = &c.command {
            if !runs.contains(cmd) {
                return Err(bad(place, format!("no run step is named '{cmd}'")));
            }
            if let Some(re) = &c.output_matches {
                // Templates such as {netb.eth1.mac} are filled in before the run: check the
                // expression with a stand-in for them.
                let stand_in = template_regex().replace_all(re, "X");
                regex::Regex::new(&stand_in).map_err(|err| {
                    bad(
                        format!("checks[{i}].output_matches"),
                        err.to_string().replace('\n', " "),
                    )
                })?;
            }
        }
        if let Some(cap) = &c.capture {
            if !captures.contains(cap) {
                return Err(bad(place, format!("no capture step is named '{cap}'")));
            }
            if c.sequence.is_none() && c.retransmits.is_none() {
                return Err(bad(
                    place,
                    "a capture check needs `sequence` or `retransmits`".into(),
                ));
            }
        }
    }
    Ok(e)
}

/// `{node.iface.mac}` / `{node.iface.ip}` references in an experiment's text.
pub fn template_regex() -> regex::Regex {
    regex::Regex::new(r"\{([a-z][a-z0-9_-]*)\.([A-Za-z0-9_.-]+)\.(mac|ip)\}").expect("valid regex")
}

/// Every built-in experiment (templates left as they are, for listing).
pub fn builtin() -> Result<Vec<Experiment>> {
    BUILTIN.iter().map(|(f, t)| parse(t, f)).collect()
}

/// The text of built-in experiment `name`, or of the file `name` if it is a path.
pub fn source(name: &str) -> Result<(String, String)> {
    if let Some((f, t)) = BUILTIN
        .iter()
        .find(|(f, _)| f.trim_end_matches(".toml") == name)
    {
        return Ok((f.to_string(), t.to_string()));
    }
    if name.ends_with(".toml") || name.contains('/') {
        let text =
            std::fs::read_to_string(name).map_err(|e| Error::io(format!("reading {name}"), e))?;
        return Ok((name.to_string(), text));
    }
    let names: Vec<&str> = BUILTIN
        .iter()
        .map(|(f, _)| f.trim_end_matches(".toml"))
        .collect();
    Err(Error::Usage(format!(
        "unknown experiment '{name}' (experiments: {})",
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_experiments_parse_and_are_named_as_the_issue_says() {
        let names: Vec<String> = builtin().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "arp",
                "proxy-arp",
                "ping-slip",
                "traceroute",
                "routing-tables",
                "udp-port-unreachable",
                "fragmentation",
                "tcp-handshake",
                "tcp-rst",
                "tcp-retransmit"
            ]
        );
        for e in builtin().unwrap() {
            assert!(!e.checks.is_empty(), "{} has checks", e.name);
        }
    }

    #[test]
    fn bad_references_are_refused() {
        let t = "name='x'\nchapter='1'\ntitle='t'\ndescription='d'\n[[checks]]\ndescription='c'\ncommand='nope'\n";
        let e = parse(t, "x.toml").unwrap_err().to_string();
        assert!(e.contains("no run step is named 'nope'"), "{e}");
        let t = "name='x'\nchapter='1'\ntitle='t'\ndescription='d'\n[[steps]]\naction='fly'\n";
        assert!(parse(t, "x.toml").is_err());
    }
}
