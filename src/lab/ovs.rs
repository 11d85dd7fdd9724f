//! The Open vSwitch phase's parts beyond the bridges: each bridge's rows as the database gets
//! them (ports with VLANs and QoS, tunnel ports, controller, fail mode), then, once the bridges
//! exist, their own addresses (their local ports in the host's namespace, up), Open vSwitch's
//! routes for tunnel packets, and their flow entries.

use std::collections::BTreeMap;

use crate::error::{Context, Result};
use crate::net::ovsdb::{BridgeSetup, BridgeSpec, OvsRoute, PortSettings, TunnelSpec};
use crate::os::{NetOps, System};
use crate::plan::{BridgePlan, Plan};

/// The database rows of OVS bridge `b` of `plan`.
pub(super) fn bridge_spec(plan: &Plan, b: &BridgePlan) -> BridgeSpec {
    let port_settings = b
        .ovs
        .members
        .iter()
        .filter(|m| !m.options.is_plain())
        .map(|m| {
            let qos = m.options.qos.clone().unwrap_or_default();
            let settings = PortSettings {
                node: m.node.clone(),
                tag: m.options.vlan,
                trunks: m.options.trunks.clone(),
                max_rate: qos.max_rate,
                ingress_rate_kbps: qos.ingress_rate_kbps,
                ingress_burst_kb: qos.ingress_burst_kb,
            };
            (m.port.clone(), settings)
        })
        .collect();
    let tunnels = b
        .ovs
        .tunnels
        .iter()
        .map(|t| TunnelSpec {
            name: t.name.clone(),
            kind: t.kind.as_str().to_string(),
            key: t.key,
            remote_ip: t.remote,
            mark: t.mark,
        })
        .collect();
    BridgeSpec {
        name: b.name.clone(),
        lab: plan.lab.clone(),
        network: b.network.clone(),
        ports: b.ports.clone(),
        port_settings,
        tunnels,
        controller: b.ovs.controller.clone(),
        fail_mode: b.ovs.fail_mode.map(|f| f.as_str().to_string()),
    }
}

/// Give each bridge with an address that address on its local port (in the host's
/// namespace), up; then add the tunnels' routes and the flows.
pub(super) async fn configure<S: System>(
    sys: &S,
    host: &S::Net,
    ovs: &[&BridgePlan],
) -> Result<()> {
    for b in ovs {
        let Some(addr) = b.ovs.address else { continue };
        // The ports' veth ends are interfaces of the host's namespace too: without this, the
        // host answers a member's ARP for the bridge's address through the veth, with the
        // veth's MAC, and what is sent there never reaches the bridge's local port.
        for port in &b.ports {
            sys.write_host_sysctl(&format!("ipv4.conf.{port}.arp_ignore"), "1")
                .with_context(|| format!("port {port} of bridge {}", b.name))?;
        }
        let index = host
            .link_index(&b.name)
            .await?
            .ok_or_else(|| crate::Error::Other(format!("bridge {} has no local port", b.name)))?;
        host.add_address(index, addr)
            .await
            .with_context(|| format!("address {addr} of bridge {}", b.name))?;
        host.set_up(index)
            .await
            .with_context(|| format!("bridge {}", b.name))?;
    }
    let setups: Vec<BridgeSetup> = ovs
        .iter()
        .map(|b| setup_of(b))
        .filter(|s| !s.routes.is_empty() || !s.flows.is_empty())
        .collect();
    if setups.is_empty() {
        return Ok(());
    }
    sys.ovs_configure(&setups).await
}

/// The routes and flows of bridge `b`.
fn setup_of(b: &BridgePlan) -> BridgeSetup {
    let routes = b
        .ovs
        .tunnels
        .iter()
        .map(|t| OvsRoute {
            dst: t.remote,
            dev: t.underlay_bridge.clone(),
            gateway: t.gateway,
            mark: t.mark,
        })
        .collect();
    let ports: BTreeMap<String, String> = b
        .ovs
        .members
        .iter()
        .map(|m| (m.node.clone(), m.port.clone()))
        .collect();
    BridgeSetup {
        bridge: b.name.clone(),
        routes,
        flows: b.ovs.flows.clone(),
        ports,
    }
}
