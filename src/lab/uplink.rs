//! The uplink of a lab: the gateway's line into the lab's edge namespace, which NATs the lab
//! out to the host on a transfer /30 of the lab's own; the host forwards that out of the
//! uplink. Any number of labs can be NATed out at once. Made by `up` (phase 5 of
//! [`super::apply`]), made whole again by a repair.

use super::parts::{Namespaces, Repair, SWITCH_SYSCTLS, host_alias, quiet_host_ends};
use crate::error::{Context, Error, Result};
use crate::os::{NetOps, System, VethRequest};
use crate::plan::{Ns, Plan};
use crate::progress::Progress;
use crate::state::{LabLock, LabState, Object};
use ipnet::Ipv4Net;
use std::path::Path;

/// Whether `v` is the gateway's line to the host (planned with its host end in the host's
/// namespace; `uplink_phase` moves that end into the lab's edge).
pub(super) fn is_uplink_line(plan: &Plan, v: &crate::plan::VethPlan) -> bool {
    plan.uplink.is_some() && v.b.ns == Ns::Host && v.bridge.is_none()
}

/// The uplink of a lab being repaired: when any part of it is gone (the edge's two lines, the
/// host's end, the host's chain), what is left of it is taken away and it is made again whole,
/// the gateway's line included.
pub(super) async fn repair_uplink<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    ns: &Namespaces<S::Net>,
    progress: &Progress,
    repair: &mut Repair,
) -> Result<()> {
    let Some(u) = &plan.uplink else {
        return Ok(());
    };
    let edge_name = crate::plan::switch_netns(&plan.lab);
    let host_link = uplink_host_link(&plan.lab);
    let chain = crate::net::firewall::UplinkRules::new(&plan.lab, "", "", &[]).chain;
    let edge = if sys.netns_exists(&edge_name) {
        sys.enter_netns(&[(edge_name.clone(), Vec::new())])?.pop()
    } else {
        None
    };
    let whole = match &edge {
        Some(e) => {
            e.link_index(&u.host_interface).await?.is_some()
                && e.link_index(EDGE_TO_HOST).await?.is_some()
                && ns.host.link_index(&host_link).await?.is_some()
                && sys.firewall_chains().await?.contains(&chain)
        }
        None => false,
    };
    if whole {
        return Ok(());
    }
    repair.note("uplink".into());
    let old: Vec<Object> = state
        .objects
        .iter()
        .filter(|o| {
            matches!(
                o,
                Object::UplinkLine { .. }
                    | Object::Firewall { .. }
                    | Object::UplinkForwarding { .. }
            )
        })
        .cloned()
        .collect();
    for o in &old {
        // What is gone already is fine; what cannot be removed is seen by the next step. (The
        // uplink's forwarding is claimed again below.)
        match o {
            Object::Firewall { remove, .. } => {
                let _ = sys.firewall_remove(remove).await;
            }
            Object::UplinkLine { host_link, .. }
                if ns.host.alias(host_link).await?.as_deref()
                    == Some(host_alias(&plan.lab).as_str()) =>
            {
                ns.host.delete_link(host_link).await?;
            }
            _ => {}
        }
    }
    state.objects.retain(|o| !old.contains(o));
    state.save()?;
    if let Some(e) = &edge {
        if plan.switch_ns.as_deref() == Some(edge_name.as_str()) {
            for name in [u.host_interface.as_str(), EDGE_TO_HOST] {
                e.delete_link(name).await?;
            }
        } else {
            sys.delete_netns(&edge_name)?;
        }
    }
    // The gateway's line, made again with its host end in the host's namespace.
    let line = plan
        .veths
        .iter()
        .find(|v| is_uplink_line(plan, v))
        .ok_or_else(|| Error::Other("the plan has an uplink but no line for it".into()))?;
    let gateway = ns.handle(line.a.ns)?;
    gateway.delete_link(&line.a.name).await?;
    ns.host.delete_link(&line.b.name).await?;
    let req = VethRequest {
        name: line.a.name.clone(),
        index: 0,
        peer: line.b.name.clone(),
        peer_index: 0,
        mtu: line.mtu,
        controller: None,
    };
    gateway
        .add_veth(&req, &ns.host)
        .await
        .with_context(|| line.label.clone())?;
    quiet_host_ends(sys, line)?;
    ns.host
        .set_alias(&line.b.name, &host_alias(&plan.lab))
        .await?;
    ns.host.set_state(&line.b.name, true).await?;
    uplink_phase(sys, plan, state, &ns.host, progress).await
}

