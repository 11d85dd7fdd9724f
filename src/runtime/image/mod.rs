//! The lab node image, built through the Docker API (bollard).
//!
//! No container registry is reachable where tcplab runs, so nothing can be pulled. The image is
//! made in two steps, both without the docker CLI:
//!
//! 1. **Base** ([`BASE_IMAGE`]): `debootstrap --variant=minbase bookworm` into a scratch
//!    directory, slimmed (no docs, man pages, translations, apt caches or device nodes), packed
//!    by GNU tar and streamed into the image-import endpoint (`POST /images/create?fromSrc=-`,
//!    what `docker import` uses).
//! 2. **Node** ([`NODE_IMAGE`]): the repository's `Dockerfile` (embedded in the binary) plus the
//!    files under `images/` it copies, sent as a build context (a tar archive) to the classic
//!    builder (`POST /build`). Its `apt-get` needs Docker's default bridge network to reach the
//!    Debian mirror.
//!
//! The node image carries a label with a fingerprint of its build context, so a binary whose
//! Dockerfile changed rebuilds a node image made by an older one instead of reusing it.
//!
//! Code map:
//! - this file: the public API ([`ensure_node_image`], [`image_exists`]), its error type and
//!   the image look-ups the steps share;
//! - `rootfs`: the base image (debootstrap, slimming, import of the tree through the API);
//! - `mirror`: which Debian mirror debootstrap fetches from (the host's apt sources);
//! - `scratch`: the scratch directory of the base step, which unmounts what debootstrap left
//!   mounted in it before removing it, and never removes across a mount point;
//! - `context`: the node image's build context, byte for byte the same for the same files;
//! - `build`: the Dockerfile build through the API and the reading of its output.

mod build;
mod context;
mod mirror;
mod rootfs;
mod scratch;

use std::collections::VecDeque;
use std::io;
use std::process::ExitStatus;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::ImageInspect;
use bollard::query_parameters::RemoveImageOptions;

/// Tag of the lab node image that every lab container runs.
pub const NODE_IMAGE: &str = "tcplab/node:latest";

/// Tag of the Debian bookworm base image (debootstrap, imported through the API) that
/// [`NODE_IMAGE`] is built `FROM`.
pub const BASE_IMAGE: &str = "tcplab/base:bookworm";

/// Label that holds the fingerprint of the build context the node image was built from.
const CONTEXT_LABEL: &str = "org.tcplab.context";
/// How many lines of a failing command's output are kept to explain the failure.
const TAIL_LINES: usize = 40;

/// Why the node image could not be made. Each message is one lowercase line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A request to the Docker engine failed (engine down, refused, or answered an error).
    #[error(
        "docker engine: {action} failed: {source}; check that dockerd runs (scripts/setup-host.sh)"
    )]
    Docker {
        /// What was being asked of the engine.
        action: &'static str,
        /// The client's error.
        #[source]
        source: BollardError,
    },
    /// debootstrap needs root (mknod, chroot, file ownership).
    #[error(
        "building the base image runs debootstrap, which needs root: run tcplab as root once, or import {BASE_IMAGE} yourself"
    )]
    NotRoot,
    /// debootstrap is not installed.
    #[error(
        "debootstrap is not installed: apt-get install debootstrap (scripts/setup-host.sh does it), then retry"
    )]
    DebootstrapMissing,
    /// debootstrap ran and failed.
    #[error(
        "debootstrap from {mirror} failed ({status}): {detail}; check that the mirror is reachable and retry"
    )]
    Debootstrap {
        /// The mirror it fetched from.
        mirror: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its last error line.
        detail: String,
    },
    /// Packing the base rootfs (GNU tar) failed.
    #[error(
        "packing the base rootfs with tar failed: {detail}; check that GNU tar is installed and the disk is not full"
    )]
    Tar {
        /// tar's error, or how it ended.
        detail: String,
    },
    /// The engine refused or failed the import of the base rootfs.
    #[error(
        "importing {BASE_IMAGE} failed: {detail}; check the space under dockerd's data root and retry"
    )]
    Import {
        /// The engine's error (and tar's, if it failed too).
        detail: String,
    },
    /// The build's `apt-get` could not reach the Debian mirror.
    #[error(
        "building {NODE_IMAGE} could not reach the debian mirror ({detail}): give dockerd's default bridge network a way out (ip_forward, NAT) and retry"
    )]
    BuildNetwork {
        /// The failing output line.
        detail: String,
    },
    /// The build failed.
    #[error(
        "building {NODE_IMAGE} failed: {error} (last output: {detail}); fix the cause shown and retry"
    )]
    Build {
        /// The builder's error line.
        error: String,
        /// The most telling line of the build output before it.
        detail: String,
    },
    /// A build-context path that a tar header cannot hold.
    #[error("cannot put {path:?} in the build context: {source}; rename the file")]
    TarPath {
        /// The offending path.
        path: String,
        /// Why it was refused.
        #[source]
        source: io::Error,
    },
    /// A local file operation failed.
    #[error("{what}: {source}; check permissions and free space")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl From<ImageError> for crate::Error {
    /// What the machine lacks (root, debootstrap, a running engine) is the user's to fix
    /// (exit 2); a build that failed is a failure (exit 1).
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotRoot | ImageError::DebootstrapMissing | ImageError::Docker { .. } => {
                crate::Error::Environment(e.to_string())
            }
            other => crate::Error::Other(format!("building the node image: {other}")),
        }
    }
}

