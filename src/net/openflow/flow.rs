//! A flow entry in `ovs-ofctl`'s syntax (a subset) with node names as ports, and its
//! OpenFlow 1.0 match and actions: `priority=100,in_port=h1,ip,nw_dst=10.0.0.2,actions=drop`.
//!
//! Match fields: `in_port`, `dl_src`, `dl_dst`, `dl_vlan`, `dl_type`, `nw_src`, `nw_dst` (with
//! a prefix), `nw_proto`, `nw_tos`, `tp_src`, `tp_dst`, and the shorthands `ip`, `arp`, `icmp`,
//! `tcp`, `udp`; also `priority`, `idle_timeout`, `hard_timeout`. Actions: `drop`, `normal`,
//! `flood`, `all`, `local`, `in_port`, `controller`, `output:PORT` (or a bare PORT), with
//! ports named by node (or `LOCAL`, or a number).

use std::net::Ipv4Addr;

/// OpenFlow 1.0 wildcard bits (`OFPFW_*`).
mod fw {
    pub const IN_PORT: u32 = 1 << 0;
    pub const DL_VLAN: u32 = 1 << 1;
    pub const DL_SRC: u32 = 1 << 2;
    pub const DL_DST: u32 = 1 << 3;
    pub const DL_TYPE: u32 = 1 << 4;
    pub const NW_PROTO: u32 = 1 << 5;
    pub const TP_SRC: u32 = 1 << 6;
    pub const TP_DST: u32 = 1 << 7;
    pub const NW_SRC_SHIFT: u32 = 8;
    pub const NW_DST_SHIFT: u32 = 14;
    pub const NW_MASK: u32 = 0x3f;
    pub const DL_VLAN_PCP: u32 = 1 << 20;
    pub const NW_TOS: u32 = 1 << 21;
    pub const ALL: u32 = (1 << 22) - 1;
}

/// OpenFlow 1.0 reserved port numbers.
pub mod port {
    /// Back out of the port the packet came in on.
    pub const IN_PORT: u16 = 0xfff8;
    /// The switch's learning (L2) forwarding.
    pub const NORMAL: u16 = 0xfffa;
    /// Every port but the input one (and those with flooding off).
    pub const FLOOD: u16 = 0xfffb;
    /// Every port but the input one.
    pub const ALL: u16 = 0xfffc;
    /// To the controller.
    pub const CONTROLLER: u16 = 0xfffd;
    /// The bridge's local port.
    pub const LOCAL: u16 = 0xfffe;
    /// No port.
    pub const NONE: u16 = 0xffff;
}

/// A port as written: a node name, `LOCAL` or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    /// The port of this node on the LAN.
    Node(String),
    /// An OpenFlow port number (reserved ones included).
    Number(u16),
}

/// An OpenFlow 1.0 match (`ofp_match`), fields in host order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// `OFPFW_*` bits of the fields that do not matter.
    pub wildcards: u32,
    /// Input port (resolved to a number when encoded).
    pub in_port: Option<PortRef>,
    /// Ethernet source.
    pub dl_src: [u8; 6],
    /// Ethernet destination.
    pub dl_dst: [u8; 6],
    /// VLAN id.
    pub dl_vlan: u16,
    /// EtherType.
    pub dl_type: u16,
    /// IP ToS.
    pub nw_tos: u8,
    /// IP protocol.
    pub nw_proto: u8,
    /// IP source.
    pub nw_src: Ipv4Addr,
    /// IP destination.
    pub nw_dst: Ipv4Addr,
    /// Transport source port.
    pub tp_src: u16,
    /// Transport destination port.
    pub tp_dst: u16,
}

impl Default for Match {
    fn default() -> Self {
        Match {
            wildcards: fw::ALL,
            in_port: None,
            dl_src: [0; 6],
            dl_dst: [0; 6],
            dl_vlan: 0,
            dl_type: 0,
            nw_tos: 0,
            nw_proto: 0,
            nw_src: Ipv4Addr::UNSPECIFIED,
            nw_dst: Ipv4Addr::UNSPECIFIED,
            tp_src: 0,
            tp_dst: 0,
        }
    }
}

/// A flow entry: match, priority, timeouts and output actions (none: drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSpec {
    /// What it matches.
    pub matched: Match,
    /// Priority (default 32768, as ovs-ofctl).
    pub priority: u16,
    /// Idle timeout, s (0: none).
    pub idle_timeout: u16,
    /// Hard timeout, s (0: none).
    pub hard_timeout: u16,
    /// Output ports, in order; empty: drop.
    pub outputs: Vec<PortRef>,
}

