//! Applying a plan, phase by phase. Every phase records what it is about to create in the lab's
//! record *before* creating it, so a failure at any step leaves a record that names everything
//! that may exist; [`super::up`] then removes it all.

use crate::error::{Context, Error, Result};
use crate::net::ovsdb::{BridgeSpec, Datapath};
use crate::os::{NetOps, System, VethRequest};
use crate::plan::{BridgePlan, Ns, Plan};
use crate::progress::Progress;
use crate::runtime::Runtime;
use crate::state::{LabLock, LabState, Object};
use crate::topology::NetworkKind;
use futures::future::try_join_all;
use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::path::Path;

/// Sysctls of the switch namespace: no IPv6 chatter from the bridges, and bridged frames never
/// handed to (this namespace's empty) iptables.
const SWITCH_SYSCTLS: &[(&str, &str)] = &[
    ("ipv6.conf.all.disable_ipv6", "1"),
    ("ipv6.conf.default.disable_ipv6", "1"),
    ("bridge.bridge-nf-call-iptables", "0"),
    ("bridge.bridge-nf-call-arptables", "0"),
    ("bridge.bridge-nf-call-ip6tables", "0"),
];

/// The alias tcplab gives the interfaces it makes in the host's namespace: only interfaces
/// carrying their lab's alias are ever deleted.
pub fn host_alias(lab: &str) -> String {
    format!("tcplab:{lab}")
}

/// Handles on every namespace of the lab.
pub(crate) struct Namespaces<N> {
    pub host: N,
    pub switch: Option<N>,
    pub nodes: Vec<N>,
}

impl<N: NetOps> Namespaces<N> {
    fn handle(&self, ns: Ns) -> Result<&N> {
        match ns {
            Ns::Host => Ok(&self.host),
            Ns::Switch => self
                .switch
                .as_ref()
                .ok_or_else(|| Error::Other("the plan uses a switch namespace it has not".into())),
            Ns::Node(i) => self
                .nodes
                .get(i)
                .ok_or_else(|| Error::Other(format!("the plan names node {i} it has not"))),
        }
    }
}

/// Apply `plan`: nodes, links, Open vSwitch, addresses, uplink. `host` is the handle on the
/// host's namespace. On error, what was made is in `state` for the caller's rollback.
pub(crate) async fn apply<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    plan: &mut Plan,
    state: &mut LabState,
    host: S::Net,
    progress: &Progress,
) -> Result<()> {
    let mut fresh = Repair::Fresh;
    let ns = nodes_phase(sys, runtime, plan, state, host, progress, &mut fresh).await?;
    let plan: &Plan = plan;
    links_phase(sys, plan, state, &ns, progress, &mut fresh).await?;
    ovs_phase(sys, plan, state, progress, &mut fresh).await?;
    addresses_phase(sys, plan, &ns, progress, &mut fresh).await?;
    if plan.uplink.is_some() {
        uplink_phase(sys, plan, state, &ns.host, progress).await?;
    }
    conditions_phase(sys, plan, state, progress).await
}

/// Repair a lab that is up: every phase again, making only what is missing (nodes, namespaces,
/// bridges, links, OVS bridges, addresses, routes, proxy ARP entries, sysctls), then the
/// conditions whose worker is gone. Returns what it made again (empty: nothing was missing).
pub(crate) async fn repair<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    plan: &mut Plan,
    state: &mut LabState,
    progress: &Progress,
) -> Result<Vec<String>> {
    let mut fix = Repair::Missing(Vec::new());
    let host = sys.host()?;
    let ns = nodes_phase(sys, runtime, plan, state, host, progress, &mut fix).await?;
    let plan: &Plan = plan;
    links_phase(sys, plan, state, &ns, progress, &mut fix).await?;
    ovs_phase(sys, plan, state, progress, &mut fix).await?;
    repair_uplink(sys, runtime, plan, state, &ns, progress, &mut fix).await?;
    addresses_phase(sys, plan, &ns, progress, &mut fix).await?;
    let ends: Vec<(String, crate::conditions::spec::Conditions)> =
        state.conditions.clone().into_iter().collect();
    for (key, c) in ends {
        let (node, iface) = key.split_once(':').unwrap_or((key.as_str(), ""));
        let control = super::conditions::control_name(&state.dir, &state.lab, node, iface);
        if sys.link_worker_stats(&control).is_none() {
            super::conditions::apply_end(sys, state, plan, node, iface, &c)
                .await
                .with_context(|| format!("conditions on {key}"))?;
            fix.note(format!("conditions on {key}"));
        }
    }
    Ok(match fix {
        Repair::Missing(v) => v,
        Repair::Fresh => Vec::new(),
    })
}

