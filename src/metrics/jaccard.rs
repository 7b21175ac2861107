//! `jaccard(a, b)`: similarity of two texts or two MinHash signatures.
//!
//! - two strings: the exact Jaccard similarity |A ∩ B| / |A ∪ B| of their shingle sets (word
//!   3-grams, see [`minhash`](super::minhash));
//! - two `minhash` signatures: the fraction of positions where they agree, which estimates it.
//!   Signatures of different lengths are an error.
//!
//! Two empty sets are identical (1.0). NULL in, NULL out.
//!
//! ```sql
//! SELECT jaccard('book a flight to rome', 'please book a flight to rome');  -- 0.75
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, UInt64Type};
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

fn signatures(a: &ArrayRef, b: &ArrayRef) -> Result<Float64Array> {
    let (la, lb) = (a.as_list::<i32>(), b.as_list::<i32>());
    (0..a.len())
        .map(|i| {
            if la.is_null(i) || lb.is_null(i) {
                return Ok(None);
            }
            let (x, y) = (la.value(i), lb.value(i));
            let (x, y) = (
                x.as_primitive::<UInt64Type>(),
                y.as_primitive::<UInt64Type>(),
            );
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
        let is_sig =
            |t: &DataType| matches!(t, DataType::List(f) if f.data_type() == &DataType::UInt64);
        let out = if is_sig(a.data_type()) && is_sig(b.data_type()) {
            signatures(a, b)?
        } else {
            let (x, y) = (
                StrCol::try_new(a, "jaccard(a, b): a text or a minhash signature")?,
                StrCol::try_new(b, "jaccard(a, b)")?,
            );
            (0..a.len())
                .map(|i| Some(set_similarity(&shingles(x.get(i)?), &shingles(y.get(i)?))))
                .collect()
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
