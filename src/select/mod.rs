//! Selection: equal-budget training subsets chosen by quantity or by diversity, the training
//! files they become, and the ablation table that relates them to evaluation scores.
//!
//! Each strategy is a SQL plan in `queries/budget_<strategy>.sql`; the two greedy walks SQL
//! cannot express are table functions ([`greedy_entropy`], [`deita`]) that the plans call.

pub mod ablation;
pub mod budget;
pub mod computed;
pub mod deita;
pub mod greedy_entropy;
pub mod seeded_hash;
pub mod training;
pub mod user_text;

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Trajectories,
    Tokens,
}

impl Unit {
    /// Parses a unit name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "trajectories" => Ok(Unit::Trajectories),
            "tokens" => Ok(Unit::Tokens),
            other => Err(DataFusionError::Plan(format!(
                "unit must be 'trajectories' or 'tokens', got '{other}'"
            ))),
        }
    }

    /// The name used in plans and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Trajectories => "trajectories",
            Unit::Tokens => "tokens",
        }
    }

    /// The SQL expression of one trajectory's cost.
    pub fn cost_expr(self) -> &'static str {
        match self {
            Unit::Trajectories => "1",
            Unit::Tokens => "num_tokens",
        }
    }
}

/// The budget strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Strategy {
    Random,
    Head,
    Stratified,
    GreedyEntropy,
    Complexity,
    Deita,
}

impl Strategy {
    /// Every strategy, in the order of the ablation table.
    pub const ALL: [Strategy; 6] = [
        Strategy::Random,
        Strategy::Head,
        Strategy::Stratified,
        Strategy::GreedyEntropy,
        Strategy::Complexity,
        Strategy::Deita,
    ];

    /// The name used in subset names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Head => "head",
            Strategy::Stratified => "stratified",
            Strategy::GreedyEntropy => "greedy_entropy",
            Strategy::Complexity => "complexity",
            Strategy::Deita => "deita",
        }
    }

    /// The strategy's plan, compiled in (the same text as `queries/budget_<name>.sql`).
    pub fn plan(self) -> &'static str {
        match self {
            Strategy::Random => include_str!("../../queries/budget_random.sql"),
            Strategy::Head => include_str!("../../queries/budget_head.sql"),
            Strategy::Stratified => include_str!("../../queries/budget_stratified.sql"),
            Strategy::GreedyEntropy => include_str!("../../queries/budget_greedy_entropy.sql"),
            Strategy::Complexity => include_str!("../../queries/budget_complexity.sql"),
            Strategy::Deita => include_str!("../../queries/budget_deita.sql"),
        }
    }
}

/// Registers the selection functions: `seeded_hash`, `user_text`, and the table functions
/// `greedy_entropy` and `deita_select`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(seeded_hash::SeededHash::default()));
    ctx.register_udf(ScalarUDF::from(user_text::UserText::default()));
    ctx.register_udtf("greedy_entropy", Arc::new(greedy_entropy::GreedyEntropy));
    ctx.register_udtf("deita_select", Arc::new(deita::DeitaSelect));
}