/// Whether `v` is the gateway's line to the host (planned with its host end in the host's
/// namespace; `uplink_phase` moves that end into the lab's edge).
fn is_uplink_line(plan: &Plan, v: &crate::plan::VethPlan) -> bool {
    plan.uplink.is_some() && v.b.ns == Ns::Host && v.bridge.is_none()
}

/// The uplink of a lab being repaired: when any part of it is gone (the edge's two lines, the
/// host's end, the host's chain), what is left of it is taken away and it is made again whole,
/// the gateway's line included.
async fn repair_uplink<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    plan: &Plan,
    state: &mut LabState,
    ns: &Namespaces<S::Net>,
    progress: &Progress,
    repair: &mut Repair,
) -> Result<()> {
    let Some(u) = &plan.uplink else {
        return Ok(());
    };
    let edge_name = crate::plan::switch_netns(&plan.lab);
    let host_link = uplink_host_link(&plan.lab);
    let chain = crate::net::firewall::UplinkRules::new(&plan.lab, "", "", &[]).chain;
    let edge = if sys.netns_exists(&edge_name) {
        sys.enter_netns(&[(edge_name.clone(), Vec::new())])?.pop()
    } else {
        None
    };
    let whole = match &edge {
        Some(e) => {
            e.link_index(&u.host_interface).await?.is_some()
                && e.link_index(EDGE_TO_HOST).await?.is_some()
                && ns.host.link_index(&host_link).await?.is_some()
                && sys.firewall_chains().await?.contains(&chain)
        }
        None => false,
    };
    if whole {
        return Ok(());
    }
    repair.note("uplink".into());
    let old: Vec<Object> = state
        .objects
        .iter()
        .filter(|o| {
            matches!(
                o,
                Object::UplinkLine { .. }
                    | Object::Firewall { .. }
                    | Object::UplinkForwarding { .. }
            )
        })
        .cloned()
        .collect();
    for o in &old {
        // What is gone already is fine; what cannot be removed is seen by the next step.
        let _ = super::down::remove_object(sys, runtime, o, Ok(&ns.host), &plan.lab).await;
    }
    state.objects.retain(|o| !old.contains(o));
    state.save()?;
    if let Some(e) = &edge {
        if plan.switch_ns.as_deref() == Some(edge_name.as_str()) {
            for name in [u.host_interface.as_str(), EDGE_TO_HOST] {
                e.delete_link(name).await?;
            }
        } else {
            sys.delete_netns(&edge_name)?;
        }
    }
    // The gateway's line, made again with its host end in the host's namespace.
    let line = plan
        .veths
        .iter()
        .find(|v| is_uplink_line(plan, v))
        .ok_or_else(|| Error::Other("the plan has an uplink but no line for it".into()))?;
    let gateway = ns.handle(line.a.ns)?;
    gateway.delete_link(&line.a.name).await?;
    ns.host.delete_link(&line.b.name).await?;
    let req = VethRequest {
        name: line.a.name.clone(),
        index: 0,
        peer: line.b.name.clone(),
        peer_index: 0,
        mtu: line.mtu,
        controller: None,
    };
    gateway
        .add_veth(&req, &ns.host)
        .await
        .with_context(|| line.label.clone())?;
    quiet_host_ends(sys, line)?;
    ns.host
        .set_alias(&line.b.name, &host_alias(&plan.lab))
        .await?;
    ns.host.set_state(&line.b.name, true).await?;
    uplink_phase(sys, plan, state, &ns.host, progress).await
}

/// Whether a phase builds a new lab (everything is created) or repairs one (only what is
/// missing is created, and each repair is noted).
pub(crate) enum Repair {
    /// A new lab: create everything.
    Fresh,
    /// An existing lab: create what is missing, noting what.
    Missing(Vec<String>),
}

impl Repair {
    fn repairing(&self) -> bool {
        matches!(self, Repair::Missing(_))
    }
    fn noted(&self, what: &str) -> bool {
        matches!(self, Repair::Missing(v) if v.iter().any(|x| x == what))
    }
    fn note(&mut self, what: String) {
        if let Repair::Missing(v) = self {
            v.push(what);
        }
    }
}

/// An error the kernel gives when what is added is there already (a repair re-adds it).
fn exists_already(e: &Error) -> bool {
    matches!(e, Error::Netlink { message, .. } if message.contains("file exists"))
}

/// Phase 6: the link conditions of the topology and of the profile asked for, each end's
/// worker recorded before it starts.
async fn conditions_phase<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    progress: &Progress,
) -> Result<()> {
    if plan.conditions.is_empty() {
        return Ok(());
    }
    let mut phase = progress.phase("conditions", plan.conditions.len() as u64);
    for e in &plan.conditions {
        super::conditions::apply_end(sys, state, plan, &e.node, &e.interface, &e.conditions)
            .await
            .with_context(|| format!("conditions on {}:{}", e.node, e.interface))?;
        phase.advance(1);
    }
    phase.finish();
    Ok(())
}

