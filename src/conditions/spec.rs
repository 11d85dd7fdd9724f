//! STAND-IN of the conditions' specification (the real one is written on another branch with
//! the same API); only what the datapath uses.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a direction of a link does to the frames leaving it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    /// line rate
    pub rate: Option<Rate>,
    /// how a frame is counted on the line
    pub framing: Framing,
    /// one-way delay
    pub delay: Option<Duration>,
    /// delay variation
    pub jitter: Option<Duration>,
    /// random loss
    pub loss: Option<Percent>,
    /// deterministic loss of the next frames matching a filter
    pub drop_next: Option<DropRule>,
    /// random duplication
    pub duplicate: Option<Percent>,
    /// random reordering
    pub reorder: Option<Percent>,
    /// random corruption
    pub corrupt: Option<Percent>,
    /// queue limit in frames
    pub queue: Option<u32>,
}

/// A line rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// bits per second
    pub bits_per_sec: u64,
}

/// How a frame is counted on the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub enum Framing {
    /// the whole Ethernet frame at 8 bits a byte
    #[default]
    Ethernet,
    /// the IP datagram plus 2 END bytes at 10 bits a byte
    Slip,
}

/// A percentage, 0 to 100.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percent(pub f64);

/// Drop the next `count` frames matching `filter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DropRule {
    /// how many
    pub count: u32,
    /// which
    pub filter: PacketFilter,
}

/// Which frames a rule applies to (stand-in: all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PacketFilter {}

impl Conditions {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.rate.is_none()
            && self.delay.is_none()
            && self.jitter.is_none()
            && self.loss.is_none()
            && self.drop_next.is_none()
            && self.duplicate.is_none()
            && self.reorder.is_none()
            && self.corrupt.is_none()
            && self.queue.is_none()
    }
}
