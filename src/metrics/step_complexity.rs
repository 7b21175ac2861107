//! `step_complexity(messages[, weights[, code_tools]])`: the list of c(a_t), one per tool call in
//! order (see [`action_complexity`](super::action_complexity)), so that the running CAC is a
//! window sum over the unnested steps. Its sum is `action_complexity(messages)`.
//!
//! ```sql
//! SELECT traj_id, step, sum(c) OVER (PARTITION BY traj_id ORDER BY step) AS running_cac
//! FROM (SELECT traj_id, unnest(generate_series(1, array_length(step_complexity(messages)))) AS step,
//!              unnest(step_complexity(messages)) AS c FROM trajectories);
//! ```

use std::sync::Arc;

use datafusion::arrow::array::Float64Array;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};

use super::args::{code_tools_arg, list_result, variadic_signature, weights_arg};
use super::calls::CallScan;
use super::messages::MessagesView;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StepComplexity {
    signature: Signature,
}

impl Default for StepComplexity {
    fn default() -> Self {
        Self {
            signature: variadic_signature(1, 3),
        }
    }
}

fn item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float64, true))
}

impl ScalarUDFImpl for StepComplexity {
    fn name(&self) -> &str {
        "step_complexity"
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
        let w = weights_arg(arrays.get(1))?;
        let code = code_tools_arg(arrays.get(2))?;
        let mut scan = CallScan::default();
        let mut values = vec![];
        let mut lengths = Vec::with_capacity(v.len());
        for r in 0..v.len() {
            let before = values.len();
            if !v.is_null(r) {
                values.extend(scan.facts(&v, r, &code).iter().map(|f| w.step(f)));
            }
            lengths.push(values.len() - before);
        }
        Ok(list_result(
            item(),
            lengths,
            Arc::new(Float64Array::from(values)),
            (0..v.len()).map(|r| !v.is_null(r)),
        ))
    }
}
