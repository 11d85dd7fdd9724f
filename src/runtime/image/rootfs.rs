//! The base image ([`BASE_IMAGE`]): `debootstrap --variant=minbase bookworm` into a scratch
//! directory, the tree slimmed to what a container needs, packed by GNU tar and streamed into
//! the engine's image-import endpoint (`POST /images/create?fromSrc=-`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::{CreateImageOptions, RemoveImageOptions};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::context::DPKG_NODOC;
use super::mirror::debian_mirror;
use super::scratch::{ScratchDir, remove_stale_scratch_dirs, remove_tree};
use super::{BASE_IMAGE, ImageError, Progress, inspect, one_line, push_tail};

/// Debian release of the base image.
const SUITE: &str = "bookworm";
/// Where `DPKG_NODOC` goes inside the base image (the Dockerfile copies it to the same place).
const DPKG_NODOC_TARGET: &str = "etc/dpkg/dpkg.cfg.d/tcplab-nodoc";

/// Makes [`BASE_IMAGE`]: debootstrap, slim, import; the scratch directory is removed whatever
/// happened (a failure to remove it is reported as a warning). Needs root.
pub(super) async fn build_base(docker: &Docker, progress: Progress<'_>) -> Result<(), ImageError> {
    if !crate::sys::is_root() {
        return Err(ImageError::NotRoot);
    }
    let mirror = debian_mirror();
    let parent = ScratchDir::parent();
    let stale = tokio::task::spawn_blocking(move || remove_stale_scratch_dirs(&parent))
        .await
        .unwrap_or_default();
    for dir in stale {
        progress(
            "base",
            &format!("removed {} left by an interrupted run", dir.display()),
        );
    }
    let scratch = ScratchDir::new()?;
    let rootfs = scratch.path().join("rootfs");
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

    let shown = scratch.path().display().to_string();
    progress("base", &format!("removing {shown}"));
    match tokio::task::spawn_blocking(move || scratch.remove()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => progress(
            "base",
            &format!("warning: could not remove {shown}: {e}; remove it by hand"),
        ),
        Err(e) => progress("base", &format!("warning: could not remove {shown}: {e}")),
    }
    result
}

/// Runs `debootstrap --variant=minbase bookworm ROOTFS MIRROR`, its output lines going to
/// `progress` as phase "debootstrap"; a failure carries its last `E:` line.
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
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ImageError::io("reading debootstrap's output")(
            io::Error::other("not piped"),
        ));
    };
    let tail = relay_lines(stdout, stderr, "debootstrap", progress).await;
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

/// Passes the non-blank lines of two outputs to `progress` as they come, until both end;
/// returns the last of them.
async fn relay_lines(
    out: impl AsyncRead + Unpin,
    err: impl AsyncRead + Unpin,
    phase: &str,
    progress: Progress<'_>,
) -> VecDeque<String> {
    let mut out = BufReader::new(out).lines();
    let mut err = BufReader::new(err).lines();
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
                    progress(phase, line);
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
    tail
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

/// Streams the rootfs, packed by GNU tar, into `POST /images/create?fromSrc=-` as `image`.
/// If tar fails, the engine sees a broken upload and no image is kept.
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
    let (child, stdout, tar_errors) = spawn_gnu_tar(rootfs)?;
    let (status_tx, status_rx) = oneshot::channel();
    let body = tar_stream(stdout, child, status_tx).map(|c| c.map(Into::into));
    let events = docker.create_image(
        Some(import_options(image, message)),
        Some(bollard::body_try_stream(body)),
        None,
    );
    // Dropping the events when they end also ends tar (killed on drop) if the engine gave
    // up before the end of the archive.
    let failure = relay_import_events(events, progress).await;
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

/// GNU tar packing `rootfs` to its standard output (numeric owners, one file system, file
/// capabilities kept), with a task collecting its error output.
fn spawn_gnu_tar(rootfs: &Path) -> Result<(Child, ChildStdout, JoinHandle<String>), ImageError> {
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
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ImageError::Tar {
            detail: "tar's output is not piped".into(),
        });
    };
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    Ok((child, stdout, errors))
}

/// The import's query: `image` split into repository and tag, a `bash` command and the label
/// `org.tcplab.image=base`.
fn import_options(image: &str, message: &str) -> CreateImageOptions {
    let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag.into()),
        message: Some(message.into()),
        changes: vec![
            r#"CMD ["bash"]"#.into(),
            "LABEL org.tcplab.image=base".into(),
        ],
        ..Default::default()
    }
}

/// Passes the import's status lines to `progress` as phase "import"; returns the error that
/// ended it, if one did.
async fn relay_import_events(
    events: impl Stream<Item = Result<CreateImageInfo, BollardError>>,
    progress: Progress<'_>,
) -> Option<BollardError> {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(info) => {
                if let Some(status) = info.status.filter(|s| !s.trim().is_empty()) {
                    progress("import", status.trim());
                }
            }
            Err(e) => return Some(e),
        }
    }
    None
}

/// tar's standard output as a body stream that ends in an error, not a clean end of
/// file, when tar fails: the engine then sees a broken upload rather than a short archive.
/// How tar ended goes to `ended` (nothing is sent if the stream is dropped before the end).
fn tar_stream(
    stdout: ChildStdout,
    child: Child,
    ended: oneshot::Sender<Result<(), String>>,
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

/// Removes what a container never needs from a fresh debootstrap tree: device nodes (Docker
/// provides /dev), docs (copyright notices stay), man pages, translations, apt's downloaded
/// packages, lists and caches, logs, and the host's resolv.conf and hostname. Installs the
/// dpkg configuration that keeps later installs equally slim.
fn slim_rootfs(root: &Path) -> io::Result<()> {
    let dev = std::fs::symlink_metadata(root)?.dev();
    // Removes the entries of `dir` (relative to root) that `keep` does not name.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::image::scratch::mounts_under;
    use crate::runtime::image::tests::{engine, quiet, remove_if_there};
    use crate::runtime::image::{image_exists, image_label};

    #[test]
    fn slim_rootfs_keeps_copyright_and_drops_bulk() {
        let tmp = tempfile::tempdir().unwrap();
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
        let outside = tempfile::tempdir().unwrap();
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
    }

    #[tokio::test]
    #[ignore = "runs debootstrap against the Debian mirror for a while"]
    async fn interrupted_debootstrap_leaves_nothing_behind() {
        if !crate::sys::is_root() {
            eprintln!("skipped: debootstrap needs root");
            return;
        }
        let scratch = ScratchDir::new().unwrap();
        let path = scratch.path().to_path_buf();
        let rootfs = path.join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let mirror = debian_mirror();
        let run = async {
            let _scratch = scratch;
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

    // ----- needs a Docker engine ------------------------------------------------------------

    #[tokio::test]
    async fn import_streams_a_tree_and_refuses_a_broken_one() {
        let Some(docker) = engine().await else {
            eprintln!("skipped: no docker engine answers");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
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
    }
}
