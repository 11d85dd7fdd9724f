//! The real machine: rtnetlink per namespace, /run/netns and /etc/netns files, sysctl files,
//! iptables-restore, OVSDB, SIOCETHTOOL.

use super::{NetOps, RouteEntry, System, VethRequest, link_worker};
use crate::conditions::spec::Conditions;
use crate::error::{Context, Error, Result};
use crate::net::netlink::{LinkInfoView, Netlink};
use crate::net::openflow::{FlowSpec, OpenFlow, PortRef};
use crate::net::ovsdb::{self, BridgeSetup, BridgeSpec, Datapath, OvsError, Ovsdb, Unixctl};
use crate::net::{ethtool, firewall};
use crate::sys;
use ipnet::Ipv4Net;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A namespace: its netlink connection and its file (to create veth peers in it).
#[derive(Clone)]
pub struct NsNet {
    netlink: Netlink,
    file: Arc<File>,
}

impl NsNet {
    /// The netlink connection.
    pub fn netlink(&self) -> &Netlink {
        &self.netlink
    }

    /// Open a handle on the namespace of the calling thread.
    fn open_here(rt: &tokio::runtime::Handle) -> Result<Self> {
        let file = File::open("/proc/thread-self/ns/net").context("opening this namespace")?;
        Ok(NsNet {
            netlink: Netlink::open_here(rt)?,
            file: Arc::new(file),
        })
    }
}

impl NetOps for NsNet {
    async fn links(&self) -> Result<Vec<LinkInfoView>> {
        self.netlink.links().await
    }
    async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        self.netlink.link_index(name).await
    }
    async fn set_up(&self, index: u32) -> Result<()> {
        self.netlink.set_up(index).await
    }
    async fn set_state(&self, name: &str, up: bool) -> Result<()> {
        self.netlink.set_state(name, up).await
    }
    async fn add_bridge(&self, name: &str, index: u32) -> Result<()> {
        self.netlink.add_bridge(name, index).await
    }
    async fn add_veth(&self, req: &VethRequest, peer: &Self) -> Result<()> {
        self.netlink
            .add_veth(
                &req.name,
                req.index,
                &req.peer,
                req.peer_index,
                Some(peer.file.as_raw_fd()),
                req.mtu,
                req.controller,
            )
            .await
    }
    async fn add_address(&self, index: u32, net: Ipv4Net) -> Result<()> {
        self.netlink.add_address(index, net).await
    }
    async fn add_route(&self, to: Ipv4Net, via: Option<Ipv4Addr>, oif: Option<u32>) -> Result<()> {
        self.netlink.add_route(to, via, oif).await
    }
    async fn add_proxy_neighbour(&self, index: u32, addr: Ipv4Addr) -> Result<()> {
        self.netlink.add_proxy_neighbour(index, addr).await
    }
    async fn set_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.netlink.set_alias(name, alias).await
    }
    async fn alias(&self, name: &str) -> Result<Option<String>> {
        self.netlink.alias(name).await
    }
    async fn delete_link(&self, name: &str) -> Result<bool> {
        self.netlink.delete_link(name).await
    }
    async fn routes(&self) -> Result<Vec<RouteEntry>> {
        self.netlink.routes().await
    }
}

/// The machine tcplab runs on. Needs a tokio runtime (current or multi-thread) to drive the
/// netlink connections it opens.
#[derive(Clone)]
pub struct RealSystem {
    rt: tokio::runtime::Handle,
}

impl RealSystem {
    /// The machine, with netlink connections driven by the current tokio runtime.
    pub fn new() -> Self {
        RealSystem {
            rt: tokio::runtime::Handle::current(),
        }
    }
}

impl Default for RealSystem {
    fn default() -> Self {
        Self::new()
    }
}

/// Write sysctls (keys relative to /proc/sys/net) in the calling thread's namespace. Bridge
/// netfilter keys are optional (the module may be absent).
pub fn write_sysctls_here(sysctls: &[(String, String)]) -> Result<()> {
    for (k, v) in sysctls {
        match sys::write_sysctl(k, v) {
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && k.starts_with("bridge.") => {}
            r => r.with_context(|| format!("sysctl net.{k}"))?,
        }
    }
    Ok(())
}

/// An Open vSwitch error as tcplab's: OVS not running is the machine's to fix (exit 2).
pub fn ovs_error(context: &str, e: OvsError) -> Error {
    match e {
        OvsError::NotRunning { .. } | OvsError::Unsupported(_) => {
            Error::Environment(format!("{context}: {e}"))
        }
        other => Error::Ovs {
            context: context.into(),
            message: other.to_string(),
        },
    }
}

/// Open vSwitch's routes out of `bridges` (the lab's), removed; nothing to do without any.
fn delete_ovs_routes(bridges: &[String]) -> Result<()> {
    if bridges.is_empty() {
        return Ok(());
    }
    let fail = |e| ovs_error("removing the lab's tunnel routes", e);
    let mut ctl = Unixctl::connect().map_err(fail)?;
    for (dst, mark, dev) in ctl.marked_routes().map_err(fail)? {
        if bridges.contains(&dev) {
            ctl.del_route(dst, mark).map_err(fail)?;
        }
    }
    Ok(())
}

