//! The kernel side of a capture: one `AF_PACKET` socket per interface with
//! its `TPACKET_V3` receive ring mapped into this process, and the walk over
//! the blocks the kernel hands over (kernel timestamps in nanoseconds, drop
//! counts from `PACKET_STATISTICS`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::decode::ETHERTYPE_VLAN;
use super::error::CaptureError;

/// Size of one ring block; a packet (up to the snap length) must fit in one.
const BLOCK_SIZE: usize = 1 << 20;
/// Ring memory per interface.
const RING_BYTES: usize = 32 << 20;
/// A block is handed to user space at the latest this long after it got its
/// first packet (the delay a live display can show).
pub(super) const BLOCK_TIMEOUT_MS: u32 = 50;

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
pub(super) struct Frame {
    /// Kernel timestamp, nanoseconds since the Unix epoch.
    pub(super) ts: u64,
    len: u32,
    mac: usize,
    snaplen: usize,
    status: u32,
    vlan_tci: u16,
    vlan_tpid: u16,
    pkttype: u8,
}

impl Frame {
    /// True for a packet this host sent.
    pub(super) fn is_outgoing(&self) -> bool {
        self.pkttype == libc::PACKET_OUTGOING
    }
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
pub(super) struct Ring {
    fd: OwnedFd,
    /// The interface.
    pub(super) name: String,
    ifindex: i32,
    /// A loopback interface (whose outgoing packets come round again as incoming).
    pub(super) loopback: bool,
    /// Bytes kept of each packet.
    snaplen: u32,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_nr: usize,
    next_block: usize,
    cursor: Option<Cursor>,
    /// Sequence number of the last block taken (the kernel numbers blocks from 1).
    last_seq: u64,
    /// Packets of this ring written out.
    pub(super) written: u64,
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
    pub(super) fn open(
        name: &str,
        ifindex: u32,
        snaplen: u32,
        ns: &str,
    ) -> Result<Ring, CaptureError> {
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
        let fd = packet_socket().map_err(sock_err)?;
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
        let block_size = BLOCK_SIZE.max((snaplen as usize + 256).next_power_of_two());
        if (snaplen as usize) + 256 < block_size {
            attach_snaplen_filter(&fd, snaplen).map_err(sock_err)?;
        }
        let block_nr = (RING_BYTES / block_size).max(4);
        request_ring(&fd, block_size, block_nr).map_err(ring_err)?;
        let map_len = block_size * block_nr;
        let map = map_ring(&fd, map_len).map_err(ring_err)?;
        // From here on, Drop unmaps the ring whatever happens.
        let ring = Ring {
            fd,
            name: name.to_string(),
            ifindex: ifindex as i32,
            loopback,
            snaplen,
            map,
            map_len,
            block_size,
            block_nr,
            next_block: 0,
            cursor: None,
            last_seq: 0,
            written: 0,
        };
        bind_to_interface(&ring.fd, ifindex).map_err(sock_err)?;
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
    pub(super) fn peek(&mut self) -> Option<Frame> {
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
    pub(super) fn open_block_pending(&self) -> bool {
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
    pub(super) fn under_pressure(&self) -> bool {
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

    /// The bytes of `f` (the frame [`Ring::peek`] just returned) as they were
    /// on the wire, and their length there: an 802.1Q tag the kernel took out
    /// of the frame is put back (in `scratch`), within the snap length.
    pub(super) fn frame_bytes<'a>(
        &'a self,
        f: &Frame,
        scratch: &'a mut Vec<u8>,
    ) -> (&'a [u8], u32) {
        let data = self.data(f);
        if f.status & libc::TP_STATUS_VLAN_VALID == 0 || data.len() < 12 {
            return (data, f.len);
        }
        let tpid = if f.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            f.vlan_tpid
        } else {
            ETHERTYPE_VLAN
        };
        scratch.clear();
        scratch.extend_from_slice(&data[..12]);
        scratch.extend_from_slice(&tpid.to_be_bytes());
        scratch.extend_from_slice(&f.vlan_tci.to_be_bytes());
        scratch.extend_from_slice(&data[12..]);
        scratch.truncate(self.snaplen as usize);
        (scratch, f.len + 4)
    }

    /// The bytes of `f`, the frame [`Ring::peek`] just returned.
    fn data(&self, f: &Frame) -> &[u8] {
        let c = self.cursor.expect("data() follows a successful peek()");
        // SAFETY: frame_at checked that mac + snaplen lies inside the block,
        // which stays ours until advance() releases it.
        unsafe { std::slice::from_raw_parts(self.block(c.block).add(f.mac), f.snaplen) }
    }

    /// Moves past the frame [`Ring::peek`] returned.
    pub(super) fn advance(&mut self) {
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

    /// The socket, to wait on with poll(2).
    pub(super) fn poll_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// (packets seen, packets dropped) since the last call; the kernel resets them.
    pub(super) fn statistics(&self) -> io::Result<(u64, u64)> {
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
    pub(super) fn clear_error(&self) {
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
    pub(super) fn is_gone(&self) -> bool {
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

/// A fresh `AF_PACKET` raw socket. Protocol 0: nothing is queued until
/// [`bind_to_interface`] names `ETH_P_ALL` and the interface, so no packet of
/// another interface slips in.
fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(last_err());
    }
    // SAFETY: raw is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Cuts packets to `snaplen` in the kernel with a one-instruction classic BPF
/// program, "ret #snaplen", as libpcap does.
fn attach_snaplen_filter(fd: &OwnedFd, snaplen: u32) -> io::Result<()> {
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
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// Asks the kernel for a TPACKET_V3 receive ring of `block_nr` blocks.
fn request_ring(fd: &OwnedFd, block_size: usize, block_nr: usize) -> io::Result<()> {
    let frame_size: usize = 2048;
    // SAFETY: tpacket_req3 is plain old data.
    let mut req: libc::tpacket_req3 = unsafe { std::mem::zeroed() };
    req.tp_block_size = block_size as u32;
    req.tp_block_nr = block_nr as u32;
    req.tp_frame_size = frame_size as u32;
    req.tp_frame_nr = (block_size / frame_size * block_nr) as u32;
    req.tp_retire_blk_tov = BLOCK_TIMEOUT_MS;
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
}

/// Maps the ring the kernel allocated for `fd` into this process.
fn map_ring(fd: &OwnedFd, map_len: usize) -> io::Result<*mut u8> {
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
        return Err(last_err());
    }
    Ok(map.cast())
}

/// Binds `fd` to interface `ifindex` for every protocol (`ETH_P_ALL`).
fn bind_to_interface(fd: &OwnedFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 { Err(last_err()) } else { Ok(()) }
}
