//! The kernel datapath: the conditions as a netem root qdisc on the interface (distro kernels
//! have `sch_netem`; kernels without it answer ENOENT and the userspace datapath is used).
//!
//! netem's options are not plain netlink attributes: `TCA_OPTIONS` holds a C
//! `struct tc_netem_qopt` (`<linux/pkt_sched.h>`) followed by nested `TCA_NETEM_*` attributes.
//! They are encoded here byte for byte as iproute2's `tc qdisc replace ... netem` sends them.

use super::tc::{Tc, is_unsupported, netlink_error};
use crate::conditions::spec::{Conditions, Framing, Percent};
use crate::error::{Error, Result};
use std::time::Duration;

/// The parent of a root qdisc (`TC_H_ROOT`).
const TC_H_ROOT: u32 = u32::MAX;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

/// The handle of the netem root qdisc tcplab makes, `7c1:`: how it is told from a root qdisc
/// somebody else made.
pub const NETEM_HANDLE: u32 = 0x07c1_0000;
/// netem's queue length when none is given (what `tc` uses).
const DEFAULT_LIMIT: u32 = 1000;
/// Nanoseconds in one psched tick, the unit of `tc_netem_qopt`'s latency and jitter
/// (`PSCHED_TICKS2NS`: a shift by 6 since Linux 3.x).
const NS_PER_TICK: u128 = 64;
/// Bytes of an Ethernet header: netem counts them (skb->len), a serial line does not.
const ETHERNET_HEADER: i32 = 14;
/// Bytes SLIP adds to a datagram (the END before and after it).
const SLIP_FRAMING: i32 = 2;

/// Whether netem can do everything `c` asks: a deterministic `drop_next` it cannot.
pub fn netem_can_express(c: &Conditions) -> bool {
    c.drop_next.is_none()
}

/// A probability as netem's 32-bit fraction (0 = never, `u32::MAX` = always), rounded as
/// iproute2 rounds it.
fn probability(p: Option<Percent>) -> u32 {
    let fraction = p.map_or(0.0_f64, |p| p.value() / 100.0).clamp(0.0, 1.0);
    (fraction * f64::from(u32::MAX)).round() as u32
}

