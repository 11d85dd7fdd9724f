//! A small synchronous OVSDB (RFC 7047) client for tcplab's Open vSwitch bridges.
//!
//! It speaks JSON-RPC to `ovsdb-server` over its unix socket and makes all the
//! bridges and ports of a lab in one transaction, labelled with
//! `external_ids:tcplab-lab` / `tcplab-network`, then waits until
//! `ovs-vswitchd` has applied them (`next_cfg` / `cur_cfg`) and checks every
//! new interface for errors. Removal takes exactly the labelled bridges out of
//! `Open_vSwitch.bridges` in one transaction and lets the database's garbage
//! collection drop their ports and interfaces.
//!
//! Whether the kernel has an Open vSwitch datapath is asked of generic
//! netlink ([`crate::net::datapath`]), since `ovsdb-server` lists `system`
//! among its datapath types even where the kernel module is missing.
//!
//! Nothing here spawns a process. The parts:
//! - this file: the client API ([`Ovsdb`]) and what it waits for and checks;
//! - `bridges`: a lab's bridges as rows, and the transactions making and removing them;
//! - `ops`: OVSDB's JSON notation for values, rows, operations and results;
//! - `rpc`: the JSON-RPC connection and the cutting of the stream into messages;
//! - `error`: [`OvsError`].

mod bridges;
mod error;
mod ops;
mod rpc;
mod show;
mod unixctl;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use self::bridges::{
    CreateLayout, DELETE_SELECT, ROLLBACK_SELECT, check_label, create_ops, delete_ops,
    lab_condition, rollback_ops, validate_specs,
};
pub use self::error::OvsError;
use self::error::brief;
use self::ops::{Results, decode_set, decode_uuid, select};
use self::rpc::Connection;
pub use self::show::{LabRows, RowMap, map_pairs, refs, set_items, text};
pub use self::unixctl::{OvsRoute, Unixctl};
use crate::net::datapath::kernel_datapath_available;

/// Where Debian's `ovsdb-server` listens by default.
pub const DEFAULT_SOCKET: &str = "/var/run/openvswitch/db.sock";
/// `external_ids` key naming the lab a bridge, port or interface belongs to.
pub const LAB_KEY: &str = "tcplab-lab";
/// `external_ids` key naming the lab network a bridge, port or interface belongs to.
pub const NETWORK_KEY: &str = "tcplab-network";

/// The database every request goes to, also the name of its root table.
const DATABASE: &str = "Open_vSwitch";
/// How long one request may wait for its answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long ovs-vswitchd may take to apply a change.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after applying an interface may still lack an OpenFlow port.
const OFPORT_GRACE: Duration = Duration::from_secs(1);
/// Pause between two polls of `cur_cfg` or of the interfaces.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How often `delete_lab` retries when the lab's bridges change under it.
const DELETE_ATTEMPTS: usize = 3;

/// One Open vSwitch bridge of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeSpec {
    /// Bridge name; also the name of its internal port (at most 15 bytes).
    pub name: String,
    /// Lab name, stored as `external_ids:tcplab-lab`.
    pub lab: String,
    /// Lab network name, stored as `external_ids:tcplab-network`.
    pub network: String,
    /// Existing interfaces in the host namespace (veth ends) to attach, one port each.
    pub ports: Vec<String>,
    /// VLAN and QoS settings of ports of `ports`, by port name (absent: a plain port).
    #[serde(default)]
    pub port_settings: BTreeMap<String, PortSettings>,
    /// Tunnel ports (VXLAN, GRE) to add.
    #[serde(default)]
    pub tunnels: Vec<TunnelSpec>,
    /// OpenFlow controller target (`tcp:IP:PORT`).
    #[serde(default)]
    pub controller: Option<String>,
    /// `standalone` (default) or `secure`.
    #[serde(default)]
    pub fail_mode: Option<String>,
}

/// What a bridge gets once it exists and its own address is set: Open vSwitch's routes for
/// its tunnels' packets, and its flow entries (ports named by node, `ports` mapping a node to
/// its port's name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeSetup {
    /// The bridge.
    pub bridge: String,
    /// Routes of its tunnel ports' packets.
    pub routes: Vec<OvsRoute>,
    /// Flow entries in `ovs-ofctl` syntax with node names as ports.
    pub flows: Vec<String>,
    /// Node name -> port name, for the flows.
    pub ports: BTreeMap<String, String>,
}

/// VLAN and QoS settings of one port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSettings {
    /// The node the port connects, for messages.
    #[serde(default)]
    pub node: String,
    /// Access VLAN (`Port.tag`).
    pub tag: Option<u16>,
    /// Trunk VLANs (`Port.trunks`).
    pub trunks: Vec<u16>,
    /// Egress shaping, bit/s (a `linux-htb` QoS row with one queue).
    pub max_rate: Option<u64>,
    /// `Interface.ingress_policing_rate`, kbit/s.
    pub ingress_rate_kbps: Option<u64>,
    /// `Interface.ingress_policing_burst`, kbit.
    pub ingress_burst_kb: Option<u64>,
}

/// A tunnel port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSpec {
    /// Port and interface name.
    pub name: String,
    /// `vxlan` or `gre`.
    pub kind: String,
    /// VNI or GRE key.
    pub key: u32,
    /// The other end's address.
    pub remote_ip: std::net::Ipv4Addr,
    /// Packet mark of the encapsulated packets (`options:egress_pkt_mark`).
    pub mark: u32,
}

/// Which Open vSwitch datapath a bridge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datapath {
    /// The kernel datapath (needs the kernel's openvswitch module).
    System,
    /// The userspace datapath inside ovs-vswitchd.
    Netdev,
}

impl Datapath {
    /// The value of the `Bridge.datapath_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Datapath::System => "system",
            Datapath::Netdev => "netdev",
        }
    }
}

impl fmt::Display for Datapath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection to `ovsdb-server`.
pub struct Ovsdb {
    conn: Connection,
}

impl fmt::Debug for Ovsdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ovsdb")
            .field("socket", &self.conn.socket())
            .field("broken", &self.conn.is_broken())
            .finish_non_exhaustive()
    }
}

impl Ovsdb {
    /// Connect to `ovsdb-server` at `path` (usually [`DEFAULT_SOCKET`]) and
    /// check that it serves the `Open_vSwitch` database.
    ///
    /// # Errors
    ///
    /// [`OvsError::NotRunning`] when the socket is missing or nothing listens
    /// on it, [`OvsError::NoDatabase`], or a connection error.
    pub fn connect(path: &Path) -> Result<Self, OvsError> {
        Self::connect_with_timeout(path, IO_TIMEOUT)
    }

