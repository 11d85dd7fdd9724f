//! The node image's build context: the Dockerfile and the files under `images/` it copies, as
//! a ustar archive that is the same byte for byte whenever the files are (entries sorted by
//! path, owner root, modification time 0, fixed modes). Its fingerprint thus changes only when
//! a file does, and a node image built from an older Dockerfile is recognised.

use std::io;

use tar::{Builder, EntryType, Header};

use super::{BASE_IMAGE, ImageError};
use crate::util::fnv1a64;

/// The node image's Dockerfile, embedded so that the binary works from any directory.
pub(super) const DOCKERFILE: &str = include_str!("../../../Dockerfile");
/// dpkg configuration that keeps docs, man pages and translations out of the images.
pub(super) const DPKG_NODOC: &str = include_str!("../../../images/dpkg-nodoc");

/// One regular file of a build context.
pub(super) struct ContextFile<'a> {
    /// Relative path with `/` separators.
    pub(super) path: &'a str,
    /// Permission bits.
    pub(super) mode: u32,
    /// Its contents.
    pub(super) data: &'a [u8],
}

/// The node image's build context: the Dockerfile and the files under images/ that it copies.
pub(super) fn build_context() -> Result<Vec<u8>, ImageError> {
    write_context(&[
        ContextFile {
            path: "Dockerfile",
            mode: 0o644,
            data: DOCKERFILE.as_bytes(),
        },
        ContextFile {
            path: "images/dpkg-nodoc",
            mode: 0o644,
            data: DPKG_NODOC.as_bytes(),
        },
    ])
}

/// The fingerprint a node image built from `context` is labelled with (16 hex digits). It
/// covers the base image's tag too: a node image on another base is another image.
pub(super) fn fingerprint(context: &[u8]) -> String {
    format!("{:016x}", fnv1a64(&[BASE_IMAGE.as_bytes(), context]))
}

/// A ustar archive of regular files in path order, each owned by root (uid and gid 0) with
/// modification time 0, ending in the two zero blocks. A path a ustar header cannot hold (not
/// plain and relative, a name over 100 bytes, over 255 bytes in all) or a path given twice is
/// refused.
pub(super) fn write_context(files: &[ContextFile<'_>]) -> Result<Vec<u8>, ImageError> {
    let mut sorted: Vec<&ContextFile<'_>> = files.iter().collect();
    sorted.sort_by_key(|f| f.path);
    if let Some(pair) = sorted.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(ImageError::TarPath {
            path: pair[0].path.to_string(),
            source: io::Error::other("the path is given twice"),
        });
    }
    let mut archive = Builder::new(Vec::new());
    for file in sorted {
        archive
            .append(&header(file)?, file.data)
            .map_err(ImageError::io("writing the build context"))?;
    }
    archive
        .into_inner()
        .map_err(ImageError::io("writing the build context"))
}

