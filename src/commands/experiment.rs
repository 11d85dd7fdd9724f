//! `tcplab experiment list [--chapter N] [--markdown]`, `tcplab experiment run NAME [--out DIR]`
//! and `tcplab experiment run --all [--chapter N] [--out DIR]`.

use super::GlobalOpts;
use crate::error::{Context, Error, Result};
use crate::experiment::catalogue::{self, Outcome, RunRow, Section};
use crate::experiment::run::{LabView, RunResult};
use crate::experiment::{self, Experiment};
use crate::lab::LabContext;
use crate::plan::Plan;
use crate::runtime::{self, AnyRuntime, RuntimeOptions};
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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
    /// List the experiments in the book's order: name, chapter, title
    List {
        /// Only those of this chapter or section (18 lists 18, 18.4, ...)
        #[arg(long, value_name = "N")]
        chapter: Option<Section>,
        /// Print the chapter index as a Markdown table (chapter, experiment, what it shows)
        #[arg(long)]
        markdown: bool,
    },
    /// Run one (or --all) on the lab (bringing the lab up first if it is not), check it, write
    /// a report
    Run {
        /// Experiment name (see `list`), or a path to an experiment TOML file
        #[arg(conflicts_with = "all")]
        name: Option<String>,
        /// Run every experiment in the book's order, each into DIR/NAME, with DIR/index.md
        /// summing them up
        #[arg(long)]
        all: bool,
        /// With --all: only the experiments of this chapter or section
        #[arg(long, value_name = "N", conflicts_with = "name")]
        chapter: Option<Section>,
        /// Where to keep the pcaps, SVG time-lines and report.md (default
        /// results/<lab>/<name>-<UTC time>; with --all, results/<lab>/all-<UTC time>)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Break the lab first as the experiment's broken variant K (from 1) says, and check that
        /// it goes red the way the experiment teaches (exit 0 if it does)
        #[arg(long, value_name = "K", conflicts_with = "all")]
        broken: Option<usize>,
    },
}

impl ExperimentCmd {
    /// Run it.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        match &self.action {
            ExperimentAction::List { chapter, markdown } => list(chapter.as_ref(), *markdown),
            ExperimentAction::Run {
                name: Some(name),
                out,
                broken,
                ..
            } => run_named(g, name, out.clone(), *broken).await,
            ExperimentAction::Run {
                all: true,
                chapter,
                out,
                ..
            } => run_all(g, chapter.as_ref(), out.clone()).await,
            ExperimentAction::Run {
                chapter: Some(ch), ..
            } => Err(Error::Usage(format!(
                "--chapter {ch} picks the experiments of `experiment run --all`: add --all"
            ))),
            ExperimentAction::Run { .. } => Err(Error::Usage(
                "experiment run needs an experiment NAME or --all (see `tcplab experiment list`)"
                    .into(),
            )),
        }
    }
}

/// `experiment list`: one line each, or the Markdown chapter index. No experiment of the
/// chapter is not an error: a note on stderr.
fn list(chapter: Option<&Section>, markdown: bool) -> Result<i32> {
    let exps = catalogue::catalogue(chapter)?;
    if let (Some(ch), true) = (chapter, exps.is_empty()) {
        eprintln!("no experiment of chapter {ch} (`tcplab experiment list` lists them all)");
        return Ok(0);
    }
    if markdown {
        print!("{}", catalogue::markdown_index(&exps));
    } else {
        for e in &exps {
            println!("{}", catalogue::list_line(e));
        }
    }
    Ok(0)
}

/// `experiment run NAME [--broken K]`: exit 0 if every check passed (on a broken lab: if it
/// went red as the variant says), 1 otherwise.
async fn run_named(
    g: &GlobalOpts,
    name: &str,
    out: Option<PathBuf>,
    broken: Option<usize>,
) -> Result<i32> {
    let (file, text) = experiment::source(name)?;
    let exp = experiment::parse_variant(&text, &file, broken)?;
    if let Some(k) = broken
        && (k == 0 || k > exp.broken.len())
    {
        return Err(Error::Usage(format!(
            "experiment {} has {} broken variants: give --broken 1 to {}",
            exp.name,
            exp.broken.len(),
            exp.broken.len()
        )));
    }
    let lab = OpenLab::open(
        g,
        "tcplab experiment run",
        exp.needs_fake_internet(),
        exp.topology.as_deref(),
    )
    .await?;
    let out_dir = out.unwrap_or_else(|| {
        PathBuf::from("results").join(&lab.ctx.lab).join(format!(
            "{}-{}",
            exp.name,
            crate::util::utc_stamp_now()
        ))
    });
    let res = run_one(&lab.view(), &file, &text, &out_dir, g.quiet, broken).await?;
    Ok(res.exit_code())
}

/// The lab experiments run on, up (brought up first if it was not), with what a run needs.
struct OpenLab {
    ctx: LabContext,
    plan: Plan,
    runner: Arc<AnyRuntime>,
    macs: HashMap<(String, String), String>,
}

