//! A minimal OpenFlow 1.0 client for a bridge's management socket
//! (`/var/run/openvswitch/BRIDGE.mgmt`, which ovs-vswitchd always listens on): HELLO, FLOW_MOD
//! (add, delete all), flow STATS and BARRIER, enough to install a lab's flow entries and to
//! dump a bridge's flow table with its counters. Nothing here spawns a process.

mod flow;

pub use flow::{FlowSpec, Match, PortRef, parse_mac, port, reserved_port_name};

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where ovs-vswitchd puts the bridges' management sockets.
pub const RUN_DIR: &str = "/var/run/openvswitch";

const VERSION: u8 = 0x01;
const OFPT_HELLO: u8 = 0;
const OFPT_ERROR: u8 = 1;
const OFPT_ECHO_REQUEST: u8 = 2;
const OFPT_ECHO_REPLY: u8 = 3;
const OFPT_FLOW_MOD: u8 = 14;
const OFPT_STATS_REQUEST: u8 = 16;
const OFPT_STATS_REPLY: u8 = 17;
const OFPT_BARRIER_REQUEST: u8 = 18;
const OFPT_BARRIER_REPLY: u8 = 19;
const OFPFC_ADD: u16 = 0;
const OFPFC_DELETE: u16 = 3;
const OFPST_FLOW: u16 = 1;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One entry of a bridge's flow table, with its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    /// Table number.
    pub table: u8,
    /// What it matches (input port as a number).
    pub matched: Match,
    /// Priority.
    pub priority: u16,
    /// Seconds since it was added.
    pub duration_sec: u32,
    /// Packets that matched it.
    pub packets: u64,
    /// Bytes that matched it.
    pub bytes: u64,
    /// Output ports of its output actions, in order (empty: drop, or other actions only).
    pub outputs: Vec<u16>,
    /// Whether it has actions other than output.
    pub other_actions: bool,
}

/// An OpenFlow connection to one bridge.
#[derive(Debug)]
pub struct OpenFlow {
    stream: UnixStream,
    socket: PathBuf,
    xid: u32,
}

/// The error of an OpenFlow exchange, one line naming the socket.
fn err(socket: &Path, what: impl std::fmt::Display) -> crate::Error {
    crate::Error::Other(format!("openflow on {}: {what}", socket.display()))
}

impl OpenFlow {
    /// Connect to bridge `bridge`'s management socket and say HELLO (OpenFlow 1.0).
    pub fn connect(bridge: &str) -> crate::Result<OpenFlow> {
        let socket = Path::new(RUN_DIR).join(format!("{bridge}.mgmt"));
        let stream = UnixStream::connect(&socket).map_err(|e| {
            err(
                &socket,
                format!("cannot connect: {e}: is ovs-vswitchd running and the bridge there?"),
            )
        })?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
        stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
        let mut of = OpenFlow {
            stream,
            socket,
            xid: 0,
        };
        of.send(OFPT_HELLO, &[])?;
        loop {
            let (t, _, _) = of.recv()?;
            if t == OFPT_HELLO {
                return Ok(of);
            }
        }
    }

    fn send(&mut self, t: u8, body: &[u8]) -> crate::Result<u32> {
        self.xid += 1;
        let len =
            u16::try_from(8 + body.len()).map_err(|_| err(&self.socket, "message too long"))?;
        let mut m = vec![VERSION, t];
        m.extend(len.to_be_bytes());
        m.extend(self.xid.to_be_bytes());
        m.extend(body);
        self.stream
            .write_all(&m)
            .map_err(|e| err(&self.socket, e))?;
        Ok(self.xid)
    }

    /// The next message (type, xid, body), answering echo requests on the way.
    fn recv(&mut self) -> crate::Result<(u8, u32, Vec<u8>)> {
        loop {
            let mut h = [0u8; 8];
            self.stream
                .read_exact(&mut h)
                .map_err(|e| err(&self.socket, format!("reading: {e}")))?;
            let len = u16::from_be_bytes([h[2], h[3]]) as usize;
            let mut body = vec![0u8; len.saturating_sub(8)];
            self.stream
                .read_exact(&mut body)
                .map_err(|e| err(&self.socket, format!("reading: {e}")))?;
            let xid = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
            match h[1] {
                OFPT_ECHO_REQUEST => {
                    self.send(OFPT_ECHO_REPLY, &body)?;
                }
                OFPT_ERROR => {
                    let (t, c) = match body.as_slice() {
                        [a, b, c, d, ..] => {
                            (u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))
                        }
                        _ => (0, 0),
                    };
                    return Err(err(
                        &self.socket,
                        format!("the switch refused a message (error type {t}, code {c})"),
                    ));
                }
                t => return Ok((t, xid, body)),
            }
        }
    }

    /// Wait until the switch has done everything sent so far.
    fn barrier(&mut self) -> crate::Result<()> {
        let xid = self.send(OFPT_BARRIER_REQUEST, &[])?;
        loop {
            let (t, x, _) = self.recv()?;
            if t == OFPT_BARRIER_REPLY && x == xid {
                return Ok(());
            }
        }
    }

    /// Add `flows`, their ports resolved by `resolve`, then wait for the switch (a refusal
    /// names the flow).
    pub fn add_flows(
        &mut self,
        flows: &[(String, FlowSpec)],
        resolve: &dyn Fn(&PortRef) -> Option<u16>,
    ) -> crate::Result<()> {
        for (text, f) in flows {
            let body = flow_mod(f, resolve)
                .map_err(|e| err(&self.socket, format!("flow '{text}': {e}")))?;
            self.send(OFPT_FLOW_MOD, &body)?;
            self.barrier()
                .map_err(|e| err(&self.socket, format!("flow '{text}': {e}")))?;
        }
        Ok(())
    }

    /// Remove every flow of every table.
    pub fn delete_all(&mut self) -> crate::Result<()> {
        let mut body = Match::default()
            .encode(&|_| None)
            .map_err(|e| err(&self.socket, e))?;
        body.extend(0u64.to_be_bytes());
        body.extend(OFPFC_DELETE.to_be_bytes());
        body.extend([0, 0, 0, 0, 0, 0]);
        body.extend(u32::MAX.to_be_bytes());
        body.extend(port::NONE.to_be_bytes());
        body.extend(0u16.to_be_bytes());
        self.send(OFPT_FLOW_MOD, &body)?;
        self.barrier()
    }

    /// Every flow of every table, with counters.
    pub fn flows(&mut self) -> crate::Result<Vec<FlowStats>> {
        let mut body = OFPST_FLOW.to_be_bytes().to_vec();
        body.extend([0, 0]);
        body.extend(
            Match::default()
                .encode(&|_| None)
                .map_err(|e| err(&self.socket, e))?,
        );
        body.extend([0xff, 0]);
        body.extend(port::NONE.to_be_bytes());
        let xid = self.send(OFPT_STATS_REQUEST, &body)?;
        let mut out = Vec::new();
        loop {
            let (t, x, b) = self.recv()?;
            if t != OFPT_STATS_REPLY || x != xid || b.len() < 4 {
                continue;
            }
            parse_flow_stats(&b[4..], &mut out)
                .ok_or_else(|| err(&self.socket, "a malformed flow stats reply"))?;
            if b[3] & 1 == 0 {
                return Ok(out);
            }
        }
    }
}

