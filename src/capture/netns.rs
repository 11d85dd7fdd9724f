//! The namespace side: a helper thread that enters the namespace (the
//! caller's thread never changes namespace), and the interfaces found there.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

use super::error::{CaptureError, ns_display};

/// Runs `f` on a new thread that first entered `netns` (when given); the
/// caller's thread keeps its namespace.
pub(super) fn in_netns<T: Send>(
    netns: Option<&Path>,
    f: impl FnOnce() -> Result<T, CaptureError> + Send,
) -> Result<T, CaptureError> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("tcplab-netns".into())
            .spawn_scoped(s, || {
                if let Some(path) = netns {
                    let file = File::open(path).map_err(|e| {
                        if e.kind() == io::ErrorKind::NotFound {
                            CaptureError::NetnsNotFound {
                                path: path.to_path_buf(),
                            }
                        } else {
                            CaptureError::EnterNetns {
                                path: path.to_path_buf(),
                                source: e,
                            }
                        }
                    })?;
                    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                        CaptureError::EnterNetns {
                            path: path.to_path_buf(),
                            source: e.into(),
                        }
                    })?;
                }
                f()
            })
            .map_err(|e| CaptureError::EnterNetns {
                path: netns.map(Path::to_path_buf).unwrap_or_default(),
                source: e,
            })?;
        handle.join().map_err(|_| CaptureError::Thread {
            ns: ns_display(netns),
        })?
    })
}

/// (ifindex, name) of every interface of the current thread's namespace, `lo` included.
pub(super) fn interfaces_here(ns: &str) -> Result<Vec<(u32, String)>, CaptureError> {
    let list = nix::net::if_::if_nameindex().map_err(|e| CaptureError::ListInterfaces {
        ns: ns.to_string(),
        source: e.into(),
    })?;
    let mut v: Vec<(u32, String)> = list
        .iter()
        .map(|i| (i.index(), i.name().to_string_lossy().into_owned()))
        .collect();
    v.sort();
    Ok(v)
}

/// The namespace's interface names (except `lo`), in ifindex order.
pub fn list_interfaces(netns: Option<&Path>) -> Result<Vec<String>, CaptureError> {
    let ns = ns_display(netns);
    in_netns(netns, || {
        Ok(interfaces_here(&ns)?
            .into_iter()
            .filter(|(_, n)| n != "lo")
            .map(|(_, n)| n)
            .collect())
    })
}

/// The (ifindex, name) pairs to capture among `all` (the namespace's
/// interfaces): those named in `wanted`, in that order and each once, or all
/// but `lo` when `wanted` is empty.
pub(super) fn choose_interfaces(
    all: &[(u32, String)],
    wanted: &[String],
    ns: &str,
) -> Result<Vec<(u32, String)>, CaptureError> {
    if wanted.is_empty() {
        let chosen: Vec<(u32, String)> = all.iter().filter(|(_, n)| n != "lo").cloned().collect();
        if chosen.is_empty() {
            return Err(CaptureError::NoInterfaces { ns: ns.to_string() });
        }
        return Ok(chosen);
    }
    let mut chosen: Vec<(u32, String)> = Vec::new();
    for name in wanted {
        if chosen.iter().any(|(_, n)| n == name) {
            continue;
        }
        match all.iter().find(|(_, n)| n == name) {
            Some(found) => chosen.push(found.clone()),
            None => {
                let others: Vec<&str> = all
                    .iter()
                    .map(|(_, n)| n.as_str())
                    .filter(|n| *n != "lo")
                    .collect();
                return Err(CaptureError::InterfaceNotFound {
                    iface: name.clone(),
                    ns: ns.to_string(),
                    available: if others.is_empty() {
                        "none but lo".into()
                    } else {
                        others.join(", ")
                    },
                });
            }
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<(u32, String)> {
        ["lo", "vb1", "vb2"]
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32 + 1, n.to_string()))
            .collect()
    }

    fn names(v: &[(u32, String)]) -> Vec<&str> {
        v.iter().map(|(_, n)| n.as_str()).collect()
    }

    #[test]
    fn none_named_means_all_but_lo() {
        let chosen = choose_interfaces(&all(), &[], "bsdi").unwrap();
        assert_eq!(chosen, [(2, "vb1".to_string()), (3, "vb2".to_string())]);
        let err = choose_interfaces(&all()[..1], &[], "bsdi").unwrap_err();
        assert!(matches!(err, CaptureError::NoInterfaces { .. }), "{err}");
    }

    #[test]
    fn named_ones_in_their_order_each_once() {
        let wanted = ["vb2", "lo", "vb2"].map(String::from);
        let chosen = choose_interfaces(&all(), &wanted, "bsdi").unwrap();
        assert_eq!(names(&chosen), ["vb2", "lo"]);
    }

    #[test]
    fn an_unknown_name_lists_the_others() {
        let err = choose_interfaces(&all(), &["eth9".into()], "bsdi").unwrap_err();
        assert_eq!(
            err.to_string(),
            "interface eth9 not found in bsdi (its interfaces: vb1, vb2)"
        );
        let err = choose_interfaces(&all()[..1], &["eth9".into()], "bsdi").unwrap_err();
        assert!(
            err.to_string().ends_with("(its interfaces: none but lo)"),
            "{err}"
        );
    }
}
