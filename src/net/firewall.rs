//! Firewall rules for a lab's uplink, in two places:
//! - in the lab's edge namespace ([`edge_script`]): the lab's networks MASQUERADEd to the
//!   edge's address on its line to the host, so the host never sees the lab's own (possibly
//!   overlapping) addresses;
//! - on the host ([`UplinkRules`]): forwarding between that line and the uplink, and
//!   MASQUERADE of the line's transfer network out of the uplink only, in chains of tcplab's
//!   own (`TCPLAB-<lab>` in the filter and nat tables), jumped to from FORWARD and POSTROUTING
//!   with a `tcplab:<lab>` comment. Each lab has its own chain, added and removed on its own.
//!
//! The rules go through `iptables-restore --noflush`, so they land in the same tables as
//! Docker's (iptables-nft or legacy, whichever the host uses): an ACCEPT in an nftables table of
//! our own could not override Docker's FORWARD policy DROP. The global policy is never changed
//! and nothing but tcplab's own chains and jumps is ever touched.

use crate::error::{Error, Result};
use ipnet::Ipv4Net;
use std::io::Write;
use std::process::{Command, Stdio};

/// The rules of one lab's uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkRules {
    /// Chain name in both tables.
    pub chain: String,
    /// Lab name (for the comment).
    pub lab: String,
    /// The lab's line on the host (its edge's line).
    pub lab_if: String,
    /// The uplink.
    pub uplink: String,
    /// Source prefixes to MASQUERADE.
    pub sources: Vec<Ipv4Net>,
}

impl UplinkRules {
    /// The rules of lab `lab`.
    pub fn new(lab: &str, lab_if: &str, uplink: &str, sources: &[Ipv4Net]) -> Self {
        UplinkRules {
            chain: format!("TCPLAB-{lab}"),
            lab: lab.into(),
            lab_if: lab_if.into(),
            uplink: uplink.into(),
            sources: sources.to_vec(),
        }
    }

    fn jump(&self, verb: &str, builtin: &str) -> String {
        let pos = if verb == "-I" { " 1" } else { "" };
        format!(
            "{verb} {builtin}{pos} -m comment --comment \"tcplab:{}\" -j {}\n",
            self.lab, self.chain
        )
    }

    /// The iptables-restore script that adds the rules.
    pub fn add_script(&self) -> String {
        let (c, l, u) = (&self.chain, &self.lab_if, &self.uplink);
        let mut s = String::from("*filter\n");
        s += &format!(":{c} - [0:0]\n");
        s += &format!("-A {c} -i {l} -o {u} -j ACCEPT\n");
        s +=
            &format!("-A {c} -i {u} -o {l} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
        // The lab reaches the outside through the uplink only, never another host interface.
        s += &format!("-A {c} -i {l} -j DROP\n");
        s += &self.jump("-I", "FORWARD");
        s += "COMMIT\n*nat\n";
        s += &format!(":{c} - [0:0]\n");
        for src in &self.sources {
            s += &format!("-A {c} -s {src} -o {u} -j MASQUERADE\n");
        }
        s += &self.jump("-A", "POSTROUTING");
        s += "COMMIT\n";
        s
    }

    /// The iptables-restore script that removes them again.
    pub fn remove_script(&self) -> String {
        let c = &self.chain;
        let mut s = String::from("*filter\n");
        s += &self.jump("-D", "FORWARD");
        s += &format!("-F {c}\n-X {c}\nCOMMIT\n*nat\n");
        s += &self.jump("-D", "POSTROUTING");
        s += &format!("-F {c}\n-X {c}\nCOMMIT\n");
        s
    }
}

/// The iptables-restore script of a lab's edge namespace: what comes from `sources` and leaves
/// by `out_if` (the edge's line to the host) is MASQUERADEd to that line's address. The
/// namespace is the lab's own, so its built-in chain is used; the rules die with it.
pub fn edge_script(out_if: &str, sources: &[Ipv4Net]) -> String {
    let mut s = String::from("*nat\n");
    for src in sources {
        s += &format!("-A POSTROUTING -s {src} -o {out_if} -j MASQUERADE\n");
    }
    s += "COMMIT\n";
    s
}

/// Names of tcplab's chains (`TCPLAB-...`) in the host's filter table, from `iptables-save`.
pub fn tcplab_chains() -> Result<Vec<String>> {
    let out = match Command::new("iptables-save")
        .args(["-t", "filter"])
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) => out,
        // No iptables: no chains of ours either.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("running iptables-save", e)),
    };
    Ok(chains_in(&String::from_utf8_lossy(&out.stdout)))
}

