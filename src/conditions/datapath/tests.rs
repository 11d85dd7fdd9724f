//! Root tests of the datapaths, each in two namespaces of its own (`tlcond-<test>-a/b`) joined
//! by a veth `ca`/`cb` with 10.99.N.1/30 and 10.99.N.2/30; the namespaces are deleted at the end.

use super::*;
use crate::conditions::spec::{Framing, Rate};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Two namespaces joined by a veth, removed on drop.
struct Pair {
    a: String,
    b: String,
    addr_b: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn in_ns(ns: &str, cmd: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .expect("running ip netns exec")
}

impl Pair {
    /// `None` (with the reason printed) where the test cannot run.
    fn new(test: &str, n: u8) -> Option<Pair> {
        if !crate::sys::is_root() {
            eprintln!("skipped: {test} needs root");
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!("skipped: {test} needs the ip command (iproute2)");
            return None;
        }
        let a = format!("tlcond-{test}-a");
        let b = format!("tlcond-{test}-b");
        for ns in [&a, &b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            ip(&["netns", "add", ns]);
            let _ = in_ns(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            let _ = in_ns(
                ns,
                &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            );
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", "ca", "netns", &a, "type", "veth", "peer", "name", "cb", "netns", &b,
        ]);
        let (addr_a, addr_b) = (format!("10.99.{n}.1"), format!("10.99.{n}.2"));
        ip(&[
            "-n",
            &a,
            "addr",
            "add",
            &format!("{addr_a}/30"),
            "dev",
            "ca",
        ]);
        ip(&[
            "-n",
            &b,
            "addr",
            "add",
            &format!("{addr_b}/30"),
            "dev",
            "cb",
        ]);
        ip(&["-n", &a, "link", "set", "ca", "up"]);
        ip(&["-n", &b, "link", "set", "cb", "up"]);
        Some(Pair { a, b, addr_b })
    }

    fn path_a(&self) -> PathBuf {
        crate::sys::netns_path(&self.a)
    }

    fn path_b(&self) -> PathBuf {
        crate::sys::netns_path(&self.b)
    }

