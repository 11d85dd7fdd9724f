//! `tcplab web`: the token, the folding of sightings into events, the step mode's decoding of
//! a run's pcaps (no root needed), and the page in a real browser (Debian's chromium, headless,
//! driven over the DevTools protocol) against a running lab (root).

mod common;
mod web_common;

use common::{Lab, Runtime, TCPLAB};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tcplab::capture::decode;
use tcplab::capture::pcap::PcapngWriter;
use tcplab::web::auth::Token;
use tcplab::web::events::{Aggregator, LinkMap, Observation};
use tcplab::web::fields::{self, LayerView};
use web_common::{Browser, chromium};

// ------------------------------------------------------------------ frames made by hand

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet frame holding an ICMP echo request.
fn echo(src_mac: u8, dst_mac: u8, src: [u8; 4], dst: [u8; 4], ttl: u8, seq: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, dst_mac, 2, 0, 0, 0, 0, src_mac, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 28, 0x12, 0x34, 0, 0, ttl, 1, 0, 0];
    ip.extend(src);
    ip.extend(dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut icmp = vec![8, 0, 0, 0, 0, 7];
    icmp.extend(seq.to_be_bytes());
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    f.extend(icmp);
    f
}

const SLIP: [u8; 4] = [140, 252, 13, 65];
const AIX: [u8; 4] = [140, 252, 1, 92];

fn course_links() -> LinkMap {
    let topo = tcplab::topology::builtin();
    LinkMap::of_graph(&tcplab::report::graph_of(&topo))
}

fn sighting(node: &str, iface: &str, ts_ns: u64, frame: &[u8]) -> Observation {
    Observation {
        node: node.into(),
        iface: iface.into(),
        ts_ns,
        packet: decode(frame),
        frame: Some(Arc::from(frame)),
    }
}

// ------------------------------------------------------------------ no root needed

#[test]
fn the_token_is_taken_from_query_cookie_or_header_and_nothing_else() {
    let t = Token::from_text("0123456789abcdef");
    assert!(t.admits(Some("token=0123456789abcdef"), None, None));
    assert!(t.admits(Some("a=1&token=0123456789abcdef"), None, None));
    assert!(t.admits(None, Some("x=y; tcplab_token=0123456789abcdef"), None));
    assert!(t.admits(None, None, Some("token 0123456789abcdef")));
    assert!(!t.admits(None, None, None));
    assert!(!t.admits(Some("token=0123456789abcdeX"), None, None));
    assert!(!t.admits(Some("token=0123456789abcde"), None, None));
    assert!(!t.admits(Some("token="), Some("tcplab_token="), Some("token ")));
    assert!(!t.admits(None, Some("other=0123456789abcdef"), None));
    let a = Token::generate().expect("a token");
    let b = Token::generate().expect("another token");
    assert_eq!(a.as_str().len(), 32);
    assert_ne!(a.as_str(), b.as_str(), "two tokens must differ");
}

#[test]
fn a_frame_seen_at_both_ends_of_a_line_is_one_event_from_the_first_to_see_it() {
    let links = course_links();
    let slip_line = links
        .link_of("slip", "slipside")
        .expect("slip's line")
        .to_string();
    let mut agg = Aggregator::new(links.clone(), 30_000_000, 100);
    let f = echo(1, 2, SLIP, AIX, 64, 1);
    // bsdi's ingress copy arrives first at the aggregator but carries the later stamp.
    agg.push(sighting("bsdi", "bsdiside", 1_000_050_000, &f), 0);
    let lonely = echo(1, 2, SLIP, [140, 252, 13, 66], 64, 2);
    agg.push(sighting("slip", "slipside", 1_000_100_000, &lonely), 1_000);
    agg.push(sighting("slip", "slipside", 1_000_000_000, &f), 1_000);
    // Both ends saw it: out at the next tick; the other still waits for bsdi.
    let frame = agg.tick(10_000_000, false);
    assert_eq!(frame.events.len(), 1, "{:?}", frame.events);
    let e = &frame.events[0];
    assert_eq!(e.link.as_deref(), Some(slip_line.as_str()));
    assert_eq!(
        (e.from.as_str(), e.to.clone()),
        ("slip", vec!["bsdi".to_string()])
    );
    assert_eq!(e.proto, "icmp");
    assert!(e.summary.contains("ICMP echo request"), "{}", e.summary);
    assert_eq!(frame.counts[&slip_line].packets, 1);
    assert!(!agg.is_idle(), "the frame only slip saw waits");
    // A late copy of a frame already handed out is not another event...
    agg.push(sighting("bsdi", "bsdiside", 1_000_060_000, &f), 20_000_000);
    assert!(agg.tick(20_000_000, false).events.is_empty());
    // ...the frame seen at one end only goes out when its wait is over...
    let late = agg.tick(40_000_000, false);
    assert_eq!(late.events.len(), 1);
    assert_eq!(late.events[0].from, "slip");
    assert_eq!(
        late.events[0].to,
        ["bsdi"],
        "its receiver from the address on the line"
    );
    // ...and the same bytes much later are another event.
    agg.push(sighting("slip", "slipside", 2_000_000_000, &f), 100_000_000);
    assert_eq!(agg.tick(200_000_000, false).events.len(), 1);
}

