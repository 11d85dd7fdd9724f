//! What the phases of `up` (and of its repair mode) share: handles on the lab's namespaces,
//! whether a phase makes a lab or repairs one, and small steps used by several phases.

use crate::error::{Context, Error, Result};
use crate::os::{NetOps, System};
use crate::plan::Ns;

/// Sysctls of the switch namespace: no IPv6 chatter from the bridges, and bridged frames never
/// handed to (this namespace's empty) iptables.
pub(super) const SWITCH_SYSCTLS: &[(&str, &str)] = &[
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
    pub(super) fn handle(&self, ns: Ns) -> Result<&N> {
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

/// Whether a phase builds a new lab (everything is created) or repairs one (only what is
/// missing is created, and each repair is noted).
pub(crate) enum Repair {
    /// A new lab: create everything.
    Fresh,
    /// An existing lab: create what is missing, noting what.
    Missing(Vec<String>),
}

impl Repair {
    pub(super) fn repairing(&self) -> bool {
        matches!(self, Repair::Missing(_))
    }
    pub(super) fn noted(&self, what: &str) -> bool {
        matches!(self, Repair::Missing(v) if v.iter().any(|x| x == what))
    }
    pub(super) fn note(&mut self, what: String) {
        if let Repair::Missing(v) = self {
            v.push(what);
        }
    }
}

/// An error the kernel gives when what is added is there already (a repair re-adds it).
pub(super) fn exists_already(e: &Error) -> bool {
    matches!(e, Error::Netlink { message, .. } if message.contains("file exists"))
}

/// No IPv6 on the ends of a veth that sit in the host's namespace (nodes and switches have
/// IPv6 off for the whole namespace): an end with IPv6 would send router solicitations and MLD
/// reports into the lab, which has none. Done before the pair has a carrier, so nothing is sent.
pub(super) fn quiet_host_ends<S: System>(sys: &S, v: &crate::plan::VethPlan) -> Result<()> {
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
