//! The lab network drawn like figure 1.11 of *TCP/IP Illustrated, Vol. 1* ([`topology_svg`]).
//!
//! The drawing is made in steps, one file each:
//! 1. [`model`]: the [`Graph`] resolved (names to indexes, texts cleaned and shortened);
//! 2. [`rows`]: the LANs stacked top to bottom and each host given a row between two buses;
//! 3. [`place`]: box sizes, and each host's x, bus by bus;
//! 4. [`route`]: how each point-to-point line is drawn (beside, straight down, around a row
//!    on a track, or along a channel right of the drawing);
//! 5. [`layout`]: the rows and buses stacked to give every y, all of it kept in a `Layout`;
//! 6. [`draw`]: buses, lines, boxes, labels and legend written on the canvas.

mod draw;
mod layout;
pub(super) mod model;
mod place;
mod route;
mod rows;

pub use draw::topology_svg;

/// Font size of a host's name.
const HOST_FS: f64 = 14.0;
/// Font size of the addresses in a host's box.
const ADDR_FS: f64 = 12.0;
/// Font size of port and link labels.
const PORT_FS: f64 = 12.0;
/// Line height of port labels.
const PORT_LH: f64 = 14.0;
/// Font size of a LAN's name and subnet.
const LAN_FS: f64 = 13.0;
/// Least room between two boxes side by side.
const UNIT_GAP: f64 = 28.0;
/// Distance between the tracks beside a row.
const TRACK: f64 = 24.0;
/// Most address lines in a host's box (the last one says how many more there are).
const MAX_ADDR_LINES: usize = 4;
/// Longest host, LAN and link name drawn, in cells.
const NAME_COLS: usize = 28;

/// A host (network node) of a [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphHost {
    /// The host's name, as used by [`GraphPort::host`].
    pub name: String,
    /// Whether the host forwards IPv4 (drawn with a double border).
    pub router: bool,
}

/// One attachment of a host to a LAN or to one end of a point-to-point link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphPort {
    /// Name of the host; a name missing from [`Graph::hosts`] is drawn as a plain host.
    pub host: String,
    /// The interface name inside the host, e.g. `eth1`.
    pub interface: String,
    /// The interface's address as it should be shown, e.g. `140.252.1.92` or `140.252.13.65/27`.
    pub address: Option<String>,
}

/// A LAN (layer-2 network), drawn as a horizontal bus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphLan {
    /// The LAN's name, e.g. `net1`.
    pub name: String,
    /// The LAN's subnet as it should be shown, e.g. `140.252.1.0/24`.
    pub subnet: String,
    /// The hosts attached to it, in the order they are drawn along the bus.
    pub members: Vec<GraphPort>,
}

/// A point-to-point link between two hosts (the book's SLIP and dial-up lines).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphLink {
    /// The link's name, e.g. `slip-bsdi`.
    pub name: String,
    /// One end.
    pub a: GraphPort,
    /// The other end.
    pub b: GraphPort,
}

/// A lab network to draw with [`topology_svg`] or
/// [`topology_dot`](crate::report::svg::topology_dot).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    /// Title of the drawing.
    pub title: String,
    /// The hosts, in a preferred order (hosts named only by ports are added after them).
    pub hosts: Vec<GraphHost>,
    /// The LANs; the first one is drawn on top.
    pub lans: Vec<GraphLan>,
    /// The point-to-point links.
    pub links: Vec<GraphLink>,
}
