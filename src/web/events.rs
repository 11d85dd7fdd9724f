//! Packet events: what the page draws travelling along a line.
//!
//! Every node captures its own interfaces, so one frame is seen several times: at both ends of
//! a point-to-point line, at every port of a LAN it reaches. An [`Aggregator`] folds the
//! observations of one frame on one link (same frame hash, within a short window) into one
//! [`Event`]: from the node that saw it first (the sender: its egress is stamped before anyone's
//! ingress) to the others. Under load it hands out at most a budget of events per tick and
//! counts the rest per link ([`LinkCount`]), so the page is never sent more than it can draw.

use crate::capture::Packet;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Where an interface is attached: `lan-N` or `link-N` (the ids of the topology drawing), by
/// (node, interface).
#[derive(Debug, Clone, Default)]
pub struct LinkMap {
    by_port: HashMap<(String, String), String>,
    /// Each link's attached nodes with their address on it.
    members: HashMap<String, Vec<(String, Option<Ipv4Addr>)>>,
}

impl LinkMap {
    /// The map of a topology drawing's graph: LAN `i` is `lan-{i+1}`, line `k` is `link-{k+1}`.
    pub fn of_graph(g: &crate::report::svg::Graph) -> LinkMap {
        let mut map = LinkMap::default();
        for (i, lan) in g.lans.iter().enumerate() {
            for m in &lan.members {
                map.attach(m, format!("lan-{}", i + 1));
            }
        }
        for (k, l) in g.links.iter().enumerate() {
            for p in [&l.a, &l.b] {
                map.attach(p, format!("link-{}", k + 1));
            }
        }
        map
    }

    fn attach(&mut self, p: &crate::report::svg::GraphPort, id: String) {
        let addr = p
            .address
            .as_deref()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok());
        self.members
            .entry(id.clone())
            .or_default()
            .push((p.host.clone(), addr));
        self.by_port
            .insert((p.host.clone(), p.interface.clone()), id);
    }

    /// The node of `link` with address `ip`.
    fn member_with(&self, link: &str, ip: Ipv4Addr) -> Option<&str> {
        self.members
            .get(link)?
            .iter()
            .find(|(_, a)| *a == Some(ip))
            .map(|(n, _)| n.as_str())
    }

    /// Completes an event seen by one capture only (its other end was not captured): the
    /// sender is the node of the link whose address the packet comes from (IPv4 or ARP
    /// source), and the receiver the one it is addressed to; otherwise it stays as seen.
    pub fn complete(&self, e: &mut Event) {
        let Some(link) = e.link.as_deref() else {
            return;
        };
        if !e.to.is_empty() {
            return;
        }
        let (src, dst) = match (e.packet.ipv4, e.packet.arp) {
            (Some(ip), _) => (ip.src, ip.dst),
            (None, Some(a)) => (a.sender_ip, a.target_ip),
            _ => return,
        };
        let seen = e.from.clone();
        match self.member_with(link, src) {
            Some(n) if n != seen => {
                e.from = n.to_string();
                e.from_iface = String::new();
                e.to = vec![seen];
            }
            _ => {
                if let Some(n) = self.member_with(link, dst)
                    && n != seen
                {
                    e.to = vec![n.to_string()];
                }
            }
        }
    }

    /// The link of `node`'s interface `iface`, if it is on one.
    pub fn link_of(&self, node: &str, iface: &str) -> Option<&str> {
        self.by_port
            .get(&(node.to_string(), iface.to_string()))
            .map(String::as_str)
    }
}

/// The protocol a packet is drawn in (its colour on the page).
pub fn proto_of(p: &Packet) -> &'static str {
    if p.arp.is_some() {
        "arp"
    } else if p.icmp.is_some() {
        "icmp"
    } else if p.tcp.is_some() {
        "tcp"
    } else if p.udp.is_some() {
        "udp"
    } else if p.igmp.is_some() {
        "igmp"
    } else if p.ipv6.is_some() {
        "ipv6"
    } else if p.ipv4.is_some() {
        "ip"
    } else {
        "other"
    }
}

