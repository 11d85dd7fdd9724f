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
//! netlink ([`kernel_datapath_available`]), since `ovsdb-server` lists
//! `system` among its datapath types even where the kernel module is missing.
//!
//! Nothing here spawns a process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Where Debian's `ovsdb-server` listens by default.
pub const DEFAULT_SOCKET: &str = "/var/run/openvswitch/db.sock";
/// `external_ids` key naming the lab a bridge, port or interface belongs to.
pub const LAB_KEY: &str = "tcplab-lab";
/// `external_ids` key naming the lab network a bridge, port or interface belongs to.
pub const NETWORK_KEY: &str = "tcplab-network";

/// The database every request goes to.
const DATABASE: &str = "Open_vSwitch";
/// How long one request may wait for its answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long ovs-vswitchd may take to apply a change.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after applying an interface may still lack an OpenFlow port.
const OFPORT_GRACE: Duration = Duration::from_secs(1);
/// Pause between two polls of `cur_cfg` or of the interfaces.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Largest JSON-RPC message accepted from the server.
const MAX_MESSAGE: usize = 64 << 20;
/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// How often `delete_lab` retries when the lab's bridges change under it.
const DELETE_ATTEMPTS: usize = 3;

/// What can go wrong while talking to Open vSwitch.
///
/// Every message is one line that says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// The socket does not exist or nothing listens on it.
    #[error(
        "Open vSwitch is not running ({detail}): install openvswitch-switch and start it (scripts/setup-host.sh does both)"
    )]
    NotRunning {
        /// What was seen, e.g. "no /var/run/openvswitch/db.sock".
        detail: String,
    },
    /// Connecting to the socket failed for another reason (e.g. permissions).
    #[error(
        "cannot connect to ovsdb-server at {socket}: {source}: run tcplab as root and check that ovsdb-server is running (scripts/setup-host.sh starts it)"
    )]
    Connect {
        /// The socket path.
        socket: String,
        /// The error from `connect`.
        #[source]
        source: io::Error,
    },
    /// The server has no `Open_vSwitch` database.
    #[error(
        "ovsdb-server at {socket} serves no Open_vSwitch database: create it and restart Open vSwitch (scripts/setup-host.sh does both)"
    )]
    NoDatabase {
        /// The socket path.
        socket: String,
    },
    /// Reading from or writing to the server failed, or it hung up.
    #[error(
        "lost the connection to ovsdb-server while {during}: {source}: check that ovsdb-server is still running (scripts/setup-host.sh restarts it)"
    )]
    Io {
        /// What the client was doing.
        during: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server did not answer in time.
    #[error(
        "ovsdb-server did not answer within {secs} s while {during}: check that it is running and not stuck (scripts/setup-host.sh restarts it)"
    )]
    Timeout {
        /// What the client was doing.
        during: &'static str,
        /// How long it waited, in seconds.
        secs: u64,
    },
    /// An earlier I/O, timeout or protocol error left the connection unusable.
    #[error("the connection to ovsdb-server is unusable after an earlier error: connect again")]
    Broken,
    /// The server sent something that is not OVSDB JSON-RPC.
    #[error(
        "unexpected answer from ovsdb-server while {during}: {detail}: check that the socket belongs to Open vSwitch's ovsdb-server"
    )]
    Protocol {
        /// What the client was doing.
        during: &'static str,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The server answered the JSON-RPC request with an error.
    #[error(
        "ovsdb-server rejected the request while {during}: {error}: this is a tcplab bug, please report it with the Open vSwitch version"
    )]
    Rpc {
        /// What the client was doing.
        during: &'static str,
        /// The server's error, as one line.
        error: String,
    },
    /// An operation of a transaction failed; nothing of it was applied.
    #[error(
        "the Open vSwitch transaction failed while {during}: {error}: nothing was changed; run `ovs-vsctl show` to look for names already in use"
    )]
    Transaction {
        /// What the client was doing.
        during: &'static str,
        /// The server's error and details, as one line.
        error: String,
    },
    /// A bridge of that name already exists.
    #[error(
        "an Open vSwitch bridge named {name} already exists: remove it (ovs-vsctl del-br {name}) or give the network another name"
    )]
    BridgeExists {
        /// The bridge name.
        name: String,
    },
    /// A port of that name already belongs to some bridge.
    #[error(
        "{name} is already a port of Open vSwitch bridge {bridge}: remove it from there (ovs-vsctl del-port {name}) or use another interface"
    )]
    PortInUse {
        /// The port name.
        name: String,
        /// The bridge holding it ("?" if none could be found).
        bridge: String,
    },
    /// The caller's input cannot be used; the message says why and what to do.
    #[error("invalid input for Open vSwitch: {0}")]
    Invalid(String),
    /// ovs-vswitchd did not apply the change in time.
    #[error(
        "ovs-vswitchd did not apply the change within {secs} s: check that ovs-vswitchd is running (scripts/setup-host.sh starts it)"
    )]
    NotApplied {
        /// How long it waited, in seconds.
        secs: u64,
    },
    /// ovs-vswitchd could not make the bridge itself (its local port got no OpenFlow port).
    #[error(
        "ovs-vswitchd could not create bridge {name} with the {datapath} datapath ({error}): without the kernel openvswitch module only the netdev datapath works; see /var/log/openvswitch/ovs-vswitchd.log"
    )]
    BridgeFailed {
        /// The bridge name.
        name: String,
        /// The datapath type asked for.
        datapath: Datapath,
        /// The local port's `error` column, or what else was wrong.
        error: String,
    },
    /// ovs-vswitchd could not attach an interface.
    #[error(
        "ovs-vswitchd could not add interface {name}: {error}: check that the interface exists in the host namespace before the bridge is made; see /var/log/openvswitch/ovs-vswitchd.log"
    )]
    Interface {
        /// The interface name.
        name: String,
        /// The `error` column, or what else was wrong.
        error: String,
    },
    /// Neither the kernel nor the userspace datapath can be used.
    #[error(
        "Open vSwitch offers no usable datapath (datapath_types: {types}): check that ovs-vswitchd is running (scripts/setup-host.sh starts it)"
    )]
    NoDatapath {
        /// The `datapath_types` column as seen.
        types: String,
    },
}

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
    stream: UnixStream,
    socket: String,
    buf: Vec<u8>,
    framer: Framer,
    next_id: u64,
    io_timeout: Duration,
    broken: bool,
}