/// The ustar header of one file, everything but the path, mode and size fixed.
fn header(file: &ContextFile<'_>) -> Result<Header, ImageError> {
    let refuse = |source| ImageError::TarPath {
        path: file.path.to_string(),
        source,
    };
    plain_relative(file.path).map_err(|reason| refuse(io::Error::other(reason)))?;
    let mut h = Header::new_ustar();
    h.set_path(file.path).map_err(refuse)?;
    h.set_entry_type(EntryType::Regular);
    h.set_mode(file.mode & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("root").map_err(refuse)?;
    h.set_groupname("root").map_err(refuse)?;
    h.set_mtime(0);
    h.set_size(file.data.len() as u64);
    h.set_cksum();
    Ok(h)
}

/// Whether a path is relative and plain: no empty, `.` or `..` component, no NUL byte. (The
/// tar crate would quietly drop `.` and empty components; two spellings of one path must not
/// become two entries.)
fn plain_relative(path: &str) -> Result<(), &'static str> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    const BLOCK: usize = 512;

    /// What the tar crate's reader sees in an archive: path, mode and data of each entry, after
    /// checking the fields every entry must have.
    fn read_back(archive: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        assert_eq!(archive.len() % BLOCK, 0, "the archive is whole blocks");
        assert!(
            archive[archive.len() - 2 * BLOCK..].iter().all(|&b| b == 0),
            "two zero blocks end it"
        );
        let mut reader = tar::Archive::new(archive);
        let mut files = Vec::new();
        for entry in reader.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header();
            assert!(h.as_ustar().is_some(), "a ustar header");
            assert_eq!(h.entry_type(), EntryType::Regular);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username().unwrap(), Some("root"));
            assert_eq!(h.groupname().unwrap(), Some("root"));
            assert_eq!(h.mtime().unwrap(), 0);
            let path = entry.path().unwrap().to_str().unwrap().to_string();
            let mode = entry.header().mode().unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.push((path, mode, data));
        }
        files
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

    fn archive_of(files: &[(String, u32, Vec<u8>)]) -> Result<Vec<u8>, ImageError> {
        let entries: Vec<ContextFile<'_>> = files
            .iter()
            .map(|(p, m, d)| ContextFile {
                path: p,
                mode: *m,
                data: d,
            })
            .collect();
        write_context(&entries)
    }

    #[test]
    fn context_round_trips_in_path_order() {
        let files = sample();
        let archive = archive_of(&files).unwrap();
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(read_back(&archive), sorted);
        // 6 headers + data blocks (0+1+1+2+1+1) + 2 end blocks.
        assert_eq!(archive.len(), (6 + 6 + 2) * BLOCK);
    }

    #[test]
    fn context_bytes_do_not_depend_on_the_order_given() {
        let files = sample();
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(archive_of(&files).unwrap(), archive_of(&reversed).unwrap());
        // Another mode is another archive.
        let mut changed = files.clone();
        changed[0].1 = 0o755;
        assert_ne!(archive_of(&files).unwrap(), archive_of(&changed).unwrap());
    }

    #[test]
    fn empty_context_is_two_zero_blocks() {
        assert_eq!(write_context(&[]).unwrap(), vec![0u8; 2 * BLOCK]);
    }

    #[test]
    fn long_paths_split_at_a_slash_or_are_refused() {
        // Split into prefix (155 bytes) and name (100 bytes).
        let fits = format!("{}/{}", "a".repeat(155), "b".repeat(100));
        let files = [(fits.clone(), 0o644, b"x".to_vec())];
        assert_eq!(read_back(&archive_of(&files).unwrap())[0].0, fits);
        for too_long in [
            format!("{}/{}", "a".repeat(156), "b".repeat(100)),
            "x".repeat(101),
            format!("dir/{}", "x".repeat(101)),
        ] {
            let err = archive_of(&[(too_long.clone(), 0o644, Vec::new())]).unwrap_err();
            assert!(
                matches!(err, ImageError::TarPath { .. }),
                "{too_long}: {err}"
            );
        }
    }

    #[test]
    fn paths_that_are_not_plain_and_relative_are_refused() {
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
            let err = archive_of(&[(bad.to_string(), 0o644, Vec::new())]).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, ImageError::TarPath { .. }), "{bad:?}: {msg}");
            assert!(msg.ends_with("; rename the file"), "{msg}");
        }
        let twice = [
            ("a".to_string(), 0o644, b"1".to_vec()),
            ("a".to_string(), 0o644, b"2".to_vec()),
        ];
        assert!(archive_of(&twice).is_err());
    }

    #[test]
    fn gnu_tar_reads_the_context() {
        let Ok(mut child) = Command::new("tar")
            .args(["-tvf", "-"])
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("skipped: no tar on this host");
            return;
        };
        let files = sample();
        let archive = archive_of(&files).unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        let out = child.wait_with_output().unwrap();
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && errors.is_empty(), "{errors}");
        let listing = String::from_utf8_lossy(&out.stdout);
        for (path, _, data) in &files {
            let line = listing
                .lines()
                .find(|l| l.ends_with(path.as_str()))
                .unwrap_or_else(|| panic!("{path} missing from:\n{listing}"));
            assert!(line.contains("root/root"), "{line}");
            assert!(
                line.contains(&format!(" {} 1970-01-01 ", data.len())),
                "{line}"
            );
        }
    }

    #[test]
    fn build_context_holds_what_the_dockerfile_copies() {
        let context = read_back(&build_context().unwrap());
        let paths: Vec<&str> = context.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(paths, ["Dockerfile", "images/dpkg-nodoc"]);
        // The node stage copies named files, which must be in the context; the lab stage
        // (built from a context of its own, holding the binary) copies with wildcards, of which
        // each stage needs at least one file to match.
        for line in DOCKERFILE.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() != Some(&"COPY") {
                continue;
            }
            let sources = &words[1..words.len() - 1];
            let matching = |src: &str| match src.strip_suffix('*') {
                Some(prefix) => paths.iter().any(|p| p.starts_with(prefix)),
                None => paths.contains(&src),
            };
            if sources.iter().any(|s| s.ends_with('*')) {
                assert!(
                    sources.iter().any(|s| matching(s)),
                    "{line}: nothing to copy"
                );
            } else {
                for src in sources {
                    assert!(matching(src), "COPY {src} is not in the context");
                }
            }
        }
    }

    #[test]
    fn fingerprint_is_stable_and_follows_the_bytes() {
        let context = build_context().unwrap();
        assert_eq!(
            fingerprint(&context),
            fingerprint(&build_context().unwrap())
        );
        assert_eq!(fingerprint(&context).len(), 16);
        let mut other = context.clone();
        other[0] ^= 1;
        assert_ne!(fingerprint(&context), fingerprint(&other));
    }

    #[test]
    fn dockerfile_installs_the_lab_tools_and_servers_with_tini_as_pid_1() {
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
            // The application chapters' servers and clients.
            "dnsmasq-base",
            "ldnsutils",
            "tftp-hpa",
            "busybox-static",
            "bird2",
            "snmp",
            "snmpd",
            "vsftpd",
            "tnftp",
            "msmtp-mta",
        ] {
            assert!(
                DOCKERFILE.split_whitespace().any(|w| w == pkg),
                "{pkg} not installed"
            );
        }
        assert!(DOCKERFILE.contains("--no-install-recommends"));
        // The packages' own services are refused a start while the image is built.
        assert!(DOCKERFILE.contains("exit 101\\n' >/usr/sbin/policy-rc.d"));
        assert!(DOCKERFILE.contains("rm -f /usr/sbin/policy-rc.d"));
        assert!(DOCKERFILE.contains("rm -rf /var/lib/apt/lists/*"));
        assert!(DOCKERFILE.contains(r#"ENTRYPOINT ["/usr/bin/tini", "--"]"#));
        assert!(DOCKERFILE.contains("org.tcplab.image=\"node\""));
    }
}
