//! `tcplab experiment list` and `tcplab experiment run NAME [--out DIR]`

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::experiment::{self, run::LabView};
use crate::runtime::{self, RuntimeOptions};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// The book's experiments.
#[derive(Debug, Args)]
pub struct ExperimentCmd {
    /// What to do
    #[command(subcommand)]
    pub action: ExperimentAction,
}

/// Experiment actions.
#[derive(Debug, Subcommand)]
pub enum ExperimentAction {
    /// List the experiments: name, chapter, title
    List,
    /// Run one on the lab (bringing the lab up first if it is not), check it, write a report
    Run {
        /// Experiment name (see `list`), or a path to an experiment TOML file
        name: String,
        /// Where to keep the pcaps, SVG time-lines and report.md (default results/<lab>/<name>-<UTC time>)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Break the lab first as the experiment's broken variant K (from 1) says, and check that
        /// it goes red the way the experiment teaches (exit 0 if it does)
        #[arg(long, value_name = "K")]
        broken: Option<usize>,
    },
}

impl ExperimentCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        match &self.action {
            ExperimentAction::List => {
                for e in experiment::builtin()? {
                    println!("{:<22} ch. {:<8} {}", e.name, e.chapter, e.title);
                }
                Ok(0)
            }
            ExperimentAction::Run { name, out, broken } => {
                self.run(g, name, out.clone(), *broken).await
            }
        }
    }

    async fn run(
        &self,
        g: &GlobalOpts,
        name: &str,
        out: Option<PathBuf>,
        broken: Option<usize>,
    ) -> Result<i32> {
        let (file, text) = experiment::source(name)?;
        let parsed = experiment::parse(&text, &file)?;
        if let Some(k) = broken
            && (k == 0 || k > parsed.broken.len())
        {
            return Err(Error::Usage(format!(
                "experiment {} has {} broken variants: give --broken 1 to {}",
                parsed.name,
                parsed.broken.len(),
                parsed.broken.len()
            )));
        }
        crate::sys::require_root("tcplab experiment run")?;
        let mut ctx = g.resolve()?;
        if ctx.state.is_none() {
            eprintln!("lab '{}' is not up: bringing it up first", ctx.lab);
            crate::lab::start(&ctx, &g.start_options(), &g.progress()).await?;
            ctx = g.resolve()?;
        }
        let state = ctx.require_complete()?.clone();
        let plan = state.plan(&ctx.topology);
        let macs = experiment::run::read_macs(&ctx.lab, &ctx.topology).await?;
        let opts = RuntimeOptions {
            topology_file: state.topology_file.clone(),
            quiet: g.quiet,
        };
        let view = LabView {
            lab: &ctx.lab,
            topology: &ctx.topology,
            plan: &plan,
            runner: std::sync::Arc::new(runtime::open(state.runtime, &opts).await?),
            macs,
        };
        let text = experiment::run::expand_templates(&text, &view)?;
        let exp = experiment::parse_variant(&text, &file, broken)?;
        let out_dir = out.unwrap_or_else(|| {
            PathBuf::from("results").join(&ctx.lab).join(format!(
                "{}-{}",
                exp.name,
                crate::util::utc_stamp_now()
            ))
        });
        let quiet = g.quiet;
        println!(
            "experiment {} (ch. {}): {}",
            exp.name, exp.chapter, exp.title
        );
        let log = move |s: &str| {
            if !quiet {
                eprintln!("  {s}");
            }
        };
        let res = experiment::run::run_variant(&exp, &view, &out_dir, &log, broken).await?;
        for c in &res.checks {
            println!(
                "{} {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.description
            );
            println!("     {}", c.detail);
        }
        let report = crate::report::write_run_report(&res, &view)
            .map_err(|e| Error::io(format!("writing the report in {}", out_dir.display()), e))?;
        // The pcaps, figures and report are the user's, not root's.
        crate::sys::give_to_invoking_user(&out_dir)?;
        let passed = res.checks.iter().filter(|c| c.passed).count();
        println!("{passed} passed, {} failed", res.checks.len() - passed);
        if let (Some((k, b)), Some((ok, wrong))) = (&res.broken, res.red_as_expected()) {
            if ok {
                println!("broken lab {k} ({}): red as expected", b.description);
            } else {
                println!(
                    "broken lab {k} ({}): NOT red as expected: {}",
                    b.description,
                    wrong.join("; ")
                );
            }
        }
        println!("report: {}", report.display());
        Ok(res.exit_code())
    }
}
