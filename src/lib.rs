//! tcplab: builds, runs and tears down a TCP/IP teaching lab (Stevens' *TCP/IP Illustrated*
//! topology by default) of real network namespaces or Docker containers on one Linux machine.
//!
//! The shape: a topology file is parsed and validated ([`topology`]), turned into a [`plan`],
//! and applied ([`lab`]) by a [`runtime`] that hands the [`net`]work code a namespace per node.
//! Everything created is recorded ([`state`]) so that `down` removes exactly that.

#![warn(missing_docs)]

pub mod capture;
pub mod commands;
pub mod conditions;
pub mod error;
pub mod experiment;
pub mod lab;
pub mod net;
pub mod plan;
pub mod progress;
pub mod report;
pub mod runtime;
pub mod state;
pub mod sys;
pub mod topology;
pub mod util;

pub use error::{Error, Result};
