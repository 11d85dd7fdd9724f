//! The values a packet match compares fields with: numbers, ranges and relations to packets
//! matched earlier in the same sequence (`"syn.seq + 1"`, `"> prev.ttl"`), addresses (`"syn.src"`),
//! and the context that names those packets while a sequence is matched.

use crate::capture::decode::Packet;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

/// One captured packet as a match sees it: the interface it was seen on, its time (ns since the
/// epoch) and what it decodes to.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'p> {
    /// Interface of the capture.
    pub iface: &'p str,
    /// Capture time, nanoseconds.
    pub ts: u64,
    /// The packet.
    pub packet: &'p Packet,
}

/// Packets named so far in a sequence (`bind = "syn"`), and the previous element's (`prev`).
#[derive(Debug, Clone, Default)]
pub struct Bound<'p> {
    named: HashMap<String, Seen<'p>>,
    prev: Option<Seen<'p>>,
}

impl<'p> Bound<'p> {
    /// The packet a name refers to (`prev` is the previous element's).
    pub fn get(&self, name: &str) -> Option<&Seen<'p>> {
        if name == "prev" {
            self.prev.as_ref()
        } else {
            self.named.get(name)
        }
    }

    /// After an element matched `seen`: name it (if it binds a name), and make it `prev`.
    pub fn with(&self, bind: Option<&str>, seen: Seen<'p>) -> Bound<'p> {
        let mut b = self.clone();
        if let Some(n) = bind {
            b.named.insert(n.to_string(), seen);
        }
        b.prev = Some(seen);
        b
    }
}

/// Fields a relation may read from a named packet.
pub const FIELDS: &[&str] = &[
    "ttl",
    "ip_id",
    "ip_len",
    "seq",
    "ack",
    "end",
    "len",
    "window",
    "sport",
    "dport",
    "frag_offset",
    "frag_end",
    "time",
    "tsval",
    "tsecr",
];

/// Fields compared modulo 2^32 (TCP sequence space).
fn wraps(field: &str) -> bool {
    matches!(field, "seq" | "ack" | "end" | "tsval" | "tsecr")
}

/// The value of `field` of a packet, if it has that layer.
pub fn field_value(s: &Seen, field: &str) -> Option<f64> {
    let p = s.packet;
    let ip = p.ipv4.as_ref();
    let tcp = p.tcp.as_ref();
    let v = match field {
        "ttl" => f64::from(ip?.ttl),
        "ip_id" => f64::from(ip?.id),
        "ip_len" => f64::from(ip?.total_len),
        "tos" => f64::from(ip?.tos),
        "seq" => f64::from(tcp?.seq),
        "ack" => f64::from(tcp?.ack),
        "end" => {
            let t = tcp?;
            let extra =
                u32::from(t.flags.is_syn() || t.flags.is_syn_ack()) + u32::from(t.flags.is_fin());
            f64::from(t.seq.wrapping_add(t.payload_len as u32).wrapping_add(extra))
        }
        "len" => tcp
            .map(|t| t.payload_len)
            .or(p.udp.as_ref().map(|u| u.payload_len))? as f64,
        "window" => f64::from(tcp?.window),
        "sport" => f64::from(p.ports()?.0),
        "dport" => f64::from(p.ports()?.1),
        "frag_offset" => f64::from(ip?.frag_offset),
        "frag_end" => f64::from(ip?.frag_offset) + ip?.payload_len as f64,
        "time" => s.ts as f64 / 1e9,
        "mss" => f64::from(tcp?.options.mss()?),
        "tsval" => f64::from(tcp?.options.timestamp()?.0),
        "tsecr" => f64::from(tcp?.options.timestamp()?.1),
        "wscale" => f64::from(tcp?.options.window_scale()?),
        "icmp_seq" => f64::from(p.icmp.as_ref()?.echo?.seq),
        "icmp_id" => f64::from(p.icmp.as_ref()?.echo?.id),
        "next_hop_mtu" => f64::from(p.icmp.as_ref()?.next_hop_mtu?),
        "igmp_type" => f64::from(p.igmp.as_ref()?.igmp_type),
        "rr_count" => ip?.options.recorded_route().len() as f64,
        _ => return None,
    };
    Some(v)
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The right-hand side of a comparison: a number, or a named packet's field plus an offset.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Lit(f64),
    Ref {
        name: String,
        field: String,
        offset: f64,
    },
}

/// A condition on a number: `64`, `"<= 64"`, `"100..200"`, `"syn.seq + 1"`, `"> prev.ttl"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "NumSource")]
pub struct NumMatch {
    kind: NumKind,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum NumKind {
    Cmp(Op, Term),
    Range(f64, f64),
}

/// What a number condition is written as in a file.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumSource {
    Int(i64),
    Float(f64),
    Text(String),
}

