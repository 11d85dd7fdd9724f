//! Progress of `up` and `down`: one indicatif bar per phase on a terminal, plain lines
//! otherwise, nothing with `-q`.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// How to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars on stderr.
    Bars,
    /// One line per phase on stderr.
    Lines,
    /// Nothing.
    Quiet,
}

/// The reporter.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
}

/// One phase in progress.
pub struct Phase {
    bar: Option<ProgressBar>,
    name: String,
    total: u64,
    done: u64,
    start: Instant,
    mode: Mode,
}

impl Progress {
    /// Bars on a terminal, lines otherwise; `quiet` silences both.
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    /// A reporter with an explicit mode.
    pub fn with_mode(mode: Mode) -> Self {
        Progress { mode }
    }

    /// Start a phase of `total` steps.
    pub fn phase(&self, name: &str, total: u64) -> Phase {
        let bar = (self.mode == Mode::Bars).then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{prefix:>12.cyan.bold} [{bar:30}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_prefix(name.to_string());
            b
        });
        Phase {
            bar,
            name: name.to_string(),
            total,
            done: 0,
            start: Instant::now(),
            mode: self.mode,
        }
    }

    /// A one-line message (not in quiet mode).
    pub fn note(&self, msg: &str) {
        if self.mode != Mode::Quiet {
            eprintln!("{msg}");
        }
    }
}

impl Phase {
    /// `n` more steps done.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// A detail message on the bar.
    pub fn message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }

    /// The phase is over.
    pub fn finish(self) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        match self.mode {
            Mode::Bars => {
                if let Some(b) = &self.bar {
                    b.set_position(self.total);
                    b.finish_with_message(format!("{ms:.1} ms"));
                }
            }
            Mode::Lines => eprintln!(
                "{}: {} done ({ms:.1} ms)",
                self.name,
                self.total.max(self.done)
            ),
            Mode::Quiet => {}
        }
    }
}
