//! `normalized_entropy(x)`: [`entropy`](super::entropy) divided by log2 K, K the number of
//! distinct non-NULL values; 0 when K ≤ 1, NULL for a group with no non-NULL value. 1 means the
//! values are spread evenly over the values that occur.
//!
//! Worked example: a, a, b, c: H = 1.5 bits, K = 3, 1.5 / log2 3 = 0.9464.
//!
//! ```sql
//! SELECT source, normalized_entropy(reasoning_mode(messages)) FROM trajectories GROUP BY source;
//! ```

use datafusion::logical_expr::AggregateUDF;

use super::entropy::Entropy;

/// The aggregate.
pub fn normalized_entropy() -> AggregateUDF {
    AggregateUDF::from(Entropy::new("normalized_entropy", true))
}
