//! Validation: every kind of refused input gives one line naming the file, the place and the
//! value; and the course topology's model and plan.

use super::*;
use crate::plan::{self, Ns, PlanOptions};

const BASE: &str = r#"
name = "t"
[nodes.a]
routes = [{ to = "default", via = "10.0.0.2" }]
[nodes.b]
router = true
[networks.lan]
subnet = "10.0.0.0/24"
members = [
  { node = "a", interface = "eth1", address = "10.0.0.1" },
  { node = "b", interface = "eth1", address = "10.0.0.2" },
]
"#;

fn err(text: &str) -> String {
    let e = parse(text, "lab.toml").expect_err("must be refused");
    assert_eq!(e.exit_code(), 2, "bad input exits 2: {e}");
    let s = e.to_string();
    assert!(!s.contains('\n'), "one line: {s}");
    assert!(s.starts_with("lab.toml: "), "names the file: {s}");
    s
}

#[test]
fn base_is_valid() {
    let t = parse(BASE, "lab.toml").unwrap();
    assert_eq!(t.nodes.len(), 2);
    assert_eq!(
        t.nodes[0].interfaces[0].address.unwrap().to_string(),
        "10.0.0.1/24"
    );
}

#[test]
fn not_toml() {
    let s = err("name = \"t\"\n[nodes.a\n");
    assert!(s.contains("line 2"), "{s}");
}

#[test]
fn unknown_field() {
    let s = err(&BASE.replace("router = true", "router = true\ncolour = \"red\""));
    assert!(s.contains("unknown field `colour`"), "{s}");
    assert!(s.contains("line "), "{s}");
}

#[test]
fn unknown_node_in_link() {
    let t = format!(
        "{BASE}\n[[links]]\na = {{ node = \"a\", interface = \"p0\", address = \"10.9.0.1/30\" }}\nb = {{ node = \"zz\", interface = \"p0\", address = \"10.9.0.2/30\" }}\n"
    );
    let s = err(&t);
    assert!(
        s.contains("links[0].b.node") && s.contains("unknown node 'zz'"),
        "{s}"
    );
}

#[test]
fn unknown_node_in_network() {
    let s = err(&BASE.replace("{ node = \"b\"", "{ node = \"q\""));
    assert!(
        s.contains("networks.lan.members[1].node") && s.contains("'q'"),
        "{s}"
    );
}

#[test]
fn address_outside_network() {
    let s = err(&BASE.replace("10.0.0.2\" }", "10.0.1.2\" }"));
    assert!(
        s.contains("networks.lan.members[1].address")
            && s.contains("10.0.1.2 is outside 10.0.0.0/24"),
        "{s}"
    );
}

#[test]
fn duplicate_address() {
    let s = err(&BASE.replace("address = \"10.0.0.2\"", "address = \"10.0.0.1\""));
    assert!(
        s.contains("duplicate address 10.0.0.1") && s.contains("members[1]"),
        "{s}"
    );
}

#[test]
fn duplicate_interface_in_node() {
    let t = format!(
        "{BASE}\n[[links]]\na = {{ node = \"a\", interface = \"eth1\", address = \"10.9.0.1/30\" }}\nb = {{ node = \"b\", interface = \"p0\", address = \"10.9.0.2/30\" }}\n"
    );
    let s = err(&t);
    assert!(
        s.contains("links[0].a.interface") && s.contains("already has an interface 'eth1'"),
        "{s}"
    );
}

#[test]
fn interface_name_too_long() {
    let s = err(&BASE.replace(
        "interface = \"eth1\", address = \"10.0.0.1\"",
        "interface = \"averyveryverylong0\", address = \"10.0.0.1\"",
    ));
    assert!(
        s.contains("averyveryverylong0") && s.contains("longer than 15"),
        "{s}"
    );
}

#[test]
fn route_gateway_not_connected() {
    let s = err(&BASE.replace("via = \"10.0.0.2\"", "via = \"192.168.7.1\""));
    assert!(
        s.contains("nodes.a.routes[0].via")
            && s.contains("gateway 192.168.7.1 is on no connected subnet"),
        "{s}"
    );
}

