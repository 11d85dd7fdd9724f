//! Bringing a lab up from its plan, tearing it down from its record, and reading its status.
//!
//! `up` records every object before creating it and rolls back on any failure (or Ctrl-C);
//! `down` walks the record backwards, keeps going past failures, and collects them.

use crate::error::{Context, Error, Result};
use crate::net::Netlink;
use crate::net::ethtool;
use crate::net::firewall::{self, UplinkRules};
use crate::net::ovsdb::{self, BridgeSpec, Datapath, OvsError, Ovsdb};
use crate::plan::{Ns, Plan, PlanOptions};
use crate::progress::Progress;
use crate::runtime::Runtime;
use crate::state::{LabLock, LabState, Object};
use crate::sys;
use crate::topology::{NetworkKind, Topology};
use futures::future::try_join_all;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

/// Sysctls of the switch namespace: no IPv6 chatter from the bridges, and bridged frames never
/// handed to (this namespace's empty) iptables.
const SWITCH_SYSCTLS: &[(&str, &str)] = &[
    ("ipv6.conf.all.disable_ipv6", "1"),
    ("ipv6.conf.default.disable_ipv6", "1"),
    ("bridge.bridge-nf-call-iptables", "0"),
    ("bridge.bridge-nf-call-arptables", "0"),
    ("bridge.bridge-nf-call-ip6tables", "0"),
];

/// What `up` needs besides the runtime.
pub struct UpRequest<'a> {
    /// The validated topology.
    pub topology: &'a Topology,
    /// Lab name.
    pub lab: String,
    /// Where the topology came from (for the record).
    pub topology_file: String,
    /// Its text (for the record).
    pub topology_text: String,
    /// Uplink and switch override.
    pub options: PlanOptions,
}

/// Bring a lab up. On failure everything already made is removed again.
pub async fn up<R: Runtime>(runtime: &R, req: UpRequest<'_>, progress: &Progress) -> Result<Plan> {
    let plan = crate::plan::plan(req.topology, &req.lab, &req.options);
    let _lock = LabLock::acquire(&req.lab)?;
    if let Some(st) = LabState::load(&req.lab)? {
        return Err(Error::Usage(if st.complete {
            format!(
                "lab '{}' is already up: `tcplab status` shows it, `tcplab down` removes it",
                req.lab
            )
        } else {
            format!(
                "lab '{}' is partly up from an earlier `up` that did not finish: run `tcplab down` first",
                req.lab
            )
        }));
    }
    let rt = tokio::runtime::Handle::current();
    let host = Netlink::open_here(&rt)?;
    precheck(&plan, &host).await?;
    sys::prepare_netns_dir()?;

    let mut state = LabState {
        lab: req.lab.clone(),
        runtime: runtime.kind().as_str().to_string(),
        topology_file: req.topology_file,
        topology_text: req.topology_text,
        uplink: req.options.uplink.clone(),
        switch: req.options.switch_override.map(|k| k.as_str().to_string()),
        complete: false,
        pid: std::process::id(),
        objects: Vec::new(),
    };
    state.save()?;
    // Signal handlers before anything is created, so a Ctrl-C at any point rolls back.
    let stop = interrupted()?;
    let mut plan = plan;
    let result = tokio::select! {
        r = apply(runtime, &mut plan, &mut state, &host, progress) => r,
        _ = stop => Err(Error::Usage("interrupted".into())),
    };
    match result {
        Ok(()) => {
            state.complete = true;
            state.save()?;
            Ok(plan)
        }
        Err(e) => {
            progress.note("up failed: removing what it made");
            // The state on disk may hold more than `state` if apply was cut short; reload it.
            let mut recorded = LabState::load(&req.lab)?.unwrap_or(state);
            match teardown(
                runtime,
                &mut recorded,
                &host,
                &Progress::with_mode(crate::progress::Mode::Quiet),
            )
            .await
            {
                // Requests a runtime was still serving may create things after the rollback.
                Ok(()) => match runtime.sweep(&req.lab).await {
                    Ok(_) => Err(e),
                    Err(e2) => Err(Error::Other(format!(
                        "{e}; rollback also failed: {e2} (run `tcplab down`)"
                    ))),
                },
                Err(e2) => Err(Error::Other(format!(
                    "{e}; rollback also failed: {e2} (run `tcplab down`)"
                ))),
            }
        }
    }
}

