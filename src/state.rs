//! The record of everything a lab created, written as it is created, so that `down` removes
//! exactly that, even after a crash or a half-done `up`.
//!
//! One JSON file per lab under /run/tcplab (it lives as long as the namespaces do). An object is
//! recorded *before* it is created: removal tolerates objects that turn out not to exist.

use crate::error::{Context, Error, Result};
use crate::topology::NetworkKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default directory of state files (override with TCPLAB_STATE_DIR, for tests).
pub const STATE_DIR: &str = "/run/tcplab";

/// The state directory in use.
pub fn state_dir() -> PathBuf {
    std::env::var_os("TCPLAB_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(STATE_DIR))
}

/// Which runtime a lab's nodes run on (`runtime::open` turns it into one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Each node a named network namespace (no Docker needed).
    Netns,
    /// Each node a Docker container.
    Docker,
}

impl RuntimeKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Netns => "netns",
            RuntimeKind::Docker => "docker",
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing tcplab created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Object {
    /// A named network namespace under /run/netns (a node's, or the switch namespace).
    Netns {
        /// its name
        name: String,
    },
    /// `/etc/netns/<name>`, holding the node's hosts file.
    EtcDir {
        /// the directory
        path: String,
    },
    /// An interface in the host's namespace (uplink host side, OVS ports).
    HostLink {
        /// its name
        name: String,
    },
    /// Host firewall rules, as iptables-restore scripts that add and remove them.
    Firewall {
        /// the chain tcplab made
        chain: String,
        /// the script that removes them
        remove: String,
    },
    /// A host sysctl tcplab changed, with the value to restore.
    HostSysctl {
        /// key under /proc/sys/net
        key: String,
        /// the value before
        old: String,
        /// the value tcplab set
        new: String,
    },
    /// A Docker container.
    Container {
        /// its name
        name: String,
    },
    /// The lab's OVS bridges (found by their external_ids).
    OvsBridges {
        /// bridge names, for messages
        names: Vec<String>,
    },
    /// Conditions on what leaves one interface of a node: a worker process serving `control`,
    /// and the qdisc, filter and TAP it installs in the node's namespace.
    LinkConditions {
        /// the node
        node: String,
        /// its namespace
        netns: String,
        /// the interface
        iface: String,
        /// the worker's control socket (an abstract unix socket name)
        control: String,
    },
    /// The line between the lab's edge namespace (which NATs the lab out) and the host: a veth
    /// whose host end `host_link` (tagged with the lab) holds the first address of `transfer`,
    /// the edge end the second. It dies with the edge namespace, or is deleted here.
    UplinkLine {
        /// the host end
        host_link: String,
        /// the transfer network, a /30 no host address or route used at `up` time
        transfer: ipnet::Ipv4Net,
        /// the edge namespace holding the other end
        edge: String,
    },
    /// Forwarding on the host's uplink interface, shared by every lab NATed out of it: `down`
    /// puts back `old` only when no other lab's record still names the same key.
    UplinkForwarding {
        /// key under /proc/sys/net
        key: String,
        /// the value before the first lab set it
        old: String,
        /// the value tcplab set
        new: String,
    },
}

/// The state of one lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    /// Lab name.
    pub lab: String,
    /// The runtime its nodes run on.
    pub runtime: RuntimeKind,
    /// Where the topology came from.
    pub topology_file: String,
    /// The topology text, so later commands need no file.
    pub topology_text: String,
    /// Uplink interface, if any.
    pub uplink: Option<String>,
    /// Switch override given to `up`, if any.
    #[serde(default)]
    pub switch: Option<NetworkKind>,
    /// Profile of link conditions given to `up`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// NATed into a fake internet made for it (`uplink` is then its host end).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fake_internet: bool,
    /// True once `up` finished.
    pub complete: bool,
    /// pid of the `up` that wrote it.
    pub pid: u32,
    /// Everything created, in order.
    pub objects: Vec<Object>,
    /// The conditions set on interfaces, by `NODE:IFACE` (what `link set` asked for; kept so
    /// they can be shown and applied again).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub conditions: std::collections::BTreeMap<String, crate::conditions::spec::Conditions>,
    /// The directory the record lives in.
    #[serde(skip, default = "state_dir")]
    pub dir: PathBuf,
}

impl LabState {
    /// A new, empty record of lab `lab` in directory `dir` (not saved yet).
    pub fn new_in(dir: &Path, lab: &str, runtime: RuntimeKind) -> LabState {
        LabState {
            lab: lab.to_string(),
            runtime,
            topology_file: String::new(),
            topology_text: String::new(),
            uplink: None,
            switch: None,
            profile: None,
            fake_internet: false,
            complete: false,
            pid: std::process::id(),
            objects: Vec::new(),
            conditions: Default::default(),
            dir: dir.to_path_buf(),
        }
    }

