//! The userspace datapath, for every kernel: a clsact qdisc on the interface with an egress
//! filter that redirects every frame the node sends to a TAP device; the frame loop
//! ([`super::worker`]) reads them there and writes each, at its time, out of the interface
//! through an `AF_PACKET` socket. Two filters can do it (`Redirect`):
//! - an eBPF classifier ([`super::bpf`]) that lets frames marked [`PASS_MARK`] pass: the
//!   worker's socket marks its frames, which then take the interface's normal transmit path
//!   (qdisc, packet taps: a capture on the interface sees each once, when it leaves);
//! - where the kernel loads no eBPF program, a u32 match-all filter with a mirred action, which
//!   redirects everything: the worker's socket then bypasses the qdisc and the egress hook, and
//!   captures on the interface do not see the frames it sends.
//!
//! What is made is recorded and removed on stop, and only that. The TAP is not persistent: it
//! disappears with the worker's descriptor, even when the worker is killed; the filter and the
//! qdisc stay then (the link is dead) until [`super::remove_leftovers`] removes them.

use super::bpf::{FILTER_NAME, PASS_MARK, load_redirect};
use super::tap::{SendPath, Tap, Wake, WireSender, monotonic_now, tighten_timer_slack};
use super::tc::Tc;
use super::worker::{self, Command, Ended, Line, LoopIo};
use super::{FILTER_PREF, Stats, tap_name};
use crate::conditions::spec::Conditions;
use crate::error::{Context, Error, Result};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};

/// How the node's frames are taken to the TAP, and so how the worker sends them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// a cls_bpf classifier ([`super::bpf`]); the worker's marked frames pass it and take the
    /// normal transmit path, where captures on the interface see them
    Bpf,
    /// a u32 match-all filter with a mirred action; the worker's frames bypass the qdisc, and
    /// captures on the interface miss them
    Mirred,
}

impl Redirect {
    /// The datapath's name in the counters.
    pub(crate) fn datapath_name(self) -> &'static str {
        match self {
            Redirect::Bpf => "userspace-bpf",
            Redirect::Mirred => "userspace-mirred",
        }
    }

    fn send_path(self) -> SendPath {
        match self {
            Redirect::Bpf => SendPath::Marked(PASS_MARK),
            Redirect::Mirred => SendPath::QdiscBypass,
        }
    }
}

/// What the datapath made on an interface.
#[derive(Debug, Clone, Copy)]
struct Made {
    /// the conditioned interface
    ifindex: u32,
    /// the clsact qdisc is ours (the interface had none)
    clsact: bool,
    /// the redirect filter in place
    redirect: Option<Redirect>,
}

/// Remove a redirect filter a killed worker left: it exists while no TAP of that name does
/// (a live worker holds its TAP open).
fn heal_leftover(tc: &Tc, ifindex: u32, tap: &str) -> Result<()> {
    let ours = tc
        .filters(ifindex, true)?
        .iter()
        .any(|f| f.pref == FILTER_PREF && (f.kind == "bpf" || f.kind == "u32"));
    if !ours {
        return Ok(());
    }
    if tc.link_index(tap)?.is_some() {
        return Err(Error::Usage(format!(
            "link conditions already run on this interface ({tap} exists): stop them first"
        )));
    }
    tc.delete_egress_filters(ifindex, FILTER_PREF)?;
    Ok(())
}

/// Put the redirect of interface `ifindex` to the TAP `tap_index` in place: `want`, or the eBPF
/// classifier where the kernel takes it and the u32 filter with mirred elsewhere.
fn add_redirect(tc: &Tc, ifindex: u32, tap_index: u32, want: Option<Redirect>) -> Result<Redirect> {
    let mut bpf_error = None;
    if want != Some(Redirect::Mirred) {
        let attached = load_redirect(tap_index)
            .and_then(|prog| tc.add_egress_bpf(ifindex, FILTER_PREF, prog.as_fd(), FILTER_NAME));
        match attached {
            Ok(()) => return Ok(Redirect::Bpf),
            Err(e) if want == Some(Redirect::Bpf) => return Err(e),
            Err(e) => bpf_error = Some(e),
        }
    }
    match tc.add_egress_redirect(ifindex, FILTER_PREF, tap_index) {
        Ok(()) => Ok(Redirect::Mirred),
        Err(e) => Err(match bpf_error {
            Some(b) => Error::Environment(format!(
                "no egress redirect works here: eBPF classifier: {b}; u32 with mirred: {e}"
            )),
            None => e,
        }),
    }
}

/// Make the TAP and the redirect on interface `iface` of the calling thread's namespace.
fn install(tc: &Tc, iface: &str, want: Option<Redirect>) -> Result<(Tap, WireSender, Made)> {
    let ifindex = tc
        .link_index(iface)?
        .ok_or_else(|| Error::Usage(format!("no interface {iface} in the node's namespace")))?;
    let name = tap_name(iface);
    heal_leftover(tc, ifindex, &name)?;
    let tap = Tap::create(&name).with_context(|| format!("creating TAP device {name}"))?;
    // The TAP must send nothing of its own (IPv6 router solicitations would reach the wire).
    let _ = crate::sys::write_sysctl(&format!("ipv6.conf.{name}.disable_ipv6"), "1");
    let tap_index = tc
        .link_index(&name)?
        .ok_or_else(|| Error::Other(format!("TAP device {name} vanished after creation")))?;
    tc.set_up(tap_index)?;
    let mut made = Made {
        ifindex,
        clsact: tc.add_clsact(ifindex)?,
        redirect: None,
    };
    let redirect = match add_redirect(tc, ifindex, tap_index, want) {
        Ok(r) => r,
        Err(e) => {
            let _ = uninstall(tc, made);
            return Err(e.context(format!("redirecting {iface} to {name}")));
        }
    };
    made.redirect = Some(redirect);
    match WireSender::open(ifindex, redirect.send_path()) {
        Ok(wire) => Ok((tap, wire, made)),
        Err(e) => {
            let _ = uninstall(tc, made);
            Err(e).with_context(|| format!("opening a packet socket on {iface}"))
        }
    }
}