impl ImageError {
    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
        let what = what.into();
        move |source| ImageError::Io { what, source }
    }
    fn docker(action: &'static str) -> impl FnOnce(BollardError) -> ImageError {
        move |source| ImageError::Docker { action, source }
    }
}

/// What [`ensure_node_image`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// [`NODE_IMAGE`] was there already and up to date: nothing was built.
    AlreadyPresent,
    /// [`NODE_IMAGE`] was built (and [`BASE_IMAGE`] too, if it was missing).
    Built,
}

/// Progress callback: phase name and a line of detail (e.g. "debootstrap", "fetching ..."; "build", "Step 3/6 ...")
///
/// Phases, in order: "node" (is the image there), "base", "debootstrap" (its `I:` lines),
/// "import", "build" (every line of the build's output, colours removed), "node" (done).
pub type Progress<'a> = &'a (dyn Fn(&str, &str) + Send + Sync);

/// Builds [`NODE_IMAGE`] unless it is present (`force`: rebuild it).
///
/// "Present" means the tag exists and, if it carries the build-context label, was built from
/// the Dockerfile embedded in this binary; a node image from another Dockerfile is rebuilt.
/// `force` rebuilds the node image without the build cache; it does not remake the base.
///
/// The base: if [`BASE_IMAGE`] is missing, run `debootstrap --variant=minbase bookworm DIR
/// <mirror>` into a scratch directory under `$TMPDIR` (default `/var/tmp`) — the mirror is the
/// host's Debian mirror from `/etc/apt/sources.list(.d)`, else `http://deb.debian.org/debian` —
/// slim it, stream it as a tar into the image-import API tagged [`BASE_IMAGE`], and remove the
/// directory (unmounting anything debootstrap left mounted in it first). This needs root.
///
/// Then the Dockerfile is built through the build API on the default bridge network (its
/// `apt-get` needs the mirror), its output streamed to `progress`; a failure returns the
/// build's error line. A node image replaced by the rebuild is removed if no container uses it.
///
/// The client's API version is negotiated down to the engine's (Docker 20.10 speaks 1.41).
pub async fn ensure_node_image(
    docker: &Docker,
    force: bool,
    progress: Progress<'_>,
) -> Result<Outcome, ImageError> {
    let docker = negotiated(docker).await?;
    let context = context::build_context()?;
    let hash = context::fingerprint(&context);

    let existing = inspect(&docker, NODE_IMAGE).await?;
    if let Some(image) = &existing {
        let built_from = image_label(image, CONTEXT_LABEL);
        if force {
            progress(
                "node",
                &format!("{NODE_IMAGE} is present: rebuilding it (forced)"),
            );
        } else if built_from.is_some_and(|h| h != hash) {
            progress(
                "node",
                &format!("{NODE_IMAGE} was built from another Dockerfile: rebuilding it"),
            );
        } else {
            // Nothing to report: the caller says "already built" if it wants to.
            return Ok(Outcome::AlreadyPresent);
        }
    }

    if inspect(&docker, BASE_IMAGE).await?.is_none() {
        progress(
            "base",
            &format!("{BASE_IMAGE} is missing: making it with debootstrap"),
        );
        rootfs::build_base(&docker, progress).await?;
    }

    let spec = build::BuildSpec::node(context, &hash, force);
    build::build_image(&docker, spec, progress).await?;

    let new_id = inspect(&docker, NODE_IMAGE).await?.and_then(|i| i.id);
    if let Some(old_id) = existing.and_then(|i| i.id)
        && new_id.as_deref() != Some(old_id.as_str())
    {
        // Still used by a container: leave it, dockerd keeps it as <none> until then.
        let _ = docker
            .remove_image(&old_id, None::<RemoveImageOptions>, None)
            .await;
    }
    progress("node", &format!("{NODE_IMAGE} is built"));
    Ok(Outcome::Built)
}