/// Phase 1: the nodes (namespaces or containers) and the switch namespace, their sysctls, their
/// /etc/hosts, a handle on each, loopback up, and the plan's interface numbers moved past any
/// device the kernel put in a new namespace.
async fn nodes_phase<S: System, R: Runtime>(
    sys: &S,
    runtime: &R,
    plan: &mut Plan,
    state: &mut LabState,
    host: S::Net,
    progress: &Progress,
    repair: &mut Repair,
) -> Result<Namespaces<S::Net>> {
    let mut phase = progress.phase("nodes", plan.nodes.len() as u64);
    if !repair.repairing() {
        let mut objects: Vec<Object> = Vec::new();
        objects.extend(
            plan.switch_ns
                .iter()
                .map(|s| Object::Netns { name: s.clone() }),
        );
        objects.extend(runtime.objects(plan));
        objects.extend(plan.nodes.iter().map(|n| Object::EtcDir {
            path: sys.etc_dir(&n.netns).display().to_string(),
        }));
        state.record(objects)?;
    }
    for n in &plan.nodes {
        if !(repair.repairing() && sys.etc_dir_exists(&n.netns)) {
            sys.write_etc_hosts(&n.netns, &n.hosts)?;
        }
    }
    let switch_sysctls: Vec<(String, String)> = SWITCH_SYSCTLS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let switch = match &plan.switch_ns {
        Some(name) if repair.repairing() && sys.netns_exists(name) => {
            sys.enter_netns(&[(name.clone(), switch_sysctls)])?.pop()
        }
        Some(name) => {
            repair.note(format!("namespace {name}"));
            Some(sys.create_netns(name, &switch_sysctls)?)
        }
        None => None,
    };
    if repair.repairing() {
        for node in runtime.ensure_nodes(plan).await? {
            repair.note(format!("node {node}"));
        }
    } else {
        runtime.create_nodes(plan).await?;
    }
    let wanted: Vec<(String, Vec<(String, String)>)> = plan
        .nodes
        .iter()
        .map(|n| (n.netns.clone(), n.sysctls.clone()))
        .collect();
    let nodes = sys.enter_netns(&wanted)?;
    try_join_all(nodes.iter().zip(&plan.nodes).map(|(h, n)| async move {
        h.set_up(1)
            .await
            .with_context(|| format!("node {}: loopback", n.name))
    }))
    .await?;
    phase.advance(plan.nodes.len() as u64);
    phase.finish();
    // The plan numbers interfaces from 2, as in a namespace holding only lo. Where the kernel
    // already put devices in new namespaces (tunl0, gre0, sit0... when those modules are
    // loaded), move the plan's numbers past them. (A repair finds the lab's own interfaces
    // there, and asks the kernel for indexes instead: see `links_phase`.)
    if !repair.repairing() {
        for (i, h) in nodes.iter().enumerate() {
            shift_past_existing(plan, Ns::Node(i), h).await?;
        }
        if let Some(sw) = &switch {
            shift_past_existing(plan, Ns::Switch, sw).await?;
        }
    }
    Ok(Namespaces {
        host,
        switch,
        nodes,
    })
}

async fn shift_past_existing<N: NetOps>(plan: &mut Plan, ns: Ns, h: &N) -> Result<()> {
    let max = h.links().await?.iter().map(|l| l.index).max().unwrap_or(1);
    if max > 1 {
        plan.shift_indexes(ns, max - 1);
    }
    Ok(())
}

