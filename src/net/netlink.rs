//! One rtnetlink connection per namespace. A connection is opened by a thread that is inside the
//! namespace (the socket stays bound to it), then driven by the caller's tokio runtime.

use crate::error::{Context, Result, netlink_errno};
use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, State,
};
use rtnetlink::packet_route::neighbour::NeighbourFlags;
use rtnetlink::packet_route::route::{RouteAttribute, RouteScope};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

/// A netlink handle bound to one namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

/// What `status` shows of an interface.
#[derive(Debug, Clone, Serialize)]
pub struct LinkInfoView {
    /// ifindex
    pub index: u32,
    /// name
    pub name: String,
    /// MAC address
    pub mac: String,
    /// MTU
    pub mtu: u32,
    /// administratively up
    pub up: bool,
    /// operational state (up, down, lowerlayerdown, unknown)
    pub state: String,
    /// link kind (veth, bridge, ...)
    pub kind: String,
    /// IPv4 addresses
    pub addresses: Vec<String>,
}

impl Netlink {
    /// Open a connection in the CALLING THREAD's namespace, driven by runtime `rt`.
    pub fn open_here(rt: &tokio::runtime::Handle) -> Result<Self> {
        let _guard = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection().context("opening a netlink socket")?;
        rt.spawn(conn);
        Ok(Netlink { handle })
    }

