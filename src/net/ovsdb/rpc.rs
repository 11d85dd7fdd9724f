//! The JSON-RPC connection to `ovsdb-server` (RFC 7047 section 4): one request at a time over
//! its unix socket, numbered ids, `echo` requests from the server answered, notifications and
//! stray answers skipped, and the byte stream cut into messages by [`Framer`].
//!
//! An I/O error, a timeout or a message that is not JSON-RPC leaves the stream at an unknown
//! place: the connection then refuses every further call with [`OvsError::Broken`].

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{OvsError, brief, one_line};

/// Largest JSON-RPC message accepted from the server.
const MAX_MESSAGE: usize = 64 << 20;
/// How much is read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// A JSON-RPC connection to `ovsdb-server`.
pub(super) struct Connection {
    stream: UnixStream,
    socket: String,
    /// Bytes read but not yet decoded.
    buf: Vec<u8>,
    framer: Framer,
    next_id: u64,
    io_timeout: Duration,
    broken: bool,
}

impl Connection {
    /// Connect to the socket at `path`; every call then waits at most `io_timeout` for its answer.
    pub(super) fn open(path: &Path, io_timeout: Duration) -> Result<Self, OvsError> {
        let socket = path.display().to_string();
        let stream = match UnixStream::connect(path) {
            Ok(stream) => stream,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OvsError::NotRunning {
                    detail: format!("no {socket}"),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(OvsError::NotRunning {
                    detail: format!("nothing listens on {socket}"),
                });
            }
            Err(source) => return Err(OvsError::Connect { socket, source }),
        };
        if let Err(source) = stream.set_write_timeout(Some(io_timeout)) {
            return Err(OvsError::Connect { socket, source });
        }
        Ok(Connection {
            stream,
            socket,
            buf: Vec::new(),
            framer: Framer::default(),
            next_id: 1,
            io_timeout,
            broken: false,
        })
    }

    /// The socket path, as given to [`Connection::open`].
    pub(super) fn socket(&self) -> &str {
        &self.socket
    }

    /// How long one call may wait for its answer.
    pub(super) fn io_timeout(&self) -> Duration {
        self.io_timeout
    }

    /// Whether an earlier failure made the connection unusable.
    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }

    /// One JSON-RPC call: its `result`, or the server's `error` as [`OvsError::Rpc`].
    /// Connection-level failures make the connection unusable.
    pub(super) fn call(
        &mut self,
        method: &str,
        params: Value,
        during: &'static str,
    ) -> Result<Value, OvsError> {
        if self.broken {
            return Err(OvsError::Broken);
        }
        let outcome = self.exchange(method, params, during);
        if matches!(
            outcome,
            Err(OvsError::Io { .. } | OvsError::Timeout { .. } | OvsError::Protocol { .. })
        ) {
            self.broken = true;
        }
        outcome
    }

    /// Send the request, then read until its answer comes, serving the server meanwhile.
    fn exchange(
        &mut self,
        method: &str,
        params: Value,
        during: &'static str,
    ) -> Result<Value, OvsError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let request = Request {
            method,
            params: &params,
            id: Value::from(id),
        };
        self.send(&request, during)?;
        let deadline = Instant::now() + self.io_timeout;
        loop {
            let incoming = self.receive(deadline, during)?;
            if let Some(method) = &incoming.method {
                self.serve(method, &incoming, during)?;
                continue;
            }
            if incoming.id.as_u64() != Some(id) {
                continue; // an answer to something else
            }
            if !incoming.error.is_null() {
                return Err(OvsError::Rpc {
                    during,
                    error: one_line(&brief(&incoming.error)),
                });
            }
            return Ok(incoming.result);
        }
    }

    /// Answer a request from the server (only `echo` needs one); notifications need none.
    fn serve(
        &mut self,
        method: &str,
        incoming: &Incoming,
        during: &'static str,
    ) -> Result<(), OvsError> {
        if method != "echo" || incoming.id.is_null() {
            return Ok(());
        }
        let reply = Reply {
            result: &incoming.params,
            error: None,
            id: &incoming.id,
        };
        self.send(&reply, during)
    }

    fn send(&mut self, message: &impl Serialize, during: &'static str) -> Result<(), OvsError> {
        let bytes = serde_json::to_vec(message).map_err(|e| OvsError::Protocol {
            during,
            detail: format!("cannot encode the request: {e}"),
        })?;
        self.stream
            .write_all(&bytes)
            .map_err(|source| match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timeout(during),
                _ => OvsError::Io { during, source },
            })
    }

    fn timeout(&self, during: &'static str) -> OvsError {
        OvsError::Timeout {
            during,
            secs: self.io_timeout.as_secs(),
        }
    }

    /// Read until one complete JSON message is buffered, and decode it.
    fn receive(&mut self, deadline: Instant, during: &'static str) -> Result<Incoming, OvsError> {
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            match self.framer.scan(&self.buf) {
                Err(detail) => return Err(OvsError::Protocol { during, detail }),
                Ok(Some(end)) => return self.take_message(end, during),
                Ok(None) => {}
            }
            if self.buf.len() > MAX_MESSAGE {
                return Err(OvsError::Protocol {
                    during,
                    detail: format!("a message longer than {MAX_MESSAGE} bytes"),
                });
            }
            let n = self.read_some(&mut chunk, deadline, during)?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Decode and drop the message `buf[..end]`, ready for the next one.
    fn take_message(&mut self, end: usize, during: &'static str) -> Result<Incoming, OvsError> {
        let decoded = serde_json::from_slice::<Incoming>(&self.buf[..end]);
        self.buf.drain(..end);
        self.framer = Framer::default();
        decoded.map_err(|e| OvsError::Protocol {
            during,
            detail: format!("not a JSON-RPC message: {e}"),
        })
    }

    /// Read at least one byte before `deadline` (0 only when interrupted).
    fn read_some(
        &mut self,
        chunk: &mut [u8],
        deadline: Instant,
        during: &'static str,
    ) -> Result<usize, OvsError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(self.timeout(during));
        }
        if let Err(source) = self.stream.set_read_timeout(Some(remaining)) {
            return Err(OvsError::Io { during, source });
        }
        match self.stream.read(chunk) {
            Ok(0) => Err(OvsError::Io {
                during,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "ovsdb-server closed the connection",
                ),
            }),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(self.timeout(during))
            }
            Err(source) => Err(OvsError::Io { during, source }),
        }
    }
}