#[test]
fn a_broadcast_on_a_lan_is_one_event_to_every_member_that_saw_it() {
    let links = course_links();
    let mut agg = Aggregator::new(links.clone(), 30_000_000, 100);
    let mut f = echo(1, 0xff, [140, 252, 1, 92], [140, 252, 1, 255], 64, 9);
    f[..6].fill(0xff);
    for (i, n) in ["solaris", "aix", "gemini", "gateway", "netb"]
        .iter()
        .enumerate()
    {
        let ts = if *n == "aix" { 10 } else { 100 + i as u64 };
        agg.push(sighting(n, "eth1", ts, &f), i as u64);
    }
    let frame = agg.tick(u64::MAX, true);
    assert_eq!(frame.events.len(), 1);
    let e = &frame.events[0];
    assert_eq!(e.link.as_deref(), links.link_of("aix", "eth1"));
    assert_eq!(e.from, "aix");
    let mut to = e.to.clone();
    to.sort();
    assert_eq!(to, ["gateway", "gemini", "netb", "solaris"]);
}

#[test]
fn an_event_goes_out_once_every_capture_that_can_see_it_has() {
    let links = course_links();
    let mut agg = Aggregator::new(links, 160_000_000, 100);
    // A unicast frame on the top LAN: its sender and its receiver are all there is to see.
    let unicast = echo(1, 2, [140, 252, 1, 92], [140, 252, 1, 32], 64, 1);
    agg.push(sighting("aix", "eth1", 1_000, &unicast), 0);
    assert!(
        agg.tick(1_000_000, false).events.is_empty(),
        "waits for solaris"
    );
    agg.push(sighting("solaris", "eth1", 2_000, &unicast), 2_000_000);
    assert_eq!(
        agg.tick(3_000_000, false).events.len(),
        1,
        "complete: out at once"
    );
    // A broadcast waits for every member of the LAN (five), or for its wait to end.
    let mut bcast = echo(1, 0xff, [140, 252, 1, 92], [140, 252, 1, 255], 64, 2);
    bcast[..6].fill(0xff);
    for (i, n) in ["aix", "solaris", "gemini", "gateway"].iter().enumerate() {
        agg.push(sighting(n, "eth1", 10_000 + i as u64, &bcast), 4_000_000);
    }
    assert!(agg.tick(5_000_000, false).events.is_empty(), "netb not yet");
    agg.push(sighting("netb", "eth1", 10_010, &bcast), 6_000_000);
    let e = agg.tick(7_000_000, false).events;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].to.len(), 4);
    assert!(agg.is_idle());
}

#[test]
fn under_load_a_tick_sends_its_budget_and_counts_the_rest() {
    let links = course_links();
    let lan = links.link_of("aix", "eth1").expect("aix's LAN").to_string();
    let mut agg = Aggregator::new(links, 30_000_000, 3);
    for seq in 0..10u16 {
        let f = echo(1, 2, [140, 252, 1, 92], [140, 252, 1, 32], 64, seq);
        agg.push(sighting("aix", "eth1", 1_000 + u64::from(seq), &f), 0);
        agg.push(sighting("solaris", "eth1", 2_000 + u64::from(seq), &f), 0);
    }
    let frame = agg.tick(u64::MAX, true);
    assert_eq!(frame.events.len(), 3, "the budget");
    assert_eq!(frame.folded, 7, "the rest counted");
    assert_eq!(frame.counts[&lan].packets, 10, "each frame counted once");
    assert_eq!(frame.counts[&lan].by_proto["icmp"], 10);
    let ids: Vec<u64> = frame.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert!(agg.is_idle());
}