impl FlowSpec {
    /// Parse `text`; `nodes` are the node names usable as ports. The error is one line
    /// naming the part and what to write instead.
    pub fn parse(text: &str, nodes: &[&str]) -> Result<FlowSpec, String> {
        let (fields, actions) = text.split_once("actions=").ok_or_else(|| {
            format!("'{text}' has no actions=: end the flow with actions=drop, actions=normal or actions=output:NODE")
        })?;
        let mut flow = FlowSpec {
            matched: Match::default(),
            priority: 32768,
            idle_timeout: 0,
            hard_timeout: 0,
            outputs: Vec::new(),
        };
        for part in fields
            .split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            flow.field(part, nodes)?;
        }
        flow.actions(actions.trim(), nodes)?;
        Ok(flow)
    }

    fn field(&mut self, part: &str, nodes: &[&str]) -> Result<(), String> {
        let m = &mut self.matched;
        let shorthand = |m: &mut Match, dl_type: u16, proto: Option<u8>| {
            m.wildcards &= !fw::DL_TYPE;
            m.dl_type = dl_type;
            if let Some(p) = proto {
                m.wildcards &= !fw::NW_PROTO;
                m.nw_proto = p;
            }
        };
        let Some((key, value)) = part.split_once('=') else {
            match part {
                "ip" => shorthand(m, 0x0800, None),
                "arp" => shorthand(m, 0x0806, None),
                "icmp" => shorthand(m, 0x0800, Some(1)),
                "tcp" => shorthand(m, 0x0800, Some(6)),
                "udp" => shorthand(m, 0x0800, Some(17)),
                _ => {
                    return Err(format!(
                        "unknown match '{part}' (known: ip, arp, icmp, tcp, udp, or FIELD=VALUE)"
                    ));
                }
            }
            return Ok(());
        };
        let bad = |what: &str| format!("{key}={value}: {what}");
        match key {
            "priority" => self.priority = num(value).ok_or_else(|| bad("not a number 0-65535"))?,
            "idle_timeout" => {
                self.idle_timeout = num(value).ok_or_else(|| bad("not a number of seconds"))?
            }
            "hard_timeout" => {
                self.hard_timeout = num(value).ok_or_else(|| bad("not a number of seconds"))?
            }
            "in_port" => {
                m.wildcards &= !fw::IN_PORT;
                m.in_port = Some(port_ref(value, nodes).map_err(|e| bad(&e))?);
            }
            "dl_src" | "dl_dst" => {
                let mac = parse_mac(value)
                    .ok_or_else(|| bad("not a MAC address like 02:00:00:00:00:01"))?;
                if key == "dl_src" {
                    m.wildcards &= !fw::DL_SRC;
                    m.dl_src = mac;
                } else {
                    m.wildcards &= !fw::DL_DST;
                    m.dl_dst = mac;
                }
            }
            "dl_vlan" => {
                m.wildcards &= !fw::DL_VLAN;
                m.dl_vlan = num(value)
                    .filter(|v| *v <= 4095 || *v == 0xffff)
                    .ok_or_else(|| bad("not a VLAN id"))?;
            }
            "dl_type" => {
                m.wildcards &= !fw::DL_TYPE;
                m.dl_type = num(value).ok_or_else(|| bad("not an EtherType like 0x0800"))?;
            }
            "nw_proto" => {
                m.wildcards &= !fw::NW_PROTO;
                m.nw_proto = num(value).ok_or_else(|| bad("not a protocol number"))?;
            }
            "nw_tos" => {
                m.wildcards &= !fw::NW_TOS;
                m.nw_tos = num(value).ok_or_else(|| bad("not a ToS byte"))?;
            }
            "nw_src" | "nw_dst" => {
                let (addr, len) = parse_prefix(value)
                    .ok_or_else(|| bad("not an address like 10.0.0.2 or 10.0.0.0/24"))?;
                let (shift, field) = if key == "nw_src" {
                    (fw::NW_SRC_SHIFT, &mut m.nw_src)
                } else {
                    (fw::NW_DST_SHIFT, &mut m.nw_dst)
                };
                *field = addr;
                m.wildcards = (m.wildcards & !(fw::NW_MASK << shift)) | ((32 - len) << shift);
            }
            "tp_src" | "tp_dst" => {
                let p = num(value).ok_or_else(|| bad("not a port number"))?;
                if key == "tp_src" {
                    m.wildcards &= !fw::TP_SRC;
                    m.tp_src = p;
                } else {
                    m.wildcards &= !fw::TP_DST;
                    m.tp_dst = p;
                }
            }
            _ => {
                return Err(format!(
                    "unknown field '{key}' (known: in_port, dl_src, dl_dst, dl_vlan, dl_type, nw_src, nw_dst, nw_proto, nw_tos, tp_src, tp_dst, priority, idle_timeout, hard_timeout)"
                ));
            }
        }
        Ok(())
    }

    fn actions(&mut self, text: &str, nodes: &[&str]) -> Result<(), String> {
        for a in text.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let out = match a.to_ascii_lowercase().as_str() {
                "drop" => continue,
                "normal" => PortRef::Number(port::NORMAL),
                "flood" => PortRef::Number(port::FLOOD),
                "all" => PortRef::Number(port::ALL),
                "local" => PortRef::Number(port::LOCAL),
                "in_port" => PortRef::Number(port::IN_PORT),
                "controller" => PortRef::Number(port::CONTROLLER),
                _ => {
                    let p = a.strip_prefix("output:").unwrap_or(a);
                    port_ref(p, nodes).map_err(|e| format!("action '{a}': {e} (actions: drop, normal, flood, all, local, in_port, controller, output:NODE)"))?
                }
            };
            self.outputs.push(out);
        }
        if text.split(',').any(|a| a.trim() == "drop") && !self.outputs.is_empty() {
            return Err("drop cannot be combined with other actions: keep one".into());
        }
        Ok(())
    }
}