/// SIGINT or SIGTERM: the handlers are installed now, the future resolves on the signal.
fn interrupted() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Error::io("catching SIGINT", e))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("catching SIGTERM", e))?;
    Ok(async move {
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    })
}

/// Everything that can be checked before anything is created.
async fn precheck(plan: &Plan, host: &Netlink) -> Result<()> {
    let mut names: Vec<&str> = plan.nodes.iter().map(|n| n.netns.as_str()).collect();
    names.extend(plan.switch_ns.as_deref());
    for name in names {
        if sys::netns_exists(name) {
            return Err(Error::Usage(format!(
                "namespace {name} exists already but lab '{}' has no record: remove it with `ip netns delete {name}` if it is a leftover",
                plan.lab
            )));
        }
    }
    for n in &plan.nodes {
        let dir = Path::new(sys::ETC_NETNS_DIR).join(&n.netns);
        if dir.exists() {
            return Err(Error::Usage(format!(
                "{} exists already: remove it if it is a leftover of lab '{}'",
                dir.display(),
                plan.lab
            )));
        }
    }
    if plan.bridges.iter().any(|b| b.kind == NetworkKind::Ovs) {
        // The one place a missing OVS matters: say the alternative too.
        let mut db = open_ovsdb().map_err(|e| match e {
            Error::Ovs {
                context,
                source: OvsError::NotRunning { detail },
            } => Error::Environment(format!(
                "{context}: {}; or make the LANs Linux bridges with --switch linux",
                OvsError::NotRunning { detail }
            )),
            other => other,
        })?;
        for b in plan.bridges.iter().filter(|b| b.kind == NetworkKind::Ovs) {
            if host.link_index(&b.name).await?.is_some()
                || db
                    .lab_bridges(&plan.lab)
                    .map(|v| !v.is_empty())
                    .unwrap_or(false)
            {
                return Err(Error::Usage(format!(
                    "Open vSwitch bridge {} (or another bridge of lab '{}') exists already: run `tcplab --lab {} down` first",
                    b.name, plan.lab, plan.lab
                )));
            }
        }
    }
    if let Some(u) = &plan.uplink {
        if host.link_index(&u.uplink).await?.is_none() {
            let names: Vec<String> = host
                .links()
                .await?
                .into_iter()
                .map(|l| l.name)
                .filter(|n| n != "lo")
                .collect();
            return Err(Error::Usage(format!(
                "uplink interface '{}' does not exist (host interfaces: {})",
                u.uplink,
                names.join(", ")
            )));
        }
        if u.uplink == u.host_interface {
            return Err(Error::Usage(format!(
                "uplink '{}' is the lab's own line to the host",
                u.uplink
            )));
        }
        if host.link_index(&u.host_interface).await?.is_some() {
            return Err(Error::Usage(format!(
                "host interface '{}' exists already (another lab's uplink?): only one lab at a time can have an uplink",
                u.host_interface
            )));
        }
        let routes = host.routes().await?;
        for r in &u.host_routes {
            if let Some((net, _, _)) = routes.iter().find(|(net, _, _)| net == r) {
                return Err(Error::Usage(format!(
                    "the host already has a route to {net}: is another lab up with an uplink?"
                )));
            }
        }
    }
    Ok(())
}

/// Netlink handles of the lab's namespaces, and their file descriptors for moving veth peers.
struct Namespaces {
    host: Netlink,
    switch: Option<Netlink>,
    nodes: Vec<Netlink>,
    files: HashMap<Ns, File>,
}

