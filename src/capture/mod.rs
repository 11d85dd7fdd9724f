//! Native packet capture inside a lab node's network namespace.
//!
//! One `AF_PACKET` socket per interface, each opened from a short-lived
//! thread that entered the namespace (the caller's thread never changes
//! namespace; a socket stays tied to the namespace it was opened in), bound to
//! the interface with `ETH_P_ALL`, so that incoming and outgoing packets are
//! each seen once. Packets are read from a `TPACKET_V3` ring shared with the
//! kernel (kernel timestamps in nanoseconds, drop counts from
//! `PACKET_STATISTICS`), merged across interfaces in timestamp order, written
//! as pcap (one interface) or pcapng (several, one interface block each), and
//! handed decoded to a callback that typically prints the tcpdump-style line.
//!
//! ```no_run
//! # use std::sync::atomic::AtomicBool;
//! # use tcplab::capture::{run, CaptureSpec, Sink};
//! let spec = CaptureSpec {
//!     netns: Some("/run/netns/tcplab-tcpip-bsdi".into()),
//!     count: Some(10),
//!     ..CaptureSpec::default()
//! };
//! let stop = AtomicBool::new(false);
//! let summary = run(&spec, Sink::File("bsdi.pcapng".into()), &stop, &mut |iface, pkt, _ts| {
//!     eprintln!("{iface} {pkt}");
//! })?;
//! eprintln!("{} packets captured, {} dropped", summary.packets, summary.dropped);
//! # Ok::<(), tcplab::capture::CaptureError>(())
//! ```

pub mod decode;
pub mod pcap;

pub use decode::{Packet, decode};
pub use pcap::{Format, Record, read_file};

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sched::{CloneFlags, setns};

use pcap::{InterfaceStats, PcapWriter, PcapngWriter, TsResolution};

/// Size of one ring block; a packet (up to the snap length) must fit in one.
const BLOCK_SIZE: usize = 1 << 20;
/// Ring memory per interface.
const RING_BYTES: usize = 32 << 20;
/// A block is handed to user space at the latest this long after it got its
/// first packet (the delay a live display can show).
const BLOCK_TIMEOUT_MS: u32 = 50;
/// Longest a packet waits for possibly older packets of another interface
/// (whose kernel-side block already holds packets) before it is written;
/// longer than a block's timeout.
const MERGE_WINDOW_NS: u64 = (BLOCK_TIMEOUT_MS as u64 + 50) * 1_000_000;
/// After a stop or the end of the duration, how long to wait for the last
/// blocks to be handed over.
const GRACE: Duration = Duration::from_millis(2 * BLOCK_TIMEOUT_MS as u64 + 50);
/// Output buffer size.
const OUT_BUFFER: usize = 64 << 10;
/// How often to check that the interfaces still exist.
const GONE_CHECK: Duration = Duration::from_millis(250);
/// Upper bound on one wait, so that `stop` is seen quickly.
const POLL_MS: u64 = 50;
/// Largest snap length accepted; 0 also means this.
pub const MAX_SNAPLEN: u32 = pcap::DEFAULT_SNAPLEN;

/// What to capture, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// The network namespace (e.g. `/run/netns/tcplab-tcpip-bsdi`); `None`
    /// captures in the caller's current namespace.
    pub netns: Option<PathBuf>,
    /// Interfaces to capture on; empty means all of the namespace's
    /// interfaces except `lo`.
    pub interfaces: Vec<String>,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Bytes kept of each packet; 0 means [`MAX_SNAPLEN`] (tcpdump's default).
    pub snaplen: u32,
}

impl Default for CaptureSpec {
    fn default() -> Self {
        CaptureSpec {
            netns: None,
            interfaces: Vec::new(),
            count: None,
            duration: None,
            snaplen: MAX_SNAPLEN,
        }
    }
}

