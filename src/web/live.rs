//! Live packets: a native capture on every node at once, fanned in to one [`Aggregator`] whose
//! frames (a tick's events and per-link counts, as JSON) are broadcast to every page.
//!
//! Nothing here blocks a capture: each node's capture thread hands its sightings over a
//! bounded channel without waiting (a full channel counts a drop), and a page that reads too
//! slowly misses frames rather than making anything wait. A supervisor (in the aggregating
//! thread) starts the capture of every node whose namespace exists and has none running, so
//! a node that comes back after `down`/`up` is captured again.

use super::events::{Aggregator, Event, LinkMap, Observation};
use crate::capture::{Capture, CaptureSpec, Sink};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// A tick of the page: events are handed out this often.
pub const TICK: Duration = Duration::from_millis(50);
/// How long an event waits for the rest of its sightings (a capture hands packets over in
/// blocks of up to 50 ms, ordered across its interfaces within 100 ms).
const WAIT_NS: u64 = 160_000_000;
/// Events a tick sent one by one (the rest are counted): 2,000 a second.
pub const BUDGET: usize = 100;
/// Sightings waiting for the aggregator at most.
const QUEUE: usize = 65_536;
/// Events kept for the step mode's live recording.
const KEEP: usize = 5_000;
/// How often the supervisor looks for nodes to capture.
const SUPERVISE: Duration = Duration::from_secs(2);

/// The live view's shared parts.
pub struct LiveHub {
    /// Frames as JSON, to every page.
    pub frames: broadcast::Sender<Arc<str>>,
    /// The last events, for the step mode.
    pub recent: Mutex<VecDeque<Event>>,
    /// Sightings dropped because the aggregator was behind.
    pub dropped: Arc<AtomicU64>,
    /// Stops everything.
    pub stop: Arc<AtomicBool>,
}

struct NodeCapture {
    done: Arc<AtomicBool>,
}

impl LiveHub {
    /// Starts the aggregating thread (which starts the captures) for the nodes of `lab`.
    pub fn start(lab: String, nodes: Vec<String>, links: LinkMap) -> std::io::Result<Arc<LiveHub>> {
        let (frames, _) = broadcast::channel(64);
        let hub = Arc::new(LiveHub {
            frames,
            recent: Mutex::new(VecDeque::new()),
            dropped: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        });
        let h = hub.clone();
        std::thread::Builder::new()
            .name("web-live".into())
            .spawn(move || h.aggregate(&lab, &nodes, links))?;
        Ok(hub)
    }

    fn aggregate(&self, lab: &str, nodes: &[String], links: LinkMap) {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Observation>(QUEUE);
        let mut agg = Aggregator::new(links, WAIT_NS, BUDGET);
        let mut captures: HashMap<String, NodeCapture> = HashMap::new();
        let epoch = Instant::now();
        let mut last_supervise: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            if last_supervise.is_none_or(|t| t.elapsed() >= SUPERVISE) {
                last_supervise = Some(Instant::now());
                self.supervise(lab, nodes, &mut captures, &tx);
            }
            let deadline = Instant::now() + TICK;
            self.drain_until(&rx, &mut agg, epoch, deadline);
            let frame = agg.tick(epoch.elapsed().as_nanos() as u64, false);
            if frame.counts.is_empty() {
                continue;
            }
            let json = serde_json::json!({
                "type": "frame",
                "sent_ns": now_ns(),
                "events": frame.events,
                "counts": frame.counts,
                "folded": frame.folded,
                "dropped": self.dropped.load(Ordering::Relaxed),
            })
            .to_string();
            let _ = self.frames.send(json.into());
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.extend(frame.events);
            while recent.len() > KEEP {
                recent.pop_front();
            }
        }
    }

    fn drain_until(
        &self,
        rx: &Receiver<Observation>,
        agg: &mut Aggregator,
        epoch: Instant,
        deadline: Instant,
    ) {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(o) => agg.push(o, epoch.elapsed().as_nanos() as u64),
                Err(_) => return,
            }
        }
    }

    /// Starts the capture of every node that has a namespace and no capture running.
    fn supervise(
        &self,
        lab: &str,
        nodes: &[String],
        captures: &mut HashMap<String, NodeCapture>,
        tx: &SyncSender<Observation>,
    ) {
        captures.retain(|_, c| !c.done.load(Ordering::Relaxed));
        for node in nodes {
            let netns = crate::plan::node_netns(lab, node);
            if captures.contains_key(node) || !crate::sys::netns_exists(&netns) {
                continue;
            }
            let done = Arc::new(AtomicBool::new(false));
            let spec = CaptureSpec {
                netns: Some(crate::sys::netns_path(&netns)),
                snaplen: 256,
                ..CaptureSpec::default()
            };
            let ctx = CaptureThread {
                node: node.as_str().into(),
                tx: tx.clone(),
                stop: self.stop.clone(),
                done: done.clone(),
                dropped: self.dropped.clone(),
            };
            let name = format!("web-cap-{node}");
            if std::thread::Builder::new()
                .name(name)
                .spawn(move || ctx.run(&spec))
                .is_ok()
            {
                captures.insert(node.clone(), NodeCapture { done });
            }
        }
    }
}

/// The wall clock in nanoseconds since the Unix epoch (the capture stamps' clock).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

struct CaptureThread {
    node: Arc<str>,
    tx: SyncSender<Observation>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl CaptureThread {
    fn run(self, spec: &CaptureSpec) {
        if let Ok(cap) = Capture::open(spec) {
            let mut ifaces: HashMap<String, Arc<str>> = HashMap::new();
            let _ = cap.run(
                Sink::Writer(Box::new(std::io::sink())),
                &self.stop,
                &mut |i, p, ts| {
                    let iface = ifaces
                        .entry(i.to_string())
                        .or_insert_with(|| i.into())
                        .clone();
                    let obs = Observation {
                        node: self.node.clone(),
                        iface,
                        ts_ns: ts,
                        packet: *p,
                        frame: None,
                    };
                    if let Err(TrySendError::Full(_)) = self.tx.try_send(obs) {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                },
            );
        }
        self.done.store(true, Ordering::Relaxed);
    }
}
