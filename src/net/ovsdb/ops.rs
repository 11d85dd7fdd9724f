//! OVSDB transactions in their JSON notation (RFC 7047 sections 5.1 and 5.2), knowing nothing
//! of tcplab: values (sets, maps, uuids, named uuids), conditions, mutations, rows built column
//! by column, the operations (insert, update, mutate, delete, wait, select, comment), a
//! [`Transaction`] that numbers its operations and names its inserted rows, and the
//! [`Results`] that come back.
//!
//! A row is a chain of [`Row::with`] calls, one per column: a new column is one more call in
//! the function that builds that row, and a new kind of row one small function returning a
//! [`Row`] (see `bridges.rs`).

use serde_json::{Map, Value, json};

use super::error::{OvsError, brief, one_line};

// ------------------------------------------------------------------ values

/// OVSDB `["set", [...]]`.
pub(super) fn set(items: impl IntoIterator<Item = Value>) -> Value {
    json!(["set", items.into_iter().collect::<Vec<_>>()])
}

/// OVSDB `["map", [[key, value], ...]]`.
pub(super) fn map<K: Into<Value>, V: Into<Value>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Value {
    let pairs: Vec<Value> = pairs
        .into_iter()
        .map(|(k, v)| Value::Array(vec![k.into(), v.into()]))
        .collect();
    json!(["map", pairs])
}

/// OVSDB `["uuid", uuid]`: a row that already exists.
pub(super) fn uuid(uuid: &str) -> Value {
    json!(["uuid", uuid])
}

/// OVSDB `["named-uuid", name]`: a row inserted earlier in the same transaction.
pub(super) fn named_uuid(name: &str) -> Value {
    json!(["named-uuid", name])
}

/// Members of an OVSDB set (`["set", [...]]`, or a lone atom as a set of one).
pub(super) fn decode_set(value: &Value) -> Vec<&Value> {
    match value.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(items)]) if tag == "set" => items.iter().collect(),
        _ => vec![value],
    }
}

/// The text of an OVSDB `["uuid", "..."]`.
pub(super) fn decode_uuid(value: &Value) -> Option<&str> {
    match value.as_array().map(Vec::as_slice) {
        Some([tag, Value::String(uuid)]) if tag == "uuid" => Some(uuid),
        _ => None,
    }
}

// ------------------------------------------------ conditions and mutations

/// A condition of a `where` clause: `[column, function, value]`, e.g. `==` or `includes`.
pub(super) fn condition(column: &str, function: &str, value: impl Into<Value>) -> Value {
    json!([column, function, value.into()])
}

/// A mutation: `[column, mutator, value]`, e.g. `+=`, `insert` or `delete`.
pub(super) fn mutation(column: &str, mutator: &str, value: impl Into<Value>) -> Value {
    json!([column, mutator, value.into()])
}

// -------------------------------------------------------------------- rows

/// The columns of one row, set one by one.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Row(Map<String, Value>);

impl Row {
    /// A row with no column set (the database fills in the defaults).
    pub(super) fn new() -> Self {
        Row::default()
    }

    /// The row with `column` set to `value` (already in OVSDB notation).
    pub(super) fn with(mut self, column: &str, value: impl Into<Value>) -> Self {
        self.0.insert(column.to_owned(), value.into());
        self
    }
}

impl From<Row> for Value {
    fn from(row: Row) -> Value {
        Value::Object(row.0)
    }
}

// -------------------------------------------------------------- operations

/// `insert` of `row` into `table`, named `uuid_name` for later operations of the transaction.
pub(super) fn insert(table: &str, uuid_name: &str, row: Row) -> Value {
    json!({"op": "insert", "table": table, "uuid-name": uuid_name, "row": Value::from(row)})
}

/// `update`: set the columns of `row` in every row of `table` matching `conditions`.
pub(super) fn update(table: &str, conditions: Vec<Value>, row: Row) -> Value {
    json!({"op": "update", "table": table, "where": conditions, "row": Value::from(row)})
}

/// `mutate`: apply `mutations` to every row of `table` matching `conditions`.
pub(super) fn mutate(table: &str, conditions: Vec<Value>, mutations: Vec<Value>) -> Value {
    json!({"op": "mutate", "table": table, "where": conditions, "mutations": mutations})
}

/// `delete` every row of `table` matching `conditions`.
pub(super) fn delete(table: &str, conditions: Vec<Value>) -> Value {
    json!({"op": "delete", "table": table, "where": conditions})
}

