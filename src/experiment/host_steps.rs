//! Steps done from the host side in a node's network namespace, the same on every runtime
//! (inside a container /proc/sys is read-only and the node may lack the tools): sysctls,
//! routes, the ARP cache, waiting for a TCP state.

use crate::error::{Error, Result};
use crate::sys;
use std::path::Path;
use std::time::{Duration, Instant};

/// Write sysctl `key` (`net.ipv4...`) of the namespace at `ns`; returns the value it had.
pub fn set_sysctl(ns: &Path, key: &str, value: &str) -> Result<String> {
    let rel = key.strip_prefix("net.").unwrap_or(key);
    let file = sys::sysctl_path(rel);
    let (key, value) = (key.to_string(), value.to_string());
    sys::in_netns(ns, move || {
        let old = std::fs::read_to_string(&file).map_err(|e| {
            Error::Usage(format!(
                "sysctl {key}: {} (is the key spelt right, and does the interface exist?)",
                e.kind().to_string().to_lowercase()
            ))
        })?;
        std::fs::write(&file, value.as_bytes())
            .map_err(|e| Error::io(format!("writing sysctl {key} = {value}"), e))?;
        Ok(old.trim().replace('\t', " "))
    })
}

/// Add (`on`) or delete the MASQUERADE rules of the lab's edge namespace at `edge`, one per
/// lab prefix in `sources`.
pub fn nat(edge: &Path, sources: &[ipnet::Ipv4Net], on: bool) -> Result<()> {
    let mut script = crate::net::firewall::edge_script(crate::lab::EDGE_TO_HOST, sources);
    if !on {
        script = script.replace("-A POSTROUTING", "-D POSTROUTING");
    }
    sys::in_netns(edge, move || crate::net::firewall::restore(&script))
}

/// Flush the route cache (learnt path MTUs, redirects) of the namespace at `ns`.
pub fn route_flush(ns: &Path) -> Result<()> {
    sys::in_netns(ns, || {
        std::fs::write("/proc/sys/net/ipv4/route/flush", b"1")
            .map_err(|e| Error::io("flushing the route cache", e))
    })
}

/// Run `ip ARGS` in the namespace at `ns` (the host's iproute2); its error output on failure.
fn ip(ns: &Path, args: Vec<String>) -> Result<()> {
    sys::in_netns(ns, move || {
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .map_err(|e| Error::io("running ip (is iproute2 installed?)", e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    })
}

/// `ip route OP TO [via VIA] [dev DEV]` in the namespace at `ns`.
pub fn route(
    ns: &Path,
    op: &str,
    to: &str,
    via: Option<std::net::Ipv4Addr>,
    dev: Option<&str>,
) -> Result<()> {
    let mut args = vec!["route".to_string(), op.to_string(), to.to_string()];
    if let Some(v) = via {
        args.extend(["via".to_string(), v.to_string()]);
    }
    if let Some(d) = dev {
        args.extend(["dev".to_string(), d.to_string()]);
    }
    if op != "del" {
        // As tcplab's own routes are marked.
        args.extend(["proto".to_string(), "static".to_string()]);
    }
    ip(ns, args)
}

/// Empty the ARP cache of the namespace at `ns` (of one interface if named).
pub fn neigh_flush(ns: &Path, dev: Option<&str>) -> Result<()> {
    let mut args: Vec<String> = ["-4", "neigh", "flush"].map(String::from).to_vec();
    match dev {
        Some(d) => args.extend(["dev".to_string(), d.to_string()]),
        None => args.push("all".to_string()),
    }
    ip(ns, args)
}

/// Wait until a TCP socket with `port` (local or remote) is in `state` in the namespace at
/// `ns`, at most `timeout` seconds.
pub async fn wait_tcp_state(
    ns: &Path,
    node: &str,
    state: &str,
    port: u16,
    timeout: f64,
) -> Result<()> {
    let code = sys::tcp_state_code(state)
        .ok_or_else(|| Error::Usage(format!("TCP state '{state}' is unknown")))?;
    let deadline =
        Instant::now() + Duration::try_from_secs_f64(timeout).unwrap_or(Duration::from_secs(10));
    loop {
        if sys::tcp_in_state(ns, code, port, false)? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Other(format!(
                "no TCP socket of {node} with port {port} reached {state} within {timeout:.0} s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The shell command that feeds `chunks` (pause, text) to `command`'s standard input.
pub fn with_input(command: &str, chunks: &[super::InputChunk]) -> String {
    if chunks.is_empty() {
        return command.to_string();
    }
    let quote = |t: &str| format!("'{}'", t.replace('\'', r"'\''"));
    let feed: Vec<String> = chunks
        .iter()
        .map(|c| format!("sleep {}; printf %s {}", c.after, quote(&c.text)))
        .collect();
    format!("( {} ) | ( {command} )", feed.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::InputChunk;

    #[test]
    fn input_is_fed_after_pauses_with_quotes_kept() {
        let c = with_input(
            "nc -N 1.2.3.4 7",
            &[
                InputChunk {
                    after: 0.5,
                    text: "it's\n".into(),
                },
                InputChunk {
                    after: 2.0,
                    text: "x".into(),
                },
            ],
        );
        assert_eq!(
            c,
            r"( sleep 0.5; printf %s 'it'\''s
'; sleep 2; printf %s 'x' ) | ( nc -N 1.2.3.4 7 )"
        );
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &with_input(
                    "cat",
                    &[InputChunk {
                        after: 0.0,
                        text: "a'b\n".into(),
                    }],
                ),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a'b\n");
        assert_eq!(with_input("true", &[]), "true");
    }
}
