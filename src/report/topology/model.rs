//! The [`Graph`] resolved for drawing ([`Topo`]): every host name turned into an index,
//! every text cleaned and shortened, each host's addresses, LANs and links collected.

use super::{Graph, GraphPort, MAX_ADDR_LINES, NAME_COLS, PORT_FS};
use crate::report::text::{clean, clip, lines_w, shown_name, text_w};
use std::collections::BTreeMap;

/// A port's text, cleaned and shortened.
#[derive(Clone, Default)]
pub(in crate::report) struct PortText {
    /// The interface name.
    pub(in crate::report) iface: String,
    /// The address, empty when there is none.
    pub(in crate::report) addr: String,
}

impl PortText {
    fn new(p: &GraphPort) -> Self {
        PortText {
            iface: clip(clean(&p.interface).trim(), 24),
            addr: p
                .address
                .as_deref()
                .map(|a| clip(clean(a).trim(), 43))
                .unwrap_or_default(),
        }
    }

    /// Interface name and address, each on a line of its own (none for empty ones).
    pub(in crate::report) fn lines(&self) -> Vec<String> {
        [&self.iface, &self.addr]
            .into_iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect()
    }

    /// Interface name and address on one line.
    fn one_line(&self) -> String {
        self.lines().join(" ")
    }
}

/// A host: its name in full and as shown, and what it is attached to.
pub(in crate::report) struct Host {
    /// The name as given (for tooltips and DOT).
    pub(in crate::report) full: String,
    /// The name as drawn: cleaned, shortened, `?` when empty.
    pub(in crate::report) name: String,
    /// Whether it forwards IPv4.
    pub(in crate::report) router: bool,
    /// Its addresses, each once, in the order its ports name them.
    pub(in crate::report) addrs: Vec<String>,
    /// The LANs it is on.
    pub(in crate::report) lans: Vec<usize>,
    /// Its point-to-point links.
    pub(in crate::report) links: Vec<usize>,
}

/// A LAN: its name, its subnet, and its members with their ports on it.
pub(in crate::report) struct Lan {
    /// Name, cleaned and shortened.
    pub(in crate::report) name: String,
    /// Subnet, cleaned and shortened.
    pub(in crate::report) subnet: String,
    /// Member hosts in order, each once, with its ports on the LAN.
    pub(in crate::report) members: Vec<(usize, Vec<PortText>)>,
}

/// A point-to-point link between hosts `a` and `b`.
pub(in crate::report) struct Link {
    /// Name, cleaned and shortened.
    pub(in crate::report) name: String,
    /// Host at end a.
    pub(in crate::report) a: usize,
    /// Host at end b.
    pub(in crate::report) b: usize,
    /// Port text of end a.
    pub(in crate::report) pa: PortText,
    /// Port text of end b.
    pub(in crate::report) pb: PortText,
}

impl Link {
    /// The host at the other end from `h`.
    pub(in crate::report) fn other(&self, h: usize) -> usize {
        if self.a == h { self.b } else { self.a }
    }

    /// Port text of host `h`'s end (end a for a link from a host to itself).
    pub(in crate::report) fn port_of(&self, h: usize) -> &PortText {
        if self.a == h { &self.pa } else { &self.pb }
    }
}

/// A [`Graph`] with every name resolved to an index and every text cleaned.
pub(in crate::report) struct Topo {
    /// Listed hosts first, then hosts named only by ports, as they appear.
    pub(in crate::report) hosts: Vec<Host>,
    /// The LANs, in the graph's order.
    pub(in crate::report) lans: Vec<Lan>,
    /// The links, in the graph's order.
    pub(in crate::report) links: Vec<Link>,
}

impl Topo {
    /// `g` resolved.
    pub(in crate::report) fn new(g: &Graph) -> Self {
        let mut t = Topo {
            hosts: Vec::new(),
            lans: Vec::new(),
            links: Vec::new(),
        };
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for h in &g.hosts {
            let i = t.host_id(&mut index, &h.name);
            t.hosts[i].router |= h.router;
        }
        for lan in &g.lans {
            t.add_lan(&mut index, lan);
        }
        for l in &g.links {
            t.add_link(&mut index, &l.name, &l.a, &l.b);
        }
        t
    }

