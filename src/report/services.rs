//! Service names of well-known ports, as tcpdump prints them from `/etc/services` and as
//! Stevens' *TCP/IP Illustrated, Vol. 1* shows them (`svr4.discard`, `bsdi.telnet`). Ports
//! without a name here are written as numbers.

/// Well-known ports and their names; TCP and UDP share them (tcpdump looks both up in the
/// same file, and the book's examples never need the few that differ).
const SERVICES: &[(u16, &str)] = &[
    (7, "echo"),
    (9, "discard"),
    (13, "daytime"),
    (19, "chargen"),
    (20, "ftp-data"),
    (21, "ftp"),
    (22, "ssh"),
    (23, "telnet"),
    (25, "smtp"),
    (37, "time"),
    (42, "nameserver"),
    (43, "whois"),
    (53, "domain"),
    (67, "bootps"),
    (68, "bootpc"),
    (69, "tftp"),
    (79, "finger"),
    (80, "http"),
    (110, "pop3"),
    (111, "sunrpc"),
    (113, "auth"),
    (119, "nntp"),
    (123, "ntp"),
    (161, "snmp"),
    (162, "snmp-trap"),
    (179, "bgp"),
    (443, "https"),
    (512, "exec"),
    (513, "login"),
    (514, "shell"),
    (520, "route"),
    (2049, "nfs"),
];

/// The name of well-known port `port`, if it has one.
pub(super) fn service_name(port: u16) -> Option<&'static str> {
    SERVICES
        .binary_search_by_key(&port, |&(p, _)| p)
        .ok()
        .map(|i| SERVICES[i].1)
}

/// A port as the book writes it: its service name when it has one, else its number.
pub(super) fn port_name(port: u16) -> String {
    service_name(port).map_or_else(|| port.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ports_have_their_names_and_others_stay_numbers() {
        assert!(
            SERVICES.windows(2).all(|w| w[0].0 < w[1].0),
            "the table must stay sorted for the binary search"
        );
        for (port, name) in [
            (7, "echo"),
            (9, "discard"),
            (13, "daytime"),
            (19, "chargen"),
            (20, "ftp-data"),
            (21, "ftp"),
            (23, "telnet"),
            (25, "smtp"),
            (37, "time"),
            (53, "domain"),
            (67, "bootps"),
            (68, "bootpc"),
            (69, "tftp"),
            (80, "http"),
            (161, "snmp"),
            (520, "route"),
        ] {
            assert_eq!(port_name(port), name, "port {port}");
        }
        assert_eq!(port_name(1024), "1024");
        assert_eq!(port_name(8888), "8888");
        assert_eq!(port_name(0), "0");
        assert_eq!(service_name(65535), None);
    }
}
