//! Putting link conditions on the wire: what LEAVES one interface of a lab node (a veth in the
//! node's network namespace) is delayed, rate-limited, lost, ... as [`Conditions`] say.
//!
//! Two datapaths do it:
//! - **netem** ([`netem`]): the kernel's netem qdisc (handle [`NETEM_HANDLE`]) as the
//!   interface's root qdisc, set through rtnetlink. Distro kernels have it; nothing runs in
//!   userspace.
//! - **userspace** ([`userspace`], [`worker`]): for every kernel (and for a deterministic
//!   `drop_next`, which netem cannot do). A clsact egress filter redirects the node's frames to
//!   a TAP device; a worker thread feeds them to the [`Shaper`](crate::conditions::shaper::Shaper)
//!   and writes each out of the interface at its time through an `AF_PACKET` socket. The
//!   filter is an eBPF classifier ([`bpf`]) that lets the worker's frames (marked
//!   [`PASS_MARK`]) take the normal transmit path; where the kernel loads no eBPF program, a
//!   u32 filter with a mirred action, and the worker's socket bypasses the qdisc.
//!
//! [`Worker::start`] picks one ([`Datapath::Auto`]: netem when the kernel has it and the
//! conditions need nothing else), [`WorkerHandle`] changes the conditions live and stops them;
//! [`run_worker`] is the same as a daemon process served over an abstract unix socket;
//! [`remove_leftovers`] removes what a killed worker left (the redirect: its link is dead; or
//! its netem qdisc).
//!
//! Captures: a capture on the conditioned interface sees each frame the node sends once, when
//! it leaves the conditions (after netem; after the worker, with the eBPF classifier). With
//! the u32 + mirred fallback it sees none of them (the worker's socket bypasses the packet
//! taps): the peer's end, or the TAP, sees them; the counters' datapath name says which
//! redirect is in use (`userspace-bpf`, `userspace-mirred`).
//!
//! Invariants: no `tc` process is run; a namespace is entered only by a thread made for it;
//! only what this module made (recorded, or named [`tap_name`] / priority [`FILTER_PREF`] with
//! kind `bpf` or `u32` / root handle [`NETEM_HANDLE`]) is ever removed.

pub mod bpf;
mod daemon;
pub mod netem;
mod tap;
mod tc;
pub mod userspace;
pub mod worker;

pub use bpf::PASS_MARK;
pub use daemon::{ControlReply, ControlRequest, control, run_worker};
pub use netem::NETEM_HANDLE;

use crate::conditions::spec::Conditions;
use crate::error::{Error, Result};
use netem::{NetemOutcome, apply_netem, netem_can_express, no_netem, remove_netem};
use serde::{Deserialize, Serialize};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use tc::Tc;
use userspace::UserspaceWorker;

/// Priority (`pref`) of tcplab's redirect filter on a clsact egress hook: with its kind (`bpf`
/// or `u32`), how [`remove_leftovers`] recognises it.
pub const FILTER_PREF: u16 = 0x7c1;
/// Prefix of the TAP devices the userspace datapath makes.
pub const TAP_PREFIX: &str = "tlc-";

/// The TAP device's name for interface `iface`: `tlc-<iface>`, or, when that exceeds the
/// kernel's 15 bytes, `tlc-` + the first 6 bytes + `-` + 4 hex digits of a hash of the name.
pub fn tap_name(iface: &str) -> String {
    let full = format!("{TAP_PREFIX}{iface}");
    if full.len() <= 15 {
        return full;
    }
    let mut cut = 6;
    while !iface.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{TAP_PREFIX}{}-{:04x}",
        &iface[..cut],
        crate::util::short_hash(iface)
    )
}

/// Which datapath conditions an interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datapath {
    /// netem if the kernel has it and it can do the conditions, else userspace
    #[default]
    Auto,
    /// the kernel's netem qdisc (an error where the kernel has none)
    Netem,
    /// the TAP redirect and a worker thread
    Userspace,
}

/// Counters of a conditioned direction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// `netem`, or `userspace-bpf` / `userspace-mirred` (the userspace datapath with the eBPF
    /// classifier, or with the u32 + mirred fallback)
    pub datapath: String,
    /// frames the node sent
    pub frames_in: u64,
    /// their bytes
    pub bytes_in: u64,
    /// frames put on the wire
    pub frames_out: u64,
    /// their bytes
    pub bytes_out: u64,
    /// frames dropped (by the conditions or a full queue)
    pub dropped: u64,
    /// frames waiting for their time
    pub queued: u64,
    /// frames the interface refused
    pub send_errors: u64,
    /// the latest a frame left after its time, in microseconds
    pub late_max_us: u64,
    /// 99 % of the frames left at most this late, in microseconds (5 us resolution)
    pub late_p99_us: u64,
}

