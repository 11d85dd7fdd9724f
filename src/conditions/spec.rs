//! What a link's conditions are, how they are written (in tc's units), and how a change is
//! merged into the conditions already set.
//!
//! Units, as tc(8) writes them (case-insensitive, a space before the unit allowed):
//! - rates: `bit` (or a bare number), `kbit`, `mbit`, `gbit`, `tbit` in bits per second, and
//!   `kibit`, `mibit`, ... in powers of 1024; `bps`, `kbps`, `mbps`, `gbps`, `tbps` (and `kibps`,
//!   ...) in BYTES per second, as tc reads them (`kbps` = 8000 bit/s). From 1 bit/s up to
//!   100 Gbit/s ([`MAX_RATE_BITS`]), far above what the packet path can move anyway.
//! - times: `s`, `ms`, `us`, `ns` (also `sec`, `msec`, `usec`, `nsec` and their plurals); a bare
//!   number is MICROSECONDS, as in tc (`delay 100` is 100 us, not 100 ms). From 0 to one hour
//!   ([`MAX_TIME`]).
//! - percentages: `5%` or `5`, from 0 to 100.
//!
//! Display writes each value as tc shows it (`1200bit`, `64Kbit`, `100ms`, `1.5s`, `5%`) but
//! never rounds: what is shown parses back to the same value.
//!
//! Merging ([`Conditions::merge`]) sets only the conditions named and keeps all others (unlike
//! `tc qdisc change ... netem`, which resets what it is not told). A zero (`loss 0`, `delay 0ms`,
//! `drop-next 0`) removes that one condition; `link clear` removes all.

use std::fmt;
use std::time::Duration;

pub use super::filter::{PacketFilter, Protocol};
use crate::error::{Error, Result};

/// The fastest rate accepted: 100 Gbit/s.
pub const MAX_RATE_BITS: u64 = 100_000_000_000;
/// The longest delay or jitter accepted: one hour.
pub const MAX_TIME: Duration = Duration::from_secs(3600);
/// The longest queue accepted, in frames.
pub const MAX_QUEUE: u32 = 1_000_000;

/// The conditions of one direction of a link. The default is a perfect link (no condition).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// The line's speed: each frame is held for its own serialization time, behind the frames
    /// before it (a serial line, not a token bucket).
    pub rate: Option<Rate>,
    /// What the rate counts: the Ethernet frame, or a SLIP line's bytes.
    pub framing: Framing,
    /// One-way delay added to every frame after it leaves the line.
    pub delay: Option<Duration>,
    /// The delay varies uniformly within plus or minus this.
    pub jitter: Option<Duration>,
    /// Random loss.
    pub loss: Option<Percent>,
    /// Drop the next N frames that match a filter, once.
    pub drop_next: Option<DropRule>,
    /// Random duplication.
    pub duplicate: Option<Percent>,
    /// This share of frames skips the delay and overtakes the others.
    pub reorder: Option<Percent>,
    /// Random single-bit corruption of the IP payload.
    pub corrupt: Option<Percent>,
    /// At most this many frames waiting (on the line with a rate, in the delay without).
    pub queue: Option<u32>,
}

/// A line speed in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rate {
    /// Bits per second, from 1 to [`MAX_RATE_BITS`].
    pub bits_per_sec: u64,
}

/// What a rate counts, per frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// The whole Ethernet frame as it leaves the interface, 8 bits a byte.
    #[default]
    Ethernet,
    /// A SLIP serial line (TCP/IP Illustrated Vol. 1, 2.4 and 7.2): the IP datagram without the
    /// Ethernet header, one END byte before and one after, 10 bits a byte (start, 8 data, stop).
    /// A default ping (84-byte datagram) is 86 bytes on the line, 717 ms at 1200 bit/s.
    Slip,
}

/// A percentage in 0..=100 (never NaN).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Percent(f64);

/// Drop the next `count` frames that match `filter`, then nothing more.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DropRule {
    /// How many matching frames to drop.
    pub count: u32,
    /// Which frames count.
    pub filter: PacketFilter,
}

/// A change to a link's conditions: each field given replaces that condition, the others stay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionsUpdate {
    /// New rate.
    pub rate: Option<Rate>,
    /// New framing.
    pub framing: Option<Framing>,
    /// New delay (zero removes it).
    pub delay: Option<Duration>,
    /// New jitter (zero removes it).
    pub jitter: Option<Duration>,
    /// New loss (0% removes it).
    pub loss: Option<Percent>,
    /// New drop rule (a count of 0 removes it).
    pub drop_next: Option<DropRule>,
    /// New duplication (0% removes it).
    pub duplicate: Option<Percent>,
    /// New reordering (0% removes it).
    pub reorder: Option<Percent>,
    /// New corruption (0% removes it).
    pub corrupt: Option<Percent>,
    /// New queue limit.
    pub queue: Option<u32>,
}

