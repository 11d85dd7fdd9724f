//! A lab's bridges as rows of the `Open_vSwitch` schema, and the transactions that make and
//! remove them.
//!
//! Each kind of row is built by one small function ([`bridge_row`], [`port_row`],
//! [`local_interface_row`], [`member_interface_row`]): a new column (a port's VLAN `tag` or
//! `trunks`, a bridge's `fail_mode` or `controller`, a tunnel interface's `type` and
//! `options`) is one more [`Row::with`] there, and a new kind of row (QoS, Queue, Controller)
//! one new function inserted by [`add_bridge`].
//!
//! Every row made is labelled with `external_ids` {`tcplab-lab`, `tcplab-network`}, so that
//! removal finds exactly what tcplab made.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::error::OvsError;
use super::ops::{
    Row, Transaction, comment, condition, delete, map, mutate, mutation, select, set, update, uuid,
    wait_now,
};
use super::{BridgeSpec, DATABASE, Datapath, LAB_KEY, NETWORK_KEY, PortSettings, TunnelSpec};

/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// What a bridge without an OpenFlow controller does: plain learning switching.
const FAIL_MODE: &str = "standalone";

/// Where the interesting results of a creation transaction are.
#[derive(Debug, Default)]
pub(super) struct CreateLayout {
    /// (op index, bridge name) of each `wait` asserting the name is free.
    pub(super) waits: Vec<(usize, String)>,
    /// Op index of each Bridge insert.
    pub(super) bridges: Vec<usize>,
    /// (op index, interface name, is the bridge's local port) of each Interface insert.
    pub(super) ifaces: Vec<(usize, String, bool)>,
    /// Op index of the `select` of `next_cfg`.
    pub(super) select: usize,
}

/// The `where` clause matching rows labelled with `lab`.
pub(super) fn lab_condition(lab: &str) -> Vec<Value> {
    vec![condition("external_ids", "includes", map([(LAB_KEY, lab)]))]
}

/// The `external_ids` of every row made for `spec`.
fn labels(spec: &BridgeSpec) -> Value {
    map([
        (LAB_KEY, spec.lab.as_str()),
        (NETWORK_KEY, spec.network.as_str()),
    ])
}

/// The bridge itself: its datapath, its ports, its fail mode (standalone: switching without
/// a controller) and its controllers (named-uuids).
fn bridge_row(
    spec: &BridgeSpec,
    datapath: Datapath,
    ports: Vec<Value>,
    controllers: Vec<Value>,
) -> Row {
    Row::new()
        .with("name", spec.name.as_str())
        .with("datapath_type", datapath.as_str())
        .with("fail_mode", spec.fail_mode.as_deref().unwrap_or(FAIL_MODE))
        .with("ports", set(ports))
        .with("controller", set(controllers))
        .with("external_ids", labels(spec))
}

/// A port of the bridge, holding the one interface `iface` (a named-uuid), with its access
/// VLAN or trunks and its QoS row (a named-uuid), when it has them.
fn port_row(
    spec: &BridgeSpec,
    name: &str,
    iface: Value,
    settings: Option<&PortSettings>,
    qos: Option<Value>,
) -> Row {
    let mut row = Row::new()
        .with("name", name)
        .with("interfaces", iface)
        .with("external_ids", labels(spec));
    if let Some(s) = settings {
        if let Some(tag) = s.tag {
            row = row.with("tag", tag);
        }
        if !s.trunks.is_empty() {
            row = row.with("trunks", set(s.trunks.iter().map(|t| Value::from(*t))));
        }
    }
    if let Some(q) = qos {
        row = row.with("qos", q);
    }
    row
}

/// An egress shaper: a `linux-htb` QoS row whose only queue (0, the default class) is limited
/// to `max_rate` bit/s too.
fn qos_rows(spec: &BridgeSpec, max_rate: u64) -> (Row, Row) {
    let rate = max_rate.to_string();
    let queue = Row::new()
        .with("other_config", map([("max-rate", rate.as_str())]))
        .with("external_ids", labels(spec));
    let qos = Row::new()
        .with("type", "linux-htb")
        .with("other_config", map([("max-rate", rate.as_str())]))
        .with("external_ids", labels(spec));
    (qos, queue)
}