/// A time in psched ticks, or `None` when it does not fit the 32-bit field (then the 64-bit
/// nanosecond attribute carries it).
fn ticks(d: Option<Duration>) -> Option<u32> {
    u32::try_from(d.unwrap_or_default().as_nanos() / NS_PER_TICK).ok()
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

/// Append one netlink attribute (4-byte header, value, padding to 4 bytes).
fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

/// The byte rate and per-packet overhead netem needs for a line of `bits_per_sec`: netem
/// counts skb->len (the Ethernet frame) at 8 bits a byte; a SLIP line carries the datagram
/// plus 2 END bytes at 10 bits a byte (start and stop bits).
pub fn netem_rate(bits_per_sec: u64, framing: Framing) -> (u64, i32) {
    match framing {
        Framing::Ethernet => (bits_per_sec / 8, 0),
        Framing::Slip => (bits_per_sec / 10, SLIP_FRAMING - ETHERNET_HEADER),
    }
}

/// The value of `TCA_OPTIONS` for a netem qdisc doing `c` (`drop_next` aside).
pub fn netem_options(c: &Conditions) -> Vec<u8> {
    let latency = ticks(c.delay);
    let jitter = ticks(c.jitter);
    let reorder = probability(c.reorder);
    let mut out = Vec::with_capacity(96);
    // struct tc_netem_qopt
    push_u32(&mut out, latency.unwrap_or(u32::MAX));
    push_u32(&mut out, c.queue.unwrap_or(DEFAULT_LIMIT));
    push_u32(&mut out, probability(c.loss));
    // gap: tc sets 1 when reordering is asked without a gap
    push_u32(&mut out, u32::from(reorder > 0));
    push_u32(&mut out, probability(c.duplicate));
    push_u32(&mut out, jitter.unwrap_or(u32::MAX));
    if reorder > 0 {
        let mut v = Vec::new();
        push_u32(&mut v, reorder);
        push_u32(&mut v, 0);
        push_attr(&mut out, TCA_NETEM_REORDER, &v);
    }
    let corrupt = probability(c.corrupt);
    if corrupt > 0 {
        let mut v = Vec::new();
        push_u32(&mut v, corrupt);
        push_u32(&mut v, 0);
        push_attr(&mut out, TCA_NETEM_CORRUPT, &v);
    }
    if let Some(rate) = c.rate.filter(|r| r.bits_per_sec > 0) {
        let (bytes_per_sec, overhead) = netem_rate(rate.bits_per_sec, c.framing);
        let bytes_per_sec = bytes_per_sec.max(1);
        if bytes_per_sec > u64::from(u32::MAX) {
            push_attr(&mut out, TCA_NETEM_RATE64, &bytes_per_sec.to_ne_bytes());
        }
        let mut v = Vec::new();
        push_u32(&mut v, u32::try_from(bytes_per_sec).unwrap_or(u32::MAX));
        v.extend_from_slice(&overhead.to_ne_bytes());
        push_u32(&mut v, 0); // cell_size
        push_u32(&mut v, 0); // cell_overhead
        push_attr(&mut out, TCA_NETEM_RATE, &v);
    }
    if latency.is_none() {
        let ns = i64::try_from(c.delay.unwrap_or_default().as_nanos()).unwrap_or(i64::MAX);
        push_attr(&mut out, TCA_NETEM_LATENCY64, &ns.to_ne_bytes());
    }
    if jitter.is_none() {
        let ns = i64::try_from(c.jitter.unwrap_or_default().as_nanos()).unwrap_or(i64::MAX);
        push_attr(&mut out, TCA_NETEM_JITTER64, &ns.to_ne_bytes());
    }
    out
}

/// Outcome of trying netem on an interface.
pub(crate) enum NetemOutcome {
    /// the root qdisc is now netem doing the conditions
    Applied,
    /// this kernel has no netem
    Unsupported,
}

/// Make netem doing `c`, with handle [`NETEM_HANDLE`], the root qdisc of interface `index`
/// (changing an earlier one of ours in place).
pub(crate) fn apply_netem(tc: &Tc, index: u32, c: &Conditions) -> Result<NetemOutcome> {
    match tc.replace_root(index, NETEM_HANDLE, "netem", netem_options(c)) {
        Ok(()) => Ok(NetemOutcome::Applied),
        Err(e) if is_unsupported(&e) => Ok(NetemOutcome::Unsupported),
        Err(e) => Err(netlink_error(
            e,
            format!("setting a netem qdisc on interface {index}"),
        )),
    }
}

/// Remove the root qdisc of interface `index` if it is tcplab's netem (kind `netem`, handle
/// [`NETEM_HANDLE`]; the kernel then puts the interface's default qdisc back); true if one was
/// removed.
pub(crate) fn remove_netem(tc: &Tc, index: u32) -> Result<bool> {
    let ours = tc
        .qdiscs(index)?
        .iter()
        .any(|q| q.parent == TC_H_ROOT && q.kind == "netem" && q.handle == NETEM_HANDLE);
    if !ours {
        return Ok(false);
    }
    tc.delete_root(index, NETEM_HANDLE)
}

/// The error for a kernel without netem when the netem datapath is required.
pub(crate) fn no_netem(iface: &str) -> Error {
    Error::Environment(format!(
        "this kernel has no netem qdisc (sch_netem) for {iface}: use the userspace datapath"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::spec::Rate;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    /// Bytes of `tc qdisc replace dev X root netem delay 100ms` (iproute2 6.1, seen with strace).
    #[test]
    fn delay_alone_is_the_bare_qopt_struct() {
        let c = Conditions {
            delay: ms(100),
            ..Default::default()
        };
        let want: [u8; 24] = [
            0x84, 0xd7, 0x17, 0x00, 0xe8, 0x03, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ];
        assert_eq!(netem_options(&c), want);
    }

    /// `netem delay 100ms 10ms loss 1% duplicate 2% reorder 25% corrupt 0.5% limit 50`.
    #[test]
    fn every_random_condition_matches_tc() {
        let c = Conditions {
            delay: ms(100),
            jitter: ms(10),
            loss: Some(Percent::new(1.0).unwrap()),
            duplicate: Some(Percent::new(2.0).unwrap()),
            reorder: Some(Percent::new(25.0).unwrap()),
            corrupt: Some(Percent::new(0.5).unwrap()),
            queue: Some(50),
            ..Default::default()
        };
        let want: Vec<u8> = vec![
            0x84, 0xd7, 0x17, 0x00, 0x32, 0x00, 0x00, 0x00, 0x29, 0x5c, 0x8f, 0x02, 0x01, 0x00,
            0x00, 0x00, 0x52, 0xb8, 0x1e, 0x05, 0x5a, 0x62, 0x02, 0x00, 0x0c, 0x00, 0x03, 0x00,
            0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x04, 0x00, 0x14, 0xae,
            0x47, 0x01, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(netem_options(&c), want);
    }

    /// `netem rate 960bit -12` is what a 1200 bit/s SLIP line needs.
    #[test]
    fn slip_rate_matches_tc_with_packet_overhead() {
        let c = Conditions {
            rate: Some(Rate { bits_per_sec: 1200 }),
            framing: Framing::Slip,
            ..Default::default()
        };
        let mut want = vec![0, 0, 0, 0, 0xe8, 0x03, 0, 0];
        want.extend_from_slice(&[0; 16]);
        want.extend_from_slice(&[
            0x14, 0x00, 0x06, 0x00, 0x78, 0x00, 0x00, 0x00, 0xf4, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0,
            0, 0, 0,
        ]);
        assert_eq!(netem_options(&c), want);
        // an 84-byte datagram is a 98-byte frame: 86 line bytes of 10 bits at 1200 bit/s
        let (bytes_per_sec, overhead) = netem_rate(1200, Framing::Slip);
        let secs = (98 + overhead) as f64 / bytes_per_sec as f64;
        assert!((secs - 860.0 / 1200.0).abs() < 1e-9, "{secs}");
    }

    /// `netem rate 40gbit`: the 64-bit rate comes first, the 32-bit one saturated.
    #[test]
    fn fast_rate_uses_the_64_bit_attribute() {
        let c = Conditions {
            rate: Some(Rate {
                bits_per_sec: 40_000_000_000,
            }),
            ..Default::default()
        };
        let opts = netem_options(&c);
        let mut want = vec![0, 0, 0, 0, 0xe8, 0x03, 0, 0];
        want.extend_from_slice(&[0; 16]);
        want.extend_from_slice(&[
            0x0c, 0x00, 0x08, 0x00, 0x00, 0xf2, 0x05, 0x2a, 0x01, 0x00, 0x00, 0x00, 0x14, 0x00,
            0x06, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(opts, want);
    }

    #[test]
    fn delay_beyond_the_tick_field_goes_in_nanoseconds() {
        let c = Conditions {
            delay: Some(Duration::from_secs(400)),
            ..Default::default()
        };
        let opts = netem_options(&c);
        assert_eq!(&opts[0..4], &u32::MAX.to_ne_bytes());
        assert_eq!(&opts[24..28], &[12, 0, TCA_NETEM_LATENCY64 as u8, 0]);
        assert_eq!(&opts[28..36], &400_000_000_000i64.to_ne_bytes());
        assert_eq!(opts.len(), 36);
    }

    #[test]
    fn probabilities_are_clamped() {
        assert_eq!(probability(Some(Percent::new(100.0).unwrap())), u32::MAX);
        assert_eq!(probability(None), 0);
    }

    #[test]
    fn netem_does_what_has_no_drop_rule() {
        assert!(netem_can_express(&Conditions::default()));
    }
}
