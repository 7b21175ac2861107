//! `jaccard(a, b)`: similarity of two texts or two MinHash signatures.
//!
//! - two strings: the exact Jaccard similarity |A ∩ B| / |A ∪ B| of their shingle sets (word
//!   3-grams, see [`minhash`](super::minhash));
//! - two `minhash` signatures: the fraction of positions where they agree, which estimates it.
//!   Signatures of different lengths are an error. Lists of 64-bit values (the signatures of
//!   metrics version 1, kept in a user's own tables) compare the same way, with each other only.
//!
//! Two empty sets are identical (1.0). NULL in, NULL out.
//!
//! ```sql
//! SELECT jaccard('book a flight to rome', 'please book a flight to rome');  -- 0.75
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType, UInt32Type, UInt64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::messages::StrCol;
use super::minhash::shingles;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Jaccard {
    signature: Signature,
}

impl Default for Jaccard {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// Exact Jaccard similarity of two sorted, deduplicated sets.
pub fn set_similarity(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// Lists of `T` values, compared position by position.
fn signatures<T: ArrowPrimitiveType>(a: &ArrayRef, b: &ArrayRef) -> Result<Float64Array> {
    let (la, lb) = (a.as_list::<i32>(), b.as_list::<i32>());
    (0..a.len())
        .map(|i| {
            if la.is_null(i) || lb.is_null(i) {
                return Ok(None);
            }
            let (x, y) = (la.value(i), lb.value(i));
            let (x, y) = (x.as_primitive::<T>(), y.as_primitive::<T>());
            if x.len() != y.len() {
                return Err(DataFusionError::Execution(format!(
                    "jaccard: signatures of different lengths ({} and {})",
                    x.len(),
                    y.len()
                )));
            }
            if x.is_empty() {
                return Ok(Some(1.0));
            }
            let same = x
                .values()
                .iter()
                .zip(y.values().iter())
                .filter(|(p, q)| p == q)
                .count();
            Ok(Some(same as f64 / x.len() as f64))
        })
        .collect()
}

/// The item type of a list of signature values.
fn signature_item(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) if matches!(f.data_type(), DataType::UInt32 | DataType::UInt64) => {
            Some(f.data_type())
        }
        _ => None,
    }
}

impl ScalarUDFImpl for Jaccard {
    fn name(&self) -> &str {
        "jaccard"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (&arrays[0], &arrays[1]);
        let out = match (signature_item(a.data_type()), signature_item(b.data_type())) {
            (Some(DataType::UInt32), Some(DataType::UInt32)) => signatures::<UInt32Type>(a, b)?,
            (Some(DataType::UInt64), Some(DataType::UInt64)) => signatures::<UInt64Type>(a, b)?,
            (Some(x), Some(y)) => {
                return Err(DataFusionError::Execution(format!(
                    "jaccard: signatures of {x} and of {y} values do not compare; compute both \
                     with this version's minhash()"
                )));
            }
            _ => {
                let (x, y) = (
                    StrCol::try_new(a, "jaccard(a, b): a text or a minhash signature")?,
                    StrCol::try_new(b, "jaccard(a, b)")?,
                );
                (0..a.len())
                    .map(|i| Some(set_similarity(&shingles(x.get(i)?), &shingles(y.get(i)?))))
                    .collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
