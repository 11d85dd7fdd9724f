//! `tcplab web [--listen ADDR:PORT] [--open]`: the lab in a browser.

use super::GlobalOpts;
use crate::error::{Error, Result};
use crate::web::{Server, WebOptions, topo::LabRef};
use clap::Args;
use std::net::SocketAddr;

/// Serve the lab's page: live topology and packets, step mode, experiments, terminals.
#[derive(Debug, Args)]
pub struct WebCmd {
    /// Address and port to listen on (another address than 127.0.0.1 lets others in, with the
    /// token)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8739")]
    pub listen: SocketAddr,
    /// Open the page in the desktop's browser (xdg-open)
    #[arg(long)]
    pub open: bool,
}

impl WebCmd {
    /// Run it: serves until Ctrl-C.
    pub async fn exec(&self, g: &GlobalOpts) -> Result<i32> {
        let program = std::env::current_exe()
            .map_err(|e| Error::io("finding the tcplab program for the terminals", e))?;
        let server = Server::bind(WebOptions {
            listen: self.listen,
            lab: LabRef {
                lab: g.lab.clone(),
                topology: g.topology.clone(),
            },
            token: None,
            program,
        })
        .await?;
        let url = server.url()?;
        if server.exposed() {
            eprintln!(
                "warning: listening on {}: anyone who can reach it and has the token gets a root \
                 shell in the lab's nodes",
                self.listen
            );
        }
        if !crate::sys::is_root() {
            eprintln!("note: not root: no live capture, experiments or terminals");
        }
        println!("tcplab web: open {url}");
        if self.open {
            let opened = std::process::Command::new("xdg-open")
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            if opened.is_err() {
                eprintln!("could not run xdg-open: open the URL above in a browser");
            }
        }
        server
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(0)
    }
}
