//! A recording fake of the machine for unit tests: a small model of namespaces, links (veth
//! pairs die together), addresses, routes, files, sysctls, firewall chains, OVS bridges and
//! containers, that counts every change it is asked to make and can fail any chosen one.
//!
//! Tests compare [`World`] snapshots: after a rolled-back `up` or a `down` the world must be
//! exactly as before, bystanders (another lab's objects, the host's own) included.

use super::{NetOps, RouteEntry, System, VethRequest};
use crate::conditions::spec::Conditions;
use crate::error::{Error, Result};
use crate::net::netlink::LinkInfoView;
use crate::net::ovsdb::{BridgeSetup, BridgeSpec, Datapath};
use crate::plan::Plan;
use crate::runtime::{CmdOutput, Runtime, RuntimeKind};
use crate::state::Object;
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The namespace name the fake uses for the host's.
pub const HOST: &str = "<host>";

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeLink {
    pub index: u32,
    pub up: bool,
    pub alias: Option<String>,
    /// The other end of a veth pair: (namespace, name).
    pub peer: Option<(String, String)>,
}

/// Everything the fake machine holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct World {
    pub namespaces: BTreeSet<String>,
    pub links: BTreeMap<(String, String), FakeLink>,
    pub addresses: BTreeSet<(String, u32, Ipv4Net)>,
    pub routes: BTreeSet<(String, Ipv4Net, Option<Ipv4Addr>, Option<u32>)>,
    pub proxies: BTreeSet<(String, u32, Ipv4Addr)>,
    pub etc_dirs: BTreeSet<String>,
    pub host_sysctls: BTreeMap<String, String>,
    pub firewall_chains: BTreeSet<String>,
    pub ovs_bridges: BTreeMap<String, String>,
    /// Open vSwitch's routes: (output bridge, destination/mark).
    pub ovs_routes: std::collections::BTreeSet<(String, String)>,
    pub containers: BTreeSet<String>,
    /// Conditions workers by control socket: (namespace, interface, conditions).
    pub workers: BTreeMap<String, (String, String, Conditions)>,
    /// Firewall rules inside namespaces tcplab made (they die with the namespace).
    pub netns_firewalls: BTreeMap<String, String>,
}

impl World {
    /// A host with lo and an uplink candidate `eth9`, its forwarding off, a default route, and
    /// bystanders tcplab must never touch: another lab's namespace and host port, a container.
    pub fn host() -> World {
        let mut w = World::default();
        w.namespaces.insert(HOST.into());
        w.namespaces.insert("tcplab-other-aix".into());
        for (i, name) in [(1, "lo"), (2, "eth9")] {
            w.links.insert(
                (HOST.into(), name.into()),
                FakeLink {
                    index: i,
                    up: true,
                    alias: None,
                    peer: None,
                },
            );
        }
        w.links.insert(
            (HOST.into(), "tl0000p0".into()),
            FakeLink {
                index: 3,
                up: true,
                alias: Some("tcplab:other".into()),
                peer: None,
            },
        );
        w.routes.insert((
            HOST.into(),
            "0.0.0.0/0".parse().unwrap(),
            Some("192.0.2.1".parse().unwrap()),
            Some(2),
        ));
        w.host_sysctls
            .insert("ipv4.conf.eth9.forwarding".into(), "0".into());
        w.containers.insert("someone-elses".into());
        w
    }

    fn remove_netns(&mut self, ns: &str) {
        self.namespaces.remove(ns);
        let dead: Vec<(String, String)> = self
            .links
            .keys()
            .filter(|(n, _)| n == ns)
            .cloned()
            .collect();
        for key in dead {
            self.remove_link(&key);
        }
        self.addresses.retain(|(n, _, _)| n != ns);
        self.routes.retain(|(n, ..)| n != ns);
        self.proxies.retain(|(n, ..)| n != ns);
        self.netns_firewalls.remove(ns);
    }

    /// Remove a link and, as the kernel does, its veth peer, with their addresses and routes.
    fn remove_link(&mut self, key: &(String, String)) {
        if let Some(l) = self.links.remove(key) {
            self.addresses
                .retain(|(n, i, _)| !(n == &key.0 && *i == l.index));
            self.routes
                .retain(|(n, _, _, oif)| !(n == &key.0 && *oif == Some(l.index)));
            if let Some(p) = l.peer {
                self.remove_link(&p);
            }
        }
    }

