//! The lab node image, built through the Docker API (bollard).
//!
//! No container registry is reachable where tcplab runs, so nothing can be pulled. The image is
//! made in two steps, both without the docker CLI:
//!
//! 1. **Base** ([`BASE_IMAGE`]): `debootstrap --variant=minbase bookworm` into a temporary
//!    directory, slimmed (no docs, man pages, translations, apt caches or device nodes), packed
//!    by GNU tar and streamed into the image-import endpoint (`POST /images/create?fromSrc=-`,
//!    what `docker import` uses).
//! 2. **Node** ([`NODE_IMAGE`]): the repository's `Dockerfile` (embedded in the binary) plus the
//!    files under `images/` it copies, sent as a build context (a ustar archive written here)
//!    to the classic builder (`POST /build`). Its `apt-get` needs Docker's default bridge
//!    network to reach the Debian mirror.
//!
//! The node image carries a label with a hash of its build context, so a binary whose
//! Dockerfile changed rebuilds a node image made by an older one instead of reusing it.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::ImageInspect;
use bollard::query_parameters::{BuildImageOptions, CreateImageOptions, RemoveImageOptions};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// Tag of the lab node image that every lab container runs.
pub const NODE_IMAGE: &str = "tcplab/node:latest";

/// Tag of the Debian bookworm base image (debootstrap, imported through the API) that
/// [`NODE_IMAGE`] is built `FROM`.
pub const BASE_IMAGE: &str = "tcplab/base:bookworm";

/// The node image's Dockerfile, embedded so that the binary works from any directory.
const DOCKERFILE: &str = include_str!("../../../Dockerfile");
/// dpkg configuration that keeps docs, man pages and translations out of the images.
const DPKG_NODOC: &str = include_str!("../../../images/dpkg-nodoc");
/// Where `DPKG_NODOC` goes inside the base image (the Dockerfile copies it to the same place).
const DPKG_NODOC_TARGET: &str = "etc/dpkg/dpkg.cfg.d/tcplab-nodoc";
/// Label that holds the hash of the build context the node image was built from.
const CONTEXT_LABEL: &str = "org.tcplab.context";
/// Debian release of the base image.
const SUITE: &str = "bookworm";
/// Mirror used when the host's apt sources name no Debian mirror.
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
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
    /// A build-context path that the ustar format cannot hold.
    #[error("cannot put {path:?} in the build context: {reason}; rename the file")]
    TarPath {
        /// The offending path.
        path: String,
        /// Why it was refused.
        reason: &'static str,
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

/// Build NODE_IMAGE unless present (force = rebuild).
///
/// "Present" means the tag exists and, if it carries the build-context label, was built from
/// the Dockerfile embedded in this binary; a node image from another Dockerfile is rebuilt.
/// `force` rebuilds the node image without the build cache; it does not remake the base.
///
/// The base: if [`BASE_IMAGE`] is missing, run `debootstrap --variant=minbase bookworm DIR
/// <mirror>` into a temporary directory under `$TMPDIR` (default `/var/tmp`) — the mirror is the
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
    let context = build_context()?;
    let hash = format!("{:016x}", fnv1a64(&[BASE_IMAGE.as_bytes(), &context]));

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
        build_base(&docker, progress).await?;
    }

    build_image(&docker, BuildSpec::node(context, &hash, force), progress).await?;

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

fn image_label<'a>(image: &'a ImageInspect, key: &str) -> Option<&'a str> {
    image
        .config
        .as_ref()?
        .labels
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// Node image: build context and build
// ---------------------------------------------------------------------------------------------

/// The build context: the Dockerfile and the files under images/ that it copies.
fn build_context() -> Result<Vec<u8>, ImageError> {
    write_ustar(&[
        TarFile {
            path: "Dockerfile",
            mode: 0o644,
            data: DOCKERFILE.as_bytes(),
        },
        TarFile {
            path: "images/dpkg-nodoc",
            mode: 0o644,
            data: DPKG_NODOC.as_bytes(),
        },
    ])
}

/// How to run one build through the API.
struct BuildSpec<'a> {
    /// Tag of the result.
    tag: &'a str,
    /// ustar build context with a `Dockerfile` at its top.
    context: Vec<u8>,
    build_args: HashMap<String, String>,
    labels: HashMap<String, String>,
    /// Ignore the build cache.
    nocache: bool,
    /// Network of the RUN steps; `None` is Docker's default bridge.
    network: Option<&'a str>,
}

impl BuildSpec<'_> {
    fn node(context: Vec<u8>, hash: &str, force: bool) -> BuildSpec<'static> {
        BuildSpec {
            tag: NODE_IMAGE,
            context,
            build_args: HashMap::from([("BASE".to_string(), BASE_IMAGE.to_string())]),
            labels: HashMap::from([(CONTEXT_LABEL.to_string(), hash.to_string())]),
            nocache: force,
            // The default bridge network: apt-get in RUN must reach the mirror.
            network: None,
        }
    }
}

/// Runs a build, streaming its output lines to `progress` as phase "build".
async fn build_image(
    docker: &Docker,
    spec: BuildSpec<'_>,
    progress: Progress<'_>,
) -> Result<(), ImageError> {
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(spec.tag.into()),
        rm: true,
        forcerm: true,
        nocache: spec.nocache,
        buildargs: Some(spec.build_args),
        labels: Some(spec.labels),
        networkmode: spec.network.map(Into::into),
        ..Default::default()
    };
    let context = spec.context;
    let mut log = BuildLog::default();
    let mut lines = Lines::default();
    let emit = |line: String, log: &mut BuildLog| {
        progress("build", &line);
        log.push(line);
    };
    let mut output = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = output.next().await {
        match item {
            Ok(info) => {
                for text in [info.stream, info.status].into_iter().flatten() {
                    for line in lines.push(&text) {
                        emit(line, &mut log);
                    }
                }
            }
            Err(BollardError::DockerStreamError { error }) => {
                for line in lines.flush() {
                    emit(line, &mut log);
                }
                return Err(build_error(&error, &log));
            }
            Err(e) => {
                return Err(ImageError::Docker {
                    action: "building the node image",
                    source: e,
                });
            }
        }
    }
    for line in lines.flush() {
        emit(line, &mut log);
    }
    Ok(())
}

