//! `tcplab down`

use super::GlobalOpts;
use crate::error::Result;
use crate::lab;
use crate::net::Netlink;
use crate::progress::Progress;
use crate::runtime::Runtime;
use crate::runtime::docker::{DockerRuntime, NoEngine};
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
        if ctx.state.is_none() {
            let orphans = lab::find_unrecorded(
                &ctx.lab,
                &ctx.topology,
                &ctx.topology_file,
                &ctx.topology_text,
            )
            .await;
            if orphans.objects.is_empty() {
                progress.note(&format!("lab '{}' is not up: nothing to do", ctx.lab));
                return Ok(0);
            }
        }
        crate::sys::require_root("tcplab down")?;
        let _lock = LabLock::acquire(&ctx.lab)?;
        // Read the record again under the lock: an `up` may have finished meanwhile.
        let (mut state, recorded) = match LabState::load(&ctx.lab)? {
            Some(s) => (s, true),
            // No record: containers and OVS bridges labelled as this lab's, and namespaces
            // and host ports with its names, are still found.
            None => (
                lab::find_unrecorded(
                    &ctx.lab,
                    &ctx.topology,
                    &ctx.topology_file,
                    &ctx.topology_text,
                )
                .await,
                false,
            ),
        };
        if state.objects.is_empty() {
            LabState::remove(&ctx.lab)?;
            progress.note(&format!("lab '{}' is not up: nothing to do", ctx.lab));
            return Ok(0);
        }
        let host = Netlink::open_here(&tokio::runtime::Handle::current())?;
        let n = state.objects.len();
        run_teardown(&mut state, &host, &progress).await?;
        if recorded {
            progress.note(&format!("lab '{}' is down ({n} objects removed)", ctx.lab));
        } else {
            progress.note(&format!(
                "lab '{}' had no record: removed {n} objects found by their labels and names",
                ctx.lab
            ));
        }
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
        let docker = match DockerRuntime::connect(&state.topology_file).await {
            Ok(d) => d,
            // Remove everything else; the containers stay recorded for a later `down`.
            Err(e) => return lab::teardown(&NoEngine(e.to_string()), state, host, progress).await,
        };
        let (lab, incomplete) = (state.lab.clone(), !state.complete);
        lab::teardown(&docker, state, host, progress).await?;
        if incomplete {
            // The killed `up`'s requests may still be running in the engine.
            let late = docker.sweep(&lab).await?;
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