/// What the kernel of a namespace offers the datapaths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// the netem qdisc
    pub netem: bool,
    /// the clsact qdisc
    pub clsact: bool,
    /// the u32 classifier with the mirred action
    pub mirred: bool,
    /// eBPF classifiers (cls_bpf, direct action) loaded through bpf(2)
    #[serde(default)]
    pub bpf: bool,
    /// TUN/TAP devices
    pub tap: bool,
}

impl Capabilities {
    /// Try each feature on a throwaway device in the namespace at `netns` (a TAP, or a veth
    /// pair where there is no TAP), removed afterwards.
    pub fn detect(netns: &Path) -> Result<Capabilities> {
        crate::sys::in_netns(netns, || {
            let tc = Tc::open_here()?;
            let probe = format!("{TAP_PREFIX}probe{:x}", std::process::id() & 0xffff);
            let mut caps = Capabilities::default();
            let tap = tap::Tap::create(&probe).ok();
            caps.tap = tap.is_some();
            if tap.is_none() {
                tc.add_veth(&probe, &format!("{probe}p"))?;
            }
            let probed = match tc.link_index(&probe)? {
                Some(index) => probe_on(&tc, index, &mut caps),
                None => Err(Error::Other(format!("probe device {probe} vanished"))),
            };
            if tap.is_none() {
                let index = tc.link_index(&probe)?;
                if let Some(index) = index {
                    tc.delete_link(index)?;
                }
            }
            probed.map(|()| caps)
        })
    }

    /// Whether the userspace datapath works here.
    pub fn userspace_datapath(&self) -> bool {
        self.clsact && (self.bpf || self.mirred) && self.tap
    }
}

fn probe_on(tc: &Tc, index: u32, caps: &mut Capabilities) -> Result<()> {
    let options = netem::netem_options(&Conditions::default());
    caps.netem = match tc.replace_root(index, NETEM_HANDLE, "netem", options) {
        Ok(()) => true,
        Err(e) if tc::is_unsupported(&e) => false,
        Err(e) => return Err(tc::netlink_error(e, "trying a netem qdisc")),
    };
    caps.clsact = tc.add_clsact(index).is_ok();
    caps.bpf = caps.clsact
        && bpf::load_redirect(index)
            .and_then(|prog| tc.add_egress_bpf(index, FILTER_PREF, prog.as_fd(), bpf::FILTER_NAME))
            .is_ok();
    if caps.bpf {
        tc.delete_egress_filters(index, FILTER_PREF)?;
    }
    caps.mirred = caps.clsact && tc.add_egress_redirect(index, FILTER_PREF, index).is_ok();
    Ok(())
}

/// Starts conditions on an interface.
pub struct Worker;

impl Worker {
    /// Condition what leaves interface `iface` of the namespace at `netns` with `c`, by the
    /// datapath [`Datapath::Auto`] picks.
    pub fn start(netns: &Path, iface: &str, c: &Conditions) -> Result<WorkerHandle> {
        Self::start_with(netns, iface, c, Datapath::Auto)
    }

    /// [`Worker::start`] with the datapath chosen (`Netem` is an error on a kernel without it,
    /// and for conditions netem cannot do).
    pub fn start_with(
        netns: &Path,
        iface: &str,
        c: &Conditions,
        datapath: Datapath,
    ) -> Result<WorkerHandle> {
        let mut handle = WorkerHandle {
            netns: netns.to_path_buf(),
            iface: iface.to_string(),
            choice: datapath,
            inner: Inner::Stopped,
        };
        handle.inner = handle.begin(c)?;
        Ok(handle)
    }
}

enum Inner {
    Netem,
    Userspace(UserspaceWorker),
    Stopped,
}

/// Conditions running on one interface; dropping it stops them too.
pub struct WorkerHandle {
    netns: PathBuf,
    iface: String,
    choice: Datapath,
    inner: Inner,
}

impl WorkerHandle {
    /// Start the datapath for `c` as the choice says.
    fn begin(&self, c: &Conditions) -> Result<Inner> {
        if self.choice != Datapath::Userspace {
            if !netem_can_express(c) {
                if self.choice == Datapath::Netem {
                    return Err(Error::Usage(format!(
                        "netem cannot drop chosen frames on {}: use the userspace datapath",
                        self.iface
                    )));
                }
            } else if self.netem(c)? {
                return Ok(Inner::Netem);
            } else if self.choice == Datapath::Netem {
                return Err(no_netem(&self.iface));
            }
        }
        Ok(Inner::Userspace(UserspaceWorker::start(
            &self.netns,
            &self.iface,
            c,
            None,
        )?))
    }

