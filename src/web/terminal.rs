//! A terminal in the page for any node: a shell run by `tcplab exec NODE bash` (so it is the
//! same on both runtimes) in a pseudo-terminal, its bytes carried both ways over a websocket.
//! Binary messages are the terminal's bytes; a text message `{"cols":C,"rows":R}` resizes it.

use crate::error::{Error, Result};
use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// A process on a pseudo-terminal.
pub struct Pty {
    master: OwnedFd,
    child: Child,
}

fn winsize(cols: u16, rows: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows.max(1),
        ws_col: cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Pty {
    /// Runs `argv` on a new pseudo-terminal of `cols` x `rows`, as the leader of its own
    /// session with the terminal as its controlling terminal.
    pub fn spawn(argv: &[String], cols: u16, rows: u16) -> Result<Pty> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| Error::Usage("the terminal needs a command".into()))?;
        let ws = winsize(cols, rows);
        let pty = nix::pty::openpty(Some(&ws), None)
            .map_err(|e| Error::Other(format!("opening a pseudo-terminal: {e}")))?;
        let slave = pty.slave;
        let io = |fd: &OwnedFd| {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|e| Error::io("duplicating the pseudo-terminal", e))
        };
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .env("TERM", "xterm")
            .stdin(io(&slave)?)
            .stdout(io(&slave)?)
            .stderr(io(&slave)?);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {prog} on a pseudo-terminal"), e))?;
        drop(slave);
        Ok(Pty {
            master: pty.master,
            child,
        })
    }

    /// Sets the terminal's size.
    pub fn resize(&self, cols: u16, rows: u16) {
        let ws = winsize(cols, rows);
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }

    /// A reader and a writer of the terminal's master side.
    fn files(&self) -> Result<(File, File)> {
        let dup = || {
            self.master
                .try_clone()
                .map(File::from)
                .map_err(|e| Error::io("duplicating the pseudo-terminal", e))
        };
        Ok((dup()?, dup()?))
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(serde::Deserialize)]
struct Resize {
    cols: u16,
    rows: u16,
}

/// Carries the terminal of `argv` over `socket` until either side ends.
pub async fn session(socket: WebSocket, argv: Vec<String>) {
    let (mut tx, mut rx) = socket.split();
    let pty = match Pty::spawn(&argv, 80, 24) {
        Ok(p) => p,
        Err(e) => {
            let _ = tx
                .send(Message::Binary(
                    format!("tcplab: {e}\r\n").into_bytes().into(),
                ))
                .await;
            return;
        }
    };
    let (mut reader, mut writer) = match pty.files() {
        Ok(f) => f,
        Err(_) => return,
    };
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let reading = std::thread::Builder::new()
        .name("web-term".into())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || out_tx.blocking_send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    if reading.is_err() {
        return;
    }
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(bytes) => {
                    if tx.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = tx.send(Message::Binary(b"\r\n[exited]\r\n".to_vec().into())).await;
                    break;
                }
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if writer.write_all(&b).is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if let Ok(r) = serde_json::from_str::<Resize>(t.as_str()) {
                        pty.resize(r.cols, r.rows);
                    } else if writer.write_all(t.as_bytes()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    let _ = tx.close().await;
    drop(pty);
}
