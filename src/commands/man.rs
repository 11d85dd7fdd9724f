//! `tcplab man`: the manual page, generated from the CLI definition.

use crate::error::{Error, Result};
use clap::{Args, CommandFactory};

/// Print the manual page.
#[derive(Debug, Args)]
pub struct ManCmd {}

impl ManCmd {
    /// Run it: roff to standard output (`tcplab man | man -l -`).
    pub fn exec(&self) -> Result<i32> {
        let mut out = Vec::new();
        render(&mut out).map_err(|e| Error::io("writing the manual page", e))?;
        use std::io::Write;
        std::io::stdout()
            .write_all(&out)
            .map_err(|e| Error::io("writing the manual page", e))?;
        Ok(0)
    }
}

/// The manual page of tcplab with a section per subcommand.
pub fn render(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = super::Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let name = sub.get_name().to_string();
        writeln!(out, ".SH \"TCPLAB {}\"", name.to_uppercase())?;
        let sub = sub.clone().bin_name(format!("tcplab {name}"));
        let page = clap_mangen::Man::new(sub);
        page.render_synopsis_section(out)?;
        page.render_description_section(out)?;
        page.render_options_section(out)?;
        page.render_subcommands_section(out)?;
    }
    man.render_version_section(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_manual_names_every_command() {
        let mut out = Vec::new();
        super::render(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "roff title"
        );
        for c in [
            "up",
            "down",
            "status",
            "exec",
            "capture",
            "link",
            "experiment",
            "graph",
        ] {
            assert!(
                text.contains(&format!("TCPLAB {}", c.to_uppercase())),
                "the manual has a section for {c}"
            );
        }
    }
}