#[test]
fn proxy_arp_on_missing_interface() {
    let s = err(&BASE.replace(
        "router = true",
        "router = true\nproxy_arp = [{ interface = \"eth9\", addresses = [\"10.0.0.9\"] }]",
    ));
    assert!(
        s.contains("nodes.b.proxy_arp[0].interface") && s.contains("no interface 'eth9'"),
        "{s}"
    );
}

#[test]
fn more_bad_input() {
    assert!(err(&BASE.replace("name = \"t\"", "name = \"Bad-Name\"")).contains("invalid lab name"));
    assert!(
        err(&BASE.replace("subnet = \"10.0.0.0/24\"", "subnet = \"10.0.0.0/33\""))
            .contains("not an IPv4 prefix")
    );
    assert!(
        err(&BASE.replace(
            "subnet = \"10.0.0.0/24\"",
            "subnet = \"10.0.0.0/24\"\nkind = \"hub\""
        ))
        .contains("unknown kind 'hub'")
    );
    assert!(
        err(&BASE.replace(
            "subnet = \"10.0.0.0/24\"",
            "subnet = \"10.0.0.0/24\"\nmtu = 10"
        ))
        .contains("mtu 10")
    );
    assert!(err(&BASE.replace("via = \"10.0.0.2\"", "via = \"10.0.0.1\"")).contains("own address"));
    assert!(err("name = \"t\"\n").contains("no nodes"));
    assert!(
        err(&BASE.replace(
            "to = \"default\", via = \"10.0.0.2\"",
            "to = \"10.5.0.0/16\""
        ))
        .contains("needs `via`")
    );
    assert!(
        err(&BASE.replace("address = \"10.0.0.1\"", "address = \"10.0.0.255\""))
            .contains("broadcast")
    );
}

