//! The fixtures of the capture tests: two (or three) network namespaces of
//! our own (tcplab-captest-*) joined by veths, deleted on drop; traffic
//! between them (ping, a TCP exchange with nc, a raw frame); a capture run on
//! a thread; tshark's reading of a file.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::super::netns::in_netns;
use super::super::{Capture, CaptureError, CaptureSpec, Sink, Summary};

pub(super) fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Skips (returns true) unless root with `ip` (and the other tools) at hand.
pub(super) fn skip_unless_root(test: &str, tools: &[&str]) -> bool {
    if !crate::sys::is_root() {
        eprintln!("skipped: {test} needs root (network namespaces, packet sockets)");
        return true;
    }
    for t in std::iter::once(&"ip").chain(tools) {
        if !have(t) {
            eprintln!("skipped: {test} needs {t}");
            return true;
        }
    }
    false
}

pub(super) fn run_cmd(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A network namespace of our own, deleted on drop.
pub(super) struct Netns {
    pub(super) name: String,
}

impl Netns {
    pub(super) fn new(name: String) -> Netns {
        assert!(name.starts_with("tcplab-captest-"));
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        run_cmd(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        // No IPv6 chatter (router solicitations, MLD): exact packet counts.
        for knob in ["all", "default"] {
            let path = format!("net.ipv6.conf.{knob}.disable_ipv6=1");
            let _ = Command::new("ip")
                .args(["netns", "exec", &ns.name, "sysctl", "-q", "-w", &path])
                .status();
        }
        ns
    }

    pub(super) fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    pub(super) fn ip(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run_cmd(&v)
    }

    /// `ip netns exec NAME timeout 20 ARGS...`
    pub(super) fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, "timeout", "20"])
            .args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Nodes a and b; link `i` is veth `va{i}` in a with 10.99.{i}.1/24 or, for
/// link 1, 198.51.100.1/24, facing `vb{i}` in b (.2).
pub(super) struct Lab {
    pub(super) a: Netns,
    pub(super) b: Netns,
}

impl Lab {
    pub(super) fn new(links: usize) -> Lab {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let stem = format!("tcplab-captest-{}-{n}", std::process::id());
        let lab = Lab {
            a: Netns::new(format!("{stem}-a")),
            b: Netns::new(format!("{stem}-b")),
        };
        for i in 1..=links {
            let (va, vb) = (format!("va{i}"), format!("vb{i}"));
            run_cmd(&[
                "ip",
                "link",
                "add",
                &va,
                "netns",
                &lab.a.name,
                "type",
                "veth",
                "peer",
                "name",
                &vb,
                "netns",
                &lab.b.name,
            ]);
            let net = Lab::net(i);
            lab.a
                .ip(&["addr", "add", &format!("{net}.1/24"), "dev", &va]);
            lab.b
                .ip(&["addr", "add", &format!("{net}.2/24"), "dev", &vb]);
            lab.a.ip(&["link", "set", &va, "up"]);
            lab.b.ip(&["link", "set", &vb, "up"]);
        }
        lab
    }

    fn net(i: usize) -> String {
        if i == 1 {
            "198.51.100".into()
        } else {
            format!("10.99.{i}")
        }
    }

    pub(super) fn ping(&self, dst: &str, count: u32, size: u32) {
        let out = self
            .a
            .exec(&[
                "ping",
                "-n",
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "2",
                "-s",
                &size.to_string(),
                dst,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ping {dst}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// nc listens in b on dst:port; nc in a sends "hello\n" and closes.
    pub(super) fn tcp_exchange(&self, dst: &str, port: u16) {
        let port_s = port.to_string();
        let server = self
            .b
            .exec(&["nc", "-l", dst, &port_s])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let filter = format!("sport = :{port}");
        let t0 = Instant::now();
        loop {
            let out = self.b.exec(&["ss", "-Hltn", &filter]).output().unwrap();
            if !out.stdout.is_empty() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "nc never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut client = self
            .a
            .exec(&["nc", "-N", "-w", "5", dst, &port_s])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        client.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        assert!(client.wait().unwrap().success(), "nc client failed");
        let got = server.wait_with_output().unwrap();
        assert_eq!(got.stdout, b"hello\n");
    }
}

pub(super) type Lines = Vec<(String, String, u64)>;

/// Opens the capture now (so that the traffic that follows is seen), runs it
/// on a thread, and returns a function that stops it and gives the results.
pub(super) fn start(
    spec: &CaptureSpec,
    sink: Sink,
) -> impl FnOnce() -> (Result<Summary, CaptureError>, Lines) {
    let cap = Capture::open(spec).expect("open capture");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let r = cap.run(sink, &stop2, &mut |iface, p, ts| {
            lines.push((iface.to_string(), p.to_string(), ts));
        });
        (r, lines)
    });
    move || {
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap()
    }
}

pub(super) fn tshark(file: &Path, fields: &[&str]) -> Vec<String> {
    let mut c = Command::new("tshark");
    c.arg("-n").arg("-r").arg(file);
    if !fields.is_empty() {
        c.args(["-T", "fields"]);
        for f in fields {
            c.args(["-e", f]);
        }
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tshark -r {}: {stderr}",
        file.display()
    );
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("could be dangerous"))
        .collect();
    assert!(complaints.is_empty(), "tshark complained: {complaints:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

pub(super) fn count_matching(lines: &Lines, needle: &str) -> usize {
    lines.iter().filter(|(_, l, _)| l.contains(needle)).count()
}

/// Sends one raw frame out of `iface` in `netns` (from a thread inside it).
pub(super) fn send_raw(netns: &Path, iface: &str, frame: &[u8]) {
    let iface = iface.to_string();
    in_netns(Some(netns), move || {
        let idx = nix::net::if_::if_nametoindex(iface.as_str()).unwrap();
        // SAFETY: plain socket(2); closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: fd is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = idx as i32;
        sll.sll_halen = 6;
        // SAFETY: frame and sll are valid for the sizes given.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(n, frame.len() as isize, "{}", io::Error::last_os_error());
        Ok(())
    })
    .unwrap();
}
