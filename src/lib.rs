//! tdscale: a dataflow analytics engine over corpora of tool-use agent trajectories.
//!
//! The modules follow the flow of data: [`ingest`] parses raw corpora into the canonical
//! [`model`], [`store`] keeps them as Parquet tables under one root, [`query`] opens a SQL
//! session over the tables with the [`metrics`] functions registered, [`report`] turns the
//! metrics into the diversity report, [`select`] picks training subsets, [`evolve`] picks seeds
//! in SQL and [`synth`] turns them into new trajectories, and [`export`] writes results back out. [`cli`] is the thin command-line layer over all of it.

pub mod cli;
pub mod clusters;
#[cfg(feature = "cluster")]
pub mod distributed;
pub mod error;
pub mod evolve;
pub mod export;
pub mod generate;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod query;
pub mod report;
pub mod sandbox;
pub mod select;
pub mod store;
pub mod synth;