/// A tunnel interface: its type and options (remote address, key, packet mark).
fn tunnel_interface_row(spec: &BridgeSpec, t: &TunnelSpec) -> Row {
    let remote = t.remote_ip.to_string();
    let key = t.key.to_string();
    let mark = t.mark.to_string();
    Row::new()
        .with("name", t.name.as_str())
        .with("type", t.kind.as_str())
        .with(
            "options",
            map([
                ("remote_ip", remote.as_str()),
                ("key", key.as_str()),
                ("egress_pkt_mark", mark.as_str()),
            ]),
        )
        .with("external_ids", labels(spec))
}

/// A controller of the bridge.
fn controller_row(spec: &BridgeSpec, target: &str) -> Row {
    Row::new()
        .with("target", target)
        .with("external_ids", labels(spec))
}

/// The bridge's local port: an internal interface named like the bridge.
fn local_interface_row(spec: &BridgeSpec) -> Row {
    Row::new()
        .with("name", spec.name.as_str())
        .with("type", "internal")
        .with("external_ids", labels(spec))
}

/// An existing interface of the host namespace (a veth end): no type, i.e. "system"; with
/// its ingress policer when it has one.
fn member_interface_row(spec: &BridgeSpec, name: &str) -> Row {
    let mut row = Row::new()
        .with("name", name)
        .with("external_ids", labels(spec));
    if let Some(s) = spec.port_settings.get(name)
        && let Some(rate) = s.ingress_rate_kbps
    {
        row = row.with("ingress_policing_rate", rate);
        if let Some(burst) = s.ingress_burst_kb {
            row = row.with("ingress_policing_burst", burst);
        }
    }
    row
}

/// The mutation telling ovs-vswitchd that there is a new configuration to apply.
fn bump_next_cfg() -> Value {
    mutation("next_cfg", "+=", 1)
}

/// The `select` reading back the `next_cfg` the transaction produced.
fn select_next_cfg() -> Value {
    select(DATABASE, vec![], &["next_cfg"])
}

/// The operations of the creation transaction (see [`super::Ovsdb::create_bridges`]).
pub(super) fn create_ops(datapath: Datapath, bridges: &[BridgeSpec]) -> (Vec<Value>, CreateLayout) {
    let mut tx = Transaction::new();
    let mut layout = CreateLayout::default();
    let bridge_refs: Vec<Value> = bridges
        .iter()
        .map(|spec| add_bridge(&mut tx, &mut layout, datapath, spec))
        .collect();
    let roots = mutation("bridges", "insert", set(bridge_refs));
    tx.push(mutate(DATABASE, vec![], vec![roots, bump_next_cfg()]));
    layout.select = tx.push(select_next_cfg());
    let labs: BTreeSet<&str> = bridges.iter().map(|b| b.lab.as_str()).collect();
    let names: Vec<&str> = bridges.iter().map(|b| b.name.as_str()).collect();
    tx.push(comment(&format!(
        "tcplab: create bridges {} of lab {}",
        names.join(", "),
        labs.into_iter().collect::<Vec<_>>().join(", ")
    )));
    (tx.into_ops(), layout)
}

/// Add one bridge to `tx`: a `wait` asserting its name is free, an interface and a port for
/// its local port and for each member, and the bridge row. Returns the bridge's named-uuid.
fn add_bridge(
    tx: &mut Transaction,
    layout: &mut CreateLayout,
    datapath: Datapath,
    spec: &BridgeSpec,
) -> Value {
    let name_free = wait_now(
        "Bridge",
        vec![condition("name", "==", spec.name.as_str())],
        &["name"],
        vec![],
    );
    layout.waits.push((tx.push(name_free), spec.name.clone()));
    let local = (spec.name.as_str(), local_interface_row(spec), true);
    let members = spec
        .ports
        .iter()
        .map(|p| (p.as_str(), member_interface_row(spec, p), false));
    let tunnels = spec
        .tunnels
        .iter()
        .map(|t| (t.name.as_str(), tunnel_interface_row(spec, t), false));
    let mut ports = Vec::new();
    for (name, iface_row, is_local) in std::iter::once(local).chain(members).chain(tunnels) {
        let (index, iface) = tx.insert("Interface", iface_row);
        layout.ifaces.push((index, name.to_owned(), is_local));
        let settings = spec.port_settings.get(name);
        let qos = settings.and_then(|s| s.max_rate).map(|rate| {
            let (qos, queue) = qos_rows(spec, rate);
            let (_, queue) = tx.insert("Queue", queue);
            let qos = qos.with("queues", map([(0, queue)]));
            tx.insert("QoS", qos).1
        });
        let (_, port) = tx.insert("Port", port_row(spec, name, iface, settings, qos));
        ports.push(port);
    }
    let controllers = spec
        .controller
        .iter()
        .map(|t| tx.insert("Controller", controller_row(spec, t)).1)
        .collect();
    let (index, bridge) = tx.insert("Bridge", bridge_row(spec, datapath, ports, controllers));
    layout.bridges.push(index);
    bridge
}

