//! tdscale's SQL functions: diversity and complexity metrics over trajectories
//! (definitions in DESIGN.md, "Metrics").
//!
//! One function per file, each with its definition, a worked example and a SQL example in its
//! doc comment. [`register`] adds them all to a DataFusion session.

pub mod action_complexity;
pub mod args_valid;
pub mod calls;
pub mod domain_entropy;
pub mod entropy;
pub mod jaccard;
pub mod json_leaves;
pub mod lsh;
pub mod messages;
pub mod minhash;
pub mod normalized_entropy;
pub mod reasoning_mode;
pub mod reasoning_mode_entropy;
pub mod step_complexity;
pub mod tool_calls_of;
pub mod tool_sequence;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, Signature, TypeSignature, Volatility};
use datafusion::prelude::SessionContext;

/// Every scalar function tdscale adds.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(tool_calls_of::ToolCallsOf::default()),
        ScalarUDF::from(reasoning_mode::ReasoningMode::default()),
        ScalarUDF::from(action_complexity::ActionComplexity::default()),
        ScalarUDF::from(step_complexity::StepComplexity::default()),
        ScalarUDF::from(tool_sequence::ToolSequence::default()),
        ScalarUDF::from(minhash::MinHash::default()),
        ScalarUDF::from(jaccard::Jaccard::default()),
        ScalarUDF::from(args_valid::ArgsValid::default()),
    ]
}

/// Every aggregate function tdscale adds.
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(entropy::Entropy::default()),
        normalized_entropy::normalized_entropy(),
        domain_entropy::domain_entropy(),
        reasoning_mode_entropy::reasoning_mode_entropy(),
    ]
}

/// Registers every tdscale function on `ctx`.
pub fn register(ctx: &SessionContext) {
    for f in scalar_functions() {
        ctx.register_udf(f);
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f);
    }
}

/// The result of a list-valued function: one list per row, `lengths[r]` items each taken in order
/// from `values`, NULL where `valid` says so.
pub(crate) fn list_result(
    item: std::sync::Arc<datafusion::arrow::datatypes::Field>,
    lengths: Vec<usize>,
    values: ArrayRef,
    valid: impl Iterator<Item = bool>,
) -> datafusion::logical_expr::ColumnarValue {
    use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
    let list = datafusion::arrow::array::ListArray::new(
        item,
        OffsetBuffer::from_lengths(lengths),
        values,
        Some(NullBuffer::from_iter(valid)),
    );
    datafusion::logical_expr::ColumnarValue::Array(std::sync::Arc::new(list))
}

/// A signature taking `min..=max` arguments of any type.
pub(crate) fn variadic_signature(min: usize, max: usize) -> Signature {
    Signature::one_of(
        (min..=max).map(TypeSignature::Any).collect(),
        Volatility::Immutable,
    )
}

/// The optional weights argument (a list of six numbers, read from the first row).
pub(crate) fn weights_arg(a: Option<&ArrayRef>) -> Result<calls::Weights> {
    let Some(a) = a else {
        return Ok(calls::Weights::default());
    };
    if a.is_empty() || a.is_null(0) {
        return Ok(calls::Weights::default());
    }
    let DataType::List(_) = a.data_type() else {
        return Err(DataFusionError::Execution(format!(
            "weights must be a list of 6 numbers, e.g. [1, 0.5, 1, 1, 0.5, 1]; found {}",
            a.data_type()
        )));
    };
    let item = a.as_list::<i32>().value(0);
    let item = datafusion::arrow::compute::cast(&item, &DataType::Float64)?;
    let w: Vec<f64> = item
        .as_primitive::<Float64Type>()
        .iter()
        .map(|x| x.unwrap_or(0.0))
        .collect();
    calls::Weights::from_slice(&w).ok_or_else(|| {
        DataFusionError::Execution(format!(
            "weights must be a list of 6 numbers (base, leaves, dep, new, par, code); got {}",
            w.len()
        ))
    })
}

/// The optional list of extra code-tool names (read from the first row).
pub(crate) fn code_tools_arg(a: Option<&ArrayRef>) -> Result<calls::CodeTools> {
    let Some(a) = a else {
        return Ok(calls::CodeTools::default());
    };
    if a.is_empty() || a.is_null(0) {
        return Ok(calls::CodeTools::default());
    }
    let extra: Vec<String> = match a.data_type() {
        DataType::List(_) => {
            let item =
                datafusion::arrow::compute::cast(&a.as_list::<i32>().value(0), &DataType::Utf8)?;
            item.as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect()
        }
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
            let s = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
            s.as_string::<i32>()
                .value(0)
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        }
        other => {
            return Err(DataFusionError::Execution(format!(
                "code_tools must be a list of tool names, found {other}"
            )));
        }
    };
    Ok(calls::CodeTools { extra })
}
