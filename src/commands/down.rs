//! `tcplab down`

use super::GlobalOpts;
use crate::error::Result;
use crate::lab;
use crate::net::Netlink;
use crate::progress::Progress;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::netns::NetnsRuntime;
use crate::state::LabLock;
use crate::state::LabState;
use clap::Args;

/// Remove everything the lab created.
#[derive(Debug, Args)]
pub struct DownCmd {}

impl DownCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let progress = g.progress();
        let Some(mut state) = ctx.state else {
            // No record: containers (and OVS bridges) labelled as this lab's are still found.
            let orphans = lab::find_unrecorded(&ctx.lab, &ctx.topology).await;
            if orphans.objects.is_empty() {
                progress.note(&format!("lab '{}' is not up: nothing to do", ctx.lab));
                return Ok(0);
            }
            crate::sys::require_root("tcplab down")?;
            let _lock = LabLock::acquire(&ctx.lab)?;
            let mut state = orphans;
            let n = state.objects.len();
            let host = Netlink::open_here(&tokio::runtime::Handle::current())?;
            run_teardown(&mut state, &host, &progress).await?;
            progress.note(&format!(
                "lab '{}' had no record: removed {n} objects found by their labels and names",
                ctx.lab
            ));
            return Ok(0);
        };
        crate::sys::require_root("tcplab down")?;
        let _lock = LabLock::acquire(&ctx.lab)?;
        let host = Netlink::open_here(&tokio::runtime::Handle::current())?;
        let n = state.objects.len();
        run_teardown(&mut state, &host, &progress).await?;
        progress.note(&format!("lab '{}' is down ({n} objects removed)", ctx.lab));
        Ok(0)
    }
}

/// Tear down with the runtime the lab was made with.
async fn run_teardown(state: &mut LabState, host: &Netlink, progress: &Progress) -> Result<()> {
    let needs_docker = state
        .objects
        .iter()
        .any(|o| matches!(o, crate::state::Object::Container { .. }));
    if needs_docker {
        let docker = DockerRuntime::connect(&state.topology_file).await?;
        let (lab, incomplete) = (state.lab.clone(), !state.complete);
        lab::teardown(&docker, state, host, progress).await?;
        if incomplete {
            // The killed `up`'s requests may still be running in the engine.
            let late = lab::sweep_late_containers(&docker, &lab).await?;
            if late > 0 {
                progress.note(&format!(
                    "removed {late} containers the engine created after the interrupted up"
                ));
            }
        }
        Ok(())
    } else {
        lab::teardown(&NetnsRuntime, state, host, progress).await
    }
}