/// The routes and flows of one bridge.
fn configure_bridge(s: &BridgeSetup) -> Result<()> {
    if !s.routes.is_empty() {
        let fail = |e| ovs_error("adding the tunnels' routes", e);
        let mut ctl = Unixctl::connect().map_err(fail)?;
        for r in &s.routes {
            ctl.add_route(r).map_err(fail)?;
        }
    }
    if s.flows.is_empty() {
        return Ok(());
    }
    let nodes: Vec<&str> = s.ports.keys().map(String::as_str).collect();
    let mut flows = Vec::new();
    for f in &s.flows {
        let spec = FlowSpec::parse(f, &nodes)
            .map_err(|m| Error::Usage(format!("flow '{f}' of bridge {}: {m}", s.bridge)))?;
        flows.push((f.clone(), spec));
    }
    let names: Vec<String> = s.ports.values().cloned().collect();
    let ofports = open_ovsdb()?
        .ofports(&names)
        .map_err(|e| ovs_error("reading OpenFlow port numbers", e))?;
    let resolve = |p: &PortRef| match p {
        PortRef::Number(n) => Some(*n),
        PortRef::Node(n) => s.ports.get(n).and_then(|port| ofports.get(port)).copied(),
    };
    OpenFlow::connect(&s.bridge)?
        .add_flows(&flows, &resolve)
        .map_err(|e| e.context(format!("adding the flows of bridge {}", s.bridge)))
}

fn open_ovsdb() -> Result<Ovsdb> {
    Ovsdb::connect(Path::new(ovsdb::DEFAULT_SOCKET))
        .map_err(|e| ovs_error("connecting to Open vSwitch", e))
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("{what}: task failed: {e}")))?
}

impl System for RealSystem {
    type Net = NsNet;

    fn host(&self) -> Result<NsNet> {
        let rt = self.rt.clone();
        sys::in_netns(Path::new("/proc/self/ns/net"), move || {
            NsNet::open_here(&rt)
        })
    }

    fn create_netns(&self, name: &str, sysctls: &[(String, String)]) -> Result<NsNet> {
        let (rt, sysctls) = (self.rt.clone(), sysctls.to_vec());
        sys::create_netns(name, move || {
            write_sysctls_here(&sysctls)?;
            NsNet::open_here(&rt)
        })
    }

    fn enter_netns(&self, namespaces: &[(String, Vec<(String, String)>)]) -> Result<Vec<NsNet>> {
        let threads: Vec<_> = namespaces
            .iter()
            .map(|(name, sysctls)| {
                let (rt, sysctls) = (self.rt.clone(), sysctls.clone());
                sys::spawn_in_netns(&sys::netns_path(name), move || {
                    write_sysctls_here(&sysctls)?;
                    NsNet::open_here(&rt)
                })
            })
            .collect::<Result<_>>()?;
        threads
            .into_iter()
            .zip(namespaces)
            .map(|(t, (name, _))| t.join().with_context(|| format!("namespace {name}")))
            .collect()
    }

    fn netns_exists(&self, name: &str) -> bool {
        sys::netns_exists(name)
    }

    fn delete_netns(&self, name: &str) -> Result<bool> {
        sys::delete_netns(name)
    }

    fn prepare_netns_dir(&self) -> Result<()> {
        sys::prepare_netns_dir()
    }

    fn etc_dir(&self, netns: &str) -> PathBuf {
        Path::new(sys::ETC_NETNS_DIR).join(netns)
    }

    fn etc_dir_exists(&self, netns: &str) -> bool {
        self.etc_dir(netns).exists()
    }

