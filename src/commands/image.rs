//! `tcplab image build [--force]`

use super::GlobalOpts;
use crate::error::Result;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::image::{self, Outcome};
use clap::{Args, Subcommand};
use std::time::Instant;

/// The node image.
#[derive(Debug, Args)]
pub struct ImageCmd {
    /// What to do
    #[command(subcommand)]
    pub action: ImageAction,
}

/// Image actions.
#[derive(Debug, Subcommand)]
pub enum ImageAction {
    /// Build the node image (tcplab/node:latest) through the Docker API, from a debootstrap base
    Build {
        /// Rebuild even if it exists
        #[arg(long)]
        force: bool,
    },
}

impl ImageCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let ImageAction::Build { force } = self.action;
        crate::sys::require_root("tcplab image build")?;
        let docker = DockerRuntime::connect("").await?;
        let start = Instant::now();
        let quiet = g.quiet;
        let bar = (!quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        let report = |phase: &str, line: &str| {
            if let Some(b) = &bar {
                b.set_message(format!(
                    "{phase}: {}",
                    line.chars().take(100).collect::<String>()
                ));
            } else if !quiet {
                eprintln!("{phase}: {line}");
            }
        };
        let outcome = image::ensure_node_image(docker.client(), force, &report).await?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if !quiet {
            let what = match outcome {
                Outcome::AlreadyPresent => "is already built",
                Outcome::Built => "built",
            };
            eprintln!(
                "{} {what} ({:.1} s)",
                image::NODE_IMAGE,
                start.elapsed().as_secs_f64()
            );
        }
        Ok(0)
    }
}
