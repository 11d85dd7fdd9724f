//! Bringing a lab up from its plan, tearing it down from its record, reading its status, and
//! cutting its lines. Everything here works through two seams: a [`crate::runtime::Runtime`]
//! (what a node is) and a [`crate::os::System`] (what the machine does), so the orchestration is
//! unit-tested against fakes without root.
//!
//! - [`up()`]: records every object before creating it, applies the plan phase by phase
//!   (`apply`), and rolls back on any failure (or Ctrl-C).
//! - [`down()`] / [`teardown`]: walk the record, keep going past failures, collect them.
//! - [`start`]: what `tcplab up` and `experiment run` share: choose the runtime, bring the lab up.

mod apply;
mod conditions;
mod context;
mod down;
mod fake_internet;
mod link;
mod ovs;
mod parts;
mod status;
mod up;
mod uplink;
pub(crate) use uplink::EDGE_TO_HOST;

#[cfg(test)]
mod tests;

pub use conditions::{
    EndConditions, apply_end, clear_end, control_name, end_key, set_conditions,
    show as show_conditions,
};
pub use context::LabContext;
pub use down::{DownReport, down, find_unrecorded, teardown};
pub use link::set_link;
pub use parts::host_alias;
pub use status::{LabStatus, NodeStatus, status};
pub use up::{UpOutcome, UpRequest, up};

use crate::error::{Error, Result};
use crate::os::real::RealSystem;
use crate::plan::PlanOptions;
use crate::progress::Progress;
use crate::runtime::{self, Runtime, RuntimeKind, RuntimeOptions};
use crate::topology::Privileges;

/// How to bring a lab up (what `tcplab up` takes besides the lab).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Host interface to NAT the lab out of.
    pub uplink: Option<String>,
    /// The runtime (None: docker when an engine answers, else netns).
    pub runtime: Option<RuntimeKind>,
    /// Make every LAN of this kind.
    pub switch: Option<crate::topology::NetworkKind>,
    /// Docker privileges for every node, overriding the topology.
    pub privileges: Option<Privileges>,
    /// The topology's profile of link conditions to apply.
    pub profile: Option<String>,
    /// Say nothing while building images.
    pub quiet: bool,
    /// NAT the lab into a fake internet made for it (198.51.100.0/24), instead of `uplink`.
    pub fake_internet: bool,
}

/// A lab brought up (or repaired).
pub struct Started {
    /// What `up` did, with the lab's plan.
    pub outcome: UpOutcome,
    /// The runtime it runs on.
    pub runtime: RuntimeKind,
}

/// Bring the lab of `ctx` up on the real machine, choosing the runtime.
pub async fn start(ctx: &LabContext, opts: &StartOptions, progress: &Progress) -> Result<Started> {
    if opts.fake_internet && ctx.topology.uplink.is_none() {
        return Err(Error::Usage(format!(
            "topology '{}' has no [uplink] table: it cannot be NATed into a fake internet",
            ctx.topology_file
        )));
    }
    if opts.uplink.is_some() && ctx.topology.uplink.is_none() {
        return Err(Error::Usage(format!(
            "topology '{}' has no [uplink] table: it cannot be NATed out of {}",
            ctx.topology_file,
            opts.uplink.as_deref().unwrap_or_default()
        )));
    }
    if let Some(p) = &opts.profile {
        ctx.topology.profile(p)?;
    }
    let mut topology = ctx.topology.clone();
    if let Some(p) = opts.privileges {
        for n in &mut topology.nodes {
            n.privileges = p;
        }
    }
    // A lab that is up is repaired with the runtime it was made with.
    let kind = match (&ctx.state, opts.runtime) {
        (Some(st), _) => st.runtime,
        (None, Some(k)) => k,
        (None, None) => runtime::default_kind(progress).await,
    };
    if let (Some(st), Some(k)) = (&ctx.state, opts.runtime)
        && st.runtime != k
    {
        return Err(Error::Usage(format!(
            "lab '{}' is up on the {} runtime, not {k}: `tcplab down` first to change it",
            ctx.lab, st.runtime
        )));
    }
    let rt = runtime::open(
        kind,
        &RuntimeOptions {
            topology_file: ctx.topology_file.clone(),
            quiet: opts.quiet,
        },
    )
    .await?;
    let req = UpRequest {
        topology: &topology,
        lab: ctx.lab.clone(),
        topology_file: ctx.topology_file.clone(),
        topology_text: ctx.topology_text.clone(),
        options: PlanOptions {
            uplink: opts.uplink.clone(),
            switch_override: opts.switch,
            profile: opts.profile.clone(),
            fake_internet: opts.fake_internet,
        },
    };
    let result = up(&RealSystem::new(), &rt, req, progress).await;
    for n in rt.take_notes() {
        progress.note(&n);
    }
    Ok(Started {
        outcome: result?,
        runtime: kind,
    })
}