    /// Apply `c` with netem; false when the kernel has none.
    fn netem(&self, c: &Conditions) -> Result<bool> {
        let (iface, c) = (self.iface.clone(), c.clone());
        crate::sys::in_netns(&self.netns, move || {
            let tc = Tc::open_here()?;
            let index = tc.link_index(&iface)?.ok_or_else(|| {
                Error::Usage(format!("no interface {iface} in the node's namespace"))
            })?;
            Ok(matches!(
                apply_netem(&tc, index, &c)?,
                NetemOutcome::Applied
            ))
        })
    }

    fn remove_netem(&self) -> Result<bool> {
        let iface = self.iface.clone();
        crate::sys::in_netns(&self.netns, move || {
            let tc = Tc::open_here()?;
            match tc.link_index(&iface)? {
                Some(index) => remove_netem(&tc, index),
                None => Ok(false),
            }
        })
    }

    /// The datapath in use: [`Datapath::Netem`] or [`Datapath::Userspace`] (`Auto` once
    /// stopped).
    pub fn datapath(&self) -> Datapath {
        match self.inner {
            Inner::Netem => Datapath::Netem,
            Inner::Userspace(_) => Datapath::Userspace,
            Inner::Stopped => Datapath::Auto,
        }
    }

    /// Change the conditions live. The userspace datapath keeps the frames in flight and the
    /// line's state; netem changes in place, and moves to the userspace datapath for
    /// conditions it cannot do.
    pub fn update(&mut self, c: &Conditions) -> Result<()> {
        match &self.inner {
            Inner::Userspace(w) => w.update(c),
            Inner::Netem if netem_can_express(c) => {
                if self.netem(c)? {
                    Ok(())
                } else {
                    Err(no_netem(&self.iface))
                }
            }
            Inner::Netem => {
                if self.choice == Datapath::Netem {
                    return Err(Error::Usage(format!(
                        "netem cannot drop chosen frames on {}: use the userspace datapath",
                        self.iface
                    )));
                }
                self.remove_netem()?;
                self.inner =
                    Inner::Userspace(UserspaceWorker::start(&self.netns, &self.iface, c, None)?);
                Ok(())
            }
            Inner::Stopped => Err(Error::Usage(format!(
                "link conditions on {} are stopped",
                self.iface
            ))),
        }
    }

    /// The counters (the netem datapath keeps none here).
    pub fn stats(&self) -> Stats {
        match &self.inner {
            Inner::Userspace(w) => w.stats(),
            Inner::Netem => Stats {
                datapath: "netem".into(),
                ..Stats::default()
            },
            Inner::Stopped => Stats::default(),
        }
    }

    /// Whether the conditions still run (a userspace worker ends when its interface goes).
    pub fn is_running(&self) -> bool {
        match &self.inner {
            Inner::Userspace(w) => w.is_running(),
            Inner::Netem => true,
            Inner::Stopped => false,
        }
    }

    /// Stop: remove the netem qdisc, or the filter, clsact qdisc and TAP the worker made
    /// (only those). The last counters.
    pub fn stop(mut self) -> Result<Stats> {
        self.halt()
    }

    fn halt(&mut self) -> Result<Stats> {
        match std::mem::replace(&mut self.inner, Inner::Stopped) {
            Inner::Userspace(w) => w.stop(),
            Inner::Netem => self.remove_netem().map(|_| Stats {
                datapath: "netem".into(),
                ..Stats::default()
            }),
            Inner::Stopped => Ok(Stats::default()),
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Remove what a killed worker left on interface `iface` of the namespace at `netns`: its
/// redirect filter (priority [`FILTER_PREF`], kind `bpf` or `u32`, on the clsact egress hook),
/// the clsact qdisc when no filter is left in it, a TAP device named [`tap_name`], and a netem
/// root qdisc of handle [`NETEM_HANDLE`]. Nothing else is touched. True if anything was
/// removed.
pub fn remove_leftovers(netns: &Path, iface: &str) -> Result<bool> {
    let iface = iface.to_string();
    crate::sys::in_netns(netns, move || {
        let tc = Tc::open_here()?;
        let mut removed = false;
        if let Some(index) = tc.link_index(&iface)? {
            let ours = tc
                .filters(index, true)?
                .iter()
                .any(|f| f.pref == FILTER_PREF && (f.kind == "bpf" || f.kind == "u32"));
            if ours {
                removed |= tc.delete_egress_filters(index, FILTER_PREF)?;
                let left = tc.filters(index, true)?.len() + tc.filters(index, false)?.len();
                if left == 0 {
                    removed |= tc.delete_clsact(index)?;
                }
            }
            removed |= remove_netem(&tc, index)?;
        }
        let tap = tap_name(&iface);
        if tc.is_tun(&tap)?
            && let Some(index) = tc.link_index(&tap)?
        {
            removed |= tc.delete_link(index)?;
        }
        Ok(removed)
    })
}

#[cfg(test)]
mod tests;