/// Phase 2: Linux bridges in the switch namespace and every veth pair, both ends up; the ends
/// in the host's namespace recorded first and tagged with the lab's alias.
async fn links_phase<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    ns: &Namespaces<S::Net>,
    progress: &Progress,
    repair: &mut Repair,
) -> Result<()> {
    let mut phase = progress.phase("links", (plan.bridges.len() + plan.veths.len()) as u64);
    for b in plan.bridges.iter().filter(|b| b.kind == NetworkKind::Linux) {
        let sw = ns.handle(Ns::Switch)?;
        if repair.repairing() && sw.link_index(&b.name).await?.is_some() {
            continue;
        }
        repair.note(format!("bridge {}", b.network));
        sw.add_bridge(&b.name, b.index)
            .await
            .with_context(|| format!("network {}", b.network))?;
        phase.advance(1);
    }
    if repair.repairing() {
        return repair_veths(sys, plan, ns, repair).await;
    }
    let host_links: Vec<Object> = plan
        .veths
        .iter()
        .flat_map(|v| [&v.a, &v.b])
        .filter(|e| e.ns == Ns::Host)
        .map(|e| Object::HostLink {
            name: e.name.clone(),
        })
        .collect();
    if !host_links.is_empty() {
        state.record(host_links)?;
    }
    try_join_all(plan.veths.iter().map(|v| async move {
        let controller = v
            .bridge
            .map(|bi| &plan.bridges[bi])
            .filter(|b| b.kind == NetworkKind::Linux && v.a.ns == Ns::Switch)
            .map(|b| b.index);
        let req = VethRequest {
            name: v.a.name.clone(),
            index: v.a.index,
            peer: v.b.name.clone(),
            peer_index: v.b.index,
            mtu: v.mtu,
            controller,
        };
        let peer = ns.handle(v.b.ns)?;
        ns.handle(v.a.ns)?
            .add_veth(&req, peer)
            .await
            .with_context(|| v.label.clone())?;
        quiet_host_ends(sys, v)?;
        if v.b.index != 0 {
            peer.set_up(v.b.index).await
        } else {
            peer.set_state(&v.b.name, true).await
        }
        .with_context(|| v.label.clone())
    }))
    .await?;
    phase.advance(plan.veths.len() as u64);
    for v in &plan.veths {
        for end in [&v.a, &v.b] {
            if end.ns == Ns::Host {
                ns.host.set_alias(&end.name, &host_alias(&plan.lab)).await?;
            }
        }
    }
    phase.finish();
    Ok(())
}

/// No IPv6 on the ends of a veth that sit in the host's namespace (nodes and switches have
/// IPv6 off for the whole namespace): an end with IPv6 would send router solicitations and MLD
/// reports into the lab, which has none. Done before the pair has a carrier, so nothing is sent.
fn quiet_host_ends<S: System>(sys: &S, v: &crate::plan::VethPlan) -> Result<()> {
    for end in [&v.a, &v.b] {
        if end.ns == Ns::Host {
            let key = format!("ipv6.conf.{}.disable_ipv6", end.name);
            match sys.write_host_sysctl(&key, "1") {
                // A host without IPv6 at all has nothing to turn off.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                r => r.with_context(|| v.label.clone())?,
            }
        }
    }
    Ok(())
}

/// The veths of a lab being repaired: a pair whose first end is gone is made again (a lone
/// second end, which a veth cannot be, is taken away first); every end is set up.
async fn repair_veths<S: System>(
    sys: &S,
    plan: &Plan,
    ns: &Namespaces<S::Net>,
    repair: &mut Repair,
) -> Result<()> {
    for v in &plan.veths {
        if is_uplink_line(plan, v) {
            continue; // see `repair_uplink`
        }
        let (a, b) = (ns.handle(v.a.ns)?, ns.handle(v.b.ns)?);
        if a.link_index(&v.a.name).await?.is_none() {
            if b.link_index(&v.b.name).await?.is_some() {
                b.delete_link(&v.b.name).await?;
            }
            let controller = match v.bridge.map(|bi| &plan.bridges[bi]) {
                Some(br) if br.kind == NetworkKind::Linux && v.a.ns == Ns::Switch => {
                    a.link_index(&br.name).await?
                }
                _ => None,
            };
            // The kernel picks the indexes: the lab's other interfaces hold the planned ones.
            let req = VethRequest {
                name: v.a.name.clone(),
                index: 0,
                peer: v.b.name.clone(),
                peer_index: 0,
                mtu: v.mtu,
                controller,
            };
            a.add_veth(&req, b).await.with_context(|| v.label.clone())?;
            quiet_host_ends(sys, v)?;
            repair.note(format!("link {}", v.label));
            if v.a.ns == Ns::Host {
                a.set_alias(&v.a.name, &host_alias(&plan.lab)).await?;
            }
            if v.b.ns == Ns::Host {
                b.set_alias(&v.b.name, &host_alias(&plan.lab)).await?;
            }
        }
        a.set_state(&v.a.name, true)
            .await
            .with_context(|| v.label.clone())?;
        b.set_state(&v.b.name, true)
            .await
            .with_context(|| v.label.clone())?;
    }
    Ok(())
}