/// `wait` with timeout 0: the transaction fails at once, with the error "timed out", unless
/// `columns` of the rows of `table` matching `conditions` are exactly `rows`.
pub(super) fn wait_now(
    table: &str,
    conditions: Vec<Value>,
    columns: &[&str],
    rows: Vec<Row>,
) -> Value {
    let rows: Vec<Value> = rows.into_iter().map(Value::from).collect();
    json!({
        "op": "wait",
        "table": table,
        "where": conditions,
        "columns": columns,
        "until": "==",
        "rows": rows,
        "timeout": 0
    })
}

/// `select` of `columns` of the rows of `table` matching `conditions`.
/// An empty `columns` selects every column.
pub(super) fn select(table: &str, conditions: Vec<Value>, columns: &[&str]) -> Value {
    if columns.is_empty() {
        return json!({"op": "select", "table": table, "where": conditions});
    }
    json!({"op": "select", "table": table, "where": conditions, "columns": columns})
}

/// `comment`: text that ovsdb-server writes to its log with the transaction.
pub(super) fn comment(text: &str) -> Value {
    json!({"op": "comment", "comment": text})
}

// ------------------------------------------------------------ transactions

/// The operations of one transaction, in order; each `push` returns the operation's index,
/// which is also the index of its result.
#[derive(Debug, Default)]
pub(super) struct Transaction {
    ops: Vec<Value>,
}

impl Transaction {
    /// An empty transaction.
    pub(super) fn new() -> Self {
        Transaction::default()
    }

    /// Add an operation; returns its index.
    pub(super) fn push(&mut self, op: Value) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// Insert `row` into `table`; returns the operation's index and the `named-uuid` by which
    /// later operations of this transaction refer to the new row.
    pub(super) fn insert(&mut self, table: &str, row: Row) -> (usize, Value) {
        let name = format!("row{}", self.ops.len());
        let reference = named_uuid(&name);
        (self.push(insert(table, &name, row)), reference)
    }

    /// The operations, ready for [`Results`]-returning `transact`.
    pub(super) fn into_ops(self) -> Vec<Value> {
        self.ops
    }
}

/// The answer to a `transact`: one result per operation, and one more after them when the
/// commit itself failed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Results(pub(super) Vec<Value>);

impl Results {
    /// The first failed operation: (index, "error: details" on one line).
    pub(super) fn first_error(&self) -> Option<(usize, String)> {
        self.0.iter().enumerate().find_map(|(index, result)| {
            let error = result.get("error")?;
            if error.is_null() {
                return None;
            }
            let mut text = error.as_str().map_or_else(|| brief(error), str::to_owned);
            if let Some(details) = result.get("details").and_then(Value::as_str) {
                text.push_str(": ");
                text.push_str(details);
            }
            Some((index, one_line(&text)))
        })
    }

    /// The results, or [`OvsError::Transaction`] if an operation failed.
    pub(super) fn succeeded(self, during: &'static str) -> Result<Self, OvsError> {
        match self.first_error() {
            Some((_, error)) => Err(OvsError::Transaction { during, error }),
            None => Ok(self),
        }
    }

    /// The rows of the `select` at `index`.
    pub(super) fn rows(
        &self,
        index: usize,
        during: &'static str,
    ) -> Result<Vec<Map<String, Value>>, OvsError> {
        let bad = || OvsError::Protocol {
            during,
            detail: format!("result {index} is not a select result with rows"),
        };
        let rows = self
            .0
            .get(index)
            .and_then(|r| r.get("rows"))
            .and_then(Value::as_array)
            .ok_or_else(bad)?;
        rows.iter()
            .map(|row| row.as_object().cloned().ok_or_else(bad))
            .collect()
    }

