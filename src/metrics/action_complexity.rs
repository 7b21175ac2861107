//! `action_complexity(messages[, weights[, code_tools]])`: the Cumulative Action Complexity (CAC)
//! of a trajectory (DESIGN.md, "Metrics").
//!
//! CAC = Σ_t c(a_t) over the tool calls a_1..a_T, with
//! c(a_t) = 1 + 0.5·ln(1 + L_t) + 1·dep_t + 1·new_t + 0.5·par_t + 1·code_t where L_t counts the
//! scalar leaves of the arguments, dep_t says the call consumes an earlier result, new_t that it
//! is the first call of its tool, par_t that its message has ≥ 2 calls, code_t that the tool runs
//! code (see [`calls`](super::calls)). `weights` is a list of six numbers replacing
//! (1, 0.5, 1, 1, 0.5, 1); `code_tools` a list of extra code-tool names.
//!
//! Worked example: one call `get_user({"id": "u_1"})` with no earlier result:
//! 1 + 0.5·ln 2 + 0 + 1 + 0 + 0 = 2.3466. A second message calling `get_order({"user": "u_1"})`
//! after a result containing `u_1`: 1 + 0.5·ln 2 + 1 + 1 = 3.3466; CAC = 5.6931.
//! No tool call: 0. NULL messages: NULL.
//!
//! ```sql
//! SELECT round, approx_percentile_cont(action_complexity(messages), 0.9) FROM trajectories GROUP BY round;
//! ```

use std::sync::Arc;

use datafusion::arrow::array::Float64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};

use super::args::{code_tools_arg, variadic_signature, weights_arg};
use super::calls::CallScan;
use super::messages::MessagesView;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ActionComplexity {
    signature: Signature,
}

impl Default for ActionComplexity {
    fn default() -> Self {
        Self {
            signature: variadic_signature(1, 3),
        }
    }
}

impl ScalarUDFImpl for ActionComplexity {
    fn name(&self) -> &str {
        "action_complexity"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let v = MessagesView::try_new(&arrays[0])?;
        let w = weights_arg(arrays.get(1))?;
        let code = code_tools_arg(arrays.get(2))?;
        let mut scan = CallScan::default();
        let out: Float64Array = (0..v.len())
            .map(|r| (!v.is_null(r)).then(|| w.total(scan.facts(&v, r, &code))))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