/// The body of an `OFPT_FLOW_MOD` adding `f`.
fn flow_mod(f: &FlowSpec, resolve: &dyn Fn(&PortRef) -> Option<u16>) -> Result<Vec<u8>, String> {
    let mut b = f.matched.encode(resolve)?;
    b.extend(0u64.to_be_bytes()); // cookie
    b.extend(OFPFC_ADD.to_be_bytes());
    b.extend(f.idle_timeout.to_be_bytes());
    b.extend(f.hard_timeout.to_be_bytes());
    b.extend(f.priority.to_be_bytes());
    b.extend(u32::MAX.to_be_bytes()); // buffer_id: none
    b.extend(port::NONE.to_be_bytes());
    b.extend(0u16.to_be_bytes()); // flags
    for o in &f.outputs {
        let p = resolve(o).ok_or_else(|| format!("port {o:?} has no OpenFlow port number"))?;
        b.extend(0u16.to_be_bytes()); // OFPAT_OUTPUT
        b.extend(8u16.to_be_bytes());
        b.extend(p.to_be_bytes());
        b.extend(0xffffu16.to_be_bytes()); // max_len to the controller
    }
    Ok(b)
}

/// Append the `ofp_flow_stats` entries of `b` to `out`.
fn parse_flow_stats(mut b: &[u8], out: &mut Vec<FlowStats>) -> Option<()> {
    let u16_at = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let u64_at = |b: &[u8], i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    while b.len() >= 88 {
        let len = u16_at(b, 0) as usize;
        if len < 88 || len > b.len() {
            return None;
        }
        let entry = &b[..len];
        let mut outputs = Vec::new();
        let mut other_actions = false;
        let mut a = &entry[88..];
        while a.len() >= 4 {
            let (t, l) = (u16_at(a, 0), u16_at(a, 2) as usize);
            if l < 4 || l > a.len() {
                return None;
            }
            if t == 0 && l >= 8 {
                outputs.push(u16_at(a, 4));
            } else {
                other_actions = true;
            }
            a = &a[l..];
        }
        out.push(FlowStats {
            table: entry[2],
            matched: Match::decode(&entry[4..44])?,
            duration_sec: u32::from_be_bytes(entry[44..48].try_into().ok()?),
            priority: u16_at(entry, 52),
            packets: u64_at(entry, 72),
            bytes: u64_at(entry, 80),
            outputs,
            other_actions,
        });
        b = &b[len..];
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_mod_and_stats_round_trip() {
        let f = FlowSpec::parse(
            "priority=7,in_port=h1,actions=output:h2,normal",
            &["h1", "h2"],
        )
        .unwrap();
        let resolve = |p: &PortRef| match p {
            PortRef::Node(n) => Some(if n == "h1" { 1 } else { 2 }),
            PortRef::Number(n) => Some(*n),
        };
        let m = flow_mod(&f, &resolve).unwrap();
        assert_eq!(m.len(), 64 + 16);
        // a stats entry made of the same match and actions
        let mut e = vec![0u8; 88];
        e[0..2].copy_from_slice(&(88u16 + 16).to_be_bytes());
        e[4..44].copy_from_slice(&m[..40]);
        e[52..54].copy_from_slice(&7u16.to_be_bytes());
        e[72..80].copy_from_slice(&5u64.to_be_bytes());
        e.extend(&m[64..]);
        let mut out = Vec::new();
        parse_flow_stats(&e, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].priority, out[0].packets), (7, 5));
        assert_eq!(out[0].outputs, vec![2, port::NORMAL]);
        assert_eq!(out[0].matched.in_port, Some(PortRef::Number(1)));
        assert!(parse_flow_stats(&e[..90], &mut out).is_none());
    }
}
