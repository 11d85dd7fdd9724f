//! `tcplab link down|up|set|clear|show`: cut and restore lines, and give them conditions
//! (rate, delay, loss...). ENDS are `NODE:IFACE` (one interface: what leaves it) or the two
//! NODEs of a point-to-point line (both directions).

use super::GlobalOpts;
use crate::conditions::spec::ConditionsUpdate;
use crate::error::{Error, Result};
use crate::lab::{self, LabContext};
use crate::os::real::RealSystem;
use crate::state::{LabLock, LabState};
use crate::topology::resolve_ends;
use clap::{Args, Subcommand};

/// Cut or restore a line, or set its conditions.
#[derive(Debug, Args)]
pub struct LinkCmd {
    /// What to do
    #[command(subcommand)]
    pub action: LinkAction,
}

/// What `link` does.
#[derive(Debug, Subcommand)]
pub enum LinkAction {
    /// Cut: the interface administratively down (no carrier on the other end either)
    Down {
        /// NODE:IFACE..., or two NODEs joined by a point-to-point line
        #[arg(required = true)]
        ends: Vec<String>,
    },
    /// Restore: up again, with the routes and proxy ARP entries the kernel dropped
    Up {
        /// NODE:IFACE..., or two NODEs joined by a point-to-point line
        #[arg(required = true)]
        ends: Vec<String>,
    },
    /// Set conditions on what leaves each end; conditions not named stay as they are
    Set {
        /// NODE:IFACE... (one direction each), or two NODEs of a line (both directions)
        #[arg(required = true)]
        ends: Vec<String>,
        /// The conditions
        #[command(flatten)]
        conditions: Box<ConditionArgs>,
    },
    /// Remove every condition of the ends (all the lab's conditioned ends when none is named)
    Clear {
        /// NODE:IFACE..., or two NODEs of a line
        ends: Vec<String>,
    },
    /// The conditions of every conditioned end
    Show {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
}

/// Link conditions, in tc's units. A zero removes that one condition.
#[derive(Debug, Args, Default)]
pub struct ConditionArgs {
    /// Line speed: each packet takes size/rate to leave, behind the one before
    /// (e.g. 1200bit, 9600bit, 64kbit, 10mbit)
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub rate: Option<String>,
    /// What the rate counts: ethernet (the frame) or slip (the IP datagram + 2 END bytes,
    /// 10 bits a byte)
    #[arg(long, value_name = "FRAMING", allow_hyphen_values = true)]
    pub framing: Option<String>,
    /// One-way delay (e.g. 250us, 100ms, 1.5s; a bare number is microseconds, as in tc)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub delay: Option<String>,
    /// The delay varies by up to this much either way (order is kept)
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub jitter: Option<String>,
    /// Random loss (e.g. 5%)
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub loss: Option<String>,
    /// Drop the next N packets that match a filter: "N [tcp|udp|icmp] [port P] [data]"
    /// (e.g. "1 tcp data": the next TCP segment carrying data)
    #[arg(long, value_name = "N FILTER", allow_hyphen_values = true)]
    pub drop_next: Option<String>,
    /// Random duplication (percent)
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub duplicate: Option<String>,
    /// This share of packets skips the delay and overtakes the others (percent)
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub reorder: Option<String>,
    /// Random single-bit corruption of the IP payload (percent)
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub corrupt: Option<String>,
    /// At most this many packets waiting (tail drop)
    #[arg(long, value_name = "PACKETS", allow_hyphen_values = true)]
    pub queue: Option<String>,
}

impl ConditionArgs {
    /// The update these arguments ask for (errors name the value, exit 2).
    pub fn update(&self) -> Result<ConditionsUpdate> {
        let mut u = ConditionsUpdate::default();
        let named = [
            ("rate", &self.rate),
            ("framing", &self.framing),
            ("delay", &self.delay),
            ("jitter", &self.jitter),
            ("loss", &self.loss),
            ("drop-next", &self.drop_next),
            ("duplicate", &self.duplicate),
            ("reorder", &self.reorder),
            ("corrupt", &self.corrupt),
            ("queue", &self.queue),
        ];
        for (name, value) in named {
            if let Some(v) = value {
                u.set(name, v)?;
            }
        }
        Ok(u)
    }
}

impl LinkCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        match &self.action {
            LinkAction::Down { ends } => set_state(g, &ctx, ends, false).await,
            LinkAction::Up { ends } => set_state(g, &ctx, ends, true).await,
            LinkAction::Set { ends, conditions } => {
                // Bad values are refused before anything else, root or not.
                let update = conditions.update()?;
                let targets = resolve_ends(&ctx.topology, &ctx.lab, ends)?;
                ctx.require_complete()?;
                crate::sys::require_root("tcplab link set")?;
                let sys = RealSystem::new();
                let (_lock, mut state) = locked_state(&ctx)?;
                let plan = state.plan(&ctx.topology);
                let set = lab::set_conditions(&sys, &mut state, &plan, &targets, &update).await?;
                if !g.quiet {
                    for (end, c) in set {
                        eprintln!("{end}: {}", c.summary());
                    }
                }
                Ok(0)
            }
            LinkAction::Clear { ends } => {
                let state = ctx.require_up()?;
                let targets = if ends.is_empty() {
                    state
                        .conditions
                        .keys()
                        .filter_map(|k| k.split_once(':'))
                        .map(|(n, i)| (n.to_string(), i.to_string()))
                        .collect()
                } else {
                    resolve_ends(&ctx.topology, &ctx.lab, ends)?
                };
                crate::sys::require_root("tcplab link clear")?;
                let sys = RealSystem::new();
                let (_lock, mut state) = locked_state(&ctx)?;
                for (node, iface) in &targets {
                    lab::clear_end(&sys, &mut state, node, iface)?;
                    if !g.quiet {
                        eprintln!("{node}:{iface}: no conditions");
                    }
                }
                Ok(0)
            }
            LinkAction::Show { json } => {
                let state = ctx.require_up()?;
                let shown = lab::show_conditions(&RealSystem::new(), state);
                if *json {
                    let text = serde_json::to_string_pretty(&shown)
                        .map_err(|e| Error::Other(format!("encoding: {e}")))?;
                    println!("{text}");
                } else if shown.is_empty() {
                    println!("no conditions on lab '{}'", ctx.lab);
                } else {
                    for e in shown {
                        let how = match &e.stats {
                            Some(s) => format!("{} datapath", s.datapath),
                            None => "NOT APPLIED: run `tcplab link set` again".into(),
                        };
                        println!("{:<20} {}  ({how})", e.end, e.summary);
                    }
                }
                Ok(0)
            }
        }
    }
}

/// The lab's lock and its record read under it.
fn locked_state(ctx: &LabContext) -> Result<(LabLock, LabState)> {
    let lock = LabLock::acquire(&ctx.lab)?;
    let state = LabState::load(&ctx.lab)?
        .ok_or_else(|| Error::Usage(format!("lab '{}' is not up", ctx.lab)))?;
    Ok((lock, state))
}

async fn set_state(g: &GlobalOpts, ctx: &LabContext, ends: &[String], up: bool) -> Result<i32> {
    let state = ctx.require_up()?;
    let targets = resolve_ends(&ctx.topology, &ctx.lab, ends)?;
    crate::sys::require_root("tcplab link")?;
    let plan = state.plan(&ctx.topology);
    let sys = RealSystem::new();
    for (node, iface) in &targets {
        lab::set_link(&sys, &plan, node, iface, up).await?;
    }
    if !g.quiet {
        let what: Vec<String> = targets.iter().map(|(n, i)| format!("{n}:{i}")).collect();
        eprintln!("{} {}", what.join(" "), if up { "up" } else { "down" });
    }
    Ok(0)
}