/// Writes a pcapng of `node` with its interfaces and frames (interface index, stamp, bytes).
fn write_pcapng(path: &Path, ifaces: &[&str], frames: &[(u32, u64, Vec<u8>)]) {
    let file = std::fs::File::create(path).expect("create pcapng");
    let mut w = PcapngWriter::new(file, "test").expect("pcapng header");
    for i in ifaces {
        w.add_interface(i, 65535).expect("interface");
    }
    for (i, ts, f) in frames {
        w.write_packet(*i, *ts, f.len() as u32, f).expect("packet");
    }
    w.flush().expect("flush");
}

#[test]
fn step_mode_reads_a_runs_pcaps_into_hops_with_the_changed_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    // slip -> bsdi on the SLIP line (TTL 64), then bsdi -> sun on the bottom LAN (TTL 63).
    let hop1 = echo(0x11, 0x12, SLIP, AIX, 64, 1);
    let hop2 = echo(0x21, 0x22, SLIP, AIX, 63, 1);
    write_pcapng(
        &dir.path().join("bsdi.pcapng"),
        &["bsdiside", "eth1"],
        &[(0, 1_000_000, hop1.clone()), (1, 1_200_000, hop2.clone())],
    );
    write_pcapng(
        &dir.path().join("sun.pcapng"),
        &["eth1"],
        &[(0, 1_250_000, hop2.clone())],
    );
    std::fs::write(dir.path().join("report.md"), "# test\n").expect("report");
    let links = course_links();
    let nodes: Vec<String> = common::NODES.iter().map(|s| s.to_string()).collect();
    let rec = tcplab::web::step::load_run_dir(dir.path(), &nodes, &links).expect("recording");
    assert!(rec.problems.is_empty(), "{:?}", rec.problems);
    assert_eq!(rec.events.len(), 2, "three sightings, two events: {rec:?}");
    let (a, b) = (&rec.events[0], &rec.events[1]);
    assert_eq!(a.event.link.as_deref(), links.link_of("slip", "slipside"));
    assert_eq!(
        a.event.from, "slip",
        "completed from the IPv4 source on the line"
    );
    assert_eq!(a.event.to, ["bsdi"]);
    assert_eq!(
        (b.event.from.as_str(), b.event.to.clone()),
        ("bsdi", vec!["sun".to_string()])
    );
    assert_eq!(a.hops, [0, 1]);
    assert_eq!(b.hops, [0, 1]);
    assert!(a.changed.is_empty());
    assert_eq!(
        b.changed,
        ["Ethernet.src", "Ethernet.dst", "IPv4.TTL", "IPv4.checksum"]
    );
    let names: Vec<&str> = b.layers.iter().map(|l| l.name).collect();
    assert_eq!(names, ["Ethernet", "IPv4", "ICMP"]);
    let ttl = b.layers[1].fields.iter().find(|(k, _)| *k == "TTL");
    assert_eq!(ttl.map(|(_, v)| v.as_str()), Some("63"));
    let refused = tcplab::web::step::load_run_dir(Path::new("/nonexistent-run"), &nodes, &links);
    assert!(refused.is_err());
}

/// An echo request from 140.252.13.65 to 140.252.1.92 with TTL 63 (checksum 0x7740, as
/// captured in a hop-by-hop run).
const HOP_FRAME: [u8; 42] = [
    0xaa, 0x3b, 0x4b, 0xb4, 0x54, 0x2b, 0x1a, 0xf0, 0xea, 0x02, 0x56, 0x33, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x54, 0x9b, 0xd3, 0x40, 0x00, 0x3f, 0x01, 0x77, 0x40, 0x8c, 0xfc, 0x0d, 0x41, 0x8c, 0xfc,
    0x01, 0x5c, 0x08, 0x00, 0x00, 0x00, 0x71, 0x9f, 0x00, 0x01,
];

