//! One error type for the whole library, with context chains
//! ("creating veth aix:eth1: moving into namespace: ...").
//!
//! Every message is one line, lowercase, without a final period, and names the thing that failed
//! and, where there is one, what the user can do about it.

use std::fmt;

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in tcplab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology file (or an option naming a part of it) is wrong: exit code 2.
    #[error("{file}: {place}: {message}")]
    Topology {
        /// the file, or `<builtin>` for the embedded course topology
        file: String,
        /// where in the file: `line 3, column 5` or a path like `networks.net1.members[2].address`
        place: String,
        /// what is wrong, with the offending value
        message: String,
    },
    /// The user asked for something that cannot be done as asked (unknown node, lab not up,
    /// lab already up, missing uplink, ...): exit code 2.
    #[error("{0}")]
    Usage(String),
    /// A system call or a netlink request failed.
    #[error("{context}: {source}")]
    Io {
        /// what tcplab was doing
        context: String,
        /// the underlying error
        #[source]
        source: std::io::Error,
    },
    /// A netlink request was answered with an error.
    #[error("{context}: {message}")]
    Netlink {
        /// what tcplab was doing
        context: String,
        /// the kernel's answer
        message: String,
    },
    /// Something needed on the machine is missing or not running (Docker, OVS, root).
    #[error("{0}")]
    Environment(String),
    /// The Docker engine answered with an error.
    #[error("{context}: {message}")]
    Docker {
        /// what tcplab was doing
        context: String,
        /// the engine's answer
        message: String,
    },
    /// Open vSwitch refused or failed.
    #[error("{context}: {message}")]
    Ovs {
        /// what tcplab was doing
        context: String,
        /// what Open vSwitch answered
        message: String,
    },
    /// Several independent steps failed (teardown keeps going and collects them).
    #[error("{}", join_errors(.0))]
    Many(Vec<Error>),
    /// Some other failure, with context.
    #[error("{0}")]
    Other(String),
}

fn join_errors(errors: &[Error]) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&e.to_string());
    }
    out
}

impl Error {
    /// Exit code for the CLI: 2 when the user must change something (the input, or the machine:
    /// no Docker engine, Open vSwitch not running, not root), 1 when an operation failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Topology { .. } | Error::Usage(_) | Error::Environment(_) => 2,
            Error::Many(v) if !v.is_empty() && v.iter().all(|e| e.exit_code() == 2) => 2,
            _ => 1,
        }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Prefix the error with more context, keeping its kind.
    pub fn context(self, outer: impl fmt::Display) -> Self {
        match self {
            Error::Io { context, source } => Error::Io {
                context: format!("{outer}: {context}"),
                source,
            },
            Error::Netlink { context, message } => Error::Netlink {
                context: format!("{outer}: {context}"),
                message,
            },
            Error::Docker { context, message } => Error::Docker {
                context: format!("{outer}: {context}"),
                message,
            },
            Error::Ovs { context, message } => Error::Ovs {
                context: format!("{outer}: {context}"),
                message,
            },
            Error::Other(m) => Error::Other(format!("{outer}: {m}")),
            other => other,
        }
    }
}

/// Adds context to any result whose error converts into [`Error`].
pub trait Context<T> {
    /// Wrap the error with what was being done.
    fn context(self, what: impl fmt::Display) -> Result<T>;
    /// Like [`Context::context`], computing the text only on error.
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(what.to_string(), e))
    }
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(what.to_string(), std::io::Error::from(e)))
    }
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), std::io::Error::from(e)))
    }
}

impl<T> Context<T> for std::result::Result<T, rtnetlink::Error> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Netlink {
            context: what.to_string(),
            message: netlink_message(&e),
        })
    }
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Netlink {
            context: f(),
            message: netlink_message(&e),
        })
    }
}

impl<T> Context<T> for Result<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(what))
    }
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

/// The kernel's errno of a netlink error, if it is one.
pub fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn netlink_message(e: &rtnetlink::Error) -> String {
    match netlink_errno(e) {
        Some(errno) => std::io::Error::from_raw_os_error(errno)
            .to_string()
            .to_lowercase(),
        None => e.to_string(),
    }
}
