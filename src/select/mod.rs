//! Selection: equal-budget training subsets chosen by quantity or by diversity, the training
//! files they become, and the ablation table that relates them to evaluation scores.
//!
//! Each strategy is a SQL plan in `queries/budget_<strategy>.sql`; the two greedy walks SQL
//! cannot express are table functions (`greedy_entropy`, `deita_select` in [`crate::metrics`])
//! that the plans call.

pub mod ablation;
pub mod budget;

pub use crate::metrics::selection::Unit;

/// The budget strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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

crate::choice::impl_choice!(
    Strategy,
    [
        Strategy::Random,
        Strategy::Head,
        Strategy::Stratified,
        Strategy::GreedyEntropy,
        Strategy::Complexity,
        Strategy::Deita,
    ]
);
