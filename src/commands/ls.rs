//! `tcplab ls [--json]`: the labs on this host, from their records, like `docker ps`.

use crate::error::{Error, Result};
use crate::state::{LabState, Object};
use clap::Args;
use serde::Serialize;

/// List the labs.
#[derive(Debug, Args)]
pub struct LsCmd {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

/// One lab as `ls` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LabRow {
    /// Lab name.
    pub lab: String,
    /// Runtime of its nodes.
    pub runtime: String,
    /// How many nodes its topology has (None: the recorded topology does not parse).
    pub nodes: Option<usize>,
    /// The host interface it is NATed out of, if any.
    pub uplink: Option<String>,
    /// Its line to the host (the transfer network), when it has an uplink.
    pub transfer: Option<String>,
    /// When its record last changed (UTC; for a complete lab, when `up` finished).
    pub since: Option<String>,
    /// Whether `up` finished.
    pub complete: bool,
}

impl LabRow {
    /// The row of a lab's record; `modified` is the record file's time (seconds since 1970).
    pub fn of(state: &LabState, modified: Option<u64>) -> LabRow {
        let nodes = crate::topology::parse(&state.topology_text, &state.topology_file)
            .ok()
            .map(|t| t.nodes.len());
        let transfer = state.objects.iter().find_map(|o| match o {
            Object::UplinkLine { transfer, .. } => Some(transfer.to_string()),
            _ => None,
        });
        LabRow {
            lab: state.lab.clone(),
            runtime: state.runtime.to_string(),
            nodes,
            uplink: if state.fake_internet {
                Some("fake-internet".into())
            } else {
                state.uplink.clone()
            },
            transfer,
            since: modified.map(crate::util::utc_stamp),
            complete: state.complete,
        }
    }
}

/// The record file's modification time, in seconds since 1970.
fn modified(state: &LabState) -> Option<u64> {
    let meta = std::fs::metadata(LabState::path_in(&state.dir, &state.lab)).ok()?;
    let t = meta.modified().ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// The table `ls` prints, a header line first.
pub fn table(rows: &[LabRow]) -> String {
    let mut out = format!(
        "{:<12} {:<8} {:>5}  {:<28} {:<20} {}\n",
        "LAB", "RUNTIME", "NODES", "UPLINK", "SINCE", "STATE"
    );
    for r in rows {
        let uplink = match (&r.uplink, &r.transfer) {
            (Some(u), Some(t)) => format!("{u} via {t}"),
            (Some(u), None) => u.clone(),
            (None, _) => "-".into(),
        };
        out += &format!(
            "{:<12} {:<8} {:>5}  {:<28} {:<20} {}\n",
            r.lab,
            r.runtime,
            r.nodes.map_or("?".into(), |n| n.to_string()),
            uplink,
            r.since.as_deref().unwrap_or("-"),
            if r.complete { "up" } else { "incomplete" }
        );
    }
    out
}

impl LsCmd {
    /// Run it.
    pub fn exec(&self) -> Result<i32> {
        let rows: Vec<LabRow> = LabState::list()?
            .iter()
            .map(|s| LabRow::of(s, modified(s)))
            .collect();
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).map_err(|e| Error::Other(e.to_string()))?
            );
        } else {
            print!("{}", table(&rows));
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeKind;

    #[test]
    fn a_row_shows_the_record_and_the_table_lines_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = LabState::new_in(dir.path(), "s01", RuntimeKind::Netns);
        st.topology_text = crate::topology::BUILTIN_TCPIP.into();
        st.topology_file = "<builtin>".into();
        st.uplink = Some("enp0s3".into());
        st.complete = true;
        st.objects.push(Object::UplinkLine {
            host_link: "tlu00000000".into(),
            transfer: "100.64.0.4/30".parse().unwrap(),
            edge: "tcplab-s01".into(),
        });
        let row = LabRow::of(&st, Some(86400));
        assert_eq!(row.nodes, Some(9));
        assert_eq!(row.transfer.as_deref(), Some("100.64.0.4/30"));
        assert_eq!(row.runtime, "netns");
        let t = table(std::slice::from_ref(&row));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("s01 "), "{t}");
        assert!(lines[1].contains("enp0s3 via 100.64.0.4/30"), "{t}");
        assert!(lines[1].ends_with(" up"), "{t}");
        assert!(lines[1].contains("19700102T000000Z"), "{t}");
        st.complete = false;
        st.topology_text = "not a topology".into();
        let broken = LabRow::of(&st, None);
        assert_eq!(broken.nodes, None);
        assert!(table(&[broken]).contains("incomplete"));
    }
}