impl fmt::Debug for Ovsdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ovsdb")
            .field("socket", &self.socket)
            .field("broken", &self.broken)
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
        let socket = path.display().to_string();
        let stream = match UnixStream::connect(path) {
            Ok(stream) => stream,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OvsError::NotRunning {
                    detail: format!("no {socket}"),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(OvsError::NotRunning {
                    detail: format!("nothing listens on {socket}"),
                });
            }
            Err(source) => return Err(OvsError::Connect { socket, source }),
        };
        if let Err(source) = stream.set_write_timeout(Some(io_timeout)) {
            return Err(OvsError::Connect { socket, source });
        }
        let mut db = Ovsdb {
            stream,
            socket,
            buf: Vec::new(),
            framer: Framer::default(),
            next_id: 1,
            io_timeout,
            broken: false,
        };
        let dbs = db.call("list_dbs", json!([]), "listing databases")?;
        let listed = dbs
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(DATABASE)));
        if !listed {
            return Err(OvsError::NoDatabase { socket: db.socket });
        }
        Ok(db)
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
            json!([]),
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
        self.check_names_free(bridges)?;
        let (ops, layout) = create_ops(datapath, bridges);
        let during = "creating bridges";
        let results = self.transact(ops, during)?;
        if let Some((index, error)) = first_error(&results) {
            // a failed `wait` says "timed out": the name was taken meanwhile
            if let Some((_, name)) = layout.waits.iter().find(|(i, _)| *i == index)
                && error.starts_with("timed out")
            {
                return Err(OvsError::BridgeExists { name: name.clone() });
            }
            return Err(OvsError::Transaction { during, error });
        }
        let bridge_uuids = inserted_uuids(&results, &layout.bridges, during)?;
        let mut ifaces = HashMap::new();
        for (index, name, local) in &layout.ifaces {
            let uuid = inserted_uuids(&results, &[*index], during)?
                .pop()
                .unwrap_or_default();
            ifaces.insert(uuid, (name.clone(), *local));
        }
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
            if found.is_empty() {
                return Ok(Vec::new());
            }
            found.sort();
            let ops = delete_ops(lab, &found);
            let results = self.transact(ops, during)?;
            if let Some((index, error)) = first_error(&results) {
                if index == 0 && error.starts_with("timed out") {
                    // the labelled set changed since it was read: read again
                    continue;
                }
                return Err(OvsError::Transaction { during, error });
            }
            let target = selected_next_cfg(&results, 2, during)?;
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

    /// Remove the bridges with these row uuids after a failed creation,
    /// reconnecting if the connection broke. Errors are ignored: the caller
    /// reports the original one.
    fn rollback(&mut self, uuids: &[String]) {
        if uuids.is_empty() {
            return;
        }
        if self.broken {
            match Self::connect_with_timeout(Path::new(&self.socket), self.io_timeout) {
                Ok(fresh) => *self = fresh,
                Err(_) => return,
            }
        }
        let during = "undoing a failed bridge creation";
        let mut ops = vec![json!({
            "op": "mutate",
            "table": DATABASE,
            "where": [],
            "mutations": [
                ["bridges", "delete", oset(uuids.iter().map(|u| ouuid(u)).collect())],
                ["next_cfg", "+=", 1]
            ]
        })];
        ops.push(json!({"op": "select", "table": DATABASE, "where": [], "columns": ["next_cfg"]}));
        ops.push(json!({"op": "comment", "comment": "tcplab: undo a failed bridge creation"}));
        if let Ok(results) = self.transact(ops, during)
            && first_error(&results).is_none()
            && let Ok(target) = selected_next_cfg(&results, 1, during)
        {
            let _ = self.wait_applied(target);
        }
    }

    /// Fail early, with a precise message, if a bridge or port name is taken.
    fn check_names_free(&mut self, bridges: &[BridgeSpec]) -> Result<(), OvsError> {
        let during = "checking that the names are free";
        let ops = vec![
            json!({"op": "select", "table": "Bridge", "where": [], "columns": ["name", "ports"]}),
            json!({"op": "select", "table": "Port", "where": [], "columns": ["_uuid", "name"]}),
        ];
        let results = self.transact(ops, during)?;
        if let Some((_, error)) = first_error(&results) {
            return Err(OvsError::Transaction { during, error });
        }
        let bridge_rows = rows_of(results.first(), during)?;
        let port_rows = rows_of(results.get(1), during)?;
        let mut owner: HashMap<&str, &str> = HashMap::new();
        let mut existing: BTreeSet<&str> = BTreeSet::new();
        for row in &bridge_rows {
            let Some(name) = row.get("name").and_then(Value::as_str) else {
                continue;
            };
            existing.insert(name);
            for port in row.get("ports").map(decode_set).unwrap_or_default() {
                if let Some(uuid) = decode_uuid(port) {
                    owner.insert(uuid, name);
                }
            }
        }
        for spec in bridges {
            if existing.contains(spec.name.as_str()) {
                return Err(OvsError::BridgeExists {
                    name: spec.name.clone(),
                });
            }
        }
        let wanted: BTreeSet<&str> = bridges
            .iter()
            .flat_map(|b| {
                std::iter::once(b.name.as_str()).chain(b.ports.iter().map(String::as_str))
            })
            .collect();
        for row in &port_rows {
            let Some(name) = row.get("name").and_then(Value::as_str) else {
                continue;
            };
            if wanted.contains(name) {
                let bridge = row
                    .get("_uuid")
                    .and_then(decode_uuid)
                    .and_then(|u| owner.get(u))
                    .map_or("?", |b| b);
                return Err(OvsError::PortInUse {
                    name: name.to_owned(),
                    bridge: bridge.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Poll `cur_cfg` until it reaches `target` or [`APPLY_TIMEOUT`] passes.
    fn wait_applied(&mut self, target: i64) -> Result<(), OvsError> {
        let during = "waiting for ovs-vswitchd";
        let deadline = Instant::now() + APPLY_TIMEOUT;
        loop {
            let rows = self.select(DATABASE, json!([]), &["cur_cfg"], during)?;
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
    /// OpenFlow port.
    fn check_interfaces(
        &mut self,
        labs: &BTreeSet<&str>,
        expected: &HashMap<String, (String, bool)>,
        datapath: Datapath,
    ) -> Result<(), OvsError> {
        let during = "checking the new interfaces";
        let grace = Instant::now() + OFPORT_GRACE;
        loop {
            let mut seen = 0;
            // (local port?, name, error text or None when only ofport is still missing)
            let mut problems: Vec<(bool, String, Option<String>)> = Vec::new();
            for lab in labs {
                let rows = self.select(
                    "Interface",
                    lab_condition(lab),
                    &["_uuid", "name", "error", "ofport"],
                    during,
                )?;
                for row in &rows {
                    let Some(uuid) = row.get("_uuid").and_then(decode_uuid) else {
                        continue;
                    };
                    let Some((name, local)) = expected.get(uuid) else {
                        continue;
                    };
                    seen += 1;
                    let error = row
                        .get("error")
                        .and_then(|v| {
                            decode_set(v)
                                .first()
                                .and_then(|e| e.as_str())
                                .map(str::to_owned)
                        })
                        .filter(|e| !e.is_empty());
                    let ofport = row
                        .get("ofport")
                        .and_then(|v| decode_set(v).first().and_then(|p| p.as_i64()));
                    match (error, ofport) {
                        (Some(error), _) => problems.push((*local, name.clone(), Some(error))),
                        (None, Some(-1)) => problems.push((
                            *local,
                            name.clone(),
                            Some("it got no OpenFlow port (ofport -1)".to_owned()),
                        )),
                        (None, None) => problems.push((*local, name.clone(), None)),
                        (None, Some(_)) => {}
                    }
                }
            }
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
            let settled =
                problems.iter().any(|(_, _, error)| error.is_some()) || Instant::now() >= grace;
            if problems.is_empty() {
                return Ok(());
            }
            if settled {
                // a bridge that failed as a whole first, then by name
                problems.sort_by(|a, b| (!a.0, &a.1).cmp(&(!b.0, &b.1)));
                let count = problems.len();
                let (local, name, error) = problems.swap_remove(0);
                let mut error = error.unwrap_or_else(|| "it got no OpenFlow port".to_owned());
                if local {
                    error = error.replacen("it got", "its local port got", 1);
                    return Err(OvsError::BridgeFailed {
                        name,
                        datapath,
                        error,
                    });
                }
                if count > 1 {
                    error = format!("{error} (and {} more interfaces failed)", count - 1);
                }
                return Err(OvsError::Interface { name, error });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// One `select` in a transaction of its own.
    fn select(
        &mut self,
        table: &str,
        condition: Value,
        columns: &[&str],
        during: &'static str,
    ) -> Result<Vec<Map<String, Value>>, OvsError> {
        let ops =
            vec![json!({"op": "select", "table": table, "where": condition, "columns": columns})];
        let results = self.transact(ops, during)?;
        if let Some((_, error)) = first_error(&results) {
            return Err(OvsError::Transaction { during, error });
        }
        rows_of(results.first(), during)
    }

    /// Send a `transact` request and return its result array (which may hold
    /// per-operation errors: see [`first_error`]).
    fn transact(&mut self, ops: Vec<Value>, during: &'static str) -> Result<Vec<Value>, OvsError> {
        let mut params = Vec::with_capacity(ops.len() + 1);
        params.push(Value::from(DATABASE));
        params.extend(ops);
        match self.call("transact", Value::Array(params), during)? {
            Value::Array(results) => Ok(results),
            other => Err(OvsError::Protocol {
                during,
                detail: format!("transact answered {} instead of an array", brief(&other)),
            }),
        }
    }

    /// One JSON-RPC call. Connection-level failures make the connection unusable.
    fn call(
        &mut self,
        method: &str,
        params: Value,
        during: &'static str,
    ) -> Result<Value, OvsError> {
        if self.broken {
            return Err(OvsError::Broken);
        }
        let outcome = self.call_inner(method, params, during);
        if matches!(
            outcome,
            Err(OvsError::Io { .. } | OvsError::Timeout { .. } | OvsError::Protocol { .. })
        ) {
            self.broken = true;
        }
        outcome
    }

    fn call_inner(
        &mut self,
        method: &str,
        params: Value,
        during: &'static str,
    ) -> Result<Value, OvsError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let request = Request {
            method,
            params: &params,
            id: Value::from(id),
        };
        self.send(&request, during)?;
        let deadline = Instant::now() + self.io_timeout;
        loop {
            let incoming = self.receive(deadline, during)?;
            if let Some(method) = &incoming.method {
                // a request or notification from the server
                if method == "echo" && !incoming.id.is_null() {
                    let reply = Reply {
                        result: &incoming.params,
                        error: None,
                        id: &incoming.id,
                    };
                    self.send(&reply, during)?;
                }
                continue;
            }
            if incoming.id.as_u64() != Some(id) {
                continue; // an answer to something else
            }
            if !incoming.error.is_null() {
                return Err(OvsError::Rpc {
                    during,
                    error: one_line(&brief(&incoming.error)),
                });
            }
            return Ok(incoming.result);
        }
    }

    fn send(&mut self, message: &impl Serialize, during: &'static str) -> Result<(), OvsError> {
        let bytes = serde_json::to_vec(message).map_err(|e| OvsError::Protocol {
            during,
            detail: format!("cannot encode the request: {e}"),
        })?;
        self.stream
            .write_all(&bytes)
            .map_err(|source| match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => OvsError::Timeout {
                    during,
                    secs: self.io_timeout.as_secs(),
                },
                _ => OvsError::Io { during, source },
            })
    }

    /// Read until one complete JSON message is buffered, and decode it.
    fn receive(&mut self, deadline: Instant, during: &'static str) -> Result<Incoming, OvsError> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match self.framer.scan(&self.buf) {
                Err(detail) => return Err(OvsError::Protocol { during, detail }),
                Ok(Some(end)) => {
                    let decoded = serde_json::from_slice::<Incoming>(&self.buf[..end]);
                    self.buf.drain(..end);
                    self.framer = Framer::default();
                    return decoded.map_err(|e| OvsError::Protocol {
                        during,
                        detail: format!("not a JSON-RPC message: {e}"),
                    });
                }
                Ok(None) => {}
            }
            if self.buf.len() > MAX_MESSAGE {
                return Err(OvsError::Protocol {
                    during,
                    detail: format!("a message longer than {MAX_MESSAGE} bytes"),
                });
            }
            let timeout = OvsError::Timeout {
                during,
                secs: self.io_timeout.as_secs(),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(timeout);
            }
            if let Err(source) = self.stream.set_read_timeout(Some(remaining)) {
                return Err(OvsError::Io { during, source });
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(OvsError::Io {
                        during,
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "ovsdb-server closed the connection",
                        ),
                    });
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(timeout);
                }
                Err(source) => return Err(OvsError::Io { during, source }),
            }
        }
    }
}

/// A JSON-RPC request from the client.
#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    params: &'a Value,
    id: Value,
}

/// The client's answer to a server request (only `echo`).
#[derive(Serialize)]
struct Reply<'a> {
    result: &'a Value,
    error: Option<()>,
    id: &'a Value,
}

/// Any message from the server: a response, a request or a notification.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Incoming {
    id: Value,
    method: Option<String>,
    params: Value,
    result: Value,
    error: Value,
}

