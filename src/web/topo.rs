//! The live topology: the book-style drawing of the lab (the same SVG as `tcplab graph`), the
//! graph it was drawn from (so the page knows which `lan-N`, `link-N` and `host-N` is which),
//! and the lab's status, read again every poll and published when it changed (a `link down`,
//! `link set` or a repair shows on the page within a poll).

use super::events::LinkMap;
use crate::lab::LabContext;
use crate::report::svg::Graph;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the lab's status is read.
const POLL: Duration = Duration::from_millis(1500);

/// Which lab the page shows, as the command line named it.
#[derive(Debug, Clone)]
pub struct LabRef {
    /// `--lab`.
    pub lab: Option<String>,
    /// `--topology`.
    pub topology: Option<PathBuf>,
}

impl LabRef {
    /// The lab resolved now (its record may have appeared or gone since).
    pub fn resolve(&self) -> crate::Result<LabContext> {
        LabContext::resolve(self.lab.as_deref(), self.topology.as_deref())
    }
}

/// What `/api/topology` answers: the drawing and what it was drawn from.
#[derive(Debug, Clone, Serialize)]
pub struct TopologyView {
    /// The lab's name.
    pub lab: String,
    /// The drawing.
    pub svg: String,
    /// Hosts, LANs and lines in drawing order.
    pub hosts: Vec<HostView>,
    /// LANs: `lan-N` is `lans[N-1]`.
    pub lans: Vec<LanView>,
    /// Lines: `link-N` is `links[N-1]`.
    pub links: Vec<LineView>,
}

/// A host of the drawing (`host-N`).
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    /// Its name.
    pub name: String,
    /// Whether it forwards.
    pub router: bool,
}

/// A LAN of the drawing.
#[derive(Debug, Clone, Serialize)]
pub struct LanView {
    /// Its name.
    pub name: String,
    /// Its members as `NODE:IFACE`.
    pub ports: Vec<String>,
}

/// A point-to-point line of the drawing.
#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    /// Its name.
    pub name: String,
    /// Its two ends as `NODE:IFACE`.
    pub ports: Vec<String>,
}

/// The drawing of a lab and the map from interfaces to its links.
pub fn view_of(ctx: &LabContext) -> (TopologyView, LinkMap) {
    let g: Graph = crate::report::graph_of(&ctx.topology);
    let port = |p: &crate::report::svg::GraphPort| format!("{}:{}", p.host, p.interface);
    let view = TopologyView {
        lab: ctx.lab.clone(),
        svg: crate::report::svg::topology_svg(&g),
        hosts: g
            .hosts
            .iter()
            .map(|h| HostView {
                name: h.name.clone(),
                router: h.router,
            })
            .collect(),
        lans: g
            .lans
            .iter()
            .map(|l| LanView {
                name: l.name.clone(),
                ports: l.members.iter().map(port).collect(),
            })
            .collect(),
        links: g
            .links
            .iter()
            .map(|l| LineView {
                name: l.name.clone(),
                ports: vec![port(&l.a), port(&l.b)],
            })
            .collect(),
    };
    (view, LinkMap::of_graph(&g))
}

/// The lab's status as the page reads it (JSON): `{"up": false, ...}` when the lab is not up.
async fn read_status(lab: &LabRef) -> String {
    use crate::runtime::Runtime;
    let ctx = match lab.resolve() {
        Ok(c) => c,
        Err(e) => return serde_json::json!({"up": false, "error": e.to_string()}).to_string(),
    };
    let Some(state) = ctx.state.as_ref() else {
        return serde_json::json!({"up": false, "lab": ctx.lab}).to_string();
    };
    let rt = crate::runtime::open_for_teardown(state.runtime, &state.topology_file).await;
    for n in &ctx.topology.nodes {
        let _ = rt
            .refresh_netns(&crate::plan::node_netns(&ctx.lab, &n.name))
            .await;
    }
    let sys = crate::os::real::RealSystem::new();
    match crate::lab::status(&sys, state, &ctx.topology).await {
        Ok(st) => serde_json::json!({"up": true, "status": st}).to_string(),
        Err(e) => {
            serde_json::json!({"up": false, "lab": ctx.lab, "error": e.to_string()}).to_string()
        }
    }
}

/// Reads the status every poll on a thread of its own (namespaces are entered there, never on
/// the server's runtime) and publishes it on `tx` when it changed, until `stop`.
pub fn spawn_status_poller(
    lab: LabRef,
    tx: watch::Sender<Arc<str>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("web-status".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            while !stop.load(Ordering::Relaxed) {
                let s = rt.block_on(read_status(&lab));
                if **tx.borrow() != *s {
                    tx.send_replace(s.into());
                }
                let mut slept = Duration::ZERO;
                while slept < POLL && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    slept += Duration::from_millis(100);
                }
            }
        })
}
