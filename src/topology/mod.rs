//! The topology: a TOML file read into raw structs ([`raw`]), then validated into a
//! [`Topology`] model ([`model`]) in which every name resolves and every address fits.
//!
//! Nothing here touches the machine: a topology that fails validation never reaches the planner.

mod ends;
pub mod model;
pub mod raw;
mod validate;
pub use ends::resolve_ends;
pub use validate::check_lab_name;

pub use model::*;

use crate::error::{Error, Result};
use std::path::Path;

/// The course lab (Stevens, TCP/IP Illustrated Vol. 1), embedded so `tcplab up` works anywhere.
pub const BUILTIN_TCPIP: &str = include_str!("../../topologies/tcpip-illustrated.toml");
/// How the embedded topology is named in messages.
pub const BUILTIN_NAME: &str = "<builtin tcpip-illustrated>";

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Parse and validate topology text. `file` names the source in error messages.
pub fn parse(text: &str, file: &str) -> Result<Topology> {
    let raw: raw::RawTopology = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    validate::validate(raw, file, text)
}

/// Read, parse and validate a topology file.
pub fn load(path: &Path) -> Result<Topology> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Topology {
        file: file.clone(),
        place: "file".into(),
        message: format!("cannot read it: {}", e.to_string().to_lowercase()),
    })?;
    parse(&text, &file)
}

/// The built-in course topology.
pub fn builtin() -> Topology {
    parse(BUILTIN_TCPIP, BUILTIN_NAME).expect("the built-in topology is valid (checked by tests)")
}

/// Turn a TOML/serde error into one line naming file, line and column.
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> Error {
    let place = match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("line {line}, column {col}")
        }
        None => "file".to_string(),
    };
    let message = e.message().trim().replace('\n', " ");
    Error::Topology {
        file: file.into(),
        place,
        message,
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |p| offset - p - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests;
