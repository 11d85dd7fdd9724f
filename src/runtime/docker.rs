//! The docker runtime: each node is a container `tcplab-<lab>-<node>` (hostname = node name,
//! network mode none), created and started through the Docker API (bollard), concurrently.
//! Every container carries labels naming its lab, node and topology, so `down` and `status` find
//! them even without the record. Its namespace is linked at `/run/netns/tcplab-<lab>-<node>`, and
//! from there the network code treats it exactly like a netns node.

use super::docker_exec::docker_err;
use super::image;
use super::{CmdOutput, Runtime, RuntimeKind};
use crate::error::{Context, Error, Result};
use crate::plan::{NodePlan, Plan};
use crate::state::Object;
use crate::sys;
use crate::topology::Privileges;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use futures::future::{join_all, try_join_all};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

/// Label naming a container's lab.
pub const LABEL_LAB: &str = "org.tcplab.lab";
/// Label naming a container's node.
pub const LABEL_NODE: &str = "org.tcplab.node";
/// Label naming a container's topology file.
pub const LABEL_TOPOLOGY: &str = "org.tcplab.topology";

/// Capabilities a lab host needs when it cannot be privileged: configure interfaces and routes,
/// raw sockets (ping, traceroute, tcpdump), mounts (`ip netns`), and tcpdump's privilege drop.
pub const NODE_CAPS: &[&str] = &["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SETUID", "SETGID"];

/// Containers through the Docker API.
pub struct DockerRuntime {
    docker: Docker,
    quiet: bool,
    /// Names of the containers labelled as any tcplab lab's, read once per command.
    labelled: tokio::sync::OnceCell<std::collections::HashSet<String>>,
    topology_file: String,
    notes: Mutex<Vec<String>>,
}

