//! What can go wrong while talking to Open vSwitch, and how the server's answers are
//! turned into one-line message text.

use std::io;

use serde_json::Value;

use super::Datapath;

/// What can go wrong while talking to Open vSwitch.
///
/// Every message is one line that says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    /// The socket does not exist or nothing listens on it.
    #[error(
        "Open vSwitch is not running ({detail}): install openvswitch-switch and start it (scripts/setup-host.sh does both)"
    )]
    NotRunning {
        /// What was seen, e.g. "no /var/run/openvswitch/db.sock".
        detail: String,
    },
    /// Connecting to the socket failed for another reason (e.g. permissions).
    #[error(
        "cannot connect to ovsdb-server at {socket}: {source}: run tcplab as root and check that ovsdb-server is running (scripts/setup-host.sh starts it)"
    )]
    Connect {
        /// The socket path.
        socket: String,
        /// The error from `connect`.
        #[source]
        source: io::Error,
    },
    /// The server has no `Open_vSwitch` database.
    #[error(
        "ovsdb-server at {socket} serves no Open_vSwitch database: create it and restart Open vSwitch (scripts/setup-host.sh does both)"
    )]
    NoDatabase {
        /// The socket path.
        socket: String,
    },
    /// Reading from or writing to the server failed, or it hung up.
    #[error(
        "lost the connection to ovsdb-server while {during}: {source}: check that ovsdb-server is still running (scripts/setup-host.sh restarts it)"
    )]
    Io {
        /// What the client was doing.
        during: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server did not answer in time.
    #[error(
        "ovsdb-server did not answer within {secs} s while {during}: check that it is running and not stuck (scripts/setup-host.sh restarts it)"
    )]
    Timeout {
        /// What the client was doing.
        during: &'static str,
        /// How long it waited, in seconds.
        secs: u64,
    },
    /// An earlier I/O, timeout or protocol error left the connection unusable.
    #[error("the connection to ovsdb-server is unusable after an earlier error: connect again")]
    Broken,
    /// The server sent something that is not OVSDB JSON-RPC.
    #[error(
        "unexpected answer from ovsdb-server while {during}: {detail}: check that the socket belongs to Open vSwitch's ovsdb-server"
    )]
    Protocol {
        /// What the client was doing.
        during: &'static str,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The server answered the JSON-RPC request with an error.
    #[error(
        "ovsdb-server rejected the request while {during}: {error}: this is a tcplab bug, please report it with the Open vSwitch version"
    )]
    Rpc {
        /// What the client was doing.
        during: &'static str,
        /// The server's error, as one line.
        error: String,
    },
    /// An operation of a transaction failed; nothing of it was applied.
    #[error(
        "the Open vSwitch transaction failed while {during}: {error}: nothing was changed; run `ovs-vsctl show` to look for names already in use"
    )]
    Transaction {
        /// What the client was doing.
        during: &'static str,
        /// The server's error and details, as one line.
        error: String,
    },
    /// A bridge of that name already exists.
    #[error(
        "an Open vSwitch bridge named {name} already exists: remove it (ovs-vsctl del-br {name}) or give the network another name"
    )]
    BridgeExists {
        /// The bridge name.
        name: String,
    },
    /// A port of that name already belongs to some bridge.
    #[error(
        "{name} is already a port of Open vSwitch bridge {bridge}: remove it from there (ovs-vsctl del-port {name}) or use another interface"
    )]
    PortInUse {
        /// The port name.
        name: String,
        /// The bridge holding it ("?" if none could be found).
        bridge: String,
    },
    /// The datapath in use cannot do what is asked; the message says why and what to use.
    #[error("{0}")]
    Unsupported(String),
    /// The caller's input cannot be used; the message says why and what to do.
    #[error("invalid input for Open vSwitch: {0}")]
    Invalid(String),
    /// ovs-vswitchd did not apply the change in time.
    #[error(
        "ovs-vswitchd did not apply the change within {secs} s: check that ovs-vswitchd is running (scripts/setup-host.sh starts it)"
    )]
    NotApplied {
        /// How long it waited, in seconds.
        secs: u64,
    },
    /// ovs-vswitchd could not make the bridge itself (its local port got no OpenFlow port).
    #[error(
        "ovs-vswitchd could not create bridge {name} with the {datapath} datapath ({error}): without the kernel openvswitch module only the netdev datapath works; see /var/log/openvswitch/ovs-vswitchd.log"
    )]
    BridgeFailed {
        /// The bridge name.
        name: String,
        /// The datapath type asked for.
        datapath: Datapath,
        /// The local port's `error` column, or what else was wrong.
        error: String,
    },
    /// ovs-vswitchd could not attach an interface.
    #[error(
        "ovs-vswitchd could not add interface {name}: {error}: check that the interface exists in the host namespace before the bridge is made; see /var/log/openvswitch/ovs-vswitchd.log"
    )]
    Interface {
        /// The interface name.
        name: String,
        /// The `error` column, or what else was wrong.
        error: String,
    },
    /// Neither the kernel nor the userspace datapath can be used.
    #[error(
        "Open vSwitch offers no usable datapath (datapath_types: {types}): check that ovs-vswitchd is running (scripts/setup-host.sh starts it)"
    )]
    NoDatapath {
        /// The `datapath_types` column as seen.
        types: String,
    },
}

