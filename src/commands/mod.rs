//! The CLI: one file per subcommand, each a clap struct with an `exec` method. The work itself
//! is in the library; these only resolve the lab and print.

pub mod capture;
pub mod completions;
pub mod down;
pub mod exec;
pub mod experiment;
pub mod graph;
pub mod image;
pub mod link;
pub mod link_worker;
pub mod ls;
pub mod man;
pub mod ovs;
pub mod status;
pub mod up;
pub mod web;

use crate::error::{Error, Result};
use crate::lab::{LabContext, StartOptions};
use crate::progress::Progress;
use crate::runtime::RuntimeKind;
use crate::topology::NetworkKind;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// tcplab: a TCP/IP teaching lab of real hosts on one Linux machine.
#[derive(Debug, Parser)]
#[command(name = "tcplab", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (before or after the command name).
#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// Lab name (default: the topology's name, `tcpip` for the built-in course lab)
    #[arg(long, global = true, value_name = "NAME")]
    pub lab: Option<String>,
    /// Topology file, or a built-in topology's name: tcpip-illustrated (the default), ovs-lab
    #[arg(long, global = true, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// How nodes run: docker (containers; the default when a Docker engine answers) or netns
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "RUNTIME",
        env = "TCPLAB_RUNTIME"
    )]
    pub runtime: Option<RuntimeKind>,
    /// Make every LAN with this bridge kind, whatever the topology says
    #[arg(long, global = true, value_name = "KIND", value_parser = ["linux", "ovs"])]
    pub switch: Option<String>,
    /// No progress output
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring the lab up (NATed out of UPLINK if given; isolated otherwise)
    Up(up::UpCmd),
    /// Remove everything the lab created
    Down(down::DownCmd),
    /// Show each node with its interfaces, addresses and state
    Status(status::StatusCmd),
    /// Run a command in a node (stdin/stdout/stderr passed through, its exit code returned)
    Exec(exec::ExecCmd),
    /// Capture a node's packets: tcpdump-style lines on stderr, a pcap (pcapng for several
    /// interfaces) for Wireshark
    Capture(capture::CaptureCmd),
    /// Build the node image for the docker runtime
    Image(image::ImageCmd),
    /// Cut (down) or restore (up) a line, or set its conditions (rate, delay, loss...):
    /// NODE:IFACE, or the two NODEs of a point-to-point line
    Link(link::LinkCmd),
    /// Keep one interface's conditions (started by `link set`)
    #[command(name = "link-worker", hide = true)]
    LinkWorker(link_worker::LinkWorkerCmd),
    /// The book's experiments: list them, or run one with checks and a report
    Experiment(experiment::ExperimentCmd),
    /// Draw the topology (SVG or Graphviz DOT) to standard output
    Graph(graph::GraphCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsCmd),
    /// Print the manual page (roff) to standard output
    Man(man::ManCmd),
    /// List the labs on this host (name, runtime, nodes, uplink, since)
    Ls(ls::LsCmd),
    /// The lab's Open vSwitch: its OVSDB rows (`show`) and flow tables (`flows`)
    Ovs(ovs::OvsCmd),
    /// Serve the lab in a browser: live topology and packets, step mode, experiments, terminals
    Web(web::WebCmd),
}

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Up(c) => block_on(c.exec(&cli.global)),
        Command::Down(c) => block_on(c.exec(&cli.global)),
        Command::Status(c) => block_on(c.exec(&cli.global)),
        Command::Exec(c) => c.exec(&cli.global),
        Command::Image(c) => block_on(c.exec(&cli.global)),
        Command::Capture(c) => c.exec(&cli.global),
        Command::Link(c) => block_on(c.exec(&cli.global)),
        Command::Experiment(c) => block_on(c.exec(&cli.global)),
        Command::Graph(c) => c.exec(&cli.global),
        Command::LinkWorker(c) => c.exec(),
        Command::Completions(c) => c.exec(),
        Command::Man(c) => c.exec(),
        Command::Ls(c) => c.exec(),
        Command::Ovs(c) => c.exec(&cli.global),
        Command::Web(c) => block_on(c.exec(&cli.global)),
    }
}

/// Run a future on a single-threaded tokio runtime (all of tcplab's work is I/O bound).
pub fn block_on<F: std::future::Future<Output = Result<i32>>>(f: F) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    rt.block_on(f)
}

impl GlobalOpts {
    /// Progress reporter.
    pub fn progress(&self) -> Progress {
        Progress::new(self.quiet)
    }

    /// The switch override.
    pub fn switch_override(&self) -> Option<NetworkKind> {
        match self.switch.as_deref() {
            Some("linux") => Some(NetworkKind::Linux),
            Some("ovs") => Some(NetworkKind::Ovs),
            _ => None,
        }
    }

    /// Resolve the lab: `--topology` file, else the record of `--lab`, else the built-in topology.
    pub fn resolve(&self) -> Result<LabContext> {
        LabContext::resolve(self.lab.as_deref(), self.topology.as_deref())
    }

    /// The runtime a lab brought up now would use: `--runtime`, else the default.
    pub fn start_options(&self) -> StartOptions {
        StartOptions {
            uplink: None,
            runtime: self.runtime,
            switch: self.switch_override(),
            privileges: None,
            profile: None,
            quiet: self.quiet,
            fake_internet: false,
        }
    }
}