/// Reassembles output lines from chunks that may end mid-line. The classic builder merges
/// the RUN steps' stdout and stderr into one stream, wrapping every stderr write in
/// `ESC[91m` .. `ESC[0m`; the two are kept apart here so that a stderr line arriving while a
/// stdout line is half written does not get glued to it. Lines end at `\n` or `\r` (apt and
/// dpkg redraw progress with `\r`); other escape sequences and blank lines are dropped.
#[derive(Default)]
struct Lines {
    /// Partial stdout line, partial stderr line.
    pending: [String; 2],
    in_stderr: bool,
}

impl Lines {
    fn push(&mut self, chunk: &str) -> Vec<String> {
        let mut done = Vec::new();
        let mut chars = chunk.chars().peekable();
        while let Some(c) = chars.next() {
            let current = usize::from(self.in_stderr);
            match c {
                '\u{1b}' => {
                    if chars.next_if_eq(&'[').is_none() {
                        chars.next(); // a two-character escape
                        continue;
                    }
                    let mut params = String::new();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            if c == 'm' {
                                match params.as_str() {
                                    "91" => self.in_stderr = true,
                                    "0" | "" => self.in_stderr = false,
                                    _ => {}
                                }
                            }
                            break;
                        }
                        params.push(c);
                    }
                }
                '\n' | '\r' => {
                    done.extend(clean_line(&std::mem::take(&mut self.pending[current])));
                }
                c => self.pending[current].push(c),
            }
        }
        done
    }

    /// What is left at the end: the stdout part first.
    fn flush(&mut self) -> Vec<String> {
        self.pending
            .iter_mut()
            .filter_map(|p| clean_line(&std::mem::take(p)))
            .collect()
    }
}

fn clean_line(raw: &str) -> Option<String> {
    let line = raw.trim_end();
    (!line.trim().is_empty()).then(|| line.to_string())
}

/// What a build said, kept to explain its failure.
#[derive(Default)]
struct BuildLog {
    /// The last lines.
    tail: VecDeque<String>,
    /// The first line that says the mirror could not be reached (apt-get update only warns,
    /// and the failure comes many lines later from apt-get install).
    network: Option<String>,
}

impl BuildLog {
    fn push(&mut self, line: String) {
        const NETWORK: [&str; 6] = [
            "Temporary failure resolving",
            "Could not resolve",
            "Could not connect",
            "Failed to fetch",
            "Network is unreachable",
            "Connection timed out",
        ];
        if self.network.is_none() && NETWORK.iter().any(|n| line.contains(n)) {
            self.network = Some(one_line(&line));
        }
        push_tail(&mut self.tail, &line);
    }
}

/// Turns the builder's error and the output before it into an [`ImageError`].
fn build_error(error: &str, log: &BuildLog) -> ImageError {
    if let Some(line) = &log.network {
        return ImageError::BuildNetwork {
            detail: line.clone(),
        };
    }
    // "The command '/bin/sh -c <the whole RUN>' returned a non-zero code: 100" is mostly the
    // script: keep its end.
    let error = match error.rfind("returned a non-zero code:") {
        Some(i) if error.starts_with("The command") => format!("a RUN step {}", &error[i..]),
        _ => error.to_string(),
    };
    let detail = log
        .tail
        .iter()
        .rev()
        .find(|l| l.starts_with("E:") || l.contains("rror"))
        .or(log.tail.back())
        .map(|l| one_line(l))
        .unwrap_or_else(|| "none".into());
    ImageError::Build {
        error: one_line(&error),
        detail,
    }
}

fn push_tail(tail: &mut VecDeque<String>, line: &str) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.to_string());
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// FNV-1a, 64 bit: a stable fingerprint of the build context (no hashing crate is needed).
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff; // separates the parts
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------------------------
// Base image: debootstrap, slim, import
// ---------------------------------------------------------------------------------------------

async fn build_base(docker: &Docker, progress: Progress<'_>) -> Result<(), ImageError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(ImageError::NotRoot);
    }
    let mirror = host_debian_mirror().unwrap_or_else(|| DEFAULT_MIRROR.to_string());
    let base = TempDir::base();
    let stale = tokio::task::spawn_blocking(move || remove_stale_temp_dirs(&base))
        .await
        .unwrap_or_default();
    for dir in stale {
        progress(
            "base",
            &format!("removed {} left by an interrupted run", dir.display()),
        );
    }
    let tmp = TempDir::new()?;
    let rootfs = tmp.path().join("rootfs");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&rootfs)
        .map_err(ImageError::io(format!("creating {}", rootfs.display())))?;

    let result = async {
        run_debootstrap(&rootfs, &mirror, progress).await?;
        progress(
            "base",
            "removing docs, man pages, translations and apt caches",
        );
        let dir = rootfs.clone();
        tokio::task::spawn_blocking(move || slim_rootfs(&dir))
            .await
            .map_err(|e| ImageError::io("slimming the rootfs")(io::Error::other(e)))?
            .map_err(ImageError::io("slimming the rootfs"))?;
        let message = format!("debootstrap --variant=minbase {SUITE} {mirror} (tcplab)");
        import_rootfs(docker, &rootfs, BASE_IMAGE, &message, progress).await
    }
    .await;

    progress("base", &format!("removing {}", tmp.path().display()));
    let shown = tmp.path().display().to_string();
    match tokio::task::spawn_blocking(move || tmp.remove()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => progress(
            "base",
            &format!("warning: could not remove {shown}: {e}; remove it by hand"),
        ),
        Err(e) => progress("base", &format!("warning: could not remove {shown}: {e}")),
    }
    result
}

