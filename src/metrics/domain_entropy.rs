//! `domain_entropy(domain)`: DE, the [`entropy`](super::entropy) in bits of the domain labels of a
//! set of trajectories. NULL labels are ignored.
//!
//! Worked example: 4 trajectories labelled airline, airline, retail, telecom: DE = 1.5 bits.
//!
//! ```sql
//! SELECT round, domain_entropy(domain) AS de FROM trajectories GROUP BY round ORDER BY round;
//! ```

use datafusion::logical_expr::AggregateUDF;

use super::entropy::Entropy;

/// The aggregate.
pub fn domain_entropy() -> AggregateUDF {
    AggregateUDF::from(Entropy::new("domain_entropy", false))
}
