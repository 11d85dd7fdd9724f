//! `tcplab ovs show` and `tcplab ovs flows [LAN]`: the lab's Open vSwitch rows and flow tables,
//! with node names instead of port names.

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::topology::NetworkKind;
use clap::{Args, Subcommand};

/// The lab's Open vSwitch.
#[derive(Debug, Args)]
pub struct OvsCmd {
    /// What to show
    #[command(subcommand)]
    pub what: OvsWhat,
}

/// What `ovs` shows.
#[derive(Debug, Subcommand)]
pub enum OvsWhat {
    /// The OVSDB rows: bridge -> ports -> interfaces, with VLANs, QoS, tunnels, controllers
    Show,
    /// The flow table of each OVS LAN (or of LAN), with counters
    Flows {
        /// One LAN's name
        lan: Option<String>,
    },
}

impl OvsCmd {
    /// Run it: the text goes to standard output.
    pub fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        crate::sys::require_root("tcplab ovs")?;
        let ctx = g.resolve()?;
        match &self.what {
            OvsWhat::Show => print!("{}", crate::ovs::show(&ctx.topology, &ctx.lab)?),
            OvsWhat::Flows { lan } => {
                let nets: Vec<&str> = ctx
                    .topology
                    .networks
                    .iter()
                    .filter(|n| n.kind == NetworkKind::Ovs)
                    .map(|n| n.name.as_str())
                    .collect();
                if let Some(l) = lan
                    && !nets.contains(&l.as_str())
                {
                    return Err(Error::Usage(format!(
                        "'{l}' is not an Open vSwitch LAN of lab '{}' (its OVS LANs: {})",
                        ctx.lab,
                        nets.join(", ")
                    )));
                }
                for net in nets
                    .iter()
                    .filter(|n| lan.as_deref().is_none_or(|l| l == **n))
                {
                    let bridge = crate::plan::ovs_bridge_name(&ctx.lab, net);
                    println!("LAN {net} (bridge {bridge}):");
                    for line in crate::ovs::flows_of(&ctx.topology, &ctx.lab, net, &bridge)? {
                        println!("    {line}");
                    }
                }
            }
        }
        Ok(0)
    }
}