async fn run_debootstrap(
    rootfs: &Path,
    mirror: &str,
    progress: Progress<'_>,
) -> Result<(), ImageError> {
    progress(
        "debootstrap",
        &format!(
            "debootstrap --variant=minbase {SUITE} {} {mirror}",
            rootfs.display()
        ),
    );
    let mut child = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(SUITE)
        .arg(rootfs)
        .arg(mirror)
        .env("PATH", sbin_path())
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::DebootstrapMissing,
            _ => ImageError::io("starting debootstrap")(e),
        })?;
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut err = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let (mut out_open, mut err_open) = (true, true);
    let mut tail = VecDeque::new();
    while out_open || err_open {
        let (from_out, line) = tokio::select! {
            l = out.next_line(), if out_open => (true, l),
            l = err.next_line(), if err_open => (false, l),
        };
        match line {
            Ok(Some(line)) => {
                let line = line.trim_end();
                if !line.is_empty() {
                    progress("debootstrap", line);
                    push_tail(&mut tail, line);
                }
            }
            // End of that output (or unreadable): stop reading it.
            Ok(None) | Err(_) => {
                if from_out {
                    out_open = false;
                } else {
                    err_open = false;
                }
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(ImageError::io("waiting for debootstrap"))?;
    if status.success() {
        return Ok(());
    }
    let detail = tail
        .iter()
        .rev()
        .find(|l| l.starts_with("E:"))
        .or(tail.back())
        .map(|l| one_line(l))
        .unwrap_or_else(|| "no output".into());
    Err(ImageError::Debootstrap {
        mirror: mirror.to_string(),
        status,
        detail,
    })
}

/// `$PATH` with the sbin directories debootstrap and its helpers (chroot, mknod) live in.
fn sbin_path() -> OsString {
    let mut path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let have: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !have.iter().any(|p| p == Path::new(dir)) {
            path.push(":");
            path.push(dir);
        }
    }
    path
}

/// Streams the rootfs, packed by GNU tar, into `POST /images/create?fromSrc=-`.
async fn import_rootfs(
    docker: &Docker,
    rootfs: &Path,
    image: &str,
    message: &str,
    progress: Progress<'_>,
) -> Result<(), ImageError> {
    progress(
        "import",
        &format!("importing {} as {image}", rootfs.display()),
    );
    let mut child = Command::new("tar")
        .args([
            "--create",
            "--file=-",
            "--numeric-owner",
            "--one-file-system",
            "--format=posix",
            "--pax-option=delete=atime,delete=ctime",
            "--xattrs",
            "--xattrs-include=security.capability",
            "--directory",
        ])
        .arg(rootfs)
        .arg(".")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ImageError::Tar {
            detail: format!("cannot start tar: {e}"),
        })?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let tar_errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag.into()),
        message: Some(message.into()),
        changes: vec![
            r#"CMD ["bash"]"#.into(),
            "LABEL org.tcplab.image=base".into(),
        ],
        ..Default::default()
    };
    let (status_tx, status_rx) = tokio::sync::oneshot::channel();
    let body = tar_stream(stdout, child, status_tx).map(|c| c.map(Into::into));
    let mut events = docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    let mut failure = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(info) => {
                if let Some(status) = info.status.filter(|s| !s.trim().is_empty()) {
                    progress("import", status.trim());
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(events); // ends tar (killed on drop) if the engine gave up before the end
    let tar_status = status_rx.await.ok();
    let tar_errors = one_line(&tar_errors.await.unwrap_or_default());
    if let Some(Err(tar_failed)) = tar_status {
        // The engine saw a broken upload; make sure no image is kept from it either way.
        let _ = docker
            .remove_image(image, None::<RemoveImageOptions>, None)
            .await;
        let detail = if tar_errors.is_empty() {
            tar_failed
        } else {
            tar_errors
        };
        return Err(ImageError::Tar { detail });
    }
    if let Some(e) = failure {
        return Err(ImageError::Import {
            detail: one_line(&e.to_string()),
        });
    }
    if inspect(docker, image).await?.is_none() {
        return Err(ImageError::Import {
            detail: "the engine reported no error but has no such image".into(),
        });
    }
    Ok(())
}

/// tar's standard output as a body stream that ends in an error, not a clean end of
/// file, when tar fails: the engine then sees a broken upload rather than a short archive.
/// How tar ended goes to `ended` (nothing is sent if the stream is dropped before the end).
fn tar_stream(
    stdout: ChildStdout,
    child: Child,
    ended: tokio::sync::oneshot::Sender<Result<(), String>>,
) -> impl Stream<Item = Result<Vec<u8>, io::Error>> + Send + 'static {
    futures::stream::unfold(Some((stdout, child, ended)), |state| async move {
        let (mut stdout, mut child, ended) = state?;
        let mut buf = vec![0u8; 256 * 1024];
        match stdout.read(&mut buf).await {
            Ok(0) => {
                let outcome = match child.wait().await {
                    Ok(status) if status.success() => Ok(()),
                    Ok(status) => Err(format!("tar exited with {status}")),
                    Err(e) => Err(format!("waiting for tar: {e}")),
                };
                let item = outcome.clone().err().map(io::Error::other);
                let _ = ended.send(outcome);
                item.map(|e| (Err(e), None))
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), Some((stdout, child, ended))))
            }
            Err(e) => {
                let _ = ended.send(Err(format!("reading tar's output: {e}")));
                Some((Err(e), None))
            }
        }
    })
}

/// The Debian mirror the host's apt uses, if it uses one.
fn host_debian_mirror() -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let deb822 = path.extension().is_some_and(|x| x == "sources");
        debian_mirror_in(&text, deb822)
    })
}

