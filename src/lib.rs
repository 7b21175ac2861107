//! tdscale: a dataflow analytics engine over corpora of tool-use agent trajectories.
//!
//! The modules are declared below in the order of the flow (DESIGN.md, "The flow"), and a module
//! uses only the ones declared before it (`tests/it/layers.rs` checks it):
//!
//! - the ground floor: [`error`], [`choice`], the canonical [`model`], [`progress`] and [`rng`];
//! - [`formats`] reads and writes every trajectory dialect and tool catalog (model only);
//! - [`metrics`] are the SQL functions, and the per-trajectory values behind them;
//! - [`store`] keeps the corpus as Parquet tables under one root (local or S3);
//! - [`ingest`] streams raw files through the formats into the store;
//! - [`query`] opens the SQL session over a corpus; [`sandbox`] runs untrusted Python and SQL;
//! - [`llm`] reaches language models (OpenAI-compatible servers, retries, a response cache);
//! - [`report`], [`clusters`] and [`select`] answer questions and pick subsets in SQL; between
//!   them [`labels`] gives the data the labels it lacks (tool schemas, trajectory domains);
//! - [`synth`] turns a request into a verified trajectory; [`evolve`] picks seeds and runs rounds;
//! - [`export`] writes training files and evaluation splits;
//! - [`generate`] makes synthetic corpora; `distributed` runs the SQL on Ballista;
//! - [`serve`] is the local web viewer of a corpus;
//! - [`cli`] is the thin command-line layer over all of it.

pub mod error;

pub mod choice;
pub mod model;
pub mod progress;
pub mod rng;

pub mod formats;

pub mod metrics;

pub mod store;

pub mod ingest;

pub mod query;

pub mod sandbox;

pub mod llm;

pub mod report;

pub mod clusters;

pub mod labels;

pub mod select;

pub mod synth;

pub mod evolve;

pub mod export;

pub mod generate;

#[cfg(feature = "cluster")]
pub mod distributed;

pub mod serve;

pub mod cli;