impl Namespaces {
    fn handle(&self, ns: Ns) -> &Netlink {
        match ns {
            Ns::Host => &self.host,
            Ns::Switch => self.switch.as_ref().expect("switch namespace planned"),
            Ns::Node(i) => &self.nodes[i],
        }
    }
    fn fd(&self, ns: Ns) -> RawFd {
        self.files[&ns].as_raw_fd()
    }
}

/// The alias tcplab gives the interfaces it makes in the host's namespace.
pub fn host_alias(lab: &str) -> String {
    format!("tcplab:{lab}")
}

/// Write sysctls (keys relative to /proc/sys/net) in the calling thread's namespace.
fn write_sysctls(sysctls: &[(String, String)]) -> Result<()> {
    for (k, v) in sysctls {
        match sys::write_sysctl(k, v) {
            // Optional keys (bridge netfilter may be absent) are skipped.
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && k.starts_with("bridge.") => {}
            r => r.with_context(|| format!("sysctl net.{k}"))?,
        }
    }
    Ok(())
}

async fn apply<R: Runtime>(
    runtime: &R,
    plan: &mut Plan,
    state: &mut LabState,
    host: &Netlink,
    progress: &Progress,
) -> Result<()> {
    let rt = tokio::runtime::Handle::current();

    // Phase 1: namespaces (or containers), their sysctls, a netlink socket in each.
    let mut phase = progress.phase("nodes", plan.nodes.len() as u64);
    let mut objects: Vec<Object> = Vec::new();
    objects.extend(
        plan.switch_ns
            .iter()
            .map(|s| Object::Netns { name: s.clone() }),
    );
    objects.extend(runtime.objects(plan));
    objects.extend(plan.nodes.iter().map(|n| {
        Object::EtcDir {
            path: Path::new(sys::ETC_NETNS_DIR)
                .join(&n.netns)
                .display()
                .to_string(),
        }
    }));
    state.record(objects)?;
    for n in &plan.nodes {
        let dir = Path::new(sys::ETC_NETNS_DIR).join(&n.netns);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("hosts"), &n.hosts)
            .with_context(|| format!("writing {}/hosts", dir.display()))?;
    }
    let switch_thread = match &plan.switch_ns {
        Some(name) => {
            let rt2 = rt.clone();
            let sysctls: Vec<(String, String)> = SWITCH_SYSCTLS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Some(sys::spawn_create_netns(name, move || {
                write_sysctls(&sysctls)?;
                Netlink::open_here(&rt2)
            })?)
        }
        None => None,
    };
    let created = runtime.create_nodes(plan).await;
    let switch = switch_thread.map(|t| t.join()).transpose()?;
    created?;
    let threads: Vec<_> = plan
        .nodes
        .iter()
        .map(|n| {
            let rt2 = rt.clone();
            let sysctls = n.sysctls.clone();
            sys::spawn_in_netns(&sys::netns_path(&n.netns), move || {
                write_sysctls(&sysctls)?;
                Netlink::open_here(&rt2)
            })
        })
        .collect::<Result<_>>()?;
    let mut nodes = Vec::new();
    for (t, n) in threads.into_iter().zip(&plan.nodes) {
        nodes.push(t.join().with_context(|| format!("node {}", n.name))?);
    }
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
    // loaded), move the plan's numbers past them.
    for (i, h) in nodes.iter().enumerate() {
        let max = h.links().await?.iter().map(|l| l.index).max().unwrap_or(1);
        if max > 1 {
            plan.shift_indexes(Ns::Node(i), max - 1);
        }
    }
    if let Some(sw) = &switch {
        let max = sw.links().await?.iter().map(|l| l.index).max().unwrap_or(1);
        if max > 1 {
            plan.shift_indexes(Ns::Switch, max - 1);
        }
    }
    let plan: &Plan = plan;

    let mut files = HashMap::new();
    files.insert(
        Ns::Host,
        File::open("/proc/self/ns/net").context("opening the host namespace")?,
    );
    if let Some(sw) = &plan.switch_ns {
        files.insert(
            Ns::Switch,
            File::open(sys::netns_path(sw)).with_context(|| format!("opening namespace {sw}"))?,
        );
    }
    for (i, n) in plan.nodes.iter().enumerate() {
        files.insert(
            Ns::Node(i),
            File::open(sys::netns_path(&n.netns))
                .with_context(|| format!("opening namespace {}", n.netns))?,
        );
    }
    let ns = Namespaces {
        host: host.clone(),
        switch,
        nodes,
        files,
    };

    // Phase 2: bridges and wires.
    let mut phase = progress.phase("links", (plan.bridges.len() + plan.veths.len()) as u64);
    for b in plan.bridges.iter().filter(|b| b.kind == NetworkKind::Linux) {
        ns.handle(Ns::Switch)
            .add_bridge(&b.name, b.index)
            .await
            .with_context(|| format!("network {}", b.network))?;
        phase.advance(1);
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
    try_join_all(plan.veths.iter().map(|v| {
        let ns = &ns;
        async move {
            let controller = v
                .bridge
                .map(|bi| &plan.bridges[bi])
                .filter(|b| b.kind == NetworkKind::Linux && v.a.ns == Ns::Switch)
                .map(|b| b.index);
            ns.handle(v.a.ns)
                .add_veth(
                    &v.a.name,
                    v.a.index,
                    &v.b.name,
                    v.b.index,
                    Some(ns.fd(v.b.ns)),
                    v.mtu,
                    controller,
                )
                .await
                .with_context(|| v.label.clone())?;
            let peer = ns.handle(v.b.ns);
            if v.b.index != 0 {
                peer.set_up(v.b.index).await
            } else {
                peer.set_state(&v.b.name, true).await
            }
            .with_context(|| v.label.clone())
        }
    }))
    .await?;
    phase.advance(plan.veths.len() as u64);
    // Tag what lives in the host's namespace, so that only this lab's are ever deleted.
    for v in &plan.veths {
        for end in [&v.a, &v.b] {
            if end.ns == Ns::Host {
                host.set_alias(&end.name, &host_alias(&plan.lab)).await?;
            }
        }
    }
    let ovs: Vec<&crate::plan::BridgePlan> = plan
        .bridges
        .iter()
        .filter(|b| b.kind == NetworkKind::Ovs)
        .collect();
    if !ovs.is_empty() {
        phase.message("Open vSwitch");
        state.record([Object::OvsBridges {
            names: ovs.iter().map(|b| b.name.clone()).collect(),
        }])?;
        let specs: Vec<BridgeSpec> = ovs
            .iter()
            .map(|b| BridgeSpec {
                name: b.name.clone(),
                lab: plan.lab.clone(),
                network: b.network.clone(),
                ports: b.ports.clone(),
            })
            .collect();
        let datapath = tokio::task::spawn_blocking(move || -> Result<Datapath> {
            let mut db = open_ovsdb()?;
            let dp = db
                .choose_datapath()
                .map_err(|e| ovs_err("choosing a datapath", e))?;
            db.create_bridges(dp, &specs)
                .map_err(|e| ovs_err("creating the lab's bridges", e))?;
            Ok(dp)
        })
        .await
        .map_err(|e| Error::Other(format!("OVS task failed: {e}")))??;
        if datapath == Datapath::Netdev {
            // The userspace datapath forwards what the veths hand it as is: with transmit
            // checksum offload on, TCP arrives with bad checksums (ping still works).
            disable_tx_checksums(plan, &ovs)?;
        }
    }
    phase.finish();

    // Phase 3: addresses, routes, proxy ARP.
    let mut phase = progress.phase("addresses", plan.nodes.len() as u64);
    try_join_all(plan.nodes.iter().enumerate().map(|(i, n)| {
        let h = ns.handle(Ns::Node(i));
        async move {
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
        }
    }))
    .await?;
    let threads: Vec<_> = plan
        .nodes
        .iter()
        .filter(|n| !n.iface_sysctls.is_empty())
        .map(|n| {
            let sysctls = n.iface_sysctls.clone();
            let name = n.name.clone();
            sys::spawn_in_netns(&sys::netns_path(&n.netns), move || {
                write_sysctls(&sysctls).with_context(|| format!("node {name}"))
            })
        })
        .collect::<Result<_>>()?;
    for t in threads {
        t.join()?;
    }
    phase.advance(plan.nodes.len() as u64);
    phase.finish();

    // Phase 4: the host side of the uplink.
    if let Some(u) = &plan.uplink {
        let mut phase = progress.phase("uplink", 3);
        let idx = host
            .link_index(&u.host_interface)
            .await?
            .ok_or_else(|| Error::Other(format!("host interface {} vanished", u.host_interface)))?;
        host.add_address(idx, u.host_address)
            .await
            .with_context(|| format!("host {}", u.host_interface))?;
        for r in &u.host_routes {
            host.add_route(*r, Some(u.gateway), Some(idx))
                .await
                .with_context(|| format!("host {}", u.host_interface))?;
        }
        phase.advance(1);
        // Forwarding per interface, never the global switch: writing net.ipv4.ip_forward
        // rewrites every interface's setting and accept_redirects too. IPv4 forwards what
        // arrives on an interface whose `forwarding` is 1: the lab's line (it goes with the
        // line) and the uplink (recorded, restored by `down`).
        sys::write_sysctl(&format!("ipv4.conf.{}.forwarding", u.host_interface), "1")?;
        let key = format!("ipv4.conf.{}.forwarding", u.uplink);
        let old = sys::read_sysctl(&key)?;
        if old != "1" {
            state.record([Object::HostSysctl {
                key: key.clone(),
                old,
                new: "1".into(),
            }])?;
            sys::write_sysctl(&key, "1")?;
        }
        phase.advance(1);
        let rules = UplinkRules::new(&plan.lab, &u.host_interface, &u.uplink, &u.masquerade);
        state.record([Object::Firewall {
            chain: rules.chain.clone(),
            remove: rules.remove_script(),
        }])?;
        firewall::restore(&rules.add_script()).context("adding the uplink's firewall rules")?;
        phase.advance(1);
        phase.finish();
    }
    Ok(())
}

