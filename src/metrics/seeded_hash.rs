//! `seeded_hash(value, seed)`: a stable 63-bit hash of a text and a seed, for reproducible
//! pseudo-random orders in SQL (`ORDER BY seeded_hash(traj_id, 7)` is a uniform shuffle that the
//! same seed repeats on any machine and any partitioning).
//!
//! ```sql
//! SELECT traj_id FROM trajectories ORDER BY seeded_hash(traj_id, ${seed}) LIMIT 100;
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::metrics::messages::StrCol;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SeededHash {
    signature: Signature,
}

impl Default for SeededHash {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// The hash itself: FNV-1a of the text, mixed with the seed by SplitMix64, top bit cleared.
///
/// ```
/// use tdscale::metrics::seeded_hash::seeded_hash;
/// assert_eq!(seeded_hash("a", 1), seeded_hash("a", 1));
/// assert_ne!(seeded_hash("a", 1), seeded_hash("a", 2));
/// assert!(seeded_hash("b", 1) >= 0);
/// ```
pub fn seeded_hash(text: &str, seed: i64) -> i64 {
    let h = crate::rng::fnv1a(text.as_bytes());
    let mut r = crate::rng::Rng::new(h ^ (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (r.next_u64() >> 1) as i64
}

impl ScalarUDFImpl for SeededHash {
    fn name(&self) -> &str {
        "seeded_hash"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let text = StrCol::try_new(&text, "seeded_hash(value, ..)")?;
        let seed = datafusion::arrow::compute::cast(&arrays[1], &DataType::Int64)?;
        let seed = seed.as_primitive::<Int64Type>();
        let out: Int64Array = (0..arrays[0].len())
            .map(|i| {
                Some(seeded_hash(
                    text.get(i)?,
                    if seed.is_null(i) { 0 } else { seed.value(i) },
                ))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
