//! tdscale's SQL functions: diversity and complexity metrics over trajectories (definitions in
//! DESIGN.md, "Metrics"), the helpers the plans need (`seeded_hash`, `user_text`, `minhash`, …)
//! and the selection table functions (`greedy_entropy`, `deita_select`).
//!
//! One function per file, each with its definition, a worked example and a SQL example in its
//! doc comment. [`register`] adds them all to a DataFusion session; every session tdscale opens
//! (the corpus session, the SQL sandbox excepted, and the cluster nodes) goes through it.

pub mod action_complexity;
pub mod args;
pub mod args_valid;
pub mod calls;
pub mod deita_select;
pub mod domain_entropy;
pub mod entropy;
pub mod greedy_entropy;
pub mod jaccard;
pub mod json_leaves;
pub mod lsh;
pub mod messages;
pub mod messages_text;
pub mod minhash;
pub mod normalized_entropy;
pub mod reasoning_mode;
pub mod reasoning_mode_entropy;
pub mod seeded_hash;
pub mod selection;
pub mod step_complexity;
pub mod tool_calls_of;
pub mod tool_sequence;
pub mod user_text;

use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
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
        ScalarUDF::from(seeded_hash::SeededHash::default()),
        ScalarUDF::from(user_text::UserText::default()),
        ScalarUDF::from(messages_text::MessagesText::default()),
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

/// Every table function tdscale adds, by name.
pub fn table_functions() -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        ("greedy_entropy", Arc::new(greedy_entropy::GreedyEntropy)),
        ("deita_select", Arc::new(deita_select::DeitaSelect)),
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
    for (name, f) in table_functions() {
        ctx.register_udtf(name, f);
    }
}
