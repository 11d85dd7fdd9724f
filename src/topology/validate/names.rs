//! Names: of the lab, of nodes, of interfaces (and of networks, which name bridges) and of
//! sysctls. Each check returns the message alone; the caller adds the place.

use crate::topology::IFNAME_MAX;

/// Lab and topology names: a lowercase letter, then lowercase letters and digits (at most 12),
/// so that `tcplab-<lab>-<node>` always parses back and host-side names fit in 15 bytes.
pub fn check_lab_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 12
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid lab name '{name}': use 1 to 12 lowercase letters and digits, starting with a letter"
        ))
    }
}

/// Node names: a lowercase letter, then lowercase letters, digits, '-' and '_' (at most 32).
pub(super) fn check_node_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid node name '{name}': use lowercase letters, digits, '-' and '_', starting with a letter (at most 32)"
        ))
    }
}

/// Interface names the kernel accepts and that are safe in paths and `ip` arguments.
pub(super) fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("interface name is empty".into());
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "interface name '{name}' is {} bytes long, longer than {IFNAME_MAX}",
            name.len()
        ));
    }
    if name == "lo" || name == "." || name == ".." {
        return Err(format!("interface name '{name}' is reserved"));
    }
    if name
        .chars()
        .any(|c| !c.is_ascii_graphic() || c == '/' || c == ':' || c == '%')
    {
        return Err(format!(
            "interface name '{name}' has a character tcplab refuses: use ASCII letters, digits and punctuation other than '/', ':' and '%'"
        ));
    }
    Ok(())
}

/// A sysctl key relative to /proc/sys/net: dot-separated parts of letters, digits, '_' and
/// '-' (so that it never leaves that directory).
pub(super) fn is_sysctl_name(key: &str) -> bool {
    !key.is_empty()
        && key.split('.').all(|p| {
            !p.is_empty()
                && p != ".."
                && p.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        })
}
