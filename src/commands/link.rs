//! `tcplab link down|up NODE:IFACE` or `tcplab link down|up NODE NODE` (a point-to-point line).

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::lab as lab_ops;
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

/// `NODE:IFACE` -> that interface; `A B` -> both ends of the point-to-point line between them.
pub fn resolve_ends(
    topo: &crate::topology::Topology,
    lab: &str,
    ends: &[String],
) -> Result<Vec<(String, String)>> {
    match ends {
        [one] => {
            let Some((node, iface)) = one.split_once(':') else {
                return Err(Error::Usage(format!(
                    "'{one}' is not NODE:IFACE (e.g. bsdi:bsdiside), nor one of two NODEs of a line"
                )));
            };
            let n = topo.require_node(lab, node)?;
            if n.interface(iface).is_none() {
                let names: Vec<&str> = n.interfaces.iter().map(|i| i.name.as_str()).collect();
                return Err(Error::Usage(format!(
                    "node '{node}' has no interface '{iface}' (its interfaces: {})",
                    names.join(", ")
                )));
            }
            Ok(vec![(node.to_string(), iface.to_string())])
        }
        [a, b] => {
            topo.require_node(lab, a)?;
            topo.require_node(lab, b)?;
            let link = topo
                .links
                .iter()
                .find(|l| (l.a.node == *a && l.b.node == *b) || (l.a.node == *b && l.b.node == *a))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "no point-to-point line joins {a} and {b}: name an interface as NODE:IFACE"
                    ))
                })?;
            Ok(vec![
                (link.a.node.clone(), link.a.interface.clone()),
                (link.b.node.clone(), link.b.interface.clone()),
            ])
        }
        _ => Err(Error::Usage("give NODE:IFACE or two NODEs".into())),
    }
}
