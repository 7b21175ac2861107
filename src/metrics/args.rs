//! Arguments of the functions: optional scalar arguments read from the first row (weights, code
//! tools), variadic signatures, list results, and the literal arguments of table functions.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, Signature, TypeSignature, Volatility};

use super::calls;

/// The result of a list-valued function: one list per row, `lengths[r]` items each taken in order
/// from `values`, NULL where `valid` says so.
pub fn list_result(
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
pub fn variadic_signature(min: usize, max: usize) -> Signature {
    Signature::one_of(
        (min..=max).map(TypeSignature::Any).collect(),
        Volatility::Immutable,
    )
}

/// The optional weights argument (a list of six numbers, read from the first row).
pub fn weights_arg(a: Option<&ArrayRef>) -> Result<calls::Weights> {
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
pub fn code_tools_arg(a: Option<&ArrayRef>) -> Result<calls::CodeTools> {
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

/// A literal argument of a table function.
pub fn literal<'a>(args: &'a [Expr], i: usize, what: &str) -> Result<Option<&'a ScalarValue>> {
    match args.get(i) {
        None => Ok(None),
        Some(Expr::Literal(v, _)) => Ok(Some(v)),
        Some(other) => Err(DataFusionError::Plan(format!(
            "{what} must be a literal, got {other}"
        ))),
    }
}

/// An integer literal argument with a default.
pub fn int_arg(args: &[Expr], i: usize, what: &str, default: Option<i64>) -> Result<i64> {
    match literal(args, i, what)? {
        Some(v) => match v.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(x)) => Ok(x),
            _ => Err(DataFusionError::Plan(format!("{what} must be an integer"))),
        },
        None => default.ok_or_else(|| DataFusionError::Plan(format!("{what} is required"))),
    }
}

/// A float literal argument with a default.
pub fn f64_arg(args: &[Expr], i: usize, what: &str, default: f64) -> Result<f64> {
    match literal(args, i, what)? {
        Some(v) => match v.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(x)) => Ok(x),
            _ => Err(DataFusionError::Plan(format!("{what} must be a number"))),
        },
        None => Ok(default),
    }
}

/// The budget unit argument: 'trajectories' (default) or 'tokens'.
pub fn unit_arg(args: &[Expr], i: usize) -> Result<super::selection::Unit> {
    match literal(args, i, "unit")? {
        None => Ok(super::selection::Unit::Trajectories),
        Some(ScalarValue::Utf8(Some(s))) | Some(ScalarValue::Utf8View(Some(s))) => {
            super::selection::Unit::parse(s)
        }
        Some(other) => Err(DataFusionError::Plan(format!(
            "unit must be 'trajectories' or 'tokens', got {other}"
        ))),
    }
}