    /// The uuid of the row inserted by the operation at `index`.
    pub(super) fn inserted_uuid(
        &self,
        index: usize,
        during: &'static str,
    ) -> Result<String, OvsError> {
        self.0
            .get(index)
            .and_then(|r| r.get("uuid"))
            .and_then(decode_uuid)
            .map(str::to_owned)
            .ok_or_else(|| OvsError::Protocol {
                during,
                detail: format!("insert result {index} without a uuid"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_rfc7047() {
        assert_eq!(set([json!(1), json!(2)]), json!(["set", [1, 2]]));
        assert_eq!(set([]), json!(["set", []]));
        assert_eq!(map([("k", "v")]), json!(["map", [["k", "v"]]]));
        assert_eq!(map([("vlan", 10)]), json!(["map", [["vlan", 10]]]));
        assert_eq!(uuid("u"), json!(["uuid", "u"]));
        assert_eq!(named_uuid("row3"), json!(["named-uuid", "row3"]));
        assert_eq!(
            decode_set(&json!(["set", [1, 2]])),
            vec![&json!(1), &json!(2)]
        );
        assert_eq!(decode_set(&json!(["set", []])), Vec::<&Value>::new());
        assert_eq!(decode_set(&json!("netdev")), vec![&json!("netdev")]);
        assert_eq!(decode_uuid(&json!(["uuid", "abc"])), Some("abc"));
        assert_eq!(decode_uuid(&json!(["named-uuid", "abc"])), None);
        assert_eq!(decode_uuid(&json!("abc")), None);
    }

    #[test]
    fn operations_have_the_rfc7047_shape() {
        let row = Row::new().with("tag", 10).with("trunks", set([json!(1)]));
        let by_name = vec![condition("name", "==", "p1")];
        assert_eq!(
            update("Port", by_name.clone(), row),
            json!({"op": "update", "table": "Port", "where": [["name", "==", "p1"]],
                   "row": {"tag": 10, "trunks": ["set", [1]]}})
        );
        assert_eq!(
            mutate("T", vec![], vec![mutation("next_cfg", "+=", 1)]),
            json!({"op": "mutate", "table": "T", "where": [], "mutations": [["next_cfg", "+=", 1]]})
        );
        assert_eq!(
            delete("Port", by_name.clone()),
            json!({"op": "delete", "table": "Port", "where": [["name", "==", "p1"]]})
        );
        assert_eq!(
            wait_now(
                "Port",
                by_name,
                &["name"],
                vec![Row::new().with("name", "p1")]
            ),
            json!({"op": "wait", "table": "Port", "where": [["name", "==", "p1"]], "columns": ["name"],
                   "until": "==", "rows": [{"name": "p1"}], "timeout": 0})
        );
        assert_eq!(
            select("T", vec![], &["a"]),
            json!({"op": "select", "table": "T", "where": [], "columns": ["a"]})
        );
        assert_eq!(comment("c"), json!({"op": "comment", "comment": "c"}));
    }

    #[test]
    fn a_transaction_numbers_operations_and_names_inserted_rows() {
        let mut tx = Transaction::new();
        assert_eq!(tx.push(comment("first")), 0);
        let (index, iface) = tx.insert("Interface", Row::new().with("name", "v0"));
        assert_eq!(index, 1);
        let (index, _) = tx.insert("Port", Row::new().with("interfaces", iface.clone()));
        assert_eq!(index, 2);
        let ops = tx.into_ops();
        assert_eq!(iface, json!(["named-uuid", "row1"]));
        assert_eq!(ops[1]["uuid-name"], "row1");
        assert_eq!(ops[2]["row"]["interfaces"], iface);
        assert_ne!(ops[1]["uuid-name"], ops[2]["uuid-name"]);
    }

    #[test]
    fn results_are_read_by_operation_index() {
        let results = Results(vec![
            json!({"uuid": ["uuid", "u1"]}),
            json!({"rows": [{"next_cfg": 42}]}),
        ]);
        assert_eq!(results.inserted_uuid(0, "t").unwrap(), "u1");
        assert!(results.inserted_uuid(1, "t").is_err());
        assert!(results.inserted_uuid(9, "t").is_err());
        assert_eq!(results.rows(1, "t").unwrap()[0]["next_cfg"], 42);
        assert!(results.rows(0, "t").is_err());
        assert!(results.rows(5, "t").is_err());
        assert!(Results(vec![json!({"rows": [1]})]).rows(0, "t").is_err());
        assert!(results.succeeded("t").is_ok());
    }

    #[test]
    fn transaction_errors_are_found_and_flattened() {
        let results = Results(vec![
            json!({}),
            json!({"error": "constraint violation", "details": "Transaction causes multiple rows\nin \"Port\" table."}),
            Value::Null,
        ]);
        let (index, text) = results.first_error().expect("an error");
        assert_eq!(index, 1);
        assert_eq!(
            text,
            "constraint violation: Transaction causes multiple rows in \"Port\" table"
        );
        let err = results.succeeded("testing").unwrap_err();
        assert!(matches!(err, OvsError::Transaction { .. }), "{err}");
        assert_eq!(
            Results(vec![json!({}), json!({"count": 1})]).first_error(),
            None
        );
        // a commit failure comes as an extra element
        assert_eq!(
            Results(vec![json!({}), json!({"error": "timed out"})])
                .first_error()
                .map(|e| e.0),
            Some(1)
        );
        assert_eq!(
            Results(vec![json!({"error": {"odd": 1}})])
                .first_error()
                .map(|e| e.1),
            Some(r#"{"odd":1}"#.to_owned())
        );
    }
}
