//! Checks of a finished run: on commands (exit code, output, a number in the output), on
//! captured packets (sequences, counts, retransmissions) and on routing tables.

use super::matcher::{self, Seen};
use super::run::{CaptureResult, CheckResult, LabView};
use super::{Check, ValueCheck};
use crate::capture::decode::Packet;
use crate::error::{Error, Result};
use crate::net::Netlink;
use crate::runtime::CmdOutput;
use crate::sys;
use std::collections::HashMap;

fn summarize(packets: &[&(String, u64, Packet)], from: usize, max: usize) -> String {
    let shown: Vec<String> = packets
        .iter()
        .skip(from)
        .take(max)
        .map(|(i, _, p)| {
            // The fields a match may name that the packet's line does not show.
            let mut extra = Vec::new();
            if let Some(ip) = &p.ipv4 {
                extra.push(format!("ttl {} id {}", ip.ttl, ip.id));
            }
            if let Some(e) = &p.ethernet {
                extra.push(format!("{} > {}", e.src, e.dst));
            }
            format!("[{i}] {p} ({})", extra.join(", "))
        })
        .collect();
    if shown.is_empty() {
        "no packets".into()
    } else {
        shown.join(" | ")
    }
}

/// Evaluate one check on what the run left: its commands' outputs and its captures.
pub async fn check(
    c: &Check,
    view: &LabView<'_>,
    commands: &[(String, String, String, CmdOutput)],
    caps: &[CaptureResult],
) -> CheckResult {
    let (passed, detail) = if let Some(name) = &c.command {
        match commands.iter().find(|(n, ..)| n == name) {
            Some((_, _, _, out)) => command_check(c, out),
            None => (false, format!("command {name} did not run")),
        }
    } else if let Some(nodes) = &c.routes_of {
        routes_check(view, nodes).await
    } else if let Some(cap_name) = &c.capture {
        match caps.iter().find(|x| &x.name == cap_name) {
            Some(cap) => capture_check(c, cap),
            None => (false, format!("capture {cap_name} did not run")),
        }
    } else {
        (false, "the check names nothing to check".into())
    };
    CheckResult {
        description: c.description.clone(),
        passed,
        detail,
    }
}

/// Exit code, output that must (or must not) match, a number in the output within a range.
fn command_check(c: &Check, out: &CmdOutput) -> (bool, String) {
    let text = format!("{}{}", out.stdout, out.stderr);
    let first = || text.lines().take(4).collect::<Vec<_>>().join(" | ");
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    if let Some(code) = c.exit_code
        && out.code != code
    {
        problems.push(format!("exit code {} instead of {code}", out.code));
    }
    if let Some(re) = &c.output_matches
        && !regex::Regex::new(re).is_ok_and(|r| r.is_match(&text))
    {
        problems.push(format!("output does not match /{re}/: {}", first()));
    }
    if let Some(re) = &c.output_lacks
        && let Some(m) = regex::Regex::new(re)
            .ok()
            .and_then(|r| r.find(&text).map(|m| m.as_str().to_string()))
    {
        problems.push(format!("output has /{re}/: '{m}'"));
    }
    if let Some(v) = &c.value {
        match value_in_output(v, &text) {
            Ok(x) => seen.push(format!("value {x}")),
            Err(e) => problems.push(format!("{e}: {}", first())),
        }
    }
    if problems.is_empty() {
        seen.insert(0, format!("exit code {}", out.code));
        (true, seen.join(", "))
    } else {
        (false, problems.join("; "))
    }
}

/// The number the regex's first group finds in `text`, if within the range.
fn value_in_output(v: &ValueCheck, text: &str) -> std::result::Result<f64, String> {
    let re = regex::Regex::new(&v.regex).map_err(|e| e.to_string())?;
    let Some(caps) = re.captures(text) else {
        return Err(format!("output does not match /{}/", v.regex));
    };
    let got = caps.get(1).map_or("", |m| m.as_str());
    let Ok(x) = got.trim().parse::<f64>() else {
        return Err(format!("'{got}' found by /{}/ is not a number", v.regex));
    };
    if v.within.holds("value", x, &matcher::Bound::default()) {
        Ok(x)
    } else {
        Err(format!("{x} is not within {}", v.within))
    }
}

async fn routes_check(view: &LabView<'_>, nodes: &[String]) -> (bool, String) {
    let mut missing = Vec::new();
    for node in nodes {
        match routes_missing(view, node).await {
            Ok(m) => missing.extend(m.into_iter().map(|x| format!("{node}: {x}"))),
            Err(e) => missing.push(format!("{node}: {e}")),
        }
    }
    if missing.is_empty() {
        (true, format!("all routes present on {}", nodes.join(", ")))
    } else {
        (false, format!("missing: {}", missing.join(", ")))
    }
}