fn ovs_err(context: &str, source: OvsError) -> Error {
    Error::Ovs {
        context: context.into(),
        source,
    }
}

fn open_ovsdb() -> Result<Ovsdb> {
    Ovsdb::connect(Path::new(ovsdb::DEFAULT_SOCKET))
        .map_err(|e| ovs_err("connecting to Open vSwitch", e))
}

/// Transmit checksum offload off on both ends of every OVS port: host ends from here (the host
/// namespace), node ends from a thread inside each node.
fn disable_tx_checksums(plan: &Plan, ovs: &[&crate::plan::BridgePlan]) -> Result<()> {
    let mut per_node: HashMap<usize, Vec<String>> = HashMap::new();
    for v in &plan.veths {
        let Some(bi) = v.bridge else { continue };
        if !ovs.iter().any(|b| b.name == plan.bridges[bi].name) {
            continue;
        }
        for end in [&v.a, &v.b] {
            match end.ns {
                Ns::Host => ethtool::disable_tx_checksum(&end.name)
                    .with_context(|| format!("turning off tx checksum offload on {}", end.name))?,
                Ns::Node(i) => per_node.entry(i).or_default().push(end.name.clone()),
                Ns::Switch => {}
            }
        }
    }
    let threads: Vec<_> = per_node
        .into_iter()
        .map(|(i, names)| {
            sys::spawn_in_netns(&sys::netns_path(&plan.nodes[i].netns), move || {
                for n in &names {
                    ethtool::disable_tx_checksum(n)
                        .with_context(|| format!("turning off tx checksum offload on {n}"))?;
                }
                Ok(())
            })
        })
        .collect::<Result<_>>()?;
    for t in threads {
        t.join()?;
    }
    Ok(())
}