/// The first enabled `deb` source in an apt sources file (one-line format, or deb822 when
/// `deb822`) whose URI is a Debian archive: http(s)/file, path ending in `/debian`.
fn debian_mirror_in(text: &str, deb822: bool) -> Option<String> {
    if !deb822 {
        return text.lines().find_map(|line| {
            let line = line.split('#').next()?.trim();
            let mut words = line.split_whitespace();
            if words.next()? != "deb" {
                return None;
            }
            let mut uri = words.next()?;
            if uri.starts_with('[') {
                // Options: "[arch=amd64 signed-by=...]", possibly spread over several words.
                let rest = line.split_once(']')?.1.trim_start();
                uri = rest.split_whitespace().next()?;
            }
            is_debian_archive(uri).then(|| uri.trim_end_matches('/').to_string())
        });
    }
    // deb822: paragraphs separated by blank lines, "Field: value" with continuation lines.
    let mut paragraphs = vec![Vec::<(String, String)>::new()];
    for raw in text.lines() {
        if raw.trim_start().starts_with('#') {
            continue;
        }
        if raw.trim().is_empty() {
            paragraphs.push(Vec::new());
            continue;
        }
        let para = paragraphs.last_mut().expect("one paragraph");
        if raw.starts_with([' ', '\t']) {
            if let Some((_, value)) = para.last_mut() {
                value.push(' ');
                value.push_str(raw.trim());
            }
        } else if let Some((k, v)) = raw.split_once(':') {
            para.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    paragraphs.iter().find_map(|para| {
        let field = |name: &str| {
            para.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if field("enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            return None;
        }
        if !field("types")?.split_whitespace().any(|t| t == "deb") {
            return None;
        }
        field("uris")?
            .split_whitespace()
            .find(|u| is_debian_archive(u))
            .map(|u| u.trim_end_matches('/').to_string())
    })
}

fn is_debian_archive(uri: &str) -> bool {
    let known_scheme = ["http://", "https://", "file:/"]
        .iter()
        .any(|s| uri.starts_with(s));
    known_scheme && uri.trim_end_matches('/').ends_with("/debian")
}

/// Removes what a container never needs from a fresh debootstrap tree: device nodes (Docker
/// provides /dev), docs (copyright notices stay), man pages, translations, apt's downloaded
/// packages, lists and caches, logs, and the host's resolv.conf and hostname. Installs the
/// dpkg configuration that keeps later installs equally slim.
fn slim_rootfs(root: &Path) -> io::Result<()> {
    let dev = std::fs::symlink_metadata(root)?.dev();
    let clear = |dir: &str, keep: &dyn Fn(&str) -> bool| -> io::Result<()> {
        let dir = root.join(dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            if !keep(&entry.file_name().to_string_lossy()) {
                remove_tree(&entry.path(), dev)?;
            }
        }
        Ok(())
    };
    let nothing = |_: &str| false;
    clear("dev", &nothing)?;
    for dir in [
        "usr/share/man",
        "usr/share/info",
        "usr/share/groff",
        "usr/share/lintian",
        "usr/share/linda",
        "var/log/apt",
    ] {
        clear(dir, &nothing)?;
    }
    clear("usr/share/locale", &|name| name == "locale.alias")?;
    if let Ok(docs) = std::fs::read_dir(root.join("usr/share/doc")) {
        for entry in docs {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                let sub = format!("usr/share/doc/{}", entry.file_name().to_string_lossy());
                clear(&sub, &|name| name == "copyright")?;
            }
        }
    }
    clear("var/cache/apt", &|name| !name.ends_with(".bin"))?;
    clear("var/cache/apt/archives", &|name| !name.ends_with(".deb"))?;
    clear("var/lib/apt/lists", &|name| {
        name == "lock" || name == "partial"
    })?;
    clear("var/log", &|name| {
        !matches!(name, "bootstrap.log" | "dpkg.log" | "alternatives.log")
    })?;
    clear("var/cache/debconf", &|name| !name.ends_with("-old"))?;
    clear("var/lib/dpkg", &|name| !name.ends_with("-old"))?;
    // Docker mounts its own at run time; the host's must not end up in the image.
    for file in ["etc/resolv.conf", "etc/hostname"] {
        let path = root.join(file);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            std::fs::write(&path, "")?;
        }
    }
    let nodoc = root.join(DPKG_NODOC_TARGET);
    if let Some(parent) = nodoc.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&nodoc, DPKG_NODOC)?;
    Ok(())
}

/// Removes a file, symlink or directory tree without following symlinks and without
/// entering another file system (a mount point below `path` is an error, never emptied).
fn remove_tree(path: &Path, dev: u64) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return std::fs::remove_file(path);
    }
    if meta.dev() != dev {
        return Err(io::Error::other(format!(
            "{} is another file system (still mounted?): not removing it",
            path.display()
        )));
    }
    for entry in std::fs::read_dir(path)? {
        remove_tree(&entry?.path(), dev)?;
    }
    std::fs::remove_dir(path)
}

/// Mount points strictly below `dir`, deepest first (from /proc/self/mountinfo).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p != dir && p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A private directory under `$TMPDIR` (default /var/tmp: a rootfs is ~200 MB and needs a
/// file system that allows device nodes and executables). Removed on drop, after unmounting
/// whatever an interrupted debootstrap left mounted inside it.
struct TempDir {
    path: Option<PathBuf>,
}

const TEMP_PREFIX: &str = "tcplab-base.";

impl TempDir {
    fn base() -> PathBuf {
        std::env::var_os("TMPDIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp"))
    }

    fn new() -> Result<TempDir, ImageError> {
        let base = Self::base();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!("{TEMP_PREFIX}{}.{nanos:09}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(ImageError::io(format!("creating {}", path.display())))?;
        Ok(TempDir { path: Some(path) })
    }

    fn path(&self) -> &Path {
        self.path.as_deref().expect("not removed yet")
    }

    /// Unmounts what is mounted below the directory, then removes it.
    fn remove(mut self) -> io::Result<()> {
        let path = self.path.take().expect("not removed yet");
        for mount in mounts_under(&path) {
            let Ok(c) = std::ffi::CString::new(mount.as_os_str().as_bytes()) else {
                continue;
            };
            // SAFETY: c is a valid NUL-terminated path; MNT_DETACH only detaches.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let dev = std::fs::symlink_metadata(&path)?.dev();
        remove_tree(&path, dev)
    }
}

/// Removes the directories of earlier runs that were killed before they could clean up:
/// `tcplab-base.PID.N` whose PID no longer runs here and that nothing touched for 15 minutes
/// (a run in another PID namespace sharing the directory is thus left alone). Returns what
/// it removed.
fn remove_stale_temp_dirs(base: &Path) -> Vec<PathBuf> {
    const QUIET: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let quiet = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= QUIET));
        if is_dir && quiet && !Path::new(&format!("/proc/{pid}")).exists() {
            let path = entry.path();
            if (TempDir {
                path: Some(path.clone()),
            })
            .remove()
            .is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = TempDir { path: Some(path) }.remove();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal ustar writer (regular files only), for the build context
// ---------------------------------------------------------------------------------------------

/// One regular file of an archive.
struct TarFile<'a> {
    /// Relative path with `/` separators.
    path: &'a str,
    /// Permission bits.
    mode: u32,
    data: &'a [u8],
}

const BLOCK: usize = 512;