/// Finds where one top-level JSON object or array ends in a byte stream
/// (ovsdb-server sends messages back to back, without delimiters).
#[derive(Debug, Default)]
struct Framer {
    /// How far `buf` has been scanned.
    pos: usize,
    /// The closing brackets expected, innermost last; empty before a message starts.
    open: Vec<u8>,
    in_string: bool,
    escaped: bool,
}

impl Framer {
    /// Scan the new bytes of `buf` (which only ever grows between resets).
    /// `Ok(Some(end))` when `buf[..end]` holds one complete message.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        while let Some(&byte) = buf.get(self.pos) {
            self.pos += 1;
            if self.open.is_empty() {
                match byte {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' => self.open.push(b'}'),
                    b'[' => self.open.push(b']'),
                    _ => {
                        return Err(format!(
                            "byte 0x{byte:02x} where a JSON message should start"
                        ));
                    }
                }
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' => self.open.push(b'}'),
                b'[' => self.open.push(b']'),
                b'}' | b']' => {
                    if self.open.pop() != Some(byte) {
                        return Err(format!("unbalanced '{}' in a JSON message", byte as char));
                    }
                    if self.open.is_empty() {
                        return Ok(Some(self.pos));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

/// Where the interesting results of a creation transaction are.
#[derive(Debug, Default)]
struct CreateLayout {
    /// (op index, bridge name) of each `wait` asserting the name is free.
    waits: Vec<(usize, String)>,
    /// Op index of each Bridge insert.
    bridges: Vec<usize>,
    /// (op index, interface name, is the bridge's local port) of each Interface insert.
    ifaces: Vec<(usize, String, bool)>,
    /// Op index of the `select` of `next_cfg`.
    select: usize,
}

/// The operations of the creation transaction (see [`Ovsdb::create_bridges`]).
fn create_ops(datapath: Datapath, bridges: &[BridgeSpec]) -> (Vec<Value>, CreateLayout) {
    let mut ops = Vec::new();
    let mut layout = CreateLayout::default();
    let mut bridge_refs = Vec::new();
    for (i, spec) in bridges.iter().enumerate() {
        let labels = omap(&[(LAB_KEY, &spec.lab), (NETWORK_KEY, &spec.network)]);
        layout.waits.push((ops.len(), spec.name.clone()));
        ops.push(json!({
            "op": "wait",
            "table": "Bridge",
            "where": [["name", "==", spec.name]],
            "columns": ["name"],
            "until": "==",
            "rows": [],
            "timeout": 0
        }));
        let mut port_refs = Vec::new();
        // the bridge's local port: an internal interface named like the bridge
        let members = std::iter::once((spec.name.as_str(), true))
            .chain(spec.ports.iter().map(|p| (p.as_str(), false)));
        for (j, (name, local)) in members.enumerate() {
            let iface_ref = format!("tcplab_b{i}_i{j}");
            let port_ref = format!("tcplab_b{i}_p{j}");
            let mut iface_row = json!({"name": name, "external_ids": labels});
            if local {
                iface_row["type"] = json!("internal");
            }
            layout.ifaces.push((ops.len(), name.to_owned(), local));
            ops.push(json!({"op": "insert", "table": "Interface", "uuid-name": iface_ref, "row": iface_row}));
            ops.push(json!({
                "op": "insert",
                "table": "Port",
                "uuid-name": port_ref,
                "row": {"name": name, "interfaces": onamed(&iface_ref), "external_ids": labels}
            }));
            port_refs.push(onamed(&port_ref));
        }
        let bridge_ref = format!("tcplab_b{i}");
        layout.bridges.push(ops.len());
        ops.push(json!({
            "op": "insert",
            "table": "Bridge",
            "uuid-name": bridge_ref,
            "row": {
                "name": spec.name,
                "datapath_type": datapath.as_str(),
                "fail_mode": "standalone",
                "ports": oset(port_refs),
                "external_ids": labels
            }
        }));
        bridge_refs.push(onamed(&bridge_ref));
    }
    ops.push(json!({
        "op": "mutate",
        "table": DATABASE,
        "where": [],
        "mutations": [["bridges", "insert", oset(bridge_refs)], ["next_cfg", "+=", 1]]
    }));
    layout.select = ops.len();
    ops.push(json!({"op": "select", "table": DATABASE, "where": [], "columns": ["next_cfg"]}));
    let labs: BTreeSet<&str> = bridges.iter().map(|b| b.lab.as_str()).collect();
    let names: Vec<&str> = bridges.iter().map(|b| b.name.as_str()).collect();
    ops.push(json!({
        "op": "comment",
        "comment": format!(
            "tcplab: create bridges {} of lab {}",
            names.join(", "),
            labs.into_iter().collect::<Vec<_>>().join(", ")
        )
    }));
    (ops, layout)
}

/// The operations removing the bridges `found` ((name, uuid), sorted) of `lab`:
/// op 0 asserts the lab's labelled bridges are still exactly these, op 2
/// selects the new `next_cfg`.
fn delete_ops(lab: &str, found: &[(String, String)]) -> Vec<Value> {
    let rows: Vec<Value> = found
        .iter()
        .map(|(name, _)| json!({"name": name}))
        .collect();
    let uuids: Vec<Value> = found.iter().map(|(_, uuid)| ouuid(uuid)).collect();
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    vec![
        json!({
            "op": "wait",
            "table": "Bridge",
            "where": lab_condition(lab),
            "columns": ["name"],
            "until": "==",
            "rows": rows,
            "timeout": 0
        }),
        json!({
            "op": "mutate",
            "table": DATABASE,
            "where": [],
            "mutations": [["bridges", "delete", oset(uuids)], ["next_cfg", "+=", 1]]
        }),
        json!({"op": "select", "table": DATABASE, "where": [], "columns": ["next_cfg"]}),
        json!({
            "op": "comment",
            "comment": format!("tcplab: delete bridges {} of lab {lab}", names.join(", "))
        }),
    ]
}

/// Reject what Linux or OVSDB cannot take, before anything is sent.
fn validate_specs(bridges: &[BridgeSpec]) -> Result<(), OvsError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for spec in bridges {
        check_label("lab", &spec.lab)?;
        if spec.lab.is_empty() {
            return Err(OvsError::Invalid(format!(
                "bridge {:?} has an empty lab name: give the lab a name",
                spec.name
            )));
        }
        check_label("network", &spec.network)?;
        check_ifname("bridge", &spec.name)?;
        for port in &spec.ports {
            check_ifname("port", port)?;
        }
        let members = std::iter::once(&spec.name).chain(spec.ports.iter());
        for name in members {
            if let Some(first) = seen.insert(name, &spec.name) {
                return Err(OvsError::Invalid(format!(
                    "the name {name:?} is used twice (bridge {first:?} and bridge {:?}); a bridge's own port has the bridge's name: make every bridge and port name unique",
                    spec.name
                )));
            }
        }
    }
    Ok(())
}

/// A lab or network label: any text without NUL (OVSDB refuses NUL).
fn check_label(what: &str, value: &str) -> Result<(), OvsError> {
    if value.contains('\0') {
        return Err(OvsError::Invalid(format!(
            "the {what} name {value:?} contains a NUL character: remove it"
        )));
    }
    Ok(())
}

/// What Linux accepts as an interface name.
fn check_ifname(what: &str, name: &str) -> Result<(), OvsError> {
    let problem = if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > MAX_IFNAME {
        Some(format!(
            "is {} bytes long, more than the {MAX_IFNAME} of a Linux interface name",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("is not allowed".to_owned())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("contains '/', ':', a space or a control character".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(OvsError::Invalid(format!(
            "{what} name {name:?} {problem}: choose a shorter plain name"
        ))),
        None => Ok(()),
    }
}

/// Pick the datapath from what the kernel has and what ovs-vswitchd lists.
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

/// `where` clause matching rows labelled with `lab`.
fn lab_condition(lab: &str) -> Value {
    json!([["external_ids", "includes", ["map", [[LAB_KEY, lab]]]]])
}

/// OVSDB `["set", [...]]`.
fn oset(items: Vec<Value>) -> Value {
    json!(["set", items])
}

/// OVSDB `["map", [[k, v], ...]]`.
fn omap(pairs: &[(&str, &str)]) -> Value {
    let pairs: Vec<Value> = pairs.iter().map(|(k, v)| json!([k, v])).collect();
    json!(["map", pairs])
}

/// OVSDB `["named-uuid", name]`, a row inserted in the same transaction.
fn onamed(name: &str) -> Value {
    json!(["named-uuid", name])
}

/// OVSDB `["uuid", uuid]`.
fn ouuid(uuid: &str) -> Value {
    json!(["uuid", uuid])
}

/// Members of an OVSDB set (`["set", [...]]`, or a lone atom as a set of one).
fn decode_set(value: &Value) -> Vec<&Value> {
    match value.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(items)]) if tag == "set" => items.iter().collect(),
        _ => vec![value],
    }
}

/// The text of an OVSDB `["uuid", "..."]`.
fn decode_uuid(value: &Value) -> Option<&str> {
    match value.as_array().map(Vec::as_slice) {
        Some([tag, Value::String(uuid)]) if tag == "uuid" => Some(uuid),
        _ => None,
    }
}

/// The first failed operation of a transaction result: (index, "error: details").
/// An extra element after the operations' results is a commit failure.
fn first_error(results: &[Value]) -> Option<(usize, String)> {
    results.iter().enumerate().find_map(|(index, result)| {
        let error = result.get("error")?;
        if error.is_null() {
            return None;
        }
        let mut text = error.as_str().map_or_else(|| brief(error), str::to_owned);
        if let Some(details) = result.get("details").and_then(Value::as_str) {
            text.push_str(": ");
            text.push_str(details);
        }
        Some((index, one_line(&text)))
    })
}

/// The `rows` of a select result.
fn rows_of(
    result: Option<&Value>,
    during: &'static str,
) -> Result<Vec<Map<String, Value>>, OvsError> {
    let bad = || OvsError::Protocol {
        during,
        detail: "a select result without rows".to_owned(),
    };
    let rows = result
        .and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .ok_or_else(bad)?;
    rows.iter()
        .map(|row| row.as_object().cloned().ok_or_else(bad))
        .collect()
}

/// The uuids of the rows inserted by the operations at `indexes`.
fn inserted_uuids(
    results: &[Value],
    indexes: &[usize],
    during: &'static str,
) -> Result<Vec<String>, OvsError> {
    indexes
        .iter()
        .map(|&i| {
            results
                .get(i)
                .and_then(|r| r.get("uuid"))
                .and_then(decode_uuid)
                .map(str::to_owned)
                .ok_or_else(|| OvsError::Protocol {
                    during,
                    detail: format!("insert result {i} without a uuid"),
                })
        })
        .collect()
}

/// `next_cfg` from the select at `index`.
fn selected_next_cfg(
    results: &[Value],
    index: usize,
    during: &'static str,
) -> Result<i64, OvsError> {
    rows_of(results.get(index), during)?
        .first()
        .and_then(|row| row.get("next_cfg"))
        .and_then(Value::as_i64)
        .ok_or_else(|| OvsError::Protocol {
            during,
            detail: "no next_cfg in the Open_vSwitch table".to_owned(),
        })
}

/// A JSON value as short text for an error message.
fn brief(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Text on one line, without a final period.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.trim_end_matches('.').to_owned()
}

/// Whether the kernel has Open vSwitch's datapath, asked of generic netlink:
/// does the family "ovs_datapath" exist (`CTRL_CMD_GETFAMILY`)? False on any
/// error. Families are global, so the calling thread's namespace does not matter.
pub fn kernel_datapath_available() -> bool {
    genl::family_exists("ovs_datapath").unwrap_or(false)
}

/// A minimal generic netlink `CTRL_CMD_GETFAMILY` query.
mod genl {
    use std::io;

    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
    use nix::sys::time::TimeVal;

    const NLMSG_HDRLEN: usize = 16;
    const GENL_HDRLEN: usize = 4;
    const NLA_HDRLEN: usize = 4;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLMSG_ERROR: u16 = 0x2;
    /// `GENL_ID_CTRL`: the controller family's fixed id.
    const GENL_ID_CTRL: u16 = 0x10;
    const CTRL_CMD_GETFAMILY: u8 = 3;
    const CTRL_ATTR_FAMILY_NAME: u16 = 2;
    /// `GENL_NAMSIZ`, including the final NUL.
    const GENL_NAMSIZ: usize = 16;
    const SEQ: u32 = 1;

    fn align4(n: usize) -> usize {
        (n + 3) & !3
    }

    /// Whether the generic netlink family `name` exists.
    pub(super) fn family_exists(name: &str) -> io::Result<bool> {
        let request = getfamily_request(name, SEQ)?;
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        let timeout = TimeVal::new(1, 0);
        setsockopt(&socket, ReceiveTimeout, &timeout).map_err(io::Error::from)?;
        socket.send_to(&request, &SocketAddr::new(0, 0), 0)?;
        // the kernel answers synchronously; skip anything unrelated, boundedly
        for _ in 0..8 {
            let mut buf: Vec<u8> = Vec::with_capacity(32 * 1024);
            socket.recv(&mut buf, 0)?;
            if let Some(answer) = parse_getfamily_reply(&buf, SEQ, name) {
                return Ok(answer);
            }
        }
        Err(io::Error::other(format!(
            "no answer about generic netlink family {name:?}"
        )))
    }

    /// `nlmsghdr` + `genlmsghdr` + `CTRL_ATTR_FAMILY_NAME`, native endian.
    pub(super) fn getfamily_request(name: &str, seq: u32) -> io::Result<Vec<u8>> {
        if name.is_empty() || name.contains('\0') || name.len() + 1 > GENL_NAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a generic netlink family name"),
            ));
        }
        let attr_len = NLA_HDRLEN + name.len() + 1;
        let total = NLMSG_HDRLEN + GENL_HDRLEN + align4(attr_len);
        let mut msg = Vec::with_capacity(total);
        // lengths are at most 16 + 4 + 20 bytes: the conversions cannot fail
        msg.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_ne_bytes());
        msg.extend_from_slice(&GENL_ID_CTRL.to_ne_bytes());
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        msg.extend_from_slice(&[CTRL_CMD_GETFAMILY, 1, 0, 0]); // cmd, version, reserved
        msg.extend_from_slice(&u16::try_from(attr_len).unwrap_or(u16::MAX).to_ne_bytes());
        msg.extend_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
        msg.extend_from_slice(name.as_bytes());
        msg.resize(total, 0);
        Ok(msg)
    }

    fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
    }

    fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
    }

    /// `Some(true)` if `buf` holds the controller's description of family
    /// `name` for `seq`, `Some(false)` if it holds an error for `seq`, `None`
    /// if it says nothing about it (or is malformed).
    pub(super) fn parse_getfamily_reply(buf: &[u8], seq: u32, name: &str) -> Option<bool> {
        let mut offset = 0;
        while offset + NLMSG_HDRLEN <= buf.len() {
            let len = u32_at(buf, offset)? as usize;
            let kind = u16_at(buf, offset + 4)?;
            let msg_seq = u32_at(buf, offset + 8)?;
            if len < NLMSG_HDRLEN || offset + len > buf.len() {
                return None;
            }
            let msg = &buf[offset..offset + len];
            if msg_seq == seq {
                if kind == NLMSG_ERROR {
                    let code = i32::from_ne_bytes(
                        msg.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)?.try_into().ok()?,
                    );
                    if code != 0 {
                        return Some(false);
                    }
                } else if kind == GENL_ID_CTRL {
                    return Some(family_name(msg).is_none_or(|found| found == name));
                }
            }
            offset += align4(len);
        }
        None
    }

    /// The `CTRL_ATTR_FAMILY_NAME` attribute of a controller message.
    fn family_name(msg: &[u8]) -> Option<&str> {
        let mut at = NLMSG_HDRLEN + GENL_HDRLEN;
        while at + NLA_HDRLEN <= msg.len() {
            let len = u16_at(msg, at)? as usize;
            let kind = u16_at(msg, at + 2)? & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
            if len < NLA_HDRLEN || at + len > msg.len() {
                return None;
            }
            if kind == CTRL_ATTR_FAMILY_NAME {
                let data = &msg[at + NLA_HDRLEN..at + len];
                let data = data.split(|&b| b == 0).next().unwrap_or(data);
                return std::str::from_utf8(data).ok();
            }
            at += align4(len);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::ethtool;
    use super::*;
    use std::fs::File;
    use std::net::{Ipv4Addr, SocketAddr as InetAddr, TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
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

    fn spec(name: &str, lab: &str, network: &str, ports: &[&str]) -> BridgeSpec {
        BridgeSpec {
            name: name.to_owned(),
            lab: lab.to_owned(),
            network: network.to_owned(),
            ports: ports.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    // ---------------------------------------------------------------- pure

    #[test]
    fn framer_splits_back_to_back_messages() {
        let stream = br#" {"a":"}{[\"\\"} [1,[2]]{"b":{"c":[]}}{"partial":"#;
        let mut buf = stream.to_vec();
        let mut framer = Framer::default();
        let mut messages = Vec::new();
        while let Some(end) = framer.scan(&buf).expect("valid stream") {
            messages.push(serde_json::from_slice::<Value>(&buf[..end]).expect("one message"));
            buf.drain(..end);
            framer = Framer::default();
        }
        assert_eq!(
            messages,
            vec![
                json!({"a": "}{[\"\\"}),
                json!([1, [2]]),
                json!({"b": {"c": []}})
            ]
        );
        assert_eq!(buf, br#"{"partial":"#.to_vec());
        // completing the partial message, byte by byte
        for &b in br#" "x}" }"# {
            buf.push(b);
            if let Some(end) = framer.scan(&buf).expect("valid") {
                assert_eq!(
                    serde_json::from_slice::<Value>(&buf[..end]).unwrap(),
                    json!({"partial": "x}"})
                );
                return;
            }
        }
        panic!("the last message never completed");
    }

    #[test]
    fn framer_rejects_garbage_between_messages() {
        let mut framer = Framer::default();
        assert!(framer.scan(b"  hello").is_err());
        let mut framer = Framer::default();
        assert!(framer.scan(b"]").is_err());
        let mut framer = Framer::default();
        assert!(framer.scan(br#"{"id": 1, "result": [}"#).is_err());
    }

    #[test]
    fn create_transaction_encodes_every_bridge_and_port() {
        let bridges = [
            spec("br-a", "lab1", "lan", &["va", "vb"]),
            spec("br-b", "lab1", "wan", &[]),
        ];
        let (ops, layout) = create_ops(Datapath::Netdev, &bridges);
        // per bridge: wait + (iface + port) per member + bridge; then mutate, select, comment
        assert_eq!(ops.len(), (1 + 2 * 3 + 1) + (1 + 2 + 1) + 3);
        assert_eq!(
            layout.waits,
            vec![(0, "br-a".to_owned()), (8, "br-b".to_owned())]
        );
        assert_eq!(layout.bridges, vec![7, 11]);
        assert_eq!(layout.select, 13);
        let names: Vec<(&str, bool)> = layout
            .ifaces
            .iter()
            .map(|(_, n, l)| (n.as_str(), *l))
            .collect();
        assert_eq!(
            names,
            vec![("br-a", true), ("va", false), ("vb", false), ("br-b", true)]
        );

        assert_eq!(
            ops[0],
            json!({"op": "wait", "table": "Bridge", "where": [["name", "==", "br-a"]],
                   "columns": ["name"], "until": "==", "rows": [], "timeout": 0})
        );
        let labels = json!(["map", [["tcplab-lab", "lab1"], ["tcplab-network", "lan"]]]);
        assert_eq!(
            ops[1],
            json!({"op": "insert", "table": "Interface", "uuid-name": "tcplab_b0_i0",
                   "row": {"name": "br-a", "type": "internal", "external_ids": labels}})
        );
        assert_eq!(
            ops[2],
            json!({"op": "insert", "table": "Port", "uuid-name": "tcplab_b0_p0",
                   "row": {"name": "br-a", "interfaces": ["named-uuid", "tcplab_b0_i0"], "external_ids": labels}})
        );
        // a veth port has no type (a "system" interface)
        assert_eq!(ops[3]["row"], json!({"name": "va", "external_ids": labels}));
        assert_eq!(
            ops[7],
            json!({"op": "insert", "table": "Bridge", "uuid-name": "tcplab_b0",
                   "row": {"name": "br-a", "datapath_type": "netdev", "fail_mode": "standalone",
                           "ports": ["set", [["named-uuid", "tcplab_b0_p0"], ["named-uuid", "tcplab_b0_p1"],
                                             ["named-uuid", "tcplab_b0_p2"]]],
                           "external_ids": labels}})
        );
        assert_eq!(
            ops[11]["row"]["external_ids"][1][1],
            json!(["tcplab-network", "wan"])
        );
        assert_eq!(
            ops[12],
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["bridges", "insert", ["set", [["named-uuid", "tcplab_b0"], ["named-uuid", "tcplab_b1"]]]],
                                 ["next_cfg", "+=", 1]]})
        );
        assert_eq!(
            ops[13],
            json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]})
        );
        assert_eq!(ops[14]["op"], "comment");
        // every named-uuid used is defined by an earlier insert of the same transaction
        let defined: BTreeSet<&str> = ops
            .iter()
            .filter_map(|op| op["uuid-name"].as_str())
            .collect();
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Array(items) => {
                    if let [Value::String(tag), Value::String(name)] = items.as_slice()
                        && tag == "named-uuid"
                    {
                        out.push(name);
                    }
                    items.iter().for_each(|i| refs(i, out));
                }
                Value::Object(map) => map.values().for_each(|i| refs(i, out)),
                _ => {}
            }
        }
        let mut used = Vec::new();
        ops.iter().for_each(|op| refs(op, &mut used));
        assert!(
            used.iter().all(|u| defined.contains(u)),
            "{used:?} vs {defined:?}"
        );
        // the whole request is valid JSON-RPC
        let request = serde_json::to_value(Request {
            method: "transact",
            params: &json!(["Open_vSwitch"]),
            id: json!(7),
        })
        .unwrap();
        assert_eq!(
            request,
            json!({"method": "transact", "params": ["Open_vSwitch"], "id": 7})
        );
        let reply = serde_json::to_string(&Reply {
            result: &json!(["x"]),
            error: None,
            id: &json!("echo"),
        })
        .unwrap();
        assert_eq!(reply, r#"{"result":["x"],"error":null,"id":"echo"}"#);
    }

    #[test]
    fn delete_transaction_asserts_the_labelled_set_then_removes_by_uuid() {
        let found = vec![
            ("b1".to_owned(), "u-1".to_owned()),
            ("b2".to_owned(), "u-2".to_owned()),
        ];
        let ops = delete_ops("lab1", &found);
        assert_eq!(
            ops[0],
            json!({"op": "wait", "table": "Bridge",
                   "where": [["external_ids", "includes", ["map", [["tcplab-lab", "lab1"]]]]],
                   "columns": ["name"], "until": "==", "rows": [{"name": "b1"}, {"name": "b2"}], "timeout": 0})
        );
        assert_eq!(
            ops[1],
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["bridges", "delete", ["set", [["uuid", "u-1"], ["uuid", "u-2"]]]],
                                 ["next_cfg", "+=", 1]]})
        );
        assert_eq!(ops[2]["columns"], json!(["next_cfg"]));
        assert_eq!(ops[3]["op"], "comment");
    }

    #[test]
    fn validation_rejects_bad_specs_before_sending_anything() {
        let ok = [
            spec("br0", "lab", "net", &["v0", "v1"]),
            spec("br1", "lab", "", &[]),
        ];
        assert!(validate_specs(&ok).is_ok());
        assert!(validate_specs(&[]).is_ok());
        let bad = [
            vec![spec("a-bridge-name-too-long", "lab", "n", &[])],
            vec![spec("", "lab", "n", &[])],
            vec![spec("br0", "lab", "n", &["has space"])],
            vec![spec("br0", "lab", "n", &["sl/ash"])],
            vec![spec("br0", "lab", "n", &["nul\0"])],
            vec![spec("br0", "lab", "n", &[".."])],
            vec![spec("br0", "", "n", &[])],
            vec![spec("br0", "la\0b", "n", &[])],
            vec![spec("br0", "lab", "n\0", &[])],
            vec![spec("br0", "lab", "n", &["v0", "v0"])],
            vec![spec("br0", "lab", "n", &["br0"])],
            vec![
                spec("br0", "lab", "n", &["v0"]),
                spec("br1", "lab", "n", &["v0"]),
            ],
            vec![spec("br0", "lab", "n", &[]), spec("br0", "lab", "n", &[])],
            vec![spec("br0", "lab", "n", &["ü-ünïcödé-long"])],
        ];
        for specs in &bad {
            let err = validate_specs(specs).expect_err(&format!("{specs:?}"));
            assert!(matches!(err, OvsError::Invalid(_)), "{err}");
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.ends_with('.'), "{text}");
        }
        assert!(check_label("lab", "with\0nul").is_err());
    }

    #[test]
    fn decoding_helpers_follow_rfc7047() {
        assert_eq!(
            decode_set(&json!(["set", [1, 2]])),
            vec![&json!(1), &json!(2)]
        );
        assert_eq!(decode_set(&json!(["set", []])), Vec::<&Value>::new());
        assert_eq!(decode_set(&json!("netdev")), vec![&json!("netdev")]);
        assert_eq!(decode_uuid(&json!(["uuid", "abc"])), Some("abc"));
        assert_eq!(decode_uuid(&json!(["named-uuid", "abc"])), None);
        assert_eq!(decode_uuid(&json!("abc")), None);
        assert_eq!(omap(&[("k", "v")]), json!(["map", [["k", "v"]]]));
        assert_eq!(
            lab_condition("x"),
            json!([["external_ids", "includes", ["map", [["tcplab-lab", "x"]]]]])
        );
        let results = vec![
            json!({"uuid": ["uuid", "u1"]}),
            json!({"rows": [{"next_cfg": 42}]}),
        ];
        assert_eq!(
            inserted_uuids(&results, &[0], "t").unwrap(),
            vec!["u1".to_owned()]
        );
        assert!(inserted_uuids(&results, &[1], "t").is_err());
        assert!(inserted_uuids(&results, &[9], "t").is_err());
        assert_eq!(selected_next_cfg(&results, 1, "t").unwrap(), 42);
        assert!(selected_next_cfg(&results, 0, "t").is_err());
        assert!(rows_of(Some(&json!({"rows": [1]})), "t").is_err());
        assert!(rows_of(None, "t").is_err());
    }

    #[test]
    fn transaction_errors_are_found_and_flattened() {
        let results = vec![
            json!({}),
            json!({"error": "constraint violation", "details": "Transaction causes multiple rows\nin \"Port\" table."}),
            Value::Null,
        ];
        let (index, text) = first_error(&results).expect("an error");
        assert_eq!(index, 1);
        assert_eq!(
            text,
            "constraint violation: Transaction causes multiple rows in \"Port\" table"
        );
        assert_eq!(first_error(&[json!({}), json!({"count": 1})]), None);
        // a commit failure comes as an extra element
        assert_eq!(
            first_error(&[json!({}), json!({"error": "timed out"})]).map(|e| e.0),
            Some(1)
        );
        assert_eq!(
            first_error(&[json!({"error": {"odd": 1}})]).map(|e| e.1),
            Some(r#"{"odd":1}"#.to_owned())
        );
    }

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

    #[test]
    fn error_messages_are_one_line_lowercase_and_say_what_to_do() {
        let errors = vec![
            OvsError::NotRunning {
                detail: format!("no {DEFAULT_SOCKET}"),
            },
            OvsError::Connect {
                socket: "s".into(),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            },
            OvsError::NoDatabase { socket: "s".into() },
            OvsError::Io {
                during: "x",
                source: io::Error::from(io::ErrorKind::UnexpectedEof),
            },
            OvsError::Timeout {
                during: "x",
                secs: 5,
            },
            OvsError::Broken,
            OvsError::Protocol {
                during: "x",
                detail: "y".into(),
            },
            OvsError::Rpc {
                during: "x",
                error: "y".into(),
            },
            OvsError::Transaction {
                during: "x",
                error: "y".into(),
            },
            OvsError::BridgeExists { name: "b".into() },
            OvsError::PortInUse {
                name: "p".into(),
                bridge: "b".into(),
            },
            OvsError::Invalid("x: do y".into()),
            OvsError::NotApplied { secs: 10 },
            OvsError::BridgeFailed {
                name: "b".into(),
                datapath: Datapath::System,
                error: "e".into(),
            },
            OvsError::Interface {
                name: "i".into(),
                error: "e".into(),
            },
            OvsError::NoDatapath { types: "[]".into() },
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.ends_with('.'), "{text}");
            let first = text.chars().next().unwrap();
            assert!(
                first.is_lowercase() || text.starts_with("Open vSwitch"),
                "{text}"
            );
            assert!(text.contains(": "), "says what to do: {text}");
        }
        assert_eq!(
            OvsError::NotRunning {
                detail: format!("no {DEFAULT_SOCKET}")
            }
            .to_string(),
            "Open vSwitch is not running (no /var/run/openvswitch/db.sock): install openvswitch-switch and start it (scripts/setup-host.sh does both)"
        );
    }

    #[test]
    fn genl_getfamily_request_and_reply_parsing() {
        let req = genl::getfamily_request("ovs_datapath", 7).unwrap();
        assert_eq!(req.len(), 40);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes(req[4..6].try_into().unwrap()), 0x10);
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 7);
        assert_eq!(req[16], 3); // CTRL_CMD_GETFAMILY
        assert_eq!(u16::from_ne_bytes(req[20..22].try_into().unwrap()), 17);
        assert_eq!(&req[24..37], b"ovs_datapath\0");
        assert!(genl::getfamily_request("", 1).is_err());
        assert!(genl::getfamily_request("way_too_long_family", 1).is_err());
        assert!(genl::getfamily_request("n\0l", 1).is_err());

        // an error answer (-ENOENT) for our sequence number
        let mut err = Vec::new();
        err.extend_from_slice(&36u32.to_ne_bytes());
        err.extend_from_slice(&2u16.to_ne_bytes());
        err.extend_from_slice(&0u16.to_ne_bytes());
        err.extend_from_slice(&7u32.to_ne_bytes());
        err.extend_from_slice(&0u32.to_ne_bytes());
        err.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        err.extend_from_slice(&req[..16]);
        assert_eq!(
            genl::parse_getfamily_reply(&err, 7, "ovs_datapath"),
            Some(false)
        );
        assert_eq!(genl::parse_getfamily_reply(&err, 8, "ovs_datapath"), None);
        // a family description: our own request has the same shape
        assert_eq!(
            genl::parse_getfamily_reply(&req, 7, "ovs_datapath"),
            Some(true)
        );
        assert_eq!(genl::parse_getfamily_reply(&req, 7, "other"), Some(false));
        // malformed input never panics
        for cut in 0..req.len() {
            let _ = genl::parse_getfamily_reply(&req[..cut], 7, "ovs_datapath");
        }
        let mut bad = req.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(genl::parse_getfamily_reply(&bad, 7, "ovs_datapath"), None);
        let mut bad = req.clone();
        bad[20..22].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(
            genl::parse_getfamily_reply(&bad, 7, "ovs_datapath"),
            Some(true)
        );
    }

    #[test]
    fn genl_asks_the_kernel() {
        match genl::family_exists("nlctrl") {
            Ok(found) => assert!(found, "the controller family always exists"),
            Err(e) => {
                eprintln!("skipped: no generic netlink here: {e}");
                return;
            }
        }
        assert!(!genl::family_exists("tcplab_nosuch").unwrap());
        eprintln!(
            "kernel Open vSwitch datapath available: {}",
            kernel_datapath_available()
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

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

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

    /// Run `f` on a thread that has entered the named network namespace.
    fn in_netns<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        let path = format!("/var/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = File::open(&path)?;
            // SAFETY: setns only changes this (new, short-lived) thread's namespace.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
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
        let listener = in_netns(server_ns, move || TcpListener::bind((server_ip, 0)))
            .and_then(|l| l)
            .expect("listen in the server namespace");
        let target = InetAddr::from((server_ip, listener.local_addr().unwrap().port()));
        listener.set_nonblocking(true).unwrap();
        let ns = client_ns.to_owned();
        let client = std::thread::spawn(move || {
            in_netns(&ns, move || -> io::Result<[u8; 4]> {
                let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
                stream.set_read_timeout(Some(Duration::from_secs(3)))?;
                stream.write_all(b"ping")?;
                let mut answer = [0u8; 4];
                stream.read_exact(&mut answer)?;
                Ok(answer)
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
        served && matches!(answer, Ok(Ok(a)) if &a == b"pong")
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
            let after = in_netns(ns, move || {
                ethtool::disable_tx_checksum(&name)
                    .and_then(|()| ethtool::tx_checksum_enabled(&name))
            })
            .unwrap();
            assert!(!after.unwrap(), "tx checksum still on for {ifname}");
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
        let (index, error) = first_error(&results).expect("the wait must fail");
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
        let (index, error) = first_error(&results).expect("the wait must fail");
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