fn num<T: TryFrom<u64>>(s: &str) -> Option<T> {
    let v = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => s.parse::<u64>().ok()?,
    };
    T::try_from(v).ok()
}

fn port_ref(s: &str, nodes: &[&str]) -> Result<PortRef, String> {
    if s.eq_ignore_ascii_case("local") {
        return Ok(PortRef::Number(port::LOCAL));
    }
    if let Some(n) = num::<u16>(s) {
        return Ok(PortRef::Number(n));
    }
    if nodes.contains(&s) {
        return Ok(PortRef::Node(s.to_string()));
    }
    Err(format!(
        "'{s}' is not a member of this LAN (members: {})",
        nodes.join(", ")
    ))
}

/// A MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok().filter(|_| p.len() == 2))
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u32)> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok().filter(|l| *l <= 32)?),
        None => (s, 32),
    };
    Some((a.parse().ok()?, len))
}

impl Match {
    /// The 40 bytes of `ofp_match`, the input port resolved by `resolve`.
    pub fn encode(&self, resolve: &dyn Fn(&PortRef) -> Option<u16>) -> Result<Vec<u8>, String> {
        let in_port = match &self.in_port {
            Some(p) => {
                resolve(p).ok_or_else(|| format!("port {p:?} has no OpenFlow port number"))?
            }
            None => 0,
        };
        let mut b = Vec::with_capacity(40);
        b.extend(self.wildcards.to_be_bytes());
        b.extend(in_port.to_be_bytes());
        b.extend(self.dl_src);
        b.extend(self.dl_dst);
        b.extend(self.dl_vlan.to_be_bytes());
        b.extend([0, 0]); // dl_vlan_pcp, pad
        b.extend(self.dl_type.to_be_bytes());
        b.extend([self.nw_tos, self.nw_proto, 0, 0]);
        b.extend(self.nw_src.octets());
        b.extend(self.nw_dst.octets());
        b.extend(self.tp_src.to_be_bytes());
        b.extend(self.tp_dst.to_be_bytes());
        Ok(b)
    }