/// The one-line error when no engine answers.
pub fn no_engine(e: impl std::fmt::Display) -> Error {
    Error::Environment(format!(
        "no Docker engine answers ({e}): install docker.io and start dockerd (scripts/setup-host.sh does both), or use --runtime netns"
    ))
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl DockerRuntime {
    /// Connect to the local engine and check that it answers (within 2 s).
    pub async fn connect(topology_file: &str) -> Result<Self> {
        let docker = Docker::connect_with_local_defaults().map_err(no_engine)?;
        match tokio::time::timeout(std::time::Duration::from_secs(2), docker.ping()).await {
            Ok(Ok(_)) => Ok(DockerRuntime {
                docker,
                quiet: false,
                labelled: tokio::sync::OnceCell::new(),
                topology_file: topology_file.into(),
                notes: Mutex::new(Vec::new()),
            }),
            Ok(Err(e)) => Err(no_engine(e)),
            Err(_) => Err(no_engine("it did not answer within 2 s")),
        }
    }

    /// Say nothing while building the image (`-q`).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Whether an engine answers, for choosing the default runtime.
    pub async fn available() -> bool {
        DockerRuntime::connect("").await.is_ok()
    }

    /// The bollard client.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    fn note(&self, s: String) {
        self.notes.lock().expect("not poisoned").push(s);
    }

    /// Names of the containers labelled as lab `lab`'s (found without the record).
    pub async fn lab_containers(&self, lab: &str) -> Result<Vec<String>> {
        self.containers_with_label(&format!("{LABEL_LAB}={lab}"))
            .await
    }

    /// Names of the containers (running or not) matching a label filter (`KEY` or `KEY=VALUE`).
    async fn containers_with_label(&self, filter: &str) -> Result<Vec<String>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![filter.to_string()]);
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| docker_err("listing containers", e))?;
        Ok(list
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect())
    }

    /// The pid of a running container.
    async fn pid(&self, name: &str) -> Result<u32> {
        let info = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(|e| docker_err(format!("inspecting {name}"), e))?;
        let st = info.state.unwrap_or_default();
        match (st.running, st.pid) {
            (Some(true), Some(pid)) if pid > 0 => Ok(pid as u32),
            _ => Err(Error::Other(format!("container {name} is not running"))),
        }
    }

    /// Link the container's namespace at `/run/netns/<name>`, re-linking it if the container was
    /// restarted since (its namespace changed).
    pub async fn link_netns(&self, name: &str) -> Result<()> {
        let pid = self.pid(name).await?;
        sys::link_netns(name, pid)
    }

    fn body(&self, plan: &Plan, n: &NodePlan, privileged: bool) -> ContainerCreateBody {
        let mut labels = HashMap::new();
        labels.insert(LABEL_LAB.to_string(), plan.lab.clone());
        labels.insert(LABEL_NODE.to_string(), n.name.clone());
        labels.insert(LABEL_TOPOLOGY.to_string(), self.topology_file.clone());
        // /etc/hosts through the API: every node by name (what `hosts` holds, minus localhost).
        let extra_hosts: Vec<String> = n
            .hosts
            .lines()
            .filter(|l| !l.starts_with("127.") && !l.starts_with("::1"))
            .flat_map(|l| {
                let mut parts = l.split_whitespace();
                let addr = parts.next().unwrap_or_default().to_string();
                parts
                    .map(move |name| format!("{name}:{addr}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        ContainerCreateBody {
            image: Some(
                n.image
                    .clone()
                    .unwrap_or_else(|| image::NODE_IMAGE.to_string()),
            ),
            hostname: Some(n.name.clone()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                privileged: Some(privileged),
                cap_add: (!privileged).then(|| NODE_CAPS.iter().map(|c| c.to_string()).collect()),
                extra_hosts: Some(extra_hosts),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn create_and_start(&self, plan: &Plan, n: &NodePlan, privileged: bool) -> Result<()> {
        let name = &n.netns;
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                self.body(plan, n, privileged),
            )
            .await
            .map_err(|e| docker_err(format!("creating container {name}"), e))?;
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| docker_err(format!("starting container {name}"), e))
    }

    /// Remove a container, but only one tcplab made: a container without the lab label (one
    /// somebody named like a lab's node by hand) is left alone and counts as not there.
    async fn remove_container(&self, name: &str) -> Result<bool> {
        // One listing of every tcplab-labelled container serves all the removals of a `down`.
        let labelled = self
            .labelled
            .get_or_try_init(|| async {
                Ok::<_, Error>(
                    self.containers_with_label(LABEL_LAB)
                        .await?
                        .into_iter()
                        .collect(),
                )
            })
            .await?;
        if !labelled.contains(name) {
            return Ok(false);
        }
        self.force_remove(name).await
    }

    /// Kill and remove container `name` (with its anonymous volumes); Ok(false) if it is gone.
    /// Only for containers known to be a lab's: from the label listing.
    pub async fn force_remove(&self, name: &str) -> Result<bool> {
        match self
            .docker
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(docker_err(format!("removing container {name}"), e)),
        }
    }

    /// Make sure every image the plan needs exists, building the node image when missing.
    async fn ensure_images(&self, plan: &Plan) -> Result<()> {
        let mut needed: Vec<String> = plan
            .nodes
            .iter()
            .map(|n| n.image.clone().unwrap_or_else(|| image::NODE_IMAGE.into()))
            .collect();
        needed.sort();
        needed.dedup();
        for img in needed {
            if img == image::NODE_IMAGE {
                // While building (ensure_node_image reports nothing when the image is there), a
                // spinner with the build's current line on a terminal, one line per phase
                // otherwise (the image is built once: the first `up` takes about half a minute).
                // `-q` silences both.
                let show = !self.quiet;
                let bar = (show && std::io::stderr().is_terminal()).then(|| {
                    let b = indicatif::ProgressBar::new_spinner();
                    b.enable_steady_tick(std::time::Duration::from_millis(120));
                    b
                });
                let last_phase = Mutex::new(String::new());
                let report = |phase: &str, line: &str| match &bar {
                    Some(b) => b.set_message(format!(
                        "building {img}: {phase}: {}",
                        line.chars().take(90).collect::<String>()
                    )),
                    None if show => {
                        let mut last = last_phase.lock().expect("not poisoned");
                        if *last != phase {
                            eprintln!("image: building {img}: {phase}");
                            *last = phase.to_string();
                        }
                    }
                    None => {}
                };
                let built = image::ensure_node_image(&self.docker, false, &report).await;
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                built?;
            } else if !image::image_exists(&self.docker, &img).await? {
                return Err(Error::Usage(format!(
                    "image '{img}' does not exist and no registry is reachable: build it first (`docker build -t {img} ...`)"
                )));
            }
        }
        Ok(())
    }
}

/// Whether the engine can run privileged containers: it cannot when its capability bounding set
/// is not full (as on this project's CI: no CAP_SYS_RESOURCE), since privileged means every
/// capability. Read from dockerd's /proc entry when its pid file is there, else our own.
pub fn engine_can_be_privileged() -> bool {
    let pid = std::fs::read_to_string("/var/run/docker.pid")
        .ok()
        .map(|s| s.trim().to_string());
    let status = pid
        .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .or_else(|| std::fs::read_to_string("/proc/self/status").ok())
        .unwrap_or_default();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let full = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    bnd.is_some_and(|b| b & full == full)
}

impl Runtime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    fn objects(&self, plan: &Plan) -> Vec<Object> {
        let mut v: Vec<Object> = plan
            .nodes
            .iter()
            .map(|n| Object::Container {
                name: n.netns.clone(),
            })
            .collect();
        v.extend(plan.nodes.iter().map(|n| Object::Netns {
            name: n.netns.clone(),
        }));
        v
    }

    async fn create_nodes(&self, plan: &Plan) -> Result<()> {
        self.ensure_images(plan).await?;
        // Containers left over from a crash of this lab would collide by name.
        let stale = self.lab_containers(&plan.lab).await?;
        if let Some(c) = stale.first() {
            return Err(Error::Usage(format!(
                "container {c} of lab '{}' exists already: run `tcplab --lab {} down` first",
                plan.lab, plan.lab
            )));
        }
        // A container somebody made by hand under one of the lab's names is never touched.
        for n in &plan.nodes {
            match self
                .docker
                .inspect_container(&n.netns, None::<InspectContainerOptions>)
                .await
            {
                Ok(_) => {
                    return Err(Error::Usage(format!(
                        "a container named {} exists already and is not lab '{}''s: rename or remove it, or use another --lab",
                        n.netns, plan.lab
                    )));
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(docker_err(format!("inspecting container {}", n.netns), e)),
            }
        }
        let wanted = plan
            .nodes
            .first()
            .map_or(Privileges::Auto, |n| n.privileges);
        let can = engine_can_be_privileged();
        let privileged = match wanted {
            Privileges::Capabilities => false,
            Privileges::Privileged => true,
            Privileges::Auto => {
                if !can {
                    self.note(format!(
                        "warning: the Docker engine cannot run privileged containers here (its capability bounding set is not full): nodes get {} instead",
                        NODE_CAPS.join(", ")
                    ));
                }
                can
            }
        };
        let results = join_all(
            plan.nodes
                .iter()
                .map(|n| self.create_and_start(plan, n, privileged)),
        )
        .await;
        let mut first_err = results.into_iter().find_map(|r| r.err());
        if privileged
            && wanted == Privileges::Auto
            && let Some(e) = &first_err
            && (e.to_string().contains("caps") || e.to_string().contains("operation not permitted"))
        {
            self.note(format!(
                "warning: the engine refused privileged containers ({e}): nodes get {} instead",
                NODE_CAPS.join(", ")
            ));
            join_all(plan.nodes.iter().map(|n| self.remove_container(&n.netns))).await;
            let results = join_all(
                plan.nodes
                    .iter()
                    .map(|n| self.create_and_start(plan, n, false)),
            )
            .await;
            first_err = results.into_iter().find_map(|r| r.err());
        }
        if let Some(e) = first_err {
            if privileged && e.to_string().contains("apply caps") {
                return Err(Error::Environment(format!(
                    "the Docker engine refuses privileged containers here ({e}): use `up --privileges capabilities` (or auto)"
                )));
            }
            return Err(e);
        }
        try_join_all(plan.nodes.iter().map(|n| self.link_netns(&n.netns))).await?;
        Ok(())
    }

    async fn ensure_nodes(&self, plan: &Plan) -> Result<Vec<String>> {
        let mut brought_back = Vec::new();
        let privileged = match plan
            .nodes
            .first()
            .map_or(Privileges::Auto, |n| n.privileges)
        {
            Privileges::Capabilities => false,
            Privileges::Privileged => true,
            Privileges::Auto => engine_can_be_privileged(),
        };
        for n in &plan.nodes {
            let state = match self
                .docker
                .inspect_container(&n.netns, None::<InspectContainerOptions>)
                .await
            {
                Ok(info) => Some(info.state.unwrap_or_default()),
                Err(e) if is_not_found(&e) => None,
                Err(e) => return Err(docker_err(format!("inspecting {}", n.netns), e)),
            };
            match state {
                None => {
                    self.ensure_images(plan).await?;
                    self.create_and_start(plan, n, privileged).await?;
                    brought_back.push(n.name.clone());
                }
                Some(st) if st.running != Some(true) => {
                    self.docker
                        .start_container(&n.netns, None)
                        .await
                        .map_err(|e| docker_err(format!("starting container {}", n.netns), e))?;
                    brought_back.push(n.name.clone());
                }
                Some(_) => {}
            }
            // A restarted container has a new namespace: link the live one.
            self.link_netns(&n.netns).await?;
        }
        Ok(brought_back)
    }

    async fn remove(&self, object: &Object) -> Result<bool> {
        match object {
            Object::Container { name } => self.remove_container(name).await,
            _ => Ok(false),
        }
    }

    async fn find_leftovers(&self, lab: &str) -> Result<Vec<Object>> {
        Ok(self
            .lab_containers(lab)
            .await?
            .into_iter()
            .map(|name| Object::Container { name })
            .collect())
    }

    async fn sweep(&self, lab: &str) -> Result<usize> {
        self.sweep_late_containers(lab).await
    }

    async fn refresh_netns(&self, netns: &str) -> Result<()> {
        self.link_netns(netns).await
    }

    async fn exec(&self, netns: &str, _node: &str, cmd: &[String]) -> Result<i32> {
        if cmd.is_empty() {
            return Err(super::empty_command());
        }
        super::docker_exec::exec(&self.docker, netns, cmd)
            .await
            .context(format!("exec in {netns}"))
    }

    async fn run(&self, netns: &str, _node: &str, argv: &[String]) -> Result<CmdOutput> {
        if argv.is_empty() {
            return Err(super::empty_command());
        }
        super::docker_exec::run_collect(&self.docker, netns, argv).await
    }

    fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.notes.lock().expect("not poisoned"))
    }
}

