//! Typed access to JSON records with error messages that name the offending path.

use serde_json::{Map, Value};

/// Why a record was rejected.
pub type RecordResult<T> = std::result::Result<T, String>;

/// The JSON type name of a value, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value of `key` in `map`. A record has a handful of fields, and comparing that many keys
/// costs less than hashing one with the SipHash of serde_json's map (a record's readers look up
/// a dozen keys; the hashing was 2 % of ingest).
fn field<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    const SCANNED: usize = 16;
    if map.len() <= SCANNED {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// A JSON object with the path it was found at.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    /// Fields of the object read apart from `map` (the labels of
    /// [`super::openai_typed::PlainRecord`]), looked up first; a key is never in both.
    pub front: &'a [(&'static str, Value)],
    pub path: &'a str,
}

impl<'a> Obj<'a> {
    /// Views `v` as an object or says what it is instead.
    pub fn of(v: &'a Value, path: &'a str) -> RecordResult<Self> {
        match v {
            Value::Object(map) => Ok(Self {
                map,
                front: &[],
                path,
            }),
            other => Err(format!(
                "{}: expected an object, found {}",
                show(path),
                kind(other)
            )),
        }
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Sets `t`'s id from this record: its own `traj_id` when it has one, else the source's id
    /// `source_id` (e.g. the record's `id`) under the trajectory's source; without either, the
    /// content-hash id already in place stays.
    pub fn assign_id(
        &self,
        t: &mut crate::model::Trajectory,
        source_id: Option<String>,
    ) -> RecordResult<()> {
        if let Some(id) = self.str("traj_id")? {
            t.traj_id = id.to_string();
        } else if source_id.is_some() {
            t.assign_id(source_id);
        }
        Ok(())
    }

    /// This object with `front`'s fields beside those of its map.
    pub fn with_front(self, front: &'a [(&'static str, Value)]) -> Self {
        Self { front, ..self }
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.front
            .iter()
            .find_map(|(k, v)| (*k == key).then_some(v))
            .or_else(|| field(self.map, key))
            .filter(|v| !v.is_null())
    }

    /// An optional string field.
    pub fn str(&self, key: &str) -> RecordResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "{}: expected a string, found {}",
                self.at(key),
                kind(other)
            )),
        }
    }

    /// A required string field.
    pub fn req_str(&self, key: &str) -> RecordResult<&'a str> {
        self.str(key)?
            .ok_or_else(|| format!("{}: required string is missing", self.at(key)))
    }

    /// An optional array field.
    pub fn arr(&self, key: &str) -> RecordResult<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(format!(
                "{}: expected an array, found {}",
                self.at(key),
                kind(other)
            )),
        }
    }

    /// An optional number field.
    pub fn f64(&self, key: &str) -> RecordResult<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::Bool(b)) => Ok(Some(if *b { 1.0 } else { 0.0 })),
            Some(other) => Err(format!(
                "{}: expected a number, found {}",
                self.at(key),
                kind(other)
            )),
        }
    }

    /// The fields not in `known`, for `metadata`.
    pub fn rest(&self, known: &[&str]) -> Map<String, Value> {
        let front = self.front.iter().map(|(k, v)| (*k, v));
        front
            .chain(self.map.iter().map(|(k, v)| (k.as_str(), v)))
            .filter(|(k, _)| !known.contains(k))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

fn show(path: &str) -> &str {
    if path.is_empty() { "record" } else { path }
}

/// Arguments as JSON text: strings are kept verbatim, objects are serialised.
pub fn arguments_text(v: Option<&Value>, path: &str) -> RecordResult<String> {
    match v {
        None | Some(Value::Null) => Ok("{}".into()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Object(_) | Value::Array(_))) => Ok(v.to_string()),
        Some(other) => Err(format!(
            "{path}: expected arguments as an object or JSON text, found {}",
            kind(other)
        )),
    }
}

/// Parses a JSON value that some formats store as a string holding JSON (`tools` in
/// ShareGPT and xLAM, `answers` in xLAM).
/// A value that is already JSON is borrowed, not copied.
pub fn json_or_string<'a>(v: &'a Value, path: &str) -> RecordResult<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    match v {
        Value::String(s) if s.trim().is_empty() => Ok(Cow::Owned(Value::Array(vec![]))),
        Value::String(s) => serde_json::from_str(s)
            .map(Cow::Owned)
            .map_err(|e| format!("{path}: invalid JSON text: {e}")),
        other => Ok(Cow::Borrowed(other)),
    }
}
