//! Runtimes: what a lab host *is* (a plain network namespace, or a Docker container). Every
//! runtime hands the network code the same thing: a named namespace under /run/netns.
//!
//! The runtime is chosen in one place, [`open`]; everything that differs between runtimes is a
//! method of [`Runtime`]. A new runtime (a Podman container, a Kubernetes pod) is a new file
//! here, a [`RuntimeKind`] variant and an [`AnyRuntime`] arm: nothing outside `runtime/` changes.

pub mod docker;
pub mod docker_exec;
pub mod image;
pub mod netns;

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::state::Object;
use docker::{DockerRuntime, NoEngine};
use netns::NetnsRuntime;

pub use crate::state::RuntimeKind;

/// What a command run in a node printed and returned.
#[derive(Debug, Clone, Default)]
pub struct CmdOutput {
    /// Exit code (128+signal when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A runtime creates and removes the lab's nodes and runs commands in them; the network code
/// does the rest inside the namespaces it leaves at `/run/netns/<plan node netns>`.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    /// Which runtime this is.
    fn kind(&self) -> RuntimeKind;

    /// What creating the plan's nodes will make, recorded before anything is created.
    fn objects(&self, plan: &Plan) -> Vec<Object>;

    /// Create every node so that `/run/netns/<netns>` exists for each. On error, what was made is
    /// left for the caller's rollback (it is all in [`Runtime::objects`]).
    async fn create_nodes(&self, plan: &Plan) -> Result<()>;

    /// Bring back the plan's nodes that are gone or stopped (a lab after a reboot, a container
    /// restarted or removed behind tcplab's back), so that `/run/netns/<netns>` is each node's
    /// live namespace again. Returns the nodes it created or restarted.
    async fn ensure_nodes(&self, plan: &Plan) -> Result<Vec<String>>;

    /// Remove one object this runtime made (Ok(false): it was not there, or is not its kind).
    async fn remove(&self, object: &Object) -> Result<bool>;

    /// Objects of lab `lab` this runtime finds by its labels, without a record.
    async fn find_leftovers(&self, _lab: &str) -> Result<Vec<Object>> {
        Ok(Vec::new())
    }

    /// After a teardown of an `up` that did not finish: remove what the runtime was still
    /// creating for lab `lab` when it was cut short. Returns how many objects it removed.
    async fn sweep(&self, _lab: &str) -> Result<usize> {
        Ok(0)
    }

    /// Make sure `/run/netns/<netns>` is the node's live namespace (a restarted container has a
    /// new one). Nothing to do for runtimes whose namespace is the node.
    async fn refresh_netns(&self, _netns: &str) -> Result<()> {
        Ok(())
    }

    /// Run a command in a node with stdio passed through; returns its exit code. (The netns
    /// runtime replaces this process with the command and returns only on failure.)
    async fn exec(&self, netns: &str, node: &str, cmd: &[String]) -> Result<i32>;

    /// Run `argv` in a node and collect its output (stdin empty).
    async fn run(&self, netns: &str, node: &str, argv: &[String]) -> Result<CmdOutput>;

    /// Warnings gathered while creating nodes (for the caller to print).
    fn take_notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Options for opening a runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// The lab's topology file (the docker runtime labels containers with it).
    pub topology_file: String,
    /// Say nothing while building images.
    pub quiet: bool,
}

/// One of the runtimes, chosen at run time.
pub enum AnyRuntime {
    /// Plain network namespaces.
    Netns(NetnsRuntime),
    /// Docker containers.
    Docker(Box<DockerRuntime>),
    /// The docker runtime when its engine does not answer (teardown removes everything else).
    Unavailable(NoEngine),
}

/// Open runtime `kind`: the one place a runtime is chosen.
pub async fn open(kind: RuntimeKind, opts: &RuntimeOptions) -> Result<AnyRuntime> {
    Ok(match kind {
        RuntimeKind::Netns => AnyRuntime::Netns(NetnsRuntime),
        RuntimeKind::Docker => AnyRuntime::Docker(Box::new(
            DockerRuntime::connect(&opts.topology_file)
                .await?
                .quiet(opts.quiet),
        )),
    })
}

/// Open runtime `kind` to remove a lab: when its engine does not answer, a stand-in that
/// leaves the runtime's objects recorded (with the reason) so everything else still goes.
pub async fn open_for_teardown(kind: RuntimeKind, topology_file: &str) -> AnyRuntime {
    let opts = RuntimeOptions {
        topology_file: topology_file.into(),
        quiet: true,
    };
    match open(kind, &opts).await {
        Ok(rt) => rt,
        Err(e) => AnyRuntime::Unavailable(NoEngine(e.to_string())),
    }
}

/// The default runtime: docker when an engine answers, else netns (said in one line).
pub async fn default_kind(progress: &Progress) -> RuntimeKind {
    if DockerRuntime::available().await {
        RuntimeKind::Docker
    } else {
        progress.note(
            "note: no Docker engine answers: using the netns runtime (plain network namespaces)",
        );
        RuntimeKind::Netns
    }
}

/// Objects of lab `lab` that the runtimes find by their labels without a record, and the
/// runtime they belong to (None: no runtime found any).
pub async fn find_leftovers(lab: &str) -> (Option<RuntimeKind>, Vec<Object>) {
    let opts = RuntimeOptions::default();
    for kind in [RuntimeKind::Docker] {
        if let Ok(rt) = open(kind, &opts).await
            && let Ok(objects) = rt.find_leftovers(lab).await
            && !objects.is_empty()
        {
            return (Some(kind), objects);
        }
    }
    (None, Vec::new())
}

macro_rules! each {
    ($self:expr, $rt:ident => $body:expr) => {
        match $self {
            AnyRuntime::Netns($rt) => $body,
            AnyRuntime::Docker($rt) => $body,
            AnyRuntime::Unavailable($rt) => $body,
        }
    };
}

impl Runtime for AnyRuntime {
    fn kind(&self) -> RuntimeKind {
        each!(self, r => r.kind())
    }
    fn objects(&self, plan: &Plan) -> Vec<Object> {
        each!(self, r => r.objects(plan))
    }
    async fn create_nodes(&self, plan: &Plan) -> Result<()> {
        each!(self, r => r.create_nodes(plan).await)
    }
    async fn ensure_nodes(&self, plan: &Plan) -> Result<Vec<String>> {
        each!(self, r => r.ensure_nodes(plan).await)
    }
    async fn remove(&self, object: &Object) -> Result<bool> {
        each!(self, r => r.remove(object).await)
    }
    async fn find_leftovers(&self, lab: &str) -> Result<Vec<Object>> {
        each!(self, r => r.find_leftovers(lab).await)
    }
    async fn sweep(&self, lab: &str) -> Result<usize> {
        each!(self, r => r.sweep(lab).await)
    }
    async fn refresh_netns(&self, netns: &str) -> Result<()> {
        each!(self, r => r.refresh_netns(netns).await)
    }
    async fn exec(&self, netns: &str, node: &str, cmd: &[String]) -> Result<i32> {
        each!(self, r => r.exec(netns, node, cmd).await)
    }
    async fn run(&self, netns: &str, node: &str, argv: &[String]) -> Result<CmdOutput> {
        each!(self, r => r.run(netns, node, argv).await)
    }
    fn take_notes(&self) -> Vec<String> {
        each!(self, r => r.take_notes())
    }
}

/// A usage error for an empty command line.
pub(crate) fn empty_command() -> Error {
    Error::Usage("exec needs a command, e.g. `tcplab exec sun ping aix`".into())
}