    fn next_index(&self, ns: &str) -> u32 {
        self.links
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|(_, l)| l.index)
            .max()
            .unwrap_or(0)
            + 1
    }
}

/// What to fail.
#[derive(Default)]
struct Faults {
    /// Fail the change with this number (1 = the first change).
    at: Option<usize>,
    /// Fail every change whose description contains one of these.
    matching: Vec<String>,
}

#[derive(Default)]
struct Inner {
    world: World,
    changes: usize,
    log: Vec<String>,
    faults: Faults,
}

/// The fake machine (cheap to clone: clones share the world).
#[derive(Clone)]
pub struct FakeSystem {
    inner: Arc<Mutex<Inner>>,
    state_dir: PathBuf,
}

impl FakeSystem {
    /// A fake host whose records live in `state_dir`.
    pub fn new(state_dir: PathBuf) -> Self {
        FakeSystem {
            inner: Arc::new(Mutex::new(Inner {
                world: World::host(),
                ..Default::default()
            })),
            state_dir,
        }
    }

    /// A copy of the world now.
    pub fn world(&self) -> World {
        self.inner.lock().unwrap().world.clone()
    }

    /// How many changes were made.
    pub fn changes(&self) -> usize {
        self.inner.lock().unwrap().changes
    }

    /// Every change, in order.
    pub fn log(&self) -> Vec<String> {
        self.inner.lock().unwrap().log.clone()
    }

    /// Fail the `k`-th change from now on (counting from the first change ever made).
    pub fn fail_at(&self, k: usize) {
        self.inner.lock().unwrap().faults.at = Some(k);
    }

    /// Fail every change whose description contains `what` (until [`FakeSystem::heal`]).
    pub fn fail_matching(&self, what: &str) {
        self.inner.lock().unwrap().faults.matching.push(what.into());
    }

    /// No more failures.
    pub fn heal(&self) {
        self.inner.lock().unwrap().faults = Faults::default();
    }

    /// Make a change: counted, logged, failed if asked; `f` changes the world.
    fn change<T>(&self, what: String, f: impl FnOnce(&mut World) -> Result<T>) -> Result<T> {
        let mut inner = self.inner.lock().unwrap();
        inner.changes += 1;
        let n = inner.changes;
        inner.log.push(what.clone());
        let injected =
            inner.faults.at == Some(n) || inner.faults.matching.iter().any(|m| what.contains(m));
        if injected {
            return Err(Error::Other(format!(
                "injected failure at change {n}: {what}"
            )));
        }
        f(&mut inner.world)
    }

    fn read<T>(&self, f: impl FnOnce(&World) -> T) -> T {
        f(&self.inner.lock().unwrap().world)
    }

    fn net(&self, ns: &str) -> FakeNet {
        FakeNet {
            sys: self.clone(),
            ns: ns.to_string(),
        }
    }
}

/// A handle on one namespace of the fake machine.
#[derive(Clone)]
pub struct FakeNet {
    sys: FakeSystem,
    ns: String,
}

fn no_such(what: &str) -> Error {
    Error::Netlink {
        context: what.into(),
        message: "no such device".into(),
    }
}

impl FakeNet {
    fn key(&self, name: &str) -> (String, String) {
        (self.ns.clone(), name.to_string())
    }

    fn require_index(&self, w: &World, index: u32) -> Result<()> {
        w.links
            .iter()
            .any(|((n, _), l)| n == &self.ns && l.index == index)
            .then_some(())
            .ok_or_else(|| no_such(&format!("{}: interface {index}", self.ns)))
    }
}