/// A sequence, a count or retransmissions among the packets of one capture (of one interface
/// of it, if the check names one).
fn capture_check(c: &Check, cap: &CaptureResult) -> (bool, String) {
    let packets: Vec<&(String, u64, Packet)> = cap
        .packets
        .iter()
        .filter(|(i, _, _)| c.interface.as_ref().is_none_or(|want| want == i))
        .collect();
    let seen: Vec<Seen> = packets
        .iter()
        .map(|(i, ts, p)| Seen {
            iface: i,
            ts: *ts,
            packet: p,
        })
        .collect();
    if let Some(seq) = &c.sequence {
        return match matcher::find_sequence(seq, &seen) {
            Ok(idx) => (
                true,
                idx.iter()
                    .map(|&i| format!("#{} {}", i + 1, seen[i].packet))
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            Err((k, from)) => (
                false,
                format!(
                    "step {} of {} not seen: expected {} after packet #{}; seen instead: {}",
                    k + 1,
                    seq.len(),
                    seq[k],
                    from,
                    summarize(&packets, from, 6)
                ),
            ),
        };
    }
    if let Some(m) = &c.count {
        let n = matcher::count_matching(m, &seen);
        let low = c.at_least.is_none_or(|a| n >= a);
        let high = c.at_most.is_none_or(|a| n <= a);
        let want = match (c.at_least, c.at_most) {
            (Some(a), Some(b)) => format!("{a} to {b}"),
            (Some(a), None) => format!("at least {a}"),
            (None, Some(b)) => format!("at most {b}"),
            (None, None) => "any number".into(),
        };
        let examples: Vec<String> = seen
            .iter()
            .filter(|s| m.matches_seen(s, &matcher::Bound::default()))
            .take(3)
            .map(|s| s.packet.to_string())
            .collect();
        let detail = format!(
            "{n} packets match {m} (want {want}){}",
            if examples.is_empty() {
                String::new()
            } else {
                format!(": {}", examples.join(" | "))
            }
        );
        return (low && high, detail);
    }
    if let Some(rt) = &c.retransmits {
        return retransmits(&packets, rt);
    }
    (
        false,
        "the check names no sequence, count or retransmits".into(),
    )
}

async fn routes_missing(view: &LabView<'_>, node: &str) -> Result<Vec<String>> {
    let n = view
        .plan
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| Error::Usage(format!("unknown node '{node}'")))?;
    let rt = tokio::runtime::Handle::current();
    let h = sys::in_netns(&sys::netns_path(&n.netns), move || Netlink::open_here(&rt))?;
    let have = h.routes().await?;
    Ok(n.routes
        .iter()
        .filter(|r| {
            !have.iter().any(|(dst, gw, oif)| {
                *dst == r.route.to && *gw == r.route.via && r.oif.is_none_or(|o| Some(o) == *oif)
            })
        })
        .map(|r| r.route.to_string())
        .collect())
}

/// One segment sent again and again with growing gaps.
fn retransmits(packets: &[&(String, u64, Packet)], rt: &super::RetransmitCheck) -> (bool, String) {
    let (Ok(src), Ok(dst)) = (
        rt.src.parse::<std::net::Ipv4Addr>(),
        rt.dst.parse::<std::net::Ipv4Addr>(),
    ) else {
        return (false, format!("bad addresses {} / {}", rt.src, rt.dst));
    };
    let mut by_seq: HashMap<u32, Vec<u64>> = HashMap::new();
    for (_, ts, p) in packets {
        let (Some(ip), Some(t)) = (&p.ipv4, &p.tcp) else {
            continue;
        };
        if ip.src == src && ip.dst == dst && t.payload_len > 0 {
            by_seq.entry(t.seq).or_default().push(*ts);
        }
    }
    let Some((seq, times)) = by_seq
        .into_iter()
        .max_by_key(|(s, v)| (v.len(), std::cmp::Reverse(*s)))
    else {
        return (
            false,
            format!("no TCP data from {src} to {dst} was captured"),
        );
    };
    let retrans = times.len() - 1;
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1].saturating_sub(w[0])) as f64 / 1e9)
        .collect();
    // The backoff: the retransmissions from the first on whose gaps keep growing (10% slack for
    // timer jitter). Later ones may restart small once the line is back or an ICMP error
    // resets the timer (RFC 6069), so only the first run counts.
    let mut backoff = gaps.len().min(1);
    while backoff < gaps.len() && gaps[backoff] >= gaps[backoff - 1] * 0.9 {
        backoff += 1;
    }
    let gap_text = gaps
        .iter()
        .map(|g| format!("{g:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
    let detail = format!(
        "segment seq {seq} sent {} times ({retrans} retransmissions), gaps {gap_text} s; the first {backoff} grow",
        times.len()
    );
    if backoff < rt.min {
        return (
            false,
            format!(
                "{detail}: expected at least {} retransmissions with growing gaps",
                rt.min
            ),
        );
    }
    (true, detail)
}
