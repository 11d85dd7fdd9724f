//! The topology: a TOML file read into raw structs ([`raw`]), then validated into a
//! [`Topology`] model ([`model`]) in which every name resolves and every address fits.
//!
//! Nothing here touches the machine: a topology that fails validation never reaches the planner.

mod ends;
pub mod model;
mod ovs;
pub mod raw;
pub(crate) mod validate;
pub use ends::resolve_ends;
pub use validate::check_lab_name;

pub use model::*;

use crate::error::{Error, Result};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The course lab (Stevens, TCP/IP Illustrated Vol. 1), embedded so `tcplab up` works anywhere.
pub const BUILTIN_TCPIP: &str = include_str!("../../topologies/tcpip-illustrated.toml");
/// How the embedded topology is named in messages.
pub const BUILTIN_NAME: &str = "<builtin tcpip-illustrated>";
/// The Open vSwitch lab of lecture 40 (VLANs, tunnels, flows, QoS), embedded.
pub const BUILTIN_OVS_LAB: &str = include_str!("../../topologies/ovs-lab.toml");
/// The name of the default built-in topology.
pub const BUILTIN_DEFAULT: &str = "tcpip-illustrated";
/// The built-in topologies: (name, as `--topology NAME` and an experiment's `topology` give
/// it; text). A name is its file's in `topologies/` without `.toml`.
pub const BUILTINS: &[(&str, &str)] = &[
    (BUILTIN_DEFAULT, BUILTIN_TCPIP),
    ("ovs-lab", BUILTIN_OVS_LAB),
];

/// The text of built-in topology `name`, if there is one of that name.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// How built-in topology `name` is named in messages and records (`<builtin NAME>`).
pub fn builtin_label(name: &str) -> String {
    format!("<builtin {name}>")
}

/// Built-in topology `name`, parsed, with its label; `None` if there is none of that name.
pub fn builtin_named(name: &str) -> Option<Result<(Topology, String, String)>> {
    let text = builtin_text(name)?;
    let label = builtin_label(name);
    Some(parse(text, &label).map(|t| (t, label, text.to_string())))
}

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Parse and validate topology text. `file` names the source in error messages.
pub fn parse(text: &str, file: &str) -> Result<Topology> {
    let raw: raw::RawTopology =
        toml::from_str(text).map_err(|e| one_line(toml_error(file, text, &e)))?;
    validate::validate(raw, file, text).map_err(one_line)
}

/// The error with every control character of its text escaped (a newline as `\n`): a
/// value quoted from a file (a name, an address) never breaks the message's one line.
pub fn one_line(e: Error) -> Error {
    match e {
        Error::Topology {
            file,
            place,
            message,
        } => Error::Topology {
            file: escape_controls(file),
            place: escape_controls(place),
            message: escape_controls(message),
        },
        Error::Usage(m) => Error::Usage(escape_controls(m)),
        other => other,
    }
}

/// `s` with its control characters written as Rust escapes.
fn escape_controls(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The largest topology or experiment file tcplab reads: the course topology is 5 KiB, so a
/// file past this size is the wrong file (or `/dev/zero`), refused before it fills memory.
pub const MAX_INPUT_FILE_BYTES: u64 = 1 << 20;

/// Read, parse and validate a topology file (see [`read_input_file`] for what is refused).
pub fn load(path: &Path) -> Result<Topology> {
    load_text(path).map(|(topology, _)| topology)
}

/// [`load`], also giving the file's text (read once, so the two always agree).
pub fn load_text(path: &Path) -> Result<(Topology, String)> {
    let text = read_input_file(path, "topology file")?;
    let topology = parse(&text, &path.display().to_string())?;
    Ok((topology, text))
}

/// Read a file the user names as input (a topology or an experiment, called `what` in
/// messages): it must be a regular file of at most [`MAX_INPUT_FILE_BYTES`] bytes of UTF-8.
/// A FIFO, a device (`/dev/zero`), a directory, a missing or unreadable file is refused in
/// one line with exit code 2 (an [`Error::Topology`] at place `file`), without blocking and
/// without reading more than the limit.
pub fn read_input_file(path: &Path, what: &str) -> Result<String> {
    let refuse = |message: String| Error::Topology {
        file: escape_controls(path.display().to_string()),
        place: "file".into(),
        message,
    };
    // Look before opening: opening a FIFO for reading blocks, and opening a device may act.
    let meta = std::fs::metadata(path).map_err(|e| refuse(open_error(&e, what)))?;
    if !meta.is_file() {
        return Err(refuse(not_regular(&meta.file_type(), what)));
    }
    // O_NONBLOCK: should the path have become a FIFO since, the open still returns at once.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| refuse(open_error(&e, what)))?;
    let meta = file.metadata().map_err(|e| refuse(open_error(&e, what)))?;
    if !meta.is_file() {
        return Err(refuse(not_regular(&meta.file_type(), what)));
    }
    if meta.len() > MAX_INPUT_FILE_BYTES {
        return Err(refuse(too_large(meta.len(), what)));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_INPUT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(open_error(&e, what)))?;
    if bytes.len() as u64 > MAX_INPUT_FILE_BYTES {
        return Err(refuse(too_large(bytes.len() as u64, what)));
    }
    String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "is not UTF-8 text (bad byte at offset {}): give the {what} in TOML",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Why a file could not be opened or read, and what to do, in one line.
fn open_error(e: &std::io::Error, what: &str) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => format!("no such file: check the path of the {what}"),
        ErrorKind::PermissionDenied => {
            format!("cannot read it: permission denied: make the {what} readable to you")
        }
        ErrorKind::NotADirectory => {
            format!("a part of the path is not a directory: check the path of the {what}")
        }
        _ => format!(
            "cannot read it: {}: check the path of the {what}",
            e.to_string().to_lowercase().replace('\n', " ")
        ),
    }
}

