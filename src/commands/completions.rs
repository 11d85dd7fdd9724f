//! `tcplab completions SHELL`: a completion script generated from the CLI definition.

use crate::error::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Print a shell completion script.
#[derive(Debug, Args)]
pub struct CompletionsCmd {
    /// The shell (install e.g. `tcplab completions bash > /etc/bash_completion.d/tcplab`)
    #[arg(value_enum)]
    pub shell: Shell,
}

impl CompletionsCmd {
    /// Run it: the script goes to standard output.
    pub fn exec(&self) -> Result<i32> {
        let mut cmd = super::Cli::command();
        clap_complete::generate(self.shell, &mut cmd, "tcplab", &mut std::io::stdout());
        Ok(0)
    }
}