/// Phase 5: the uplink. The lab's edge namespace (`tcplab-<lab>`: the switch namespace when
/// the lab has Linux LANs, made here otherwise) takes the gateway's line as the topology's
/// host interface, with its address and the routes into the lab, and MASQUERADEs the lab out
/// of a second line to the host, on a transfer /30 of the lab's own. The host holds only that
/// /30 (no route into the lab, none of its addresses), so any number of labs can be up with
/// an uplink at once. On the host: forwarding on its end of the line and on the uplink (per
/// interface, never the global switch: writing net.ipv4.ip_forward rewrites every
/// interface's setting and accept_redirects too; the uplink's old value is recorded and put
/// back by the last lab's `down`), and the lab's chain that forwards the line out of the
/// uplink and MASQUERADEs it there. Labs choose their /30 and share the uplink's forwarding
/// under one host-wide lock.
pub(super) async fn uplink_phase<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    host: &S::Net,
    progress: &Progress,
) -> Result<()> {
    let Some(u) = &plan.uplink else {
        return Ok(());
    };
    let mut phase = progress.phase("uplink", 3);
    let _lock = uplink_lock(&sys.state_dir()).await?;
    let host_link = uplink_host_link(&plan.lab);
    let transfer = free_transfer_net(host, &sys.state_dir(), &plan.lab).await?;
    let edge_name = crate::plan::switch_netns(&plan.lab);
    let edge = edge_namespace(sys, plan, state, &edge_name)?;
    state.record([Object::UplinkLine {
        host_link: host_link.clone(),
        transfer,
        edge: edge_name.clone(),
    }])?;
    // The gateway's line: planned with a host end of the lab's own name, moved into the edge.
    let line = plan
        .veths
        .iter()
        .find(|v| v.b.ns == Ns::Host && v.bridge.is_none())
        .ok_or_else(|| Error::Other("the plan has an uplink but no line for it".into()))?;
    sys.move_host_link(&line.b.name, &edge_name, &u.host_interface)
        .await?;
    edge.set_state(&u.host_interface, true).await?;
    let req = VethRequest {
        name: EDGE_TO_HOST.into(),
        index: 0,
        peer: host_link.clone(),
        peer_index: 0,
        mtu: 1500,
        controller: None,
    };
    edge.add_veth(&req, host)
        .await
        .with_context(|| format!("the edge's line to the host {host_link}"))?;
    host.set_alias(&host_link, &host_alias(&plan.lab)).await?;
    phase.advance(1);
    edge_addresses(&edge, u, transfer)
        .await
        .with_context(|| format!("namespace {edge_name}"))?;
    let script = crate::net::firewall::edge_script(EDGE_TO_HOST, &u.masquerade);
    sys.netns_firewall_add(&edge_name, &script)
        .await
        .context("adding the edge's MASQUERADE rules")?;
    phase.advance(1);
    uplink_host_side(sys, plan, state, host, &host_link, transfer).await?;
    phase.advance(1);
    phase.finish();
    Ok(())
}

/// The end of the edge's line to the host, inside the edge namespace.
pub(crate) const EDGE_TO_HOST: &str = "tohost";

/// The first and second host addresses of a transfer /30: the host's end and the edge's.
fn transfer_ends(transfer: Ipv4Net) -> (Ipv4Net, Ipv4Net) {
    let base = u32::from(transfer.network());
    let at = |n: u32| Ipv4Net::new((base + n).into(), 30).expect("a /30");
    (at(1), at(2))
}

/// The host end of lab `lab`'s line from its edge: `tlu` and 32 bits of a hash of the lab
/// (unique per lab, ≤ 15 bytes; `up` refuses a name that exists already).
pub(super) fn uplink_host_link(lab: &str) -> String {
    let h = crate::util::fnv1a64(&[lab.as_bytes(), b"uplink-host"]);
    format!("tlu{:08x}", (h >> 32) as u32 ^ h as u32)
}