    /// The file of lab `lab` in `dir`.
    pub fn path_in(dir: &Path, lab: &str) -> PathBuf {
        dir.join(format!("{lab}.json"))
    }

    /// The file of lab `lab`.
    pub fn path(lab: &str) -> PathBuf {
        Self::path_in(&state_dir(), lab)
    }

    /// Load lab `lab`'s record, if the lab is (partly) up.
    pub fn load(lab: &str) -> Result<Option<LabState>> {
        Self::load_in(&state_dir(), lab)
    }

    /// Load lab `lab`'s record from `dir`.
    pub fn load_in(dir: &Path, lab: &str) -> Result<Option<LabState>> {
        let path = Self::path_in(dir, lab);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<LabState>(&text)
                .map(|mut s| {
                    s.dir = dir.to_path_buf();
                    Some(s)
                })
                .map_err(|e| {
                    Error::Other(format!(
                        "state file {} is damaged ({e}): remove it by hand after checking `ip netns`",
                        path.display()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Every lab with a state file.
    pub fn list() -> Result<Vec<LabState>> {
        let dir = state_dir();
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(lab) = name.strip_suffix(".json")
                && let Some(s) = Self::load_in(&dir, lab)?
            {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.lab.cmp(&b.lab));
        Ok(out)
    }

    /// Write the record atomically (temp file + rename) into its directory.
    pub fn save(&self) -> Result<()> {
        let dir = &self.dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = Self::path_in(dir, &self.lab);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Other(format!("encoding state: {e}")))?;
        if let Err(e) = std::fs::write(&tmp, &text) {
            // Another lab's `down` may have removed the (then empty) directory just now.
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::io(format!("writing {}", tmp.display()), e));
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Remove lab `lab`'s record from `dir` (and `dir` once empty).
    pub fn remove_in(dir: &Path, lab: &str) -> Result<()> {
        let path = Self::path_in(dir, lab);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
        }
        // A save killed between write and rename leaves its temporary file.
        let _ = std::fs::remove_file(path.with_extension("json.tmp"));
        let _ = std::fs::remove_dir(dir);
        Ok(())
    }

    /// Remove lab `lab`'s record.
    pub fn remove(lab: &str) -> Result<()> {
        Self::remove_in(&state_dir(), lab)
    }

    /// The plan this lab was brought up with (for `link up` and experiments).
    pub fn plan(&self, topo: &crate::topology::Topology) -> crate::plan::Plan {
        let opts = crate::plan::PlanOptions {
            uplink: self.uplink.clone(),
            switch_override: self.switch,
            profile: self.profile.clone(),
            fake_internet: self.fake_internet,
        };
        crate::plan::plan(topo, &self.lab, &opts)
    }

    /// Record objects (before creating them) and save. An object recorded already is not
    /// recorded twice (a repair makes again what the record names).
    pub fn record(&mut self, objects: impl IntoIterator<Item = Object>) -> Result<()> {
        for o in objects {
            if !self.objects.contains(&o) {
                self.objects.push(o);
            }
        }
        self.save()
    }
}

/// An exclusive lock on one lab (so two `up`s or an `up` and a `down` of the same lab never
/// interleave), held until drop. It is an abstract unix socket name (`@tcplab/<state dir>/<lab>`):
/// the kernel frees it when the process ends, however it ends, and it leaves no file behind.
pub struct LabLock {
    _socket: std::os::unix::net::UnixListener,
}

impl LabLock {
    /// Take the lock of `lab`, failing at once if another tcplab holds it.
    pub fn acquire(lab: &str) -> Result<LabLock> {
        Self::acquire_in(&state_dir(), lab)
    }

    /// Take the lock of `lab` whose record lives in `dir`.
    pub fn acquire_in(dir: &Path, lab: &str) -> Result<LabLock> {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("tcplab/{}/{lab}", dir.display());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| Error::io(format!("naming the lock of lab '{lab}'"), e))?;
        match std::os::unix::net::UnixListener::bind_addr(&addr) {
            Ok(socket) => Ok(LabLock { _socket: socket }),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::Usage(format!(
                "another tcplab is working on lab '{lab}' right now: wait for it to finish"
            ))),
            Err(e) => Err(Error::io(format!("taking the lock of lab '{lab}'"), e)),
        }
    }
}