/// Whether the engine has an image with this tag (or id). A missing image is `Ok(false)`.
pub async fn image_exists(docker: &Docker, tag: &str) -> Result<bool, ImageError> {
    let docker = negotiated(docker).await?;
    Ok(inspect(&docker, tag).await?.is_some())
}

/// A client whose API version is no newer than the engine's.
async fn negotiated(docker: &Docker) -> Result<Docker, ImageError> {
    docker
        .clone()
        .negotiate_version()
        .await
        .map_err(ImageError::docker("asking its version"))
}

/// The engine's description of an image, `None` if it has no such tag (or id).
async fn inspect(docker: &Docker, tag: &str) -> Result<Option<ImageInspect>, ImageError> {
    match docker.inspect_image(tag).await {
        Ok(image) => Ok(Some(image)),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(ImageError::Docker {
            action: "inspecting an image",
            source: e,
        }),
    }
}

/// The value of one label of an image.
fn image_label<'a>(image: &'a ImageInspect, key: &str) -> Option<&'a str> {
    image
        .config
        .as_ref()?
        .labels
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The last [`TAIL_LINES`] lines of a command's output: `line` goes in, the oldest goes out.
fn push_tail(tail: &mut VecDeque<String>, line: &str) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.to_string());
}

/// Whitespace runs (newlines included) as single spaces: one line for an error message.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    //! The public API, and what the engine tests of every step share: the engine, the node
    //! image made once per run.

    use super::*;
    use futures::StreamExt;
    use std::time::Instant;

    /// The local Docker engine, if one answers.
    pub(super) async fn engine() -> Option<Docker> {
        let docker = Docker::connect_with_local_defaults().ok()?;
        let docker = docker.negotiate_version().await.ok()?;
        docker.ping().await.ok()?;
        Some(docker)
    }

    /// Makes the node image once for all engine tests of this run.
    pub(super) async fn ensured(docker: &Docker) {
        static ENSURED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        ENSURED
            .get_or_init(|| async {
                let started = Instant::now();
                let progress = |phase: &str, line: &str| eprintln!("[{phase}] {line}");
                let outcome = ensure_node_image(docker, false, &progress).await.unwrap();
                eprintln!("ensure_node_image: {outcome:?} in {:?}", started.elapsed());
            })
            .await;
    }

    /// Removes an image if the engine has it.
    pub(super) async fn remove_if_there(docker: &Docker, tag: &str) {
        let _ = docker
            .remove_image(tag, None::<RemoveImageOptions>, None)
            .await;
    }

    /// A progress callback that shows nothing.
    pub(super) fn quiet(_: &str, _: &str) {}

    #[test]
    fn error_messages_are_one_lowercase_line() {
        let status = std::process::Command::new("false").status().unwrap();
        let errors = [
            ImageError::Docker {
                action: "inspecting an image",
                source: BollardError::DockerStreamError { error: "x".into() },
            },
            ImageError::NotRoot,
            ImageError::DebootstrapMissing,
            ImageError::Debootstrap {
                mirror: mirror::DEFAULT_MIRROR.into(),
                status,
                detail: "E: Failed getting release file".into(),
            },
            ImageError::Tar { detail: "x".into() },
            ImageError::Import { detail: "x".into() },
            ImageError::BuildNetwork { detail: "x".into() },
            ImageError::Build {
                error: "x".into(),
                detail: "y".into(),
            },
            ImageError::TarPath {
                path: "p".into(),
                source: io::Error::other("r"),
            },
            ImageError::io("creating /x")(io::Error::other("no space")),
        ];
        for e in errors {
            let m = e.to_string();
            assert!(!m.contains('\n'), "{m}");
            assert!(m.chars().next().unwrap().is_lowercase(), "{m}");
        }
    }

    #[test]
    fn output_tail_keeps_the_last_lines_on_one_line_each() {
        let mut tail = VecDeque::new();
        for i in 0..TAIL_LINES + 5 {
            push_tail(&mut tail, &i.to_string());
        }
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.front().map(String::as_str), Some("5"));
        assert_eq!(one_line("  a\n b\t\tc  "), "a b c");
    }

    #[tokio::test]
    async fn no_engine_is_an_error_that_says_what_to_do() {
        // Nothing listens on the loopback's port 9 (discard) here: connection refused.
        let docker =
            Docker::connect_with_http("http://127.0.0.1:9", 5, bollard::API_DEFAULT_VERSION)
                .unwrap();
        let err = image_exists(&docker, NODE_IMAGE).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ImageError::Docker { .. }), "{msg}");
        assert!(
            msg.starts_with("docker engine: asking its version failed"),
            "{msg}"
        );
        assert!(
            msg.ends_with("check that dockerd runs (scripts/setup-host.sh)"),
            "{msg}"
        );
        let progress = |_: &str, _: &str| {};
        assert!(ensure_node_image(&docker, false, &progress).await.is_err());
    }

    #[test]
    fn ensure_future_is_send() {
        fn is_send<T: Send>(_: &T) {}
        let docker = Docker::connect_with_local_defaults().unwrap();
        let progress = |_: &str, _: &str| {};
        let fut = ensure_node_image(&docker, false, &progress);
        is_send(&fut);
    }

    // ----- needs a Docker engine ------------------------------------------------------------

    async fn exec(docker: &Docker, id: &str, cmd: &[&str]) -> (i64, String) {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let created = docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&created.id, None).await.unwrap()
        {
            while let Some(Ok(chunk)) = output.next().await {
                text.push_str(&chunk.to_string());
            }
        }
        let code = docker
            .inspect_exec(&created.id)
            .await
            .unwrap()
            .exit_code
            .unwrap_or(-1);
        (code, text)
    }

    #[tokio::test]
    async fn image_exists_says_no_for_a_missing_tag() {
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        assert!(
            !image_exists(&docker, "tcplab/no-such-image:never")
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn node_image_runs_with_the_tools_and_tini() {
        use bollard::models::{ContainerCreateBody, HostConfig};
        use bollard::query_parameters::{
            CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
        };
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        ensured(&docker).await;
        assert!(image_exists(&docker, NODE_IMAGE).await.unwrap());
        assert!(image_exists(&docker, BASE_IMAGE).await.unwrap());
        // Built or not, a second call finds it.
        let again = ensure_node_image(&docker, false, &quiet).await.unwrap();
        assert_eq!(again, Outcome::AlreadyPresent);

        let name = format!("tcplab-imagetest-{}", std::process::id());
        let body = ContainerCreateBody {
            image: Some(NODE_IMAGE.into()),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                cap_add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let id = docker.create_container(Some(opts), body).await.unwrap().id;

        let checks = async {
            docker
                .start_container(
                    &id,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .unwrap();
            let (code, out) = exec(
                &docker,
                &id,
                &[
                    "sh",
                    "-c",
                    "for t in ping tcpdump traceroute ip arp; do command -v $t || exit 1; done",
                ],
            )
            .await;
            assert_eq!(code, 0, "missing tool: {out}");
            assert_eq!(out.lines().count(), 5, "{out}");
            let (_, comm) = exec(&docker, &id, &["cat", "/proc/1/comm"]).await;
            assert_eq!(comm.trim(), "tini", "PID 1 is {comm}");
            let (_, cmdline) =
                exec(&docker, &id, &["sh", "-c", "tr '\\0' ' ' </proc/1/cmdline"]).await;
            assert!(cmdline.contains("sleep infinity"), "{cmdline}");
            // Tools that need the added capabilities work in network mode none.
            let (code, out) = exec(&docker, &id, &["ping", "-c1", "-W1", "127.0.0.1"]).await;
            assert_eq!(code, 0, "ping on loopback: {out}");
            let (code, out) = exec(
                &docker,
                &id,
                &[
                    "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
                ],
            )
            .await;
            assert_eq!(code, 0, "NET_ADMIN: {out}");
            // An orphan is reparented to PID 1 and reaped there: no zombie stays.
            let (code, _) = exec(&docker, &id, &["sh", "-c", "(sleep 0.2 &) ; exit 0"]).await;
            assert_eq!(code, 0);
            let mut zombies = String::from("?");
            for _ in 0..30 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let (_, ps) = exec(&docker, &id, &["ps", "-eo", "stat=,comm="]).await;
                zombies = ps
                    .lines()
                    .filter(|l| l.trim_start().starts_with('Z'))
                    .collect();
                if zombies.is_empty() && !ps.contains("sleep 0.2") {
                    break;
                }
            }
            assert!(zombies.is_empty(), "zombies: {zombies}");
        };
        // Run the checks, then remove the container whatever happened.
        use futures::FutureExt;
        let result = std::panic::AssertUnwindSafe(checks).catch_unwind().await;
        docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
            .unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