impl DockerRuntime {
    /// After tearing down a docker lab whose `up` was killed: the engine may still be finishing
    /// that `up`'s create and start requests, so containers can appear after `down` removed what
    /// it knew. Remove every container labelled as the lab's until none has been seen for a
    /// second (at most 15 s). Returns how many were removed.
    async fn sweep_late_containers(&self, lab: &str) -> Result<usize> {
        use std::time::{Duration, Instant};
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut quiet_since = Instant::now();
        let mut removed = 0;
        while Instant::now() < deadline {
            let names = self.lab_containers(lab).await?;
            if names.is_empty() {
                if quiet_since.elapsed() >= Duration::from_secs(1) {
                    break;
                }
            } else {
                for name in &names {
                    self.force_remove(name).await?;
                    let _ = sys::delete_netns(name);
                    removed += 1;
                }
                quiet_since = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(removed)
    }
}

/// Stands in for the docker runtime in `down` when no engine answers: everything else is
/// removed, and each container stays recorded with this error, for a later `down`.
pub struct NoEngine(pub String);

impl Runtime for NoEngine {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    fn objects(&self, _plan: &Plan) -> Vec<Object> {
        Vec::new()
    }

    async fn create_nodes(&self, _plan: &Plan) -> Result<()> {
        Err(Error::Environment(self.0.clone()))
    }

    async fn ensure_nodes(&self, _plan: &Plan) -> Result<Vec<String>> {
        Err(Error::Environment(self.0.clone()))
    }

    async fn remove(&self, object: &Object) -> Result<bool> {
        match object {
            Object::Container { name } => Err(Error::Environment(format!(
                "container {name} is left (run `tcplab down` again once Docker answers): {}",
                self.0
            ))),
            _ => Ok(false),
        }
    }

    async fn exec(&self, _netns: &str, _node: &str, _cmd: &[String]) -> Result<i32> {
        Err(Error::Environment(self.0.clone()))
    }

    async fn run(&self, _netns: &str, _node: &str, _argv: &[String]) -> Result<CmdOutput> {
        Err(Error::Environment(self.0.clone()))
    }
}