/// Where the capture file goes.
pub enum Sink {
    /// A file, created or truncated.
    File(PathBuf),
    /// Standard output, flushed after every packet (for `-w - | wireshark -k -i -`).
    Stdout,
    /// Any writer (buffered here, flushed at the end).
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::File(p) => f.debug_tuple("File").field(p).finish(),
            Sink::Stdout => f.write_str("Stdout"),
            Sink::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

impl Sink {
    fn describe(&self) -> String {
        match self {
            Sink::File(p) => p.display().to_string(),
            Sink::Stdout => "standard output".into(),
            Sink::Writer(_) => "the output writer".into(),
        }
    }
}

/// What a finished capture did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Packets written to the file (and passed to the callback).
    pub packets: u64,
    /// Packets the kernel dropped because the capture did not keep up.
    pub dropped: u64,
    /// The interfaces captured on, in file order.
    pub interfaces: Vec<String>,
    /// The file format written.
    pub format: Format,
}

/// Why a capture could not be set up or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The namespace file does not exist.
    #[error("network namespace {} not found (is the lab up? `ip netns list` shows the namespaces)", path.display())]
    NetnsNotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The namespace could not be opened or entered.
    #[error("cannot enter network namespace {}: {source} (capturing needs root)", path.display())]
    EnterNetns {
        /// The path given.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// The interfaces of the namespace could not be listed.
    #[error("cannot list the interfaces of {ns}: {source}")]
    ListInterfaces {
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// A requested interface does not exist in the namespace.
    #[error("interface {iface} not found in {ns} (its interfaces: {available})")]
    InterfaceNotFound {
        /// The interface asked for.
        iface: String,
        /// The namespace.
        ns: String,
        /// Its interfaces, comma-separated.
        available: String,
    },
    /// The namespace has only `lo`.
    #[error("{ns} has no interface to capture on besides lo (is the lab up?)")]
    NoInterfaces {
        /// The namespace.
        ns: String,
    },
    /// The interface does not carry Ethernet frames.
    #[error(
        "interface {iface} in {ns} is not an ethernet interface (hardware type {hatype}); capture one of the lab's veth interfaces"
    )]
    NotEthernet {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
        /// Its ARPHRD_* type.
        hatype: u16,
    },
    /// The packet socket could not be opened or bound.
    #[error(
        "cannot open a packet socket on {iface} in {ns}: {source} (capturing needs root or CAP_NET_RAW)"
    )]
    Socket {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// The TPACKET_V3 ring could not be set up.
    #[error("cannot set up the capture ring on {iface} in {ns}: {source} (is memory short?)")]
    Ring {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// Waiting for packets failed.
    #[error("capture on {iface} in {ns} failed: {source}")]
    Io {
        /// The interface (or all of them).
        iface: String,
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// The interface was deleted during the capture; the file is complete up to then.
    #[error(
        "interface {iface} was deleted from {ns} during the capture (lab torn down?); the file written so far is complete"
    )]
    InterfaceGone {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
    },
    /// The output file could not be created.
    #[error("cannot create {}: {source} (check that the directory exists and is writable)", path.display())]
    CreateOutput {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Writing the capture failed.
    #[error("cannot write the capture to {target}: {source}")]
    Write {
        /// The file or stream.
        target: String,
        /// What the system said.
        source: io::Error,
    },
    /// The helper thread that enters the namespace panicked.
    #[error("the helper thread that enters {ns} panicked")]
    Thread {
        /// The namespace.
        ns: String,
    },
}

/// How a namespace is named in messages: `tcplab-tcpip-bsdi` for
/// `/run/netns/tcplab-tcpip-bsdi`, the full path otherwise.
fn ns_display(netns: Option<&Path>) -> String {
    match netns {
        None => "the current network namespace".into(),
        Some(p) => {
            let parent = p.parent().map(|d| d.to_string_lossy().into_owned());
            match (parent.as_deref(), p.file_name()) {
                (Some("/run/netns" | "/var/run/netns"), Some(n)) => {
                    n.to_string_lossy().into_owned()
                }
                _ => p.display().to_string(),
            }
        }
    }
}

/// Runs `f` on a new thread that first entered `netns` (when given); the
/// caller's thread keeps its namespace.
fn in_netns<T: Send>(
    netns: Option<&Path>,
    f: impl FnOnce() -> Result<T, CaptureError> + Send,
) -> Result<T, CaptureError> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("tcplab-netns".into())
            .spawn_scoped(s, || {
                if let Some(path) = netns {
                    let file = File::open(path).map_err(|e| {
                        if e.kind() == io::ErrorKind::NotFound {
                            CaptureError::NetnsNotFound {
                                path: path.to_path_buf(),
                            }
                        } else {
                            CaptureError::EnterNetns {
                                path: path.to_path_buf(),
                                source: e,
                            }
                        }
                    })?;
                    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                        CaptureError::EnterNetns {
                            path: path.to_path_buf(),
                            source: e.into(),
                        }
                    })?;
                }
                f()
            })
            .map_err(|e| CaptureError::EnterNetns {
                path: netns.map(Path::to_path_buf).unwrap_or_default(),
                source: e,
            })?;
        handle.join().map_err(|_| CaptureError::Thread {
            ns: ns_display(netns),
        })?
    })
}

