//! The packet table of a capture in `report.md`: each packet's line number, its time since
//! the first packet and the gap since the one before (the book's `2  0.002402 (0.0024)`),
//! its book-style line and the decoder's raw `tcpdump -n -S` line.

use super::tcpconn::Captured;
use std::fmt::Write as _;

/// Rows written at most; a note says how many were left out.
pub(super) const MAX_ROWS: usize = 5000;

/// Append the table of `caps` to `md`; `book` holds each packet's book-style line.
pub(super) fn packet_table(md: &mut String, caps: &[Captured], book: &[String]) {
    if caps.is_empty() {
        md.push_str("*(no packets)*\n\n");
        return;
    }
    let several_ifaces = caps.iter().any(|c| c.iface != caps[0].iface);
    md.push_str(
        "| # | time (s) | gap (s) | line (book style) | decoder line (`tcpdump -n -S`) |\n",
    );
    md.push_str("|--:|--:|--:|:--|:--|\n");
    let mut prev = None;
    for (i, (c, line)) in caps.iter().zip(book).enumerate().take(MAX_ROWS) {
        let (time, gap) = match prev {
            None => ("0.0".to_string(), String::new()),
            Some(p) => (format!("{:.6}", c.time), format!("({:.4})", c.time - p)),
        };
        prev = Some(c.time);
        let mut raw = c.packet.to_string().trim().to_string();
        if several_ifaces {
            raw = format!("{}: {raw}", c.iface);
        }
        let _ = writeln!(
            md,
            "| {} | {time} | {gap} | {} | {} |",
            i + 1,
            code_cell(line),
            code_cell(&raw)
        );
    }
    if caps.len() > MAX_ROWS {
        let _ = writeln!(
            md,
            "\n*The first {MAX_ROWS} of {} packets are listed; the capture file has them all.*",
            caps.len()
        );
    }
    md.push('\n');
}

/// `s` as a code span fit for a table cell: `|` escaped, backticks and line breaks made
/// harmless.
fn code_cell(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    if s.trim().is_empty() {
        return String::new();
    }
    format!("`{}`", s.replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_frames::*;

    #[test]
    fn the_table_has_number_time_gap_book_line_and_raw_line() {
        let packets = decode_all(&[
            arp_frame(1, BSDI, SVR4),
            arp_frame(2, SVR4, BSDI),
            udp_frame((BSDI, 2924), (SVR4, 8888), 20),
        ]);
        let mut caps = captured(&packets, 0.0);
        caps[1].time = 0.002402;
        caps[2].time = 0.003105;
        let book = vec!["a|b".to_string(), "x`y".to_string(), String::new()];
        let mut md = String::new();
        packet_table(&mut md, &caps, &book);
        let lines: Vec<&str> = md.lines().collect();
        assert!(lines[0].starts_with("| # | time (s) | gap (s) | line (book style) |"));
        assert_eq!(lines[1], "|--:|--:|--:|:--|:--|");
        assert!(
            lines[2].starts_with("| 1 | 0.0 |  | `a\\|b` | `ARP, Request who-has 140.252.13.34"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("| 2 | 0.002402 | (0.0024) | `x'y` | `ARP, Reply"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].starts_with("| 3 | 0.003105 | (0.0007) |  | `IP 140.252.13.35.2924 >"),
            "{}",
            lines[4]
        );
        // Every row has the same number of cells as the head.
        let cells = |l: &str| l.replace("\\|", "").matches('|').count();
        assert!(lines[..5].iter().all(|l| cells(l) == 6), "{md}");
        assert!(!md.contains("eth0:"), "one interface: not named");
    }

    #[test]
    fn several_interfaces_are_named_and_an_empty_capture_says_so() {
        let packets = decode_all(&[arp_frame(1, BSDI, SVR4), arp_frame(1, BSDI, SVR4)]);
        let mut caps = captured(&packets, 0.5);
        caps[1].iface = "sl0";
        let mut md = String::new();
        packet_table(&mut md, &caps, &["x".into(), "y".into()]);
        assert!(
            md.contains("| `eth0: ARP") && md.contains("| `sl0: ARP"),
            "{md}"
        );
        let mut md = String::new();
        packet_table(&mut md, &[], &[]);
        assert_eq!(md, "*(no packets)*\n\n");
    }
}