/// Phase 3: the Open vSwitch bridges with their ports, in one transaction, recorded first.
/// With the userspace datapath, transmit checksum offload goes off on both ends of every port.
async fn ovs_phase<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    progress: &Progress,
    repair: &mut Repair,
) -> Result<()> {
    let ovs: Vec<&BridgePlan> = plan
        .bridges
        .iter()
        .filter(|b| b.kind == NetworkKind::Ovs)
        .collect();
    if ovs.is_empty() {
        return Ok(());
    }
    let phase = progress.phase("Open vSwitch", 1);
    if repair.repairing() {
        // The bridges keep their ports by name: a port whose veth was made again is picked up
        // by ovs-vswitchd. Only bridges that are gone are made again (all of them, at once).
        // ovs-vswitchd does not take back a port whose device was made again by itself: a
        // bridge that lost one is made again, with all its ports.
        let present = sys.ovs_lab_bridges(&plan.lab).await?;
        let remade_port = plan.veths.iter().any(|v| {
            v.bridge
                .is_some_and(|bi| plan.bridges[bi].kind == NetworkKind::Ovs)
                && repair.noted(&format!("link {}", v.label))
        });
        if !remade_port && ovs.iter().all(|b| present.contains(&b.name)) {
            disable_tx_checksums(sys, plan, &ovs)?;
            return Ok(());
        }
        sys.ovs_delete_lab(&plan.lab).await?;
        repair.note("Open vSwitch bridges".into());
    } else {
        state.record([Object::OvsBridges {
            names: ovs.iter().map(|b| b.name.clone()).collect(),
        }])?;
    }
    let specs: Vec<BridgeSpec> = ovs
        .iter()
        .map(|b| BridgeSpec {
            name: b.name.clone(),
            lab: plan.lab.clone(),
            network: b.network.clone(),
            ports: b.ports.clone(),
        })
        .collect();
    let datapath = sys.ovs_create_bridges(&specs).await?;
    if datapath == Datapath::Netdev {
        // The userspace datapath forwards what the veths hand it as is: with transmit checksum
        // offload on, TCP arrives with bad checksums (ping still works).
        disable_tx_checksums(sys, plan, &ovs)?;
    }
    phase.finish();
    Ok(())
}

fn disable_tx_checksums<S: System>(sys: &S, plan: &Plan, ovs: &[&BridgePlan]) -> Result<()> {
    let mut host = Vec::new();
    let mut per_node: HashMap<usize, Vec<String>> = HashMap::new();
    for v in &plan.veths {
        let Some(bi) = v.bridge else { continue };
        if !ovs.iter().any(|b| b.name == plan.bridges[bi].name) {
            continue;
        }
        for end in [&v.a, &v.b] {
            match end.ns {
                Ns::Host => host.push(end.name.clone()),
                Ns::Node(i) => per_node.entry(i).or_default().push(end.name.clone()),
                Ns::Switch => {}
            }
        }
    }
    sys.disable_tx_checksums(None, &host)?;
    let mut nodes: Vec<_> = per_node.into_iter().collect();
    nodes.sort();
    for (i, names) in nodes {
        sys.disable_tx_checksums(Some(&plan.nodes[i].netns), &names)?;
    }
    Ok(())
}

/// Phase 4: addresses, routes, proxy ARP entries, then the per-interface sysctls (they need the
/// interfaces to exist).
async fn addresses_phase<S: System>(
    sys: &S,
    plan: &Plan,
    ns: &Namespaces<S::Net>,
    progress: &Progress,
    repair: &mut Repair,
) -> Result<()> {
    let mut phase = progress.phase("addresses", plan.nodes.len() as u64);
    if repair.repairing() {
        for (i, n) in plan.nodes.iter().enumerate() {
            let h = ns.handle(Ns::Node(i))?;
            for what in repair_node_config(n, h).await? {
                repair.note(format!("{}: {what}", n.name));
            }
        }
    } else {
        try_join_all(plan.nodes.iter().enumerate().map(|(i, n)| async move {
            let h = ns.handle(Ns::Node(i))?;
            for (idx, a) in &n.addresses {
                h.add_address(*idx, *a)
                    .await
                    .with_context(|| format!("node {}", n.name))?;
            }
            for r in &n.routes {
                h.add_route(r.route.to, r.route.via, r.oif)
                    .await
                    .with_context(|| format!("node {}", n.name))?;
            }
            for (idx, a) in &n.proxy_neighbours {
                h.add_proxy_neighbour(*idx, *a)
                    .await
                    .with_context(|| format!("node {}", n.name))?;
            }
            Ok::<(), Error>(())
        }))
        .await?;
    }
    for n in plan.nodes.iter().filter(|n| !n.iface_sysctls.is_empty()) {
        sys.write_netns_sysctls(&n.netns, &n.iface_sysctls)
            .with_context(|| format!("node {}", n.name))?;
    }
    phase.advance(plan.nodes.len() as u64);
    phase.finish();
    Ok(())
}

