//! `tcplab link down|up NODE:IFACE` or `tcplab link down|up NODE NODE` (a point-to-point line).

use super::GlobalOpts;
use crate::error::Result;
use crate::lab as lab_ops;
use crate::topology::resolve_ends;
use clap::{Args, ValueEnum};

/// Cut or restore a line, for failure experiments.
#[derive(Debug, Args)]
pub struct LinkCmd {
    /// down (cut) or up (restore)
    #[arg(value_enum)]
    pub state: LinkState,
    /// NODE:IFACE, or two NODEs joined by a point-to-point line
    #[arg(required = true, num_args = 1..=2)]
    pub ends: Vec<String>,
}

/// Link states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LinkState {
    /// Administratively down: no carrier on the other end either.
    Down,
    /// Up again.
    Up,
}

impl LinkCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let state = ctx.require_up()?;
        crate::sys::require_root("tcplab link")?;
        let targets = resolve_ends(&ctx.topology, &ctx.lab, &self.ends)?;
        let up = self.state == LinkState::Up;
        let plan = state.plan(&ctx.topology);
        let sys = crate::os::real::RealSystem::new();
        for (node, iface) in &targets {
            lab_ops::set_link(&sys, &plan, node, iface, up).await?;
        }
        if !g.quiet {
            let what: Vec<String> = targets.iter().map(|(n, i)| format!("{n}:{i}")).collect();
            eprintln!("{} {}", what.join(" "), if up { "up" } else { "down" });
        }
        Ok(0)
    }
}