impl NetOps for FakeNet {
    async fn links(&self) -> Result<Vec<LinkInfoView>> {
        Ok(self.sys.read(|w| {
            w.links
                .iter()
                .filter(|((n, _), _)| n == &self.ns)
                .map(|((_, name), l)| LinkInfoView {
                    index: l.index,
                    name: name.clone(),
                    mac: String::new(),
                    mtu: 1500,
                    up: l.up,
                    state: if l.up { "up" } else { "down" }.into(),
                    kind: String::new(),
                    addresses: w
                        .addresses
                        .iter()
                        .filter(|(n, i, _)| n == &self.ns && *i == l.index)
                        .map(|(_, _, a)| a.to_string())
                        .collect(),
                })
                .collect()
        }))
    }
    async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        Ok(self
            .sys
            .read(|w| w.links.get(&self.key(name)).map(|l| l.index)))
    }
    async fn set_up(&self, index: u32) -> Result<()> {
        self.sys
            .change(format!("{}: set up {index}", self.ns), |w| {
                let l = w
                    .links
                    .iter_mut()
                    .find(|((n, _), l)| n == &self.ns && l.index == index)
                    .ok_or_else(|| no_such(&format!("interface {index}")))?;
                l.1.up = true;
                Ok(())
            })
    }
    async fn set_state(&self, name: &str, up: bool) -> Result<()> {
        self.sys
            .change(format!("{}: set {name} up={up}", self.ns), |w| {
                let l = w
                    .links
                    .get_mut(&self.key(name))
                    .ok_or_else(|| no_such(name))?;
                l.up = up;
                Ok(())
            })
    }
    async fn add_bridge(&self, name: &str, index: u32) -> Result<()> {
        self.sys
            .change(format!("{}: add bridge {name}", self.ns), |w| {
                w.links.insert(
                    self.key(name),
                    FakeLink {
                        index,
                        up: true,
                        alias: None,
                        peer: None,
                    },
                );
                Ok(())
            })
    }
    async fn add_veth(&self, req: &VethRequest, peer: &Self) -> Result<()> {
        let what = format!(
            "{}: add veth {} peer {}:{}",
            self.ns, req.name, peer.ns, req.peer
        );
        self.sys.change(what, |w| {
            let (a, b) = (self.key(&req.name), peer.key(&req.peer));
            if w.links.contains_key(&a) || w.links.contains_key(&b) {
                return Err(Error::Netlink {
                    context: req.name.clone(),
                    message: "file exists".into(),
                });
            }
            if !w.namespaces.contains(&peer.ns) {
                return Err(no_such(&peer.ns));
            }
            let ia = if req.index != 0 {
                req.index
            } else {
                w.next_index(&self.ns)
            };
            w.links.insert(
                a.clone(),
                FakeLink {
                    index: ia,
                    up: true,
                    alias: None,
                    peer: Some(b.clone()),
                },
            );
            let ib = if req.peer_index != 0 {
                req.peer_index
            } else {
                w.next_index(&peer.ns)
            };
            w.links.insert(
                b,
                FakeLink {
                    index: ib,
                    up: false,
                    alias: None,
                    peer: Some(a),
                },
            );
            Ok(())
        })
    }
    async fn add_address(&self, index: u32, net: Ipv4Net) -> Result<()> {
        self.sys
            .change(format!("{}: add address {net} on {index}", self.ns), |w| {
                self.require_index(w, index)?;
                w.addresses.insert((self.ns.clone(), index, net));
                Ok(())
            })
    }
    async fn add_route(&self, to: Ipv4Net, via: Option<Ipv4Addr>, oif: Option<u32>) -> Result<()> {
        self.sys
            .change(format!("{}: add route {to} via {via:?}", self.ns), |w| {
                if let Some(i) = oif {
                    self.require_index(w, i)?;
                }
                w.routes.insert((self.ns.clone(), to, via, oif));
                Ok(())
            })
    }
    async fn add_proxy_neighbour(&self, index: u32, addr: Ipv4Addr) -> Result<()> {
        self.sys
            .change(format!("{}: add proxy {addr} on {index}", self.ns), |w| {
                self.require_index(w, index)?;
                w.proxies.insert((self.ns.clone(), index, addr));
                Ok(())
            })
    }
    async fn set_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.sys
            .change(format!("{}: alias {name} {alias}", self.ns), |w| {
                let l = w
                    .links
                    .get_mut(&self.key(name))
                    .ok_or_else(|| no_such(name))?;
                l.alias = Some(alias.into());
                Ok(())
            })
    }
    async fn alias(&self, name: &str) -> Result<Option<String>> {
        // As the kernel answers: an interface without an alias has an empty one.
        Ok(self.sys.read(|w| {
            w.links
                .get(&self.key(name))
                .map(|l| l.alias.clone().unwrap_or_default())
        }))
    }
    async fn delete_link(&self, name: &str) -> Result<bool> {
        self.sys
            .change(format!("{}: delete link {name}", self.ns), |w| {
                let had = w.links.contains_key(&self.key(name));
                w.remove_link(&self.key(name));
                Ok(had)
            })
    }
    async fn routes(&self) -> Result<Vec<RouteEntry>> {
        Ok(self.sys.read(|w| {
            w.routes
                .iter()
                .filter(|(n, ..)| n == &self.ns)
                .map(|(_, to, via, oif)| (*to, *via, *oif))
                .collect()
        }))
    }
}

