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

    /// The same conditions with every zero value (0 ms, 0%, a count or queue of 0) removed.
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
        while unit + 1 < units.len() && v >= 1000 && v % 1000 == 0 {
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

/// A decimal number as written: `digits / 10^scale`, with the text after it.
struct Quantity<'a> {
    number: &'a str,
    digits: u128,
    scale: u32,
    unit: String,
}

/// At most this many digits in a number: enough for any sane value, small enough that every
/// computation below fits a u128.
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
    if whole.len() + frac.len() > MAX_DIGITS {
        return Err(bad("has too many digits"));
    }
    let mut digits: u128 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        digits = digits * 10 + u128::from(b - b'0');
    }
    Ok(Quantity {
        number,
        digits,
        scale: frac.len() as u32,
        unit: t[end..].trim().to_lowercase(),
    })
}

/// `digits * multiplier / 10^scale`, rounded to the nearest whole number.
fn scaled(q: &Quantity<'_>, multiplier: u128) -> u128 {
    let div = 10u128.pow(q.scale);
    (q.digits * multiplier + div / 2) / div
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
    let div = 10u128.pow(q.scale);
    if q.digits * multiplier < div {
        return Err(Error::Usage(format!("{what} '{text}' is below 1 bit/s")));
    }
    if q.digits * multiplier > u128::from(MAX_RATE_BITS) * div {
        return Err(Error::Usage(format!(
            "{what} '{text}' is above 100gbit, the most the link emulator can do"
        )));
    }
    Ok(Rate {
        bits_per_sec: scaled(&q, multiplier) as u64,
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
    let ns = scaled(&q, multiplier);
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