    /// Bring an interface up by index.
    pub async fn set_up(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("bringing up interface {index}"))
    }

    /// Set an interface up or down by name.
    pub async fn set_state(&self, name: &str, up: bool) -> Result<()> {
        let b = LinkUnspec::new_with_name(name);
        let msg = if up { b.up() } else { b.down() }.build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .with_context(|| format!("setting {name} {}", if up { "up" } else { "down" }))
    }

    /// Set an interface's MTU by name.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_name(name).mtu(mtu).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .with_context(|| format!("setting mtu {mtu} on {name}"))
    }

    /// Create a Linux bridge with a fixed index, up.
    pub async fn add_bridge(&self, name: &str, index: u32) -> Result<()> {
        // No multicast snooping: the book's Ethernet floods multicast like a hub, and a snooping
        // bridge joins 224.0.0.106 and sends IGMP reports of its own into the lab.
        let msg = LinkBridge::new(name)
            .mcast_snooping(false)
            .index(index)
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .with_context(|| format!("creating bridge {name}"))
    }

    /// Create a veth pair here with its peer created directly in the namespace of `peer_ns_fd`
    /// (None: this namespace), this end up (the peer still down), with fixed indexes (0: kernel's choice), and `name`
    /// made a port of bridge `controller` when given.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_veth(
        &self,
        name: &str,
        index: u32,
        peer: &str,
        peer_index: u32,
        peer_ns_fd: Option<RawFd>,
        mtu: u32,
        controller: Option<u32>,
    ) -> Result<()> {
        // The peer cannot be brought up in the same request (veth_open finds no peer yet and
        // answers ENOTCONN): the caller brings it up from the peer's namespace.
        // One segment per packet (no GSO super-packets of up to 64 KB): a capture shows the
        // segments a wire would carry, as the book's traces do.
        let mut pb = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .mtu(mtu)
            .append_extra_attribute(LinkAttribute::GsoMaxSegs(1));
        if peer_index != 0 {
            pb = pb.index(peer_index);
        }
        if let Some(fd) = peer_ns_fd {
            pb = pb.setns_by_fd(fd);
        }
        let mut b = LinkVeth::new(name, peer)
            .mtu(mtu)
            .append_extra_attribute(LinkAttribute::GsoMaxSegs(1))
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(pb.build())));
        if index != 0 {
            b = b.index(index);
        }
        if let Some(c) = controller {
            b = b.controller(c);
        }
        self.handle
            .link()
            .add(b.build())
            .execute()
            .await
            .with_context(|| format!("creating veth {name} - {peer}"))
    }

    /// Add an IPv4 address.
    pub async fn add_address(&self, index: u32, net: Ipv4Net) -> Result<()> {
        self.handle
            .address()
            .add(index, IpAddr::V4(net.addr()), net.prefix_len())
            .execute()
            .await
            .with_context(|| format!("adding address {net}"))
    }

    /// Add a route: via a gateway, or a device route (scope link) when there is none.
    pub async fn add_route(
        &self,
        to: Ipv4Net,
        via: Option<Ipv4Addr>,
        oif: Option<u32>,
    ) -> Result<()> {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(to.network(), to.prefix_len());
        if let Some(gw) = via {
            b = b.gateway(gw);
        } else {
            b = b.scope(RouteScope::Link);
        }
        if let Some(i) = oif {
            b = b.output_interface(i);
        }
        self.handle
            .route()
            .add(b.build())
            .execute()
            .await
            .with_context(|| {
                format!(
                    "adding route {to}{}",
                    via.map(|g| format!(" via {g}")).unwrap_or_default()
                )
            })
    }

    /// Add a proxy neighbour entry (`ip neigh add proxy ADDR dev IF`).
    pub async fn add_proxy_neighbour(&self, index: u32, addr: Ipv4Addr) -> Result<()> {
        self.handle
            .neighbours()
            .add(index, IpAddr::V4(addr))
            .flags(NeighbourFlags::Proxy)
            .execute()
            .await
            .with_context(|| format!("adding proxy ARP entry for {addr}"))
    }

    /// The link message of interface `name`, if it exists.
    async fn link_by_name(
        &self,
        name: &str,
    ) -> Result<Option<rtnetlink::packet_route::link::LinkMessage>> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(m) => Ok(m),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("looking up interface {name}")),
        }
    }

    /// The index of interface `name`, if it exists.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.link_by_name(name).await?.map(|m| m.header.index))
    }

    /// Set an interface's alias (`ip link set NAME alias TEXT`): tcplab tags what it makes in
    /// the host's namespace with it.
    pub async fn set_alias(&self, name: &str, alias: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_name(name).alias(alias).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .with_context(|| format!("tagging {name}"))
    }

    /// The alias of interface `name` (None: no such interface; Some(""): no alias).
    pub async fn alias(&self, name: &str) -> Result<Option<String>> {
        Ok(self.link_by_name(name).await?.map(|m| {
            m.attributes
                .iter()
                .find_map(|a| {
                    if let LinkAttribute::IfAlias(t) = a {
                        Some(t.clone())
                    } else {
                        None
                    }
                })
                .unwrap_or_default()
        }))
    }

    /// Delete interface `name`; Ok(false) if it does not exist.
    pub async fn delete_link(&self, name: &str) -> Result<bool> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("deleting interface {name}")),
        }
    }

    /// Every interface with its IPv4 addresses.
    pub async fn links(&self) -> Result<Vec<LinkInfoView>> {
        let mut out = Vec::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s.try_next().await.context("listing interfaces")? {
            let mut v = LinkInfoView {
                index: m.header.index,
                name: String::new(),
                mac: String::new(),
                mtu: 0,
                up: m.header.flags.contains(LinkFlags::Up),
                state: String::new(),
                kind: String::new(),
                addresses: Vec::new(),
            };
            for a in &m.attributes {
                match a {
                    LinkAttribute::IfName(n) => v.name = n.clone(),
                    LinkAttribute::Address(mac) => v.mac = format_mac(mac),
                    LinkAttribute::Mtu(mtu) => v.mtu = *mtu,
                    LinkAttribute::OperState(st) => v.state = oper_state(st),
                    LinkAttribute::LinkInfo(infos) => {
                        for i in infos {
                            if let LinkInfo::Kind(k) = i {
                                v.kind = kind_name(k);
                            }
                        }
                    }
                    _ => {}
                }
            }
            out.push(v);
        }
        let mut s = self.handle.address().get().execute();
        while let Some(m) = s.try_next().await.context("listing addresses")? {
            let prefix = m.header.prefix_len;
            for a in &m.attributes {
                if let AddressAttribute::Address(IpAddr::V4(ip)) = a
                    && let Some(l) = out.iter_mut().find(|l| l.index == m.header.index)
                {
                    l.addresses.push(format!("{ip}/{prefix}"));
                }
            }
        }
        Ok(out)
    }

    /// IPv4 routes of the main table as (destination, gateway, output interface index).
    pub async fn routes(&self) -> Result<Vec<(Ipv4Net, Option<Ipv4Addr>, Option<u32>)>> {
        let mut out = Vec::new();
        let msg = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let mut s = self.handle.route().get(msg).execute();
        while let Some(m) = s.try_next().await.context("listing routes")? {
            if m.header.table != 254 {
                continue;
            }
            let mut dst = Ipv4Addr::UNSPECIFIED;
            let mut gw = None;
            let mut oif = None;
            for a in &m.attributes {
                match a {
                    RouteAttribute::Destination(
                        rtnetlink::packet_route::route::RouteAddress::Inet(d),
                    ) => dst = *d,
                    RouteAttribute::Gateway(
                        rtnetlink::packet_route::route::RouteAddress::Inet(g),
                    ) => gw = Some(*g),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            if let Ok(net) = Ipv4Net::new(dst, m.header.destination_prefix_length) {
                out.push((net, gw, oif));
            }
        }
        Ok(out)
    }
}

fn format_mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn oper_state(s: &State) -> String {
    format!("{s:?}").to_lowercase()
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Other(s) => s.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}