impl TryFrom<NumSource> for NumMatch {
    type Error = String;
    fn try_from(s: NumSource) -> Result<Self, String> {
        match s {
            NumSource::Int(i) => Ok(NumMatch::exactly(i as f64)),
            NumSource::Float(f) => Ok(NumMatch::exactly(f)),
            NumSource::Text(t) => t.parse(),
        }
    }
}

fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    let v: f64 = if let Some(h) = s.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()? as f64
    } else {
        s.parse().ok()?
    };
    v.is_finite().then_some(v)
}

fn term(s: &str) -> Result<Term, String> {
    let s = s.trim();
    if let Some(v) = number(s) {
        return Ok(Term::Lit(v));
    }
    // NAME.FIELD [+|- NUMBER]
    let (base, offset) = match s.find(['+', '-']) {
        Some(i) => {
            let off = number(&s[i + 1..])
                .ok_or_else(|| format!("'{}' after '{}' is not a number", &s[i + 1..], &s[..i]))?;
            let off = if s.as_bytes()[i] == b'-' { -off } else { off };
            (s[..i].trim(), off)
        }
        None => (s, 0.0),
    };
    let Some((name, field)) = base.split_once('.') else {
        return Err(format!(
            "'{s}' is neither a number nor NAME.FIELD (a packet named with `bind`, or `prev`)"
        ));
    };
    if !FIELDS.contains(&field) {
        return Err(format!(
            "'{field}' is not a field of a named packet: use one of {}",
            FIELDS.join(", ")
        ));
    }
    Ok(Term::Ref {
        name: name.trim().to_string(),
        field: field.to_string(),
        offset,
    })
}

impl std::str::FromStr for NumMatch {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some((lo, hi)) = t.split_once("..") {
            let (Some(lo), Some(hi)) = (number(lo), number(hi)) else {
                return Err(format!("'{t}': a range is two numbers, like \"100..200\""));
            };
            if lo > hi {
                return Err(format!("'{t}': the range is empty"));
            }
            return Ok(NumMatch {
                kind: NumKind::Range(lo, hi),
                text: t.to_string(),
            });
        }
        let ops = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(p, op)| t.strip_prefix(p).map(|r| (*op, r)))
            .unwrap_or((Op::Eq, t));
        Ok(NumMatch {
            kind: NumKind::Cmp(op, term(rest)?),
            text: t.to_string(),
        })
    }
}

impl NumMatch {
    /// Exactly `v`.
    pub fn exactly(v: f64) -> NumMatch {
        NumMatch {
            kind: NumKind::Cmp(Op::Eq, Term::Lit(v)),
            text: format!("{v}"),
        }
    }

    /// The packet name it refers to, if any.
    pub fn refers_to(&self) -> Option<&str> {
        match &self.kind {
            NumKind::Cmp(_, Term::Ref { name, .. }) => Some(name),
            _ => None,
        }
    }

    /// Whether `value` (of field `field`) holds, given the packets named so far. A relation to
    /// a packet without that field never holds.
    pub fn holds(&self, field: &str, value: f64, bound: &Bound) -> bool {
        match &self.kind {
            NumKind::Range(lo, hi) => (*lo..=*hi).contains(&value),
            NumKind::Cmp(op, t) => {
                let rhs = match t {
                    Term::Lit(v) => *v,
                    Term::Ref {
                        name,
                        field: f,
                        offset,
                    } => {
                        let Some(v) = bound.get(name).and_then(|s| field_value(s, f)) else {
                            return false;
                        };
                        v + offset
                    }
                };
                let rhs = if wraps(field) && matches!(t, Term::Ref { .. }) {
                    rhs.rem_euclid(4_294_967_296.0)
                } else {
                    rhs
                };
                let eps = 1e-9;
                match op {
                    Op::Eq => (value - rhs).abs() < eps,
                    Op::Ne => (value - rhs).abs() >= eps,
                    Op::Lt => value < rhs,
                    Op::Le => value <= rhs + eps,
                    Op::Gt => value > rhs,
                    Op::Ge => value + eps >= rhs,
                }
            }
        }
    }
}

