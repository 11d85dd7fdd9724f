//! Placeholder until the SVG renderers land.
#![allow(missing_docs)]
pub struct TimelinePacket { pub time: f64, pub from: String, pub to: String, pub label: String }
pub fn timeline_svg(title: &str, _hosts: &[String], _packets: &[TimelinePacket]) -> String { format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><title>{title}</title></svg>") }
pub struct GraphHost { pub name: String, pub router: bool }
pub struct GraphLan { pub name: String, pub subnet: String, pub members: Vec<GraphPort> }
pub struct GraphPort { pub host: String, pub interface: String, pub address: Option<String> }
pub struct GraphLink { pub name: String, pub a: GraphPort, pub b: GraphPort }
pub struct Graph { pub title: String, pub hosts: Vec<GraphHost>, pub lans: Vec<GraphLan>, pub links: Vec<GraphLink> }
pub fn topology_svg(g: &Graph) -> String { format!("<svg xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title></svg>", g.title) }
pub fn topology_dot(g: &Graph) -> String { format!("graph \"{}\" {{}}", g.title) }