/// The lab's edge namespace, ready to route: the switch namespace if the lab has one, else a
/// new namespace of the same name, recorded first (refused if it exists unrecorded).
fn edge_namespace<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    name: &str,
) -> Result<S::Net> {
    let forward = [("ipv4.ip_forward".to_string(), "1".to_string())];
    if plan.switch_ns.as_deref() == Some(name) {
        let mut handles = sys.enter_netns(&[(name.to_string(), forward.to_vec())])?;
        return handles
            .pop()
            .ok_or_else(|| Error::Other(format!("no handle on namespace {name}")));
    }
    if sys.netns_exists(name) {
        return Err(Error::Usage(format!(
            "namespace {name} exists already but lab '{}' has no record of it: remove it with `ip netns delete {name}` if it is a leftover",
            plan.lab
        )));
    }
    state.record([Object::Netns { name: name.into() }])?;
    let mut sysctls: Vec<(String, String)> = SWITCH_SYSCTLS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sysctls.extend(forward);
    sys.create_netns(name, &sysctls)
}

/// In the edge: the topology's host address and routes into the lab on the gateway's line, the
/// transfer address on the line to the host and the default route through the host.
async fn edge_addresses<N: NetOps>(
    edge: &N,
    u: &crate::plan::UplinkPlan,
    transfer: Ipv4Net,
) -> Result<()> {
    let (host_end, edge_end) = transfer_ends(transfer);
    let lab_idx = edge
        .link_index(&u.host_interface)
        .await?
        .ok_or_else(|| Error::Other(format!("{} vanished", u.host_interface)))?;
    edge.add_address(lab_idx, u.host_address).await?;
    for r in &u.host_routes {
        edge.add_route(*r, Some(u.gateway), Some(lab_idx)).await?;
    }
    let out_idx = edge
        .link_index(EDGE_TO_HOST)
        .await?
        .ok_or_else(|| Error::Other(format!("{EDGE_TO_HOST} vanished")))?;
    edge.add_address(out_idx, edge_end).await?;
    let default: Ipv4Net = "0.0.0.0/0".parse().expect("a prefix");
    edge.add_route(default, Some(host_end.addr()), Some(out_idx))
        .await
}

/// On the host: the line's address, IPv6 off and forwarding on for it, forwarding on the
/// uplink (shared with other labs), and the lab's chain.
async fn uplink_host_side<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    host: &S::Net,
    host_link: &str,
    transfer: Ipv4Net,
) -> Result<()> {
    let Some(u) = &plan.uplink else {
        return Ok(());
    };
    sys.write_host_sysctl(&format!("ipv6.conf.{host_link}.disable_ipv6"), "1")?;
    sys.write_host_sysctl(&format!("ipv4.conf.{host_link}.forwarding"), "1")?;
    host.set_state(host_link, true)
        .await
        .with_context(|| format!("host {host_link}"))?;
    let idx = host
        .link_index(host_link)
        .await?
        .ok_or_else(|| Error::Other(format!("host interface {host_link} vanished")))?;
    host.add_address(idx, transfer_ends(transfer).0)
        .await
        .with_context(|| format!("host {host_link}"))?;
    share_uplink_forwarding(sys, state, &u.uplink)?;
    let rules =
        crate::net::firewall::UplinkRules::new(&plan.lab, host_link, &u.uplink, &[transfer]);
    state.record([Object::Firewall {
        chain: rules.chain.clone(),
        remove: rules.remove_script(),
    }])?;
    sys.firewall_add(&rules.add_script())
        .await
        .context("adding the uplink's firewall rules")
}

/// Forwarding on the uplink: set, and recorded with the value before the first lab set it
/// (taken over from another lab's record when one holds it already).
fn share_uplink_forwarding<S: System>(sys: &S, state: &mut LabState, uplink: &str) -> Result<()> {
    let key = format!("ipv4.conf.{uplink}.forwarding");
    let now = sys.read_host_sysctl(&key)?;
    let old = match forwarding_held_by_others(&state.dir, &state.lab, &key) {
        Some(old) => old,
        // The host forwards there itself: nothing of ours to put back.
        None if now == "1" => return Ok(()),
        None => now,
    };
    state.record([Object::UplinkForwarding {
        key: key.clone(),
        old,
        new: "1".into(),
    }])?;
    sys.write_host_sysctl(&key, "1")
}

