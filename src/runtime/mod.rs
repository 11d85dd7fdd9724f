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

    /// After a teardown of an `up` that did not finish: remove what the runtime was still
    /// creating for lab `lab` when it was cut short. Returns how many objects it removed.
    async fn sweep(&self, _lab: &str) -> Result<usize> {
        Ok(0)
    }

    /// Run a command in a node with stdio passed through; returns its exit code.
    async fn exec(&self, netns: &str, node: &str, cmd: &[String]) -> Result<i32>;
}

/// What a command run in a node printed and returned.
#[derive(Debug, Clone, Default)]
pub struct CmdOutput {
    /// Exit code (128+signal when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs commands in a lab's nodes and collects their output (for experiments), whatever the
/// runtime: a child process inside the namespace, or a Docker exec.
#[derive(Clone)]
pub enum NodeRunner {
    /// Child processes entering the node's namespace.
    Netns,
    /// Docker exec in the node's container.
    Docker(bollard::Docker),
}

impl NodeRunner {
    /// The runner for a lab made with runtime `kind`.
    pub async fn new(kind: RuntimeKind) -> Result<Self> {
        Ok(match kind {
            RuntimeKind::Netns => NodeRunner::Netns,
            RuntimeKind::Docker => {
                NodeRunner::Docker(docker::DockerRuntime::connect("").await?.client().clone())
            }
        })
    }

    /// Run `argv` in `node` of `lab` and collect its output.
    pub async fn run(&self, lab: &str, node: &str, argv: &[String]) -> Result<CmdOutput> {
        let netns = crate::plan::node_netns(lab, node);
        match self {
            NodeRunner::Netns => {
                let mut cmd =
                    tokio::process::Command::from(netns::node_command(&netns, node, argv)?);
                cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
                let out = cmd
                    .output()
                    .await
                    .map_err(|e| crate::Error::io(format!("running {} in {node}", argv[0]), e))?;
                use std::os::unix::process::ExitStatusExt;
                let code = out
                    .status
                    .code()
                    .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
                Ok(CmdOutput {
                    code,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
            NodeRunner::Docker(d) => docker_exec::run_collect(d, &netns, argv).await,
        }
    }
}
