//! `tcplab experiment list` and `tcplab experiment run NAME [--out DIR]`

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::experiment::{self, run::LabView};
use crate::runtime::{NodeRunner, RuntimeKind};
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
            ExperimentAction::Run { name, out } => self.run(g, name, out.clone()).await,
        }
    }

    async fn run(&self, g: &GlobalOpts, name: &str, out: Option<PathBuf>) -> Result<i32> {
        let (file, text) = experiment::source(name)?;
        experiment::parse(&text, &file)?;
        crate::sys::require_root("tcplab experiment run")?;
        let mut ctx = g.resolve()?;
        if ctx.state.is_none() {
            eprintln!("lab '{}' is not up: bringing it up first", ctx.lab);
            let up = super::up::UpCmd {
                uplink: None,
                dry_run: false,
                privileges: None,
            };
            up.exec(g).await?;
            ctx = g.resolve()?;
        }
        let state = ctx.require_up()?.clone();
        if !state.complete {
            return Err(Error::Usage(format!(
                "lab '{}' is only partly up: run `tcplab down` and `tcplab up`",
                ctx.lab
            )));
        }
        let kind = RuntimeKind::from_name(&state.runtime).unwrap_or(RuntimeKind::Netns);
        let plan = state.plan(&ctx.topology);
        let macs = experiment::run::read_macs(&ctx.lab, &ctx.topology).await?;
        let view = LabView {
            lab: &ctx.lab,
            topology: &ctx.topology,
            plan: &plan,
            runner: NodeRunner::new(kind).await?,
            macs,
        };
        let text = experiment::run::expand_templates(&text, &view)?;
        let exp = experiment::parse(&text, &file)?;
        let out_dir = out.unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            PathBuf::from("results").join(&ctx.lab).join(format!(
                "{}-{}",
                exp.name,
                utc_stamp(secs)
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
        let res = experiment::run::run(&exp, &view, &out_dir, &log).await?;
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
        let passed = res.checks.iter().filter(|c| c.passed).count();
        println!("{passed} passed, {} failed", res.checks.len() - passed);
        println!("report: {}", report.display());
        Ok(if res.passed() { 0 } else { 1 })
    }
}

/// `YYYYmmddTHHMMSSZ` for a Unix time (UTC), without a date crate.
pub fn utc_stamp(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamps() {
        assert_eq!(super::utc_stamp(0), "19700101T000000Z");
        assert_eq!(super::utc_stamp(1795564800), "20261125T000000Z");
        assert_eq!(super::utc_stamp(951_782_400 + 3661), "20000229T010101Z");
    }
}
