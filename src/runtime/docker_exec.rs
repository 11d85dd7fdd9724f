//! `tcplab exec` on a container, through the Docker exec API: stdin forwarded, a TTY (in raw
//! mode, resized to the terminal) when run from a terminal, output streamed, exit code returned.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::ResizeExecOptions;
use futures::StreamExt;
use std::io::{IsTerminal, Write};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Puts the terminal in raw mode and restores it on drop.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> Self {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        match tcgetattr(&stdin) {
            Ok(orig) => {
                let mut raw = orig.clone();
                cfmakeraw(&mut raw);
                let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
                RawTerminal(Some(orig))
            }
            Err(_) => RawTerminal(None),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(orig) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                orig,
            );
        }
    }
}

fn terminal_size() -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize struct.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// A Docker API error as tcplab's, with what was being done.
pub(crate) fn docker_err(context: impl Into<String>, e: bollard::errors::Error) -> Error {
    let message = match &e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            message.trim().to_string()
        }
        other => other.to_string(),
    };
    Error::Docker {
        context: context.into(),
        message,
    }
}

/// Run `cmd` in container `container`; returns its exit code.
pub async fn exec(docker: &Docker, container: &str, cmd: &[String]) -> Result<i32> {
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err("creating the exec", e))?;
    let id = created.id;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = docker
        .start_exec(&id, None)
        .await
        .map_err(|e| docker_err("starting the exec", e))?
    else {
        return Err(Error::Other("the engine detached the exec".into()));
    };
    let _raw = tty.then(RawTerminal::enter);
    if tty && let Some((h, w)) = terminal_size() {
        let _ = docker
            .resize_exec(
                &id,
                ResizeExecOptions {
                    h: h.into(),
                    w: w.into(),
                },
            )
            .await;
    }
    // stdin -> exec, on a plain thread (blocking reads), through a channel.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 8192];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let pump = async move {
        while let Some(chunk) = rx.recv().await {
            if input.write_all(&chunk).await.is_err() {
                break;
            }
            let _ = input.flush().await;
        }
        // End of our stdin: close the exec's stdin so `cat` and friends finish.
        let _ = input.shutdown().await;
        futures::future::pending::<()>().await;
    };
    let copy_out = async {
        while let Some(item) = output.next().await {
            match item {
                Ok(LogOutput::StdErr { message }) => {
                    let mut e = std::io::stderr();
                    let _ = e.write_all(&message);
                    let _ = e.flush();
                }
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    let mut o = std::io::stdout();
                    let _ = o.write_all(&message);
                    let _ = o.flush();
                }
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => return Err(docker_err("reading the exec's output", e)),
            }
        }
        Ok(())
    };
    tokio::select! {
        r = copy_out => r?,
        _ = pump => {}
    }
    exit_code(docker, &id).await
}

/// Run `cmd` in `container` without a terminal and collect its output and exit code.
pub async fn run_collect(
    docker: &Docker,
    container: &str,
    cmd: &[String],
) -> Result<super::CmdOutput> {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err("creating the exec", e))?;
    let mut out = super::CmdOutput::default();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| docker_err("starting the exec", e))?
    {
        while let Some(item) = output.next().await {
            match item.map_err(|e| docker_err("reading the exec's output", e))? {
                LogOutput::StdErr { message } => {
                    out.stderr.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    out.stdout.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdIn { .. } => {}
            }
        }
    }
    out.code = exit_code(docker, &created.id).await?;
    Ok(out)
}

/// The exit code of a finished exec: its output can end (the process closed stdout) a moment
/// before the engine marks it finished, so ask until it says so (at most about 5 s).
async fn exit_code(docker: &Docker, id: &str) -> Result<i32> {
    for _ in 0..100 {
        let info = docker
            .inspect_exec(id)
            .await
            .map_err(|e| docker_err("inspecting the exec", e))?;
        if info.running != Some(true) {
            return Ok(info.exit_code.map_or(-1, |c| c as i32));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(Error::Other(
        "the exec did not finish after its output ended".into(),
    ))
}
