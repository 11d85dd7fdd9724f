//! `tcplab up [UPLINK] [--dry-run]`

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::lab::{self, UpRequest};
use crate::plan::{self, PlanOptions};
use crate::runtime::RuntimeKind;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::netns::NetnsRuntime;
use crate::topology::Privileges;
use clap::Args;
use std::time::Instant;

/// Bring the lab up.
#[derive(Debug, Args)]
pub struct UpCmd {
    /// Host interface to NAT the lab out of (e.g. enp0s3); none: the lab is isolated
    pub uplink: Option<String>,
    /// Print the plan and touch nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Docker runtime: run nodes privileged, with capabilities only, or try privileged first
    /// (auto); overrides the topology's `privileges`
    #[arg(long, value_parser = ["auto", "privileged", "capabilities"])]
    pub privileges: Option<String>,
}

impl UpCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let mut ctx = g.resolve()?;
        if let Some(p) = &self.privileges {
            let p = match p.as_str() {
                "privileged" => Privileges::Privileged,
                "capabilities" => Privileges::Capabilities,
                _ => Privileges::Auto,
            };
            for n in &mut ctx.topology.nodes {
                n.privileges = p;
            }
        }
        if self.uplink.is_some() && ctx.topology.uplink.is_none() {
            return Err(Error::Usage(format!(
                "topology '{}' has no [uplink] table: it cannot be NATed out of {}",
                ctx.topology_file,
                self.uplink.as_deref().unwrap_or_default()
            )));
        }
        let options = PlanOptions {
            uplink: self.uplink.clone(),
            switch_override: g.switch_override(),
        };
        if self.dry_run {
            print!("{}", plan::plan(&ctx.topology, &ctx.lab, &options).render());
            return Ok(0);
        }
        crate::sys::require_root("tcplab up")?;
        let progress = g.progress();
        let runtime = match g.runtime {
            Some(r) => r,
            None if DockerRuntime::available().await => RuntimeKind::Docker,
            None => {
                progress.note("note: no Docker engine answers: using the netns runtime (plain network namespaces)");
                RuntimeKind::Netns
            }
        };
        let start = Instant::now();
        let req = UpRequest {
            topology: &ctx.topology,
            lab: ctx.lab.clone(),
            topology_file: ctx.topology_file.clone(),
            topology_text: ctx.topology_text.clone(),
            options,
        };
        let plan = match runtime {
            RuntimeKind::Netns => lab::up(&NetnsRuntime, req, &progress).await?,
            RuntimeKind::Docker => {
                let docker = DockerRuntime::connect(&ctx.topology_file)
                    .await?
                    .quiet(g.quiet);
                let r = lab::up(&docker, req, &progress).await;
                for n in docker.take_notes() {
                    progress.note(&n);
                }
                r?
            }
        };
        progress.note(&format!(
            "lab '{}' is up: {} {} nodes in {:.0} ms{} (try `tcplab exec {} ping {}`)",
            ctx.lab,
            runtime.as_str(),
            plan.nodes.len(),
            start.elapsed().as_secs_f64() * 1000.0,
            self.uplink
                .as_deref()
                .map(|u| format!(", NATed out of {u}"))
                .unwrap_or_default(),
            plan.nodes.last().map_or("NODE", |n| n.name.as_str()),
            plan.nodes.first().map_or("NODE", |n| n.name.as_str()),
        ));
        Ok(0)
    }
}