/// The refusal of a path that is not a regular file.
fn not_regular(t: &std::fs::FileType, what: &str) -> String {
    use std::os::unix::fs::FileTypeExt;
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    format!("is {kind}, not a regular file: give the path of the {what}")
}

/// The refusal of a file over [`MAX_INPUT_FILE_BYTES`].
fn too_large(len: u64, what: &str) -> String {
    format!(
        "is {len} bytes, over the limit of {} KiB: give the right {what}",
        MAX_INPUT_FILE_BYTES / 1024
    )
}

/// The built-in course topology.
pub fn builtin() -> Topology {
    parse(BUILTIN_TCPIP, BUILTIN_NAME).expect("the built-in topology is valid (checked by tests)")
}

/// Turn a TOML/serde error into one line naming file, line and column.
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> Error {
    let place = match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("line {line}, column {col}")
        }
        None => "file".to_string(),
    };
    let message = e.message().trim().replace('\n', " ");
    Error::Topology {
        file: file.into(),
        place,
        message,
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod load_tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Load `path` on another thread: a read that blocks fails the test instead of hanging it.
    fn load_within_2s(path: &Path) -> Result<Topology> {
        let (tx, rx) = mpsc::channel();
        let p = path.to_path_buf();
        std::thread::spawn(move || tx.send(load(&p)).ok());
        rx.recv_timeout(Duration::from_secs(2))
            .unwrap_or_else(|_| panic!("loading {} blocked for 2 s", path.display()))
    }

    /// The refusal of `path`: one line, exit code 2, naming the path at place `file`.
    fn refusal(path: &Path) -> String {
        let e = load_within_2s(path).expect_err("refused");
        let line = e.to_string();
        assert_eq!(e.exit_code(), 2, "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(&format!("{}: file: ", path.display())),
            "{line}"
        );
        let says_what_to_do = [": give ", ": make ", ": check "];
        assert!(says_what_to_do.iter().any(|w| line.contains(w)), "{line}");
        line
    }

    #[test]
    fn a_topology_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, BUILTIN_TCPIP).unwrap();
        assert_eq!(load_within_2s(&p).unwrap().name, builtin().name);
        let (topology, text) = load_text(&p).unwrap();
        assert_eq!(
            (topology.name.as_str(), text.as_str()),
            ("tcpip", BUILTIN_TCPIP)
        );
    }

    #[test]
    fn every_built_in_topology_parses_under_its_label() {
        for (name, _) in BUILTINS {
            let (t, label, text) = builtin_named(name).unwrap().unwrap();
            assert_eq!(label, format!("<builtin {name}>"));
            assert_eq!(builtin_text(name), Some(text.as_str()));
            assert!(!t.nodes.is_empty(), "{name}");
        }
        assert_eq!(builtin_label(BUILTIN_DEFAULT), BUILTIN_NAME);
        assert_eq!(builtin_named("ovs-lab").unwrap().unwrap().0.name, "ovslab");
        assert!(builtin_named("nope").is_none());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipe.toml");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let line = refusal(&p);
        assert!(
            line.contains("is a named pipe (FIFO), not a regular file"),
            "{line}"
        );
    }

    #[test]
    fn dev_zero_is_refused_without_reading() {
        let line = refusal(Path::new("/dev/zero"));
        assert!(line.contains("is a character device"), "{line}");
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let line = refusal(dir.path());
        assert!(
            line.contains("is a directory, not a regular file"),
            "{line}"
        );
    }

    #[test]
    fn a_missing_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let line = refusal(&dir.path().join("nope.toml"));
        assert!(line.contains("no such file"), "{line}");
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let line = refusal(&file.join("under-a-file.toml"));
        assert!(line.contains("not a directory"), "{line}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_and_one_at_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.toml");
        let at_limit = "#".repeat(MAX_INPUT_FILE_BYTES as usize);
        std::fs::write(&p, &at_limit).unwrap();
        let e = load_within_2s(&p).unwrap_err().to_string();
        assert!(
            !e.contains("more than"),
            "read, then refused by the parser: {e}"
        );
        std::fs::write(&p, at_limit + "\n").unwrap();
        let line = refusal(&p);
        assert!(
            line.contains(
                "is 1048577 bytes, over the limit of 1024 KiB: give the right topology file"
            ),
            "{line}"
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin.toml");
        std::fs::write(&p, b"name = \"x\xff\"").unwrap();
        let line = refusal(&p);
        assert!(
            line.contains("is not UTF-8 text (bad byte at offset 9)"),
            "{line}"
        );
    }

    #[test]
    fn values_with_control_characters_are_escaped_in_the_one_line() {
        let t = "name = \"t\"\n[nodes.a]\nroutes = [{ to = \"default\", via = \"x\\ny\\r\" }]\n";
        let e = parse(t, "a\nb.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "a\\nb.toml: nodes.a.routes[0].via: 'x\\ny\\r' is not an IPv4 address"
        );
        let x = "name = \"x\\ny\"\nchapter = \"1\"\ntitle = \"t\"\ndescription = \"d\"\n";
        let e = crate::experiment::parse(x, "x.toml").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .starts_with("x.toml: name: 'x\\ny' is not a name"),
            "{e}"
        );
    }

    #[test]
    fn an_unreadable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            open_error(&denied, "topology file"),
            "cannot read it: permission denied: make the topology file readable to you"
        );
        if crate::sys::is_root() {
            eprintln!("skipped reading a mode-000 file: root reads it anyway");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.toml");
        std::fs::write(&p, BUILTIN_TCPIP).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        let line = refusal(&p);
        assert!(line.contains("permission denied"), "{line}");
    }
}
