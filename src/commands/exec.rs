//! `tcplab exec NODE CMD [ARGS...]`

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::runtime::{self, Runtime, RuntimeOptions};
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
        super::block_on(async {
            let opts = RuntimeOptions {
                topology_file: state.topology_file.clone(),
                quiet: true,
            };
            let rt = runtime::open(state.runtime, &opts).await?;
            rt.exec(&netns, &self.node, &self.command).await
        })
    }
}
