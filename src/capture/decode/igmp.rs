//! IGMP (over IPv4): membership queries (v1, v2, v3), reports (v1, v2, v3)
//! and leave messages.

use std::fmt;
use std::net::Ipv4Addr;

use super::{Layer, Packet, be16, ip_at};

/// An IGMP message. Fields are `None` when the message has no such field or
/// was cut short before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Igmp {
    /// Type (0x11 query, 0x12 v1 report, 0x16 v2 report, 0x17 leave, 0x22 v3 report).
    pub igmp_type: u8,
    /// The second byte: max response time (v2) or code (v3) of a query.
    pub max_resp: Option<u8>,
    /// The group address of a query, v1/v2 report or leave.
    pub group: Option<Ipv4Addr>,
    /// Number of sources of a v3 query.
    pub sources: Option<u16>,
    /// Number of group records of a v3 report.
    pub records: Option<u16>,
    /// Message length from the IP header.
    pub len: usize,
    /// Bytes of the message in the frame (less than `len` when cut short).
    pub captured: usize,
}

impl Igmp {
    /// Membership query (any version).
    pub const QUERY: u8 = 0x11;
    /// Version 1 membership report.
    pub const V1_REPORT: u8 = 0x12;
    /// Version 2 membership report.
    pub const V2_REPORT: u8 = 0x16;
    /// Version 2 leave group.
    pub const LEAVE: u8 = 0x17;
    /// Version 3 membership report.
    pub const V3_REPORT: u8 = 0x22;

    /// True for a membership report of any version.
    pub fn is_report(&self) -> bool {
        matches!(
            self.igmp_type,
            Self::V1_REPORT | Self::V2_REPORT | Self::V3_REPORT
        )
    }
}

/// Reads an IGMP message of `len` bytes (from the IP header) into `p.igmp`.
pub(super) fn decode_igmp(b: &[u8], len: usize, p: &mut Packet) {
    let Some(&igmp_type) = b.first() else {
        p.truncated = Some(Layer::Igmp);
        return;
    };
    if b.len() < len {
        p.truncated = Some(Layer::Igmp);
    }
    let v3_query = igmp_type == Igmp::QUERY && len >= 12;
    p.igmp = Some(Igmp {
        igmp_type,
        max_resp: b.get(1).copied(),
        group: ip_at(b, 4),
        sources: if v3_query { be16(b, 10) } else { None },
        records: if igmp_type == Igmp::V3_REPORT {
            be16(b, 6)
        } else {
            None
        },
        len,
        captured: b.len().min(len),
    });
}

/// The marker tcpdump ends a cut IGMP message with.
const CUT: &str = " [|igmp]";

/// The IGMP part of the line, in the words of `tcpdump -n`.
pub(super) fn fmt_igmp(m: &Igmp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match m.igmp_type {
        Igmp::QUERY => {
            f.write_str("igmp query")?;
            if m.len >= 12 {
                fmt_v3_query(m, f)
            } else {
                fmt_query(m, f)
            }
        }
        Igmp::V1_REPORT | Igmp::V2_REPORT | Igmp::LEAVE => {
            let Some(g) = m.group else {
                return f.write_str(CUT);
            };
            match m.igmp_type {
                Igmp::V1_REPORT => write!(f, "igmp v1 report {g}")?,
                Igmp::V2_REPORT => write!(f, "igmp v2 report {g}")?,
                _ => write!(f, "igmp leave {g}")?,
            }
            if m.igmp_type == Igmp::V1_REPORT && m.len != 8 {
                write!(f, " [len {}]", m.len)?;
            }
            Ok(())
        }
        Igmp::V3_REPORT => {
            f.write_str("igmp v3 report")?;
            if m.len < 16 || !m.len.is_multiple_of(4) {
                return write!(f, " [invalid len {}]", m.len);
            }
            match m.records {
                Some(n) => write!(f, ", {n} group record(s)"),
                None => f.write_str(CUT),
            }
        }
        t => write!(f, "igmp-{t}"),
    }
}

/// The rest of a version 1 or 2 query (shorter than 12 bytes).
fn fmt_query(m: &Igmp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(mrt) = m.max_resp else {
        return f.write_str(CUT);
    };
    if mrt == 0 {
        f.write_str(" v1")?;
    } else {
        f.write_str(" v2")?;
        if mrt != 100 {
            write!(f, " [max resp time {mrt}]")?;
        }
    }
    let Some(g) = m.group else {
        return f.write_str(CUT);
    };
    if !g.is_unspecified() {
        write!(f, " [gaddr {g}]")?;
    }
    if m.len != 8 {
        write!(f, " [len {}]", m.len)?;
    }
    Ok(())
}

/// The rest of a version 3 query.
fn fmt_v3_query(m: &Igmp, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(" v3")?;
    if !m.len.is_multiple_of(4) {
        return write!(f, " [invalid len {}]", m.len);
    }
    let Some(mrc) = m.max_resp else {
        return f.write_str(CUT);
    };
    // Max resp code: below 128 tenths of a second, above a float (RFC 3376 4.1.1).
    let mrt = if mrc < 128 {
        u32::from(mrc)
    } else {
        (u32::from(mrc & 0x0f) | 0x10) << (((mrc & 0x70) >> 4) + 3)
    };
    if mrc != 100 {
        if mrt < 600 {
            write!(f, " [max resp time {:.1}s]", f64::from(mrt) * 0.1)?;
        } else {
            write!(f, " [max resp time {}]", relative_time(mrt / 10))?;
        }
    }
    let Some(g) = m.group else {
        return f.write_str(CUT);
    };
    if g.is_unspecified() {
        return Ok(());
    }
    write!(f, " [gaddr {g}")?;
    let Some(n) = m.sources else {
        return f.write_str(CUT);
    };
    if n > 0 {
        if m.len < 12 + usize::from(n) * 4 {
            f.write_str(" [invalid number of sources]")?;
        } else {
            write!(f, ", {n} source(s)")?;
        }
    }
    f.write_str("]")
}

/// Seconds as tcpdump writes a duration: `5m7s`, `1h2m`.
fn relative_time(mut secs: u32) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, name) in [
        (31_536_000, 'y'),
        (604_800, 'w'),
        (86_400, 'd'),
        (3_600, 'h'),
        (60, 'm'),
        (1, 's'),
    ] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    out
}
