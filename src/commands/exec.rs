//! `tcplab exec NODE CMD [ARGS...]`

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::netns::exec_in_netns;
use clap::Args;

/// Run a command in a node.
#[derive(Debug, Args)]
pub struct ExecCmd {
    /// The node
    pub node: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

impl ExecCmd {
    /// Run it: for the netns runtime, this process becomes the command.
    pub fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let state = ctx.require_up()?;
        ctx.topology.require_node(&ctx.lab, &self.node)?;
        crate::sys::require_root("tcplab exec")?;
        let netns = crate::plan::node_netns(&ctx.lab, &self.node);
        if !crate::sys::netns_exists(&netns) {
            return Err(Error::Usage(format!(
                "node '{}' of lab '{}' is not running: run `tcplab down` then `tcplab up`",
                self.node, ctx.lab
            )));
        }
        match state.runtime.as_str() {
            "docker" => super::block_on(async {
                let docker = DockerRuntime::connect(&state.topology_file).await?;
                docker.exec(&netns, &self.node, &self.command).await
            }),
            _ => exec_in_netns(&netns, &self.node, &self.command),
        }
    }
}
