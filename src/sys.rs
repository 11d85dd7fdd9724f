//! Operating-system calls that are not netlink: named network namespaces (iproute2's
//! /run/netns convention), entering them from a dedicated thread, sysctl files.
//!
//! Namespaces are entered only on threads made for it, never on a tokio worker: a thread that
//! entered a namespace either ends or is never reused.

use crate::error::{Context, Error, Result};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Where named namespaces live (iproute2's convention, so `ip netns exec` works on them).
pub const NETNS_DIR: &str = "/run/netns";
/// Where per-namespace /etc files live (iproute2's convention for `ip netns exec`).
pub const ETC_NETNS_DIR: &str = "/etc/netns";

/// Path of a named namespace.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether a named namespace exists.
pub fn netns_exists(name: &str) -> bool {
    netns_path(name).exists()
}

/// Make /run/netns a shared mount point, as `ip netns add` does, so that namespace mounts
/// propagate between mount namespaces.
pub fn prepare_netns_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_DIR).context(format!("creating {NETNS_DIR}"))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(Some(""), NETNS_DIR, Some("none"), shared, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .context(format!("making {NETNS_DIR} a mount point"))?;
            mount(Some(""), NETNS_DIR, Some("none"), shared, None::<&str>)
                .context(format!("sharing {NETNS_DIR}"))
        }
        Err(e) => Err(e).context(format!("sharing {NETNS_DIR}")),
    }
}

/// A thread working inside a namespace; `join` it for its result.
pub struct NsThread<T>(std::thread::JoinHandle<Result<T>>);

impl<T> NsThread<T> {
    /// Wait for the thread's result.
    pub fn join(self) -> Result<T> {
        self.0.join().unwrap_or_else(|_| {
            Err(Error::Other(
                "a thread working in a namespace panicked".into(),
            ))
        })
    }
}

/// Create named network namespace `name` and, still inside it on the same thread, run `f`
/// (set sysctls, open a netlink socket). The calling thread's namespace is never changed.
pub fn create_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    spawn_create_netns(name, f)?.join()
}

/// [`create_netns`] on a thread of its own, returned at once, so that many run in parallel.
pub fn spawn_create_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<NsThread<T>> {
    let name = name.to_string();
    std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || -> Result<T> {
            let path = netns_path(&name);
            // Create the mount point first: refusing an existing one is what keeps two labs apart.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Error::Usage(format!("namespace {name} exists already: is the lab up? (`tcplab down` removes it)"))
                    } else {
                        Error::io(format!("creating {}", path.display()), e)
                    }
                })?;
            let made = (|| -> Result<()> {
                unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
                mount(Some("/proc/thread-self/ns/net"), &path, Some("none"), MsFlags::MS_BIND, None::<&str>)
                    .context(format!("binding {}", path.display()))
            })();
            if let Err(e) = made {
                let _ = std::fs::remove_file(&path);
                return Err(e.context(format!("creating namespace {name}")));
            }
            f().context(format!("setting up namespace {name}"))
        })
        .map(NsThread)
        .map_err(|e| Error::io("spawning a thread", e))
}

/// Remove named namespace `name` (unmount and unlink). Missing is fine.
pub fn delete_netns(name: &str) -> Result<bool> {
    let path = netns_path(name);
    if !path.exists() {
        return Ok(false);
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e).context(format!("unmounting {}", path.display())),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

/// Link the network namespace of process `pid` (a container's init) at `/run/netns/<name>`.
/// If the link exists but points at another namespace (the container was restarted), it is
/// re-made; if it already points at this one, nothing changes.
pub fn link_netns(name: &str, pid: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let src = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let path = netns_path(name);
    let want = std::fs::metadata(&src).with_context(|| format!("reading {}", src.display()))?;
    if let Ok(have) = std::fs::metadata(&path) {
        if have.ino() == want.ino() && have.dev() == want.dev() {
            return Ok(());
        }
        delete_netns(name)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    mount(
        Some(&src),
        &path,
        Some("none"),
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        let _ = std::fs::remove_file(&path);
        Error::io(
            format!("binding {} to {}", src.display(), path.display()),
            e.into(),
        )
    })
}

/// Run `f` on a new thread that entered the namespace at `path`.
pub fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    spawn_in_netns(path, f)?.join()
}

/// [`in_netns`] on a thread returned at once, so that many run in parallel.
pub fn spawn_in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<NsThread<T>> {
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("netns-enter".into())
        .spawn(move || -> Result<T> {
            let file = File::open(&path)
                .with_context(|| format!("opening namespace {}", path.display()))?;
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering namespace {}", path.display()))?;
            f()
        })
        .map(NsThread)
        .map_err(|e| Error::io("spawning a thread", e))
}

/// TCP states by the names `ss` gives them, in the kernel's order (state 1 is `established`).
pub const TCP_STATES: &[&str] = &[
    "established",
    "syn-sent",
    "syn-recv",
    "fin-wait-1",
    "fin-wait-2",
    "time-wait",
    "close",
    "close-wait",
    "last-ack",
    "listen",
    "closing",
];

/// The kernel's number of a TCP state named as `ss` names it.
pub fn tcp_state_code(name: &str) -> Option<u8> {
    TCP_STATES
        .iter()
        .position(|s| *s == name)
        .map(|i| i as u8 + 1)
}

