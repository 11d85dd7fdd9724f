//! Why a capture could not be set up or did not finish, and how a namespace
//! is named in those messages.

use std::io;
use std::path::{Path, PathBuf};

/// Why a capture could not be set up or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The namespace file does not exist.
    #[error("network namespace {} not found (is the lab up? `ip netns list` shows the namespaces)", path.display())]
    NetnsNotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The namespace could not be opened or entered.
    #[error("cannot enter network namespace {}: {source} (capturing needs root)", path.display())]
    EnterNetns {
        /// The path given.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// The interfaces of the namespace could not be listed.
    #[error("cannot list the interfaces of {ns}: {source}")]
    ListInterfaces {
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// A requested interface does not exist in the namespace.
    #[error("interface {iface} not found in {ns} (its interfaces: {available})")]
    InterfaceNotFound {
        /// The interface asked for.
        iface: String,
        /// The namespace.
        ns: String,
        /// Its interfaces, comma-separated.
        available: String,
    },
    /// The namespace has only `lo`.
    #[error("{ns} has no interface to capture on besides lo (is the lab up?)")]
    NoInterfaces {
        /// The namespace.
        ns: String,
    },
    /// The interface does not carry Ethernet frames.
    #[error(
        "interface {iface} in {ns} is not an ethernet interface (hardware type {hatype}); capture one of the lab's veth interfaces"
    )]
    NotEthernet {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
        /// Its ARPHRD_* type.
        hatype: u16,
    },
    /// The packet socket could not be opened or bound.
    #[error(
        "cannot open a packet socket on {iface} in {ns}: {source} (capturing needs root or CAP_NET_RAW)"
    )]
    Socket {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// The TPACKET_V3 ring could not be set up.
    #[error("cannot set up the capture ring on {iface} in {ns}: {source} (is memory short?)")]
    Ring {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// Waiting for packets failed.
    #[error("capture on {iface} in {ns} failed: {source}")]
    Io {
        /// The interface (or all of them).
        iface: String,
        /// The namespace.
        ns: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// The interface was deleted during the capture; the file is complete up to then.
    #[error(
        "interface {iface} was deleted from {ns} during the capture (lab torn down?); the file written so far is complete"
    )]
    InterfaceGone {
        /// The interface.
        iface: String,
        /// The namespace.
        ns: String,
    },
    /// The output file could not be created.
    #[error("cannot create {}: {source} (check that the directory exists and is writable)", path.display())]
    CreateOutput {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Writing the capture failed.
    #[error("cannot write the capture to {target}: {source}")]
    Write {
        /// The file or stream.
        target: String,
        /// What the system said.
        source: io::Error,
    },
    /// The helper thread that enters the namespace panicked.
    #[error("the helper thread that enters {ns} panicked")]
    Thread {
        /// The namespace.
        ns: String,
    },
}

/// How a namespace is named in messages: `tcplab-tcpip-bsdi` for
/// `/run/netns/tcplab-tcpip-bsdi`, the full path otherwise.
pub(super) fn ns_display(netns: Option<&Path>) -> String {
    match netns {
        None => "the current network namespace".into(),
        Some(p) => {
            let parent = p.parent().map(|d| d.to_string_lossy().into_owned());
            match (parent.as_deref(), p.file_name()) {
                (Some("/run/netns" | "/var/run/netns"), Some(n)) => {
                    n.to_string_lossy().into_owned()
                }
                _ => p.display().to_string(),
            }
        }
    }
}