/// Index of the `select` of `next_cfg` in [`delete_ops`].
pub(super) const DELETE_SELECT: usize = 2;

/// The operations removing the bridges `found` ((name, uuid), sorted) of `lab`: op 0 asserts
/// the lab's labelled bridges are still exactly these, op [`DELETE_SELECT`] selects the new
/// `next_cfg`. The database's garbage collection drops their ports and interfaces.
pub(super) fn delete_ops(lab: &str, found: &[(String, String)]) -> Vec<Value> {
    let rows: Vec<Row> = found
        .iter()
        .map(|(name, _)| Row::new().with("name", name.as_str()))
        .collect();
    let uuids = found.iter().map(|(_, id)| uuid(id));
    let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
    let roots = mutation("bridges", "delete", set(uuids));
    vec![
        wait_now("Bridge", lab_condition(lab), &["name"], rows),
        mutate(DATABASE, vec![], vec![roots, bump_next_cfg()]),
        select_next_cfg(),
        update("Port", lab_condition(lab), Row::new().with("qos", set([]))),
        delete("QoS", lab_condition(lab)),
        delete("Queue", lab_condition(lab)),
        comment(&format!(
            "tcplab: delete bridges {} of lab {lab}",
            names.join(", ")
        )),
    ]
}

/// Index of the `select` of `next_cfg` in [`rollback_ops`].
pub(super) const ROLLBACK_SELECT: usize = 1;

/// The operations removing the bridges with these row uuids after a failed creation.
pub(super) fn rollback_ops(uuids: &[String]) -> Vec<Value> {
    let roots = mutation("bridges", "delete", set(uuids.iter().map(|id| uuid(id))));
    vec![
        mutate(DATABASE, vec![], vec![roots, bump_next_cfg()]),
        select_next_cfg(),
        comment("tcplab: undo a failed bridge creation"),
    ]
}

/// Reject what Linux or OVSDB cannot take, before anything is sent.
pub(super) fn validate_specs(bridges: &[BridgeSpec]) -> Result<(), OvsError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for spec in bridges {
        check_label("lab", &spec.lab)?;
        if spec.lab.is_empty() {
            return Err(OvsError::Invalid(format!(
                "bridge {:?} has an empty lab name: give the lab a name",
                spec.name
            )));
        }
        check_label("network", &spec.network)?;
        check_ifname("bridge", &spec.name)?;
        for port in &spec.ports {
            check_ifname("port", port)?;
        }
        let members = std::iter::once(&spec.name).chain(spec.ports.iter());
        for name in members {
            if let Some(first) = seen.insert(name, &spec.name) {
                return Err(OvsError::Invalid(format!(
                    "the name {name:?} is used twice (bridge {first:?} and bridge {:?}); a bridge's own port has the bridge's name: make every bridge and port name unique",
                    spec.name
                )));
            }
        }
    }
    Ok(())
}

/// A lab or network label: any text without NUL (OVSDB refuses NUL).
pub(super) fn check_label(what: &str, value: &str) -> Result<(), OvsError> {
    if value.contains('\0') {
        return Err(OvsError::Invalid(format!(
            "the {what} name {value:?} contains a NUL character: remove it"
        )));
    }
    Ok(())
}

