//! `reasoning_mode_entropy(mode)`: RME, the [`entropy`](super::entropy) in bits of the
//! reasoning-mode labels; with no label, derive one with
//! [`reasoning_mode`](super::reasoning_mode).
//!
//! Worked example: modes `S1`, `S1`, `Q>S1>A` and `P2`: RME = 1.5 bits.
//!
//! ```sql
//! SELECT reasoning_mode_entropy(coalesce(reasoning_mode, reasoning_mode(messages))) FROM trajectories;
//! ```

use datafusion::logical_expr::AggregateUDF;

use super::entropy::Entropy;

/// The aggregate.
pub fn reasoning_mode_entropy() -> AggregateUDF {
    AggregateUDF::from(Entropy::new("reasoning_mode_entropy", false))
}
