//! The userspace datapath, for every kernel: a clsact qdisc on the interface with an egress u32
//! match-all filter whose mirred action redirects every frame the node sends to a TAP device;
//! the frame loop ([`super::worker`]) reads them there and writes each, at its time, out of the
//! interface through an `AF_PACKET` socket that bypasses the qdisc and the egress hook.
//!
//! What is made is recorded and removed on stop, and only that. The TAP is not persistent: it
//! disappears with the worker's descriptor, even when the worker is killed; the filter and the
//! qdisc stay then (the link is dead) until [`super::remove_leftovers`] removes them.

use super::tap::{Tap, Wake, WireSender, monotonic_now, tighten_timer_slack};
use super::tc::Tc;
use super::worker::{self, Command, Ended, Line, LoopIo};
use super::{FILTER_PREF, Stats, tap_name};
use crate::conditions::spec::Conditions;
use crate::error::{Context, Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};

/// What the datapath made on an interface.
#[derive(Debug, Clone, Copy)]
struct Made {
    /// the conditioned interface
    ifindex: u32,
    /// the clsact qdisc is ours (the interface had none)
    clsact: bool,
    /// the redirect filter is in place
    filter: bool,
}

/// Remove a redirect filter a killed worker left: it exists while no TAP of that name does
/// (a live worker holds its TAP open).
fn heal_leftover(tc: &Tc, ifindex: u32, tap: &str) -> Result<()> {
    let ours = tc
        .filters(ifindex, true)?
        .iter()
        .any(|f| f.pref == FILTER_PREF);
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

/// Make the TAP and the redirect on interface `iface` of the calling thread's namespace.
fn install(tc: &Tc, iface: &str) -> Result<(Tap, WireSender, Made)> {
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
    let wire =
        WireSender::open(ifindex).with_context(|| format!("opening a packet socket on {iface}"))?;
    let mut made = Made {
        ifindex,
        clsact: tc.add_clsact(ifindex)?,
        filter: false,
    };
    if let Err(e) = tc.add_egress_redirect(ifindex, FILTER_PREF, tap_index) {
        let _ = uninstall(tc, made);
        return Err(e.context(format!("redirecting {iface} to {name}")));
    }
    made.filter = true;
    Ok((tap, wire, made))
}

/// Remove what [`install`] made (the TAP goes with its descriptor). Gone already is fine:
/// the interface may have been deleted.
fn uninstall(tc: &Tc, made: Made) -> Result<()> {
    if made.filter {
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
    /// and run the frame loop there; returns once the redirect is in place.
    pub(crate) fn start(netns: &Path, iface: &str, c: &Conditions) -> Result<UserspaceWorker> {
        let (commands, receiver) = channel();
        let wake = Arc::new(Wake::new().context("creating an eventfd")?);
        let stats = Arc::new(Mutex::new(Stats {
            datapath: "userspace".into(),
            ..Stats::default()
        }));
        let running = Arc::new(AtomicBool::new(true));
        let (ready_tx, ready_rx) = sync_channel::<Result<()>>(1);
        let seed =
            crate::util::fnv1a64(&[iface.as_bytes(), &monotonic_now().as_nanos().to_ne_bytes()]);
        let (iface_owned, c, thread_wake, thread_stats, thread_running) = (
            iface.to_string(),
            c.clone(),
            wake.clone(),
            stats.clone(),
            running.clone(),
        );
        let thread = crate::sys::spawn_in_netns(netns, move || {
            let ended = serve(
                &iface_owned,
                &c,
                seed,
                thread_wake,
                thread_stats,
                receiver,
                ready_tx,
            );
            thread_running.store(false, Ordering::SeqCst);
            ended
        })?;
        let started = match ready_rx.recv() {
            Ok(Ok(())) => Ok(UserspaceWorker {
                commands,
                wake,
                stats,
                running,
                thread: Some(thread),
            }),
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

/// The worker thread, inside the namespace: install, report ready, loop, uninstall.
fn serve(
    iface: &str,
    c: &Conditions,
    seed: u64,
    wake: Arc<Wake>,
    stats: Arc<Mutex<Stats>>,
    commands: std::sync::mpsc::Receiver<Command>,
    ready: std::sync::mpsc::SyncSender<Result<()>>,
) -> Result<Ended> {
    tighten_timer_slack();
    let setup = Tc::open_here().and_then(|tc| install(&tc, iface).map(|parts| (tc, parts)));
    let (tc, (tap, wire, made)) = match setup {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(Ended::Stopped);
        }
    };
    let _ = ready.send(Ok(()));
    let io = LoopIo {
        tap,
        wire,
        ifindex: made.ifindex,
        wake,
    };
    let mut line = Line::new(c, seed, stats);
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
