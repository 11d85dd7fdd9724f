//! The ends of a line as a user names them (`tcplab link`, an experiment's `link` and `mtu`
//! steps): `NODE:IFACE`, or two nodes joined by a point-to-point link.

use super::Topology;
use crate::error::{Error, Result};

/// `NODE:IFACE...` -> those interfaces; `A B` -> both ends of the point-to-point line between
/// them, as (node, interface) pairs. `lab` names the lab in error messages.
pub fn resolve_ends(topo: &Topology, lab: &str, ends: &[String]) -> Result<Vec<(String, String)>> {
    match ends {
        [a, b] if !a.contains(':') && !b.contains(':') => resolve_link(topo, lab, a, b),
        [] => Err(Error::Usage("give NODE:IFACE or two NODEs".into())),
        many => many
            .iter()
            .map(|end| resolve_interface(topo, lab, end))
            .collect(),
    }
}

/// `NODE:IFACE`, an interface the node has.
fn resolve_interface(topo: &Topology, lab: &str, end: &str) -> Result<(String, String)> {
    let Some((node, iface)) = end.split_once(':') else {
        return Err(Error::Usage(format!(
            "'{end}' is not NODE:IFACE (e.g. bsdi:bsdiside), nor one of two NODEs of a line"
        )));
    };
    let n = topo.require_node(lab, node)?;
    if n.interface(iface).is_none() {
        let names: Vec<&str> = n.interfaces.iter().map(|i| i.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "node '{node}' has no interface '{iface}' (its interfaces: {})",
            names.join(", ")
        )));
    }
    Ok((node.to_string(), iface.to_string()))
}

/// Both ends of the point-to-point link between nodes `a` and `b` (in either order).
fn resolve_link(topo: &Topology, lab: &str, a: &str, b: &str) -> Result<Vec<(String, String)>> {
    topo.require_node(lab, a)?;
    topo.require_node(lab, b)?;
    let link = topo
        .links
        .iter()
        .find(|l| (l.a.node == a && l.b.node == b) || (l.a.node == b && l.b.node == a))
        .ok_or_else(|| {
            Error::Usage(format!(
                "no point-to-point line joins {a} and {b}: name an interface as NODE:IFACE"
            ))
        })?;
    Ok(vec![
        (link.a.node.clone(), link.a.interface.clone()),
        (link.b.node.clone(), link.b.interface.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect()
    }

    #[test]
    fn an_interface_or_the_two_ends_of_a_link() {
        let t = crate::topology::builtin();
        let one = resolve_ends(&t, "tcpip", &ends(&["bsdi:bsdiside"])).unwrap();
        assert_eq!(one, pairs(&[("bsdi", "bsdiside")]));
        let line = resolve_ends(&t, "tcpip", &ends(&["slip", "bsdi"])).unwrap();
        assert_eq!(line.len(), 2, "{line:?}");
        assert!(line.iter().any(|(n, _)| n == "slip"), "{line:?}");
        assert!(line.iter().any(|(n, _)| n == "bsdi"), "{line:?}");
    }

    #[test]
    fn bad_ends_are_usage_errors() {
        let t = crate::topology::builtin();
        for (bad, says) in [
            (vec!["bsdi"], "is not NODE:IFACE"),
            (vec!["bsdi:nope"], "node 'bsdi' has no interface 'nope'"),
            (vec!["nobody:eth0"], "unknown node 'nobody' in lab 'tcpip'"),
            (
                vec!["aix", "slip"],
                "no point-to-point line joins aix and slip",
            ),
            (vec![], "give NODE:IFACE or two NODEs"),
        ] {
            let e = resolve_ends(&t, "tcpip", &ends(&bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.to_string().contains(says), "{bad:?}: {e}");
        }
    }
}
