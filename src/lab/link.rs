//! Cutting and restoring a node's interface (`tcplab link down|up`).

use crate::error::{Context, Error, Result};
use crate::os::{NetOps, System};
use crate::plan::Plan;

/// Set interface `iface` of `node` up or down. Taking an interface down makes the kernel drop
/// every route through it, static ones included, and its proxy ARP entries; bringing it up puts
/// the node's planned routes and proxy entries back (those that still exist are left as they
/// are). Kernel interface numbers may differ from the plan's: interfaces are found by name.
pub async fn set_link<S: System>(
    sys: &S,
    plan: &Plan,
    node: &str,
    iface: &str,
    up: bool,
) -> Result<()> {
    let n = plan
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| Error::Usage(format!("unknown node '{node}'")))?;
    let h = sys
        .enter_netns(&[(n.netns.clone(), Vec::new())])
        .with_context(|| format!("node {node}"))?
        .pop()
        .ok_or_else(|| Error::Other(format!("node {node}: no namespace handle")))?;
    h.set_state(iface, up)
        .await
        .with_context(|| format!("node {node}"))?;
    if !up {
        return Ok(());
    }
    let mut left = Vec::new();
    // Present already, or through another interface that is still down.
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
            Err(Error::Netlink { message, .. }) if benign(&message) => {}
            Err(e) => left.push(format!("route {}: {e}", r.route)),
        }
    }
    for (idx, addr) in &n.proxy_neighbours {
        let on_iface = n
            .interfaces
            .iter()
            .any(|i| i.index == *idx && i.name == iface);
        if !on_iface {
            continue;
        }
        let Some(real) = h.link_index(iface).await? else {
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
    Ok(())
}