/// Remove everything recorded in `state`, newest first, continuing past failures. The state file
/// is removed when everything is gone; otherwise it keeps what is left and the errors are returned.
pub async fn teardown<R: Runtime>(
    runtime: &R,
    state: &mut LabState,
    host: &Netlink,
    progress: &Progress,
) -> Result<()> {
    let mut phase = progress.phase("down", state.objects.len() as u64);
    let mut errors = Vec::new();
    let mut left = Vec::new();
    let objects = std::mem::take(&mut state.objects);
    // No object depends on another's removal (a namespace outlives its container while linked,
    // a veth dies with either namespace), so they go many at once.
    let lab = state.lab.as_str();
    // Containers and OVS bridges first (together): deleting the OVS ports' veths while
    // ovs-vswitchd still polls them, and the containers' namespaces at the same time, makes
    // everything contend for the kernel's rtnl lock; once the bridges are gone the veths go fast.
    // (Without containers, one stage is faster.)
    let staged = objects
        .iter()
        .any(|o| matches!(o, Object::Container { .. }));
    let first =
        |o: &&Object| staged && matches!(o, Object::Container { .. } | Object::OvsBridges { .. });
    let (early, late): (Vec<&Object>, Vec<&Object>) = objects.iter().rev().partition(first);
    let mut results = futures::future::join_all(
        early
            .iter()
            .map(|obj| remove_object(runtime, obj, host, lab)),
    )
    .await;
    results.extend(
        futures::future::join_all(
            late.iter()
                .map(|obj| remove_object(runtime, obj, host, lab)),
        )
        .await,
    );
    for (obj, r) in early.iter().chain(late.iter()).zip(results) {
        if let Err(e) = r {
            errors.push(e);
            left.push((*obj).clone());
        }
    }
    phase.advance(objects.len() as u64);
    phase.finish();
    if errors.is_empty() {
        // /etc/netns is iproute2's; remove it only if tcplab's directories were all it held.
        let _ = std::fs::remove_dir(sys::ETC_NETNS_DIR);
        LabState::remove(&state.lab)
    } else {
        left.reverse();
        state.objects = left;
        state.save()?;
        Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            Error::Many(errors)
        })
    }
}

