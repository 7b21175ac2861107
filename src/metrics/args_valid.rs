//! `args_valid(arguments, parameters_schema)`: whether a call's arguments validate against the
//! tool's JSON Schema (draft detected from the schema, default 2020-12).
//!
//! Returns false when the arguments are not JSON or do not validate, NULL when either input is
//! NULL or the schema is not a valid JSON Schema (the call cannot be judged).
//!
//! ```sql
//! SELECT c.tool_name, count(*) FILTER (WHERE NOT args_valid(c.arguments, t.parameters)) AS invalid
//! FROM tool_calls c JOIN tools t ON t.name = c.tool_name GROUP BY c.tool_name;
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::messages::StrCol;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ArgsValid {
    signature: Signature,
}

impl Default for ArgsValid {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// Validates one call; `None` when the schema cannot be used.
///
/// ```
/// use tdscale::metrics::args_valid::validate;
/// let schema = r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#;
/// assert_eq!(validate(r#"{"n": 3}"#, schema), Some(true));
/// assert_eq!(validate(r#"{"n": "3"}"#, schema), Some(false));
/// assert_eq!(validate("{oops", schema), Some(false));
/// assert_eq!(validate("{}", r#"{"type": 12}"#), None);
/// ```
pub fn validate(arguments: &str, schema: &str) -> Option<bool> {
    let validator = compile(schema)?;
    Some(check(&validator, arguments))
}

/// Why a call's arguments do not validate: `None` when it does, or when the schema cannot be used
/// (a tool without a usable schema accepts any JSON object).
///
/// ```
/// # use tdscale::metrics::args_valid::argument_error;
/// let schema = r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#;
/// assert!(argument_error(r#"{"n": 2}"#, Some(schema)).is_none());
/// assert!(argument_error(r#"{"n": "two"}"#, Some(schema)).unwrap().contains("integer"));
/// ```
pub fn argument_error(arguments: &str, schema: Option<&str>) -> Option<String> {
    let args: serde_json::Value = match serde_json::from_str(arguments) {
        Ok(v) => v,
        Err(e) => return Some(format!("arguments are not JSON ({e})")),
    };
    if !args.is_object() {
        return Some("arguments are not a JSON object".into());
    }
    let schema: serde_json::Value = serde_json::from_str(schema?).ok()?;
    let validator = jsonschema::validator_for(&schema).ok()?;
    validator.validate(&args).err().map(|e| {
        let at = e.instance_path().to_string();
        if at.is_empty() {
            e.to_string()
        } else {
            format!("{at}: {e}")
        }
    })
}

fn compile(schema: &str) -> Option<jsonschema::Validator> {
    let s: serde_json::Value = serde_json::from_str(schema).ok()?;
    jsonschema::validator_for(&s).ok()
}

fn check(v: &jsonschema::Validator, arguments: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(arguments).is_ok_and(|a| v.is_valid(&a))
}

impl ScalarUDFImpl for ArgsValid {
    fn name(&self) -> &str {
        "args_valid"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let args_col = StrCol::try_new(&arrays[0], "args_valid(arguments, ..)")?;
        let schema_col = StrCol::try_new(&arrays[1], "args_valid(.., parameters_schema)")?;
        // Schemas repeat across rows (one per tool): compile each once per batch.
        let mut cache: HashMap<&str, Option<jsonschema::Validator>> = HashMap::new();
        let out: BooleanArray = (0..arrays[0].len())
            .map(|i| {
                let (a, s) = (args_col.get(i)?, schema_col.get(i)?);
                let v = cache.entry(s).or_insert_with(|| compile(s)).as_ref()?;
                Some(check(v, a))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