/// The chain name in an iptables-restore script (`:TCPLAB-lab - [0:0]` or `-X TCPLAB-lab`).
fn chain_of(script: &str) -> String {
    script
        .split_whitespace()
        .map(|w| w.trim_start_matches(':'))
        .find(|w| w.starts_with("TCPLAB-"))
        .unwrap_or("?")
        .to_string()
}

impl System for FakeSystem {
    type Net = FakeNet;

    fn host(&self) -> Result<FakeNet> {
        Ok(self.net(HOST))
    }
    fn create_netns(&self, name: &str, _sysctls: &[(String, String)]) -> Result<FakeNet> {
        self.change(format!("create netns {name}"), |w| {
            if !w.namespaces.insert(name.to_string()) {
                return Err(Error::Usage(format!("namespace {name} exists already")));
            }
            let n = FakeNet::default_lo(name);
            w.links.insert(n.0, n.1);
            Ok(())
        })?;
        Ok(self.net(name))
    }
    fn enter_netns(&self, namespaces: &[(String, Vec<(String, String)>)]) -> Result<Vec<FakeNet>> {
        namespaces
            .iter()
            .map(|(name, sysctls)| {
                if !self.netns_exists(name) {
                    return Err(Error::Other(format!("no namespace {name}")));
                }
                if !sysctls.is_empty() {
                    self.change(format!("sysctls in {name}"), |_| Ok(()))?;
                }
                Ok(self.net(name))
            })
            .collect()
    }
    fn netns_exists(&self, name: &str) -> bool {
        self.read(|w| w.namespaces.contains(name))
    }
    fn delete_netns(&self, name: &str) -> Result<bool> {
        self.change(format!("delete netns {name}"), |w| {
            let had = w.namespaces.contains(name);
            w.remove_netns(name);
            Ok(had)
        })
    }
    fn prepare_netns_dir(&self) -> Result<()> {
        Ok(())
    }
    fn etc_dir(&self, netns: &str) -> PathBuf {
        PathBuf::from("/etc/netns").join(netns)
    }
    fn etc_dir_exists(&self, netns: &str) -> bool {
        self.read(|w| w.etc_dirs.contains(netns))
    }
    fn write_etc_hosts(&self, netns: &str, _hosts: &str) -> Result<()> {
        self.change(format!("write /etc/netns/{netns}/hosts"), |w| {
            w.etc_dirs.insert(netns.into());
            Ok(())
        })
    }
    fn remove_etc_dir(&self, path: &str) -> Result<()> {
        self.change(format!("remove {path}"), |w| {
            let name = path.trim_start_matches("/etc/netns/");
            w.etc_dirs.remove(name);
            Ok(())
        })
    }
    fn remove_etc_root_if_empty(&self) {}
    fn write_netns_sysctls(&self, netns: &str, _sysctls: &[(String, String)]) -> Result<()> {
        self.change(format!("sysctls in {netns}"), |w| {
            w.namespaces
                .contains(netns)
                .then_some(())
                .ok_or_else(|| Error::Other(format!("no namespace {netns}")))
        })
    }
    fn read_host_sysctl(&self, key: &str) -> Result<String> {
        Ok(self.read(|w| {
            w.host_sysctls
                .get(key)
                .cloned()
                .unwrap_or_else(|| "0".into())
        }))
    }
    fn write_host_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.change(format!("host sysctl {key}={value}"), |w| {
            // Per-interface keys of interfaces tcplab made (veths) go with the interface.
            let iface = key.split('.').nth(2).unwrap_or_default();
            let made = w
                .links
                .get(&(HOST.to_string(), iface.to_string()))
                .is_some_and(|l| l.alias.is_some() || l.peer.is_some());
            if !made {
                w.host_sysctls.insert(key.into(), value.into());
            }
            Ok(())
        })
    }
    async fn firewall_add(&self, script: &str) -> Result<()> {
        self.change(format!("firewall add {}", chain_of(script)), |w| {
            w.firewall_chains.insert(chain_of(script));
            Ok(())
        })
    }
    async fn firewall_remove(&self, script: &str) -> Result<()> {
        self.change(format!("firewall remove {}", chain_of(script)), |w| {
            w.firewall_chains.remove(&chain_of(script));
            Ok(())
        })
    }
    async fn firewall_chains(&self) -> Result<Vec<String>> {
        Ok(self.read(|w| w.firewall_chains.iter().cloned().collect()))
    }
    fn disable_tx_checksums(&self, netns: Option<&str>, _ifaces: &[String]) -> Result<()> {
        self.change(format!("tx checksums off in {netns:?}"), |_| Ok(()))
    }
    async fn ovs_lab_bridges(&self, lab: &str) -> Result<Vec<String>> {
        Ok(self.read(|w| {
            w.ovs_bridges
                .iter()
                .filter(|(_, l)| *l == lab)
                .map(|(b, _)| b.clone())
                .collect()
        }))
    }
    async fn ovs_create_bridges(&self, specs: &[BridgeSpec]) -> Result<Datapath> {
        self.change("ovs create bridges".into(), |w| {
            for s in specs {
                w.ovs_bridges.insert(s.name.clone(), s.lab.clone());
            }
            Ok(Datapath::Netdev)
        })
    }
    async fn ovs_delete_lab(&self, lab: &str) -> Result<()> {
        self.change(format!("ovs delete lab {lab}"), |w| {
            let gone: Vec<String> = w
                .ovs_bridges
                .iter()
                .filter(|(_, l)| *l == lab)
                .map(|(b, _)| b.clone())
                .collect();
            w.ovs_routes.retain(|(dev, _)| !gone.contains(dev));
            w.ovs_bridges.retain(|_, l| l != lab);
            Ok(())
        })
    }
    async fn ovs_configure(&self, setups: &[BridgeSetup]) -> Result<()> {
        self.change("ovs configure".into(), |w| {
            for s in setups {
                for r in &s.routes {
                    w.ovs_routes
                        .insert((r.dev.clone(), format!("{}/{}", r.dst, r.mark)));
                }
            }
            Ok(())
        })
    }
    fn start_link_worker(
        &self,
        netns: &str,
        iface: &str,
        control: &str,
        conditions: &Conditions,
    ) -> Result<()> {
        self.change(format!("start worker {control}"), |w| {
            if !w
                .links
                .contains_key(&(netns.to_string(), iface.to_string()))
            {
                return Err(no_such(iface));
            }
            if w.workers.contains_key(control) {
                return Err(Error::Other(format!("worker {control} runs already")));
            }
            w.workers.insert(
                control.into(),
                (netns.into(), iface.into(), conditions.clone()),
            );
            Ok(())
        })
    }
    fn update_link_worker(&self, control: &str, conditions: &Conditions) -> Result<bool> {
        self.change(format!("update worker {control}"), |w| {
            Ok(match w.workers.get_mut(control) {
                Some(entry) => {
                    entry.2 = conditions.clone();
                    true
                }
                None => false,
            })
        })
    }
    fn link_worker_stats(&self, control: &str) -> Option<crate::conditions::datapath::Stats> {
        self.read(|w| w.workers.contains_key(control))
            .then(crate::conditions::datapath::Stats::default)
    }
    fn stop_link_worker(&self, _netns: &str, _iface: &str, control: &str) -> Result<()> {
        self.change(format!("stop worker {control}"), |w| {
            w.workers.remove(control);
            Ok(())
        })
    }
    fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }
    async fn move_host_link(&self, name: &str, netns: &str, new_name: &str) -> Result<()> {
        self.change(format!("move {name} into {netns} as {new_name}"), |w| {
            let from = (HOST.to_string(), name.to_string());
            let to = (netns.to_string(), new_name.to_string());
            if !w.namespaces.contains(netns) {
                return Err(no_such(netns));
            }
            if w.links.contains_key(&to) {
                return Err(Error::Other(format!("{new_name} exists in {netns}")));
            }
            let mut link = w.links.remove(&from).ok_or_else(|| no_such(name))?;
            // It leaves its addresses and routes behind, and arrives down.
            w.addresses
                .retain(|(n, i, _)| !(n == HOST && *i == link.index));
            w.routes
                .retain(|(n, _, _, oif)| !(n == HOST && *oif == Some(link.index)));
            link.index = w.next_index(netns);
            link.up = false;
            if let Some(pl) = link.peer.as_ref().and_then(|p| w.links.get_mut(p)) {
                pl.peer = Some(to.clone());
            }
            w.links.insert(to, link);
            Ok(())
        })
    }
    async fn netns_firewall_add(&self, netns: &str, script: &str) -> Result<()> {
        self.change(format!("firewall add in {netns}"), |w| {
            if !w.namespaces.contains(netns) {
                return Err(no_such(netns));
            }
            w.netns_firewalls
                .insert(netns.to_string(), script.to_string());
            Ok(())
        })
    }
}