/// Remove what [`install`] made (the TAP goes with its descriptor). Gone already is fine:
/// the interface may have been deleted.
fn uninstall(tc: &Tc, made: Made) -> Result<()> {
    if made.redirect.is_some() {
        tc.delete_egress_filters(made.ifindex, FILTER_PREF)?;
    }
    if made.clsact {
        let others = tc.filters(made.ifindex, true)?.len() + tc.filters(made.ifindex, false)?.len();
        if others == 0 {
            tc.delete_clsact(made.ifindex)?;
        }
    }
    Ok(())
}

/// A running userspace datapath on one interface.
pub(crate) struct UserspaceWorker {
    commands: Sender<Command>,
    wake: Arc<Wake>,
    stats: Arc<Mutex<Stats>>,
    running: Arc<AtomicBool>,
    thread: Option<crate::sys::NsThread<Ended>>,
}

impl UserspaceWorker {
    /// Enter the namespace at `netns` on a thread of its own, install the redirect on `iface`
    /// (`want`, or the best the kernel has: [`add_redirect`]) and run the frame loop there;
    /// returns once the redirect is in place.
    pub(crate) fn start(
        netns: &Path,
        iface: &str,
        c: &Conditions,
        want: Option<Redirect>,
    ) -> Result<UserspaceWorker> {
        let (commands, receiver) = channel();
        let wake = Arc::new(Wake::new().context("creating an eventfd")?);
        let stats = Arc::new(Mutex::new(Stats {
            datapath: "userspace".into(),
            ..Stats::default()
        }));
        let running = Arc::new(AtomicBool::new(true));
        let (ready_tx, ready_rx) = sync_channel::<Result<Redirect>>(1);
        let job = Job {
            iface: iface.to_string(),
            conditions: c.clone(),
            seed: crate::util::fnv1a64(&[
                iface.as_bytes(),
                &monotonic_now().as_nanos().to_ne_bytes(),
            ]),
            want,
            wake: wake.clone(),
            stats: stats.clone(),
        };
        let thread_running = running.clone();
        let thread = crate::sys::spawn_in_netns(netns, move || {
            let ended = serve(job, receiver, ready_tx);
            thread_running.store(false, Ordering::SeqCst);
            ended
        })?;
        let started = match ready_rx.recv() {
            Ok(Ok(redirect)) => {
                if let Ok(mut s) = stats.lock() {
                    s.datapath = redirect.datapath_name().into();
                }
                Ok(UserspaceWorker {
                    commands,
                    wake,
                    stats,
                    running,
                    thread: Some(thread),
                })
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(thread
                .join()
                .err()
                .unwrap_or_else(|| Error::Other("the conditions worker ended at once".into()))),
        };
        started.with_context(|| format!("conditioning {iface}"))
    }

    /// Give the loop new conditions (the frames in flight and the line's state are kept).
    pub(crate) fn update(&self, c: &Conditions) -> Result<()> {
        self.commands
            .send(Command::Set(Box::new(c.clone())))
            .map_err(|_| Error::Other("the conditions worker has ended".into()))?;
        self.wake.notify();
        Ok(())
    }

    /// The counters as last published.
    pub(crate) fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether the loop still runs (false after its interface disappeared).
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Stop the loop and remove what it made; the final counters.
    pub(crate) fn stop(mut self) -> Result<Stats> {
        self.halt()?;
        Ok(self.stats())
    }

    fn halt(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.commands.send(Command::Stop);
        self.wake.notify();
        thread.join().map(|_| ())
    }
}

impl Drop for UserspaceWorker {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// What the worker thread is given.
struct Job {
    iface: String,
    conditions: Conditions,
    seed: u64,
    want: Option<Redirect>,
    wake: Arc<Wake>,
    stats: Arc<Mutex<Stats>>,
}

/// The worker thread, inside the namespace: install, report ready (with the redirect in
/// use), loop, uninstall.
fn serve(
    job: Job,
    commands: std::sync::mpsc::Receiver<Command>,
    ready: std::sync::mpsc::SyncSender<Result<Redirect>>,
) -> Result<Ended> {
    tighten_timer_slack();
    let iface = job.iface.as_str();
    let setup =
        Tc::open_here().and_then(|tc| install(&tc, iface, job.want).map(|parts| (tc, parts)));
    let (tc, (tap, wire, made)) = match setup {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(Ended::Stopped);
        }
    };
    let redirect = made.redirect.unwrap_or(Redirect::Mirred);
    let _ = ready.send(Ok(redirect));
    let io = LoopIo {
        tap,
        wire,
        ifindex: made.ifindex,
        wake: job.wake,
    };
    let mut line = Line::new(
        &job.conditions,
        job.seed,
        redirect.datapath_name(),
        job.stats,
    );
    let ended = worker::run(&io, &mut line, &commands);
    // The redirect goes first, then the TAP (closing it removes it).
    let removed = match ended {
        Ok(Ended::InterfaceGone) => Ok(()),
        _ => uninstall(&tc, made),
    };
    drop(io);
    let ended = ended?;
    removed.with_context(|| format!("removing the redirect of {iface}"))?;
    Ok(ended)
}
