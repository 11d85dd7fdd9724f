//! `tcplab status [--json] [--check]`

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
    /// Exit 1 when the lab is degraded (anything of its plan missing; `tcplab up` repairs it)
    #[arg(long)]
    pub check: bool,
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
            return Ok(self.exit_code(&st));
        }
        println!(
            "lab {} ({} runtime{}{})",
            st.lab,
            st.runtime,
            st.uplink
                .as_deref()
                .map(|u| format!(", uplink {u}"))
                .unwrap_or_default(),
            if !st.complete {
                ", INCOMPLETE: run `tcplab down`"
            } else if st.degraded {
                ", DEGRADED: `tcplab up` repairs it"
            } else {
                ""
            }
        );
        for p in &st.problems {
            println!("  ! {p}");
        }
        for n in &st.nodes {
            println!("{:<10} {}", n.name, n.state);
            for p in &n.problems {
                println!("  ! {p}");
            }
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
        Ok(self.exit_code(&st))
    }

    fn exit_code(&self, st: &lab::LabStatus) -> i32 {
        i32::from(self.check && (st.degraded || !st.complete))
    }
}
