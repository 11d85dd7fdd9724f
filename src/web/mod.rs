//! `tcplab web`: the lab in a browser. One page (embedded in the binary: nothing is fetched
//! from elsewhere) with the live topology, packets drawn crossing it, a step mode over any
//! recording, the experiments, and a terminal per node.
//!
//! One file per concern:
//! - `server`: the routes, the embedded assets, starting and stopping;
//! - [`auth`]: the access token every request must carry;
//! - [`topo`]: the drawing and the lab's status, polled and pushed when it changes;
//! - [`events`]: sightings of frames folded into events, aggregated under load;
//! - [`live`]: the capture of every node fanned in, frames broadcast to the pages;
//! - [`step`] and [`fields`]: the step mode over a run's pcaps or the live recording;
//! - [`experiments`]: the catalogue, runs from the page, their files;
//! - [`terminal`]: a shell in a node on a pseudo-terminal over a websocket.

pub mod auth;
pub mod events;
pub mod experiments;
pub mod fields;
pub mod live;
mod server;
pub mod step;
pub mod terminal;
pub mod topo;

pub use server::{Server, WebOptions};