    fn write_etc_hosts(&self, netns: &str, hosts: &str) -> Result<()> {
        let dir = self.etc_dir(netns);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("hosts"), hosts)
            .with_context(|| format!("writing {}/hosts", dir.display()))
    }

    fn remove_etc_dir(&self, path: &str) -> Result<()> {
        let p = PathBuf::from(path);
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

    fn remove_etc_root_if_empty(&self) {
        let _ = std::fs::remove_dir(sys::ETC_NETNS_DIR);
    }

    fn write_netns_sysctls(&self, netns: &str, sysctls: &[(String, String)]) -> Result<()> {
        let sysctls = sysctls.to_vec();
        sys::in_netns(&sys::netns_path(netns), move || {
            write_sysctls_here(&sysctls)
        })
    }

    fn read_host_sysctl(&self, key: &str) -> Result<String> {
        sys::read_sysctl(key)
    }

    fn write_host_sysctl(&self, key: &str, value: &str) -> Result<()> {
        sys::write_sysctl(key, value)
    }

    async fn firewall_add(&self, script: &str) -> Result<()> {
        let script = script.to_string();
        blocking("firewall", move || firewall::restore(&script)).await
    }

    async fn firewall_remove(&self, script: &str) -> Result<()> {
        let script = script.to_string();
        blocking("firewall", move || firewall::remove(&script)).await
    }

    async fn firewall_chains(&self) -> Result<Vec<String>> {
        blocking("firewall", firewall::tcplab_chains).await
    }

    fn disable_tx_checksums(&self, netns: Option<&str>, ifaces: &[String]) -> Result<()> {
        let ifaces = ifaces.to_vec();
        let work = move || -> Result<()> {
            for n in &ifaces {
                ethtool::disable_tx_checksum(n)
                    .with_context(|| format!("turning off tx checksum offload on {n}"))?;
            }
            Ok(())
        };
        match netns {
            None => work(),
            Some(ns) => sys::in_netns(&sys::netns_path(ns), work),
        }
    }

    async fn ovs_lab_bridges(&self, lab: &str) -> Result<Vec<String>> {
        let lab = lab.to_string();
        blocking("Open vSwitch", move || {
            open_ovsdb()?
                .lab_bridges(&lab)
                .map_err(|e| ovs_error("listing the lab's bridges", e))
        })
        .await
    }

    async fn ovs_create_bridges(&self, specs: &[BridgeSpec]) -> Result<Datapath> {
        let specs = specs.to_vec();
        blocking("Open vSwitch", move || {
            let mut db = open_ovsdb()?;
            let dp = db
                .choose_datapath()
                .map_err(|e| ovs_error("choosing a datapath", e))?;
            db.create_bridges(dp, &specs)
                .map_err(|e| ovs_error("creating the lab's bridges", e))?;
            Ok(dp)
        })
        .await
    }

    async fn ovs_configure(&self, setups: &[BridgeSetup]) -> Result<()> {
        let setups = setups.to_vec();
        blocking("Open vSwitch", move || {
            for s in &setups {
                configure_bridge(s)?;
            }
            Ok(())
        })
        .await
    }

    async fn ovs_delete_lab(&self, lab: &str) -> Result<()> {
        let lab = lab.to_string();
        blocking("Open vSwitch", move || {
            let mut db = match Ovsdb::connect(Path::new(ovsdb::DEFAULT_SOCKET)) {
                Ok(db) => db,
                // No OVS running: its bridges are gone with it (or come back labelled and are
                // found by the next `down`).
                Err(OvsError::NotRunning { .. }) => return Ok(()),
                Err(e) => return Err(ovs_error("connecting to Open vSwitch", e)),
            };
            let bridges = db
                .lab_bridges(&lab)
                .map_err(|e| ovs_error("listing the lab's bridges", e))?;
            let routes = delete_ovs_routes(&bridges);
            let deleted = db
                .delete_lab(&lab)
                .map(|_| ())
                .map_err(|e| ovs_error("removing the lab's bridges", e));
            deleted.and(routes)
        })
        .await
    }

    fn start_link_worker(
        &self,
        netns: &str,
        iface: &str,
        control: &str,
        conditions: &Conditions,
    ) -> Result<()> {
        link_worker::start(&sys::netns_path(netns), iface, control, conditions)
    }

    fn update_link_worker(&self, control: &str, conditions: &Conditions) -> Result<bool> {
        link_worker::update(control, conditions)
    }

    fn link_worker_stats(&self, control: &str) -> Option<crate::conditions::datapath::Stats> {
        link_worker::stats(control)
    }

    fn stop_link_worker(&self, netns: &str, iface: &str, control: &str) -> Result<()> {
        link_worker::stop(&sys::netns_path(netns), iface, control)
    }

    fn state_dir(&self) -> PathBuf {
        crate::state::state_dir()
    }

    async fn move_host_link(&self, name: &str, netns: &str, new_name: &str) -> Result<()> {
        use rtnetlink::LinkUnspec;
        let index = self
            .host()?
            .link_index(name)
            .await?
            .ok_or_else(|| Error::Other(format!("host interface {name} vanished")))?;
        let target = sys::netns_path(netns);
        let file = File::open(&target).with_context(|| format!("opening {}", target.display()))?;
        // A connection of our own in the host's namespace (NsNet's handle knows no moves).
        let rt = self.rt.clone();
        let handle = sys::in_netns(Path::new("/proc/self/ns/net"), move || {
            let _guard = rt.enter();
            let (conn, handle, _) =
                rtnetlink::new_connection().context("opening a netlink socket")?;
            rt.spawn(conn);
            Ok(handle)
        })?;
        let msg = LinkUnspec::new_with_index(index)
            .setns_by_fd(file.as_raw_fd())
            .name(new_name.to_string())
            .build();
        handle
            .link()
            .set(msg)
            .execute()
            .await
            .with_context(|| format!("moving {name} into namespace {netns} as {new_name}"))
    }

    async fn netns_firewall_add(&self, netns: &str, script: &str) -> Result<()> {
        let (path, script) = (sys::netns_path(netns), script.to_string());
        // iptables-restore inherits the namespace of the thread that spawns it.
        blocking("firewall", move || {
            sys::in_netns(&path, move || firewall::restore(&script))
        })
        .await
        .with_context(|| format!("namespace {netns}"))
    }
}