/// A fingerprint of a frame's decoded headers: equal for the copies of one frame seen at
/// several places, different once a router has rewritten it (MACs, TTL).
pub fn frame_hash(p: &Packet) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

/// One sighting of a frame by one node's capture.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The node that saw it.
    pub node: Arc<str>,
    /// The interface it was seen on.
    pub iface: Arc<str>,
    /// Kernel timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The decoded frame.
    pub packet: Packet,
    /// The frame's bytes, when kept (step mode reads checksums from them).
    pub frame: Option<Arc<[u8]>>,
}

/// One frame crossing one link, however many captures saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Sequence number, from 1.
    pub id: u64,
    /// Earliest sighting, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// `lan-N`, `link-N`, or `None` for an interface on no drawn link.
    pub link: Option<String>,
    /// The node that sent it (saw it first).
    pub from: String,
    /// The sender's interface.
    pub from_iface: String,
    /// The nodes that received it, each once.
    pub to: Vec<String>,
    /// Protocol for the colour: arp, icmp, tcp, udp, igmp, ipv6, ip, other.
    pub proto: &'static str,
    /// The tcpdump-style line.
    pub summary: String,
    /// Frame length in bytes.
    pub len: usize,
    /// The decoded frame (not sent to the page).
    #[serde(skip)]
    pub packet: Packet,
    /// The frame's bytes of the first sighting, when kept.
    #[serde(skip)]
    pub frame: Option<Arc<[u8]>>,
}

/// Packets on one link during one tick, by protocol.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LinkCount {
    /// Frames.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Frames by protocol.
    pub by_proto: BTreeMap<&'static str, u64>,
}

/// What one tick hands the page: events to draw one by one, and every frame of the tick
/// counted per link (drawn ones included).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Frame {
    /// Events, oldest first, at most the budget.
    pub events: Vec<Event>,
    /// Every frame of the tick by link (`-` for frames on no drawn link).
    pub counts: BTreeMap<String, LinkCount>,
    /// Frames of the tick counted but not sent as events.
    pub folded: u64,
}

/// Sightings of one frame on one link are this close together by their stamps (a switch on
/// Open vSwitch's userspace datapath may take tens of ms under load); the same bytes again
/// later are another frame.
const SAME_FRAME_NS: u64 = 200_000_000;

type Key = (u64, Option<String>);

struct Pending {
    created: u64,
    event: Event,
    expected: usize,
}

impl Pending {
    fn sightings(&self) -> usize {
        1 + self.event.to.len()
    }
}

/// Folds observations into events (see the module's doc).
///
/// An event is handed out as soon as every capture that can see its frame has (both ends of a
/// line; the two ends of a unicast frame on a LAN, every member for a broadcast), or once it
/// has waited `wait_ns` for the others (a capture hands its packets over in blocks, up to
/// ~150 ms late). A sighting that comes after its event went out is dropped, not made a new
/// event.
pub struct Aggregator {
    links: LinkMap,
    wait_ns: u64,
    budget: usize,
    next_id: u64,
    pending: HashMap<Key, Pending>,
    /// Events done before their time (the same bytes came again, later).
    early: Vec<Event>,
    /// Events handed out lately: key -> (first stamp, when handed out).
    recent: HashMap<Key, (u64, u64)>,
}

impl Aggregator {
    /// An event waits at most `wait_ns` (by arrival) for the rest of its sightings; at most
    /// `budget` events a tick are sent, the rest counted.
    pub fn new(links: LinkMap, wait_ns: u64, budget: usize) -> Aggregator {
        Aggregator {
            links,
            wait_ns,
            budget,
            next_id: 1,
            pending: HashMap::new(),
            early: Vec::new(),
            recent: HashMap::new(),
        }
    }

