//! `tcplab capture NODE [IFACE...] [-w FILE] [-c COUNT] [--duration SECS]`

use super::GlobalOpts;
use crate::capture::{self, CaptureSpec, Sink};
use crate::error::{Error, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Capture a node's packets.
#[derive(Debug, Args)]
pub struct CaptureCmd {
    /// The node
    pub node: String,
    /// Interfaces (default: all of the node's)
    pub interfaces: Vec<String>,
    /// Write the capture here (`-` for standard output, e.g. `-w - | wireshark -k -i -`);
    /// default captures/<lab>/<node>-<UTC time>.pcap (.pcapng for several interfaces)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<String>,
    /// Stop after this many packets
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Stop after this many seconds
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn catch_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGPIPE] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

fn clock(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let micros = (ts_ns % 1_000_000_000) / 1000;
    let day = secs % 86400;
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        day / 3600,
        (day % 3600) / 60,
        day % 60
    )
}

impl CaptureCmd {
    /// Run it.
    pub fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let state = ctx.require_up()?;
        let node = ctx.topology.require_node(&ctx.lab, &self.node)?;
        for i in &self.interfaces {
            if node.interface(i).is_none() {
                let names: Vec<&str> = node.interfaces.iter().map(|x| x.name.as_str()).collect();
                return Err(Error::Usage(format!(
                    "node '{}' has no interface '{i}' (its interfaces: {})",
                    node.name,
                    names.join(", ")
                )));
            }
        }
        if let Some(d) = self.duration
            && !(d.is_finite() && d > 0.0 && d < 1e9)
        {
            return Err(Error::Usage(format!(
                "--duration {d} is not a positive number of seconds"
            )));
        }
        crate::sys::require_root("tcplab capture")?;
        let netns = crate::plan::node_netns(&ctx.lab, &self.node);
        // A restarted container has a new namespace: capture on the live one.
        super::block_on(async {
            use crate::runtime::Runtime;
            let rt = crate::runtime::open_for_teardown(state.runtime, &state.topology_file).await;
            rt.refresh_netns(&netns).await?;
            Ok(0)
        })?;
        let spec = CaptureSpec {
            netns: Some(crate::sys::netns_path(&netns)),
            interfaces: self.interfaces.clone(),
            count: self.count,
            duration: self.duration.map(Duration::from_secs_f64),
            snaplen: 0,
        };
        let cap = capture::Capture::open(&spec).map_err(|e| Error::Usage(e.to_string()))?;
        let ifaces = cap.interfaces();
        let (sink, shown) = match self.write.as_deref() {
            Some("-") => (Sink::Stdout, "standard output".to_string()),
            Some(f) => (Sink::File(PathBuf::from(f)), f.to_string()),
            None => {
                let ext = if ifaces.len() == 1 { "pcap" } else { "pcapng" };
                let dir = PathBuf::from("captures").join(&ctx.lab);
                crate::sys::create_user_dirs(&dir)?;
                let f = dir.join(format!(
                    "{}-{}.{ext}",
                    self.node,
                    crate::util::utc_stamp_now()
                ));
                let s = f.display().to_string();
                (Sink::File(f), s)
            }
        };
        let written = match &sink {
            Sink::File(f) => Some(f.clone()),
            _ => None,
        };
        catch_signals();
        if !g.quiet {
            eprintln!(
                "capturing on {} {} ({}), writing {shown}; Ctrl-C stops",
                self.node,
                ifaces.join(", "),
                if ifaces.len() == 1 { "pcap" } else { "pcapng" }
            );
        }
        let quiet = g.quiet;
        let many = ifaces.len() > 1;
        let summary = cap
            .run(sink, &STOP, &mut |iface, p, ts| {
                if !quiet {
                    if many {
                        eprintln!("{} {iface} {p}", clock(ts));
                    } else {
                        eprintln!("{} {p}", clock(ts));
                    }
                }
            })
            .map_err(|e| Error::Other(e.to_string()))?;
        if let Some(f) = written {
            crate::sys::give_to_invoking_user(&f)?;
        }
        if !quiet {
            eprintln!(
                "{} packets captured, {} dropped by the kernel; written to {shown}",
                summary.packets, summary.dropped
            );
        }
        Ok(0)
    }
}
