//! ovs-vswitchd's control socket (`ovs-appctl`'s JSON-RPC, the same framing as OVSDB's), for
//! the one thing the database cannot say: Open vSwitch's own routes for tunnel packets
//! (`ovs/route/add`, `ovs/route/del`, `ovs/route/show`), plus `dpif/show` to name the
//! datapath in use.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::error::OvsError;
use super::rpc::Connection;

/// Where ovs-vswitchd writes its pid and its control socket.
const RUN_DIR: &str = "/var/run/openvswitch";
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A route of Open vSwitch's own table, for tunnel packets with packet mark `mark`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OvsRoute {
    /// Destination (a /32: the tunnel's remote address).
    pub dst: Ipv4Addr,
    /// Output bridge (its local port holds the source address).
    pub dev: String,
    /// Next hop.
    pub gateway: Ipv4Addr,
    /// Packet mark the route applies to.
    pub mark: u32,
}

/// A connection to ovs-vswitchd's control socket.
pub struct Unixctl {
    conn: Connection,
}

impl std::fmt::Debug for Unixctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unixctl")
            .field("socket", &self.conn.socket())
            .finish()
    }
}

/// The control socket of the running ovs-vswitchd (`ovs-vswitchd.<pid>.ctl`).
fn socket_path() -> Result<PathBuf, OvsError> {
    let pidfile = Path::new(RUN_DIR).join("ovs-vswitchd.pid");
    let pid = std::fs::read_to_string(&pidfile).map_err(|_| OvsError::NotRunning {
        detail: format!("no pid in {}", pidfile.display()),
    })?;
    Ok(Path::new(RUN_DIR).join(format!("ovs-vswitchd.{}.ctl", pid.trim())))
}

impl Unixctl {
    /// Connect to the running ovs-vswitchd.
    pub fn connect() -> Result<Unixctl, OvsError> {
        Ok(Unixctl {
            conn: Connection::open(&socket_path()?, IO_TIMEOUT)?,
        })
    }

    /// Run command `method` with `args`; its text output.
    fn run(
        &mut self,
        method: &str,
        args: &[String],
        during: &'static str,
    ) -> Result<String, OvsError> {
        let out = self.conn.call(method, json!(args), during)?;
        Ok(out.as_str().unwrap_or_default().to_string())
    }

    /// Add `r`. ovs-vswitchd takes the source address from the bridge's local port, which it
    /// learns a moment after the address is set: a refusal is tried again for up to 3 s.
    pub fn add_route(&mut self, r: &OvsRoute) -> Result<(), OvsError> {
        let args = vec![
            format!("{}/32", r.dst),
            r.dev.clone(),
            r.gateway.to_string(),
            format!("pkt_mark={}", r.mark),
        ];
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            match self.run("ovs/route/add", &args, "adding a tunnel route") {
                Ok(_) => return Ok(()),
                Err(OvsError::Rpc { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(OvsError::Rpc { error, .. }) => {
                    return Err(OvsError::Invalid(format!(
                        "ovs-vswitchd refused the route to {} via {} out of bridge {} ({error}): check that the bridge's address is on the next hop's subnet",
                        r.dst, r.gateway, r.dev
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Remove the route to `dst` with packet mark `mark`.
    pub fn del_route(&mut self, dst: Ipv4Addr, mark: u32) -> Result<(), OvsError> {
        let args = vec![format!("{dst}/32"), format!("pkt_mark={mark}")];
        self.run("ovs/route/del", &args, "removing a tunnel route")
            .map(|_| ())
    }

    /// The user routes with a packet mark (destination, mark, device).
    pub fn marked_routes(&mut self) -> Result<Vec<(Ipv4Addr, u32, String)>, OvsError> {
        let text = self.run("ovs/route/show", &[], "listing Open vSwitch's routes")?;
        Ok(parse_marked_routes(&text))
    }

    /// `dpif/show`: the datapaths and their ports as ovs-vswitchd sees them.
    pub fn dpif_show(&mut self) -> Result<String, OvsError> {
        self.run("dpif/show", &[], "showing the datapaths")
    }
}

/// `User: 10.0.0.2/32 MARK 7 dev br GW 10.0.0.1 SRC 10.0.0.1` lines of `ovs/route/show`.
fn parse_marked_routes(text: &str) -> Vec<(Ipv4Addr, u32, String)> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let at = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1));
            let dst = w.get(1)?.split('/').next()?.parse().ok()?;
            let mark = at("MARK")?.parse().ok()?;
            Some((dst, mark, at("dev")?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_routes_are_read_from_route_show() {
        let text = "Route Table:\nCached: 10.0.1.1/32 dev b1 SRC 10.0.1.1 local\nUser: 10.0.2.1/32 MARK 2080374784 dev lab-u1 GW 10.0.1.2 SRC 10.0.1.1\n";
        assert_eq!(
            parse_marked_routes(text),
            vec![(
                "10.0.2.1".parse().unwrap(),
                2080374784,
                "lab-u1".to_string()
            )]
        );
    }
}