/// (ifindex, name) of every interface of the current thread's namespace, `lo` included.
fn interfaces_here(ns: &str) -> Result<Vec<(u32, String)>, CaptureError> {
    let list = nix::net::if_::if_nameindex().map_err(|e| CaptureError::ListInterfaces {
        ns: ns.to_string(),
        source: e.into(),
    })?;
    let mut v: Vec<(u32, String)> = list
        .iter()
        .map(|i| (i.index(), i.name().to_string_lossy().into_owned()))
        .collect();
    v.sort();
    Ok(v)
}

/// The namespace's interface names (except `lo`), in ifindex order.
pub fn list_interfaces(netns: Option<&Path>) -> Result<Vec<String>, CaptureError> {
    let ns = ns_display(netns);
    in_netns(netns, || {
        Ok(interfaces_here(&ns)?
            .into_iter()
            .filter(|(_, n)| n != "lo")
            .map(|(_, n)| n)
            .collect())
    })
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(last_err()) }
}

/// Where the next packet of a block held by user space is.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    block: usize,
    remaining: u32,
    offset: usize,
}

/// The parts of a `tpacket3_hdr` (plus its `sockaddr_ll`) that are used.
#[derive(Debug, Clone, Copy)]
struct Frame {
    ts: u64,
    len: u32,
    mac: usize,
    snaplen: usize,
    status: u32,
    vlan_tci: u16,
    vlan_tpid: u16,
    pkttype: u8,
}

// Offsets inside struct tpacket_block_desc and struct tpacket3_hdr (uapi/linux/if_packet.h).
const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST: usize = 16;
const BD_SEQ: usize = 24;
const H_NEXT: usize = 0;
const H_SEC: usize = 4;
const H_NSEC: usize = 8;
const H_SNAPLEN: usize = 12;
const H_LEN: usize = 16;
const H_STATUS: usize = 20;
const H_MAC: usize = 24;
const H_VLAN_TCI: usize = 32;
const H_VLAN_TPID: usize = 36;
const H_SIZE: usize = 48;
/// sockaddr_ll follows the header at TPACKET_ALIGN(48) = 48; sll_pkttype is at +10.
const H_PKTTYPE: usize = H_SIZE + 10;

/// A packet socket with its TPACKET_V3 receive ring, bound to one interface.
struct Ring {
    fd: OwnedFd,
    name: String,
    ifindex: i32,
    loopback: bool,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_nr: usize,
    next_block: usize,
    cursor: Option<Cursor>,
    /// Sequence number of the last block taken (the kernel numbers blocks from 1).
    last_seq: u64,
    written: u64,
}

// SAFETY: the mapping belongs to this socket alone; a Ring is used by one
// thread at a time (it is only moved from the namespace thread to the caller).
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: map/map_len come from a successful mmap that nothing else unmaps.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

