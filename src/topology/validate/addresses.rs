//! Numbers of the wire: MTUs, prefixes, addresses and interface addresses (an address with
//! its prefix, checked against its network).

use super::Checker;
use crate::error::Result;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// The MTU when the file gives none.
const DEFAULT_MTU: u32 = 1500;

/// The MTU at `place` (default 1500), in 68..=65535.
pub(super) fn check_mtu(c: &Checker, place: &str, mtu: Option<u32>) -> Result<u32> {
    let mtu = mtu.unwrap_or(DEFAULT_MTU);
    if !(68..=65535).contains(&mtu) {
        return Err(c.err(place, format!("mtu {mtu} is out of range (68 to 65535)")));
    }
    Ok(mtu)
}

/// A prefix without host bits, like `140.252.1.0/24`.
pub(super) fn parse_prefix(c: &Checker, place: &str, s: &str) -> Result<Ipv4Net> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        c.err(
            place,
            format!("'{s}' is not an IPv4 prefix like 140.252.1.0/24"),
        )
    })?;
    if net.network() != net.addr() {
        return Err(c.err(
            place,
            format!("'{s}' has host bits set (did you mean {}?)", net.trunc()),
        ));
    }
    Ok(net)
}

/// A bare IPv4 address.
pub(super) fn parse_addr(c: &Checker, place: &str, s: &str) -> Result<Ipv4Addr> {
    s.parse()
        .map_err(|_| c.err(place, format!("'{s}' is not an IPv4 address")))
}

/// An interface address: `A.B.C.D` takes the network's prefix, `A.B.C.D/N` must agree with it.
/// Without a network (a link, the uplink) the prefix must be written.
pub(super) fn parse_if_addr(
    c: &Checker,
    place: &str,
    s: &str,
    subnet: Option<Ipv4Net>,
) -> Result<Ipv4Net> {
    let net = if s.contains('/') {
        s.parse::<Ipv4Net>().map_err(|_| {
            c.err(
                place,
                format!("'{s}' is not an IPv4 address with prefix like 140.252.13.65/27"),
            )
        })?
    } else {
        let addr = parse_addr(c, place, s)?;
        match subnet {
            Some(sn) => Ipv4Net::new(addr, sn.prefix_len()).expect("prefix from a valid net"),
            None => return Err(c.err(place, format!("'{s}' needs a prefix length, like {s}/24"))),
        }
    };
    if let Some(sn) = subnet {
        check_in_subnet(c, place, net, sn)?;
    }
    check_host_address(c, place, net)?;
    Ok(net)
}

/// `net` is an address of network `subnet`, with its prefix length.
fn check_in_subnet(c: &Checker, place: &str, net: Ipv4Net, subnet: Ipv4Net) -> Result<()> {
    if !subnet.contains(&net.addr()) {
        return Err(c.err(place, format!("{} is outside {subnet}", net.addr())));
    }
    if net.prefix_len() != subnet.prefix_len() {
        return Err(c.err(
            place,
            format!("{net} has a different prefix length than its network {subnet}"),
        ));
    }
    Ok(())
}

/// `net`'s address can be a host's: not the network or broadcast address of its prefix (bar
/// /31 and /32), not loopback, multicast, unspecified or broadcast.
fn check_host_address(c: &Checker, place: &str, net: Ipv4Net) -> Result<()> {
    let a = net.addr();
    if net.prefix_len() < 31 && (a == net.network() || a == net.broadcast()) {
        return Err(c.err(
            place,
            format!(
                "{net} is the network or broadcast address of {}",
                net.trunc()
            ),
        ));
    }
    if a.is_loopback() || a.is_multicast() || a.is_unspecified() || a.is_broadcast() {
        return Err(c.err(place, format!("{a} cannot be a host address")));
    }
    Ok(())
}