fn field<'a>(layers: &'a [LayerView], layer: &str, name: &str) -> Option<&'a str> {
    let l = layers.iter().find(|l| l.name == layer)?;
    l.fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_live_view_recomputes_the_ip_checksum_the_wire_carries() {
    let p = decode(&HOP_FRAME);
    let from_bytes = fields::layers(&p, Some(&HOP_FRAME));
    let live = fields::layers(&p, None);
    assert_eq!(field(&from_bytes, "IPv4", "checksum"), Some("0x7740"));
    assert_eq!(
        field(&live, "IPv4", "checksum"),
        Some("0x7740 (recomputed)")
    );
    assert_eq!(field(&live, "IPv4", "TTL"), Some("63"));
    assert_eq!(field(&live, "ICMP", "seq"), Some("1"));
}

#[test]
fn only_the_fields_that_differ_are_changed() {
    let p = decode(&HOP_FRAME);
    let mut other = HOP_FRAME;
    other[22] = 0x3e; // TTL 62, the checksum left as it was
    let q = decode(&other);
    let (a, b) = (
        fields::layers(&p, Some(&HOP_FRAME)),
        fields::layers(&q, Some(&other)),
    );
    assert_eq!(fields::changed(&a, &b), ["IPv4.TTL"]);
    assert_eq!(fields::datagram_key(&p), fields::datagram_key(&q));
    assert!(fields::datagram_key(&decode(&HOP_FRAME[..14])).is_none());
}

// ------------------------------------------------------------------ the server

/// A `tcplab web` of the lab, killed when dropped.
struct WebServer {
    child: Child,
    /// Its working directory, where runs from the page go (`results/`).
    _cwd: tempfile::TempDir,
    url: String,
    port: u16,
    token: String,
}

impl WebServer {
    fn start(lab: &str) -> WebServer {
        let cwd = tempfile::tempdir().expect("working directory");
        let program = std::env::var("TCPLAB_WEB_PROGRAM").unwrap_or_else(|_| TCPLAB.into());
        let mut child = Command::new(program)
            .current_dir(cwd.path())
            .args(["--lab", lab, "web", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tcplab web");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the URL line");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        let port = url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        let token = url.split("token=").nth(1).expect("token").to_string();
        WebServer {
            child,
            _cwd: cwd,
            url,
            port,
            token,
        }
    }

    /// Status code and body of a GET of `path` (with `extra` headers).
    fn get(&self, path: &str, extra: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n{extra}\r\n",
            self.port
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let code = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, out)
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_request_without_the_token_is_refused() {
    let web = WebServer::start("web3");
    let t = web.token.clone();
    for path in [
        "/",
        "/api/topology",
        "/assets/app.js",
        "/ws/live",
        "/api/step/live",
    ] {
        assert_eq!(web.get(path, "").0, 401, "{path} without the token");
        assert_eq!(
            web.get(&format!("{path}?token=nope"), "").0,
            401,
            "{path}, wrong token"
        );
    }
    let (code, body) = web.get(&format!("/?token={t}"), "");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("set-cookie: tcplab_token="), "{body}");
    assert_eq!(
        web.get("/api/topology", &format!("Cookie: tcplab_token={t}\r\n"))
            .0,
        200
    );
    assert_eq!(
        web.get("/api/topology", &format!("Authorization: token {t}\r\n"))
            .0,
        200
    );
    assert!(web.url.starts_with("http://127.0.0.1:"), "{}", web.url);
    let foreign = format!("Cookie: tcplab_token={t}\r\nOrigin: http://example.org\r\n");
    assert_eq!(
        web.get("/api/topology", &foreign).0,
        403,
        "another site's page"
    );
    let own = format!(
        "Cookie: tcplab_token={t}\r\nOrigin: http://127.0.0.1:{}\r\n",
        web.port
    );
    assert_eq!(web.get("/api/topology", &own).0, 200, "the page itself");
}

/// The lab the browser tests run on: `name`, on namespaces, down when dropped.
fn lab(name: &str) -> Lab {
    let lab = Lab {
        name: name.into(),
        topology: None,
        runtime: Runtime::Netns,
    };
    let _ = lab.tcplab(&["-q", "down"]);
    lab.up(None);
    lab
}

/// Prerequisites of a browser test: root and chromium (`apt-get install -y chromium`).
fn browser_or_skip() -> Option<&'static str> {
    if !common::is_root() {
        eprintln!("skipped: not root");
        return None;
    }
    let c = chromium();
    if c.is_none() {
        eprintln!("skipped: chromium is not installed (apt-get install -y chromium)");
    }
    c
}

