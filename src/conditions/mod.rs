//! Link conditions: what makes a lab link behave like the book's lines instead of a gigabit
//! veth. A slow serial line (SLIP at 1200 or 9600 bit/s, TCP/IP Illustrated Vol. 1, 7.2),
//! delay, jitter, loss, duplication, reordering, corruption, a queue limit, and "drop the next
//! data segment" for retransmission experiments.
//!
//! - [`spec`]: the conditions, their units (tc's), parsing, display and merging a change.
//! - [`filter`]: which IPv4 frames a drop rule applies to (`tcp port 5001 data`).
//! - [`shaper`]: the emulator's decisions for each frame, in virtual time, without I/O.
//! - [`rng`]: the seeded generator behind the random decisions.
//!
//! Invariants: nothing here does I/O or reads a clock; every input (text, frame, time) is
//! handled without a panic; the shaper never delivers a frame before it was offered.

pub mod filter;
pub mod rng;
pub mod shaper;
pub mod spec;

pub use filter::{PacketFilter, Protocol};
pub use shaper::{Scheduled, Shaper, ShaperStats};
pub use spec::{
    Conditions, ConditionsUpdate, DropRule, Framing, Percent, Rate, format_time, parse_framing,
    parse_percent, parse_queue, parse_rate, parse_time,
};
