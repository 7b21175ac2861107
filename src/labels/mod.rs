//! Labels the data lacks (DESIGN.md, "Labels the data lacks"): real corpora rarely carry tool
//! schemas or domain labels, and synthesis and the diversity metrics need both.
//!
//! - [`infer`]: a JSON Schema of arguments and results for every tool that is called but never
//!   defined, learnt from its calls ([`shape`] is the learner);
//! - [`domains`]: a domain for every trajectory, from the clusters of the tools it calls or from a
//!   model, with `domain_source` saying which.

pub mod domains;
pub mod infer;
pub mod shape;