    /// How many captures can see a frame on `link`.
    fn expected(&self, link: Option<&str>, p: &Packet) -> usize {
        let Some(link) = link else { return 1 };
        let members = self.links.members.get(link).map_or(1, Vec::len);
        let group = p.ethernet.is_some_and(|e| e.dst.0[0] & 1 == 1);
        if link.starts_with("lan-") && group {
            members
        } else {
            members.min(2)
        }
    }

    /// Takes one sighting, arrived at `now_ns` (any monotonic clock the ticks use too).
    pub fn push(&mut self, obs: Observation, now_ns: u64) {
        let link = self.links.link_of(&obs.node, &obs.iface).map(String::from);
        let key = (frame_hash(&obs.packet), link.clone());
        if let Some(p) = self.pending.get_mut(&key)
            && obs.ts_ns.abs_diff(p.event.ts_ns) < SAME_FRAME_NS
        {
            add_sighting(&mut p.event, &obs);
            return;
        }
        if let Some(&(ts, _)) = self.recent.get(&key)
            && obs.ts_ns.abs_diff(ts) < SAME_FRAME_NS
        {
            return;
        }
        let packet = obs.packet;
        let expected = self.expected(link.as_deref(), &packet);
        let event = Event {
            id: 0,
            ts_ns: obs.ts_ns,
            link,
            from: obs.node.to_string(),
            from_iface: obs.iface.to_string(),
            to: Vec::new(),
            proto: proto_of(&packet),
            summary: String::new(),
            len: packet.frame_len,
            packet,
            frame: obs.frame,
        };
        let new = Pending {
            created: now_ns,
            event,
            expected,
        };
        if let Some(old) = self.pending.insert(key, new) {
            // The same bytes again, long after: the older one is done.
            self.early.push(old.event);
        }
    }

    /// The events complete or done waiting at `now_ns` (all of them with `flush_all`), in
    /// time order, the first `budget` as events and every one counted.
    pub fn tick(&mut self, now_ns: u64, flush_all: bool) -> Frame {
        let wait = self.wait_ns;
        let due: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                flush_all || p.sightings() >= p.expected || now_ns.saturating_sub(p.created) >= wait
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut done = std::mem::take(&mut self.early);
        for k in due {
            if let Some(p) = self.pending.remove(&k) {
                self.recent.insert(k, (p.event.ts_ns, now_ns));
                done.push(p.event);
            }
        }
        self.recent
            .retain(|_, (_, at)| now_ns.saturating_sub(*at) < 2 * wait);
        done.sort_by_key(|e| e.ts_ns);
        self.frame_of(done)
    }

    fn frame_of(&mut self, done: Vec<Event>) -> Frame {
        let mut frame = Frame::default();
        for mut e in done {
            self.links.complete(&mut e);
            let c = frame
                .counts
                .entry(e.link.clone().unwrap_or_else(|| "-".into()))
                .or_default();
            c.packets += 1;
            c.bytes += e.len as u64;
            *c.by_proto.entry(e.proto).or_default() += 1;
            if frame.events.len() < self.budget {
                e.id = self.next_id;
                self.next_id += 1;
                e.summary = e.packet.to_string().trim().to_string();
                frame.events.push(e);
            } else {
                frame.folded += 1;
            }
        }
        frame
    }

    /// Whether observations wait for their window.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Adds a sighting to the event of its frame: an earlier stamp makes its node the sender.
fn add_sighting(e: &mut Event, obs: &Observation) {
    if obs.ts_ns < e.ts_ns {
        let old = std::mem::replace(&mut e.from, obs.node.to_string());
        e.from_iface = obs.iface.to_string();
        e.ts_ns = obs.ts_ns;
        e.to.retain(|n| n.as_str() != &*obs.node);
        if !e.to.contains(&old) {
            e.to.insert(0, old);
        }
    } else if e.from != *obs.node && !e.to.iter().any(|n| *n == *obs.node) {
        e.to.push(obs.node.to_string());
    }
}