async fn remove_object<R: Runtime>(
    runtime: &R,
    obj: &Object,
    host: &Netlink,
    lab: &str,
) -> Result<()> {
    match obj {
        Object::Netns { name } => sys::delete_netns(name).map(|_| ()),
        Object::EtcDir { path } => {
            let p = PathBuf::from(path);
            // Only ever a tcplab directory under /etc/netns.
            let ours = p.parent() == Some(Path::new(sys::ETC_NETNS_DIR))
                && p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with("tcplab-"));
            if !ours {
                return Err(Error::Other(format!(
                    "refusing to remove {path}: not a tcplab directory"
                )));
            }
            match std::fs::remove_dir_all(&p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(format!("removing {path}"), e)),
            }
        }
        Object::HostLink { name } => {
            // Only an interface tagged as this lab's: a name reused by another lab (or by
            // anyone) after this one's vanished is left alone.
            if host.alias(name).await?.as_deref() == Some(host_alias(lab).as_str()) {
                host.delete_link(name).await?;
            }
            Ok(())
        }
        Object::Firewall { remove, chain } => {
            let (script, chain) = (remove.clone(), chain.clone());
            tokio::task::spawn_blocking(move || {
                firewall::remove(&script).with_context(|| format!("removing chain {chain}"))
            })
            .await
            .map_err(|e| Error::Other(format!("firewall task failed: {e}")))?
        }
        Object::HostSysctl { key, old, new } => {
            // Restore only if nobody changed it since.
            if sys::read_sysctl(key)? == *new {
                sys::write_sysctl(key, old)
            } else {
                Ok(())
            }
        }
        Object::Container { .. } => runtime.remove(obj).await.map(|_| ()),
        Object::OvsBridges { .. } => {
            let lab = lab.to_string();
            tokio::task::spawn_blocking(move || -> Result<()> {
                let mut db = match Ovsdb::connect(Path::new(ovsdb::DEFAULT_SOCKET)) {
                    Ok(db) => db,
                    // No OVS running: its bridges are gone with it (or come back labelled and
                    // are found by the next `down`).
                    Err(OvsError::NotRunning { .. }) => return Ok(()),
                    Err(e) => return Err(ovs_err("connecting to Open vSwitch", e)),
                };
                db.delete_lab(&lab)
                    .map(|_| ())
                    .map_err(|e| ovs_err("removing the lab's bridges", e))
            })
            .await
            .map_err(|e| Error::Other(format!("OVS task failed: {e}")))?
        }
    }
}