/// The names [`ConditionsUpdate::set`] takes.
pub const CONDITION_NAMES: &[&str] = &[
    "rate",
    "framing",
    "delay",
    "jitter",
    "loss",
    "drop-next",
    "duplicate",
    "reorder",
    "corrupt",
    "queue",
];

impl ConditionsUpdate {
    /// Parses one condition by its name (one of [`CONDITION_NAMES`]; `drop_next` is accepted
    /// for `drop-next`) into this update. Errors name the condition: "loss '120%' is over 100%".
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name.to_lowercase().as_str() {
            "rate" => self.rate = Some(rate_named("rate", value)?),
            "framing" => self.framing = Some(parse_framing(value)?),
            "delay" => self.delay = Some(time_named("delay", value)?),
            "jitter" => self.jitter = Some(time_named("jitter", value)?),
            "loss" => self.loss = Some(percent_named("loss", value)?),
            "drop-next" | "drop_next" => self.drop_next = Some(DropRule::parse(value)?),
            "duplicate" => self.duplicate = Some(percent_named("duplicate", value)?),
            "reorder" => self.reorder = Some(percent_named("reorder", value)?),
            "corrupt" => self.corrupt = Some(percent_named("corrupt", value)?),
            "queue" => self.queue = Some(parse_queue(value)?),
            _ => {
                return Err(Error::Usage(format!(
                    "condition '{name}' is unknown: use {}",
                    CONDITION_NAMES.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// True when the update names no condition.
    pub fn is_empty(&self) -> bool {
        *self == ConditionsUpdate::default()
    }
}

impl Conditions {
    /// Sets the conditions the update names and keeps every other one. A zero value removes
    /// its condition (see the module documentation).
    pub fn merge(&mut self, other: &ConditionsUpdate) {
        fn put<T: Clone>(field: &mut Option<T>, new: &Option<T>) {
            if let Some(v) = new {
                *field = Some(v.clone());
            }
        }
        put(&mut self.rate, &other.rate);
        if let Some(f) = other.framing {
            self.framing = f;
        }
        put(&mut self.delay, &other.delay);
        put(&mut self.jitter, &other.jitter);
        put(&mut self.loss, &other.loss);
        put(&mut self.drop_next, &other.drop_next);
        put(&mut self.duplicate, &other.duplicate);
        put(&mut self.reorder, &other.reorder);
        put(&mut self.corrupt, &other.corrupt);
        put(&mut self.queue, &other.queue);
        *self = self.normalized();
    }

    /// The same conditions with every zero value (a rate of 0, 0 ms, 0%, a count or queue of 0)
    /// removed.
    pub fn normalized(&self) -> Conditions {
        let time = |d: Option<Duration>| d.filter(|d| !d.is_zero());
        let pct = |p: Option<Percent>| p.filter(|p| p.value() > 0.0);
        Conditions {
            rate: self.rate.filter(|r| r.bits_per_sec > 0),
            framing: self.framing,
            delay: time(self.delay),
            jitter: time(self.jitter),
            loss: pct(self.loss),
            drop_next: self.drop_next.clone().filter(|d| d.count > 0),
            duplicate: pct(self.duplicate),
            reorder: pct(self.reorder),
            corrupt: pct(self.corrupt),
            queue: self.queue.filter(|q| *q > 0),
        }
    }

    /// True when no condition is set (zero values count as unset; framing alone is a setting).
    pub fn is_empty(&self) -> bool {
        self.normalized() == Conditions::default()
    }

    /// One line for people: `rate 1200bit slip, delay 100ms, loss 5%`, or `none`.
    pub fn summary(&self) -> String {
        let c = self.normalized();
        let mut parts: Vec<String> = Vec::new();
        match (c.rate, c.framing) {
            (Some(r), Framing::Slip) => parts.push(format!("rate {r} slip")),
            (Some(r), Framing::Ethernet) => parts.push(format!("rate {r}")),
            (None, Framing::Slip) => parts.push("framing slip".to_string()),
            (None, Framing::Ethernet) => {}
        }
        if let Some(d) = c.delay {
            parts.push(format!("delay {}", format_time(d)));
        }
        if let Some(j) = c.jitter {
            parts.push(format!("jitter {}", format_time(j)));
        }
        let named = [
            ("loss", c.loss),
            ("duplicate", c.duplicate),
            ("reorder", c.reorder),
            ("corrupt", c.corrupt),
        ];
        for (name, p) in named {
            if let Some(p) = p {
                parts.push(format!("{name} {p}"));
            }
        }
        if let Some(d) = &c.drop_next {
            parts.push(format!("drop-next {d}"));
        }
        if let Some(q) = c.queue {
            parts.push(format!("queue {q}"));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

impl Framing {
    /// Bits on the line per byte: 8 on Ethernet, 10 on a serial line (start and stop bits).
    pub fn bits_per_byte(self) -> u64 {
        match self {
            Framing::Ethernet => 8,
            Framing::Slip => 10,
        }
    }

    /// Bytes on the line added to the Ethernet frame's length: 0, or for SLIP -14 (no Ethernet
    /// header) + 2 (END bytes) = -12. With [`Framing::bits_per_byte`] this is what netem's
    /// `rate` needs: `rate <bits/bits_per_byte>bps packetoverhead <this>`.
    pub fn packet_overhead(self) -> i64 {
        match self {
            Framing::Ethernet => 0,
            Framing::Slip => -12,
        }
    }

    /// The bytes a frame puts on the line. For SLIP, the IP datagram's length is taken from its
    /// header when the frame is IPv4 (Ethernet padding is not sent on a serial line).
    pub fn line_bytes(self, frame: &[u8]) -> u64 {
        match self {
            Framing::Ethernet => frame.len() as u64,
            Framing::Slip => {
                let datagram = match super::filter::Ipv4View::of_frame(frame) {
                    Some(ip) => ip.total_len.min(frame.len() - 14),
                    None => frame.len().saturating_sub(14),
                };
                datagram as u64 + 2
            }
        }
    }
}

impl Rate {
    /// How long `frame` occupies a line of this speed, rounded to the nearest nanosecond
    /// (a rate of 0 is taken as 1 bit/s).
    pub fn line_time(&self, framing: Framing, frame: &[u8]) -> Duration {
        let bits = u128::from(framing.line_bytes(frame)) * u128::from(framing.bits_per_byte());
        let rate = u128::from(self.bits_per_sec.max(1));
        let ns = (bits * 1_000_000_000 + rate / 2) / rate;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

impl Percent {
    /// A percentage; outside 0..=100 or NaN is an error.
    pub fn new(value: f64) -> Result<Percent> {
        if value.is_nan() {
            return Err(Error::Usage(
                "percentage 'NaN' is not a number: use 0 to 100".into(),
            ));
        }
        if !(0.0..=100.0).contains(&value) {
            return Err(Error::Usage(format!(
                "percentage '{value}' is outside 0 to 100"
            )));
        }
        Ok(Percent(value))
    }

    /// The value, 0 to 100.
    pub fn value(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Percent {
    type Error = Error;
    fn try_from(v: f64) -> Result<Percent> {
        Percent::new(v)
    }
}

impl From<Percent> for f64 {
    fn from(p: Percent) -> f64 {
        p.0
    }
}

impl DropRule {
    /// Parses `N [filter]`: `1 tcp data`, `3 icmp`, `2` (any IPv4 frame).
    pub fn parse(text: &str) -> Result<DropRule> {
        let t = text.trim();
        let (count, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let count = count.parse::<u32>().map_err(|_| {
            Error::Usage(format!(
                "drop-next '{text}' does not start with a count: write it like '1 tcp data' or '2 icmp'"
            ))
        })?;
        let filter = if rest.trim().is_empty() {
            PacketFilter::default()
        } else {
            PacketFilter::parse(rest)?
        };
        Ok(DropRule { count, filter })
    }
}

impl fmt::Display for DropRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.count, self.filter)
    }
}

impl fmt::Display for Rate {
    /// tc's form: the largest of bit, Kbit, Mbit, Gbit that shows the rate exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.bits_per_sec;
        let mut unit = 0;
        let units = ["bit", "Kbit", "Mbit", "Gbit"];
        while unit + 1 < units.len() && v >= 1000 && v.is_multiple_of(1000) {
            v /= 1000;
            unit += 1;
        }
        write!(f, "{v}{}", units[unit])
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Ethernet => "ethernet",
            Framing::Slip => "slip",
        })
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// A time as tc shows it (`250us`, `100ms`, `1.5s`, `0s`), exact to the nanosecond.
pub fn format_time(d: Duration) -> String {
    let ns = d.as_nanos();
    let (unit, name) = match ns {
        0 => return "0s".to_string(),
        n if n >= 1_000_000_000 => (1_000_000_000, "s"),
        n if n >= 1_000_000 => (1_000_000, "ms"),
        n if n >= 1_000 => (1_000, "us"),
        _ => (1, "ns"),
    };
    let whole = ns / unit;
    let frac = ns % unit;
    if frac == 0 {
        return format!("{whole}{name}");
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}{name}", digits.trim_end_matches('0'))
}

const RATE_HINT: &str = "write it like 1200bit, 64kbit, 10mbit or 1gbit (bits per second; a bare \
                         number is bit/s, and kbps/mbps are bytes per second as in tc)";
const TIME_HINT: &str =
    "write it like 250us, 100ms or 1.5s (a bare number is microseconds, as in tc)";
const PERCENT_HINT: &str = "write it like 5% or 0.1%";

/// Parses a rate in tc's units (see the module documentation).
pub fn parse_rate(text: &str) -> Result<Rate> {
    rate_named("rate", text)
}

/// Parses a time in tc's units; a bare number is microseconds.
pub fn parse_time(text: &str) -> Result<Duration> {
    time_named("time", text)
}

/// Parses a percentage: `5%` or `5`, 0 to 100.
pub fn parse_percent(text: &str) -> Result<Percent> {
    percent_named("percentage", text)
}

/// Parses a framing: `ethernet` (or `eth`) or `slip`.
pub fn parse_framing(text: &str) -> Result<Framing> {
    match text.trim().to_lowercase().as_str() {
        "ethernet" | "eth" => Ok(Framing::Ethernet),
        "slip" => Ok(Framing::Slip),
        _ => Err(Error::Usage(format!(
            "framing '{text}' is unknown: use ethernet or slip"
        ))),
    }
}

/// Parses a queue limit in frames, 1 to [`MAX_QUEUE`].
pub fn parse_queue(text: &str) -> Result<u32> {
    let t = text.trim();
    let bad = |why: &str| Error::Usage(format!("queue '{text}' {why}"));
    if t.starts_with('-') {
        return Err(bad("is negative: give a number of frames from 1"));
    }
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a whole number of frames: write it like 100"));
    }
    let n: u64 = t.parse().unwrap_or(u64::MAX);
    if n == 0 {
        return Err(bad("is below 1 frame"));
    }
    if n > u64::from(MAX_QUEUE) {
        return Err(bad(&format!("is above {MAX_QUEUE} frames")));
    }
    Ok(n as u32)
}

/// A number as written (`1.5`) and the unit after it, lowercased (`mbit`).
struct Quantity<'a> {
    number: &'a str,
    unit: String,
}

/// At most this many digits in an exact number: enough for any sane rate or time, small
/// enough that every computation below fits a u128.
const MAX_DIGITS: usize = 24;

fn quantity<'a>(what: &str, text: &'a str, hint: &str) -> Result<Quantity<'a>> {
    let t = text.trim();
    let bad = |why: &str| Error::Usage(format!("{what} '{text}' {why}: {hint}"));
    if t.is_empty() {
        return Err(bad("is empty"));
    }
    if t.starts_with('-') {
        return Err(bad("is negative"));
    }
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number = &t[..end];
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad("is not a number"));
    }
    Ok(Quantity {
        number,
        unit: t[end..].trim().to_lowercase(),
    })
}

/// The number exactly, as `digits / 10^scale`.
struct Exact {
    digits: u128,
    scale: u32,
}

impl Exact {
    fn of(what: &str, text: &str, q: &Quantity<'_>, hint: &str) -> Result<Exact> {
        let (whole, frac) = q.number.split_once('.').unwrap_or((q.number, ""));
        if whole.len() + frac.len() > MAX_DIGITS {
            return Err(Error::Usage(format!(
                "{what} '{text}' has too many digits: {hint}"
            )));
        }
        let mut digits: u128 = 0;
        for b in whole.bytes().chain(frac.bytes()) {
            digits = digits * 10 + u128::from(b - b'0');
        }
        Ok(Exact {
            digits,
            scale: frac.len() as u32,
        })
    }

    /// `10^scale`: the value times this is `digits`.
    fn divisor(&self) -> u128 {
        10u128.pow(self.scale)
    }

    /// `digits * multiplier / 10^scale`, rounded to the nearest whole number.
    fn scaled(&self, multiplier: u128) -> u128 {
        let div = self.divisor();
        (self.digits * multiplier + div / 2) / div
    }
}

fn rate_named(what: &str, text: &str) -> Result<Rate> {
    let q = quantity(what, text, RATE_HINT)?;
    let multiplier: u128 = match q.unit.as_str() {
        "" | "bit" => 1,
        "kbit" => 1_000,
        "mbit" => 1_000_000,
        "gbit" => 1_000_000_000,
        "tbit" => 1_000_000_000_000,
        "kibit" => 1 << 10,
        "mibit" => 1 << 20,
        "gibit" => 1 << 30,
        "tibit" => 1 << 40,
        "bps" => 8,
        "kbps" => 8_000,
        "mbps" => 8_000_000,
        "gbps" => 8_000_000_000,
        "tbps" => 8_000_000_000_000,
        "kibps" => 8 << 10,
        "mibps" => 8 << 20,
        "gibps" => 8 << 30,
        "tibps" => 8 << 40,
        unit => {
            return Err(Error::Usage(format!(
                "{what} '{text}' has an unknown unit '{unit}': {RATE_HINT}"
            )));
        }
    };
    // Compare exactly before rounding: 0.6bit is below 1 bit/s even if it rounds to 1.
    let x = Exact::of(what, text, &q, RATE_HINT)?;
    let div = x.divisor();
    if x.digits * multiplier < div {
        return Err(Error::Usage(format!("{what} '{text}' is below 1 bit/s")));
    }
    if x.digits * multiplier > u128::from(MAX_RATE_BITS) * div {
        return Err(Error::Usage(format!(
            "{what} '{text}' is above 100gbit, the most the link emulator can do"
        )));
    }
    Ok(Rate {
        bits_per_sec: x.scaled(multiplier) as u64,
    })
}

fn time_named(what: &str, text: &str) -> Result<Duration> {
    let q = quantity(what, text, TIME_HINT)?;
    let multiplier: u128 = match q.unit.as_str() {
        "ns" | "nsec" | "nsecs" => 1,
        "" | "us" | "usec" | "usecs" => 1_000,
        "ms" | "msec" | "msecs" => 1_000_000,
        "s" | "sec" | "secs" => 1_000_000_000,
        unit => {
            return Err(Error::Usage(format!(
                "{what} '{text}' has an unknown unit '{unit}': {TIME_HINT}"
            )));
        }
    };
    let ns = Exact::of(what, text, &q, TIME_HINT)?.scaled(multiplier);
    if ns > MAX_TIME.as_nanos() {
        return Err(Error::Usage(format!(
            "{what} '{text}' is above {}, the longest the link emulator takes",
            format_time(MAX_TIME)
        )));
    }
    Ok(Duration::from_nanos(ns as u64))
}

fn percent_named(what: &str, text: &str) -> Result<Percent> {
    let q = quantity(what, text, PERCENT_HINT)?;
    if !(q.unit.is_empty() || q.unit == "%") {
        return Err(Error::Usage(format!(
            "{what} '{text}' has an unknown unit '{}': {PERCENT_HINT}",
            q.unit
        )));
    }
    // The number as written, parsed by the standard library for correct rounding.
    let value: f64 = q.number.parse().unwrap_or(f64::NAN);
    if value.is_nan() {
        return Err(Error::Usage(format!(
            "{what} '{text}' is not a number: {PERCENT_HINT}"
        )));
    }
    if value > 100.0 {
        return Err(Error::Usage(format!("{what} '{text}' is over 100%")));
    }
    Percent::new(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::test_frames::ping;
    use proptest::prelude::*;

    fn usage<T: fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Usage(m)) => {
                assert!(!m.contains('\n') && !m.ends_with('.'), "{m}");
                m
            }
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    fn bits(text: &str) -> u64 {
        parse_rate(text).unwrap().bits_per_sec
    }

    #[test]
    fn rates_parse_in_tc_units() {
        assert_eq!(bits("1200bit"), 1200);
        assert_eq!(bits("9600"), 9600, "a bare number is bit/s");
        assert_eq!(bits("64kbit"), 64_000);
        assert_eq!(bits("10mbit"), 10_000_000);
        assert_eq!(bits("10Mbit"), 10_000_000);
        assert_eq!(bits("1gbit"), 1_000_000_000);
        assert_eq!(bits("100gbit"), MAX_RATE_BITS);
        assert_eq!(bits("1.5mbit"), 1_500_000);
        assert_eq!(bits(" 10 mbit "), 10_000_000);
        assert_eq!(bits("1kibit"), 1024);
        assert_eq!(bits("2mibit"), 2 << 20);
        // tc's bps family is bytes per second.
        assert_eq!(bits("120bps"), 960);
        assert_eq!(bits("1kbps"), 8_000);
        assert_eq!(bits("1KBps"), 8_000);
        assert_eq!(bits("1mbps"), 8_000_000);
        assert_eq!(bits("1kibps"), 8 * 1024);
        assert_eq!(bits("1.4bit"), 1);
        assert_eq!(bits("1.5bit"), 2);
    }

    #[test]
    fn bad_rates_name_the_value_and_what_is_allowed() {
        assert_eq!(usage(parse_rate("0bit")), "rate '0bit' is below 1 bit/s");
        assert_eq!(
            usage(parse_rate("0.9bit")),
            "rate '0.9bit' is below 1 bit/s"
        );
        assert_eq!(
            usage(parse_rate("500gbit")),
            "rate '500gbit' is above 100gbit, the most the link emulator can do"
        );
        assert!(usage(parse_rate("1tbit")).contains("above 100gbit"));
        assert!(usage(parse_rate("100.000000001gbit")).contains("above"));
        assert!(usage(parse_rate("-5mbit")).starts_with("rate '-5mbit' is negative: write it"));
        assert!(usage(parse_rate("")).starts_with("rate '' is empty"));
        assert!(usage(parse_rate("fast")).starts_with("rate 'fast' is not a number"));
        assert!(usage(parse_rate("NaN")).contains("not a number"));
        assert!(usage(parse_rate("inf")).contains("not a number"));
        assert!(usage(parse_rate("1.2.3mbit")).contains("not a number"));
        assert!(usage(parse_rate("10furlongs")).contains("unknown unit 'furlongs'"));
        assert!(usage(parse_rate("1e6")).contains("unknown unit 'e6'"));
        assert!(usage(parse_rate("1mbit/s")).contains("unknown unit 'mbit/s'"));
        assert!(usage(parse_rate(&"9".repeat(40))).contains("too many digits"));
        assert!(usage(parse_rate("10furlongs")).contains("1200bit, 64kbit, 10mbit"));
    }

    #[test]
    fn times_parse_in_tc_units_with_bare_microseconds() {
        let t = |s: &str| parse_time(s).unwrap();
        assert_eq!(t("250us"), Duration::from_micros(250));
        assert_eq!(t("100ms"), Duration::from_millis(100));
        assert_eq!(t("1.5s"), Duration::from_millis(1500));
        assert_eq!(
            t("2"),
            Duration::from_micros(2),
            "bare is microseconds, as in tc"
        );
        assert_eq!(t("2usecs"), Duration::from_micros(2));
        assert_eq!(t("3msec"), Duration::from_millis(3));
        assert_eq!(t("7ns"), Duration::from_nanos(7));
        assert_eq!(t("1sec"), Duration::from_secs(1));
        assert_eq!(t("0"), Duration::ZERO);
        assert_eq!(t("0.1ms"), Duration::from_micros(100));
        assert_eq!(t("3600s"), MAX_TIME);
        assert_eq!(
            usage(parse_time("3601s")),
            "time '3601s' is above 3600s, the longest the link emulator takes"
        );
        assert!(usage(parse_time("-1ms")).contains("negative"));
        assert!(usage(parse_time("1h")).contains("unknown unit 'h'"));
        assert!(usage(parse_time("ms")).contains("not a number"));
        assert!(usage(parse_time("")).contains("empty"));
    }

    #[test]
    fn percentages_parse_with_or_without_the_sign() {
        let p = |s: &str| parse_percent(s).unwrap().value();
        assert_eq!(p("5%"), 5.0);
        assert_eq!(p("5"), 5.0);
        assert_eq!(p("0.1%"), 0.1);
        assert_eq!(p("100%"), 100.0);
        assert_eq!(p("0"), 0.0);
        assert_eq!(p(" 5 % "), 5.0);
        assert_eq!(
            usage(parse_percent("120%")),
            "percentage '120%' is over 100%"
        );
        assert!(usage(parse_percent("-1%")).contains("negative"));
        assert!(usage(parse_percent("5%%")).contains("unknown unit '%%'"));
        assert!(usage(parse_percent("nan")).contains("not a number"));
        assert!(usage(parse_percent("half")).contains("not a number"));
        for tiny in [1e-300, f64::MIN_POSITIVE, 5e-324, 1.0 / 3.0] {
            let p = Percent::new(tiny).unwrap();
            assert_eq!(parse_percent(&p.to_string()).unwrap(), p, "{p}");
        }
        assert!(usage(parse_time(&"1".repeat(30))).contains("too many digits"));
        assert!(Percent::new(f64::NAN).is_err());
        assert!(Percent::new(-0.5).is_err());
        assert!(Percent::new(100.5).is_err());
        assert!(Percent::new(f64::INFINITY).is_err());
    }

    #[test]
    fn framings_queues_and_drop_rules_parse() {
        assert_eq!(parse_framing("slip").unwrap(), Framing::Slip);
        assert_eq!(parse_framing("SLIP").unwrap(), Framing::Slip);
        assert_eq!(parse_framing("eth").unwrap(), Framing::Ethernet);
        assert_eq!(parse_framing("ethernet").unwrap(), Framing::Ethernet);
        assert_eq!(
            usage(parse_framing("ppp")),
            "framing 'ppp' is unknown: use ethernet or slip"
        );
        assert_eq!(parse_queue("100").unwrap(), 100);
        assert_eq!(usage(parse_queue("0")), "queue '0' is below 1 frame");
        assert!(usage(parse_queue("-1")).contains("negative"));
        assert!(usage(parse_queue("1.5")).contains("whole number"));
        assert!(usage(parse_queue("")).contains("whole number"));
        assert!(usage(parse_queue("2000000")).contains("above 1000000"));
        assert!(usage(parse_queue(&"9".repeat(30))).contains("above"));
        let r = DropRule::parse("1 tcp data").unwrap();
        assert_eq!(r.count, 1);
        assert_eq!(r.filter, PacketFilter::parse("tcp data").unwrap());
        assert_eq!(r.to_string(), "1 tcp data");
        assert_eq!(
            DropRule::parse("3").unwrap().filter,
            PacketFilter::default()
        );
        assert!(usage(DropRule::parse("tcp")).contains("does not start with a count"));
        assert!(usage(DropRule::parse("-1 tcp")).contains("count"));
        assert!(usage(DropRule::parse("1 tcp syn")).contains("unknown word"));
    }

    #[test]
    fn values_display_as_tc_writes_them() {
        let r = |b: u64| Rate { bits_per_sec: b }.to_string();
        assert_eq!(r(1200), "1200bit");
        assert_eq!(r(9600), "9600bit");
        assert_eq!(r(64_000), "64Kbit");
        assert_eq!(r(1_500_000), "1500Kbit");
        assert_eq!(r(10_000_000), "10Mbit");
        assert_eq!(r(1_000_000_000), "1Gbit");
        assert_eq!(r(MAX_RATE_BITS), "100Gbit");
        assert_eq!(r(1_000_000_000_000), "1000Gbit");
        let t = |ns: u64| format_time(Duration::from_nanos(ns));
        assert_eq!(t(250_000), "250us");
        assert_eq!(t(100_000_000), "100ms");
        assert_eq!(t(1_500_000_000), "1.5s");
        assert_eq!(t(1_234_567_891), "1.234567891s");
        assert_eq!(t(1_050_000), "1.05ms");
        assert_eq!(t(0), "0s");
        assert_eq!(t(7), "7ns");
        assert_eq!(parse_percent("0.1").unwrap().to_string(), "0.1%");
        assert_eq!(parse_percent("5").unwrap().to_string(), "5%");
        assert_eq!(Framing::Slip.to_string(), "slip");
    }

    #[test]
    fn merge_sets_only_what_is_named() {
        let mut c = Conditions::default();
        let mut u = ConditionsUpdate::default();
        assert!(u.is_empty());
        u.set("rate", "1200bit").unwrap();
        u.set("framing", "slip").unwrap();
        assert!(!u.is_empty());
        c.merge(&u);
        let mut u = ConditionsUpdate::default();
        u.set("delay", "100ms").unwrap();
        u.set("loss", "5%").unwrap();
        c.merge(&u);
        assert_eq!(c.rate, Some(Rate { bits_per_sec: 1200 }), "rate kept");
        assert_eq!(c.framing, Framing::Slip, "framing kept");
        assert_eq!(c.delay, Some(Duration::from_millis(100)));
        assert_eq!(c.summary(), "rate 1200bit slip, delay 100ms, loss 5%");
        assert_eq!(c.to_string(), c.summary());
        // A zero removes one condition and keeps the rest.
        let mut u = ConditionsUpdate::default();
        u.set("loss", "0%").unwrap();
        c.merge(&u);
        assert_eq!(c.loss, None);
        assert_eq!(c.summary(), "rate 1200bit slip, delay 100ms");
        let mut u = ConditionsUpdate::default();
        u.set("delay", "0").unwrap();
        c.merge(&u);
        assert_eq!(c.delay, None);
        assert!(!c.is_empty());
        // An empty update changes nothing.
        let before = c.clone();
        c.merge(&ConditionsUpdate::default());
        assert_eq!(c, before);
    }

    #[test]
    fn update_errors_name_the_condition() {
        let mut u = ConditionsUpdate::default();
        assert_eq!(usage(u.set("loss", "120%")), "loss '120%' is over 100%");
        assert_eq!(usage(u.set("rate", "0bit")), "rate '0bit' is below 1 bit/s");
        assert!(
            usage(u.set("delay", "5 parsecs")).starts_with("delay '5 parsecs' has an unknown unit")
        );
        assert!(usage(u.set("jitter", "-1ms")).starts_with("jitter '-1ms' is negative"));
        assert!(usage(u.set("lose", "5%")).starts_with("condition 'lose' is unknown: use rate,"));
        assert!(u.is_empty(), "failed sets change nothing");
        u.set("drop_next", "1 tcp data").unwrap();
        u.set("Duplicate", "1").unwrap();
        u.set("reorder", "25%").unwrap();
        u.set("corrupt", "0.1%").unwrap();
        u.set("queue", "100").unwrap();
        u.set("jitter", "10ms").unwrap();
        u.set("rate", "10mbit").unwrap();
        let mut c = Conditions::default();
        c.merge(&u);
        assert_eq!(
            c.summary(),
            "rate 10Mbit, jitter 10ms, duplicate 1%, reorder 25%, corrupt 0.1%, \
             drop-next 1 tcp data, queue 100"
        );
    }

    #[test]
    fn emptiness_ignores_zero_values() {
        assert!(Conditions::default().is_empty());
        assert_eq!(Conditions::default().summary(), "none");
        let zeros = Conditions {
            delay: Some(Duration::ZERO),
            loss: Some(Percent::new(0.0).unwrap()),
            queue: Some(0),
            drop_next: Some(DropRule::parse("0 tcp").unwrap()),
            ..Conditions::default()
        };
        assert!(zeros.is_empty());
        let slip = Conditions {
            framing: Framing::Slip,
            ..Conditions::default()
        };
        assert!(!slip.is_empty());
        assert_eq!(slip.summary(), "framing slip");
    }

    #[test]
    fn line_bytes_follow_the_framing() {
        let p = ping(84);
        assert_eq!(p.len(), 98);
        assert_eq!(Framing::Ethernet.line_bytes(&p), 98);
        assert_eq!(
            Framing::Slip.line_bytes(&p),
            86,
            "84-byte datagram plus two END bytes"
        );
        // Ethernet padding is not sent on a serial line.
        let mut small = ping(28);
        small.resize(60, 0);
        assert_eq!(Framing::Slip.line_bytes(&small), 30);
        assert_eq!(Framing::Ethernet.line_bytes(&small), 60);
        // Not IPv4, or too short: the frame without its header.
        assert_eq!(Framing::Slip.line_bytes(&[0u8; 42]), 30);
        assert_eq!(Framing::Slip.line_bytes(&[0u8; 3]), 2);
        // netem's equivalent: rate in bytes per second at 10 bits a byte, overhead -12.
        assert_eq!(98 + Framing::Slip.packet_overhead(), 86);
        let t = Rate { bits_per_sec: 1200 }.line_time(Framing::Slip, &p);
        assert_eq!(t, Duration::from_nanos(716_666_667));
    }

    #[test]
    fn conditions_round_trip_through_json_and_reject_bad_values() {
        let mut u = ConditionsUpdate::default();
        for (n, v) in [
            ("rate", "9600"),
            ("framing", "slip"),
            ("delay", "100ms"),
            ("loss", "2.5%"),
            ("drop-next", "2 tcp port 5001 data"),
        ] {
            u.set(n, v).unwrap();
        }
        let mut c = Conditions::default();
        c.merge(&u);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"framing\":\"slip\""), "{json}");
        assert!(json.contains("\"tcp port 5001 data\""), "{json}");
        let back: Conditions = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<Conditions>(r#"{"loss": 120.0}"#).is_err());
        assert!(serde_json::from_str::<Conditions>(r#"{"lose": 1.0}"#).is_err());
        let partial: Conditions = serde_json::from_str(r#"{"queue": 5}"#).unwrap();
        assert_eq!(partial.queue, Some(5));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*", name in "[a-z_-]{0,12}") {
            let _ = parse_rate(&s);
            let _ = parse_time(&s);
            let _ = parse_percent(&s);
            let _ = parse_framing(&s);
            let _ = parse_queue(&s);
            let _ = PacketFilter::parse(&s);
            let _ = DropRule::parse(&s);
            let _ = ConditionsUpdate::default().set(&name, &s);
        }

        #[test]
        fn number_like_text_never_panics(s in "[-+ 0-9.%a-zA-Z]{0,30}") {
            for r in [parse_rate(&s).map(|_| ()), parse_time(&s).map(|_| ()), parse_percent(&s).map(|_| ())] {
                if let Err(e) = r {
                    prop_assert!(matches!(e, Error::Usage(_)));
                }
            }
        }

        #[test]
        fn displayed_values_parse_back_exactly(b in 1..=MAX_RATE_BITS, ns in 0..=3_600_000_000_000u64, p in 0.0..=100.0f64) {
            let r = Rate { bits_per_sec: b };
            prop_assert_eq!(parse_rate(&r.to_string()).unwrap(), r);
            let d = Duration::from_nanos(ns);
            prop_assert_eq!(parse_time(&format_time(d)).unwrap(), d);
            let pc = Percent::new(p).unwrap();
            prop_assert_eq!(parse_percent(&pc.to_string()).unwrap(), pc);
        }
    }
}