/// Whether a TCP socket listens on `port` in the namespace at `path`.
pub fn tcp_listening(path: &Path, port: u16) -> Result<bool> {
    tcp_in_state(path, 0x0A, port, true)
}

/// Whether a TCP socket in the namespace at `path` is in state `state` (the kernel's number)
/// with local port `port` (or, unless `local_only`, remote port `port`), read from
/// /proc/thread-self/net/tcp{,6} by a thread inside the namespace.
pub fn tcp_in_state(path: &Path, state: u8, port: u16, local_only: bool) -> Result<bool> {
    in_netns(path, move || {
        let want = format!("{state:02X}");
        let port_of = |a: &str| {
            a.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        let mut found = false;
        for file in ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            found |= text.lines().skip(1).any(|l| {
                // sl local_address rem_address st ...: addresses are ADDR:PORT in hex.
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3
                    && f[3] == want
                    && (port_of(f[1]) == Some(port) || (!local_only && port_of(f[2]) == Some(port)))
            });
        }
        Ok(found)
    })
}

/// Write `value` to `/proc/sys/net/<key with dots as slashes>` of the calling thread's namespace.
/// Interface names may contain dots, so `key` is given as path parts when that matters.
pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(read_only_proc_sys)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("writing {value} to {}", path.display()))
}

/// A sysctl file that cannot be opened for writing because /proc/sys is mounted read-only (as
/// Docker and Kubernetes mount it in a container that is not privileged) gets an error that says
/// how to make it writable; any other error is returned as it is.
fn read_only_proc_sys(e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() != Some(libc::EROFS) {
        return e;
    }
    std::io::Error::new(
        e.kind(),
        "/proc/sys is read-only, as in a container: make /proc/sys/net writable first (with \
         CAP_SYS_ADMIN: `mount --bind /proc/sys/net /proc/sys/net; mount -o remount,bind,rw \
         /proc/sys/net`; the lab image's entrypoint does it)",
    )
}

/// Read a sysctl under /proc/sys/net of the calling thread's namespace.
pub fn read_sysctl(key: &str) -> Result<String> {
    let path = sysctl_path(key);
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string())
}

/// /proc/sys/net path of a dotted key such as `ipv4.conf.eth1.proxy_arp`: the interface part of
/// `ipv4.conf.<if>.x` and `ipv4.neigh.<if>.x` may hold dots itself.
pub fn sysctl_path(key: &str) -> PathBuf {
    let parts: Vec<&str> = key.split('.').collect();
    let mut p = PathBuf::from("/proc/sys/net");
    if parts.len() > 4 && (parts[1] == "conf" || parts[1] == "neigh") {
        p.push(parts[0]);
        p.push(parts[1]);
        p.push(parts[2..parts.len() - 1].join("."));
        p.push(parts[parts.len() - 1]);
    } else {
        for part in parts {
            p.push(part);
        }
    }
    p
}

/// The user who ran tcplab through sudo (`SUDO_UID`, `SUDO_GID`), when tcplab runs as root.
fn invoking_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let uid = std::env::var("SUDO_UID").ok()?.parse().ok()?;
    let gid = std::env::var("SUDO_GID").ok()?.parse().ok()?;
    (uid != 0).then_some((uid, gid))
}

/// Give files tcplab wrote for the user (captures, reports) to the user who ran it through
/// sudo, so they are theirs and not root's: `path`, and everything below it if it is a
/// directory. Nothing happens without sudo. Symbolic links are not followed.
pub fn give_to_invoking_user(path: &Path) -> Result<()> {
    let Some((uid, gid)) = invoking_user() else {
        return Ok(());
    };
    chown_tree(path, uid, gid)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("giving {} to the user who ran sudo", path.display()))?;
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?
        {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Create directory `dir` and its missing parents, each new one given to the user who ran
/// tcplab through sudo (see [`give_to_invoking_user`]).
pub fn create_user_dirs(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        d = p.parent();
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some((uid, gid)) = invoking_user() {
        for p in missing {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to the user who ran sudo", p.display()))?;
        }
    }
    Ok(())
}

/// Whether the calling process runs as root (tests that change the network skip otherwise).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// An error unless the calling process is root (tcplab changes the network: it needs root).
pub fn require_root(what: &str) -> Result<()> {
    if is_root() {
        Ok(())
    } else {
        Err(Error::Environment(format!(
            "{what} needs root: run it with sudo"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_proc_sys_says_how_to_make_it_writable() {
        let erofs = read_only_proc_sys(std::io::Error::from_raw_os_error(libc::EROFS));
        let text = erofs.to_string();
        assert!(
            text.contains("mount -o remount,bind,rw /proc/sys/net"),
            "{text}"
        );
        assert!(text.contains("CAP_SYS_ADMIN"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        let other = read_only_proc_sys(std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(other.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            sysctl_path("ipv4.ip_forward"),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("ipv4.conf.eth1.proxy_arp"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth1/proxy_arp")
        );
        assert_eq!(
            sysctl_path("ipv4.conf.eth1.10.rp_filter"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth1.10/rp_filter")
        );
        assert_eq!(
            sysctl_path("ipv4.neigh.netbside.proxy_delay"),
            PathBuf::from("/proc/sys/net/ipv4/neigh/netbside/proxy_delay")
        );
    }
}