#[test]
fn the_page_shows_the_lab_its_packets_a_step_through_and_a_terminal() {
    let Some(program) = browser_or_skip() else {
        return;
    };
    let _serial = common::serial();
    let lab = lab("web2");
    let web = WebServer::start(&lab.name);
    let mut b = Browser::launch(program);
    let t0 = Instant::now();
    b.call("Page.navigate", json!({"url": web.url}), true);
    assert!(b.wait_for(
        "window.tcplab && window.tcplab.ready",
        Duration::from_secs(20)
    ));
    eprintln!(
        "page ready in {} ms (in-page: {:?} ms)",
        t0.elapsed().as_millis(),
        b.eval("tcplab.readyAt")
    );
    every_node_and_link_is_drawn(&mut b);
    assert!(
        b.wait_for("tcplab.status && tcplab.status.up", Duration::from_secs(10)),
        "status up"
    );
    b.screenshot("topology.png");
    a_ping_crosses_the_right_links(&mut b, &lab);
    the_live_recording_steps_too(&mut b);
    a_cut_line_is_drawn_cut_until_restored(&mut b, &lab);
    a_step_through_hop_by_hop_shows_the_changed_fields(&mut b);
    a_terminal_runs_a_command(&mut b);
}

fn every_node_and_link_is_drawn(b: &mut Browser) {
    let hosts = b.eval(
        "[...document.querySelectorAll('#topo g.host title')].map(t => t.textContent).sort()",
    );
    let mut want: Vec<&str> = common::NODES.to_vec();
    want.sort();
    assert_eq!(hosts, json!(want), "every node drawn");
    let lans = b
        .eval("[...document.querySelectorAll('#topo g.lan title')].map(t => t.textContent).sort()");
    assert_eq!(lans, json!(["net1", "net2"]));
    let lines = b.eval("document.querySelectorAll('#topo g.link').length");
    assert_eq!(lines, json!(2), "the SLIP line and the dial-up line");
}

fn a_ping_crosses_the_right_links(b: &mut Browser, lab: &Lab) {
    // Let every node's capture start (the supervisor looks every 2 s).
    std::thread::sleep(Duration::from_secs(3));
    let out = lab.exec(
        "slip",
        &[
            "ping",
            "-n",
            "-c",
            "2",
            "-i",
            "0.3",
            "-W",
            "5",
            "140.252.1.92",
        ],
    );
    assert!(out.ok(), "{}", out.describe());
    let want = [
        ("slip:slipside", "slip", "bsdi"),
        ("bsdi:eth1", "bsdi", "sun"),
        ("sun:sunside", "sun", "netb"),
        ("netb:eth1", "netb", "aix"),
    ];
    for (port, from, to) in want {
        let expr = format!(
            "tcplab.events.some(e => e.link === portLink('{port}') && e.from === '{from}' \
             && e.to.includes('{to}') && e.summary.includes('echo request'))"
        );
        assert!(
            b.wait_for(&expr, Duration::from_secs(5)),
            "no echo request {from} -> {to} on {port}'s link: {}",
            b.eval("JSON.stringify(tcplab.events.map(e => [e.link, e.from, e.to, e.summary]))")
        );
        let back = format!(
            "tcplab.events.some(e => e.link === portLink('{port}') && e.from === '{to}' \
             && e.to.includes('{from}') && e.summary.includes('echo reply'))"
        );
        assert!(
            b.wait_for(&back, Duration::from_secs(5)),
            "no echo reply {to} -> {from}"
        );
    }
    b.screenshot("live-ping.png");
    pause_and_filter(b, lab);
}

fn pause_and_filter(b: &mut Browser, lab: &Lab) {
    let ping = || {
        lab.exec(
            "slip",
            &["ping", "-n", "-c", "1", "-W", "5", "140.252.1.92"],
        )
    };
    b.eval("document.getElementById('pause').click(); true");
    let before = b.eval("tcplab.events.length");
    assert!(ping().ok());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        b.eval("tcplab.events.length"),
        before,
        "paused, nothing taken"
    );
    b.eval("document.getElementById('pause').click(); document.getElementById('log').innerHTML = ''; document.getElementById('fproto').value = 'arp'; true");
    // Echo requests and replies are taken but not listed: only ARP is.
    assert!(ping().ok());
    assert!(b.wait_for(
        &format!("tcplab.events.length > {before} && tcplab.events.slice({before}).some(e => e.proto === 'icmp')"),
        Duration::from_secs(5)
    ));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        b.eval(
            "[...document.querySelectorAll('#log div')].filter(d => d.className !== 'p-arp').length"
        ),
        json!(0),
        "the filter lets only ARP through"
    );
    b.eval("document.getElementById('fproto').value = ''; true");
}

