//! `tcplab graph [--format svg|dot]`: the topology drawn.

use super::GlobalOpts;
use crate::error::Result;
use crate::report::{graph_of, svg};
use clap::Args;

/// Draw the topology.
#[derive(Debug, Args)]
pub struct GraphCmd {
    /// Output format
    #[arg(long, default_value = "svg", value_parser = ["svg", "dot"])]
    pub format: String,
}

impl GraphCmd {
    /// Run it: the drawing goes to standard output.
    pub fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ctx = g.resolve()?;
        let graph = graph_of(&ctx.topology);
        let out = if self.format == "dot" {
            svg::topology_dot(&graph)
        } else {
            svg::topology_svg(&graph)
        };
        print!("{out}");
        Ok(0)
    }
}
