//! `tcplab down`

use super::GlobalOpts;
use crate::error::Result;
use crate::lab;
use crate::os::real::RealSystem;
use clap::Args;

/// Remove everything the lab created.
#[derive(Debug, Args)]
pub struct DownCmd {}

impl DownCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let progress = g.progress();
        let sys = RealSystem::new();
        if ctx.state.is_none() {
            let orphans = lab::find_unrecorded(&sys, &ctx.lab, &ctx.topology).await?;
            if orphans.objects.is_empty() {
                progress.note(&format!("lab '{}' is not up: nothing to do", ctx.lab));
                return Ok(0);
            }
        }
        crate::sys::require_root("tcplab down")?;
        let Some(report) = lab::down(&sys, &ctx.lab, &ctx.topology, &progress).await? else {
            progress.note(&format!("lab '{}' is not up: nothing to do", ctx.lab));
            return Ok(0);
        };
        if report.late > 0 {
            progress.note(&format!(
                "removed {} containers the engine created after the interrupted up",
                report.late
            ));
        }
        if report.recorded {
            progress.note(&format!(
                "lab '{}' is down ({} objects removed)",
                ctx.lab, report.removed
            ));
        } else {
            progress.note(&format!(
                "lab '{}' had no record: removed {} objects found by their labels and names",
                ctx.lab, report.removed
            ));
        }
        Ok(0)
    }
}