/// A node's addresses, routes and proxy ARP entries added again where missing, its interfaces
/// found by name (their indexes may differ from the plan's once made again). Returns what was
/// added.
async fn repair_node_config<N: NetOps>(n: &crate::plan::NodePlan, h: &N) -> Result<Vec<String>> {
    let mut added = Vec::new();
    let index_of = |planned: u32| {
        n.interfaces
            .iter()
            .find(|i| i.index == planned)
            .map(|i| i.name.clone())
    };
    let links = h.links().await?;
    let real = |name: &str| links.iter().find(|l| l.name == name).map(|l| l.index);
    for (idx, a) in &n.addresses {
        let Some(name) = index_of(*idx) else { continue };
        let Some(i) = real(&name) else { continue };
        let has = links
            .iter()
            .any(|l| l.name == name && l.addresses.iter().any(|x| x == &a.to_string()));
        if !has {
            match h.add_address(i, *a).await {
                Ok(()) => added.push(format!("address {a} on {name}")),
                Err(e) if exists_already(&e) => {}
                Err(e) => return Err(e.context(format!("node {}", n.name))),
            }
        }
    }
    let routes = h.routes().await?;
    for r in &n.routes {
        if routes.iter().any(|(to, _, _)| *to == r.route.to) {
            continue;
        }
        let oif = match &r.route.dev {
            Some(dev) => real(dev),
            None => None,
        };
        match h.add_route(r.route.to, r.route.via, oif).await {
            Ok(()) => added.push(format!("route {}", r.route)),
            Err(e) if exists_already(&e) => {}
            Err(e) => return Err(e.context(format!("node {}", n.name))),
        }
    }
    for (idx, a) in &n.proxy_neighbours {
        let Some(i) = index_of(*idx).and_then(|name| real(&name)) else {
            continue;
        };
        match h.add_proxy_neighbour(i, *a).await {
            Ok(()) => {}
            Err(e) if exists_already(&e) => {}
            Err(e) => return Err(e.context(format!("node {}", n.name))),
        }
    }
    Ok(added)
}

/// Phase 5: the uplink. The lab's edge namespace (`tcplab-<lab>`: the switch namespace when
/// the lab has Linux LANs, made here otherwise) takes the gateway's line as the topology's
/// host interface, with its address and the routes into the lab, and MASQUERADEs the lab out
/// of a second line to the host, on a transfer /30 of the lab's own. The host holds only that
/// /30 (no route into the lab, none of its addresses), so any number of labs can be up with
/// an uplink at once. On the host: forwarding on its end of the line and on the uplink (per
/// interface, never the global switch: writing net.ipv4.ip_forward rewrites every
/// interface's setting and accept_redirects too; the uplink's old value is recorded and put
/// back by the last lab's `down`), and the lab's chain that forwards the line out of the
/// uplink and MASQUERADEs it there. Labs choose their /30 and share the uplink's forwarding
/// under one host-wide lock.
async fn uplink_phase<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    host: &S::Net,
    progress: &Progress,
) -> Result<()> {
    let Some(u) = &plan.uplink else {
        return Ok(());
    };
    let mut phase = progress.phase("uplink", 3);
    let _lock = uplink_lock(&sys.state_dir()).await?;
    let host_link = uplink_host_link(&plan.lab);
    let transfer = free_transfer_net(host, &sys.state_dir(), &plan.lab).await?;
    let edge_name = crate::plan::switch_netns(&plan.lab);
    let edge = edge_namespace(sys, plan, state, &edge_name)?;
    state.record([Object::UplinkLine {
        host_link: host_link.clone(),
        transfer,
        edge: edge_name.clone(),
    }])?;
    // The gateway's line: planned with a host end of the lab's own name, moved into the edge.
    let line = plan
        .veths
        .iter()
        .find(|v| v.b.ns == Ns::Host && v.bridge.is_none())
        .ok_or_else(|| Error::Other("the plan has an uplink but no line for it".into()))?;
    sys.move_host_link(&line.b.name, &edge_name, &u.host_interface)
        .await?;
    edge.set_state(&u.host_interface, true).await?;
    let req = VethRequest {
        name: EDGE_TO_HOST.into(),
        index: 0,
        peer: host_link.clone(),
        peer_index: 0,
        mtu: 1500,
        controller: None,
    };
    edge.add_veth(&req, host)
        .await
        .with_context(|| format!("the edge's line to the host {host_link}"))?;
    host.set_alias(&host_link, &host_alias(&plan.lab)).await?;
    phase.advance(1);
    edge_addresses(&edge, u, transfer)
        .await
        .with_context(|| format!("namespace {edge_name}"))?;
    let script = crate::net::firewall::edge_script(EDGE_TO_HOST, &u.masquerade);
    sys.netns_firewall_add(&edge_name, &script)
        .await
        .context("adding the edge's MASQUERADE rules")?;
    phase.advance(1);
    uplink_host_side(sys, plan, state, host, &host_link, transfer).await?;
    phase.advance(1);
    phase.finish();
    Ok(())
}