impl FakeNet {
    fn default_lo(ns: &str) -> ((String, String), FakeLink) {
        (
            (ns.to_string(), "lo".to_string()),
            FakeLink {
                index: 1,
                up: false,
                alias: None,
                peer: None,
            },
        )
    }
}

/// A runtime on the fake machine: nodes are namespaces (netns-like) or containers with a
/// linked namespace each (docker-like).
pub struct FakeRuntime {
    pub sys: FakeSystem,
    pub containers: bool,
}

impl Runtime for FakeRuntime {
    fn kind(&self) -> RuntimeKind {
        if self.containers {
            RuntimeKind::Docker
        } else {
            RuntimeKind::Netns
        }
    }
    fn objects(&self, plan: &Plan) -> Vec<Object> {
        let mut v = Vec::new();
        if self.containers {
            v.extend(plan.nodes.iter().map(|n| Object::Container {
                name: n.netns.clone(),
            }));
        }
        v.extend(plan.nodes.iter().map(|n| Object::Netns {
            name: n.netns.clone(),
        }));
        v
    }
    async fn create_nodes(&self, plan: &Plan) -> Result<()> {
        for n in &plan.nodes {
            if self.containers {
                self.sys
                    .change(format!("create container {}", n.netns), |w| {
                        w.containers.insert(n.netns.clone());
                        Ok(())
                    })?;
            }
            self.sys.create_netns(&n.netns, &[])?;
        }
        Ok(())
    }
    async fn ensure_nodes(&self, plan: &Plan) -> Result<Vec<String>> {
        let mut back = Vec::new();
        for n in &plan.nodes {
            if self.containers && !self.sys.world().containers.contains(&n.netns) {
                self.sys
                    .change(format!("create container {}", n.netns), |w| {
                        w.containers.insert(n.netns.clone());
                        Ok(())
                    })?;
            }
            if !self.sys.netns_exists(&n.netns) {
                self.sys.create_netns(&n.netns, &[])?;
                back.push(n.name.clone());
            }
        }
        Ok(back)
    }
    async fn remove(&self, object: &Object) -> Result<bool> {
        match object {
            Object::Container { name } => {
                self.sys.change(format!("remove container {name}"), |w| {
                    Ok(w.containers.remove(name))
                })
            }
            _ => Ok(false),
        }
    }
    async fn exec(&self, _netns: &str, _node: &str, _cmd: &[String]) -> Result<i32> {
        Ok(0)
    }
    async fn run(&self, _netns: &str, _node: &str, _argv: &[String]) -> Result<CmdOutput> {
        Ok(CmdOutput::default())
    }
}