/// A JSON value as short text for an error message (at most 300 characters and "...").
pub(super) fn brief(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Text on one line, without a final period.
pub(super) fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ovsdb::DEFAULT_SOCKET;
    use serde_json::json;

    #[test]
    fn error_messages_are_one_line_lowercase_and_say_what_to_do() {
        let errors = vec![
            OvsError::NotRunning {
                detail: format!("no {DEFAULT_SOCKET}"),
            },
            OvsError::Connect {
                socket: "s".into(),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            },
            OvsError::NoDatabase { socket: "s".into() },
            OvsError::Io {
                during: "x",
                source: io::Error::from(io::ErrorKind::UnexpectedEof),
            },
            OvsError::Timeout {
                during: "x",
                secs: 5,
            },
            OvsError::Broken,
            OvsError::Protocol {
                during: "x",
                detail: "y".into(),
            },
            OvsError::Rpc {
                during: "x",
                error: "y".into(),
            },
            OvsError::Transaction {
                during: "x",
                error: "y".into(),
            },
            OvsError::BridgeExists { name: "b".into() },
            OvsError::PortInUse {
                name: "p".into(),
                bridge: "b".into(),
            },
            OvsError::Invalid("x: do y".into()),
            OvsError::NotApplied { secs: 10 },
            OvsError::BridgeFailed {
                name: "b".into(),
                datapath: Datapath::System,
                error: "e".into(),
            },
            OvsError::Interface {
                name: "i".into(),
                error: "e".into(),
            },
            OvsError::NoDatapath { types: "[]".into() },
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains('\n') && !text.ends_with('.'), "{text}");
            let first = text.chars().next().unwrap();
            assert!(
                first.is_lowercase() || text.starts_with("Open vSwitch"),
                "{text}"
            );
            assert!(text.contains(": "), "says what to do: {text}");
        }
        assert_eq!(
            OvsError::NotRunning {
                detail: format!("no {DEFAULT_SOCKET}")
            }
            .to_string(),
            "Open vSwitch is not running (no /var/run/openvswitch/db.sock): install openvswitch-switch and start it (scripts/setup-host.sh does both)"
        );
    }

    #[test]
    fn server_answers_become_short_single_lines() {
        assert_eq!(brief(&json!("text")), "text");
        assert_eq!(brief(&json!({"a": 1})), r#"{"a":1}"#);
        let long = brief(&json!("é".repeat(400)));
        assert_eq!(long.chars().count(), 303);
        assert!(long.ends_with("..."));
        assert_eq!(one_line("two\n  lines.\t"), "two lines");
        assert_eq!(one_line("end..."), "end");
    }
}