    fn connect_with_timeout(path: &Path, io_timeout: Duration) -> Result<Self, OvsError> {
        let mut conn = Connection::open(path, io_timeout)?;
        let dbs = conn.call("list_dbs", json!([]), "listing databases")?;
        let listed = dbs
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(DATABASE)));
        if !listed {
            return Err(OvsError::NoDatabase {
                socket: conn.socket().to_owned(),
            });
        }
        Ok(Ovsdb { conn })
    }

    /// The kernel datapath if the kernel has one, else the userspace (netdev)
    /// datapath, as long as ovs-vswitchd lists it.
    ///
    /// The kernel is asked directly ([`kernel_datapath_available`]): the
    /// database lists `system` in `datapath_types` even without the kernel
    /// module, and `ovs-vsctl add-br` then "succeeds" making no bridge.
    ///
    /// # Errors
    ///
    /// [`OvsError::NoDatapath`] when neither can be used, or a connection error.
    pub fn choose_datapath(&mut self) -> Result<Datapath, OvsError> {
        let rows = self.select(
            DATABASE,
            vec![],
            &["datapath_types"],
            "reading datapath types",
        )?;
        let types: Vec<String> = rows
            .first()
            .and_then(|row| row.get("datapath_types"))
            .map(|v| {
                decode_set(v)
                    .into_iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let kernel = types.iter().any(|t| t == "system") && kernel_datapath_available();
        pick_datapath(kernel, &types)
    }

    /// Make every bridge of `bridges` in one transaction, then wait (at most
    /// 10 s) until ovs-vswitchd has applied it and check every new interface.
    ///
    /// Each bridge gets `fail_mode` "standalone" (NORMAL switching without a
    /// controller), `datapath_type`, `external_ids` {"tcplab-lab": lab,
    /// "tcplab-network": network}, its internal local port, and one port and
    /// interface per entry of `ports` (existing interfaces of the host
    /// namespace, labelled too; bringing them up is the caller's job).
    ///
    /// Refuses, changing nothing, if a bridge or port name is invalid,
    /// repeated or already used in Open vSwitch. If ovs-vswitchd does not
    /// apply the change in time, or an interface reports an `error` or gets no
    /// OpenFlow port, the new bridges are removed again (best effort) and the
    /// error names the interface and the error text.
    ///
    /// # Errors
    ///
    /// [`OvsError::Invalid`], [`OvsError::BridgeExists`],
    /// [`OvsError::PortInUse`], [`OvsError::Transaction`] (nothing changed);
    /// [`OvsError::NotApplied`], [`OvsError::Interface`],
    /// [`OvsError::BridgeFailed`] (rolled back); or a connection error.
    pub fn create_bridges(
        &mut self,
        datapath: Datapath,
        bridges: &[BridgeSpec],
    ) -> Result<(), OvsError> {
        validate_specs(bridges)?;
        if bridges.is_empty() {
            return Ok(());
        }
        refuse_unsupported(datapath, bridges)?;
        self.check_names_free(bridges)?;
        let (ops, layout) = create_ops(datapath, bridges);
        let during = "creating bridges";
        let results = self.transact(ops, during)?;
        if let Some((index, error)) = results.first_error() {
            // a failed `wait` says "timed out": the name was taken meanwhile
            if let Some((_, name)) = layout.waits.iter().find(|(i, _)| *i == index)
                && error.starts_with("timed out")
            {
                return Err(OvsError::BridgeExists { name: name.clone() });
            }
            return Err(OvsError::Transaction { during, error });
        }
        let (bridge_uuids, ifaces) = created_rows(&results, &layout, during)?;
        let target = selected_next_cfg(&results, layout.select, during)?;
        let labs: BTreeSet<&str> = bridges.iter().map(|b| b.lab.as_str()).collect();
        let outcome = self
            .wait_applied(target)
            .and_then(|()| self.check_interfaces(&labs, &ifaces, datapath));
        if let Err(err) = outcome {
            self.rollback(&bridge_uuids);
            return Err(err);
        }
        Ok(())
    }

    /// Names, sorted, of the bridges whose `external_ids:tcplab-lab` is `lab`.
    ///
    /// # Errors
    ///
    /// [`OvsError::Invalid`] for a lab name with NUL, or a connection error.
    pub fn lab_bridges(&mut self, lab: &str) -> Result<Vec<String>, OvsError> {
        check_label("lab", lab)?;
        let rows = self.select(
            "Bridge",
            lab_condition(lab),
            &["name"],
            "listing the lab's bridges",
        )?;
        let mut names: Vec<String> = rows
            .iter()
            .filter_map(|row| row.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Remove exactly the bridges labelled with `lab`, with their ports and
    /// interfaces, in one transaction, and wait until ovs-vswitchd has applied
    /// it. Returns the removed names, sorted; `Ok(empty)` when there were none.
    ///
    /// A bridge without the label is never touched: the transaction asserts
    /// that the labelled set is still the one just read (and retries if not).
    /// The attached veths themselves are not deleted.
    ///
    /// # Errors
    ///
    /// [`OvsError::Invalid`] for a lab name with NUL,
    /// [`OvsError::NotApplied`] if ovs-vswitchd did not follow (the database
    /// change is made: calling again returns `Ok(empty)`), or a connection error.
    pub fn delete_lab(&mut self, lab: &str) -> Result<Vec<String>, OvsError> {
        check_label("lab", lab)?;
        let during = "removing the lab's bridges";
        for _ in 0..DELETE_ATTEMPTS {
            let found = self.labelled_bridges(lab, during)?;
            if found.is_empty() {
                return Ok(Vec::new());
            }
            let results = self.transact(delete_ops(lab, &found), during)?;
            if let Some((index, error)) = results.first_error() {
                if index == 0 && error.starts_with("timed out") {
                    // the labelled set changed since it was read: read again
                    continue;
                }
                return Err(OvsError::Transaction { during, error });
            }
            let target = selected_next_cfg(&results, DELETE_SELECT, during)?;
            self.wait_applied(target)?;
            return Ok(found.into_iter().map(|(name, _)| name).collect());
        }
        Err(OvsError::Transaction {
            during,
            error: format!(
                "the bridges of lab {lab:?} kept changing during {DELETE_ATTEMPTS} attempts"
            ),
        })
    }

    /// (name, row uuid), sorted by name, of the bridges labelled with `lab`.
    fn labelled_bridges(
        &mut self,
        lab: &str,
        during: &'static str,
    ) -> Result<Vec<(String, String)>, OvsError> {
        let rows = self.select("Bridge", lab_condition(lab), &["_uuid", "name"], during)?;
        let mut found: Vec<(String, String)> = rows
            .iter()
            .filter_map(|row| {
                let uuid = row.get("_uuid").and_then(decode_uuid)?;
                let name = row.get("name").and_then(Value::as_str)?;
                Some((name.to_owned(), uuid.to_owned()))
            })
            .collect();
        if found.len() != rows.len() {
            return Err(OvsError::Protocol {
                during,
                detail: "a Bridge row without name or _uuid".to_owned(),
            });
        }
        found.sort();
        Ok(found)
    }

    /// Remove the bridges with these row uuids after a failed creation,
    /// reconnecting if the connection broke. Errors are ignored: the caller
    /// reports the original one.
    fn rollback(&mut self, uuids: &[String]) {
        if uuids.is_empty() {
            return;
        }
        if self.conn.is_broken() {
            let socket = self.conn.socket().to_owned();
            match Self::connect_with_timeout(Path::new(&socket), self.conn.io_timeout()) {
                Ok(fresh) => *self = fresh,
                Err(_) => return,
            }
        }
        let during = "undoing a failed bridge creation";
        if let Ok(results) = self.transact(rollback_ops(uuids), during)
            && results.first_error().is_none()
            && let Ok(target) = selected_next_cfg(&results, ROLLBACK_SELECT, during)
        {
            let _ = self.wait_applied(target);
        }
    }

    /// Fail early, with a precise message, if a bridge or port name is taken.
    fn check_names_free(&mut self, bridges: &[BridgeSpec]) -> Result<(), OvsError> {
        let during = "checking that the names are free";
        let ops = vec![
            select("Bridge", vec![], &["name", "ports"]),
            select("Port", vec![], &["_uuid", "name"]),
        ];
        let results = self.transact(ops, during)?.succeeded(during)?;
        let (bridge_rows, port_rows) = (results.rows(0, during)?, results.rows(1, during)?);
        match name_taken(bridges, &bridge_rows, &port_rows) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Poll `cur_cfg` until it reaches `target` or [`APPLY_TIMEOUT`] passes.
    fn wait_applied(&mut self, target: i64) -> Result<(), OvsError> {
        let during = "waiting for ovs-vswitchd";
        let deadline = Instant::now() + APPLY_TIMEOUT;
        loop {
            let rows = self.select(DATABASE, vec![], &["cur_cfg"], during)?;
            let current = rows
                .first()
                .and_then(|row| row.get("cur_cfg"))
                .and_then(Value::as_i64)
                .ok_or_else(|| OvsError::Protocol {
                    during,
                    detail: "no cur_cfg in the Open_vSwitch table".to_owned(),
                })?;
            if current >= target {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(OvsError::NotApplied {
                    secs: APPLY_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Check the interfaces created by this call (`expected`: row uuid ->
    /// (name, is the bridge's local port)) for an `error` or a missing
    /// OpenFlow port, giving a missing one [`OFPORT_GRACE`] to appear.
    fn check_interfaces(
        &mut self,
        labs: &BTreeSet<&str>,
        expected: &HashMap<String, (String, bool)>,
        datapath: Datapath,
    ) -> Result<(), OvsError> {
        let during = "checking the new interfaces";
        let grace = Instant::now() + OFPORT_GRACE;
        loop {
            let mut rows = Vec::new();
            for lab in labs {
                let columns = ["_uuid", "name", "error", "ofport"];
                rows.extend(self.select("Interface", lab_condition(lab), &columns, during)?);
            }
            let (seen, problems) = interface_problems(&rows, expected);
            if seen < expected.len() {
                return Err(OvsError::Protocol {
                    during,
                    detail: format!(
                        "{} of the {} new interfaces vanished from the database",
                        expected.len() - seen,
                        expected.len()
                    ),
                });
            }
            if problems.is_empty() {
                return Ok(());
            }
            let settled = problems.iter().any(|p| p.error.is_some()) || Instant::now() >= grace;
            if settled {
                return Err(interface_failure(problems, datapath));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// One `select` in a transaction of its own.
    fn select(
        &mut self,
        table: &str,
        conditions: Vec<Value>,
        columns: &[&str],
        during: &'static str,
    ) -> Result<Vec<Map<String, Value>>, OvsError> {
        let ops = vec![select(table, conditions, columns)];
        self.transact(ops, during)?
            .succeeded(during)?
            .rows(0, during)
    }

    /// Send a `transact` request and return its results (which may hold
    /// per-operation errors: see [`Results::first_error`]).
    fn transact(&mut self, ops: Vec<Value>, during: &'static str) -> Result<Results, OvsError> {
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(Value::from(DATABASE));
        params.extend(ops);
        match self.conn.call("transact", Value::Array(params), during)? {
            Value::Array(results) => Ok(Results(results)),
            other => Err(OvsError::Protocol {
                during,
                detail: format!("transact answered {} instead of an array", brief(&other)),
            }),
        }
    }
}

/// The row uuids of the new bridges, and of the new interfaces mapped to (name, is the
/// bridge's local port).
type CreatedRows = (Vec<String>, HashMap<String, (String, bool)>);

/// Read the uuids of the rows a creation transaction inserted.
fn created_rows(
    results: &Results,
    layout: &CreateLayout,
    during: &'static str,
) -> Result<CreatedRows, OvsError> {
    let bridges = layout
        .bridges
        .iter()
        .map(|&index| results.inserted_uuid(index, during))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ifaces = HashMap::new();
    for (index, name, local) in &layout.ifaces {
        let uuid = results.inserted_uuid(*index, during)?;
        ifaces.insert(uuid, (name.clone(), *local));
    }
    Ok((bridges, ifaces))
}

/// `next_cfg` from the select at `index`.
fn selected_next_cfg(
    results: &Results,
    index: usize,
    during: &'static str,
) -> Result<i64, OvsError> {
    results
        .rows(index, during)?
        .first()
        .and_then(|row| row.get("next_cfg"))
        .and_then(Value::as_i64)
        .ok_or_else(|| OvsError::Protocol {
            during,
            detail: "no next_cfg in the Open_vSwitch table".to_owned(),
        })
}

/// The error for the first bridge or port name of `bridges` already used by one of the
/// existing `Bridge` rows (name, ports) or `Port` rows (_uuid, name), if any.
fn name_taken(
    bridges: &[BridgeSpec],
    bridge_rows: &[Map<String, Value>],
    port_rows: &[Map<String, Value>],
) -> Option<OvsError> {
    if let Some(spec) = bridges.iter().find(|b| {
        bridge_rows
            .iter()
            .any(|row| name_of(row) == Some(b.name.as_str()))
    }) {
        return Some(OvsError::BridgeExists {
            name: spec.name.clone(),
        });
    }
    let wanted: BTreeSet<&str> = bridges
        .iter()
        .flat_map(|b| std::iter::once(b.name.as_str()).chain(b.ports.iter().map(String::as_str)))
        .collect();
    let row = port_rows
        .iter()
        .find(|row| name_of(row).is_some_and(|name| wanted.contains(name)))?;
    let uuid = row.get("_uuid").and_then(decode_uuid);
    let owner = bridge_rows.iter().find(|bridge| {
        let ports = bridge.get("ports").map(decode_set).unwrap_or_default();
        uuid.is_some() && ports.into_iter().any(|p| decode_uuid(p) == uuid)
    });
    Some(OvsError::PortInUse {
        name: name_of(row).unwrap_or_default().to_owned(),
        bridge: owner.and_then(name_of).unwrap_or("?").to_owned(),
    })
}

/// The `name` column of a row.
fn name_of(row: &Map<String, Value>) -> Option<&str> {
    row.get("name").and_then(Value::as_str)
}

/// A new interface that does not work (yet).
#[derive(Debug, PartialEq)]
struct InterfaceProblem {
    /// Whether it is the bridge's local port (then the bridge as a whole failed).
    local: bool,
    name: String,
    /// The `error` column or what else is wrong; `None` while only the OpenFlow port is missing.
    error: Option<String>,
}

/// How many of the `expected` interfaces `rows` hold, and which of them do not work.
fn interface_problems(
    rows: &[Map<String, Value>],
    expected: &HashMap<String, (String, bool)>,
) -> (usize, Vec<InterfaceProblem>) {
    let mut seen = 0;
    let mut problems = Vec::new();
    for row in rows {
        let Some((name, local)) = row
            .get("_uuid")
            .and_then(decode_uuid)
            .and_then(|uuid| expected.get(uuid))
        else {
            continue;
        };
        seen += 1;
        let first = |column: &str| row.get(column).and_then(|v| decode_set(v).first().copied());
        let error = first("error")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(str::to_owned);
        let error = match (error, first("ofport").and_then(Value::as_i64)) {
            (Some(error), _) => Some(error),
            (None, Some(-1)) => Some("it got no OpenFlow port (ofport -1)".to_owned()),
            (None, None) => None,
            (None, Some(_)) => continue,
        };
        problems.push(InterfaceProblem {
            local: *local,
            name: name.clone(),
            error,
        });
    }
    (seen, problems)
}

/// The error for failed interfaces: a bridge that failed as a whole first, then by name.
fn interface_failure(mut problems: Vec<InterfaceProblem>, datapath: Datapath) -> OvsError {
    problems.sort_by(|a, b| (!a.local, &a.name).cmp(&(!b.local, &b.name)));
    let count = problems.len();
    let Some(first) = problems.into_iter().next() else {
        return OvsError::Protocol {
            during: "checking the new interfaces",
            detail: "no failed interface to report".to_owned(),
        };
    };
    let mut error = first
        .error
        .unwrap_or_else(|| "it got no OpenFlow port".to_owned());
    if first.local {
        error = error.replacen("it got", "its local port got", 1);
        return OvsError::BridgeFailed {
            name: first.name,
            datapath,
            error,
        };
    }
    if count > 1 {
        error = format!("{error} (and {} more interfaces failed)", count - 1);
    }
    OvsError::Interface {
        name: first.name,
        error,
    }
}

/// Pick the datapath from what the kernel has and what ovs-vswitchd lists.
/// Refuse what `datapath` cannot do here. Ingress policing: ovs-vswitchd implements it on a
/// veth with tc's basic classifier and police action (for either datapath); kernels without
/// them (as on the userspace-only machines tcplab runs on) make ovs-vswitchd log "adding
/// cls_basic policing action failed" and leave the port unlimited, with no error in the
/// database. Egress shaping (`linux-htb` QoS) works with the userspace datapath.
fn refuse_unsupported(datapath: Datapath, bridges: &[BridgeSpec]) -> Result<(), OvsError> {
    if datapath != Datapath::Netdev {
        return Ok(());
    }
    for b in bridges {
        if let Some((port, settings)) = b
            .port_settings
            .iter()
            .find(|(_, s)| s.ingress_rate_kbps.is_some())
        {
            return Err(OvsError::Unsupported(format!(
                "node {}'s port {port} on LAN {} (bridge {}) asks for ingress policing, which the userspace (netdev) datapath here cannot do (it needs the kernel's tc police action): use qos max_rate (HTB egress shaping) instead",
                settings.node, b.network, b.name
            )));
        }
    }
    Ok(())
}

fn pick_datapath(kernel: bool, types: &[String]) -> Result<Datapath, OvsError> {
    let listed = |t: &str| types.iter().any(|x| x == t);
    if kernel && listed("system") {
        Ok(Datapath::System)
    } else if listed("netdev") {
        Ok(Datapath::Netdev)
    } else {
        Err(OvsError::NoDatapath {
            types: format!("[{}]", types.join(", ")),
        })
    }
}
#[cfg(test)]
mod tests {
    use super::rpc::Framer;
    use super::*;
    use crate::error::{Context, Result as TcplabResult};
    use crate::net::ethtool;
    use crate::sys::{in_netns, is_root, netns_path};
    use std::io::{self, Read, Write};
    use std::net::{Ipv4Addr, SocketAddr as InetAddr, TcpListener, TcpStream};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::JoinHandle;

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A short name unique to this process and call (fits interface names).
    fn unique(tag: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        format!("tl{:x}{tag}{n}", std::process::id())
    }

    /// A bridge spec from string slices.
    pub(super) fn spec(name: &str, lab: &str, network: &str, ports: &[&str]) -> BridgeSpec {
        BridgeSpec {
            name: name.to_owned(),
            lab: lab.to_owned(),
            network: network.to_owned(),
            ports: ports.iter().map(|p| (*p).to_owned()).collect(),
            port_settings: Default::default(),
            tunnels: Vec::new(),
            controller: None,
            fail_mode: None,
        }
    }

    // ---------------------------------------------------------------- pure

    #[test]
    fn datapath_choice_trusts_the_kernel_not_the_database() {
        let both = vec!["netdev".to_owned(), "system".to_owned()];
        assert_eq!(pick_datapath(true, &both).unwrap(), Datapath::System);
        assert_eq!(pick_datapath(false, &both).unwrap(), Datapath::Netdev);
        assert_eq!(
            pick_datapath(true, &["netdev".to_owned()]).unwrap(),
            Datapath::Netdev
        );
        let err = pick_datapath(false, &["system".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("[system]"), "{err}");
        assert!(pick_datapath(false, &[]).is_err());
        assert_eq!(Datapath::Netdev.as_str(), "netdev");
        assert_eq!(Datapath::System.to_string(), "system");
        assert_eq!(
            serde_json::to_value(Datapath::Netdev).unwrap(),
            json!("netdev")
        );
    }

    fn iface_row(uuid: &str, name: &str, error: Value, ofport: Value) -> Map<String, Value> {
        let row = json!({"_uuid": ["uuid", uuid], "name": name, "error": error, "ofport": ofport});
        row.as_object().cloned().unwrap()
    }

    #[test]
    fn interface_checks_find_errors_and_missing_openflow_ports() {
        let expected: HashMap<String, (String, bool)> = [
            ("u-br".to_owned(), ("br".to_owned(), true)),
            ("u-ok".to_owned(), ("ok".to_owned(), false)),
            ("u-bad".to_owned(), ("bad".to_owned(), false)),
            ("u-slow".to_owned(), ("slow".to_owned(), false)),
        ]
        .into();
        let empty = json!(["set", []]);
        let rows = vec![
            iface_row("u-ok", "ok", empty.clone(), json!(3)),
            iface_row(
                "u-bad",
                "bad",
                json!("could not open network device bad (No such device)"),
                empty.clone(),
            ),
            iface_row("u-slow", "slow", empty.clone(), empty.clone()),
            iface_row("u-other", "other", json!("not ours"), json!(-1)),
        ];
        let (seen, problems) = interface_problems(&rows, &expected);
        assert_eq!(
            seen, 3,
            "the local port is missing, another lab's row is not counted"
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        let err = interface_failure(problems, Datapath::Netdev);
        assert!(
            matches!(&err, OvsError::Interface { name, error }
                if name == "bad" && error.contains("No such device") && error.ends_with("(and 1 more interfaces failed)")),
            "{err}"
        );
        // a local port without an OpenFlow port: the bridge itself failed, reported first
        let rows = vec![
            iface_row("u-br", "br", json!(""), json!(-1)),
            iface_row("u-bad", "bad", json!("e"), empty.clone()),
        ];
        let (seen, problems) = interface_problems(&rows, &expected);
        assert_eq!(seen, 2);
        let err = interface_failure(problems, Datapath::System);
        assert!(
            matches!(&err, OvsError::BridgeFailed { name, datapath: Datapath::System, error }
                if name == "br" && error == "its local port got no OpenFlow port (ofport -1)"),
            "{err}"
        );
        // only a late OpenFlow port: no error text yet
        let (_, problems) = interface_problems(
            &[iface_row("u-slow", "slow", empty.clone(), empty)],
            &expected,
        );
        assert_eq!(problems[0].error, None);
        let err = interface_failure(problems, Datapath::Netdev);
        assert!(
            err.to_string().contains("slow: it got no OpenFlow port:"),
            "{err}"
        );
        assert!(matches!(
            interface_failure(Vec::new(), Datapath::Netdev),
            OvsError::Protocol { .. }
        ));
    }

    #[test]
    fn taken_names_are_found_with_the_bridge_holding_the_port() {
        let rows = |v: Value| -> Vec<Map<String, Value>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_object().cloned().unwrap())
                .collect()
        };
        let bridge_rows = rows(json!([
            {"name": "br0", "ports": ["set", [["uuid", "p-br0"], ["uuid", "p-v0"]]]},
            {"name": "br1", "ports": ["uuid", "p-br1"]}
        ]));
        let port_rows = rows(json!([
            {"_uuid": ["uuid", "p-br0"], "name": "br0"},
            {"_uuid": ["uuid", "p-v0"], "name": "v0"},
            {"_uuid": ["uuid", "p-br1"], "name": "br1"},
            {"_uuid": ["uuid", "p-lost"], "name": "lost"}
        ]));
        let free = [spec("br2", "l", "n", &["v1"])];
        assert!(name_taken(&free, &bridge_rows, &port_rows).is_none());
        let err = name_taken(&[spec("br1", "l", "n", &[])], &bridge_rows, &port_rows).unwrap();
        assert!(
            matches!(&err, OvsError::BridgeExists { name } if name == "br1"),
            "{err}"
        );
        let err = name_taken(&[spec("br2", "l", "n", &["v0"])], &bridge_rows, &port_rows).unwrap();
        assert!(
            matches!(&err, OvsError::PortInUse { name, bridge } if name == "v0" && bridge == "br0"),
            "{err}"
        );
        // a port named like the new bridge, and a port no bridge holds
        let err = name_taken(&[spec("lost", "l", "n", &[])], &bridge_rows, &port_rows).unwrap();
        assert!(
            matches!(&err, OvsError::PortInUse { name, bridge } if name == "lost" && bridge == "?"),
            "{err}"
        );
    }

    #[test]
    fn connect_says_open_vswitch_is_not_running() {
        let missing = std::env::temp_dir().join(format!("{}-missing.sock", unique("m")));
        let err = Ovsdb::connect(&missing).unwrap_err();
        assert!(matches!(err, OvsError::NotRunning { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("(no {})", missing.display())),
            "{err}"
        );
        // a stale socket file with no server behind it
        let stale = std::env::temp_dir().join(format!("{}-stale.sock", unique("s")));
        drop(UnixListener::bind(&stale).unwrap());
        let err = Ovsdb::connect(&stale).unwrap_err();
        let _ = std::fs::remove_file(&stale);
        assert!(matches!(err, OvsError::NotRunning { .. }), "{err}");
        assert!(err.to_string().contains("nothing listens on"), "{err}");
    }

    // ------------------------------------------------------ fake ovsdb-server

    /// What the fake server does with one message from the client.
    enum Act {
        /// Write these chunks, pausing briefly between them.
        Send(Vec<String>),
        /// Hang up.
        Close,
    }

    /// Serve one connection on a fresh socket; returns what the client sent.
    fn fake_server(
        mut handle: impl FnMut(&Value) -> Act + Send + 'static,
    ) -> (PathBuf, JoinHandle<Vec<Value>>) {
        let path = std::env::temp_dir().join(format!("{}.sock", unique("f")));
        let listener = UnixListener::bind(&path).unwrap();
        let cleanup = path.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let (mut conn, _) = listener.accept().unwrap();
            let _ = std::fs::remove_file(&cleanup);
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = Vec::new();
            let mut framer = Framer::default();
            let mut chunk = [0u8; 4096];
            loop {
                while let Some(end) = framer.scan(&buf).unwrap() {
                    let msg: Value = serde_json::from_slice(&buf[..end]).unwrap();
                    buf.drain(..end);
                    framer = Framer::default();
                    match handle(&msg) {
                        Act::Send(chunks) => {
                            for c in chunks {
                                if conn.write_all(c.as_bytes()).is_err() {
                                    return seen;
                                }
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                        Act::Close => {
                            seen.push(msg);
                            return seen;
                        }
                    }
                    seen.push(msg);
                }
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => return seen,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
        (path, thread)
    }

    fn answer(msg: &Value, result: Value) -> String {
        json!({"id": msg["id"], "result": result, "error": null}).to_string()
    }

    fn list_dbs_ok(msg: &Value) -> Option<Act> {
        (msg["method"] == "list_dbs")
            .then(|| Act::Send(vec![answer(msg, json!(["_Server", "Open_vSwitch"]))]))
    }

    #[test]
    fn client_answers_echo_skips_notifications_and_reads_split_replies() {
        let (path, server) = fake_server(|msg| {
            if msg["method"] == "list_dbs" {
                let reply = answer(msg, json!(["Open_vSwitch"]));
                let (a, b) = reply.split_at(reply.len() / 2);
                return Act::Send(vec![
                    json!({"method": "echo", "params": ["ping"], "id": "echo"}).to_string(),
                    json!({"method": "update", "params": [null, {}], "id": null}).to_string(),
                    json!({"id": 999, "result": [], "error": null}).to_string(),
                    a.to_owned(),
                    b.to_owned(),
                ]);
            }
            if msg["method"] == "transact" {
                return Act::Send(vec![format!(
                    "{}\n",
                    answer(msg, json!([{"rows": [{"name": "b2"}, {"name": "b1"}]}]))
                )]);
            }
            Act::Send(vec![])
        });
        let mut db = Ovsdb::connect(&path).expect("connect to the fake server");
        assert_eq!(db.lab_bridges("lab x").unwrap(), vec!["b1", "b2"]);
        drop(db);
        let seen = server.join().unwrap();
        assert_eq!(seen[0]["method"], "list_dbs");
        assert_eq!(
            seen[1],
            json!({"id": "echo", "result": ["ping"], "error": null})
        );
        assert_eq!(
            seen[2]["params"],
            json!(["Open_vSwitch", {"op": "select", "table": "Bridge",
                    "where": [["external_ids", "includes", ["map", [["tcplab-lab", "lab x"]]]]],
                    "columns": ["name"]}])
        );
        assert_ne!(seen[0]["id"], seen[2]["id"]);
    }

    #[test]
    fn client_reports_a_server_without_the_database() {
        let (path, _server) = fake_server(|msg| Act::Send(vec![answer(msg, json!(["_Server"]))]));
        let err = Ovsdb::connect(&path).unwrap_err();
        assert!(matches!(err, OvsError::NoDatabase { .. }), "{err}");
    }

    #[test]
    fn client_reports_hangups_garbage_and_silence() {
        let (path, _s) = fake_server(|_| Act::Close);
        let err = Ovsdb::connect(&path).unwrap_err();
        assert!(matches!(err, OvsError::Io { .. }), "{err}");

        let (path, _s) = fake_server(|_| Act::Send(vec!["hello".to_owned()]));
        let err = Ovsdb::connect(&path).unwrap_err();
        assert!(matches!(err, OvsError::Protocol { .. }), "{err}");

        let (path, _s) = fake_server(|_| Act::Send(vec![r#"{"id": 1, "result": [}"#.to_owned()]));
        let err = Ovsdb::connect(&path).unwrap_err();
        assert!(matches!(err, OvsError::Protocol { .. }), "{err}");

        let (path, _s) = fake_server(|_| Act::Send(vec![]));
        let started = Instant::now();
        let err = Ovsdb::connect_with_timeout(&path, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, OvsError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn client_reports_rpc_and_transaction_errors_and_stays_usable() {
        let mut step = 0;
        let (path, _s) = fake_server(move |msg| {
            if let Some(act) = list_dbs_ok(msg) {
                return act;
            }
            step += 1;
            match step {
                1 => Act::Send(vec![
                    json!({"id": msg["id"], "result": null, "error": {"error": "unknown database"}}).to_string(),
                ]),
                2 => Act::Send(vec![answer(
                    msg,
                    json!([{"error": "syntax error", "details": "bad\ncondition."}]),
                )]),
                3 => Act::Send(vec![answer(msg, json!({"not": "an array"}))]),
                4 => Act::Send(vec![answer(msg, json!([{"rows": []}]))]),
                _ => Act::Send(vec!["zzz".to_owned()]),
            }
        });
        let mut db = Ovsdb::connect(&path).unwrap();
        let err = db.lab_bridges("l").unwrap_err();
        assert!(matches!(err, OvsError::Rpc { .. }), "{err}");
        let err = db.lab_bridges("l").unwrap_err();
        assert!(matches!(err, OvsError::Transaction { .. }), "{err}");
        assert!(
            err.to_string().contains("syntax error: bad condition:"),
            "{err}"
        );
        // a well-framed reply of the wrong shape is an error, the stream stays in step
        let err = db.lab_bridges("l").unwrap_err();
        assert!(matches!(err, OvsError::Protocol { .. }), "{err}");
        assert_eq!(db.lab_bridges("l").unwrap(), Vec::<String>::new());
        // garbage on the stream breaks the connection for good
        let err = db.lab_bridges("l").unwrap_err();
        assert!(matches!(err, OvsError::Protocol { .. }), "{err}");
        assert!(matches!(db.lab_bridges("l").unwrap_err(), OvsError::Broken));
        // bad input is refused before anything is sent
        assert!(matches!(
            db.delete_lab("a\0b").unwrap_err(),
            OvsError::Invalid(_)
        ));
    }

    #[test]
    fn empty_lab_does_nothing_and_invalid_specs_send_nothing() {
        let (path, server) = fake_server(|msg| {
            list_dbs_ok(msg).unwrap_or_else(|| Act::Send(vec![answer(msg, json!([{"rows": []}]))]))
        });
        let mut db = Ovsdb::connect(&path).unwrap();
        db.create_bridges(Datapath::Netdev, &[]).unwrap();
        let err = db
            .create_bridges(
                Datapath::Netdev,
                &[spec("name-longer-than-15", "l", "n", &[])],
            )
            .unwrap_err();
        assert!(matches!(err, OvsError::Invalid(_)), "{err}");
        assert_eq!(db.delete_lab("l").unwrap(), Vec::<String>::new());
        drop(db);
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 2, "list_dbs and one select: {seen:?}");
    }

    // ------------------------------------------- real Open vSwitch (root only)

    /// A connection to the real Open vSwitch, or None (printing why) when
    /// this test cannot run here.
    fn real_ovs(test: &str) -> Option<Ovsdb> {
        if !is_root() {
            eprintln!("skipped: {test}: needs root");
            return None;
        }
        for tool in ["ip", "ovs-vsctl"] {
            if Command::new(tool).arg("-V").output().is_err() {
                eprintln!("skipped: {test}: {tool} is not installed");
                return None;
            }
        }
        match Ovsdb::connect(Path::new(DEFAULT_SOCKET)) {
            Ok(db) => Some(db),
            Err(e) => {
                eprintln!("skipped: {test}: {e}");
                None
            }
        }
    }

    /// Run a command; its stdout, or an error with its stderr.
    fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(cmd)
            .args(args)
            .output()
            .map_err(|e| format!("{cmd}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{cmd} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn must(cmd: &str, args: &[&str]) -> String {
        run(cmd, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Everything a test made, removed on drop even when the test fails.
    #[derive(Default)]
    struct Cleanup {
        labs: Vec<String>,
        bridges: Vec<String>,
        links: Vec<String>,
        netns: Vec<String>,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            if !self.labs.is_empty()
                && let Ok(mut db) = Ovsdb::connect(Path::new(DEFAULT_SOCKET))
            {
                for lab in &self.labs {
                    let _ = db.delete_lab(lab);
                }
            }
            for bridge in &self.bridges {
                let _ = run("ovs-vsctl", &["--if-exists", "del-br", bridge]);
            }
            for link in &self.links {
                let _ = run("ip", &["link", "del", link]);
            }
            for ns in &self.netns {
                let _ = run("ip", &["netns", "del", ns]);
            }
        }
    }

    impl Cleanup {
        fn netns(&mut self, name: &str) {
            must("ip", &["netns", "add", name]);
            self.netns.push(name.to_owned());
            must("ip", &["-n", name, "link", "set", "lo", "up"]);
        }

        /// A veth pair in the host namespace, both ends up.
        fn veth(&mut self, host: &str, peer: &str) {
            must(
                "ip",
                &["link", "add", host, "type", "veth", "peer", "name", peer],
            );
            self.links.push(host.to_owned());
            must("ip", &["link", "set", host, "up"]);
            must("ip", &["link", "set", peer, "up"]);
        }

        /// A veth whose far end sits in `ns` with `addr`.
        fn veth_into(&mut self, host: &str, peer: &str, ns: &str, addr: &str) {
            self.veth(host, peer);
            must("ip", &["link", "set", peer, "netns", ns]);
            must("ip", &["-n", ns, "addr", "add", addr, "dev", peer]);
            must("ip", &["-n", ns, "link", "set", peer, "up"]);
        }
    }

    /// Check that no host address or route but the default covers 198.51.100.0/24.
    fn test_range_is_free() -> Result<(), String> {
        fn parse(prefix: &str) -> Option<(u32, u32)> {
            let (addr, len) = prefix.split_once('/').unwrap_or((prefix, "32"));
            Some((u32::from(addr.parse::<Ipv4Addr>().ok()?), len.parse().ok()?))
        }
        fn overlaps((addr, len): (u32, u32)) -> bool {
            let range = u32::from(Ipv4Addr::new(198, 51, 100, 0));
            let common = len.min(24);
            let mask = if common == 0 {
                0
            } else {
                u32::MAX << (32 - common)
            };
            len > 0 && len <= 32 && (addr & mask) == (range & mask)
        }
        let addrs = run("ip", &["-4", "-o", "addr", "show"])?;
        for line in addrs.lines() {
            let mut words = line.split_whitespace().skip_while(|w| *w != "inet").skip(1);
            if let Some(prefix) = words.next().and_then(parse)
                && overlaps(prefix)
            {
                return Err(format!("a host address covers 198.51.100.0/24: {line}"));
            }
        }
        let routes = run("ip", &["-4", "route", "show", "table", "all"])?;
        const TYPES: [&str; 10] = [
            "local",
            "broadcast",
            "unicast",
            "multicast",
            "unreachable",
            "blackhole",
            "prohibit",
            "throw",
            "nat",
            "anycast",
        ];
        for line in routes.lines() {
            let mut words = line.split_whitespace();
            let mut first = words.next().unwrap_or("");
            if TYPES.contains(&first) {
                first = words.next().unwrap_or("");
            }
            if let Some(prefix) = parse(first)
                && overlaps(prefix)
            {
                return Err(format!("a host route covers 198.51.100.0/24: {line}"));
            }
        }
        Ok(())
    }

    fn ping(ns: &str, addr: &str) -> bool {
        (0..3).any(|_| {
            run(
                "ip",
                &["netns", "exec", ns, "ping", "-c", "1", "-W", "2", addr],
            )
            .is_ok()
        })
    }

    /// Whether a TCP connection from `client_ns` to `server_ip` in
    /// `server_ns` carries "ping" one way and "pong" back, within seconds.
    fn tcp_works(server_ns: &str, server_ip: Ipv4Addr, client_ns: &str) -> bool {
        let listener = in_netns(&netns_path(server_ns), move || {
            TcpListener::bind((server_ip, 0)).context("listening")
        })
        .expect("listen in the server namespace");
        let target = InetAddr::from((server_ip, listener.local_addr().unwrap().port()));
        listener.set_nonblocking(true).unwrap();
        let ns = client_ns.to_owned();
        let client = std::thread::spawn(move || {
            in_netns(&netns_path(&ns), move || -> TcplabResult<[u8; 4]> {
                let exchange = || -> io::Result<[u8; 4]> {
                    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
                    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
                    stream.write_all(b"ping")?;
                    let mut answer = [0u8; 4];
                    stream.read_exact(&mut answer)?;
                    Ok(answer)
                };
                exchange().context("talking to the server")
            })
        });
        let mut served = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !client.is_finished() && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(3)))
                        .unwrap();
                    let mut got = [0u8; 4];
                    if stream.read_exact(&mut got).is_ok() && &got == b"ping" {
                        served = stream.write_all(b"pong").is_ok();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        let answer = client.join().expect("client thread");
        served && matches!(answer, Ok(a) if &a == b"pong")
    }

    #[test]
    fn real_two_netdev_bridges_carry_ping_and_tcp_after_tx_checksum_off() {
        let test = "real_two_netdev_bridges_carry_ping_and_tcp_after_tx_checksum_off";
        let Some(mut db) = real_ovs(test) else { return };
        if let Err(why) = test_range_is_free() {
            eprintln!("skipped: {test}: {why}");
            return;
        }
        if run("ping", &["-V"]).is_err() {
            eprintln!("skipped: {test}: ping (iputils-ping) is not installed");
            return;
        }
        let id = unique("t");
        let lab = format!("tcplab-test-{id}");
        let mut cleanup = Cleanup::default();
        cleanup.labs.push(lab.clone());
        let (ns_a, ns_b) = (
            format!("tcplab-ovstest-{id}-a"),
            format!("tcplab-ovstest-{id}-b"),
        );
        let (br1, br2) = (format!("{id}s1"), format!("{id}s2"));
        // A's veth on br1, B's veth on br2, and a veth pair joining br1 and br2:
        // frames from A to B cross both bridges
        let (a_host, a_ns) = (format!("{id}a"), format!("{id}A"));
        let (b_host, b_ns) = (format!("{id}b"), format!("{id}B"));
        let (x1, x2) = (format!("{id}x"), format!("{id}y"));
        cleanup.netns(&ns_a);
        cleanup.netns(&ns_b);
        cleanup.veth_into(&a_host, &a_ns, &ns_a, "198.51.100.1/24");
        cleanup.veth_into(&b_host, &b_ns, &ns_b, "198.51.100.2/24");
        cleanup.veth(&x1, &x2);

        if !kernel_datapath_available() {
            assert_eq!(db.choose_datapath().unwrap(), Datapath::Netdev);
        }
        let specs = [
            spec(&br1, &lab, "left", &[&a_host, &x1]),
            spec(&br2, &lab, "right", &[&x2, &b_host]),
        ];
        let started = Instant::now();
        db.create_bridges(Datapath::Netdev, &specs)
            .expect("create both bridges");
        eprintln!("{test}: create_bridges took {:?}", started.elapsed());

        let listed = must("ovs-vsctl", &["list-br"]);
        assert!(
            listed.lines().any(|l| l == br1) && listed.lines().any(|l| l == br2),
            "{listed}"
        );
        let ids = must("ovs-vsctl", &["br-get-external-id", &br1]);
        assert!(
            ids.contains(&format!("tcplab-lab={lab}")) && ids.contains("tcplab-network=left"),
            "{ids}"
        );
        assert_eq!(
            must("ovs-vsctl", &["get", "bridge", &br2, "fail_mode"]).trim(),
            "standalone"
        );
        assert_eq!(
            must("ovs-vsctl", &["get", "bridge", &br2, "datapath_type"]).trim(),
            "netdev"
        );
        let mut ports: Vec<String> = must("ovs-vsctl", &["list-ports", &br1])
            .lines()
            .map(str::to_owned)
            .collect();
        ports.sort();
        let mut want = vec![a_host.clone(), x1.clone()];
        want.sort();
        assert_eq!(ports, want);
        let port_ids = must("ovs-vsctl", &["get", "port", &b_host, "external_ids"]);
        assert!(port_ids.contains(&lab), "{port_ids}");
        let ofport: i64 = must("ovs-vsctl", &["get", "interface", &b_host, "ofport"])
            .trim()
            .parse()
            .unwrap();
        assert!(ofport > 0);
        assert_eq!(db.lab_bridges(&lab).unwrap(), {
            let mut both = vec![br1.clone(), br2.clone()];
            both.sort();
            both
        });

        // making them again is refused and changes nothing
        let err = db.create_bridges(Datapath::Netdev, &specs).unwrap_err();
        assert!(
            matches!(&err, OvsError::BridgeExists { name } if *name == br1),
            "{err}"
        );
        assert_eq!(must("ovs-vsctl", &["list-ports", &br1]).lines().count(), 2);

        // frames cross both bridges (standalone: NORMAL switching)
        assert!(
            ping(&ns_a, "198.51.100.2"),
            "ping A -> B through {br1} and {br2}"
        );

        // TCP does not get through the userspace datapath while the senders
        // leave checksums to "hardware" ...
        assert!(
            !tcp_works(&ns_b, Ipv4Addr::new(198, 51, 100, 2), &ns_a),
            "TCP worked with tx checksum offload on"
        );
        // ... turning it off on the bridge side is not enough ...
        for port in [&a_host, &b_host, &x1, &x2] {
            ethtool::disable_tx_checksum(port).unwrap();
            assert!(!ethtool::tx_checksum_enabled(port).unwrap());
        }
        assert!(
            !tcp_works(&ns_b, Ipv4Addr::new(198, 51, 100, 2), &ns_a),
            "TCP worked with only the host ends fixed"
        );
        // ... it must be off on the sending ends, inside the namespaces
        for (ns, ifname) in [(&ns_a, &a_ns), (&ns_b, &b_ns)] {
            let name = ifname.clone();
            let after = in_netns(&netns_path(ns), move || {
                ethtool::disable_tx_checksum(&name)
                    .and_then(|()| ethtool::tx_checksum_enabled(&name))
                    .context("turning tx checksum offload off")
            })
            .unwrap();
            assert!(!after, "tx checksum still on for {ifname}");
        }
        assert!(
            tcp_works(&ns_b, Ipv4Addr::new(198, 51, 100, 2), &ns_a),
            "TCP A -> B"
        );
        assert!(
            tcp_works(&ns_a, Ipv4Addr::new(198, 51, 100, 1), &ns_b),
            "TCP B -> A"
        );

        let started = Instant::now();
        let mut removed = db.delete_lab(&lab).unwrap();
        eprintln!("{test}: delete_lab took {:?}", started.elapsed());
        removed.sort();
        assert_eq!(removed, db_sorted(&[&br1, &br2]));
        let listed = must("ovs-vsctl", &["list-br"]);
        assert!(!listed.lines().any(|l| l == br1 || l == br2), "{listed}");
        assert!(
            run("ovs-vsctl", &["port-to-br", &a_host]).is_err(),
            "port {a_host} left behind"
        );
        assert!(
            run("ip", &["link", "show", &br1]).is_err(),
            "tap device {br1} left behind"
        );
        assert_eq!(db.delete_lab(&lab).unwrap(), Vec::<String>::new());
        // the veths themselves are the caller's
        assert!(run("ip", &["link", "show", &a_host]).is_ok());
    }

    fn db_sorted(names: &[&String]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| (*s).clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn real_missing_port_is_named_and_the_bridge_rolled_back() {
        let test = "real_missing_port_is_named_and_the_bridge_rolled_back";
        let Some(mut db) = real_ovs(test) else { return };
        let id = unique("m");
        let lab = format!("tcplab-test-{id}");
        let mut cleanup = Cleanup::default();
        cleanup.labs.push(lab.clone());
        let (present, peer, missing, bridge) = (
            format!("{id}v"),
            format!("{id}w"),
            format!("{id}z"),
            format!("{id}s"),
        );
        cleanup.veth(&present, &peer);
        let err = db
            .create_bridges(
                Datapath::Netdev,
                &[spec(&bridge, &lab, "n", &[&present, &missing])],
            )
            .unwrap_err();
        match &err {
            OvsError::Interface { name, error } => {
                assert_eq!(*name, missing);
                assert!(error.contains("No such device"), "{error}");
            }
            other => panic!("expected an interface error, got: {other}"),
        }
        eprintln!("{test}: {err}");
        assert_eq!(db.lab_bridges(&lab).unwrap(), Vec::<String>::new());
        assert!(!must("ovs-vsctl", &["list-br"]).lines().any(|l| l == bridge));
        assert!(run("ovs-vsctl", &["port-to-br", &present]).is_err());
        // the same names work once the port exists
        cleanup.veth(&missing, &format!("{id}q"));
        db.create_bridges(
            Datapath::Netdev,
            &[spec(&bridge, &lab, "n", &[&present, &missing])],
        )
        .expect("create after making the missing veth");
        assert_eq!(db.delete_lab(&lab).unwrap(), vec![bridge]);
    }

    #[test]
    fn real_unlabelled_bridges_and_ports_are_never_touched() {
        let test = "real_unlabelled_bridges_and_ports_are_never_touched";
        let Some(mut db) = real_ovs(test) else { return };
        let id = unique("u");
        let lab = format!("tcplab-test-{id}");
        let other_lab = format!("tcplab-test-{id}-other");
        let mut cleanup = Cleanup::default();
        cleanup.labs.push(lab.clone());
        cleanup.labs.push(other_lab.clone());
        let foreign = format!("{id}f");
        must(
            "ovs-vsctl",
            &[
                "add-br",
                &foreign,
                "--",
                "set",
                "bridge",
                &foreign,
                "datapath_type=netdev",
            ],
        );
        cleanup.bridges.push(foreign.clone());
        let (mine, theirs) = (format!("{id}m"), format!("{id}o"));

        // a name taken by a bridge, or by a port, is refused before anything changes
        let err = db
            .create_bridges(Datapath::Netdev, &[spec(&foreign, &lab, "n", &[])])
            .unwrap_err();
        assert!(
            matches!(&err, OvsError::BridgeExists { name } if *name == foreign),
            "{err}"
        );
        let err = db
            .create_bridges(Datapath::Netdev, &[spec(&mine, &lab, "n", &[&foreign])])
            .unwrap_err();
        assert!(
            matches!(&err, OvsError::PortInUse { name, bridge } if *name == foreign && *bridge == foreign),
            "{err}"
        );
        assert_eq!(db.lab_bridges(&lab).unwrap(), Vec::<String>::new());
        // the transaction itself guards against a bridge made meanwhile
        let (ops, layout) = create_ops(Datapath::Netdev, &[spec(&foreign, &lab, "n", &[])]);
        let results = db.transact(ops, "testing the wait guard").unwrap();
        let (index, error) = results.first_error().expect("the wait must fail");
        assert_eq!(index, layout.waits[0].0);
        assert!(error.starts_with("timed out"), "{error}");
        assert_eq!(db.lab_bridges(&lab).unwrap(), Vec::<String>::new());

        db.create_bridges(Datapath::Netdev, &[spec(&mine, &lab, "n", &[])])
            .unwrap();
        // deleting refuses when the labelled set is not the one read
        let stale = [(
            "nosuch".to_owned(),
            "00000000-0000-0000-0000-000000000000".to_owned(),
        )];
        let results = db
            .transact(delete_ops(&lab, &stale), "testing the wait guard")
            .unwrap();
        let (index, error) = results.first_error().expect("the wait must fail");
        assert_eq!(index, 0);
        assert!(error.starts_with("timed out"), "{error}");
        assert_eq!(db.lab_bridges(&lab).unwrap(), vec![mine.clone()]);
        db.create_bridges(Datapath::Netdev, &[spec(&theirs, &other_lab, "n", &[])])
            .unwrap();
        assert_eq!(db.delete_lab(&lab).unwrap(), vec![mine.clone()]);
        let listed = must("ovs-vsctl", &["list-br"]);
        assert!(
            listed.lines().any(|l| l == foreign),
            "unlabelled bridge removed: {listed}"
        );
        assert!(
            listed.lines().any(|l| l == theirs),
            "other lab's bridge removed: {listed}"
        );
        assert!(!listed.lines().any(|l| l == mine), "{listed}");
        assert_eq!(db.delete_lab(&other_lab).unwrap(), vec![theirs]);
        assert_eq!(db.lab_bridges(&other_lab).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn real_kernel_datapath_absence_is_detected_and_reported() {
        let test = "real_kernel_datapath_absence_is_detected_and_reported";
        let Some(mut db) = real_ovs(test) else { return };
        if kernel_datapath_available() {
            assert_eq!(db.choose_datapath().unwrap(), Datapath::System);
            eprintln!("skipped: {test}: this kernel has the Open vSwitch datapath");
            return;
        }
        assert_eq!(db.choose_datapath().unwrap(), Datapath::Netdev);
        let id = unique("k");
        let lab = format!("tcplab-test-{id}");
        let mut cleanup = Cleanup::default();
        cleanup.labs.push(lab.clone());
        let bridge = format!("{id}s");
        let started = Instant::now();
        let err = db
            .create_bridges(Datapath::System, &[spec(&bridge, &lab, "n", &[])])
            .unwrap_err();
        eprintln!("{test}: {err} (after {:?})", started.elapsed());
        assert!(
            matches!(&err, OvsError::BridgeFailed { name, .. } if *name == bridge),
            "{err}"
        );
        assert_eq!(db.lab_bridges(&lab).unwrap(), Vec::<String>::new());
    }
}