impl Ring {
    /// Opens the socket and ring on `ifindex` in the current thread's namespace.
    fn open(name: &str, ifindex: u32, snaplen: u32, ns: &str) -> Result<Ring, CaptureError> {
        let sock_err = |source| CaptureError::Socket {
            iface: name.to_string(),
            ns: ns.to_string(),
            source,
        };
        let ring_err = |source| CaptureError::Ring {
            iface: name.to_string(),
            ns: ns.to_string(),
            source,
        };
        // Protocol 0: nothing is queued until bind() names ETH_P_ALL and the
        // interface, so no packet of another interface slips in.
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(sock_err(last_err()));
        }
        // SAFETY: raw is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let hatype = hardware_type(&fd, name).map_err(sock_err)?;
        let loopback = hatype == libc::ARPHRD_LOOPBACK;
        if hatype != libc::ARPHRD_ETHER && !loopback {
            return Err(CaptureError::NotEthernet {
                iface: name.to_string(),
                ns: ns.to_string(),
                hatype,
            });
        }

        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version).map_err(ring_err)?;

        // The snap length is cut in the kernel by a one-instruction classic
        // BPF program, "ret #snaplen", as libpcap does.
        let block_size = BLOCK_SIZE.max((snaplen as usize + 256).next_power_of_two());
        if (snaplen as usize) + 256 < block_size {
            let prog = [libc::sock_filter {
                code: 0x06, // BPF_RET | BPF_K
                jt: 0,
                jf: 0,
                k: snaplen,
            }];
            let fprog = libc::sock_fprog {
                len: 1,
                filter: prog.as_ptr().cast_mut(),
            };
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog).map_err(sock_err)?;
        }

        let block_nr = (RING_BYTES / block_size).max(4);
        let frame_size: usize = 2048;
        // SAFETY: tpacket_req3 is plain old data.
        let mut req: libc::tpacket_req3 = unsafe { std::mem::zeroed() };
        req.tp_block_size = block_size as u32;
        req.tp_block_nr = block_nr as u32;
        req.tp_frame_size = frame_size as u32;
        req.tp_frame_nr = (block_size / frame_size * block_nr) as u32;
        req.tp_retire_blk_tov = BLOCK_TIMEOUT_MS;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req).map_err(ring_err)?;

        let map_len = block_size * block_nr;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(ring_err(last_err()));
        }
        let ring = Ring {
            fd,
            name: name.to_string(),
            ifindex: ifindex as i32,
            loopback,
            map: map.cast(),
            map_len,
            block_size,
            block_nr,
            next_block: 0,
            cursor: None,
            last_seq: 0,
            written: 0,
        };

        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(sock_err(last_err()));
        }
        Ok(ring)
    }

    fn block(&self, i: usize) -> *mut u8 {
        // SAFETY (for callers): i < block_nr, so the block lies inside the mapping.
        debug_assert!(i < self.block_nr);
        self.map.wrapping_add(i * self.block_size)
    }

    fn block_status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block_status is an aligned u32 inside the mapping, shared
        // with the kernel, which is what atomics are for.
        unsafe { AtomicU32::from_ptr(self.block(i).add(BD_STATUS).cast()) }
    }

    fn read_u32(&self, block: usize, off: usize) -> u32 {
        debug_assert!(off + 4 <= self.block_size);
        // SAFETY: off + 4 <= block_size (checked by callers), inside a block we own.
        unsafe { self.block(block).add(off).cast::<u32>().read_unaligned() }
    }

    fn read_u64(&self, block: usize, off: usize) -> u64 {
        debug_assert!(off + 8 <= self.block_size);
        // SAFETY: as read_u32.
        unsafe { self.block(block).add(off).cast::<u64>().read_unaligned() }
    }

    fn read_u16(&self, block: usize, off: usize) -> u16 {
        debug_assert!(off + 2 <= self.block_size);
        // SAFETY: as read_u32.
        unsafe { self.block(block).add(off).cast::<u16>().read_unaligned() }
    }

    /// The next packet, if the kernel has handed over a block holding one.
    fn peek(&mut self) -> Option<Frame> {
        loop {
            if let Some(c) = self.cursor {
                // (A header that does not fit its block gives the block up.)
                if c.remaining > 0
                    && let Some(f) = self.frame_at(c.block, c.offset)
                {
                    return Some(f);
                }
                self.block_status(c.block)
                    .store(libc::TP_STATUS_KERNEL, Ordering::Release);
                self.cursor = None;
                self.next_block = (c.block + 1) % self.block_nr;
            }
            let b = self.next_block;
            if self.block_status(b).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                return None;
            }
            self.last_seq = self.read_u64(b, BD_SEQ);
            self.cursor = Some(Cursor {
                block: b,
                remaining: self.read_u32(b, BD_NUM_PKTS),
                offset: self.read_u32(b, BD_FIRST) as usize,
            });
        }
    }

    /// After [`Ring::peek`] found nothing: whether the block the kernel is
    /// filling already holds packets (they reach user space when the block
    /// fills up or times out). A block the kernel has not opened again since
    /// its last use keeps its old sequence number and does not count.
    fn open_block_pending(&self) -> bool {
        let b = self.next_block;
        // Racy reads of kernel-written fields, used as a hint only.
        // SAFETY: aligned fields inside the mapping.
        let (seq, n) = unsafe {
            let base = self.block(b);
            (
                std::ptr::read_volatile(base.add(BD_SEQ).cast::<u64>()),
                AtomicU32::from_ptr(base.add(BD_NUM_PKTS).cast()).load(Ordering::Relaxed),
            )
        };
        seq == self.last_seq.wrapping_add(1) && n > 0
    }

    /// True when at least half of the ring is waiting for user space: time
    /// to write packets out even if that costs strict time order.
    fn under_pressure(&self) -> bool {
        let from = self.cursor.map_or(self.next_block, |c| c.block);
        let half = (from + self.block_nr / 2) % self.block_nr;
        self.block_status(half).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    fn frame_at(&self, b: usize, off: usize) -> Option<Frame> {
        if off < BD_FIRST || off.checked_add(H_PKTTYPE + 1)? > self.block_size {
            return None;
        }
        let mac = off + usize::from(self.read_u16(b, off + H_MAC));
        let snaplen = self.read_u32(b, off + H_SNAPLEN) as usize;
        if mac.checked_add(snaplen)? > self.block_size {
            return None;
        }
        let ts = u64::from(self.read_u32(b, off + H_SEC)) * 1_000_000_000
            + u64::from(self.read_u32(b, off + H_NSEC));
        // SAFETY: inside the block (checked above).
        let pkttype = unsafe { self.block(b).add(off + H_PKTTYPE).read() };
        Some(Frame {
            ts,
            len: self.read_u32(b, off + H_LEN),
            mac,
            snaplen,
            status: self.read_u32(b, off + H_STATUS),
            vlan_tci: self.read_u32(b, off + H_VLAN_TCI) as u16,
            vlan_tpid: self.read_u16(b, off + H_VLAN_TPID),
            pkttype,
        })
    }

    /// The bytes of `f`, the frame [`Ring::peek`] just returned.
    fn data(&self, f: &Frame) -> &[u8] {
        let c = self.cursor.expect("data() follows a successful peek()");
        // SAFETY: frame_at checked that mac + snaplen lies inside the block,
        // which stays ours until advance() releases it.
        unsafe { std::slice::from_raw_parts(self.block(c.block).add(f.mac), f.snaplen) }
    }

    /// Moves past the frame [`Ring::peek`] returned.
    fn advance(&mut self) {
        if let Some(mut c) = self.cursor {
            let next = self.read_u32(c.block, c.offset + H_NEXT) as usize;
            c.remaining = c.remaining.saturating_sub(1);
            if next == 0 {
                c.remaining = 0;
            }
            c.offset += next;
            self.cursor = Some(c);
        }
    }

    /// (packets seen, packets dropped) since the last call; the kernel resets them.
    fn statistics(&self) -> io::Result<(u64, u64)> {
        // SAFETY: plain old data.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: st has room for len bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(last_err());
        }
        Ok((u64::from(st.tp_packets), u64::from(st.tp_drops)))
    }

    /// Clears a pending socket error (ENETDOWN when the link goes down; the
    /// kernel resumes delivery by itself when it comes back up).
    fn clear_error(&self) {
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: err has room for an int.
        unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            );
        }
    }

    /// True when the interface was deleted: the kernel then unbinds the
    /// socket (its ifindex becomes -1) without any further error.
    fn is_gone(&self) -> bool {
        // SAFETY: plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: sll has room for len bytes.
        let rc = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        rc == 0 && sll.sll_ifindex != self.ifindex
    }
}

