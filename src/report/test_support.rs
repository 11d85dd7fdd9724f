//! What the drawings' tests share: a small XML checker (well-formedness, and no text or box
//! drawn over another), and the networks and packets they draw.

use super::svg::{Graph, GraphHost, GraphLan, GraphLink, GraphPort, TimelinePacket};
use super::text::cols;

// ---------------------------------------------------------------- a tiny XML parser

/// An XML element: name, attributes (decoded), children and its own text (decoded).
#[derive(Debug)]
pub(super) struct El {
    pub(super) name: String,
    attrs: Vec<(String, String)>,
    pub(super) kids: Vec<El>,
    pub(super) text: String,
}

impl El {
    pub(super) fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.0 == k).map(|a| a.1.as_str())
    }
    pub(super) fn num(&self, k: &str) -> f64 {
        self.attr(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }
    fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a El>) {
        if self.name == name {
            out.push(self);
        }
        for k in &self.kids {
            k.all(name, out);
        }
    }
    pub(super) fn find(&self, name: &str) -> Vec<&El> {
        let mut v = Vec::new();
        self.all(name, &mut v);
        v
    }
    pub(super) fn with_class(&self, name: &str, class: &str) -> Vec<&El> {
        self.find(name)
            .into_iter()
            .filter(|e| e.attr("class") == Some(class))
            .collect()
    }
}

