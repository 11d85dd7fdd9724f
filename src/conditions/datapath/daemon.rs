//! Conditions run by a detached process: [`run_worker`] keeps a [`Worker`] going and serves an
//! abstract unix socket of JSON lines (`{"set": CONDITIONS}`, `{"stats": null}`,
//! `{"stop": null}`, each answered by one [`ControlReply`] line); [`control`] is its client.
//!
//! The socket is bound in the network namespace of the process that calls [`run_worker`] (not
//! the node's): abstract unix sockets belong to a network namespace, and the CLI talks to the
//! daemon from the host's.

use super::{Stats, Worker};
use crate::conditions::spec::Conditions;
use crate::error::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a client may take to send its line, and [`control`] to get its answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the daemon looks at its signals and its worker.
const TICK_MS: libc::c_int = 200;

/// Set by SIGTERM or SIGINT.
static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// One request to a conditions daemon, a JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlRequest {
    /// `{"set": CONDITIONS}`: change the conditions live
    Set(Box<Conditions>),
    /// `{"stats": null}`: the counters
    Stats(()),
    /// `{"stop": null}`: remove the conditions and end
    Stop(()),
}

/// The daemon's answer, a JSON line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlReply {
    /// whether the request was carried out
    pub ok: bool,
    /// why not
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// the counters (for `stats` and `stop`)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

fn abstract_addr(name: &str) -> Result<SocketAddr> {
    SocketAddr::from_abstract_name(name.as_bytes())
        .with_context(|| format!("naming control socket @{name}"))
}

fn install_signal_handlers() -> Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_terminate),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.context("installing a signal handler")?;
    }
    Ok(())
}

/// Whether `fd` became readable within `ms` milliseconds.
fn readable(fd: i32, ms: libc::c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Condition interface `iface` of the namespace at `netns` with `initial` and serve the
/// abstract unix socket `control_socket_name` until told to stop, SIGTERM or SIGINT, or the
/// interface disappears; then remove the conditions. Blocks; for a detached daemon process.
pub fn run_worker(
    netns: &Path,
    iface: &str,
    control_socket_name: &str,
    initial: &Conditions,
) -> Result<()> {
    let listener =
        UnixListener::bind_addr(&abstract_addr(control_socket_name)?).with_context(|| {
            format!("binding control socket @{control_socket_name} (is a worker running already?)")
        })?;
    listener
        .set_nonblocking(true)
        .context("making the control socket non-blocking")?;
    install_signal_handlers()?;
    let mut worker = Worker::start(netns, iface, initial)?;
    while !TERMINATE.load(Ordering::SeqCst) && worker.is_running() {
        if !readable(listener.as_raw_fd(), TICK_MS) {
            continue;
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        if serve_client(stream, &mut worker) {
            break;
        }
    }
    worker.stop().map(|_| ())
}

/// Answer one client's lines; true when it asked to stop.
fn serve_client(stream: UnixStream, worker: &mut super::WorkerHandle) -> bool {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let Ok(mut out) = stream.try_clone() else {
        return false;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let (reply, stop) = match serde_json::from_str::<ControlRequest>(&line) {
            Ok(ControlRequest::Set(c)) => (reply_of(worker.update(&c), None), false),
            Ok(ControlRequest::Stats(())) => (reply_of(Ok(()), Some(worker.stats())), false),
            Ok(ControlRequest::Stop(())) => (reply_of(Ok(()), Some(worker.stats())), true),
            Err(e) => (
                reply_of(
                    Err(Error::Usage(format!("unreadable control request: {e}"))),
                    None,
                ),
                false,
            ),
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_else(|_| "{\"ok\":false}".into());
        text.push('\n');
        let _ = out.write_all(text.as_bytes());
        if stop {
            return true;
        }
    }
    false
}

fn reply_of(r: Result<()>, stats: Option<Stats>) -> ControlReply {
    match r {
        Ok(()) => ControlReply {
            ok: true,
            error: None,
            stats,
        },
        Err(e) => ControlReply {
            ok: false,
            error: Some(e.to_string()),
            stats: None,
        },
    }
}

/// Send one request to the conditions daemon serving `control_socket_name` (from the same
/// network namespace as the daemon) and read its answer.
pub fn control(control_socket_name: &str, request: &ControlRequest) -> Result<ControlReply> {
    let what = || format!("talking to the conditions worker @{control_socket_name}");
    let mut stream = UnixStream::connect_addr(&abstract_addr(control_socket_name)?)
        .with_context(|| format!("{}: is it running?", what()))?;
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .with_context(what)?;
    let mut line = serde_json::to_string(request)
        .map_err(|e| Error::Other(format!("encoding a control request: {e}")))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).with_context(what)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .with_context(what)?;
    serde_json::from_str(&answer)
        .map_err(|e| Error::Other(format!("{}: unreadable answer: {e}", what())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_the_documented_json_lines() {
        let stats: ControlRequest = serde_json::from_str(r#"{"stats": null}"#).unwrap();
        assert_eq!(stats, ControlRequest::Stats(()));
        let stop: ControlRequest = serde_json::from_str(r#"{"stop": null}"#).unwrap();
        assert_eq!(stop, ControlRequest::Stop(()));
        let set = ControlRequest::Set(Box::new(Conditions {
            delay: Some(Duration::from_millis(5)),
            ..Default::default()
        }));
        let text = serde_json::to_string(&set).unwrap();
        assert!(text.starts_with(r#"{"set":{"#), "{text}");
        assert_eq!(serde_json::from_str::<ControlRequest>(&text).unwrap(), set);
        assert_eq!(
            serde_json::to_string(&ControlRequest::Stop(())).unwrap(),
            r#"{"stop":null}"#
        );
    }

    #[test]
    fn a_missing_daemon_is_a_clear_error() {
        let err = control("tcplab-test-no-such-worker", &ControlRequest::Stats(())).unwrap_err();
        assert!(err.to_string().contains("is it running?"), "{err}");
    }
}