/// ARPHRD_* type of interface `name` (SIOCGIFHWADDR).
fn hardware_type(fd: &OwnedFd, name: &str) -> io::Result<u16> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let bytes = cname.as_bytes_with_nul();
    // SAFETY: plain old data.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    if bytes.len() > ifr.ifr_name.len() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: ifr is a valid ifreq for SIOCGIFHWADDR.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) };
    if rc != 0 {
        return Err(last_err());
    }
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
    Ok(unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_family })
}

/// The file being written.
enum Out {
    Pcap(PcapWriter<Box<dyn Write>>),
    Pcapng(PcapngWriter<Box<dyn Write>>),
}

impl Out {
    fn write(&mut self, iface: u32, ts: u64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        match self {
            Out::Pcap(w) => w.write_packet(ts, orig_len, data),
            Out::Pcapng(w) => w.write_packet(iface, ts, orig_len, data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Pcap(w) => w.flush(),
            Out::Pcapng(w) => w.flush(),
        }
    }
}

/// A capture whose sockets are open and already collecting packets (into
/// the kernel ring) but not yet written anywhere: [`Capture::open`], then
/// [`Capture::run`]. Splitting the two lets a caller start the traffic only
/// once the capture is sure to see it.
pub struct Capture {
    ns: String,
    rings: Vec<Ring>,
    snaplen: u32,
    count: Option<u64>,
    duration: Option<Duration>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("ns", &self.ns)
            .field("interfaces", &self.interfaces())
            .field("snaplen", &self.snaplen)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Enters the namespace on a helper thread and opens one packet socket
    /// per interface of `spec` there; packets are collected from now on.
    pub fn open(spec: &CaptureSpec) -> Result<Capture, CaptureError> {
        let netns = spec.netns.as_deref();
        let ns = ns_display(netns);
        let snaplen = if spec.snaplen == 0 {
            MAX_SNAPLEN
        } else {
            spec.snaplen.min(MAX_SNAPLEN)
        };
        let rings = in_netns(netns, || {
            let all = interfaces_here(&ns)?;
            let mut wanted: Vec<(u32, String)> = Vec::new();
            if spec.interfaces.is_empty() {
                wanted = all.iter().filter(|(_, n)| n != "lo").cloned().collect();
                if wanted.is_empty() {
                    return Err(CaptureError::NoInterfaces { ns: ns.clone() });
                }
            } else {
                for name in &spec.interfaces {
                    if wanted.iter().any(|(_, n)| n == name) {
                        continue;
                    }
                    match all.iter().find(|(_, n)| n == name) {
                        Some(found) => wanted.push(found.clone()),
                        None => {
                            let others: Vec<&str> = all
                                .iter()
                                .map(|(_, n)| n.as_str())
                                .filter(|n| *n != "lo")
                                .collect();
                            return Err(CaptureError::InterfaceNotFound {
                                iface: name.clone(),
                                ns: ns.clone(),
                                available: if others.is_empty() {
                                    "none but lo".into()
                                } else {
                                    others.join(", ")
                                },
                            });
                        }
                    }
                }
            }
            wanted
                .iter()
                .map(|(idx, name)| Ring::open(name, *idx, snaplen, &ns))
                .collect::<Result<Vec<Ring>, CaptureError>>()
        })?;
        Ok(Capture {
            ns,
            rings,
            snaplen,
            count: spec.count,
            duration: spec.duration,
        })
    }

