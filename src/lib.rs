//! tcplab: builds, runs and tears down a TCP/IP teaching lab (Stevens' *TCP/IP Illustrated*
//! topology by default) of real network namespaces or Docker containers on one Linux machine.
//!
//! The shape: a topology file is parsed and validated ([`topology`]), turned into a [`plan`],
//! and applied ([`lab`]) through two seams: a [`runtime`] (what a node is: a namespace or a
//! container) and the operating system ([`os`]: netlink per namespace, files, firewall, OVS).
//! Everything created is recorded ([`state`]) so that `down` removes exactly that. The CLI
//! ([`commands`]) only parses, resolves the lab and prints. ARCHITECTURE.md is the map.

#![warn(missing_docs)]

pub mod capture;
pub mod commands;
pub mod conditions;
pub mod error;
pub mod experiment;
pub mod lab;
pub mod net;
pub mod os;
pub mod ovs;
pub mod plan;
pub mod progress;
pub mod report;
pub mod runtime;
pub mod state;
pub mod sys;
pub mod topology;
pub mod util;
pub mod web;

pub use error::{Error, Result};