fn a_cut_line_is_drawn_cut_until_restored(b: &mut Browser, lab: &Lab) {
    let cut = "document.getElementById(portLink('slip:slipside')).classList.contains('cut')";
    assert_eq!(b.eval(cut), json!(false));
    let out = lab.tcplab(&["-q", "link", "down", "slip", "bsdi"]);
    assert!(out.ok(), "{}", out.describe());
    assert!(
        b.wait_for(cut, Duration::from_secs(10)),
        "the SLIP line is not drawn cut"
    );
    b.screenshot("line-cut.png");
    let out = lab.tcplab(&["-q", "link", "up", "slip", "bsdi"]);
    assert!(out.ok(), "{}", out.describe());
    assert!(
        b.wait_for(&format!("!{cut}"), Duration::from_secs(10)),
        "the SLIP line is still drawn cut"
    );
}

/// Steps forward through the loaded recording to a datagram that routers forwarded, and
/// checks that the hops show what a router changes.
fn step_to_a_forwarded_datagram(b: &mut Browser) {
    assert!(b.wait_for(
        "tcplab.step.rec && tcplab.step.rec.events.length > 0",
        Duration::from_secs(10)
    ));
    let mut found = false;
    for _ in 0..200 {
        b.eval("document.getElementById('stepnext').click(); true");
        let hop = "tcplab.step.event.changed.length > 0 && tcplab.step.event.hops.length >= 3";
        if b.eval(hop) == json!(true) {
            found = true;
            break;
        }
    }
    assert!(found, "no forwarded datagram in the recording");
    let changed = b.eval(
        "[...new Set([...document.querySelectorAll('#hoptable td.changed')].map(td => td.dataset.field))].sort()",
    );
    assert_eq!(
        changed,
        json!(["Ethernet.dst", "Ethernet.src", "IPv4.TTL", "IPv4.checksum"]),
        "what a router changes"
    );
    let current = b.eval("document.querySelector('#topo g.current').id === tcplab.step.event.link");
    assert_eq!(
        current,
        json!(true),
        "the current packet's link is highlighted"
    );
}

fn the_live_recording_steps_too(b: &mut Browser) {
    b.eval("tab('step'); document.getElementById('stepsrc').value = 'live'; document.getElementById('stepdir').value = ''; document.getElementById('stepload').click(); true");
    step_to_a_forwarded_datagram(b);
    b.screenshot("step-live.png");
}

fn a_step_through_hop_by_hop_shows_the_changed_fields(b: &mut Browser) {
    b.eval("tab('exp'); document.querySelector('button[data-run=\"hop-by-hop\"]').click(); true");
    assert!(
        b.wait_for(
            "document.getElementById('jobstep')",
            Duration::from_secs(90)
        ),
        "the experiment ends: {}",
        b.eval("document.getElementById('job').innerText")
    );
    let (pass, fail) = (
        b.eval("document.querySelectorAll('#job .pass').length"),
        b.eval("document.querySelectorAll('#job .fail').length"),
    );
    assert_eq!(
        fail,
        json!(0),
        "{}",
        b.eval("document.getElementById('job').innerText")
    );
    assert!(pass.as_u64().unwrap_or(0) >= 6, "checks green: {pass}");
    b.screenshot("experiment.png");
    b.eval("document.getElementById('jobstep').click(); true");
    step_to_a_forwarded_datagram(b);
    b.screenshot("step-hop-by-hop.png");
}

