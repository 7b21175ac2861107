//! Reading the cells of query results by column name, whatever numeric or string type the
//! query produced (a cast to the same type is free).

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::error::{Error, Result};

fn column(b: &RecordBatch, name: &str, ty: &DataType) -> Result<ArrayRef> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| Error::Other(format!("the query result has no column `{name}`")))?;
    Ok(datafusion::arrow::compute::cast(a, ty)?)
}

/// Column `name` as numbers, NULL as `None`.
pub fn f64s(b: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>> {
    Ok(column(b, name, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .iter()
        .collect())
}

/// Column `name` as integers, NULL as 0.
pub fn i64s(b: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    Ok(column(b, name, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

/// Column `name` as text, NULL as the empty string.
pub fn strs(b: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let a = column(b, name, &DataType::Utf8)?;
    Ok(a.as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// Column `name` as text, NULL as `None`.
pub fn opt_strs(b: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let a = column(b, name, &DataType::Utf8)?;
    Ok(a.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// The cell of row `row`, NULL as `None`.
pub fn f64_at(b: &RecordBatch, name: &str, row: usize) -> Result<Option<f64>> {
    let a = column(b, name, &DataType::Float64)?;
    let a = a.as_primitive::<Float64Type>();
    Ok((row < a.len() && !a.is_null(row)).then(|| a.value(row)))
}

/// The cell of row `row`, NULL (or no such row) as 0.
pub fn i64_at(b: &RecordBatch, name: &str, row: usize) -> Result<i64> {
    let a = column(b, name, &DataType::Int64)?;
    let a = a.as_primitive::<Int64Type>();
    Ok(if row < a.len() && !a.is_null(row) {
        a.value(row)
    } else {
        0
    })
}

/// The cell of row `row`, NULL as the empty string.
pub fn str_at(b: &RecordBatch, name: &str, row: usize) -> Result<String> {
    let a = column(b, name, &DataType::Utf8)?;
    let a = a.as_string::<i32>();
    Ok(if row < a.len() && !a.is_null(row) {
        a.value(row).to_string()
    } else {
        String::new()
    })
}