/// Status of one node.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Namespace name.
    pub netns: String,
    /// `running` or `missing`.
    pub state: String,
    /// Its interfaces (not lo).
    pub interfaces: Vec<crate::net::netlink::LinkInfoView>,
}

/// Status of a lab.
#[derive(Debug, Serialize)]
pub struct LabStatus {
    /// Lab name.
    pub lab: String,
    /// Runtime.
    pub runtime: String,
    /// Whether `up` finished.
    pub complete: bool,
    /// Uplink interface.
    pub uplink: Option<String>,
    /// Nodes.
    pub nodes: Vec<NodeStatus>,
}

/// Read the status of a lab that has a record.
pub async fn status(state: &LabState, topo: &Topology) -> Result<LabStatus> {
    let rt = tokio::runtime::Handle::current();
    let mut nodes = Vec::new();
    for n in &topo.nodes {
        let netns = crate::plan::node_netns(&state.lab, &n.name);
        let path = sys::netns_path(&netns);
        let (st, interfaces) = if path.exists() {
            let rt2 = rt.clone();
            match sys::in_netns(&path, move || Netlink::open_here(&rt2)) {
                Ok(h) => {
                    let links = h
                        .links()
                        .await?
                        .into_iter()
                        .filter(|l| l.name != "lo")
                        .collect();
                    ("running".to_string(), links)
                }
                Err(_) => ("missing".to_string(), Vec::new()),
            }
        } else {
            ("missing".to_string(), Vec::new())
        };
        nodes.push(NodeStatus {
            name: n.name.clone(),
            netns,
            state: st,
            interfaces,
        });
    }
    Ok(LabStatus {
        lab: state.lab.clone(),
        runtime: state.runtime.clone(),
        complete: state.complete,
        uplink: state.uplink.clone(),
        nodes,
    })
}

/// Objects of lab `lab` that exist without a record (its state file was lost, e.g. after a
/// reboot, while containers survive): containers labelled as the lab's, and namespaces with the
/// lab's exact names. Returned as a record that `teardown` can remove.
pub async fn find_unrecorded(
    lab: &str,
    topo: &Topology,
    topology_file: &str,
    topology_text: &str,
) -> LabState {
    let mut objects = Vec::new();
    let mut runtime = "netns";
    if let Ok(docker) = crate::runtime::docker::DockerRuntime::connect("").await
        && let Ok(names) = docker.lab_containers(lab).await
    {
        if !names.is_empty() {
            runtime = "docker";
        }
        objects.extend(names.into_iter().map(|name| Object::Container { name }));
    }
    if let Ok(mut db) = Ovsdb::connect(Path::new(ovsdb::DEFAULT_SOCKET))
        && let Ok(names) = db.lab_bridges(lab)
        && !names.is_empty()
    {
        objects.push(Object::OvsBridges { names });
    }
    // The lab's OVS ports in the host namespace (their names are the lab's own): they vanish
    // with the node namespaces, but not while something still holds one.
    let ovs_plan = crate::plan::plan(
        topo,
        lab,
        &PlanOptions {
            uplink: None,
            switch_override: Some(NetworkKind::Ovs),
        },
    );
    if let Ok(host) = Netlink::open_here(&tokio::runtime::Handle::current()) {
        for v in &ovs_plan.veths {
            if v.b.ns == Ns::Host
                && host.alias(&v.b.name).await.ok().flatten().as_deref()
                    == Some(host_alias(lab).as_str())
            {
                objects.push(Object::HostLink {
                    name: v.b.name.clone(),
                });
            }
        }
    }
    let mut names: Vec<String> = topo
        .nodes
        .iter()
        .map(|n| crate::plan::node_netns(lab, &n.name))
        .collect();
    names.push(crate::plan::switch_netns(lab));
    for name in names {
        if sys::netns_exists(&name) {
            objects.push(Object::Netns { name: name.clone() });
        }
        let dir = Path::new(sys::ETC_NETNS_DIR).join(&name);
        if dir.exists() {
            objects.push(Object::EtcDir {
                path: dir.display().to_string(),
            });
        }
    }
    LabState {
        lab: lab.to_string(),
        runtime: runtime.into(),
        topology_file: topology_file.to_string(),
        topology_text: topology_text.to_string(),
        uplink: None,
        switch: None,
        complete: false,
        pid: std::process::id(),
        objects,
    }
}