fn a_terminal_runs_a_command(b: &mut Browser) {
    b.eval("tab('term'); document.getElementById('termnode').value = 'bsdi'; document.getElementById('termopen').click(); true");
    assert!(b.wait_for(
        "tcplab.term && tcplab.term.ws.readyState === 1",
        Duration::from_secs(10)
    ));
    std::thread::sleep(Duration::from_millis(500));
    b.eval("tcplab.term.vt.onData('echo web-$((6*7)); ip -br addr show eth1\\r'); true");
    assert!(
        b.wait_for(
            "tcplab.term.vt.text().includes('web-42') && tcplab.term.vt.text().includes('140.252.13.35')",
            Duration::from_secs(10)
        ),
        "the terminal shows: {}",
        b.eval("tcplab.term.vt.text()")
    );
    // Keys typed on the page go through the terminal's own key handling.
    b.eval("document.getElementById('term').focus(); true");
    for ch in "echo typed-$((2+3))".chars() {
        let t = ch.to_string();
        b.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyDown", "key": t, "text": t}),
            true,
        );
    }
    b.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}),
        true,
    );
    assert!(
        b.wait_for(
            "tcplab.term.vt.text().includes('typed-5')",
            Duration::from_secs(10)
        ),
        "typed keys ran nothing: {}",
        b.eval("tcplab.term.vt.text()")
    );
    b.screenshot("terminal.png");
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The numbers of the closing note, under ping load on the top LAN: run with
/// `cargo test --test web -- --ignored --nocapture` (TCPLAB_WEB_PROGRAM=path/to/release/tcplab
/// measures a release server).
#[test]
#[ignore = "a measurement, not a check: prints page load, events/s, lag and CPU under load"]
fn numbers_under_load() {
    let Some(program) = browser_or_skip() else {
        return;
    };
    let _serial = common::serial();
    let lab = lab("web2");
    let web = WebServer::start(&lab.name);
    let mut b = Browser::launch(program);
    let t0 = Instant::now();
    b.call("Page.navigate", json!({"url": web.url}), true);
    assert!(b.wait_for(
        "window.tcplab && window.tcplab.ready",
        Duration::from_secs(20)
    ));
    eprintln!("page load: {} ms to ready", t0.elapsed().as_millis());
    std::thread::sleep(Duration::from_secs(3));
    let idle0 = cpu_seconds(web.child.id());
    std::thread::sleep(Duration::from_secs(5));
    eprintln!(
        "server CPU idle: {:.1} %",
        (cpu_seconds(web.child.id()) - idle0) / 5.0 * 100.0
    );
    for (rate, pings) in [(1_000u32, 1u32), (10_000, 8)] {
        b.eval("tcplab.wire = 0; tcplab.received = 0; tcplab.drawn = 0; tcplab.skippedDots = 0; tcplab.maxGapMs = 0; tcplab.lagMs = []; tcplab.folded = 0; true");
        let cpu0 = cpu_seconds(web.child.id());
        let t = Instant::now();
        // Each ping sends an echo request every ms (and gets the reply): 2,000 frames/s each.
        let n = rate / 2 / pings;
        let script = format!(
            "for i in $(seq {pings}); do ping -q -n -i {} -c {} 140.252.1.32 >/dev/null & done; wait",
            1.0 / f64::from(n),
            n * 8
        );
        let out = lab.exec_t("aix", &["sh", "-c", &script], Duration::from_secs(60));
        assert!(out.ok(), "{}", out.describe());
        std::thread::sleep(Duration::from_millis(500));
        let secs = t.elapsed().as_secs_f64();
        let cpu = (cpu_seconds(web.child.id()) - cpu0) / secs * 100.0;
        let v = b.eval(
            "(() => { const l = tcplab.lagMs.slice().sort((a, b) => a - b); \
             return {wire: tcplab.wire, received: tcplab.received, drawn: tcplab.drawn, \
             skipped: tcplab.skippedDots, folded: tcplab.folded, dropped: tcplab.dropped, \
             maxGap: tcplab.maxGapMs, lag50: l[Math.floor(l.length / 2)], \
             lag95: l[Math.floor(l.length * 0.95)]}; })()",
        );
        eprintln!(
            "target {rate} frames/s: wire {:.0}/s seen, page got {:.0} events/s (drew {:.0} dots/s, \
             {} folded into counts), lag median {} ms p95 {} ms, longest frame gap {} ms, \
             server CPU {cpu:.1} %, aggregator drops {}",
            v["wire"].as_f64().unwrap_or(0.0) / secs,
            v["received"].as_f64().unwrap_or(0.0) / secs,
            v["drawn"].as_f64().unwrap_or(0.0) / secs,
            v["folded"],
            v["lag50"],
            v["lag95"],
            v["maxGap"],
            v["dropped"]
        );
        b.screenshot(&format!("load-{rate}.png"));
    }
}