    /// The interfaces being captured, in file order.
    pub fn interfaces(&self) -> Vec<String> {
        self.rings.iter().map(|r| r.name.clone()).collect()
    }

    /// The format [`Capture::run`] will write: pcap for one interface, pcapng for several.
    pub fn format(&self) -> Format {
        if self.rings.len() == 1 {
            Format::Pcap
        } else {
            Format::Pcapng
        }
    }

    /// The snap length in force.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Captures until the count or duration is reached or `stop` becomes
    /// true, writing to `sink` and calling `on_packet(interface, packet,
    /// timestamp_ns)` for each packet, in timestamp order across interfaces.
    /// Returns once the file is complete and flushed.
    pub fn run(
        mut self,
        sink: Sink,
        stop: &AtomicBool,
        on_packet: &mut dyn FnMut(&str, &Packet, u64),
    ) -> Result<Summary, CaptureError> {
        let target = sink.describe();
        let write_err = |source| CaptureError::Write {
            target: target.clone(),
            source,
        };
        let is_stdout = matches!(sink, Sink::Stdout);
        let raw: Box<dyn Write> = match sink {
            Sink::File(path) => {
                let f = File::create(&path)
                    .map_err(|source| CaptureError::CreateOutput { path, source })?;
                // Small packets are gathered; a packet of OUT_BUFFER bytes or
                // more goes to the file in one writev, without a copy here.
                Box::new(BufWriter::with_capacity(OUT_BUFFER, f))
            }
            Sink::Stdout => {
                let fd = io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(write_err)?;
                Box::new(BufWriter::with_capacity(OUT_BUFFER, File::from(fd)))
            }
            Sink::Writer(w) => Box::new(BufWriter::with_capacity(OUT_BUFFER, w)),
        };
        let format = self.format();
        let names = self.interfaces();
        let mut out = match format {
            Format::Pcap => {
                let mut w =
                    PcapWriter::new(raw, self.snaplen, TsResolution::Micro).map_err(write_err)?;
                w.set_flush_each_packet(is_stdout);
                Out::Pcap(w)
            }
            Format::Pcapng => {
                let mut w = PcapngWriter::new(raw, "tcplab").map_err(write_err)?;
                for n in &names {
                    w.add_interface(n, self.snaplen).map_err(write_err)?;
                }
                w.set_flush_each_packet(is_stdout);
                Out::Pcapng(w)
            }
        };
        if is_stdout {
            out.flush().map_err(write_err)?;
        }

        let start = Instant::now();
        let start_ns = now_ns();
        let mut packets = 0u64;
        let mut stopping: Option<(u64, Instant)> = None;
        let mut pipe_closed = false;
        let mut failure = None;
        let mut vlan_buf = Vec::new();
        let mut last_check = Instant::now();
        'capture: loop {
            let now = Instant::now();
            if stopping.is_none() {
                if stop.load(Ordering::Relaxed) {
                    stopping = Some((now_ns(), now + GRACE));
                } else if let Some(d) = self.duration.filter(|d| now >= start + *d) {
                    stopping = Some((start_ns + d.as_nanos() as u64, now + GRACE));
                }
            }
            let force = stopping.is_some_and(|(_, grace_end)| now >= grace_end);

            // Write every packet that is due, oldest first across interfaces.
            let mut hold_until: Option<u64> = None;
            loop {
                if self.count.is_some_and(|c| packets >= c) {
                    break 'capture;
                }
                let mut best: Option<(usize, u64)> = None;
                let mut pending_elsewhere = false;
                for (i, r) in self.rings.iter_mut().enumerate() {
                    match r.peek() {
                        Some(f) => {
                            if best.is_none_or(|(_, ts)| f.ts < ts) {
                                best = Some((i, f.ts));
                            }
                        }
                        None => pending_elsewhere |= r.open_block_pending(),
                    }
                }
                let Some((i, ts)) = best else { break };
                // Another interface holds packets in a block the kernel has
                // not handed over yet, possibly older ones: wait for that
                // block (it times out within BLOCK_TIMEOUT_MS), unless this
                // ring is filling up or the wait has gone on too long.
                if pending_elsewhere
                    && !force
                    && ts.saturating_add(MERGE_WINDOW_NS) > now_ns()
                    && !self.rings[i].under_pressure()
                {
                    hold_until = Some(ts.saturating_add(MERGE_WINDOW_NS));
                    break;
                }
                let ring = &mut self.rings[i];
                let Some(f) = ring.peek() else { break };
                if stopping.is_some_and(|(cutoff, _)| f.ts > cutoff)
                    || (ring.loopback && f.pkttype == libc::PACKET_OUTGOING)
                {
                    ring.advance();
                    continue;
                }
                let mut data = ring.data(&f);
                let mut orig_len = f.len;
                if f.status & libc::TP_STATUS_VLAN_VALID != 0 && data.len() >= 12 {
                    // The kernel took the 802.1Q tag out of the frame: put it back.
                    let tpid = if f.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        f.vlan_tpid
                    } else {
                        decode::ETHERTYPE_VLAN
                    };
                    vlan_buf.clear();
                    vlan_buf.extend_from_slice(&data[..12]);
                    vlan_buf.extend_from_slice(&tpid.to_be_bytes());
                    vlan_buf.extend_from_slice(&f.vlan_tci.to_be_bytes());
                    vlan_buf.extend_from_slice(&data[12..]);
                    vlan_buf.truncate(self.snaplen as usize);
                    data = &vlan_buf;
                    orig_len += 4;
                }
                let pkt = decode(data);
                on_packet(&ring.name, &pkt, f.ts);
                if let Err(e) = out.write(i as u32, f.ts, orig_len, data) {
                    if is_stdout && e.kind() == io::ErrorKind::BrokenPipe {
                        // The reader (wireshark) went away: end quietly.
                        pipe_closed = true;
                        break 'capture;
                    }
                    return Err(write_err(e));
                }
                ring.advance();
                ring.written += 1;
                packets += 1;
            }
            if force {
                break;
            }