/// The `TCPLAB-...` chains declared in an iptables-save listing.
fn chains_in(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| c.starts_with("TCPLAB-"))
        .map(String::from)
        .collect()
}

/// Feed a script to `iptables-restore -w --noflush`.
pub fn restore(script: &str) -> Result<()> {
    let mut child = Command::new("iptables-restore")
        .args(["-w", "5", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Environment(
                    "iptables-restore not found: install iptables (scripts/setup-host.sh does)"
                        .into(),
                )
            } else {
                Error::io("running iptables-restore", e)
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::io("writing to iptables-restore", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("running iptables-restore", e))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(Error::Other(format!(
            "iptables-restore failed: {}",
            err.trim().replace('\n', "; ")
        )))
    }
}

/// Remove the rules: the whole script at once, else each piece on its own (some may be gone).
pub fn remove(rules_remove_script: &str) -> Result<()> {
    if restore(rules_remove_script).is_ok() {
        return Ok(());
    }
    let mut failures = Vec::new();
    let mut table = "";
    for line in rules_remove_script.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t;
            continue;
        }
        if line == "COMMIT" || line.is_empty() {
            continue;
        }
        let one = format!("*{table}\n{line}\nCOMMIT\n");
        if let Err(e) = restore(&one) {
            // A rule or chain that is already gone is what we wanted.
            let s = e.to_string();
            if !(s.contains("No chain")
                || s.contains("does a matching rule exist")
                || s.contains("Bad rule")
                || s.contains("No such file"))
            {
                failures.push(e);
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Many(failures))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chains_are_read_from_a_listing() {
        let listing = "*filter\n:INPUT ACCEPT [0:0]\n:TCPLAB-tcpip - [0:0]\n:DOCKER - [0:0]\n-A FORWARD -j TCPLAB-tcpip\nCOMMIT\n";
        assert_eq!(super::chains_in(listing), vec!["TCPLAB-tcpip".to_string()]);
    }

    use super::*;

    #[test]
    fn scripts_touch_only_our_chain() {
        let r = UplinkRules::new(
            "tcpip",
            "gatewayout",
            "enp0s3",
            &["140.252.1.0/24".parse().unwrap()],
        );
        let add = r.add_script();
        assert!(add.contains("-A TCPLAB-tcpip -s 140.252.1.0/24 -o enp0s3 -j MASQUERADE"));
        assert!(add.contains("-I FORWARD 1 -m comment --comment \"tcplab:tcpip\" -j TCPLAB-tcpip"));
        assert!(!add.contains("-P "), "never a policy change");
        for line in add.lines().chain(r.remove_script().lines()) {
            if line.starts_with('-') {
                assert!(
                    line.contains("TCPLAB-tcpip"),
                    "line touches another chain: {line}"
                );
            }
            assert!(!line.starts_with("-F FORWARD") && !line.starts_with("-F POSTROUTING"));
        }
        let edge = edge_script("tohost", &["140.252.0.0/16".parse().unwrap()]);
        assert_eq!(
            edge,
            "*nat\n-A POSTROUTING -s 140.252.0.0/16 -o tohost -j MASQUERADE\nCOMMIT\n"
        );
        let rm = r.remove_script();
        assert!(rm.contains("-D FORWARD -m comment --comment \"tcplab:tcpip\" -j TCPLAB-tcpip"));
        assert!(rm.contains("-X TCPLAB-tcpip"));
    }
}
