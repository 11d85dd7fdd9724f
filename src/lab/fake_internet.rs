//! The fake internet of `up --fake-internet`: a namespace on 198.51.100.0/24 (TEST-NET-2, never
//! routed on the real internet) whose veth's host end is the lab's uplink, so the course's NAT
//! can be seen from the outside without sending anything outside. Made before the uplink phase,
//! recorded first (its namespace, then its host end) so `down` removes it after the uplink.

use super::parts::{Repair, host_alias};
use crate::error::{Context, Error, Result};
use crate::os::{NetOps, System, VethRequest};
use crate::plan::{FakeInternetPlan, Plan};
use crate::state::{LabState, Object};
use ipnet::Ipv4Net;

/// The range the fake internet takes on the host.
fn range() -> Ipv4Net {
    "198.51.100.0/24".parse().expect("valid prefix")
}

/// Before `up`: the host neither routes the fake internet's range (another lab's fake internet,
/// or the machine's own use of it) nor has its host end already.
pub(super) async fn precheck<N: NetOps>(plan: &Plan, host: &N) -> Result<()> {
    let Some(f) = &plan.fake_internet else {
        return Ok(());
    };
    let r = range();
    for (dst, _, _) in host.routes().await? {
        if dst.prefix_len() > 0 && (dst.contains(&r.network()) || r.contains(&dst.network())) {
            return Err(Error::Usage(format!(
                "the fake internet needs {r}, but the host routes {dst} already (another lab's fake internet, or the machine's own): take that lab down, or bring this one up with a real uplink"
            )));
        }
    }
    if host.link_index(&f.host_link).await?.is_some() {
        return Err(Error::Usage(format!(
            "host interface {} exists already: run `tcplab --lab {} down` if it is a leftover of this lab",
            f.host_link, plan.lab
        )));
    }
    Ok(())
}

/// Make the fake internet (or, repairing, make it again if its namespace is gone).
pub(super) async fn phase<S: System>(
    sys: &S,
    plan: &Plan,
    state: &mut LabState,
    host: &S::Net,
    repair: &mut Repair,
) -> Result<()> {
    let Some(f) = &plan.fake_internet else {
        return Ok(());
    };
    if sys.netns_exists(&f.netns) {
        if repair.repairing() {
            return Ok(());
        }
        return Err(Error::Usage(format!(
            "namespace {} exists already but lab '{}' has no record of it: remove it with `ip netns delete {}` if it is a leftover",
            f.netns, plan.lab, f.netns
        )));
    }
    make(sys, plan, f, state, host)
        .await
        .with_context(|| format!("the fake internet {}", f.netns))?;
    if repair.repairing() {
        repair.note(format!("the fake internet {}", f.netns));
    }
    Ok(())
}

async fn make<S: System>(
    sys: &S,
    plan: &Plan,
    f: &FakeInternetPlan,
    state: &mut LabState,
    host: &S::Net,
) -> Result<()> {
    state.record([Object::Netns {
        name: f.netns.clone(),
    }])?;
    // No IPv6 chatter: only what an experiment sends crosses the line.
    let quiet: Vec<(String, String)> = [
        "ipv6.conf.all.disable_ipv6",
        "ipv6.conf.default.disable_ipv6",
    ]
    .iter()
    .map(|k| (k.to_string(), "1".to_string()))
    .collect();
    let far = sys.create_netns(&f.netns, &quiet)?;
    state.record([Object::HostLink {
        name: f.host_link.clone(),
    }])?;
    let req = VethRequest {
        name: f.far_link.clone(),
        index: 0,
        peer: f.host_link.clone(),
        peer_index: 0,
        mtu: 1500,
        controller: None,
    };
    far.add_veth(&req, host).await?;
    host.set_alias(&f.host_link, &host_alias(&plan.lab)).await?;
    sys.write_host_sysctl(&format!("ipv6.conf.{}.disable_ipv6", f.host_link), "1")?;
    let hi = host
        .link_index(&f.host_link)
        .await?
        .ok_or_else(|| Error::Other(format!("{} vanished", f.host_link)))?;
    host.add_address(hi, f.host_address).await?;
    host.set_up(hi).await?;
    let fi = far
        .link_index(&f.far_link)
        .await?
        .ok_or_else(|| Error::Other(format!("{} vanished", f.far_link)))?;
    far.add_address(fi, f.far_address).await?;
    far.set_up(fi).await?;
    far.set_state("lo", true).await
}
