//! The scratch directory the base image is debootstrapped into, and its removal.
//!
//! debootstrap mounts /proc and /sys inside its target; killed half way, it leaves them
//! mounted. Removal therefore unmounts what is mounted below the directory first (found in
//! `/proc/self/mountinfo`), and the tree removal itself never crosses into another file
//! system: a mount point it meets is an error, never emptied.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ImageError;

/// Name prefix of scratch directories: `tcplab-base.PID.NANOS`.
const SCRATCH_PREFIX: &str = "tcplab-base.";

/// A private directory under `$TMPDIR` (default /var/tmp: a rootfs is ~200 MB and needs a
/// file system that allows device nodes and executables). Removed on drop, after unmounting
/// whatever an interrupted debootstrap left mounted inside it.
pub(super) struct ScratchDir {
    /// `None` once removed.
    path: Option<PathBuf>,
}

impl ScratchDir {
    /// Where scratch directories are made: `$TMPDIR`, else /var/tmp.
    pub(super) fn parent() -> PathBuf {
        std::env::var_os("TMPDIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp"))
    }

    /// Makes a new one (mode 0700) under [`ScratchDir::parent`].
    pub(super) fn new() -> Result<ScratchDir, ImageError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("{SCRATCH_PREFIX}{}.{nanos:09}", std::process::id());
        let path = Self::parent().join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(ImageError::io(format!("creating {}", path.display())))?;
        Ok(ScratchDir { path: Some(path) })
    }

    /// Its path.
    pub(super) fn path(&self) -> &Path {
        self.path
            .as_deref()
            .expect("only remove (which consumes it) and drop take the path")
    }

    /// Unmounts what is mounted below the directory, then removes it.
    pub(super) fn remove(mut self) -> io::Result<()> {
        match self.path.take() {
            Some(path) => unmount_and_remove(&path),
            None => Ok(()),
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = unmount_and_remove(&path);
        }
    }
}

/// Detaches every mount below `dir` (deepest first), then removes the tree.
fn unmount_and_remove(dir: &Path) -> io::Result<()> {
    for mount in mounts_under(dir) {
        let Ok(c) = CString::new(mount.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: c is a valid NUL-terminated path; MNT_DETACH only detaches.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    let dev = std::fs::symlink_metadata(dir)?.dev();
    remove_tree(dir, dev)
}

/// Removes the scratch directories of earlier runs that were killed before they could clean
/// up: `tcplab-base.PID.N` under `parent` whose PID no longer runs here and that nothing
/// touched for 15 minutes (a run in another PID namespace sharing the directory is thus left
/// alone). Returns what it removed.
pub(super) fn remove_stale_scratch_dirs(parent: &Path) -> Vec<PathBuf> {
    const QUIET: Duration = Duration::from_secs(15 * 60);
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
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
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if is_dir && quiet && !alive && unmount_and_remove(&entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Removes a file, symlink or directory tree without following symlinks and without
/// entering another file system than `dev` (a mount point below `path` is an error).
pub(super) fn remove_tree(path: &Path, dev: u64) -> io::Result<()> {
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
pub(super) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(info) => mount_points_below(&info, dir),
        Err(_) => Vec::new(),
    }
}

/// The mount points (fifth field) of a mountinfo text strictly below `dir`, deepest first.
fn mount_points_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_unescapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mountinfo(r"/plain\04"), r"/plain\04");
    }

    #[test]
    fn mount_points_below_a_directory_deepest_first() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 0:5 / /var/tmp/x/rootfs/proc rw - proc proc rw
91 90 0:6 / /var/tmp/x/rootfs/proc/sys/fs/binfmt_misc rw - binfmt_misc b rw
92 22 0:7 / /var/tmp/x rw - tmpfs tmpfs rw
93 22 0:8 / /var/tmp/xy rw - tmpfs tmpfs rw
94 22 0:9 / /var/tmp/x/with\\040space rw - tmpfs tmpfs rw
";
        assert_eq!(
            mount_points_below(info, Path::new("/var/tmp/x")),
            [
                "/var/tmp/x/rootfs/proc/sys/fs/binfmt_misc",
                "/var/tmp/x/rootfs/proc",
                "/var/tmp/x/with space",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn remove_tree_removes_links_not_their_targets() {
        let tree = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        let root = tree.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/file"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("a/link")).unwrap();
        let dev = std::fs::symlink_metadata(&root).unwrap().dev();
        remove_tree(&root, dev).unwrap();
        assert!(!root.exists());
        assert!(outside.path().join("precious").exists());
    }

    #[test]
    fn scratch_dir_is_private_and_removed_on_drop() {
        let scratch = ScratchDir::new().unwrap();
        let path = scratch.path().to_path_buf();
        assert!(path.starts_with(ScratchDir::parent()));
        let mode = std::fs::metadata(&path).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::create_dir_all(path.join("rootfs/etc")).unwrap();
        drop(scratch);
        assert!(!path.exists());
    }

    #[test]
    fn scratch_dir_unmounts_before_removing() {
        if !crate::sys::is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let scratch = ScratchDir::new().unwrap();
        let proc_like = scratch.path().join("rootfs/proc");
        std::fs::create_dir_all(&proc_like).unwrap();
        let (src, target, fstype) = (
            CString::new("tmpfs").unwrap(),
            CString::new(proc_like.as_os_str().as_bytes()).unwrap(),
            CString::new("tmpfs").unwrap(),
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
        assert_eq!(mounts_under(scratch.path()), vec![proc_like.clone()]);
        // Without unmounting, removal refuses to enter the other file system.
        let dev = std::fs::symlink_metadata(scratch.path()).unwrap().dev();
        assert!(remove_tree(scratch.path(), dev).is_err());
        let path = scratch.path().to_path_buf();
        scratch.remove().unwrap();
        assert!(!path.exists());
        assert!(mounts_under(&path).is_empty());
    }

    #[test]
    fn stale_scratch_dirs_of_dead_runs_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        // pid 0 never names a live process in /proc; our own pid does.
        let dead = parent.path().join(format!("{SCRATCH_PREFIX}0.123"));
        let live = parent
            .path()
            .join(format!("{SCRATCH_PREFIX}{}.456", std::process::id()));
        let recent = parent.path().join(format!("{SCRATCH_PREFIX}0.789"));
        let other = parent.path().join("tcplab-other.0.1");
        for d in [&dead, &live, &recent, &other] {
            std::fs::create_dir_all(d.join("rootfs/etc")).unwrap();
            std::fs::write(d.join("rootfs/etc/x"), "x").unwrap();
        }
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for d in [&dead, &live, &other] {
            std::fs::File::open(d)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        assert_eq!(remove_stale_scratch_dirs(parent.path()), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && recent.exists() && other.exists());
    }
}
