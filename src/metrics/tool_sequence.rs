//! `tool_sequence(messages)`: the names of the tools called, in order (parallel calls in the
//! order they were written). NULL messages give NULL; no calls give an empty list.
//!
//! ```sql
//! SELECT array_to_string(tool_sequence(messages), ' → ') AS path, count(*)
//! FROM trajectories GROUP BY path ORDER BY 2 DESC LIMIT 10;
//! ```

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::messages::MessagesView;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToolSequence {
    signature: Signature,
}

impl Default for ToolSequence {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, true))
}

/// Appends the names of the tools row `row` calls, in order, to `out`.
pub fn tool_names_of<'a>(v: &MessagesView<'a>, row: usize, out: &mut Vec<&'a str>) {
    for m in v.messages(row) {
        if v.role(m) == "assistant" {
            out.extend(v.calls(m).map(|c| v.call_name(c)));
        }
    }
}

impl ScalarUDFImpl for ToolSequence {
    fn name(&self) -> &str {
        "tool_sequence"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(item()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let v = MessagesView::try_new(&arrays[0])?;
        let mut names: Vec<&str> = vec![];
        let mut lengths = Vec::with_capacity(v.len());
        for r in 0..v.len() {
            let before = names.len();
            if !v.is_null(r) {
                tool_names_of(&v, r, &mut names);
            }
            lengths.push(names.len() - before);
        }
        Ok(super::args::list_result(
            item(),
            lengths,
            Arc::new(StringArray::from_iter_values(names)),
            (0..v.len()).map(|r| !v.is_null(r)),
        ))
    }
}