impl fmt::Display for NumMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An IPv4 address condition: an address, or the `src`/`dst` of a named packet (`"syn.src"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub enum AddrMatch {
    /// This address.
    Is(Ipv4Addr),
    /// An address in this prefix.
    In(ipnet::Ipv4Net),
    /// The same address as a named packet's source (`src`) or destination (`dst`).
    Same {
        /// the packet's name
        name: String,
        /// `src` or `dst`
        dst: bool,
    },
}

impl TryFrom<String> for AddrMatch {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for AddrMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(a) = s.parse() {
            return Ok(AddrMatch::Is(a));
        }
        if let Ok(n) = s.parse::<ipnet::Ipv4Net>() {
            return Ok(AddrMatch::In(n.trunc()));
        }
        match s.split_once('.') {
            Some((name, "src")) => Ok(AddrMatch::Same {
                name: name.into(),
                dst: false,
            }),
            Some((name, "dst")) => Ok(AddrMatch::Same {
                name: name.into(),
                dst: true,
            }),
            _ => Err(format!(
                "'{s}' is neither an IPv4 address, a prefix, nor NAME.src / NAME.dst of a named packet"
            )),
        }
    }
}

impl AddrMatch {
    /// The packet name it refers to, if any.
    pub fn refers_to(&self) -> Option<&str> {
        match self {
            AddrMatch::Same { name, .. } => Some(name),
            AddrMatch::Is(_) | AddrMatch::In(_) => None,
        }
    }

    /// Whether `a` is the address wanted.
    pub fn holds(&self, a: Ipv4Addr, bound: &Bound) -> bool {
        match self {
            AddrMatch::Is(x) => *x == a,
            AddrMatch::In(n) => n.contains(&a),
            AddrMatch::Same { name, dst } => bound
                .get(name)
                .and_then(|s| s.packet.ipv4.as_ref())
                .is_some_and(|ip| if *dst { ip.dst == a } else { ip.src == a }),
        }
    }
}

impl fmt::Display for AddrMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrMatch::Is(a) => write!(f, "{a}"),
            AddrMatch::In(n) => write!(f, "{n}"),
            AddrMatch::Same { name, dst } => {
                write!(f, "{name}.{}", if *dst { "dst" } else { "src" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ranges_and_comparisons() {
        let b = Bound::default();
        let m = |s: &str| s.parse::<NumMatch>().unwrap();
        assert!(m("64").holds("ttl", 64.0, &b));
        assert!(!m("64").holds("ttl", 63.0, &b));
        assert!(m("<= 64").holds("ttl", 63.0, &b) && !m("<=64").holds("ttl", 65.0, &b));
        assert!(m("100..200").holds("len", 100.0, &b) && m("100..200").holds("len", 200.0, &b));
        assert!(!m("100..200").holds("len", 201.0, &b));
        assert!(m("!= 0").holds("ip_id", 1.0, &b) && !m("!=0").holds("ip_id", 0.0, &b));
        assert!(m("0.15..0.3").holds("gap", 0.2, &b));
        for bad in ["abc", "1..x", "5..1", "syn.color", "syn.seq + x", ">"] {
            assert!(bad.parse::<NumMatch>().is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn relations_read_named_packets_and_wrap_sequence_numbers() {
        use crate::capture::decode::decode;
        // A SYN with seq 0xffffffff from 140.252.13.35.
        let mut f = vec![0u8; 54];
        f[12] = 8;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[140, 252, 13, 35]);
        f[30..34].copy_from_slice(&[140, 252, 13, 34]);
        f[38..42].copy_from_slice(&u32::MAX.to_be_bytes());
        f[46] = 5 << 4;
        f[47] = 0x02;
        let syn = decode(&f);
        let seen = Seen {
            iface: "eth0",
            ts: 1_500_000_000,
            packet: &syn,
        };
        let b = Bound::default().with(Some("syn"), seen);
        let m = |s: &str| s.parse::<NumMatch>().unwrap();
        assert!(m("syn.seq + 1").holds("ack", 0.0, &b), "wraps at 2^32");
        assert!(m("syn.end").holds("ack", 0.0, &b), "a SYN counts one");
        assert!(m("== prev.ttl - 1").holds("ttl", 63.0, &b));
        assert!(!m("== prev.ttl - 1").holds("ttl", 64.0, &b));
        assert!(
            !m("other.seq").holds("seq", 0.0, &b),
            "an unknown name never holds"
        );
        let a: AddrMatch = "syn.src".parse().unwrap();
        assert!(a.holds("140.252.13.35".parse().unwrap(), &b));
        assert!(!a.holds("140.252.13.34".parse().unwrap(), &b));
        assert!("syn.port".parse::<AddrMatch>().is_err());
        let net: AddrMatch = "140.252.0.0/16".parse().unwrap();
        assert!(net.holds("140.252.13.35".parse().unwrap(), &b));
        assert!(!net.holds("198.51.100.1".parse().unwrap(), &b));
    }
}