/// What Linux accepts as an interface name.
fn check_ifname(what: &str, name: &str) -> Result<(), OvsError> {
    let problem = if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > MAX_IFNAME {
        Some(format!(
            "is {} bytes long, more than the {MAX_IFNAME} of a Linux interface name",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("is not allowed".to_owned())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("contains '/', ':', a space or a control character".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(OvsError::Invalid(format!(
            "{what} name {name:?} {problem}: choose a shorter plain name"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ovsdb::tests::spec;
    use serde_json::json;

    /// Every `named-uuid` reference inside `value`.
    fn named_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Array(items) => {
                if let [Value::String(tag), Value::String(name)] = items.as_slice()
                    && tag == "named-uuid"
                {
                    out.push(name);
                }
                items.iter().for_each(|i| named_refs(i, out));
            }
            Value::Object(map) => map.values().for_each(|i| named_refs(i, out)),
            _ => {}
        }
    }

    #[test]
    fn create_transaction_encodes_every_bridge_and_port() {
        let bridges = [
            spec("br-a", "lab1", "lan", &["va", "vb"]),
            spec("br-b", "lab1", "wan", &[]),
        ];
        let (ops, layout) = create_ops(Datapath::Netdev, &bridges);
        // per bridge: wait + (iface + port) per member + bridge; then mutate, select, comment
        assert_eq!(ops.len(), (1 + 2 * 3 + 1) + (1 + 2 + 1) + 3);
        assert_eq!(
            layout.waits,
            vec![(0, "br-a".to_owned()), (8, "br-b".to_owned())]
        );
        assert_eq!(layout.bridges, vec![7, 11]);
        assert_eq!(layout.select, 13);
        let names: Vec<(&str, bool)> = layout
            .ifaces
            .iter()
            .map(|(_, n, l)| (n.as_str(), *l))
            .collect();
        assert_eq!(
            names,
            vec![("br-a", true), ("va", false), ("vb", false), ("br-b", true)]
        );

        assert_eq!(
            ops[0],
            json!({"op": "wait", "table": "Bridge", "where": [["name", "==", "br-a"]],
                   "columns": ["name"], "until": "==", "rows": [], "timeout": 0})
        );
        let labels = json!(["map", [["tcplab-lab", "lab1"], ["tcplab-network", "lan"]]]);
        assert_eq!(
            ops[1],
            json!({"op": "insert", "table": "Interface", "uuid-name": "row1",
                   "row": {"name": "br-a", "type": "internal", "external_ids": labels}})
        );
        assert_eq!(
            ops[2],
            json!({"op": "insert", "table": "Port", "uuid-name": "row2",
                   "row": {"name": "br-a", "interfaces": ["named-uuid", "row1"], "external_ids": labels}})
        );
        // a veth port has no type (a "system" interface)
        assert_eq!(ops[3]["row"], json!({"name": "va", "external_ids": labels}));
        assert_eq!(ops[4]["row"]["interfaces"], json!(["named-uuid", "row3"]));
        assert_eq!(
            ops[7],
            json!({"op": "insert", "table": "Bridge", "uuid-name": "row7",
                   "row": {"name": "br-a", "datapath_type": "netdev", "fail_mode": "standalone",
                           "ports": ["set", [["named-uuid", "row2"], ["named-uuid", "row4"],
                                             ["named-uuid", "row6"]]],
                           "controller": ["set", []],
                           "external_ids": labels}})
        );
        assert_eq!(
            ops[11]["row"]["external_ids"][1][1],
            json!(["tcplab-network", "wan"])
        );
        assert_eq!(
            ops[12],
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["bridges", "insert", ["set", [["named-uuid", "row7"], ["named-uuid", "row11"]]]],
                                 ["next_cfg", "+=", 1]]})
        );
        assert_eq!(
            ops[13],
            json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]})
        );
        assert_eq!(ops[14]["op"], "comment");
        assert!(
            ops[14]["comment"].as_str().unwrap().contains("br-a, br-b"),
            "{}",
            ops[14]
        );
    }

    #[test]
    fn every_named_uuid_is_defined_by_an_earlier_insert() {
        let bridges = [
            spec("b0", "l", "n", &["p0", "p1", "p2"]),
            spec("b1", "l", "m", &["p3"]),
            spec("b2", "k", "m", &[]),
        ];
        let (ops, _) = create_ops(Datapath::System, &bridges);
        let mut defined = BTreeSet::new();
        for op in &ops {
            let mut used = Vec::new();
            named_refs(op, &mut used);
            for name in used {
                assert!(defined.contains(name), "{name} used before it is inserted");
            }
            if let Some(name) = op["uuid-name"].as_str() {
                assert!(defined.insert(name), "{name} defined twice");
            }
        }
        assert_eq!(defined.len(), 3 + 2 * (4 + 2 + 1));
    }

    #[test]
    fn delete_transaction_asserts_the_labelled_set_then_removes_by_uuid() {
        let found = vec![
            ("b1".to_owned(), "u-1".to_owned()),
            ("b2".to_owned(), "u-2".to_owned()),
        ];
        let ops = delete_ops("lab1", &found);
        assert_eq!(
            ops[0],
            json!({"op": "wait", "table": "Bridge",
                   "where": [["external_ids", "includes", ["map", [["tcplab-lab", "lab1"]]]]],
                   "columns": ["name"], "until": "==", "rows": [{"name": "b1"}, {"name": "b2"}], "timeout": 0})
        );
        assert_eq!(
            ops[1],
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["bridges", "delete", ["set", [["uuid", "u-1"], ["uuid", "u-2"]]]],
                                 ["next_cfg", "+=", 1]]})
        );
        assert_eq!(ops[DELETE_SELECT]["columns"], json!(["next_cfg"]));
        // the lab's QoS and Queue rows are roots: unhooked from the ports, then deleted
        assert_eq!(ops[3]["op"], "update");
        assert_eq!(
            (ops[4]["table"].as_str(), ops[5]["table"].as_str()),
            (Some("QoS"), Some("Queue"))
        );
        assert_eq!(ops[6]["op"], "comment");
    }

    #[test]
    fn rollback_removes_the_new_bridges_by_uuid() {
        let ops = rollback_ops(&["u-1".to_owned()]);
        assert_eq!(
            ops[0]["mutations"],
            json!([
                ["bridges", "delete", ["set", [["uuid", "u-1"]]]],
                ["next_cfg", "+=", 1]
            ])
        );
        assert_eq!(ops[ROLLBACK_SELECT]["columns"], json!(["next_cfg"]));
    }

    #[test]
    fn lab_condition_matches_the_label() {
        assert_eq!(
            lab_condition("x"),
            vec![json!([
                "external_ids",
                "includes",
                ["map", [["tcplab-lab", "x"]]]
            ])]
        );
    }

    #[test]
    fn validation_rejects_bad_specs_before_sending_anything() {
        let ok = [
            spec("br0", "lab", "net", &["v0", "v1"]),
            spec("br1", "lab", "", &[]),
        ];
        assert!(validate_specs(&ok).is_ok());
        assert!(validate_specs(&[]).is_ok());
        let bad = [
            vec![spec("a-bridge-name-too-long", "lab", "n", &[])],
            vec![spec("", "lab", "n", &[])],
            vec![spec("br0", "lab", "n", &["has space"])],
            vec![spec("br0", "lab", "n", &["sl/ash"])],
            vec![spec("br0", "lab", "n", &["nul\0"])],
            vec![spec("br0", "lab", "n", &[".."])],
            vec![spec("br0", "", "n", &[])],
            vec![spec("br0", "la\0b", "n", &[])],
            vec![spec("br0", "lab", "n\0", &[])],
            vec![spec("br0", "lab", "n", &["v0", "v0"])],
            vec![spec("br0", "lab", "n", &["br0"])],
            vec![
                spec("br0", "lab", "n", &["v0"]),
                spec("br1", "lab", "n", &["v0"]),
            ],
            vec![spec("br0", "lab", "n", &[]), spec("br0", "lab", "n", &[])],
            vec![spec("br0", "lab", "n", &["ü-ünïcödé-long"])],
        ];
        for specs in &bad {
            let err = validate_specs(specs).expect_err(&format!("{specs:?}"));
            assert!(matches!(err, OvsError::Invalid(_)), "{err}");
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.ends_with('.'), "{text}");
        }
        assert!(check_label("lab", "with\0nul").is_err());
    }
}