impl OpenLab {
    /// Resolve the lab of the command line and bring it up if it is not (as root only: `what`
    /// names the command in the refusal). With `topology` (a built-in topology's name, what an
    /// experiment asks for) and no `--topology`, the lab is brought up from that topology; a
    /// lab up from another topology is refused.
    async fn open(
        g: &GlobalOpts,
        what: &str,
        fake_internet: bool,
        topology: Option<&str>,
    ) -> Result<OpenLab> {
        crate::sys::require_root(what)?;
        let resolve = || match (topology, &g.topology) {
            (Some(t), None) => LabContext::resolve(g.lab.as_deref(), Some(Path::new(t))),
            _ => g.resolve(),
        };
        let mut ctx = resolve()?;
        if let Some(t) = topology {
            require_topology(&ctx, t)?;
        }
        if ctx.state.is_none() {
            let mut opts = g.start_options();
            opts.fake_internet = fake_internet;
            eprintln!(
                "lab '{}' is not up: bringing it up first{}",
                ctx.lab,
                if fake_internet {
                    ", NATed into a fake internet"
                } else {
                    ""
                }
            );
            crate::lab::start(&ctx, &opts, &g.progress()).await?;
            ctx = resolve()?;
        }
        let state = ctx.require_complete()?.clone();
        let plan = state.plan(&ctx.topology);
        let macs = experiment::run::read_macs(&ctx.lab, &ctx.topology).await?;
        let opts = RuntimeOptions {
            topology_file: state.topology_file.clone(),
            quiet: g.quiet,
        };
        let runner = Arc::new(runtime::open(state.runtime, &opts).await?);
        Ok(OpenLab {
            ctx,
            plan,
            runner,
            macs,
        })
    }

    /// What a run sees of it.
    fn view(&self) -> LabView<'_> {
        LabView {
            lab: &self.ctx.lab,
            topology: &self.ctx.topology,
            plan: &self.plan,
            runner: self.runner.clone(),
            macs: self.macs.clone(),
        }
    }
}

/// The name of the topology lab `ctx` is up from (its record's), else of the one it would be
/// brought up from.
fn lab_topology_name(ctx: &LabContext) -> Result<String> {
    match &ctx.state {
        Some(st) => Ok(crate::topology::parse(&st.topology_text, &st.topology_file)?.name),
        None => Ok(ctx.topology.name.clone()),
    }
}

/// The name built-in topology `builtin` gives its labs (`ovslab` for `ovs-lab`).
fn builtin_topology_name(builtin: &str) -> Result<String> {
    match crate::topology::builtin_named(builtin) {
        Some(t) => Ok(t?.0.name),
        None => Err(Error::Usage(format!(
            "'{builtin}' is not a built-in topology: give one of `tcplab experiment list`'s"
        ))),
    }
}

/// A usage error (exit 2) unless lab `ctx` is (or would be brought up) from built-in topology
/// `builtin`.
fn require_topology(ctx: &LabContext, builtin: &str) -> Result<()> {
    let have = lab_topology_name(ctx)?;
    if have == builtin_topology_name(builtin)? {
        return Ok(());
    }
    let how = if ctx.state.is_some() {
        "is up"
    } else {
        "would come up"
    };
    Err(Error::Usage(format!(
        "lab '{}' {how} from topology '{have}', and this experiment runs on topology {builtin}: run it on another lab (`--lab NAME`) or bring this one down",
        ctx.lab
    )))
}

/// Why experiment `e` does not run on a lab of topology `lab_topology` (the topology's name),
/// or `None` if it does. One without a `topology` runs on any lab but those of the other
/// built-in topologies.
fn skip_reason(e: &Experiment, lab_topology: &str) -> Result<Option<String>> {
    let wanted = builtin_topology_name(e.topology_name())?;
    if wanted == lab_topology {
        return Ok(None);
    }
    let other_builtin = crate::topology::BUILTINS
        .iter()
        .any(|(n, _)| builtin_topology_name(n).is_ok_and(|t| t == lab_topology));
    if e.topology.is_none() && !other_builtin {
        return Ok(None);
    }
    Ok(Some(format!(
        "for topology {}, not the lab's ({lab_topology})",
        e.topology_name()
    )))
}

/// Run the experiment of `file` (its `text`, templates not filled in) on the lab into
/// `out_dir`: prints its title, each check as PASS or FAIL with what was seen, the totals and
/// where the report is.
async fn run_one(
    view: &LabView<'_>,
    file: &str,
    text: &str,
    out_dir: &Path,
    quiet: bool,
    broken: Option<usize>,
) -> Result<RunResult> {
    let text = experiment::run::expand_templates(text, view)?;
    let exp = experiment::parse_variant(&text, file, broken)?;
    println!(
        "experiment {} (ch. {}): {}",
        exp.name, exp.chapter, exp.title
    );
    let log = move |s: &str| {
        if !quiet {
            eprintln!("  {s}");
        }
    };
    let res = experiment::run::run_variant(&exp, view, out_dir, &log, broken).await?;
    for c in &res.checks {
        println!(
            "{} {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.description
        );
        println!("     {}", c.detail);
    }
    let report = crate::report::write_run_report(&res, view)
        .map_err(|e| Error::io(format!("writing the report in {}", out_dir.display()), e))?;
    // The pcaps, figures and report are the user's, not root's.
    crate::sys::give_to_invoking_user(out_dir)?;
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
    Ok(res)
}

