//! Standalone SVG 1.1 drawings (and Graphviz DOT) for tcplab reports.
//!
//! * [`timeline_svg`] draws a packet time-line the way Stevens draws them in *TCP/IP
//!   Illustrated, Vol. 1* (e.g. figure 18.3, TCP connection establishment): one vertical line
//!   per host with its name on top, time going down, one slightly slanted arrow per packet
//!   labelled with its tcpdump line, the packet's number and time at the left margin.
//! * [`topology_svg`] draws a lab network like the book's figure 1.11: each LAN a thick
//!   horizontal bus with its hosts above or below it, point-to-point lines between hosts.
//! * [`topology_dot`] gives the same network in Graphviz DOT.
//!
//! Everything here is pure and deterministic (same input, same bytes out) and uses only
//! `std`. Nothing panics on odd input: empty lists, unknown host names, control characters and
//! very long labels are all drawn sensibly. Long text is wrapped or shortened with `…` (the
//! full text is kept in a tooltip `<title>`), and the canvas grows to fit everything.
//!
//! This module is the drawings' public face; the code lives beside it in `report`: `text`
//! (measuring and escaping), `canvas` (the SVG writer), `timeline`, `topology` (model, rows,
//! placement, line routes, layout, drawing) and `dot`.

pub use super::dot::topology_dot;
pub use super::timeline::{TimelinePacket, timeline_svg};
pub use super::topology::{Graph, GraphHost, GraphLan, GraphLink, GraphPort, topology_svg};

#[cfg(test)]
mod tests {
    //! The drawings byte for byte as they were when the golden files in `testdata/` were
    //! written: a change of layout or markup shows here first. After an intended change,
    //! write them anew with `TCPLAB_BLESS=1 cargo test --lib report::svg`.
    use super::*;
    use crate::report::test_support::{course, handshake, names, stress};

    fn same_as_golden(file: &str, got: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/report/testdata")
            .join(file);
        if std::env::var_os("TCPLAB_BLESS").is_some() {
            std::fs::write(&path, got).expect("write a golden file");
            return;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if let Some(i) = want.lines().zip(got.lines()).position(|(w, g)| w != g) {
            let (w, g) = (want.lines().nth(i), got.lines().nth(i));
            panic!("{file} differs at line {}:\nwant {w:?}\ngot  {g:?}", i + 1);
        }
        assert_eq!(want, got, "{file} differs in length");
    }

    #[test]
    fn the_course_topology_is_drawn_as_before() {
        same_as_golden("course.svg", &topology_svg(&course()));
        same_as_golden("course.dot", &topology_dot(&course()));
    }

    #[test]
    fn a_larger_topology_is_drawn_as_before() {
        same_as_golden("stress-4-6.svg", &topology_svg(&stress(4, 6)));
    }

    #[test]
    fn a_handshake_time_line_is_drawn_as_before() {
        let hosts = names(&["bsdi", "svr4", "sun"]);
        same_as_golden(
            "handshake.svg",
            &timeline_svg("handshake", &hosts, &handshake()),
        );
    }
}
