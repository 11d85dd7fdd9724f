//! Experiments from the page: the catalogue, one run at a time (on a thread of its own, as
//! `tcplab experiment run NAME` would do it), its log and checks as it goes, and the files of
//! finished runs (report, figures) for the page to open.

use super::topo::LabRef;
use crate::error::{Error, Result};
use crate::experiment::run::LabView;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An experiment of the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentInfo {
    /// Its name.
    pub name: String,
    /// The book's chapter.
    pub chapter: String,
    /// One line.
    pub title: String,
}

/// The catalogue in the book's order.
pub fn catalogue() -> Result<Vec<ExperimentInfo>> {
    Ok(crate::experiment::catalogue::catalogue(None)?
        .into_iter()
        .map(|e| ExperimentInfo {
            name: e.name,
            chapter: e.chapter,
            title: e.title,
        })
        .collect())
}

/// A check as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    /// What it checks.
    pub description: String,
    /// Green or red.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// The run of the page (the last one, or the one going on).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Job {
    /// The experiment.
    pub name: String,
    /// Still running?
    pub running: bool,
    /// Its progress lines.
    pub log: Vec<String>,
    /// What its checks check, known from the start.
    pub pending: Vec<String>,
    /// Its checks, once done.
    pub checks: Vec<CheckView>,
    /// Where its pcaps, figures and report are.
    pub out_dir: String,
    /// Why it could not run.
    pub error: Option<String>,
}

/// The page's runs: one at a time.
#[derive(Default)]
pub struct Jobs {
    current: Arc<Mutex<Job>>,
}

impl Jobs {
    /// The current (or last) run.
    pub fn snapshot(&self) -> Job {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts experiment `name` on the lab into `results/<lab>/<name>-<UTC time>`; refuses
    /// while another runs.
    pub fn start(&self, lab: &LabRef, name: &str) -> Result<()> {
        let (file, text) = crate::experiment::source(name)?;
        {
            let mut j = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if j.running {
                return Err(Error::Usage(format!(
                    "experiment {} is running: wait for it to finish",
                    j.name
                )));
            }
            *j = Job {
                name: name.to_string(),
                running: true,
                ..Job::default()
            };
        }
        let job = self.current.clone();
        let lab = lab.clone();
        std::thread::Builder::new()
            .name("web-experiment".into())
            .spawn(move || {
                let res = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::io("starting the async runtime", e))
                    .and_then(|rt| rt.block_on(run(&lab, &file, &text, &job)));
                let mut j = job.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = res {
                    j.error = Some(e.to_string());
                }
                j.running = false;
            })
            .map_err(|e| Error::io("starting the experiment's thread", e))?;
        Ok(())
    }
}

/// Runs one experiment on the lab (which must be up) and keeps its log and checks in `job`.
async fn run(lab: &LabRef, file: &str, text: &str, job: &Arc<Mutex<Job>>) -> Result<()> {
    crate::sys::require_root("running an experiment from tcplab web")?;
    let ctx = lab.resolve()?;
    let state = ctx.require_complete()?.clone();
    let plan = state.plan(&ctx.topology);
    let macs = crate::experiment::run::read_macs(&ctx.lab, &ctx.topology).await?;
    let opts = crate::runtime::RuntimeOptions {
        topology_file: state.topology_file.clone(),
        quiet: true,
    };
    let runner = Arc::new(crate::runtime::open(state.runtime, &opts).await?);
    let view = LabView {
        lab: &ctx.lab,
        topology: &ctx.topology,
        plan: &plan,
        runner,
        macs,
    };
    let text = crate::experiment::run::expand_templates(text, &view)?;
    let exp = crate::experiment::parse_variant(&text, file, None)?;
    let out_dir = PathBuf::from("results").join(&ctx.lab).join(format!(
        "{}-{}",
        exp.name,
        crate::util::utc_stamp_now()
    ));
    {
        let mut j = job.lock().unwrap_or_else(|e| e.into_inner());
        j.out_dir = out_dir.display().to_string();
        j.pending = exp.checks.iter().map(|c| c.description.clone()).collect();
    }
    let log = |s: &str| {
        let mut j = job.lock().unwrap_or_else(|e| e.into_inner());
        j.log.push(s.to_string());
    };
    let res = crate::experiment::run::run_variant(&exp, &view, &out_dir, &log, None).await?;
    crate::report::write_run_report(&res, &view)
        .map_err(|e| Error::io(format!("writing the report in {}", out_dir.display()), e))?;
    crate::sys::give_to_invoking_user(&out_dir)?;
    job.lock().unwrap_or_else(|e| e.into_inner()).checks = res
        .checks
        .iter()
        .map(|c| CheckView {
            description: c.description.clone(),
            passed: c.passed,
            detail: c.detail.clone(),
        })
        .collect();
    Ok(())
}

/// The runs kept under `results/<lab>/`, newest first (directories that hold a report).
pub fn runs(lab: &str) -> Vec<String> {
    let base = PathBuf::from("results").join(lab);
    let mut out: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&base)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("report.md").is_file())
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path().display().to_string())
        })
        .collect();
    out.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    out.into_iter().map(|(_, p)| p).collect()
}

/// A file of a run directory the page may open: its report or a figure, named without any
/// path, with its content type.
pub fn run_file(dir: &Path, name: &str) -> Result<(&'static str, Vec<u8>)> {
    let kind = if name.ends_with(".svg") {
        "image/svg+xml"
    } else if name.ends_with(".md") {
        "text/plain; charset=utf-8"
    } else {
        return Err(Error::Usage(format!(
            "{name}: only a run's report (.md) and figures (.svg) can be opened"
        )));
    };
    if name.contains('/') || name.starts_with('.') {
        return Err(Error::Usage(format!(
            "{name}: give a file name without a path"
        )));
    }
    let p = dir.join(name);
    let bytes = std::fs::read(&p).map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
    Ok((kind, bytes))
}

/// The figures of a run directory (its `*.svg`), sorted.
pub fn figures(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    v.sort();
    v
}
