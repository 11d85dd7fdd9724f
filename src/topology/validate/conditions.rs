//! Link conditions in the file: `conditions` tables on lines and ends, and `[profiles.NAME]`.
//! Each value is read like the CLI's (`tcplab link set`), in tc's units; an error names the
//! place (`links[0].conditions.rate`) and the value.

use super::Checker;
use crate::conditions::spec::{Conditions, ConditionsUpdate};
use crate::error::{Error, Result};
use crate::topology::model::{EndConditions, Link, Node, Profile};
use crate::topology::raw::{RawConditions, RawTopology};

/// Parse one `conditions` table.
fn parse(c: &Checker, place: &str, raw: &RawConditions) -> Result<Conditions> {
    let mut update = ConditionsUpdate::default();
    for (name, value) in raw {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(c.err(
                    format!("{place}.{name}"),
                    format!("'{other}' is not a value: write it as a string such as \"100ms\""),
                ));
            }
        };
        update.set(name, &text).map_err(|e| match e {
            Error::Usage(m) => c.err(format!("{place}.{name}"), m),
            other => other,
        })?;
    }
    let mut out = Conditions::default();
    out.merge(&update);
    Ok(out)
}

fn end(node: &str, interface: &str, conditions: Conditions) -> EndConditions {
    EndConditions {
        node: node.to_string(),
        interface: interface.to_string(),
        conditions,
    }
}

/// The conditions always on: a line's table applies to both of its ends, an end's to itself.
pub(super) fn always_on(
    c: &Checker,
    raw: &RawTopology,
    links: &[Link],
) -> Result<Vec<EndConditions>> {
    let mut out = Vec::new();
    for (i, (rl, l)) in raw.links.iter().zip(links).enumerate() {
        if let Some(t) = &rl.conditions {
            let cond = parse(c, &format!("links[{i}].conditions"), t)?;
            out.push(end(&l.a.node, &l.a.interface, cond.clone()));
            out.push(end(&l.b.node, &l.b.interface, cond));
        }
        for (side, e) in [("a", &rl.a), ("b", &rl.b)] {
            if let Some(t) = &e.conditions {
                let cond = parse(c, &format!("links[{i}].{side}.conditions"), t)?;
                out.push(end(&e.node, &e.interface, cond));
            }
        }
    }
    for (name, net) in &raw.networks.0 {
        for (j, m) in net.members.iter().enumerate() {
            if let Some(t) = &m.conditions {
                let place = format!("networks.{name}.members[{j}].conditions");
                out.push(end(&m.node, &m.interface, parse(c, &place, t)?));
            }
        }
    }
    Ok(out)
}

/// The `[profiles.NAME]` tables: lines by name (both directions), ends by `NODE:IFACE`.
pub(super) fn profiles(
    c: &Checker,
    raw: &RawTopology,
    links: &[Link],
    nodes: &[Node],
) -> Result<Vec<Profile>> {
    let mut out = Vec::new();
    for (name, p) in &raw.profiles.0 {
        let mut ends = Vec::new();
        for (line, t) in &p.links {
            let place = format!("profiles.{name}.links.{line}");
            let Some(l) = links.iter().find(|l| l.name == *line) else {
                let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
                return Err(c.err(
                    place,
                    format!("no line is named '{line}' (lines: {})", names.join(", ")),
                ));
            };
            let cond = parse(c, &place, t)?;
            ends.push(end(&l.a.node, &l.a.interface, cond.clone()));
            ends.push(end(&l.b.node, &l.b.interface, cond));
        }
        for (key, t) in &p.ends {
            let place = format!("profiles.{name}.ends.\"{key}\"");
            let known = key.split_once(':').filter(|(n, i)| {
                nodes
                    .iter()
                    .any(|x| x.name == *n && x.interfaces.iter().any(|f| f.name == *i))
            });
            let Some((node, iface)) = known else {
                return Err(c.err(
                    place,
                    format!("'{key}' is not NODE:IFACE of an interface in this topology"),
                ));
            };
            ends.push(end(node, iface, parse(c, &place, t)?));
        }
        out.push(Profile {
            name: name.clone(),
            description: p.description.clone(),
            ends,
        });
    }
    Ok(out)
}
