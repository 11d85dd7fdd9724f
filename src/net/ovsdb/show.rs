//! Reading a lab's rows back: every Bridge, Port, Interface, Controller, QoS and Queue row
//! labelled with the lab (for `tcplab ovs show`), and the OpenFlow port numbers of a bridge's
//! interfaces (to turn node names into ports in flow entries).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::bridges::lab_condition;
use super::error::OvsError;
use super::ops::{condition, decode_set, decode_uuid};
use super::{DATABASE, Ovsdb};

/// One row: its columns in OVSDB's JSON notation.
pub type RowMap = Map<String, Value>;

/// A lab's rows, by table, each row keyed by its uuid.
#[derive(Debug, Clone, Default)]
pub struct LabRows {
    /// Bridge rows.
    pub bridges: Vec<RowMap>,
    /// Port rows by uuid.
    pub ports: BTreeMap<String, RowMap>,
    /// Interface rows by uuid.
    pub interfaces: BTreeMap<String, RowMap>,
    /// Controller rows by uuid.
    pub controllers: BTreeMap<String, RowMap>,
    /// QoS rows by uuid.
    pub qos: BTreeMap<String, RowMap>,
    /// Queue rows by uuid.
    pub queues: BTreeMap<String, RowMap>,
    /// The switch's `datapath_types` and `ovs_version`.
    pub switch: RowMap,
}

/// The uuids an OVSDB reference or set of references holds.
pub fn refs(value: Option<&Value>) -> Vec<String> {
    value
        .map(|v| {
            decode_set(v)
                .into_iter()
                .filter_map(decode_uuid)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The pairs of an OVSDB map, values as text.
pub fn map_pairs(value: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Array(a)) = value else {
        return Vec::new();
    };
    match a.as_slice() {
        [tag, Value::Array(pairs)] if tag == "map" => pairs
            .iter()
            .filter_map(|p| match p.as_array().map(Vec::as_slice) {
                Some([k, v]) => Some((text(k), text(v))),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// An atom as text (a uuid as its uuid, a string without quotes).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => decode_uuid(other)
            .map(str::to_owned)
            .unwrap_or_else(|| other.to_string()),
    }
}

/// The members of an OVSDB set (an atom alone is a set of one; an empty set is empty).
pub fn set_items(value: Option<&Value>) -> Vec<String> {
    value
        .map(|v| decode_set(v).into_iter().map(text).collect())
        .unwrap_or_default()
}

impl Ovsdb {
    /// Every row labelled with `lab`, of the tables a bridge is drawn from.
    ///
    /// # Errors
    ///
    /// A connection error.
    pub fn lab_rows(&mut self, lab: &str) -> Result<LabRows, OvsError> {
        let during = "reading the lab's rows";
        let by_uuid = |rows: Vec<RowMap>| -> BTreeMap<String, RowMap> {
            rows.into_iter()
                .filter_map(|r| Some((r.get("_uuid").and_then(decode_uuid)?.to_owned(), r)))
                .collect()
        };
        let w = || lab_condition(lab);
        let mut out = LabRows {
            bridges: self.select("Bridge", w(), &[], during)?,
            ports: by_uuid(self.select("Port", w(), &[], during)?),
            interfaces: by_uuid(self.select("Interface", w(), &[], during)?),
            controllers: by_uuid(self.select("Controller", w(), &[], during)?),
            qos: by_uuid(self.select("QoS", w(), &[], during)?),
            queues: by_uuid(self.select("Queue", w(), &[], during)?),
            switch: RowMap::new(),
        };
        out.bridges.sort_by_key(|b| b.get("name").map(text));
        let cols = ["datapath_types", "ovs_version", "db_version"];
        out.switch = self
            .select(DATABASE, vec![], &cols, during)?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(out)
    }

    /// The OpenFlow port number of each interface of `names` that has one.
    ///
    /// # Errors
    ///
    /// A connection error.
    pub fn ofports(&mut self, names: &[String]) -> Result<BTreeMap<String, u16>, OvsError> {
        let mut out = BTreeMap::new();
        for name in names {
            let w = vec![condition("name", "==", name.as_str())];
            for row in self.select(
                "Interface",
                w,
                &["name", "ofport"],
                "reading OpenFlow port numbers",
            )? {
                if let Some(p) = row
                    .get("ofport")
                    .and_then(Value::as_i64)
                    .and_then(|p| u16::try_from(p).ok())
                {
                    out.insert(name.clone(), p);
                }
            }
        }
        Ok(out)
    }
}
