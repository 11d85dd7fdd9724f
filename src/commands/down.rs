//! `tcplab down`

use super::GlobalOpts;
use crate::error::Result;
use crate::lab;
use crate::net::Netlink;
use crate::runtime::netns::NetnsRuntime;
use crate::state::LabLock;
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
            progress.note(&format!("lab '{}' is not up: nothing to do", ctx.lab));
            return Ok(0);
        };
        crate::sys::require_root("tcplab down")?;
        let _lock = LabLock::acquire(&ctx.lab)?;
        let host = Netlink::open_here(&tokio::runtime::Handle::current())?;
        let n = state.objects.len();
        lab::teardown(&NetnsRuntime, &mut state, &host, &progress).await?;
        progress.note(&format!("lab '{}' is down ({n} objects removed)", ctx.lab));
        Ok(0)
    }
}