/// The old value another lab's record (in `dir`, not `lab`'s) keeps for host sysctl `key`.
fn forwarding_held_by_others(dir: &Path, lab: &str, key: &str) -> Option<String> {
    labs_in(dir)
        .into_iter()
        .filter(|s| s.lab != lab)
        .flat_map(|s| s.objects)
        .find_map(|o| match o {
            Object::UplinkForwarding { key: k, old, .. }
            | Object::HostSysctl { key: k, old, .. }
                if k == key =>
            {
                Some(old)
            }
            _ => None,
        })
}

/// Every readable lab record in `dir`.
fn labs_in(dir: &Path) -> Vec<LabState> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let lab = name.strip_suffix(".json")?.to_string();
            LabState::load_in(dir, &lab).ok().flatten()
        })
        .collect()
}

/// A transfer /30 for lab `lab`'s line to the host: in 100.64.0.0/10 (then 198.18.0.0/15),
/// starting from a hash of the lab, the first that no host address or route (the default
/// route aside) overlaps and no other lab's record holds.
async fn free_transfer_net<N: NetOps>(host: &N, dir: &Path, lab: &str) -> Result<Ipv4Net> {
    let mut used: Vec<Ipv4Net> = host
        .routes()
        .await?
        .into_iter()
        .map(|(net, _, _)| net)
        .filter(|net| net.prefix_len() > 0)
        .collect();
    for l in host.links().await? {
        used.extend(l.addresses.iter().filter_map(|a| a.parse::<Ipv4Net>().ok()));
    }
    for s in labs_in(dir).into_iter().filter(|s| s.lab != lab) {
        used.extend(s.objects.iter().filter_map(|o| match o {
            Object::UplinkLine { transfer, .. } => Some(*transfer),
            _ => None,
        }));
    }
    let overlaps = |n: &Ipv4Net| {
        used.iter()
            .any(|u| u.contains(&n.network()) || n.contains(&u.network()))
    };
    let start = crate::util::fnv1a64(&[lab.as_bytes()]) as u32;
    for pool in ["100.64.0.0/10", "198.18.0.0/15"] {
        let pool: Ipv4Net = pool.parse().expect("a prefix");
        let count = 1u32 << (30 - pool.prefix_len());
        let base = u32::from(pool.network());
        for i in 0..count {
            let n = Ipv4Net::new((base + ((start.wrapping_add(i)) % count) * 4).into(), 30)
                .expect("a /30");
            if !overlaps(&n) {
                return Ok(n);
            }
        }
    }
    Err(Error::Environment(
        "no free /30 left in 100.64.0.0/10 or 198.18.0.0/15 for the lab's line to the host: free one of them".into(),
    ))
}

/// The host-wide lock under which labs choose their transfer networks and share the uplink's
/// forwarding (an abstract socket, as a lab's lock; waits for whoever holds it).
pub(super) async fn uplink_lock(dir: &Path) -> Result<LabLock> {
    let mut waited = 0;
    loop {
        match LabLock::acquire_in(dir, "+uplinks") {
            Ok(l) => return Ok(l),
            Err(Error::Usage(_)) if waited < 600 => {
                waited += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Hand back the uplink's forwarding for lab `lab` (its `down`): put back `old` unless another
/// lab's record still holds the key, then drop the claim from `lab`'s record on disk so that
/// a lab going down at the same time sees it gone.
pub(super) async fn release_uplink_forwarding<S: System>(
    sys: &S,
    lab: &str,
    key: &str,
    old: &str,
    new: &str,
) -> Result<()> {
    let dir = sys.state_dir();
    let _lock = uplink_lock(&dir).await?;
    // Restore only if nobody changed it since.
    if forwarding_held_by_others(&dir, lab, key).is_none() && sys.read_host_sysctl(key)? == new {
        sys.write_host_sysctl(key, old)?;
    }
    if let Some(mut own) = LabState::load_in(&dir, lab)? {
        let before = own.objects.len();
        own.objects
            .retain(|o| !matches!(o, Object::UplinkForwarding { key: k, .. } if k == key));
        if own.objects.len() != before {
            own.save()?;
        }
    }
    Ok(())
}