    fn add_lan(&mut self, index: &mut BTreeMap<String, usize>, lan: &super::GraphLan) {
        let li = self.lans.len();
        let mut members: Vec<(usize, Vec<PortText>)> = Vec::new();
        for p in &lan.members {
            let h = self.host_id(index, &p.host);
            let pt = PortText::new(p);
            self.add_addr(h, &pt);
            match members.iter_mut().find(|m| m.0 == h) {
                Some(m) => m.1.push(pt),
                None => members.push((h, vec![pt])),
            }
            if !self.hosts[h].lans.contains(&li) {
                self.hosts[h].lans.push(li);
            }
        }
        self.lans.push(Lan {
            name: clip(clean(&lan.name).trim(), NAME_COLS),
            subnet: clip(clean(&lan.subnet).trim(), 43),
            members,
        });
    }

    fn add_link(
        &mut self,
        index: &mut BTreeMap<String, usize>,
        name: &str,
        a: &GraphPort,
        b: &GraphPort,
    ) {
        let k = self.links.len();
        let (ha, hb) = (self.host_id(index, &a.host), self.host_id(index, &b.host));
        let (pa, pb) = (PortText::new(a), PortText::new(b));
        self.add_addr(ha, &pa);
        self.add_addr(hb, &pb);
        self.hosts[ha].links.push(k);
        if hb != ha {
            self.hosts[hb].links.push(k);
        }
        self.links.push(Link {
            name: clip(clean(name).trim(), NAME_COLS),
            a: ha,
            b: hb,
            pa,
            pb,
        });
    }

    fn host_id(&mut self, index: &mut BTreeMap<String, usize>, name: &str) -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        self.hosts.push(Host {
            full: name.to_string(),
            name: shown_name(name, NAME_COLS),
            router: false,
            addrs: Vec::new(),
            lans: Vec::new(),
            links: Vec::new(),
        });
        index.insert(name.to_string(), self.hosts.len() - 1);
        self.hosts.len() - 1
    }

    fn add_addr(&mut self, h: usize, p: &PortText) {
        if !p.addr.is_empty() && !self.hosts[h].addrs.contains(&p.addr) {
            self.hosts[h].addrs.push(p.addr.clone());
        }
    }

    /// The lines written in a host's box under its name.
    pub(in crate::report) fn addr_lines(&self, h: usize) -> Vec<String> {
        let a = &self.hosts[h].addrs;
        if a.len() <= MAX_ADDR_LINES {
            a.clone()
        } else {
            let mut v: Vec<String> = a[..MAX_ADDR_LINES - 1].to_vec();
            v.push(format!("+{} more", a.len() - (MAX_ADDR_LINES - 1)));
            v
        }
    }

    /// The label lines of host `h`'s drop line to LAN `lan`.
    pub(in crate::report) fn drop_lines(&self, h: usize, lan: usize) -> Vec<String> {
        self.lans[lan]
            .members
            .iter()
            .filter(|m| m.0 == h)
            .flat_map(|m| m.1.iter().flat_map(PortText::lines))
            .collect()
    }

    /// The first link between `a` and `b`, if any.
    pub(in crate::report) fn link_between(&self, a: usize, b: usize) -> Option<usize> {
        self.hosts[a].links.iter().copied().find(|&k| {
            let l = &self.links[k];
            (l.a == a && l.b == b) || (l.a == b && l.b == a)
        })
    }

    /// Room needed between two boxes joined by link `k` drawn horizontally.
    pub(in crate::report) fn link_gap(&self, k: usize) -> f64 {
        let l = &self.links[k];
        let wa = lines_w(&l.pa.lines(), PORT_FS);
        let wb = lines_w(&l.pb.lines(), PORT_FS);
        (wa + wb + 24.0)
            .max(text_w(&l.name, PORT_FS) + 16.0)
            .max(48.0)
    }

    /// One-line description of link `k`, for links not drawn between neighbouring boxes.
    pub(in crate::report) fn link_text(&self, k: usize) -> String {
        let l = &self.links[k];
        let end = |h: usize, p: &PortText| {
            let s = p.one_line();
            if s.is_empty() {
                self.hosts[h].name.clone()
            } else {
                format!("{} {s}", self.hosts[h].name)
            }
        };
        let ends = format!("{} — {}", end(l.a, &l.pa), end(l.b, &l.pb));
        let s = if l.name.is_empty() {
            ends
        } else {
            format!("{}: {ends}", l.name)
        };
        clip(&s, 100)
    }
}
