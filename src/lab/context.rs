//! Which lab a command works on: its name, topology and record.

use crate::error::{Error, Result};
use crate::state::LabState;
use crate::topology::{self, Topology};
use std::path::Path;

/// The lab a command works on, with its topology.
pub struct LabContext {
    /// Lab name.
    pub lab: String,
    /// Its topology.
    pub topology: Topology,
    /// Where the topology came from.
    pub topology_file: String,
    /// The topology's text.
    pub topology_text: String,
    /// The lab's record, if it is (partly) up.
    pub state: Option<LabState>,
}

impl LabContext {
    /// Resolve the lab: the `topology` file (or built-in topology of that name) if given, else the record of lab `lab`, else the
    /// built-in topology. The lab's name is `lab`, else the topology's name.
    pub fn resolve(lab: Option<&str>, topology: Option<&Path>) -> Result<LabContext> {
        if let Some(lab) = lab {
            topology::check_lab_name(lab).map_err(Error::Usage)?;
        }
        let file = match topology {
            // A built-in name, unless a file of that name is there.
            Some(path)
                if !path.exists() && topology::builtin_text(&path.to_string_lossy()).is_some() =>
            {
                topology::builtin_named(&path.to_string_lossy()).transpose()?
            }
            Some(path) => {
                let (t, text) = topology::load_text(path)?;
                Some((t, path.display().to_string(), text))
            }
            None => None,
        };
        let name = match (lab, &file) {
            (Some(l), _) => l.to_string(),
            (None, Some((t, _, _))) => t.name.clone(),
            (None, None) => topology::builtin().name,
        };
        let state = LabState::load(&name)?;
        let (topology, topology_file, topology_text) = match (file, &state) {
            (Some(f), _) => f,
            (None, Some(st)) => (
                topology::parse(&st.topology_text, &st.topology_file)?,
                st.topology_file.clone(),
                st.topology_text.clone(),
            ),
            (None, None) => (
                topology::builtin(),
                topology::BUILTIN_NAME.into(),
                topology::BUILTIN_TCPIP.into(),
            ),
        };
        Ok(LabContext {
            lab: name,
            topology,
            topology_file,
            topology_text,
            state,
        })
    }

    /// The record, or a usage error saying the lab is not up.
    pub fn require_up(&self) -> Result<&LabState> {
        self.state.as_ref().ok_or_else(|| {
            let others: Vec<String> = LabState::list()
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.lab)
                .collect();
            let hint = if others.is_empty() {
                String::new()
            } else {
                format!(" (labs that are up: {})", others.join(", "))
            };
            Error::Usage(format!(
                "lab '{}' is not up: run `tcplab up` first{hint}",
                self.lab
            ))
        })
    }

    /// The record of a lab whose `up` finished, or a usage error.
    pub fn require_complete(&self) -> Result<&LabState> {
        let state = self.require_up()?;
        if !state.complete {
            return Err(Error::Usage(format!(
                "lab '{}' is only partly up: run `tcplab down` and `tcplab up`",
                self.lab
            )));
        }
        Ok(state)
    }
}
