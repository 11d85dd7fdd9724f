//! Root tests of the datapaths, each in two namespaces of its own (`tlcond-<test>-a/b`) joined
//! by a veth `ca`/`cb` with 10.99.N.1/30 and 10.99.N.2/30; the namespaces are deleted at the end.

use super::*;
use crate::conditions::spec::{Framing, Rate};
use std::process::Command;
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
