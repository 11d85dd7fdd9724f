//! `tcplab up [UPLINK] [--dry-run]`

use super::GlobalOpts;
use crate::error::Result;
use crate::lab;
use crate::plan::{self, PlanOptions};
use crate::topology::Privileges;
use clap::Args;
use std::time::Instant;

/// Bring the lab up.
#[derive(Debug, Args)]
pub struct UpCmd {
    /// Host interface to NAT the lab out of (e.g. enp0s3); none: the lab is isolated
    pub uplink: Option<String>,
    /// NAT the lab into a fake internet made for it instead (a namespace on 198.51.100.0/24,
    /// node `internet` for experiments): the course's NAT, sending nothing outside
    #[arg(long, conflicts_with = "uplink")]
    pub fake_internet: bool,
    /// Print the plan and touch nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Docker runtime: run nodes privileged, with capabilities only, or try privileged first
    /// (auto); overrides the topology's `privileges`
    #[arg(long, value_parser = ["auto", "privileged", "capabilities"])]
    pub privileges: Option<String>,
    /// Apply the topology's profile of link conditions (the built-in topology's `book`: the
    /// book's line speeds)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

impl UpCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let mut opts = g.start_options();
        opts.uplink = self.uplink.clone();
        opts.fake_internet = self.fake_internet;
        opts.profile = self.profile.clone();
        opts.privileges = self.privileges.as_deref().map(|p| match p {
            "privileged" => Privileges::Privileged,
            "capabilities" => Privileges::Capabilities,
            _ => Privileges::Auto,
        });
        if self.dry_run {
            if let Some(p) = &opts.profile {
                ctx.topology.profile(p)?;
            }
            let options = PlanOptions {
                uplink: opts.uplink.clone(),
                switch_override: opts.switch,
                profile: opts.profile.clone(),
                fake_internet: opts.fake_internet,
            };
            print!("{}", plan::plan(&ctx.topology, &ctx.lab, &options).render());
            return Ok(0);
        }
        crate::sys::require_root("tcplab up")?;
        let progress = g.progress();
        let start = Instant::now();
        let started = lab::start(&ctx, &opts, &progress).await?;
        if let lab::UpOutcome::Repaired(_, made) = &started.outcome {
            if made.is_empty() {
                progress.note(&format!(
                    "lab '{}' is up and whole: nothing to change",
                    ctx.lab
                ));
            } else {
                progress.note(&format!(
                    "lab '{}' repaired in {:.0} ms: made again {}",
                    ctx.lab,
                    start.elapsed().as_secs_f64() * 1000.0,
                    made.join(", ")
                ));
            }
            return Ok(0);
        }
        let plan = started.outcome.plan();
        progress.note(&format!(
            "lab '{}' is up: {} {} nodes in {:.0} ms{} (try `tcplab exec {} ping {}`)",
            ctx.lab,
            started.runtime,
            plan.nodes.len(),
            start.elapsed().as_secs_f64() * 1000.0,
            match (&self.uplink, &plan.fake_internet) {
                (_, Some(f)) => format!(
                    ", NATed into a fake internet ({} in namespace {})",
                    f.far_address.addr(),
                    f.netns
                ),
                (Some(u), None) => format!(", NATed out of {u}"),
                (None, None) => String::new(),
            },
            plan.nodes.last().map_or("NODE", |n| n.name.as_str()),
            plan.nodes.first().map_or("NODE", |n| n.name.as_str()),
        ));
        Ok(0)
    }
}