/// The end of the edge's line to the host, inside the edge namespace.
pub(super) const EDGE_TO_HOST: &str = "tohost";

/// The first and second host addresses of a transfer /30: the host's end and the edge's.
fn transfer_ends(transfer: Ipv4Net) -> (Ipv4Net, Ipv4Net) {
    let base = u32::from(transfer.network());
    let at = |n: u32| Ipv4Net::new((base + n).into(), 30).expect("a /30");
    (at(1), at(2))
}

/// The host end of lab `lab`'s line from its edge: `tlu` and 32 bits of a hash of the lab
/// (unique per lab, ≤ 15 bytes; `up` refuses a name that exists already).
pub(super) fn uplink_host_link(lab: &str) -> String {
    let h = crate::util::fnv1a64(&[lab.as_bytes(), b"uplink-host"]);
    format!("tlu{:08x}", (h >> 32) as u32 ^ h as u32)
}

/// The lab's edge namespace, ready to route: the switch namespace if the lab has one, else a
/// new namespace of the same name, recorded first (refused if it exists unrecorded).
fn edge_namespace<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    name: &str,
) -> Result<S::Net> {
    let forward = [("ipv4.ip_forward".to_string(), "1".to_string())];
    if plan.switch_ns.as_deref() == Some(name) {
        let mut handles = sys.enter_netns(&[(name.to_string(), forward.to_vec())])?;
        return handles
            .pop()
            .ok_or_else(|| Error::Other(format!("no handle on namespace {name}")));
    }
    if sys.netns_exists(name) {
        return Err(Error::Usage(format!(
            "namespace {name} exists already but lab '{}' has no record of it: remove it with `ip netns delete {name}` if it is a leftover",
            plan.lab
        )));
    }
    state.record([Object::Netns { name: name.into() }])?;
    let mut sysctls: Vec<(String, String)> = SWITCH_SYSCTLS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sysctls.extend(forward);
    sys.create_netns(name, &sysctls)
}

/// In the edge: the topology's host address and routes into the lab on the gateway's line, the
/// transfer address on the line to the host and the default route through the host.
async fn edge_addresses<N: NetOps>(
    edge: &N,
    u: &crate::plan::UplinkPlan,
    transfer: Ipv4Net,
) -> Result<()> {
    let (host_end, edge_end) = transfer_ends(transfer);
    let lab_idx = edge
        .link_index(&u.host_interface)
        .await?
        .ok_or_else(|| Error::Other(format!("{} vanished", u.host_interface)))?;
    edge.add_address(lab_idx, u.host_address).await?;
    for r in &u.host_routes {
        edge.add_route(*r, Some(u.gateway), Some(lab_idx)).await?;
    }
    let out_idx = edge
        .link_index(EDGE_TO_HOST)
        .await?
        .ok_or_else(|| Error::Other(format!("{EDGE_TO_HOST} vanished")))?;
    edge.add_address(out_idx, edge_end).await?;
    let default: Ipv4Net = "0.0.0.0/0".parse().expect("a prefix");
    edge.add_route(default, Some(host_end.addr()), Some(out_idx))
        .await
}

/// On the host: the line's address, IPv6 off and forwarding on for it, forwarding on the
/// uplink (shared with other labs), and the lab's chain.
async fn uplink_host_side<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    host: &S::Net,
    host_link: &str,
    transfer: Ipv4Net,
) -> Result<()> {
    let Some(u) = &plan.uplink else {
        return Ok(());
    };
    sys.write_host_sysctl(&format!("ipv6.conf.{host_link}.disable_ipv6"), "1")?;
    sys.write_host_sysctl(&format!("ipv4.conf.{host_link}.forwarding"), "1")?;
    host.set_state(host_link, true)
        .await
        .with_context(|| format!("host {host_link}"))?;
    let idx = host
        .link_index(host_link)
        .await?
        .ok_or_else(|| Error::Other(format!("host interface {host_link} vanished")))?;
    host.add_address(idx, transfer_ends(transfer).0)
        .await
        .with_context(|| format!("host {host_link}"))?;
    share_uplink_forwarding(sys, state, &u.uplink)?;
    let rules =
        crate::net::firewall::UplinkRules::new(&plan.lab, host_link, &u.uplink, &[transfer]);
    state.record([Object::Firewall {
        chain: rules.chain.clone(),
        remove: rules.remove_script(),
    }])?;
    sys.firewall_add(&rules.add_script())
        .await
        .context("adding the uplink's firewall rules")
}

