//! `tcplab link-worker` (hidden): the process that keeps one interface's conditions, started
//! by `tcplab link set` and stopped by `link clear` or `down`.

use crate::conditions::datapath::run_worker;
use crate::conditions::spec::Conditions;
use crate::error::{Error, Result};
use clap::Args;
use std::path::PathBuf;

/// Run a conditions worker (started by tcplab itself).
#[derive(Debug, Args)]
pub struct LinkWorkerCmd {
    /// The node's namespace file
    #[arg(long)]
    pub netns: PathBuf,
    /// The interface whose outgoing packets get the conditions
    #[arg(long)]
    pub iface: String,
    /// The abstract unix socket it answers on
    #[arg(long)]
    pub control: String,
    /// The conditions, as JSON
    #[arg(long)]
    pub conditions: String,
}

impl LinkWorkerCmd {
    /// Run it until stopped.
    pub fn exec(&self) -> Result<i32> {
        let c: Conditions = serde_json::from_str(&self.conditions)
            .map_err(|e| Error::Usage(format!("conditions '{}': {e}", self.conditions)))?;
        run_worker(&self.netns, &self.iface, &self.control, &c)?;
        Ok(0)
    }
}