    /// Decode 40 bytes of `ofp_match` (the input port stays a number).
    pub fn decode(b: &[u8]) -> Option<Match> {
        if b.len() < 40 {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let ip_at = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        let wildcards = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        Some(Match {
            wildcards,
            in_port: (wildcards & fw::IN_PORT == 0).then(|| PortRef::Number(u16_at(4))),
            dl_src: b[6..12].try_into().ok()?,
            dl_dst: b[12..18].try_into().ok()?,
            dl_vlan: u16_at(18),
            dl_type: u16_at(22),
            nw_tos: b[24],
            nw_proto: b[25],
            nw_src: ip_at(28),
            nw_dst: ip_at(32),
            tp_src: u16_at(36),
            tp_dst: u16_at(38),
        })
    }

    /// The match in ovs-ofctl's words, ports named by `name`; empty for a match of all.
    pub fn describe(&self, name: &dyn Fn(u16) -> String) -> String {
        let w = self.wildcards;
        let mut out: Vec<String> = Vec::new();
        if let Some(PortRef::Number(p)) = &self.in_port {
            out.push(format!("in_port={}", name(*p)));
        }
        let mac = |m: &[u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        if w & fw::DL_VLAN == 0 {
            out.push(format!("dl_vlan={}", self.dl_vlan));
        }
        if w & fw::DL_SRC == 0 {
            out.push(format!("dl_src={}", mac(&self.dl_src)));
        }
        if w & fw::DL_DST == 0 {
            out.push(format!("dl_dst={}", mac(&self.dl_dst)));
        }
        let proto_known = w & fw::NW_PROTO == 0;
        match (
            w & fw::DL_TYPE == 0,
            self.dl_type,
            proto_known,
            self.nw_proto,
        ) {
            (true, 0x0800, true, 1) => out.push("icmp".into()),
            (true, 0x0800, true, 6) => out.push("tcp".into()),
            (true, 0x0800, true, 17) => out.push("udp".into()),
            (true, 0x0800, ..) => out.push("ip".into()),
            (true, 0x0806, ..) => out.push("arp".into()),
            (true, t, ..) => out.push(format!("dl_type=0x{t:04x}")),
            _ => {}
        }
        if proto_known && !matches!((self.dl_type, self.nw_proto), (0x0800, 1 | 6 | 17)) {
            out.push(format!("nw_proto={}", self.nw_proto));
        }
        for (shift, key, addr) in [
            (fw::NW_SRC_SHIFT, "nw_src", self.nw_src),
            (fw::NW_DST_SHIFT, "nw_dst", self.nw_dst),
        ] {
            let wild = ((w >> shift) & fw::NW_MASK).min(32);
            if wild < 32 {
                let len = 32 - wild;
                out.push(if len == 32 {
                    format!("{key}={addr}")
                } else {
                    format!("{key}={addr}/{len}")
                });
            }
        }
        if w & fw::NW_TOS == 0 {
            out.push(format!("nw_tos={}", self.nw_tos));
        }
        if w & fw::TP_SRC == 0 {
            out.push(format!("tp_src={}", self.tp_src));
        }
        if w & fw::TP_DST == 0 {
            out.push(format!("tp_dst={}", self.tp_dst));
        }
        let _ = fw::DL_VLAN_PCP;
        out.join(",")
    }
}

/// A reserved port's name in ovs-ofctl's words, or `None` for an ordinary port.
pub fn reserved_port_name(p: u16) -> Option<&'static str> {
    Some(match p {
        port::IN_PORT => "IN_PORT",
        port::NORMAL => "NORMAL",
        port::FLOOD => "FLOOD",
        port::ALL => "ALL",
        port::CONTROLLER => "CONTROLLER",
        port::LOCAL => "LOCAL",
        port::NONE => "NONE",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &[&str] = &["h1", "h2"];

    #[test]
    fn a_flow_parses_into_match_and_actions() {
        let f = FlowSpec::parse(
            "priority=100,in_port=h1,icmp,nw_dst=10.0.0.0/24,actions=output:h2",
            NODES,
        )
        .unwrap();
        assert_eq!(f.priority, 100);
        assert_eq!(f.matched.in_port, Some(PortRef::Node("h1".into())));
        assert_eq!(f.outputs, vec![PortRef::Node("h2".into())]);
        let enc = f
            .matched
            .encode(&|p| match p {
                PortRef::Node(n) if n == "h1" => Some(3),
                _ => None,
            })
            .unwrap();
        assert_eq!(enc.len(), 40);
        let back = Match::decode(&enc).unwrap();
        assert_eq!(back.in_port, Some(PortRef::Number(3)));
        let named = back.describe(&|p| if p == 3 { "h1".into() } else { p.to_string() });
        assert_eq!(named, "in_port=h1,icmp,nw_dst=10.0.0.0/24");
    }

    #[test]
    fn drop_is_no_action_and_bad_flows_say_what_to_write() {
        let f = FlowSpec::parse("in_port=h2 actions=drop", NODES).unwrap();
        assert!(f.outputs.is_empty());
        assert!(
            FlowSpec::parse("in_port=h3,actions=drop", NODES)
                .unwrap_err()
                .contains("members: h1, h2")
        );
        assert!(
            FlowSpec::parse("in_port=h1", NODES)
                .unwrap_err()
                .contains("no actions=")
        );
        assert!(
            FlowSpec::parse("foo=1,actions=drop", NODES)
                .unwrap_err()
                .contains("unknown field 'foo'")
        );
        assert!(FlowSpec::parse("nw_dst=1.2.3.4/40,actions=drop", NODES).is_err());
        assert!(FlowSpec::parse("actions=drop,normal", NODES).is_err());
    }
}
