//! The netns runtime: each node is a named network namespace, `tcplab-<lab>-<node>`.
//! `exec` works like `ip netns exec`: `/etc/netns/<ns>/hosts` is bind-mounted over /etc/hosts in a
//! private mount namespace, and the node's name becomes the hostname (a private UTS namespace).

use super::{CmdOutput, Runtime, RuntimeKind};
use crate::error::{Context, Error, Result};
use crate::plan::Plan;
use crate::state::Object;
use crate::sys;
use std::ffi::CString;
use std::os::unix::process::CommandExt;

/// Plain network namespaces.
#[derive(Debug, Default)]
pub struct NetnsRuntime;

impl Runtime for NetnsRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Netns
    }

    fn objects(&self, plan: &Plan) -> Vec<Object> {
        plan.nodes
            .iter()
            .map(|n| Object::Netns {
                name: n.netns.clone(),
            })
            .collect()
    }

    async fn create_nodes(&self, plan: &Plan) -> Result<()> {
        let threads: Vec<_> = plan
            .nodes
            .iter()
            .map(|n| sys::spawn_create_netns(&n.netns, || Ok(())))
            .collect::<Result<_>>()?;
        let mut errors: Vec<Error> = threads.into_iter().filter_map(|t| t.join().err()).collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Many(errors)),
        }
    }

    async fn ensure_nodes(&self, plan: &Plan) -> Result<Vec<String>> {
        let missing: Vec<&crate::plan::NodePlan> = plan
            .nodes
            .iter()
            .filter(|n| !sys::netns_exists(&n.netns))
            .collect();
        let threads: Vec<_> = missing
            .iter()
            .map(|n| sys::spawn_create_netns(&n.netns, || Ok(())))
            .collect::<Result<_>>()?;
        for t in threads {
            t.join()?;
        }
        Ok(missing.iter().map(|n| n.name.clone()).collect())
    }

    async fn remove(&self, object: &Object) -> Result<bool> {
        match object {
            Object::Netns { name } => sys::delete_netns(name),
            _ => Ok(false),
        }
    }

    async fn exec(&self, netns: &str, node: &str, cmd: &[String]) -> Result<i32> {
        exec_in_netns(netns, node, cmd)
    }

    async fn run(&self, netns: &str, node: &str, argv: &[String]) -> Result<CmdOutput> {
        use std::os::unix::process::ExitStatusExt;
        let mut cmd = tokio::process::Command::from(node_command(netns, node, argv)?);
        cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
        let out = cmd
            .output()
            .await
            .map_err(|e| Error::io(format!("running {} in {node}", argv[0]), e))?;
        let code = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Ok(CmdOutput {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Replace this process with `cmd` inside namespace `netns` (like `ip netns exec`), with the
/// node's /etc/hosts and hostname. Returns only on failure.
pub fn exec_in_netns(netns: &str, node: &str, cmd: &[String]) -> Result<i32> {
    let mut command = node_command(netns, node, cmd)?;
    let err = command.exec();
    Err(if err.kind() == std::io::ErrorKind::NotFound {
        Error::Usage(format!("command '{}' not found", cmd[0]))
    } else {
        Error::io(format!("running {} in {node}", cmd[0]), err)
    })
}

/// A command that will run inside node `node` (namespace `netns`): it enters the namespace,
/// gets a private mount namespace with the node's /etc/hosts and /sys, and the node's hostname.
pub fn node_command(netns: &str, node: &str, cmd: &[String]) -> Result<std::process::Command> {
    let Some((prog, args)) = cmd.split_first() else {
        return Err(super::empty_command());
    };
    let ns_path = sys::netns_path(netns);
    let ns = std::fs::File::open(&ns_path)
        .with_context(|| format!("opening namespace {}", ns_path.display()))?;
    let hosts = std::path::Path::new(sys::ETC_NETNS_DIR)
        .join(netns)
        .join("hosts");
    let hosts_c = CString::new(hosts.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Other("bad path".into()))?;
    let etc_hosts = CString::new("/etc/hosts").expect("no NUL");
    let sys_c = CString::new("/sys").expect("no NUL");
    let sysfs = CString::new("sysfs").expect("no NUL");
    let root = CString::new("/").expect("no NUL");
    let none = CString::new("none").expect("no NUL");
    let hostname = node.as_bytes().to_vec();
    let have_hosts = hosts.exists();
    let mut command = std::process::Command::new(prog);
    command.args(args);
    // SAFETY: only async-signal-safe system calls on data prepared before the fork; the
    // namespace file stays open (moved into the closure) until the child has entered it.
    unsafe {
        command.pre_exec(move || {
            use std::os::fd::AsRawFd;
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Keep mount changes private to this command.
            if libc::mount(
                none.as_ptr(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_SLAVE | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if have_hosts
                && libc::mount(
                    hosts_c.as_ptr(),
                    etc_hosts.as_ptr(),
                    none.as_ptr(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // A sysfs of this namespace, so /sys/class/net lists the node's interfaces.
            if libc::umount2(sys_c.as_ptr(), libc::MNT_DETACH) == 0 {
                libc::mount(
                    sysfs.as_ptr(),
                    sys_c.as_ptr(),
                    sysfs.as_ptr(),
                    0,
                    std::ptr::null(),
                );
            }
            libc::sethostname(hostname.as_ptr().cast(), hostname.len());
            Ok(())
        });
    }
    Ok(command)
}
