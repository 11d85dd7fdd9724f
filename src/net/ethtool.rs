//! Transmit checksum offload control through the `SIOCETHTOOL` ioctl.
//!
//! Open vSwitch's userspace (`netdev`) datapath reads frames from veths with
//! `AF_PACKET` sockets and forwards them without completing checksums that the
//! sender left to the "hardware". A veth's transmit checksum offload is on by
//! default, so TCP through such a bridge arrives with bad checksums and times
//! out, while ping (checksummed in software) works. Turning transmit checksum
//! offload off on the *sending* ends (the veth ends inside the lab's nodes)
//! fixes it.
//!
//! Both functions act on the network namespace of the calling thread (the
//! ioctl socket is created by that thread), so a caller can `setns` one thread
//! into a node's namespace and call them there. Nothing here spawns a process.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

/// `ETHTOOL_GTXCSUM` from `<linux/ethtool.h>`: get transmit checksum offload.
const ETHTOOL_GTXCSUM: u32 = 0x0000_0016;
/// `ETHTOOL_STXCSUM` from `<linux/ethtool.h>`: set transmit checksum offload.
const ETHTOOL_STXCSUM: u32 = 0x0000_0017;
/// Longest interface name the kernel accepts, without the final NUL.
const MAX_IFNAME: usize = libc::IFNAMSIZ - 1;

/// `struct ethtool_value` from `<linux/ethtool.h>`.
#[repr(C)]
#[derive(Debug, Default)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Turn off transmit checksum offload on `ifname` in the CALLING THREAD's
/// network namespace, through the `SIOCETHTOOL` ioctl (`ETHTOOL_STXCSUM`);
/// never runs `ethtool`.
///
/// Idempotent. Reads the setting back and fails if it is still on.
///
/// # Errors
///
/// The kernel's error as it is (`ENODEV`: no such interface in this
/// namespace, `EPERM`: needs `CAP_NET_ADMIN`, `EOPNOTSUPP`: the driver cannot
/// change it), `InvalidInput` for a name that cannot be an interface name, or
/// `Other` if the setting is still on afterwards.
pub fn disable_tx_checksum(ifname: &str) -> io::Result<()> {
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };
    ethtool_ioctl(ifname, &mut value)?;
    if tx_checksum_enabled(ifname)? {
        return Err(io::Error::other(format!(
            "transmit checksum offload on {ifname} is still on after ETHTOOL_STXCSUM"
        )));
    }
    Ok(())
}

/// Whether transmit checksum offload is on for `ifname` in the calling
/// thread's network namespace (`ETHTOOL_GTXCSUM`), mainly for tests.
///
/// # Errors
///
/// As for [`disable_tx_checksum`].
pub fn tx_checksum_enabled(ifname: &str) -> io::Result<bool> {
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GTXCSUM,
        data: 0,
    };
    ethtool_ioctl(ifname, &mut value)?;
    Ok(value.data != 0)
}

/// Check `ifname` and copy it, NUL-terminated, into an `ifreq`.
fn ifreq_for(ifname: &str) -> io::Result<libc::ifreq> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_IFNAME || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{ifname:?} is not a valid interface name (1 to {MAX_IFNAME} bytes, no NUL)"),
        ));
    }
    // SAFETY: `ifreq` is plain old data (byte arrays, integers and a raw
    // pointer in a union); all zeroes is a valid value for it.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = libc::c_char::from_ne_bytes([src]);
    }
    Ok(ifr)
}

/// Run one `SIOCETHTOOL` command carrying a `struct ethtool_value`.
fn ethtool_ioctl(ifname: &str, value: &mut EthtoolValue) -> io::Result<()> {
    let mut ifr = ifreq_for(ifname)?;
    // Any socket reaches the device ioctls; its namespace is the calling
    // thread's, which is what selects the interface.
    let sock: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    ifr.ifr_ifru.ifru_data = std::ptr::from_mut(value).cast::<libc::c_char>();
    // SAFETY: `sock` is an open socket, `ifr` a valid NUL-terminated ifreq
    // whose data pointer refers to `value`, a live `struct ethtool_value` that
    // outlives the call; the kernel reads and writes only that struct.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL as _, &mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn rejects_bad_names_without_touching_the_kernel() {
        for bad in ["", "a-name-that-is-too-long", "nul\0inside"] {
            let err = tx_checksum_enabled(bad).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            let err = disable_tx_checksum(bad).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        // exactly 15 bytes is a valid name (that does not exist)
        let err = tx_checksum_enabled("tcplabnoexist15").expect_err("no such device");
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn reads_loopback_without_root() {
        // loopback's tx checksum is "on [fixed]": readable by anyone
        match tx_checksum_enabled("lo") {
            Ok(on) => assert!(on),
            Err(e) => eprintln!("skipped: cannot read lo's tx checksum here: {e}"),
        }
    }

    /// In a thread of its own that enters a fresh network namespace (gone
    /// when the thread ends, taking the veth with it): the veth is visible to
    /// that thread only, and its tx checksum offload goes from on to off.
    #[test]
    fn disables_tx_checksum_in_the_calling_threads_namespace() {
        if !is_root() {
            eprintln!("skipped: disables_tx_checksum_in_the_calling_threads_namespace needs root");
            return;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!("skipped: the ip command (iproute2) is not installed");
            return;
        }
        let name = format!("tle{:x}", std::process::id());
        let peer = format!("{name}p");
        let (n, p) = (name.clone(), peer.clone());
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            // SAFETY: unshare only changes this thread's namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(format!("unshare: {}", io::Error::last_os_error()));
            }
            // a process spawned from this thread inherits its namespace
            let out = Command::new("ip")
                .args(["link", "add", &n, "type", "veth", "peer", "name", &p])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            assert!(tx_checksum_enabled(&n).map_err(|e| e.to_string())?);
            disable_tx_checksum(&n).map_err(|e| e.to_string())?;
            assert!(!tx_checksum_enabled(&n).map_err(|e| e.to_string())?);
            // idempotent
            disable_tx_checksum(&n).map_err(|e| e.to_string())?;
            // the peer is untouched
            assert!(tx_checksum_enabled(&p).map_err(|e| e.to_string())?);
            Ok(())
        })
        .join()
        .expect("namespace thread panicked");
        outcome.expect("veth test in a private namespace");
        // the test thread's own namespace never saw that veth
        let err = tx_checksum_enabled(&name).expect_err("veth must not be visible here");
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    }
}
