//! `tcplab status [--json]`

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::lab;
use crate::os::real::RealSystem;
use crate::runtime::{self, Runtime};
use clap::Args;

/// Show the lab.
#[derive(Debug, Args)]
pub struct StatusCmd {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

impl StatusCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let state = ctx.require_up()?;
        // A restarted container has a new namespace: re-link it so status reads the live one.
        let rt = runtime::open_for_teardown(state.runtime, &state.topology_file).await;
        for n in &ctx.topology.nodes {
            let _ = rt
                .refresh_netns(&crate::plan::node_netns(&ctx.lab, &n.name))
                .await;
        }
        let st = lab::status(&RealSystem::new(), state, &ctx.topology).await?;
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&st).map_err(|e| Error::Other(e.to_string()))?
            );
            return Ok(0);
        }
        println!(
            "lab {} ({} runtime{}{})",
            st.lab,
            st.runtime,
            st.uplink
                .as_deref()
                .map(|u| format!(", uplink {u}"))
                .unwrap_or_default(),
            if st.complete {
                ""
            } else {
                ", INCOMPLETE: run `tcplab down`"
            }
        );
        for n in &st.nodes {
            println!("{:<10} {}", n.name, n.state);
            for i in &n.interfaces {
                println!(
                    "  {:<10} {:<5} {:<17} mtu {:<5} {}",
                    i.name,
                    if i.up { i.state.as_str() } else { "down" },
                    i.mac,
                    i.mtu,
                    i.addresses.join(" ")
                );
                if let Some(c) = st.conditions.get(&format!("{}:{}", n.name, i.name)) {
                    println!("  {:<10} conditions: {c}", "");
                }
            }
        }
        Ok(0)
    }
}
