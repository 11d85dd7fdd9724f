//! Runtimes: what a lab host *is* (a plain network namespace, or a Docker container). Every
//! runtime hands the network code the same thing: a named namespace under /run/netns.

pub mod docker;
pub mod docker_exec;
pub mod image;
pub mod netns;

use crate::error::Result;
use crate::plan::Plan;
use crate::state::Object;

/// Which runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Each node a named network namespace (no Docker needed).
    Netns,
    /// Each node a Docker container.
    Docker,
}

impl RuntimeKind {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Netns => "netns",
            RuntimeKind::Docker => "docker",
        }
    }
    /// Parse a name from a state file.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "netns" => Some(RuntimeKind::Netns),
            "docker" => Some(RuntimeKind::Docker),
            _ => None,
        }
    }
}

/// A runtime creates and removes the lab's nodes; the network code does the rest inside the
/// namespaces it leaves at /run/netns/<plan node netns>.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    /// Which runtime this is.
    fn kind(&self) -> RuntimeKind;

    /// What creating the plan's nodes will make, recorded before anything is created.
    fn objects(&self, plan: &Plan) -> Vec<Object>;

    /// Create every node so that /run/netns/<netns> exists for each. On error, what was made is
    /// left for the caller's rollback (it is all in [`Runtime::objects`]).
    async fn create_nodes(&self, plan: &Plan) -> Result<()>;

    /// Remove one object this runtime made (Ok(false): it was not there).
    async fn remove(&self, object: &Object) -> Result<bool>;

    /// Run a command in a node with stdio passed through; returns its exit code.
    async fn exec(&self, netns: &str, node: &str, cmd: &[String]) -> Result<i32>;
}