/// Set interface `iface` of `node` up or down. Taking an interface down makes the kernel drop
/// every route through it, static ones included; bringing it up puts the node's planned routes
/// back (those that still exist are left as they are).
pub async fn set_link(plan: &Plan, node: &str, iface: &str, up: bool) -> Result<()> {
    let n = plan
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| Error::Usage(format!("unknown node '{node}'")))?;
    let rt = tokio::runtime::Handle::current();
    let h = sys::in_netns(&sys::netns_path(&n.netns), move || Netlink::open_here(&rt))
        .with_context(|| format!("node {node}"))?;
    h.set_state(iface, up)
        .await
        .with_context(|| format!("node {node}"))?;
    if up {
        // Kernel numbers may differ from the plan's: resolve interfaces by name.
        let mut left = Vec::new();
        let benign = |m: &str| {
            m.contains("file exists") || m.contains("network is down") || m.contains("unreachable")
        };
        for r in &n.routes {
            let oif = match &r.route.dev {
                Some(dev) => h.link_index(dev).await?,
                None => None,
            };
            match h.add_route(r.route.to, r.route.via, oif).await {
                Ok(()) => {}
                // Present already, or through another interface that is still down.
                Err(Error::Netlink { message, .. }) if benign(&message) => {}
                Err(e) => left.push(format!("route {}: {e}", r.route)),
            }
        }
        // Taking an interface down also drops its proxy ARP entries.
        for (idx, addr) in &n.proxy_neighbours {
            let Some(name) = n
                .interfaces
                .iter()
                .find(|i| i.index == *idx)
                .map(|i| i.name.clone())
            else {
                continue;
            };
            if name != iface {
                continue;
            }
            let Some(real) = h.link_index(&name).await? else {
                continue;
            };
            match h.add_proxy_neighbour(real, *addr).await {
                Ok(()) => {}
                Err(Error::Netlink { message, .. }) if benign(&message) => {}
                Err(e) => left.push(format!("proxy ARP for {addr}: {e}")),
            }
        }
        if !left.is_empty() {
            return Err(Error::Other(format!(
                "node {node}: {iface} is up but not restored: {}",
                left.join("; ")
            )));
        }
    }
    Ok(())
}

/// After tearing down a docker lab whose `up` was killed: the engine may still be finishing that
/// `up`'s create and start requests, so containers can appear after `down` removed what it knew.
/// Remove every container labelled as the lab's until none has been seen for a second (at most
/// 15 s). Returns how many were removed.
pub async fn sweep_late_containers(
    docker: &crate::runtime::docker::DockerRuntime,
    lab: &str,
) -> Result<usize> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut quiet_since = std::time::Instant::now();
    let mut removed = 0;
    while std::time::Instant::now() < deadline {
        let names = docker.lab_containers(lab).await?;
        if names.is_empty() {
            if quiet_since.elapsed() >= std::time::Duration::from_secs(1) {
                break;
            }
        } else {
            for name in &names {
                docker.force_remove(name).await?;
                let _ = sys::delete_netns(name);
                removed += 1;
            }
            quiet_since = std::time::Instant::now();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(removed)
}