/// `s` with its entity references replaced; an error for any malformed or unknown one.
fn decode(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let r = &rest[i + 1..];
        let j = r
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {s:?}"))?;
        let ent = &r[..j];
        let c = match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = ent.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("bad entity &{ent};"))?
            }
        };
        out.push(c);
        rest = &r[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn xml_char_ok(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

fn name_at(s: &str) -> String {
    s.chars()
        .take_while(|&c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .collect()
}

/// Parses a whole document, checking well-formedness: one root, balanced tags, quoted
/// and unique attributes, no `<` in attribute values, valid entities, valid characters.
pub(super) fn parse_xml(s: &str) -> Result<El, String> {
    if let Some(c) = s.chars().find(|&c| !xml_char_ok(c)) {
        return Err(format!("character not allowed in XML: {:?}", c));
    }
    let mut stack: Vec<El> = Vec::new();
    let mut root: Option<El> = None;
    let mut i = 0;
    while i < s.len() {
        let r = &s[i..];
        if r.starts_with("<?") {
            if !stack.is_empty() || root.is_some() {
                return Err("processing instruction outside the prolog".into());
            }
            i += r.find("?>").ok_or("unterminated <?")? + 2;
        } else if r.starts_with("<!--") {
            i += r.find("-->").ok_or("unterminated comment")? + 3;
        } else if r.starts_with("<!") {
            return Err("unexpected <! declaration".into());
        } else if let Some(after) = r.strip_prefix("</") {
            let name = name_at(after);
            let rest = after[name.len()..].trim_start();
            if !rest.starts_with('>') {
                return Err(format!("bad end tag </{name}"));
            }
            i += 2 + name.len() + (after.len() - name.len() - rest.len()) + 1;
            let el = stack
                .pop()
                .ok_or_else(|| format!("end tag </{name}> without start"))?;
            if el.name != name {
                return Err(format!("</{name}> closes <{}>", el.name));
            }
            match stack.last_mut() {
                Some(p) => p.kids.push(el),
                None if root.is_none() => root = Some(el),
                None => return Err("two root elements".into()),
            }
        } else if let Some(after) = r.strip_prefix('<') {
            if stack.is_empty() && root.is_some() && !name_at(after).is_empty() {
                return Err("two root elements".into());
            }
            let (el, j, closed) = parse_start_tag(s, i)?;
            i = j;
            if closed {
                match stack.last_mut() {
                    Some(p) => p.kids.push(el),
                    None => root = Some(el),
                }
            } else {
                stack.push(el);
            }
        } else {
            let end = r.find('<').unwrap_or(r.len());
            let text = &r[..end];
            if text.contains("]]>") {
                return Err("]]> in text".into());
            }
            let d = decode(text)?;
            match stack.last_mut() {
                Some(p) => p.text.push_str(&d),
                None if d.trim().is_empty() => {}
                None => return Err(format!("text outside the root: {:?}", d)),
            }
            i += end;
        }
    }
    if let Some(el) = stack.last() {
        return Err(format!("<{}> not closed", el.name));
    }
    root.ok_or_else(|| "no root element".to_string())
}

/// The start tag at `s[i..]` (which begins with `<`): the element with its attributes, where
/// the tag ends, and whether it closes itself (`/>`).
fn parse_start_tag(s: &str, i: usize) -> Result<(El, usize, bool), String> {
    let name = name_at(&s[i + 1..]);
    if name.is_empty() {
        return Err(format!("bad tag at {i}"));
    }
    let mut el = El {
        name,
        attrs: Vec::new(),
        kids: Vec::new(),
        text: String::new(),
    };
    let mut j = i + 1 + el.name.len();
    loop {
        let rest = &s[j..];
        let t = rest.trim_start();
        let ws = rest.len() - t.len();
        j += ws;
        if t.starts_with("/>") {
            return Ok((el, j + 2, true));
        }
        if t.starts_with('>') {
            return Ok((el, j + 1, false));
        }
        if ws == 0 {
            return Err(format!("no space before attribute in <{}>", el.name));
        }
        let an = name_at(t);
        if an.is_empty() {
            return Err(format!(
                "bad attribute in <{}>: {:?}",
                el.name,
                &t[..t.len().min(20)]
            ));
        }
        let t2 = t[an.len()..].trim_start();
        let t2 = t2
            .strip_prefix('=')
            .ok_or_else(|| format!("attribute {an} without ="))?
            .trim_start();
        let q = t2.chars().next().ok_or("end of input in tag")?;
        if q != '"' && q != '\'' {
            return Err(format!("attribute {an} not quoted"));
        }
        let end = t2[1..]
            .find(q)
            .ok_or_else(|| format!("attribute {an} unterminated"))?;
        let raw = &t2[1..1 + end];
        if raw.contains('<') {
            return Err(format!("< in attribute {an}"));
        }
        if el.attrs.iter().any(|a| a.0 == an) {
            return Err(format!("duplicate attribute {an}"));
        }
        el.attrs.push((an, decode(raw)?));
        j = s.len() - (t2.len() - end - 2);
    }
}

#[test]
fn the_xml_checker_rejects_broken_documents() {
    assert!(parse_xml("<a><b></b></a>").is_ok());
    assert!(parse_xml("<a x=\"1\" y='2'>t &amp; &#60; &#x3C;</a>").is_ok());
    for bad in [
        "<a><b></a></b>",
        "<a>",
        "<a x=1/>",
        "<a x=\"1\"y=\"2\"/>",
        "<a x=\"1\" x=\"2\"/>",
        "<a>&nbsp;</a>",
        "<a>& </a>",
        "<a x=\"<\"/>",
        "<a/><b/>",
        "text<a/>",
        "</a>",
        "<a>\u{1}</a>",
    ] {
        assert!(parse_xml(bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------- checks on drawings

/// Parses an SVG document and checks what every drawing must have.
pub(super) fn check_svg(s: &str) -> El {
    let root = parse_xml(s).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{s}"));
    assert_eq!(root.name, "svg");
    assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2000/svg"));
    assert_eq!(root.attr("version"), Some("1.1"));
    assert!(
        root.kids.first().is_some_and(|k| k.name == "title"),
        "first child must be <title>"
    );
    for (k, v) in [("width", root.num("width")), ("height", root.num("height"))] {
        assert!(v.is_finite() && v > 0.0, "{k} = {v}");
    }
    for t in root.find("text") {
        let fs = t.num("font-size");
        assert!(fs >= 12.0, "font-size {fs} < 12 for {:?}", t.text);
    }
    assert!(
        !s.contains("NaN") && !s.contains("inf"),
        "non-finite number in output"
    );
    root
}

#[derive(Debug)]
pub(super) struct Bx {
    pub(super) x0: f64,
    y0: f64,
    pub(super) x1: f64,
    y1: f64,
    pub(super) what: String,
}

fn overlap(a: &Bx, b: &Bx) -> bool {
    a.x0 < b.x1 - 0.5 && b.x0 < a.x1 - 0.5 && a.y0 < b.y1 - 0.5 && b.y0 < a.y1 - 0.5
}

fn inside(a: &Bx, b: &Bx) -> bool {
    a.x0 >= b.x0 && a.x1 <= b.x1 && a.y0 >= b.y0 && a.y1 <= b.y1
}

/// Ink boxes of every text (DejaVu Sans Mono metrics: 0.602 em advance).
pub(super) fn text_boxes(root: &El) -> Vec<Bx> {
    root.find("text")
        .into_iter()
        .map(|t| {
            let (x, y, fs) = (t.num("x"), t.num("y"), t.num("font-size"));
            let w = cols(&t.text) as f64 * fs * 0.602;
            let x0 = match t.attr("text-anchor") {
                Some("middle") => x - w / 2.0,
                Some("end") => x - w,
                _ => x,
            };
            Bx {
                x0,
                y0: y - 0.76 * fs,
                x1: x0 + w,
                y1: y + 0.24 * fs,
                what: t.text.clone(),
            }
        })
        .collect()
}

fn rect_boxes(root: &El, class: &str) -> Vec<Bx> {
    root.with_class("rect", class)
        .into_iter()
        .map(|r| {
            let (x, y) = (r.num("x"), r.num("y"));
            Bx {
                x0: x,
                y0: y,
                x1: x + r.num("width"),
                y1: y + r.num("height"),
                what: class.into(),
            }
        })
        .collect()
}

/// No two texts overlap; a text is inside a host box or clear of all of them; host
/// boxes do not overlap; everything is on the canvas.
pub(super) fn assert_no_overlap(root: &El) {
    let texts = text_boxes(root);
    let boxes = rect_boxes(root, "box");
    let (w, h) = (root.num("width"), root.num("height"));
    for (i, a) in texts.iter().enumerate() {
        assert!(
            a.x0 >= 0.0 && a.y0 >= 0.0 && a.x1 <= w && a.y1 <= h,
            "text off the canvas: {a:?}"
        );
        for b in &texts[i + 1..] {
            assert!(!overlap(a, b), "texts overlap: {a:?} and {b:?}");
        }
        for b in &boxes {
            assert!(!overlap(a, b) || inside(a, b), "text {a:?} over box {b:?}");
        }
    }
    for (i, a) in boxes.iter().enumerate() {
        assert!(
            a.x0 >= 0.0 && a.y0 >= 0.0 && a.x1 <= w && a.y1 <= h,
            "box off the canvas: {a:?}"
        );
        for b in &boxes[i + 1..] {
            assert!(!overlap(a, b), "boxes overlap: {a:?} and {b:?}");
        }
    }
}

// ---------------------------------------------------------------- inputs

pub(super) fn port(host: &str, interface: &str, address: Option<&str>) -> GraphPort {
    GraphPort {
        host: host.into(),
        interface: interface.into(),
        address: address.map(Into::into),
    }
}

pub(super) fn course() -> Graph {
    let routers = ["bsdi", "sun", "netb", "gateway"];
    let names = [
        "aix", "solaris", "gemini", "gateway", "netb", "sun", "svr4", "bsdi", "slip",
    ];
    Graph {
        title: "course lab".into(),
        hosts: names
            .iter()
            .map(|n| GraphHost {
                name: (*n).into(),
                router: routers.contains(n),
            })
            .collect(),
        lans: vec![
            GraphLan {
                name: "net1".into(),
                subnet: "140.252.1.0/24".into(),
                members: vec![
                    port("aix", "eth1", Some("140.252.1.92")),
                    port("solaris", "eth1", Some("140.252.1.32")),
                    port("gemini", "eth1", Some("140.252.1.11")),
                    port("gateway", "eth1", Some("140.252.1.4")),
                    port("netb", "eth1", Some("140.252.1.183")),
                ],
            },
            GraphLan {
                name: "net2".into(),
                subnet: "140.252.13.32/27".into(),
                members: vec![
                    port("bsdi", "eth1", Some("140.252.13.35")),
                    port("sun", "eth1", Some("140.252.13.33")),
                    port("svr4", "eth1", Some("140.252.13.34")),
                ],
            },
        ],
        links: vec![
            GraphLink {
                name: "slip-bsdi".into(),
                a: port("slip", "slipside", Some("140.252.13.65/27")),
                b: port("bsdi", "bsdiside", Some("140.252.13.66/27")),
            },
            GraphLink {
                name: "sun-netb".into(),
                a: port("sun", "sunside", Some("140.252.1.29/24")),
                b: port("netb", "netbside", None),
            },
        ],
    }
}

/// `lans` LANs of `per` hosts chained by routers, dial-in hosts, a line inside a LAN, a
/// line from the first LAN to the last, an isolated host.
pub(super) fn stress(lans: usize, per: usize) -> Graph {
    let mut g = Graph {
        title: format!("{lans} x {per}"),
        ..Graph::default()
    };
    for l in 0..lans {
        let mut members = Vec::new();
        for i in 0..per {
            let name = format!("h{l}-{i}");
            g.hosts.push(GraphHost {
                name: name.clone(),
                router: false,
            });
            members.push(port(&name, "eth0", Some(&format!("10.{l}.0.{}", i + 1))));
        }
        if l > 0 {
            let r = format!("r{l}");
            g.hosts.push(GraphHost {
                name: r.clone(),
                router: true,
            });
            g.lans[l - 1]
                .members
                .push(port(&r, "eth0", Some(&format!("10.{}.0.254", l - 1))));
            members.push(port(&r, "eth1", Some(&format!("10.{l}.0.254"))));
        }
        g.lans.push(GraphLan {
            name: format!("lan{l}"),
            subnet: format!("10.{l}.0.0/24"),
            members,
        });
        if l % 2 == 0 {
            g.links.push(GraphLink {
                name: format!("slip{l}"),
                a: port(&format!("h{l}-0"), "sl0", Some("192.168.0.1")),
                b: port(&format!("dialin{l}"), "sl0", Some("192.168.0.2")),
            });
        }
    }
    if lans > 1 && per > 2 {
        g.links.push(GraphLink {
            name: "cross".into(),
            a: port("h0-1", "eth9", None),
            b: port("h0-2", "eth9", None),
        });
        let last = format!("h{}-1", lans - 1);
        g.links.push(GraphLink {
            name: "far".into(),
            a: port("h0-1", "eth8", None),
            b: port(&last, "eth8", None),
        });
    }
    g.hosts.push(GraphHost {
        name: "lonely".into(),
        router: false,
    });
    g
}

pub(super) fn pkt(time: f64, from: &str, to: &str, label: &str) -> TimelinePacket {
    TimelinePacket {
        time,
        from: from.into(),
        to: to.into(),
        label: label.into(),
    }
}

pub(super) fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub(super) fn handshake() -> Vec<TimelinePacket> {
    vec![
        pkt(0.0, "bsdi", "*", "arp who-has svr4 tell bsdi"),
        pkt(
            0.001201,
            "svr4",
            "bsdi",
            "arp reply svr4 is-at 0:0:c0:c2:9b:26",
        ),
        pkt(
            0.001843,
            "bsdi",
            "svr4",
            "S 1415531521:1415531521(0) win 4096 <mss 1024>",
        ),
        pkt(
            0.004245,
            "svr4",
            "bsdi",
            "S 1823083521:1823083521(0) ack 1415531522 win 4096 <mss 1024>",
        ),
        pkt(0.009067, "bsdi", "svr4", ". ack 1823083522 win 4096"),
        pkt(
            1.523872,
            "bsdi",
            "svr4",
            "P 1415531522:1415531523(1) ack 1823083522 win 4096",
        ),
        pkt(
            4.157284,
            "bsdi",
            "svr4",
            "F 1415531523:1415531523(0) ack 1823083522 win 4096",
        ),
        pkt(4.158590, "svr4", "bsdi", ". ack 1415531524 win 4096"),
        pkt(
            4.159987,
            "svr4",
            "bsdi",
            "F 1823083522:1823083522(0) ack 1415531524 win 4096",
        ),
        pkt(4.182505, "bsdi", "svr4", ". ack 1823083523 win 4096"),
    ]
}

/// A network of odd names (empty, very long, wide characters, control characters), odd
/// LANs (empty, one host on three ports) and odd lines (to itself, parallel, chains).
pub(super) fn odd_graph() -> Graph {
    let long = "n".repeat(3000);
    Graph {
        title: "\u{0}\u{1b}[31m".repeat(100),
        hosts: vec![
            GraphHost {
                name: long.clone(),
                router: true,
            },
            GraphHost {
                name: long.clone(),
                router: false,
            },
            GraphHost {
                name: String::new(),
                router: false,
            },
            GraphHost {
                name: "漢字のホスト".into(),
                router: false,
            },
        ],
        lans: vec![
            GraphLan {
                name: String::new(),
                subnet: String::new(),
                members: vec![],
            },
            GraphLan {
                name: long.clone(),
                subnet: long.clone(),
                members: vec![
                    port(&long, &long, Some(&long)),
                    port(&long, "second", None),
                    port("", "", Some("")),
                    port("漢字のホスト", "eth0", Some("::1/128")),
                    port("on-both", "e0", Some("10.0.0.1")),
                ],
            },
            GraphLan {
                name: "other".into(),
                subnet: "10.9.0.0/16".into(),
                members: vec![port("on-both", "e1", None), port("on-both", "e2", None)],
            },
            GraphLan {
                name: "third".into(),
                subnet: "x".into(),
                members: vec![port("t1", "e1", None), port("on-both", "e3", None)],
            },
        ],
        links: vec![
            GraphLink {
                name: "self".into(),
                a: port("x", "a", None),
                b: port("x", "b", None),
            },
            GraphLink {
                name: "chain1".into(),
                a: port("x", "c", None),
                b: port("y", "d", None),
            },
            GraphLink {
                name: "dup".into(),
                a: port("x", "c", None),
                b: port("y", "d", None),
            },
            GraphLink {
                name: "to-lan".into(),
                a: port("y", "e", None),
                b: port("漢字のホスト", "f", None),
            },
            GraphLink {
                name: long.clone(),
                a: port(&long, &long, Some(&long)),
                b: port("t1", &long, Some(&long)),
            },
            GraphLink {
                name: "loop-on-lan".into(),
                a: port("t1", "l", None),
                b: port("t1", "m", None),
            },
        ],
    }
}
