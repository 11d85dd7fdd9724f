//! The file descriptors of the userspace datapath: the TAP device the node's frames are
//! redirected to, the `AF_PACKET` socket that puts them on the wire (marked, or past the
//! qdisc: [`SendPath`]), and the timerfd and
//! eventfd that wake the worker. Each acts in the network namespace of the thread that opens it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `PACKET_QDISC_BYPASS` from `<linux/if_packet.h>`: frames sent on the socket skip the
/// device's qdisc, its egress tc hook (so they are not redirected to the TAP again) and the
/// packet taps (captures on the interface do not see them).
const PACKET_QDISC_BYPASS: libc::c_int = 20;

/// Largest frame read from the TAP: the kernel segments GSO frames for the TAP (it has no
/// offloads), but an interface may have a large MTU.
pub(crate) const MAX_FRAME: usize = 65_550;

/// Longest interface name, without the final NUL.
const MAX_IFNAME: usize = libc::IFNAMSIZ - 1;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(rc: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(rc)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` holding `name`, checked to be a valid interface name.
fn ifreq_named(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_IFNAME || bytes.contains(&0) || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name"),
        ));
    }
    // SAFETY: ifreq is plain old data; all zeroes is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &s) in ifr.ifr_name.iter_mut().zip(bytes) {
        *d = libc::c_char::from_ne_bytes([s]);
    }
    Ok(ifr)
}

/// A TAP device that lives as long as this value: closing the descriptor removes the device
/// (it is not persistent), so a killed worker leaves no TAP behind.
pub(crate) struct Tap {
    fd: OwnedFd,
}

impl Tap {
    /// Create TAP device `name` (no packet information header, non-blocking reads).
    pub(crate) fn create(name: &str) -> io::Result<Tap> {
        let mut ifr = ifreq_named(name)?;
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: plain open(2) of a NUL-terminated path.
        let fd = owned(unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` is a tun descriptor and `ifr` a valid ifreq that outlives the call.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut ifr) })?;
        Ok(Tap { fd })
    }

    /// Read one frame; `WouldBlock` when none is waiting.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// How the worker's frames go out of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendPath {
    /// through the interface's transmit path (egress hook, root qdisc, packet taps) with this
    /// `skb->mark`, which the egress classifier lets pass
    Marked(u32),
    /// straight to the driver, past the qdisc, the egress hook and the packet taps (for a
    /// classifier that cannot tell the worker's frames from the node's)
    QdiscBypass,
}

/// An `AF_PACKET` socket that sends whole Ethernet frames out of one interface.
pub(crate) struct WireSender {
    fd: OwnedFd,
}

fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: u32,
) -> io::Result<()> {
    // SAFETY: `value` is a live 4-byte integer of the size given.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

impl WireSender {
    /// Open the socket on interface `ifindex`, sending by `path` (protocol 0: it never
    /// receives).
    pub(crate) fn open(ifindex: u32, path: SendPath) -> io::Result<WireSender> {
        // SAFETY: plain socket(2).
        let fd = owned(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        match path {
            SendPath::Marked(mark) => set_int_option(&fd, libc::SOL_SOCKET, libc::SO_MARK, mark)?,
            SendPath::QdiscBypass => set_int_option(&fd, libc::SOL_PACKET, PACKET_QDISC_BYPASS, 1)?,
        }
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll of the size given.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(WireSender { fd })
    }

    /// Send one frame (Ethernet header included).
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is valid for reads of its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// A `CLOCK_MONOTONIC` timerfd armed at absolute times.
pub(crate) struct Timer {
    fd: OwnedFd,
}

impl Timer {
    /// A disarmed non-blocking timer.
    pub(crate) fn new() -> io::Result<Timer> {
        // SAFETY: plain timerfd_create(2).
        let fd = owned(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        Ok(Timer { fd })
    }

    /// Fire at monotonic time `at` (in the past: at once), or never with `None`.
    pub(crate) fn arm(&self, at: Option<Duration>) -> io::Result<()> {
        // A zero it_value disarms the timer: an instant in the past is at least 1 ns.
        let value = at.map(|t| t.max(Duration::from_nanos(1)));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: value.map_or(0, |t| t.as_secs() as libc::time_t),
                tv_nsec: value.map_or(0, |t| t.subsec_nanos() as libc::c_long),
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        check(unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Consume an expiry (nothing if none is pending).
    pub(crate) fn drain(&self) {
        let mut n = 0u64;
        // SAFETY: reads 8 bytes into `n`.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
    }
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// An eventfd that wakes the worker when a command is waiting.
pub(crate) struct Wake {
    fd: OwnedFd,
}

impl Wake {
    /// A non-blocking eventfd.
    pub(crate) fn new() -> io::Result<Wake> {
        // SAFETY: plain eventfd(2).
        let fd = owned(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        Ok(Wake { fd })
    }

    /// Wake the worker.
    pub(crate) fn notify(&self) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from `one`.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Consume the wake-ups.
    pub(crate) fn drain(&self) {
        let mut n = 0u64;
        // SAFETY: reads 8 bytes into `n`.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
    }
}

impl AsRawFd for Wake {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `CLOCK_MONOTONIC` now, the clock of the timer and of the shaper's virtual time.
pub(crate) fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Make the calling thread's timer wake-ups exact (no 50 us default slack).
pub(crate) fn tighten_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes the calling thread's slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

/// Whether interface `ifindex` still exists in the calling thread's namespace.
pub(crate) fn interface_exists(ifindex: u32) -> bool {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has the IF_NAMESIZE bytes if_indextoname writes at most.
    !unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null()
}