/// A JSON-RPC request from the client.
#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    params: &'a Value,
    id: Value,
}

/// The client's answer to a server request (only `echo`).
#[derive(Serialize)]
struct Reply<'a> {
    result: &'a Value,
    error: Option<()>,
    id: &'a Value,
}

/// Any message from the server: a response, a request or a notification.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Incoming {
    id: Value,
    method: Option<String>,
    params: Value,
    result: Value,
    error: Value,
}

/// Finds where one top-level JSON object or array ends in a byte stream
/// (ovsdb-server sends messages back to back, without delimiters).
#[derive(Debug, Default)]
pub(super) struct Framer {
    /// How far `buf` has been scanned.
    pos: usize,
    /// The closing brackets expected, innermost last; empty before a message starts.
    open: Vec<u8>,
    in_string: bool,
    escaped: bool,
}

impl Framer {
    /// Scan the new bytes of `buf` (which only ever grows between resets).
    /// `Ok(Some(end))` when `buf[..end]` holds one complete message.
    pub(super) fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        while let Some(&byte) = buf.get(self.pos) {
            self.pos += 1;
            if self.open.is_empty() {
                self.start(byte)?;
            } else if self.in_string {
                self.string_byte(byte);
            } else if self.structure_byte(byte)? {
                return Ok(Some(self.pos));
            }
        }
        Ok(None)
    }

    /// A byte between messages: blanks, or the bracket that opens the next one.
    fn start(&mut self, byte: u8) -> Result<(), String> {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => Ok(()),
            b'{' => {
                self.open.push(b'}');
                Ok(())
            }
            b'[' => {
                self.open.push(b']');
                Ok(())
            }
            _ => Err(format!(
                "byte 0x{byte:02x} where a JSON message should start"
            )),
        }
    }

    /// A byte inside a string: only an unescaped quote ends it.
    fn string_byte(&mut self, byte: u8) {
        if self.escaped {
            self.escaped = false;
        } else if byte == b'\\' {
            self.escaped = true;
        } else if byte == b'"' {
            self.in_string = false;
        }
    }

    /// A byte inside a message, outside strings; true when it closed the message.
    fn structure_byte(&mut self, byte: u8) -> Result<bool, String> {
        match byte {
            b'"' => self.in_string = true,
            b'{' => self.open.push(b'}'),
            b'[' => self.open.push(b']'),
            b'}' | b']' => {
                if self.open.pop() != Some(byte) {
                    return Err(format!("unbalanced '{}' in a JSON message", byte as char));
                }
                return Ok(self.open.is_empty());
            }
            _ => {}
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn framer_splits_back_to_back_messages() {
        let stream = br#" {"a":"}{[\"\\"} [1,[2]]{"b":{"c":[]}}{"partial":"#;
        let mut buf = stream.to_vec();
        let mut framer = Framer::default();
        let mut messages = Vec::new();
        while let Some(end) = framer.scan(&buf).expect("valid stream") {
            messages.push(serde_json::from_slice::<Value>(&buf[..end]).expect("one message"));
            buf.drain(..end);
            framer = Framer::default();
        }
        assert_eq!(
            messages,
            vec![
                json!({"a": "}{[\"\\"}),
                json!([1, [2]]),
                json!({"b": {"c": []}})
            ]
        );
        assert_eq!(buf, br#"{"partial":"#.to_vec());
        // completing the partial message, byte by byte
        for &b in br#" "x}" }"# {
            buf.push(b);
            if let Some(end) = framer.scan(&buf).expect("valid") {
                assert_eq!(
                    serde_json::from_slice::<Value>(&buf[..end]).unwrap(),
                    json!({"partial": "x}"})
                );
                return;
            }
        }
        panic!("the last message never completed");
    }

    #[test]
    fn framer_rejects_garbage_between_messages() {
        let mut framer = Framer::default();
        assert!(framer.scan(b"  hello").is_err());
        let mut framer = Framer::default();
        assert!(framer.scan(b"]").is_err());
        let mut framer = Framer::default();
        assert!(framer.scan(br#"{"id": 1, "result": [}"#).is_err());
    }

    #[test]
    fn requests_and_echo_replies_are_json_rpc() {
        let request = serde_json::to_value(Request {
            method: "transact",
            params: &json!(["Open_vSwitch"]),
            id: json!(7),
        })
        .unwrap();
        assert_eq!(
            request,
            json!({"method": "transact", "params": ["Open_vSwitch"], "id": 7})
        );
        let reply = serde_json::to_string(&Reply {
            result: &json!(["x"]),
            error: None,
            id: &json!("echo"),
        })
        .unwrap();
        assert_eq!(reply, r#"{"result":["x"],"error":null,"id":"echo"}"#);
        let incoming: Incoming =
            serde_json::from_str(r#"{"method": "update", "params": [null, {}]}"#).unwrap();
        assert_eq!(incoming.method.as_deref(), Some("update"));
        assert!(incoming.id.is_null() && incoming.error.is_null());
    }
}
