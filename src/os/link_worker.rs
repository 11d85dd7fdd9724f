//! Conditions workers as processes of their own: `tcplab link-worker` (a hidden subcommand)
//! runs [`crate::conditions::datapath::run_worker`] detached from the command that started it,
//! so a line keeps its conditions after `tcplab link set` returns. It is found again by its
//! control socket (an abstract unix socket in the host's namespace), and by its command line
//! when it no longer answers.

use crate::conditions::datapath::{ControlRequest, control, remove_leftovers};
use crate::conditions::spec::Conditions;
use crate::error::{Context, Error, Result};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden subcommand that runs a worker.
pub const SUBCOMMAND: &str = "link-worker";

/// How long a new worker may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Start a worker process and wait until it answers on `control` (or report why it ended).
pub fn start(netns: &Path, iface: &str, control_name: &str, c: &Conditions) -> Result<()> {
    let exe = std::env::current_exe().context("finding the tcplab binary")?;
    let json =
        serde_json::to_string(c).map_err(|e| Error::Other(format!("encoding conditions: {e}")))?;
    let log = tempfile_for(control_name)?;
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND)
        .arg("--netns")
        .arg(netns)
        .arg("--iface")
        .arg(iface)
        .arg("--control")
        .arg(control_name)
        .arg("--conditions")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.try_clone().context("sharing the worker's log")?);
    // SAFETY: setsid is async-signal-safe; the worker leaves this command's session so that a
    // Ctrl-C on the terminal does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting a conditions worker")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(reply) = control(control_name, &ControlRequest::Stats(()))
            && reply.ok
        {
            // The worker outlives this process (and is then re-parented to init).
            drop(child);
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Other(format!(
                "the conditions worker for {iface} ended ({status}): {}",
                read_log(&log)
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Other(format!(
                "the conditions worker for {iface} did not answer within {} s: {}",
                START_TIMEOUT.as_secs(),
                read_log(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An unlinked temporary file for the worker's error output.
fn tempfile_for(control_name: &str) -> Result<std::fs::File> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "tcplab-worker-{}-{}.log",
        std::process::id(),
        crate::util::short_hash(control_name)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

fn read_log(f: &std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut f = f;
    let mut s = String::new();
    let _ = f.seek(std::io::SeekFrom::Start(0));
    let _ = f.take(4096).read_to_string(&mut s);
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .trim_start_matches("tcplab: ")
        .to_string()
}

/// Change a running worker's conditions. Ok(false): nothing answers on `control`.
pub fn update(control_name: &str, c: &Conditions) -> Result<bool> {
    match control(control_name, &ControlRequest::Set(Box::new(c.clone()))) {
        Err(_) => Ok(false),
        Ok(reply) if reply.ok => Ok(true),
        Ok(reply) => Err(Error::Other(format!(
            "changing conditions: {}",
            reply.error.unwrap_or_default()
        ))),
    }
}

/// A running worker's counters.
pub fn stats(control_name: &str) -> Option<crate::conditions::datapath::Stats> {
    control(control_name, &ControlRequest::Stats(()))
        .ok()
        .filter(|r| r.ok)
        .and_then(|r| r.stats)
}

/// Stop the worker (by its socket; by signal when it does not answer) and remove what a worker
/// installs on the interface, if the namespace is still there.
pub fn stop(netns: &Path, iface: &str, control_name: &str) -> Result<()> {
    let answered = control(control_name, &ControlRequest::Stop(())).is_ok();
    let pids = worker_pids(control_name);
    if !answered {
        for pid in &pids {
            // SAFETY: plain kill(2) of a process whose command line names this worker.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
    // Wait for the worker to end: it holds the node's namespace until it does.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !worker_pids(control_name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if netns.exists() {
        match remove_leftovers(netns, iface) {
            Ok(_) => {}
            // The interface went with its namespace or its peer: nothing is left on it.
            Err(e) if e.to_string().contains("no such") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Processes whose command line is a worker serving `control_name`.
fn worker_pids(control_name: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.iter().any(|a| *a == SUBCOMMAND.as_bytes())
                    && args
                        .windows(2)
                        .any(|w| w[0] == b"--control" && w[1] == control_name.as_bytes())
            })
        })
        .collect()
}
