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
            // As root, an empty lab still goes through `lab::down`: under the lab's lock it
            // removes what an `up` killed while saving its first record leaves (the record's
            // directory, a half-written record).
            if orphans.objects.is_empty() && !crate::sys::is_root() {
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
