//! The network layer: netlink per namespace, host firewall, Open vSwitch, ethtool.

pub mod datapath;
pub mod ethtool;
pub mod firewall;
pub mod netlink;
pub mod openflow;
pub mod ovsdb;

pub use netlink::Netlink;