/// `experiment run --all`: every experiment (of the chapter) in the book's order, each into
/// OUT/NAME, then the summary on stdout and in OUT/index.md. Exit 0 if all are green, 1 if
/// not, 130 if interrupted.
async fn run_all(g: &GlobalOpts, chapter: Option<&Section>, out: Option<PathBuf>) -> Result<i32> {
    let exps = catalogue::catalogue(chapter)?;
    if let (Some(ch), true) = (chapter, exps.is_empty()) {
        eprintln!("no experiment of chapter {ch}: nothing to run");
        return Ok(0);
    }
    let lab = OpenLab::open(g, "tcplab experiment run --all", false, None).await?;
    let started = crate::util::utc_stamp_now();
    let base = out.unwrap_or_else(|| {
        PathBuf::from("results")
            .join(&lab.ctx.lab)
            .join(format!("all-{started}"))
    });
    crate::sys::create_user_dirs(&base)?;
    let view = lab.view();
    interrupt::catch()?;
    let mut rows = Vec::new();
    let mut not_run = Vec::new();
    for (i, e) in exps.iter().enumerate() {
        if interrupt::requested() {
            not_run = exps[i..].iter().map(|e| e.name.clone()).collect();
            break;
        }
        let why = match skip_reason(e, &lab.ctx.topology.name)? {
            None if e.needs_fake_internet() && view.plan.fake_internet.is_none() => {
                Some("needs a lab up with --fake-internet".to_string())
            }
            other => other,
        };
        let row = match why {
            Some(why) => RunRow {
                name: e.name.clone(),
                chapter: e.chapter.clone(),
                outcome: Outcome::Skipped(why),
                seconds: 0.0,
                has_report: false,
            },
            None => run_listed(&view, e, &base, g.quiet).await,
        };
        println!("=> {}: {} ({:.1} s)", row.name, row.outcome, row.seconds);
        rows.push(row);
    }
    println!();
    print!("{}", catalogue::summary_table(&rows));
    println!("{}", catalogue::totals(&rows));
    if !not_run.is_empty() {
        println!("interrupted; not run: {}", not_run.join(", "));
    }
    let index = base.join("index.md");
    let md = catalogue::summary_index(&lab.ctx.lab, &started, &rows, &not_run);
    std::fs::write(&index, md).map_err(|e| Error::io(format!("writing {}", index.display()), e))?;
    crate::sys::give_to_invoking_user(&base)?;
    println!("index: {}", index.display());
    Ok(if !not_run.is_empty() {
        130
    } else if rows.iter().all(|r| r.outcome.is_ok()) {
        0
    } else {
        1
    })
}

/// Run built-in experiment `e` into `base/NAME`; its row of the summary (an error is a row too).
async fn run_listed(view: &LabView<'_>, e: &Experiment, base: &Path, quiet: bool) -> RunRow {
    let dir = base.join(&e.name);
    let t0 = Instant::now();
    let res = match experiment::source(&e.name) {
        Ok((file, text)) => run_one(view, &file, &text, &dir, quiet, None).await,
        Err(err) => Err(err),
    };
    let outcome = match res {
        Ok(r) if r.passed() => Outcome::Green,
        Ok(r) => Outcome::Red {
            failed: r.checks.iter().filter(|c| !c.passed).count(),
            total: r.checks.len(),
        },
        Err(err) => {
            println!("error: {err}");
            Outcome::Error(err.to_string())
        }
    };
    RunRow {
        name: e.name.clone(),
        chapter: e.chapter.clone(),
        outcome,
        seconds: t0.elapsed().as_secs_f64(),
        has_report: dir.join("report.md").is_file(),
    }
}

/// Ctrl-C (or SIGTERM) during `run --all`: the first lets the current experiment finish,
/// cleanup included, and stops before the next; a second ends tcplab at once (exit 130),
/// leaving the lab as the experiment had it.
mod interrupt {
    use super::*;

    static COUNT: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_signal(_: libc::c_int) {
        if COUNT.fetch_add(1, Ordering::SeqCst) == 0 {
            let msg = b"\ntcplab: stopping after this experiment and its cleanup (Ctrl-C again to stop at once)\n";
            // SAFETY: write(2) is async-signal-safe; the buffer is static.
            unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        } else {
            // SAFETY: _exit(2) is async-signal-safe.
            unsafe { libc::_exit(130) };
        }
    }

    /// Install the handlers (they replace any installed before, such as `up`'s).
    pub(super) fn catch() -> Result<()> {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only touches an atomic and calls async-signal-safe functions.
            unsafe { sigaction(sig, &action) }.with_context(|| format!("catching {sig}"))?;
        }
        Ok(())
    }

    /// Whether Ctrl-C (or SIGTERM) asked `run --all` to stop after the current experiment.
    pub(super) fn requested() -> bool {
        COUNT.load(Ordering::SeqCst) > 0
    }
}