/// Forwarding on the uplink: set, and recorded with the value before the first lab set it
/// (taken over from another lab's record when one holds it already).
fn share_uplink_forwarding<S: System>(sys: &S, state: &mut LabState, uplink: &str) -> Result<()> {
    let key = format!("ipv4.conf.{uplink}.forwarding");
    let now = sys.read_host_sysctl(&key)?;
    let old = match forwarding_held_by_others(&state.dir, &state.lab, &key) {
        Some(old) => old,
        // The host forwards there itself: nothing of ours to put back.
        None if now == "1" => return Ok(()),
        None => now,
    };
    state.record([Object::UplinkForwarding {
        key: key.clone(),
        old,
        new: "1".into(),
    }])?;
    sys.write_host_sysctl(&key, "1")
}

/// The old value another lab's record (in `dir`, not `lab`'s) keeps for host sysctl `key`.
fn forwarding_held_by_others(dir: &Path, lab: &str, key: &str) -> Option<String> {
    labs_in(dir)
        .into_iter()
        .filter(|s| s.lab != lab)
        .flat_map(|s| s.objects)
        .find_map(|o| match o {
            Object::UplinkForwarding { key: k, old, .. }
            | Object::HostSysctl { key: k, old, .. }
                if k == key =>
            {
                Some(old)
            }
            _ => None,
        })
}

/// Every readable lab record in `dir`.
fn labs_in(dir: &Path) -> Vec<LabState> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let lab = name.strip_suffix(".json")?.to_string();
            LabState::load_in(dir, &lab).ok().flatten()
        })
        .collect()
}

/// A transfer /30 for lab `lab`'s line to the host: in 100.64.0.0/10 (then 198.18.0.0/15),
/// starting from a hash of the lab, the first that no host address or route (the default
/// route aside) overlaps and no other lab's record holds.
async fn free_transfer_net<N: NetOps>(host: &N, dir: &Path, lab: &str) -> Result<Ipv4Net> {
    let mut used: Vec<Ipv4Net> = host
        .routes()
        .await?
        .into_iter()
        .map(|(net, _, _)| net)
        .filter(|net| net.prefix_len() > 0)
        .collect();
    for l in host.links().await? {
        used.extend(l.addresses.iter().filter_map(|a| a.parse::<Ipv4Net>().ok()));
    }
    for s in labs_in(dir).into_iter().filter(|s| s.lab != lab) {
        used.extend(s.objects.iter().filter_map(|o| match o {
            Object::UplinkLine { transfer, .. } => Some(*transfer),
            _ => None,
        }));
    }
    let overlaps = |n: &Ipv4Net| {
        used.iter()
            .any(|u| u.contains(&n.network()) || n.contains(&u.network()))
    };
    let start = crate::util::fnv1a64(&[lab.as_bytes()]) as u32;
    for pool in ["100.64.0.0/10", "198.18.0.0/15"] {
        let pool: Ipv4Net = pool.parse().expect("a prefix");
        let count = 1u32 << (30 - pool.prefix_len());
        let base = u32::from(pool.network());
        for i in 0..count {
            let n = Ipv4Net::new((base + ((start.wrapping_add(i)) % count) * 4).into(), 30)
                .expect("a /30");
            if !overlaps(&n) {
                return Ok(n);
            }
        }
    }
    Err(Error::Environment(
        "no free /30 left in 100.64.0.0/10 or 198.18.0.0/15 for the lab's line to the host: free one of them".into(),
    ))
}

/// The host-wide lock under which labs choose their transfer networks and share the uplink's
/// forwarding (an abstract socket, as a lab's lock; waits for whoever holds it).
pub(super) async fn uplink_lock(dir: &Path) -> Result<LabLock> {
    let mut waited = 0;
    loop {
        match LabLock::acquire_in(dir, "+uplinks") {
            Ok(l) => return Ok(l),
            Err(Error::Usage(_)) if waited < 600 => {
                waited += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Hand back the uplink's forwarding for lab `lab` (its `down`): put back `old` unless another
/// lab's record still holds the key, then drop the claim from `lab`'s record on disk so that
/// a lab going down at the same time sees it gone.
pub(super) async fn release_uplink_forwarding<S: System>(
    sys: &S,
    lab: &str,
    key: &str,
    old: &str,
    new: &str,
) -> Result<()> {
    let dir = sys.state_dir();
    let _lock = uplink_lock(&dir).await?;
    // Restore only if nobody changed it since.
    if forwarding_held_by_others(&dir, lab, key).is_none() && sys.read_host_sysctl(key)? == new {
        sys.write_host_sysctl(key, old)?;
    }
    if let Some(mut own) = LabState::load_in(&dir, lab)? {
        let before = own.objects.len();
        own.objects
            .retain(|o| !matches!(o, Object::UplinkForwarding { key: k, .. } if k == key));
        if own.objects.len() != before {
            own.save()?;
        }
    }
    Ok(())
}
