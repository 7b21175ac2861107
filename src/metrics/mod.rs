//! tdscale's SQL functions: diversity and complexity metrics over trajectories.
//!
//! One function per file, each with its definition and a SQL example in its doc comment.
//! [`register`] adds them all to a DataFusion session.

pub mod messages;
pub mod tool_calls_of;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Every scalar function tdscale adds.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(tool_calls_of::ToolCallsOf::default())]
}

/// Registers every tdscale function on `ctx`.
pub fn register(ctx: &SessionContext) {
    for f in scalar_functions() {
        ctx.register_udf(f);
    }
}
