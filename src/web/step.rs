//! Step mode (a simulation mode in the manner of Packet Tracer's): a recording as a list of
//! events to step through, each with its layers and, for a datagram forwarded by routers, its
//! hops with the fields that changed from the hop before.
//!
//! A recording is either an experiment run's directory (its pcaps, one per capture, named after
//! the node) or the live view's last events.

use super::events::{Aggregator, Event, LinkMap, Observation};
use super::fields::{self, LayerView};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// How long (by the stamps) an event of a recording waits for the rest of its sightings.
const STEP_WINDOW_NS: u64 = 250_000_000;

/// One event of a recording.
#[derive(Debug, Clone, Serialize)]
pub struct StepEvent {
    /// The event (link, sender, receivers, summary).
    #[serde(flatten)]
    pub event: Event,
    /// Its layers.
    pub layers: Vec<LayerView>,
    /// Indexes (in the recording) of the hops of the same IPv4 datagram, this one included, in
    /// time order; empty for a packet that is not IPv4.
    pub hops: Vec<usize>,
    /// Fields changed since the previous hop (`Layer.field`).
    pub changed: Vec<String>,
}

/// A recording to step through.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recording {
    /// Where it comes from: a directory, or `live`.
    pub source: String,
    /// The events, in time order.
    pub events: Vec<StepEvent>,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
}

/// The node a capture file of a run belongs to: its stem when that is a node's name, else the
/// longest node name it starts with.
fn node_of_file(stem: &str, nodes: &[String]) -> Option<String> {
    if nodes.iter().any(|n| n == stem) {
        return Some(stem.to_string());
    }
    nodes
        .iter()
        .filter(|n| stem.starts_with(n.as_str()))
        .max_by_key(|n| n.len())
        .cloned()
}

/// The recording of a run directory: every `*.pcap` and `*.pcapng` in it, whose file names
/// name the node that captured them.
pub fn load_run_dir(dir: &Path, nodes: &[String], links: &LinkMap) -> Result<Recording> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading run directory {}", dir.display()), e))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "{} holds no pcap: open an experiment run's directory",
            dir.display()
        )));
    }
    let mut obs = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let node: Arc<str> = node_of_file(&stem, nodes).unwrap_or(stem).into();
        match crate::capture::read_file(&f) {
            Ok(records) => obs.extend(records.into_iter().map(|r| Observation {
                node: node.clone(),
                iface: r.interface.into(),
                ts_ns: r.ts,
                packet: crate::capture::decode(&r.data),
                frame: Some(r.data.into()),
            })),
            Err(e) => problems.push(format!("{}: {e}", f.display())),
        }
    }
    let mut rec = recording_of(obs, links);
    rec.source = dir.display().to_string();
    rec.problems = problems;
    Ok(rec)
}

/// Folds sightings (in any order) into a recording.
pub fn recording_of(mut obs: Vec<Observation>, links: &LinkMap) -> Recording {
    obs.sort_by_key(|o| o.ts_ns);
    let mut agg = Aggregator::new(links.clone(), STEP_WINDOW_NS, usize::MAX);
    let mut events = Vec::new();
    for o in obs {
        let ts = o.ts_ns;
        agg.push(o, ts);
        events.extend(agg.tick(ts, false).events);
    }
    events.extend(agg.tick(u64::MAX, true).events);
    events.sort_by_key(|e| e.ts_ns);
    from_events(events)
}

/// The recording of events already folded (the live view's).
pub fn from_events(mut events: Vec<Event>) -> Recording {
    events.sort_by_key(|e| e.ts_ns);
    let mut out: Vec<StepEvent> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            event.id = i as u64 + 1;
            StepEvent {
                layers: fields::layers(&event.packet, event.frame.as_deref()),
                event,
                hops: Vec::new(),
                changed: Vec::new(),
            }
        })
        .collect();
    let mut by_datagram: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in out.iter().enumerate() {
        if let Some(k) = fields::datagram_key(&e.event.packet) {
            by_datagram.entry(k).or_default().push(i);
        }
    }
    for hops in by_datagram.values() {
        for (n, &i) in hops.iter().enumerate() {
            if n > 0 {
                out[i].changed = fields::changed(&out[hops[n - 1]].layers, &out[i].layers);
            }
            out[i].hops = hops.clone();
        }
    }
    Recording {
        source: "live".into(),
        events: out,
        problems: Vec::new(),
    }
}