#[test]
fn course_topology_model() {
    let t = builtin();
    assert_eq!(t.name, "tcpip");
    let names: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "aix", "solaris", "gemini", "gateway", "netb", "sun", "svr4", "bsdi", "slip"
        ]
    );
    let routers: Vec<&str> = t
        .nodes
        .iter()
        .filter(|n| n.router)
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(routers, ["gateway", "netb", "sun", "bsdi"]);
    let netb = t.node("netb").unwrap();
    assert_eq!(netb.proxy_arp.len(), 2);
    assert_eq!(netb.proxy_arp[0].interface, "eth1");
    assert_eq!(
        netb.proxy_arp[0].addresses,
        ["140.252.1.29".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(netb.proxy_arp[1].addresses.len(), 4);
    assert!(netb.interface("netbside").unwrap().address.is_none());
    // Device routes come first so that gateways behind them resolve.
    assert_eq!(netb.routes[0].to_string(), "140.252.1.29/32 dev netbside");
    let slip = t.node("slip").unwrap();
    assert_eq!(
        slip.interfaces[0].address.unwrap().to_string(),
        "140.252.13.65/27"
    );
    assert_eq!(
        slip.routes[0].to_string(),
        "default via 140.252.13.66 dev slipside"
    );
    let hosts = t.hosts_file();
    assert!(hosts.contains("140.252.1.92\taix aix-eth1\n"), "{hosts}");
    assert!(hosts.contains("140.252.1.29\tsun-sunside\n"), "{hosts}");
}

#[test]
fn course_plan_ovs() {
    let t = builtin();
    assert!(
        t.networks.iter().all(|n| n.kind == NetworkKind::Ovs),
        "the course makes both LANs with Open vSwitch"
    );
    let p = plan::plan(&t, "tcpip", &PlanOptions::default());
    assert_eq!(p.switch_ns, None, "no Linux bridge, no switch namespace");
    assert_eq!(
        p.bridges
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>(),
        ["tcpip-net1", "tcpip-net2"]
    );
    // OVS ports live in the host namespace, with lab-unique names; nothing else does.
    let host_ends: Vec<&str> = p
        .veths
        .iter()
        .filter(|v| v.b.ns == Ns::Host)
        .map(|v| v.b.name.as_str())
        .collect();
    assert_eq!(host_ends.len(), 8);
    assert!(
        host_ends
            .iter()
            .all(|n| n.starts_with("tl") && n.len() <= 15)
    );
    assert_eq!(p.bridges[0].ports, host_ends[..5]);
    let other = plan::plan(&t, "other", &PlanOptions::default());
    assert_ne!(
        other.bridges[0].ports[0], p.bridges[0].ports[0],
        "two labs never share a host name"
    );
}

#[test]
fn course_plan_isolated() {
    let t = builtin();
    let p = plan::plan(
        &t,
        "tcpip",
        &PlanOptions {
            uplink: None,
            switch_override: Some(NetworkKind::Linux),
            profile: None,
            fake_internet: false,
        },
    );
    assert_eq!(p.switch_ns.as_deref(), Some("tcplab-tcpip"));
    assert_eq!(p.nodes.len(), 9);
    assert_eq!(p.nodes[0].netns, "tcplab-tcpip-aix");
    // 8 LAN ports + 2 point-to-point lines, no uplink.
    assert_eq!(p.veths.len(), 10);
    assert!(p.uplink.is_none());
    assert!(
        p.veths
            .iter()
            .all(|v| v.a.ns != Ns::Host && v.b.ns != Ns::Host),
        "isolated: nothing in the host"
    );
    let gateway = p.nodes.iter().find(|n| n.name == "gateway").unwrap();
    assert!(
        gateway.routes.iter().all(|r| r.route.to.prefix_len() != 0),
        "no default route without an uplink"
    );
    let fwd = |n: &str| p.nodes.iter().find(|x| x.name == n).unwrap().sysctls[0].clone();
    assert_eq!(
        fwd("bsdi"),
        ("ipv4.ip_forward".to_string(), "1".to_string())
    );
    assert_eq!(fwd("aix"), ("ipv4.ip_forward".to_string(), "0".to_string()));
    let netb = p.nodes.iter().find(|n| n.name == "netb").unwrap();
    assert!(
        netb.iface_sysctls
            .contains(&("ipv4.neigh.eth1.proxy_delay".into(), "0".into()))
    );
    assert!(
        netb.iface_sysctls
            .contains(&("ipv4.conf.netbside.proxy_arp".into(), "1".into()))
    );
    assert_eq!(netb.proxy_neighbours.len(), 5);
    // Fixed indexes: lo is 1, eth1 2, netbside 3.
    assert_eq!(
        netb.interfaces
            .iter()
            .map(|i| (i.name.as_str(), i.index))
            .collect::<Vec<_>>(),
        [("eth1", 2), ("netbside", 3)]
    );
    let text = p.render();
    assert!(
        text.contains("route netb 140.252.13.32/27 via 140.252.1.29 dev netbside"),
        "{text}"
    );
    assert!(
        text.contains("proxy-arp netb eth1 answers for 140.252.1.29"),
        "{text}"
    );
}

#[test]
fn course_plan_with_uplink() {
    let t = builtin();
    let opts = PlanOptions {
        uplink: Some("enp0s3".into()),
        switch_override: Some(NetworkKind::Linux),
        profile: None,
        fake_internet: false,
    };
    let p = plan::plan(&t, "tcpip", &opts);
    let u = p.uplink.as_ref().unwrap();
    assert_eq!(u.host_interface, "gatewayout");
    assert_eq!(u.gateway.to_string(), "140.252.104.2");
    assert_eq!(u.host_routes.len(), 3);
    assert!(
        u.masquerade
            .iter()
            .any(|n| n.to_string() == "140.252.13.64/27")
    );
    let gateway = p.nodes.iter().find(|n| n.name == "gateway").unwrap();
    let default = gateway
        .routes
        .iter()
        .find(|r| r.route.to.prefix_len() == 0)
        .expect("default route with an uplink");
    assert_eq!(
        default.route.to_string(),
        "default via 140.252.104.1 dev gatewayin"
    );
    assert_eq!(p.veths.iter().filter(|v| v.b.ns == Ns::Host).count(), 1);
}

#[test]
fn shifted_indexes_move_every_reference_in_that_namespace_only() {
    let t = builtin();
    let mut p = plan::plan(
        &t,
        "tcpip",
        &PlanOptions {
            uplink: None,
            switch_override: Some(NetworkKind::Linux),
            profile: None,
            fake_internet: false,
        },
    );
    let netb = p.nodes.iter().position(|n| n.name == "netb").unwrap();
    let before = p.clone();
    p.shift_indexes(Ns::Node(netb), 3);
    let (b, a) = (&before.nodes[netb], &p.nodes[netb]);
    assert_eq!(
        a.interfaces.iter().map(|i| i.index).collect::<Vec<_>>(),
        [5, 6]
    );
    assert!(
        a.addresses
            .iter()
            .zip(&b.addresses)
            .all(|(x, y)| x.0 == y.0 + 3)
    );
    assert!(
        a.proxy_neighbours
            .iter()
            .zip(&b.proxy_neighbours)
            .all(|(x, y)| x.0 == y.0 + 3)
    );
    assert!(
        a.routes
            .iter()
            .zip(&b.routes)
            .all(|(x, y)| x.oif.map(|o| o - 3) == y.oif)
    );
    for (v, w) in p.veths.iter().zip(&before.veths) {
        for (e, f) in [(&v.a, &w.a), (&v.b, &w.b)] {
            let want = if e.ns == Ns::Node(netb) {
                f.index + 3
            } else {
                f.index
            };
            assert_eq!(e.index, want, "{}", v.label);
        }
    }
    assert_eq!(
        p.nodes[0].interfaces[0].index, before.nodes[0].interfaces[0].index,
        "other nodes untouched"
    );
}

#[test]
fn per_interface_sysctls_wait_for_the_interfaces() {
    let text = BASE.replace("router = true", "router = true\nsysctls = { \"ipv4.conf.eth1.accept_redirects\" = \"0\", \"ipv4.tcp_sack\" = \"0\", \"ipv4.conf.all.send_redirects\" = \"0\" }");
    let t = parse(&text, "lab.toml").unwrap();
    let p = plan::plan(&t, "t", &PlanOptions::default());
    let b = p.nodes.iter().find(|n| n.name == "b").unwrap();
    assert!(
        b.iface_sysctls
            .contains(&("ipv4.conf.eth1.accept_redirects".into(), "0".into()))
    );
    assert!(b.sysctls.contains(&("ipv4.tcp_sack".into(), "0".into())));
    assert!(
        b.sysctls
            .contains(&("ipv4.conf.all.send_redirects".into(), "0".into()))
    );
}

#[test]
fn switch_port_names_never_clash() {
    let text = r#"
name = "t"
[nodes.a-b]
[nodes.a]
[networks.lan]
subnet = "10.0.0.0/24"
members = [
  { node = "a-b", interface = "c", address = "10.0.0.1" },
  { node = "a", interface = "b-c", address = "10.0.0.2" },
]
"#;
    let t = parse(text, "lab.toml").unwrap();
    let p = plan::plan(
        &t,
        "t",
        &PlanOptions {
            uplink: None,
            switch_override: Some(NetworkKind::Linux),
            profile: None,
            fake_internet: false,
        },
    );
    let ports = &p.bridges[0].ports;
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1], "{ports:?}");
}

#[test]
fn non_ascii_interface_names_are_refused() {
    let s = err(&BASE.replace(
        "interface = \"eth1\", address = \"10.0.0.1\"",
        "interface = \"réseau\", address = \"10.0.0.1\"",
    ));
    assert!(s.contains("réseau"), "{s}");
}

#[test]
fn a_topology_of_more_than_a_thousand_nodes_is_refused() {
    let mut text = String::from("name = \"big\"\n");
    for i in 0..=super::validate::MAX_NODES {
        text += &format!("[nodes.h{i}]\n");
    }
    let err = super::parse(&text, "big.toml").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("1001 nodes: at most 1000"),
        "{err}"
    );
    // A thousand is fine.
    let last = format!("[nodes.h{}]\n", super::validate::MAX_NODES);
    assert!(super::parse(&text.replace(&last, ""), "big.toml").is_ok());
}