            // Wait for more.
            let now = Instant::now();
            let mut wait = Duration::from_millis(POLL_MS);
            if let Some((_, grace_end)) = stopping {
                wait = wait.min(grace_end.saturating_duration_since(now));
            } else if let Some(d) = self.duration {
                wait = wait.min((start + d).saturating_duration_since(now));
            }
            if let Some(h) = hold_until {
                wait = wait.min(Duration::from_nanos(h.saturating_sub(now_ns())));
            }
            let wait = wait.max(Duration::from_millis(1));
            // While a packet is held, rings that have packets would report
            // ready at once: wait only on the ones that have none.
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.rings.len());
            for r in self.rings.iter_mut() {
                let wanted = hold_until.is_none() || r.peek().is_none();
                fds.push(libc::pollfd {
                    // A negative fd is skipped by poll(2).
                    fd: if wanted { r.fd.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let timeout_ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: fds is a valid array of fds.len() pollfd structures.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if rc < 0 {
                let e = last_err();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(CaptureError::Io {
                        iface: names.join(", "),
                        ns: self.ns.clone(),
                        source: e,
                    });
                }
            }
            let errored: Vec<usize> = fds
                .iter()
                .enumerate()
                .filter(|(_, p)| p.revents & (libc::POLLERR | libc::POLLNVAL) != 0)
                .map(|(i, _)| i)
                .collect();
            for i in errored {
                self.rings[i].clear_error();
            }
            if last_check.elapsed() >= GONE_CHECK {
                last_check = Instant::now();
                if let Some(r) = self.rings.iter().find(|r| r.is_gone()) {
                    failure = Some(CaptureError::InterfaceGone {
                        iface: r.name.clone(),
                        ns: self.ns.clone(),
                    });
                    // Write what was already handed over, then stop.
                    stopping = Some((u64::MAX, Instant::now()));
                }
            }
        }

        // Statistics, the closing blocks, and the final flush.
        let end_ns = now_ns();
        let mut dropped = 0;
        let mut stats = Vec::with_capacity(self.rings.len());
        for r in &self.rings {
            let (seen, lost) = r.statistics().unwrap_or((0, 0));
            dropped += lost;
            stats.push((seen, lost, r.written));
        }
        if !pipe_closed {
            if let Out::Pcapng(w) = &mut out {
                for (i, (seen, lost, written)) in stats.iter().enumerate() {
                    let s = InterfaceStats {
                        ts: end_ns,
                        start: Some(start_ns),
                        received: Some(*seen),
                        dropped: Some(*lost),
                        delivered: Some(*written),
                    };
                    w.write_statistics(i as u32, &s).map_err(write_err)?;
                }
            }
            match out.flush() {
                Err(e) if !(is_stdout && e.kind() == io::ErrorKind::BrokenPipe) => {
                    return Err(write_err(e));
                }
                _ => {}
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Summary {
            packets,
            dropped,
            interfaces: names,
            format,
        })
    }
}

/// Captures in `spec.netns` on `spec.interfaces` (all but `lo` when empty)
/// until `spec.count` packets, `spec.duration`, or `stop` becoming true,
/// writing pcap (one interface) or pcapng (several) to `sink` and calling
/// `on_packet(interface, packet, timestamp_ns)` for each packet.
///
/// The sockets are opened from a dedicated thread that entered the namespace;
/// the caller's thread never changes namespace. Same as
/// `Capture::open(spec)?.run(sink, stop, on_packet)`.
pub fn run(
    spec: &CaptureSpec,
    sink: Sink,
    stop: &AtomicBool,
    on_packet: &mut dyn FnMut(&str, &Packet, u64),
) -> Result<Summary, CaptureError> {
    Capture::open(spec)?.run(sink, stop, on_packet)
}

#[cfg(test)]
mod tests;