    /// RTTs in ms of the replies of `ping -c count -i interval -W wait` from a to b.
    fn ping(&self, count: u32, interval: &str, wait: u32) -> Vec<f64> {
        let out = in_ns(
            &self.a,
            &[
                "ping",
                "-n",
                "-c",
                &count.to_string(),
                "-i",
                interval,
                "-W",
                &wait.to_string(),
                &self.addr_b,
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split("time=").nth(1))
            .filter_map(|t| t.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// What a worker may change in namespace a: `ip -d link`, and through netlink the qdiscs
    /// of ca and the filters on its clsact hooks.
    fn snapshot(&self) -> (String, String) {
        let link =
            String::from_utf8_lossy(&in_ns(&self.a, &["ip", "-d", "link"]).stdout).into_owned();
        let tc = crate::sys::in_netns(&self.path_a(), || {
            let tc = Tc::open_here()?;
            let index = tc.link_index("ca")?.expect("ca exists");
            Ok(format!(
                "{:?} {:?} {:?}",
                tc.qdiscs(index)?,
                tc.filters(index, true)?,
                tc.filters(index, false)?
            ))
        })
        .expect("listing traffic control");
        (link, tc)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "no ping replies");
    v.sort_by(|x, y| x.total_cmp(y));
    v[v.len() / 2]
}

fn delay(ms: u64) -> Conditions {
    Conditions {
        delay: Some(Duration::from_millis(ms)),
        ..Default::default()
    }
}

#[test]
fn tap_names_fit_the_kernel() {
    assert_eq!(tap_name("eth0"), "tlc-eth0");
    assert_eq!(tap_name("abcdefghijk"), "tlc-abcdefghijk");
    let long = tap_name("netb-sun-eth1x");
    assert_eq!(long.len(), 15);
    assert!(long.starts_with("tlc-netb-s-"), "{long}");
    assert_ne!(long, tap_name("netb-sun-eth1y"));
}

#[test]
fn capabilities_are_probed_without_leftovers() {
    let Some(p) = Pair::new("caps", 10) else {
        return;
    };
    let before = p.snapshot();
    let caps = Capabilities::detect(&p.path_a()).expect("detecting");
    eprintln!("capabilities here: {caps:?}");
    assert!(caps.userspace_datapath(), "{caps:?}");
    assert_eq!(p.snapshot(), before);
}

#[test]
fn one_way_delay_and_stop_restores_the_link() {
    let Some(p) = Pair::new("delay", 11) else {
        return;
    };
    let before = p.snapshot();
    assert!(median(p.ping(3, "0.2", 1)) < 1.0);
    let mut w =
        Worker::start_with(&p.path_a(), "ca", &delay(100), Datapath::Userspace).expect("starting");
    assert_eq!(w.datapath(), Datapath::Userspace);
    assert_ne!(p.snapshot(), before);
    let rtt = median(p.ping(5, "0.3", 2));
    assert!(
        (100.0..106.0).contains(&rtt),
        "rtt {rtt} ms with 100 ms one way"
    );
    w.update(&delay(30)).expect("updating");
    let rtt = median(p.ping(5, "0.3", 2));
    assert!(
        (30.0..36.0).contains(&rtt),
        "rtt {rtt} ms after the update to 30 ms"
    );
    let stats = w.stop().expect("stopping");
    eprintln!("stats: {stats:?}");
    assert!(stats.frames_out >= 10 && stats.frames_in >= stats.frames_out);
    // (about 0.1 ms on an idle machine; other tests running at once make it worse)
    assert!(stats.late_p99_us < 50_000, "{stats:?}");
    assert!(median(p.ping(3, "0.2", 1)) < 1.0);
    assert_eq!(p.snapshot(), before);
}

#[test]
fn slip_line_at_1200_bits_both_ways() {
    let Some(p) = Pair::new("slip", 12) else {
        return;
    };
    let slip = Conditions {
        rate: Some(Rate { bits_per_sec: 1200 }),
        framing: Framing::Slip,
        ..Default::default()
    };
    let wa = Worker::start_with(&p.path_a(), "ca", &slip, Datapath::Userspace).expect("a");
    let wb = Worker::start_with(&p.path_b(), "cb", &slip, Datapath::Userspace).expect("b");
    // the first ping also waits for ARP: 42-byte frames take 0.24 s each way
    let rtts = p.ping(5, "1.5", 5);
    let m = median(rtts.clone());
    eprintln!("1200 bit/s SLIP both ways: RTTs {rtts:?} ms");
    // 84-byte datagram + 2 END bytes, 10 bits a byte, each way: 2 * 860 / 1200 s
    assert!(
        (m - 1433.3).abs() < 1433.3 * 0.05,
        "median {m} ms of {rtts:?}"
    );
    wa.stop().expect("stopping a");
    wb.stop().expect("stopping b");
}

#[test]
fn tcp_through_the_worker_is_byte_exact() {
    let Some(p) = Pair::new("tcp", 13) else {
        return;
    };
    if Command::new("nc").arg("-h").output().is_err() {
        eprintln!("skipped: tcp_through_the_worker_is_byte_exact needs nc");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).expect("writing");
    let wa = Worker::start_with(&p.path_a(), "ca", &delay(2), Datapath::Userspace).expect("a");
    let wb = Worker::start_with(&p.path_b(), "cb", &delay(2), Datapath::Userspace).expect("b");
    let listen = format!("nc -l 5001 > {}", dst.display());
    let mut server = Command::new("ip")
        .args(["netns", "exec", &p.b, "sh", "-c", &listen])
        .spawn()
        .expect("nc -l");
    std::thread::sleep(Duration::from_millis(300));
    let send = format!("nc -N -w 10 {} 5001 < {}", p.addr_b, src.display());
    let started = Instant::now();
    let out = in_ns(&p.a, &["sh", "-c", &send]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = server.wait();
    eprintln!("1 MiB in {:?}", started.elapsed());
    let got = std::fs::read(&dst).expect("reading");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes differ");
    let (sa, sb) = (wa.stop().expect("a"), wb.stop().expect("b"));
    eprintln!("a: {sa:?}\nb: {sb:?}");
    assert_eq!(sa.send_errors + sb.send_errors, 0);
}

/// The body of the worker process the kill test starts (ignored in normal runs).
#[test]
#[ignore = "run as a child process by killed_worker_leaves_a_dead_link_that_leftovers_heal"]
fn worker_child() {
    let (Ok(ns), Ok(sock)) = (std::env::var("TLCOND_NS"), std::env::var("TLCOND_SOCK")) else {
        eprintln!("skipped: worker_child runs only as a child of the kill test");
        return;
    };
    let ms = std::env::var("TLCOND_DELAY_MS").map_or(20, |v| v.parse().unwrap_or(20));
    let c = if ms == 0 {
        Conditions::default()
    } else {
        delay(ms)
    };
    run_worker(Path::new(&ns), "ca", &sock, &c).expect("worker");
}

fn spawn_worker_child(p: &Pair, sock: &str) -> std::process::Child {
    spawn_worker_child_with(p, sock, 20)
}

fn spawn_worker_child_with(p: &Pair, sock: &str, delay_ms: u64) -> std::process::Child {
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .env("TLCOND_DELAY_MS", delay_ms.to_string())
        .args([
            "--exact",
            "conditions::datapath::tests::worker_child",
            "--ignored",
            "--nocapture",
        ])
        .env("TLCOND_NS", p.path_a())
        .env("TLCOND_SOCK", sock)
        .spawn()
        .expect("starting the worker process");
    let deadline = Instant::now() + Duration::from_secs(10);
    while control(sock, &ControlRequest::Stats(())).is_err() {
        assert!(
            Instant::now() < deadline,
            "the worker process never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn killed_worker_leaves_a_dead_link_that_leftovers_heal() {
    let Some(p) = Pair::new("kill", 14) else {
        return;
    };
    let before = p.snapshot();
    let sock = format!("tcplab-test-kill-{}", std::process::id());
    let mut child = spawn_worker_child(&p, &sock);
    let rtt = median(p.ping(3, "0.2", 1));
    assert!((20.0..26.0).contains(&rtt), "rtt {rtt}");
    let reply = control(&sock, &ControlRequest::Set(Box::new(delay(60)))).expect("set");
    assert!(reply.ok, "{reply:?}");
    let rtt = median(p.ping(3, "0.2", 1));
    assert!((60.0..66.0).contains(&rtt), "rtt {rtt}");
    let stats = control(&sock, &ControlRequest::Stats(())).expect("stats");
    assert!(stats.stats.expect("counters").frames_out >= 6);
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(p.ping(2, "0.2", 1).is_empty(), "the link should be dead");
    assert!(remove_leftovers(&p.path_a(), "ca").expect("removing leftovers"));
    assert!(median(p.ping(3, "0.2", 1)) < 1.0);
    assert_eq!(p.snapshot(), before);
    assert!(!remove_leftovers(&p.path_a(), "ca").expect("nothing left"));
}

#[test]
fn daemon_stops_on_request_and_cleans_up() {
    let Some(p) = Pair::new("stop", 15) else {
        return;
    };
    let before = p.snapshot();
    let sock = format!("tcplab-test-stop-{}", std::process::id());
    let mut child = spawn_worker_child(&p, &sock);
    let reply = control(&sock, &ControlRequest::Stop(())).expect("stop");
    assert!(reply.ok, "{reply:?}");
    let status = child.wait().expect("waiting");
    assert!(status.success());
    assert_eq!(p.snapshot(), before);
}

#[test]
fn worker_ends_when_its_interface_goes() {
    let Some(p) = Pair::new("gone", 16) else {
        return;
    };
    let w = Worker::start_with(&p.path_a(), "ca", &delay(5), Datapath::Userspace).expect("a");
    ip(&["-n", &p.a, "link", "del", "ca"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while w.is_running() {
        assert!(Instant::now() < deadline, "the worker still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
    w.stop().expect("stopping after the interface went");
    let links = String::from_utf8_lossy(&in_ns(&p.a, &["ip", "link"]).stdout).into_owned();
    assert!(!links.contains("tlc-"), "{links}");
}

#[test]
fn netem_asked_on_a_kernel_without_it_is_an_error_or_works() {
    let Some(p) = Pair::new("netem", 17) else {
        return;
    };
    let before = p.snapshot();
    match Worker::start_with(&p.path_a(), "ca", &delay(10), Datapath::Netem) {
        Ok(w) => {
            // One way: about 10 ms, far from the 20 ms of a delay on both ways (the first ping
            // also waits for ARP; the margin is for a loaded machine).
            let rtt = median(p.ping(5, "0.2", 1));
            assert!((10.0..17.0).contains(&rtt), "rtt {rtt}");
            w.stop().expect("stopping");
        }
        Err(e) => {
            assert!(e.to_string().contains("no netem"), "{e}");
            // Auto falls back to the userspace datapath
            let w = Worker::start(&p.path_a(), "ca", &delay(10)).expect("auto");
            assert_eq!(w.datapath(), Datapath::Userspace);
            // One way: about 10 ms, far from the 20 ms of a delay on both ways (the first ping
            // also waits for ARP; the margin is for a loaded machine).
            let rtt = median(p.ping(5, "0.2", 1));
            assert!((10.0..17.0).contains(&rtt), "rtt {rtt}");
            w.stop().expect("stopping");
        }
    }
    assert_eq!(p.snapshot(), before);
}

/// CPU seconds used so far by process `pid` (utime + stime of /proc/PID/stat).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = after_name.split_whitespace().collect();
    // fields 14 and 15 of stat; 12 and 13 after the state field that follows the name
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Cost of the userspace datapath (empty conditions, the worker in a process of its own):
/// added RTT, CPU at 1, 10 and 100 Mbit/s of UDP, and the TCP rate it sustains. A
/// measurement, run by hand with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement of several seconds, run by hand"]
fn measure_worker_cost() {
    let Some(p) = Pair::new("cost", 18) else {
        return;
    };
    let base = median(p.ping(100, "0.01", 1));
    let sock = format!("tcplab-test-cost-{}", std::process::id());
    let mut child = spawn_worker_child_with(&p, &sock, 0);
    let with = median(p.ping(100, "0.01", 1));
    eprintln!("median RTT without worker {base:.3} ms, with an empty one {with:.3} ms");
    let mut server = Command::new("ip")
        .args(["netns", "exec", &p.b, "iperf3", "-s", "-p", "5201"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 -s");
    std::thread::sleep(Duration::from_millis(500));
    for rate in ["1M", "10M", "100M", "300M", "600M"] {
        let cpu0 = cpu_seconds(child.id());
        let out = in_ns(
            &p.a,
            &[
                "iperf3", "-c", &p.addr_b, "-u", "-b", rate, "-t", "5", "-l", "1400",
            ],
        );
        let cpu = (cpu_seconds(child.id()) - cpu0) / 5.0;
        let text = String::from_utf8_lossy(&out.stdout);
        let receiver = text.lines().rfind(|l| l.contains("receiver")).unwrap_or("");
        eprintln!(
            "UDP {rate}bit/s: worker CPU {:.1} %; {receiver}",
            cpu * 100.0
        );
    }
    let cpu0 = cpu_seconds(child.id());
    let out = in_ns(&p.a, &["iperf3", "-c", &p.addr_b, "-t", "5"]);
    let cpu = (cpu_seconds(child.id()) - cpu0) / 5.0;
    let text = String::from_utf8_lossy(&out.stdout);
    let receiver = text.lines().rfind(|l| l.contains("receiver")).unwrap_or("");
    eprintln!("TCP: worker CPU {:.1} %; {receiver}", cpu * 100.0);
    let stats = control(&sock, &ControlRequest::Stop(())).expect("stop");
    eprintln!("{stats:?}");
    let _ = child.wait();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        with - base < 1.0,
        "an empty worker adds {:.3} ms",
        with - base
    );
}

/// One frame a test capture saw.
struct Seen {
    /// the kernel's timestamp (CLOCK_REALTIME), in ms
    at_ms: f64,
    /// sent by this end (`PACKET_OUTGOING`)
    outgoing: bool,
    frame: Vec<u8>,
}

impl Seen {
    /// `(type, sequence)` of an ICMP echo request (8) or reply (0) in an IPv4 frame.
    fn echo(&self) -> Option<(u8, u16)> {
        let f = &self.frame;
        if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[23] != 1 {
            return None;
        }
        let icmp = 14 + usize::from(f[14] & 0x0f) * 4;
        let t = *f.get(icmp)?;
        let seq = u16::from_be_bytes([*f.get(icmp + 6)?, *f.get(icmp + 7)?]);
        matches!(t, 0 | 8).then_some((t, seq))
    }
}

/// A capture on one interface as tcpdump makes it (an `AF_PACKET` socket of every protocol
/// bound to the interface, kernel timestamps), on a thread in the interface's namespace.
struct TestCapture {
    stop: Arc<AtomicBool>,
    thread: crate::sys::NsThread<Vec<Seen>>,
}

fn setsockopt_int(fd: i32, level: i32, name: i32, value: libc::c_int) {
    // SAFETY: `value` is a live c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

/// Receive one frame (or none within the socket's timeout) with its timestamp.
fn receive(fd: i32, buf: &mut [u8]) -> Option<Seen> {
    // SAFETY: plain old data, all zeroes valid.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: plain old data, all zeroes valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return None;
    }
    let mut at_ms = f64::NAN;
    // SAFETY: the control buffer was filled by the kernel; CMSG_* walk it within its length.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                at_ms = ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some(Seen {
        at_ms,
        outgoing: addr.sll_pkttype == libc::PACKET_OUTGOING,
        frame: buf[..n as usize].to_vec(),
    })
}

impl TestCapture {
    /// Start capturing on `iface` of the namespace at `netns`; returns once the socket is bound.
    fn start(netns: &Path, iface: &str) -> TestCapture {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (flag, iface) = (stop.clone(), iface.to_string());
        let thread = crate::sys::spawn_in_netns(netns, move || {
            let name = std::ffi::CString::new(iface.clone()).expect("name");
            // SAFETY: plain if_nametoindex(3) and socket(2).
            let (index, fd) = unsafe {
                (
                    libc::if_nametoindex(name.as_ptr()),
                    libc::socket(
                        libc::AF_PACKET,
                        libc::SOCK_RAW,
                        i32::from((libc::ETH_P_ALL as u16).to_be()),
                    ),
                )
            };
            assert!(index > 0 && fd >= 0, "capture socket on {iface}");
            // SAFETY: `fd` is ours alone.
            let owned =
                unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1);
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            // SAFETY: `timeout` is a live timeval of the size given.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&timeout as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            // SAFETY: plain old data.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = index as i32;
            // SAFETY: `sll` is a valid sockaddr_ll of the size given.
            let rc = unsafe {
                libc::bind(
                    fd,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "binding the capture to {iface}");
            let _ = ready_tx.send(());
            let mut buf = vec![0u8; 65_536];
            let mut seen = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                seen.extend(receive(fd, &mut buf));
            }
            drop(owned);
            Ok(seen)
        })
        .expect("capture thread");
        ready_rx.recv().expect("the capture started");
        TestCapture { stop, thread }
    }

    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("capture")
    }
}

/// The timestamps of the echo frames of `kind` with sequence `seq`, sent (`outgoing`) or
/// received by the capturing end.
fn echo_times(seen: &[Seen], kind: u8, seq: u16, outgoing: bool) -> Vec<f64> {
    seen.iter()
        .filter(|s| s.outgoing == outgoing && s.echo() == Some((kind, seq)))
        .map(|s| s.at_ms)
        .collect()
}

#[test]
fn captures_on_the_conditioned_interface_see_each_frame_once_when_it_leaves() {
    let Some(p) = Pair::new("capture", 19) else {
        return;
    };
    let w = Worker::start_with(&p.path_a(), "ca", &delay(100), Datapath::Userspace).expect("a");
    if w.stats().datapath != "userspace-bpf" {
        eprintln!(
            "skipped: this kernel loads no eBPF classifier ({:?})",
            w.stats()
        );
        return;
    }
    // the TAP sees each frame when the node sends it; ca when it leaves; cb when it arrives
    let node = TestCapture::start(&p.path_a(), &tap_name("ca"));
    let wire = TestCapture::start(&p.path_a(), "ca");
    let peer = TestCapture::start(&p.path_b(), "cb");
    let rtts = p.ping(5, "0.3", 2);
    std::thread::sleep(Duration::from_millis(300));
    let (node, wire, peer) = (node.finish(), wire.finish(), peer.finish());
    let stats = w.stop().expect("stopping");
    eprintln!("rtts {rtts:?}; {stats:?}");
    assert_eq!(rtts.len(), 5, "replies {rtts:?}");
    for seq in 1..=5 {
        let sent = echo_times(&node, 8, seq, true);
        let left = echo_times(&wire, 8, seq, true);
        let arrived = echo_times(&peer, 8, seq, false);
        let (replies, back) = (
            echo_times(&peer, 0, seq, true),
            echo_times(&wire, 0, seq, false),
        );
        eprintln!("echo {seq}: sent {sent:?} left {left:?} arrived {arrived:?}");
        assert_eq!(
            (
                sent.len(),
                left.len(),
                arrived.len(),
                replies.len(),
                back.len()
            ),
            (1, 1, 1, 1, 1),
            "echo {seq} seen once at each place"
        );
        let shaped = left[0] - sent[0];
        assert!(
            (99.0..120.0).contains(&shaped),
            "echo {seq} left after {shaped} ms"
        );
        let transit = arrived[0] - left[0];
        assert!(
            (-0.5..5.0).contains(&transit),
            "echo {seq} arrived {transit} ms after"
        );
    }
    // no loop: ca sends exactly the frames the node sent, each once
    let node_sent = node.iter().filter(|s| s.outgoing).count();
    let wire_sent = wire.iter().filter(|s| s.outgoing).count();
    assert_eq!(node_sent, wire_sent, "frames sent by the node and by ca");
    assert_eq!(stats.frames_out as usize, wire_sent, "{stats:?}");
}

#[test]
fn mirred_fallback_conditions_and_says_so() {
    let Some(p) = Pair::new("mirred", 20) else {
        return;
    };
    let before = p.snapshot();
    let w = userspace::UserspaceWorker::start(
        &p.path_a(),
        "ca",
        &delay(40),
        Some(userspace::Redirect::Mirred),
    )
    .expect("starting with u32 and mirred");
    assert_eq!(w.stats().datapath, "userspace-mirred");
    let rtt = median(p.ping(4, "0.2", 1));
    assert!((40.0..46.0).contains(&rtt), "rtt {rtt}");
    let stats = w.stop().expect("stopping");
    assert_eq!(stats.datapath, "userspace-mirred");
    assert!(stats.frames_out >= 4, "{stats:?}");
    assert_eq!(p.snapshot(), before);
}

#[test]
fn leftovers_are_only_tcplabs_filters_and_qdiscs() {
    let Some(p) = Pair::new("left", 21) else {
        return;
    };
    if Command::new("tc").arg("-V").output().is_err() {
        eprintln!("skipped: leftovers_are_only_tcplabs_filters_and_qdiscs needs tc (iproute2)");
        return;
    }
    let tc = |args: &str| {
        let out = in_ns(&p.a, &["sh", "-c", &format!("tc {args}")]);
        assert!(
            out.status.success(),
            "tc {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // somebody else's: a root qdisc with tcplab's handle but not netem, an egress filter at
    // another priority
    tc("qdisc add dev ca root handle 7c1: pfifo");
    tc("qdisc add dev ca clsact");
    tc("filter add dev ca egress pref 100 protocol all u32 match u32 0 0");
    let theirs = p.snapshot();
    assert!(!remove_leftovers(&p.path_a(), "ca").expect("nothing of ours"));
    assert_eq!(p.snapshot(), theirs);
    // ours, u32 kind (the fallback's), next to theirs: only ours goes, clsact stays for theirs
    tc(&format!(
        "filter add dev ca egress pref {FILTER_PREF} protocol all u32 match u32 0 0"
    ));
    assert!(remove_leftovers(&p.path_a(), "ca").expect("removing ours"));
    assert_eq!(p.snapshot(), theirs);
}
