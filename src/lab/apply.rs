//! Applying a plan, phase by phase. Every phase records what it is about to create in the lab's
//! record *before* creating it, so a failure at any step leaves a record that names everything
//! that may exist; [`super::up`] then removes it all.

use super::parts::{
    Namespaces, Repair, SWITCH_SYSCTLS, exists_already, host_alias, quiet_host_ends,
};
use super::uplink::{is_uplink_line, repair_uplink, uplink_phase};
use crate::error::{Context, Error, Result};
use crate::net::ovsdb::{BridgeSpec, Datapath};
use crate::os::{NetOps, System, VethRequest};
use crate::plan::{BridgePlan, Ns, Plan};
use crate::progress::Progress;
use crate::runtime::Runtime;
use crate::state::{LabState, Object};
use crate::topology::NetworkKind;
use futures::future::try_join_all;
use std::collections::HashMap;

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
    ovs_phase(sys, plan, state, &ns.host, progress, &mut fresh).await?;
    addresses_phase(sys, plan, &ns, progress, &mut fresh).await?;
    super::fake_internet::phase(sys, plan, state, &ns.host, &mut fresh).await?;
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
    ovs_phase(sys, plan, state, &ns.host, progress, &mut fix).await?;
    super::fake_internet::phase(sys, plan, state, &ns.host, &mut fix).await?;
    repair_uplink(sys, plan, state, &ns, progress, &mut fix).await?;
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
    host: &S::Net,
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
        .map(|b| super::ovs::bridge_spec(plan, b))
        .collect();
    let datapath = sys.ovs_create_bridges(&specs).await?;
    super::ovs::configure(sys, host, &ovs).await?;
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