/// A POSIX ustar archive of regular files, owned by root, mtime 0 (reproducible), ending in
/// the two zero blocks. Paths over 100 bytes go into the prefix field when they can be split
/// at a `/` (up to 255 bytes); others are refused.
fn write_ustar(files: &[TarFile<'_>]) -> Result<Vec<u8>, ImageError> {
    let total: usize = files
        .iter()
        .map(|f| BLOCK + f.data.len().div_ceil(BLOCK) * BLOCK)
        .sum();
    let mut out = Vec::with_capacity(total + 2 * BLOCK);
    for file in files {
        out.extend_from_slice(&ustar_header(file.path, file.mode, file.data.len() as u64)?);
        out.extend_from_slice(file.data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

fn ustar_header(path: &str, mode: u32, size: u64) -> Result<[u8; BLOCK], ImageError> {
    let refuse = |reason| ImageError::TarPath {
        path: path.to_string(),
        reason,
    };
    let (prefix, name) = split_ustar_path(path).map_err(refuse)?;
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode & 0o7777)).map_err(refuse)?;
    octal(&mut h[108..116], 0).map_err(refuse)?; // uid
    octal(&mut h[116..124], 0).map_err(refuse)?; // gid
    octal(&mut h[124..136], size).map_err(|_| refuse("larger than 8 GiB"))?;
    octal(&mut h[136..148], 0).map_err(refuse)?; // mtime
    h[156] = b'0'; // regular file
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    octal(&mut h[329..337], 0).map_err(refuse)?; // devmajor
    octal(&mut h[337..345], 0).map_err(refuse)?; // devminor
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    let sum = ustar_checksum(&h);
    h[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    h[154] = 0;
    h[155] = b' ';
    Ok(h)
}

/// Sum of the header's bytes with the checksum field counted as eight spaces.
fn ustar_checksum(h: &[u8; BLOCK]) -> u32 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum()
}

/// Zero-padded octal and a NUL, filling the field; an error if the value does not fit.
fn octal(field: &mut [u8], value: u64) -> Result<(), &'static str> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err("a header value does not fit");
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// Splits a path into ustar's (prefix, name) fields.
fn split_ustar_path(path: &str) -> Result<(&str, &str), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.starts_with('/') {
        return Err("the path is absolute");
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("the path has an empty, '.' or '..' component");
    }
    if path.len() <= 100 {
        return Ok(("", path));
    }
    // The leftmost split whose name fits keeps the prefix shortest.
    for (i, _) in path.match_indices('/') {
        let (prefix, name) = (&path[..i], &path[i + 1..]);
        if name.len() <= 100 {
            return if prefix.len() <= 155 {
                Ok((prefix, name))
            } else {
                Err("the path is longer than ustar holds (155 + 100 bytes split at a '/')")
            };
        }
    }
    Err("a file name is longer than 100 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    // ----- a small independent ustar reader -------------------------------------------------

    #[derive(Debug, PartialEq)]
    struct Read {
        path: String,
        mode: u32,
        data: Vec<u8>,
    }

    fn field_str(f: &[u8]) -> String {
        let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        String::from_utf8(f[..end].to_vec()).unwrap()
    }

    fn field_octal(f: &[u8]) -> u64 {
        let s = field_str(f);
        u64::from_str_radix(s.trim(), 8).unwrap()
    }

    fn read_ustar(archive: &[u8]) -> Vec<Read> {
        assert_eq!(archive.len() % BLOCK, 0, "archive is whole blocks");
        let mut files = Vec::new();
        let mut at = 0;
        loop {
            let h: &[u8; BLOCK] = archive[at..at + BLOCK].try_into().unwrap();
            if h.iter().all(|&b| b == 0) {
                assert_eq!(archive.len(), at + 2 * BLOCK, "two zero blocks end it");
                assert!(archive[at..].iter().all(|&b| b == 0));
                return files;
            }
            assert_eq!(&h[257..263], b"ustar\0");
            assert_eq!(&h[263..265], b"00");
            assert_eq!(h[156], b'0');
            let stored = field_octal(&h[148..156]) as u32;
            assert_eq!(stored, ustar_checksum(h), "checksum");
            // The classic unsigned sum computed from scratch agrees.
            let mut raw = *h;
            raw[148..156].fill(b' ');
            assert_eq!(stored, raw.iter().map(|&b| u32::from(b)).sum::<u32>());
            let name = field_str(&h[..100]);
            let prefix = field_str(&h[345..500]);
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let size = field_octal(&h[124..136]) as usize;
            assert_eq!(field_octal(&h[108..116]), 0);
            assert_eq!(field_octal(&h[136..148]), 0);
            let data = archive[at + BLOCK..at + BLOCK + size].to_vec();
            let padded = size.div_ceil(BLOCK) * BLOCK;
            assert!(
                archive[at + BLOCK + size..at + BLOCK + padded]
                    .iter()
                    .all(|&b| b == 0)
            );
            files.push(Read {
                path,
                mode: field_octal(&h[100..108]) as u32,
                data,
            });
            at += BLOCK + padded;
        }
    }

    fn sample() -> Vec<(String, u32, Vec<u8>)> {
        let long_dir = "d".repeat(120);
        vec![
            ("Dockerfile".into(), 0o644, b"FROM scratch\n".to_vec()),
            ("empty".into(), 0o600, Vec::new()),
            ("exact/block".into(), 0o755, vec![7u8; 512]),
            ("one/more/than/block".into(), 0o644, vec![9u8; 513]),
            (
                format!("{long_dir}/{}", "n".repeat(100)),
                0o644,
                b"long".to_vec(),
            ),
            ("unicodé/fïle".into(), 0o644, vec![0u8, 255, 1]),
        ]
    }

    fn archive_of(files: &[(String, u32, Vec<u8>)]) -> Vec<u8> {
        let entries: Vec<TarFile<'_>> = files
            .iter()
            .map(|(p, m, d)| TarFile {
                path: p,
                mode: *m,
                data: d,
            })
            .collect();
        write_ustar(&entries).unwrap()
    }

    #[test]
    fn ustar_round_trip() {
        let files = sample();
        let archive = archive_of(&files);
        let back = read_ustar(&archive);
        assert_eq!(back.len(), files.len());
        for (read, (path, mode, data)) in back.iter().zip(&files) {
            assert_eq!(&read.path, path);
            assert_eq!(read.mode, *mode);
            assert_eq!(&read.data, data);
        }
        // 6 headers + data blocks (0+1+1+2+1+1) + 2 end blocks.
        assert_eq!(archive.len(), (6 + 6 + 2) * BLOCK);
    }

    #[test]
    fn ustar_empty_archive_is_two_zero_blocks() {
        assert_eq!(write_ustar(&[]).unwrap(), vec![0u8; 1024]);
    }

    #[test]
    fn ustar_checksum_field_format() {
        let h = ustar_header("a", 0o644, 3).unwrap();
        // Six octal digits, NUL, space: what GNU tar writes and every reader accepts.
        assert!(h[148..154].iter().all(|b| (b'0'..=b'7').contains(b)));
        assert_eq!(h[154], 0);
        assert_eq!(h[155], b' ');
        assert_eq!(&h[124..136], b"00000000003\0");
        assert_eq!(&h[100..108], b"0000644\0");
    }

    #[test]
    fn ustar_long_paths_split_or_refused() {
        // Split into prefix and name.
        let p = format!("{}/{}", "a".repeat(155), "b".repeat(100));
        assert_eq!(split_ustar_path(&p).unwrap(), (&p[..155], &p[156..]));
        // Too long for prefix + name.
        let p = format!("{}/{}", "a".repeat(156), "b".repeat(100));
        assert!(split_ustar_path(&p).is_err());
        // One component over 100 bytes cannot be split.
        assert!(split_ustar_path(&"x".repeat(101)).is_err());
        let p = format!("dir/{}", "x".repeat(101));
        assert!(split_ustar_path(&p).is_err());
        // Exactly 100 bytes fit the name field alone.
        assert_eq!(split_ustar_path(&"y".repeat(100)).unwrap().0, "");
        // Refusals surface as ImageError::TarPath with a readable message.
        let err = write_ustar(&[TarFile {
            path: &"z".repeat(300),
            mode: 0o644,
            data: b"",
        }])
        .unwrap_err();
        assert!(matches!(err, ImageError::TarPath { .. }), "{err}");
    }

    #[test]
    fn ustar_unsafe_paths_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "nul\0byte",
        ] {
            assert!(split_ustar_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ustar_read_by_gnu_tar() {
        // An independent reader, if the host has one.
        let Ok(mut child) = std::process::Command::new("tar")
            .args(["-tvf", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("skipped: no tar on this host");
            return;
        };
        let files = sample();
        let archive = archive_of(&files);
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        for (path, _, data) in &files {
            let line = listing
                .lines()
                .find(|l| l.ends_with(path.as_str()))
                .unwrap_or_else(|| panic!("{path} missing from:\n{listing}"));
            assert!(line.contains("root/root"), "{line}");
            assert!(line.contains(&format!(" {} ", data.len())), "{line}");
        }
    }

    #[test]
    fn build_context_holds_what_the_dockerfile_copies() {
        let context = read_ustar(&build_context().unwrap());
        let paths: Vec<&str> = context.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["Dockerfile", "images/dpkg-nodoc"]);
        for line in DOCKERFILE.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"COPY") {
                for src in &words[1..words.len() - 1] {
                    assert!(paths.contains(src), "COPY {src} is not in the context");
                }
            }
        }
        // Same bytes, same fingerprint: a rebuild is not triggered by itself.
        let again = build_context().unwrap();
        assert_eq!(
            fnv1a64(&[BASE_IMAGE.as_bytes(), &again]),
            fnv1a64(&[BASE_IMAGE.as_bytes(), &build_context().unwrap()])
        );
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
    }

    #[test]
    fn dockerfile_matches_the_brief() {
        assert!(DOCKERFILE.contains(&format!("ARG BASE={BASE_IMAGE}")));
        for pkg in [
            "iproute2",
            "iputils-ping",
            "iputils-arping",
            "iputils-tracepath",
            "traceroute",
            "tcpdump",
            "net-tools",
            "curl",
            "telnet",
            "netcat-openbsd",
            "iperf3",
            "ethtool",
            "procps",
            "tini",
        ] {
            assert!(
                DOCKERFILE.split_whitespace().any(|w| w == pkg),
                "{pkg} not installed"
            );
        }
        assert!(DOCKERFILE.contains("--no-install-recommends"));
        assert!(DOCKERFILE.contains("rm -rf /var/lib/apt/lists/*"));
        assert!(DOCKERFILE.contains(r#"ENTRYPOINT ["/usr/bin/tini", "--"]"#));
        assert!(DOCKERFILE.contains("org.tcplab.image=\"node\""));
    }

    #[test]
    fn mirror_from_one_line_sources() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.de.debian.org/debian/ bookworm main
deb http://deb.debian.org/debian bookworm-updates main
";
        assert_eq!(
            debian_mirror_in(text, false).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        let ubuntu = "deb http://archive.ubuntu.com/ubuntu jammy main\n";
        assert_eq!(debian_mirror_in(ubuntu, false), None);
        let cdrom = "deb cdrom:[Debian GNU/Linux]/ bookworm main\n";
        assert_eq!(debian_mirror_in(cdrom, false), None);
    }

    #[test]
    fn mirror_from_deb822_sources() {
        // The shape of this machine's /etc/apt/sources.list.d/debian.sources.
        let text = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
";
        assert_eq!(
            debian_mirror_in(text, true).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let disabled = "\
Types: deb
URIs: http://mirror.one/debian
Suites: bookworm
Enabled: no

Types: deb-src deb
URIs:
 http://mirror.two/ubuntu
 https://mirror.two/debian/
Suites: bookworm
";
        assert_eq!(
            debian_mirror_in(disabled, true).as_deref(),
            Some("https://mirror.two/debian")
        );
        assert_eq!(
            debian_mirror_in("Types: deb-src\nURIs: http://a/debian\n", true),
            None
        );
    }

    #[test]
    fn host_mirror_is_a_debian_archive_or_none() {
        if let Some(m) = host_debian_mirror() {
            assert!(is_debian_archive(&m), "{m}");
        }
    }

    fn log_of(lines: &[&str]) -> BuildLog {
        let mut log = BuildLog::default();
        for l in lines {
            log.push(l.to_string());
        }
        log
    }

    #[test]
    fn build_errors_are_explained() {
        let mut lines = vec![
            "Step 4/8 : RUN set -eux; apt-get update",
            "Err:1 http://deb.debian.org/debian bookworm InRelease",
            "  Temporary failure resolving 'deb.debian.org'",
        ];
        // The install's complaints come long after the warning.
        lines.extend(std::iter::repeat_n(
            "E: Unable to locate package x",
            2 * TAIL_LINES,
        ));
        let e = build_error(
            "The command '/bin/sh -c set -eux; ...' returned a non-zero code: 100",
            &log_of(&lines),
        );
        assert!(matches!(e, ImageError::BuildNetwork { .. }), "{e}");
        assert!(e.to_string().contains("Temporary failure resolving"), "{e}");

        let log = log_of(&[
            "Reading package lists...",
            "E: Unable to locate package nope",
            "x",
        ]);
        let e = build_error(
            "The command '/bin/sh -c apt-get install nope' returned a non-zero code: 100",
            &log,
        );
        let msg = e.to_string();
        assert!(
            msg.contains("a RUN step returned a non-zero code: 100"),
            "{msg}"
        );
        assert!(msg.contains("E: Unable to locate package nope"), "{msg}");
        let e = build_error("COPY failed: file not found", &BuildLog::default());
        assert!(
            e.to_string()
                .contains("COPY failed: file not found (last output: none)"),
            "{e}"
        );
    }

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
                mirror: DEFAULT_MIRROR.into(),
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
                reason: "r",
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
    fn slim_rootfs_keeps_copyright_and_drops_bulk() {
        let tmp = TempDir::new().unwrap();
        let r = tmp.path();
        let files = [
            "usr/share/doc/pkg/copyright",
            "usr/share/doc/pkg/changelog.gz",
            "usr/share/locale/locale.alias",
            "usr/share/locale/de/LC_MESSAGES/x.mo",
            "usr/share/man/man1/ls.1.gz",
            "var/cache/apt/archives/x.deb",
            "var/cache/apt/archives/lock",
            "var/cache/apt/pkgcache.bin",
            "var/lib/apt/lists/deb_Packages",
            "var/lib/apt/lists/lock",
            "var/lib/dpkg/status",
            "var/lib/dpkg/status-old",
            "var/log/bootstrap.log",
            "var/log/wtmp",
            "dev/null",
            "etc/resolv.conf",
            "usr/bin/bash",
        ];
        for f in files {
            let p = r.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "data").unwrap();
        }
        std::fs::create_dir_all(r.join("var/lib/apt/lists/partial")).unwrap();
        std::fs::create_dir_all(r.join("var/cache/apt/archives/partial")).unwrap();
        // A symlink out of the tree must be removed, not followed.
        let outside = TempDir::new().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("usr/share/man/link")).unwrap();

        slim_rootfs(r).unwrap();

        let kept = [
            "usr/share/doc/pkg/copyright",
            "usr/share/locale/locale.alias",
            "var/cache/apt/archives/lock",
            "var/cache/apt/archives/partial",
            "var/lib/apt/lists/lock",
            "var/lib/apt/lists/partial",
            "var/lib/dpkg/status",
            "var/log/wtmp",
            "usr/bin/bash",
            DPKG_NODOC_TARGET,
        ];
        for k in kept {
            assert!(r.join(k).exists(), "{k} removed");
        }
        let gone = [
            "usr/share/doc/pkg/changelog.gz",
            "usr/share/locale/de",
            "usr/share/man/man1",
            "usr/share/man/link",
            "var/cache/apt/archives/x.deb",
            "var/cache/apt/pkgcache.bin",
            "var/lib/apt/lists/deb_Packages",
            "var/lib/dpkg/status-old",
            "var/log/bootstrap.log",
            "dev/null",
        ];
        for g in gone {
            assert!(std::fs::symlink_metadata(r.join(g)).is_err(), "{g} kept");
        }
        assert_eq!(std::fs::read(r.join("etc/resolv.conf")).unwrap(), b"");
        assert!(outside.path().join("precious").exists());
        let path = r.to_path_buf();
        tmp.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn temp_dir_unmounts_before_removing() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let tmp = TempDir::new().unwrap();
        let proc_like = tmp.path().join("rootfs/proc");
        std::fs::create_dir_all(&proc_like).unwrap();
        let (src, target, fstype) = (
            std::ffi::CString::new("tmpfs").unwrap(),
            std::ffi::CString::new(proc_like.as_os_str().as_bytes()).unwrap(),
            std::ffi::CString::new("tmpfs").unwrap(),
        );
        // SAFETY: valid NUL-terminated strings; no data argument.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            eprintln!(
                "skipped: cannot mount a tmpfs here: {}",
                io::Error::last_os_error()
            );
            return;
        }
        assert_eq!(mounts_under(tmp.path()), vec![proc_like.clone()]);
        // Without unmounting, removal refuses to enter the other file system.
        let dev = std::fs::symlink_metadata(tmp.path()).unwrap().dev();
        assert!(remove_tree(tmp.path(), dev).is_err());
        let path = tmp.path().to_path_buf();
        tmp.remove().unwrap();
        assert!(!path.exists());
        assert!(mounts_under(&path).is_empty());
    }

    #[test]
    fn output_lines_are_reassembled() {
        let mut l = Lines::default();
        assert!(l.push("\u{1b}[91m+ \u{1b}[0m").is_empty());
        assert_eq!(
            l.push("\u{1b}[91mapt-get install x\n\u{1b}[0m"),
            ["+ apt-get install x"]
        );
        assert_eq!(l.push("a 5%\ra 10%\r\nStep 2/8 : FROM"), ["a 5%", "a 10%"]);
        assert_eq!(l.flush(), ["Step 2/8 : FROM"]);
        assert!(l.flush().is_empty());
        // stderr written while a stdout line is half done (seen with apt-get install),
        // and C++'s unbuffered cerr writing "E: " and the message separately.
        let mut l = Lines::default();
        assert!(
            l.push("Reading package lists...\nBuilding dependency tree...")
                .len()
                == 1
        );
        assert!(l.push("\u{1b}[91mE: \u{1b}[0m").is_empty());
        assert_eq!(
            l.push("\u{1b}[91mUnable to locate package nope\u{1b}[0m\u{1b}[91m\n\u{1b}[0m"),
            ["E: Unable to locate package nope"]
        );
        assert_eq!(
            l.push("\n\u{1b}[1;32mok\u{1b}[m\n"),
            ["Building dependency tree...", "ok"]
        );
    }

    #[test]
    fn stale_temp_dirs_of_dead_runs_are_removed() {
        let base = TempDir::new().unwrap();
        // pid 0 never names a live process in /proc; our own pid does.
        let dead = base.path().join(format!("{TEMP_PREFIX}0.123"));
        let live = base
            .path()
            .join(format!("{TEMP_PREFIX}{}.456", std::process::id()));
        let recent = base.path().join(format!("{TEMP_PREFIX}0.789"));
        let other = base.path().join("tcplab-other.0.1");
        for d in [&dead, &live, &recent, &other] {
            std::fs::create_dir_all(d.join("rootfs/etc")).unwrap();
            std::fs::write(d.join("rootfs/etc/x"), "x").unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for d in [&dead, &live, &other] {
            std::fs::File::open(d)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        assert_eq!(remove_stale_temp_dirs(base.path()), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && recent.exists() && other.exists());
        base.remove().unwrap();
    }

    #[tokio::test]
    #[ignore = "runs debootstrap against the Debian mirror for a while"]
    async fn interrupted_debootstrap_leaves_nothing_behind() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: debootstrap needs root");
            return;
        }
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().to_path_buf();
        let rootfs = path.join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let mirror = host_debian_mirror().unwrap_or_else(|| DEFAULT_MIRROR.to_string());
        let run = async {
            let _tmp = tmp;
            run_debootstrap(&rootfs, &mirror, &quiet).await
        };
        // Give up once debootstrap has mounted /proc in the target: the worst moment.
        let mounted = async {
            while mounts_under(&path).is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            eprintln!("mounted: {:?}", mounts_under(&path));
        };
        tokio::select! {
            r = run => panic!("debootstrap ended first: {r:?}"),
            _ = tokio::time::timeout(std::time::Duration::from_secs(300), mounted) => {}
        }
        assert!(!path.exists(), "{} left behind", path.display());
        assert!(mounts_under(&path).is_empty());
    }

    #[test]
    fn mountinfo_unescapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo(r"/plain\04"), r"/plain\04");
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

    // ----- integration: needs a Docker engine -----------------------------------------------

    async fn engine() -> Option<Docker> {
        let docker = Docker::connect_with_local_defaults().ok()?;
        let docker = docker.negotiate_version().await.ok()?;
        docker.ping().await.ok()?;
        Some(docker)
    }

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

    /// Makes the node image once for all engine tests of this run.
    async fn ensured(docker: &Docker) {
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

    async fn remove_if_there(docker: &Docker, tag: &str) {
        let _ = docker
            .remove_image(tag, None::<RemoveImageOptions>, None)
            .await;
    }

    fn quiet(_: &str, _: &str) {}

    /// A build of just `dockerfile`, without the build cache and cut off from every network.
    fn offline_spec<'a>(tag: &'a str, dockerfile: &str) -> BuildSpec<'a> {
        BuildSpec {
            tag,
            context: write_ustar(&[TarFile {
                path: "Dockerfile",
                mode: 0o644,
                data: dockerfile.as_bytes(),
            }])
            .unwrap(),
            build_args: HashMap::new(),
            labels: HashMap::new(),
            nocache: true,
            network: Some("none"),
        }
    }

    #[tokio::test]
    async fn build_failure_reports_the_failing_line() {
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        ensured(&docker).await;
        let tag = "tcplab/test-build-fails:never";
        let dockerfile =
            format!("FROM {BASE_IMAGE}\nRUN apt-get install -y tcplab-no-such-package\n");
        let spec = offline_spec(tag, &dockerfile);
        let err = build_image(&docker, spec, &quiet).await.unwrap_err();
        let msg = err.to_string();
        eprintln!("message: {msg}");
        assert!(matches!(err, ImageError::Build { .. }), "{msg}");
        assert!(
            msg.contains("a RUN step returned a non-zero code: 100"),
            "{msg}"
        );
        assert!(
            msg.contains("E: Unable to locate package tcplab-no-such-package"),
            "{msg}"
        );
        assert!(!image_exists(&docker, tag).await.unwrap());
    }

    #[tokio::test]
    async fn build_without_network_says_so() {
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        ensured(&docker).await;
        // The node Dockerfile's apt-get, its RUN step cut off from every network. (A small
        // Dockerfile: with the node one and nocache, every run would leave a COPY layer.)
        let tag = "tcplab/test-no-network:never";
        let dockerfile = format!(
            "FROM {BASE_IMAGE}\nRUN apt-get update && apt-get install -y --no-install-recommends iproute2\n"
        );
        let spec = offline_spec(tag, &dockerfile);
        let err = build_image(&docker, spec, &quiet).await.unwrap_err();
        eprintln!("message: {err}");
        assert!(matches!(err, ImageError::BuildNetwork { .. }), "{err}");
        assert!(!image_exists(&docker, tag).await.unwrap());
    }

    #[tokio::test]
    async fn import_streams_a_tree_and_refuses_a_broken_one() {
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        let tmp = TempDir::new().unwrap();
        let tree = tmp.path().join("rootfs");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/hello"), "hello\n").unwrap();
        // Big enough to take several body chunks.
        std::fs::write(tree.join("blob"), vec![0x5a; 3 << 20]).unwrap();
        let ok = "tcplab/test-import:ok";
        remove_if_there(&docker, ok).await;
        import_rootfs(&docker, &tree, ok, "test", &quiet)
            .await
            .unwrap();
        let image = inspect(&docker, ok).await.unwrap().expect("imported");
        assert_eq!(image_label(&image, "org.tcplab.image"), Some("base"));
        assert!(image.size.unwrap() >= 3 << 20);
        remove_if_there(&docker, ok).await;

        // tar fails (no such directory): the engine must not keep an image.
        let bad = "tcplab/test-import:broken";
        remove_if_there(&docker, bad).await;
        let err = import_rootfs(&docker, &tmp.path().join("missing"), bad, "test", &quiet)
            .await
            .unwrap_err();
        eprintln!("message: {err}");
        assert!(matches!(err, ImageError::Tar { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(!image_exists(&docker, bad).await.unwrap());

        // A tar that dies half way, after the engine has had a megabyte of good archive:
        // the upload breaks and no image is left behind.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"tar -C "$1" -cf - . | head -c 1000000; exit 3"#)
            .arg("sh")
            .arg(&tree)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let body = tar_stream(stdout, child, tx).map(|c| c.map(Into::into));
        let half = "tcplab/test-import:half";
        remove_if_there(&docker, half).await;
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some("tcplab/test-import".into()),
            tag: Some("half".into()),
            ..Default::default()
        };
        let events: Vec<_> = docker
            .create_image(Some(options), Some(bollard::body_try_stream(body)), None)
            .collect()
            .await;
        assert!(events.iter().any(|e| e.is_err()), "{events:?}");
        assert_eq!(
            rx.await.unwrap(),
            Err("tar exited with exit status: 3".to_string())
        );
        assert!(!image_exists(&docker, half).await.unwrap());
        tmp.remove().unwrap();
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
