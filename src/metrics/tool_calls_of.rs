//! `tool_calls_of(messages)`: the calls of a trajectory paired with their results.
//!
//! Returns `List<Struct{msg_index, call_index, id, name, arguments, result, is_error}>`:
//! `msg_index` is the 0-based position of the assistant message, `call_index` the 0-based
//! ordinal of the call in the trajectory, `result` the content of the tool message that answered
//! it (NULL when none did) and `is_error` whether that result is an error (see
//! [`is_error_text`](super::messages::is_error_text); NULL without a result).
//!
//! ```sql
//! SELECT traj_id, c['name'], c['is_error']
//! FROM (SELECT traj_id, unnest(tool_calls_of(messages)) AS c FROM trajectories);
//! ```
//! The `tool_calls` view in `sql/views/` is exactly this.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, StringArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::messages::{MessagesView, pair_calls};

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToolCallsOf {
    signature: Signature,
}

impl Default for ToolCallsOf {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn item_fields() -> Fields {
    Fields::from(vec![
        Field::new("msg_index", DataType::Int32, false),
        Field::new("call_index", DataType::Int32, false),
        Field::new("id", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("arguments", DataType::Utf8, true),
        Field::new("result", DataType::Utf8, true),
        Field::new("is_error", DataType::Boolean, true),
    ])
}

fn return_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(item_fields()),
        true,
    )))
}

impl ScalarUDFImpl for ToolCallsOf {
    fn name(&self) -> &str {
        "tool_calls_of"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(return_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let v = MessagesView::try_new(&arrays[0])?;
        let (mut msg_index, mut call_index) = (vec![], vec![]);
        let (mut id, mut name, mut arguments, mut result, mut is_error) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut lengths = Vec::with_capacity(v.len());
        for row in 0..v.len() {
            if v.is_null(row) {
                lengths.push(0);
                continue;
            }
            let first = v.messages(row).start;
            let paired = pair_calls(&v, row);
            lengths.push(paired.len());
            for (k, p) in paired.iter().enumerate() {
                msg_index.push((p.message - first) as i32);
                call_index.push(k as i32);
                id.push(v.call_id(p.call));
                name.push(Some(v.call_name(p.call)));
                arguments.push(Some(v.call_args(p.call)));
                result.push(p.result.map(|m| v.content(m).unwrap_or("")));
                is_error.push(p.result.map(|m| v.is_error(m)));
            }
        }
        let values = StructArray::new(
            item_fields(),
            vec![
                Arc::new(Int32Array::from(msg_index)) as ArrayRef,
                Arc::new(Int32Array::from(call_index)),
                Arc::new(StringArray::from(id)),
                Arc::new(StringArray::from(name)),
                Arc::new(StringArray::from(arguments)),
                Arc::new(StringArray::from(result)),
                Arc::new(BooleanArray::from(is_error)),
            ],
            None,
        );
        let DataType::List(f) = return_type() else {
            unreachable!("return_type is a list")
        };
        Ok(super::args::list_result(
            f,
            lengths,
            Arc::new(values),
            (0..v.len()).map(|r| !v.is_null(r)),
        ))
    }
}
