//! The integration tests: one binary, one module per area.

mod bad_input;
mod budget;
#[cfg(feature = "cluster")]
mod cluster;
mod cluster_quality;
mod clusters;
mod common;
mod concurrency;
mod dialects;
mod durability;
mod embedding;
mod evolve;
mod evolve_real;
mod export;
mod ingest_formats;
mod ingest_real;
mod inputs;
mod labels;
mod layers;
mod metrics;
mod nothing_lost;
mod openai_typed;
mod pgo_training;
mod report;
mod round_trip;
mod s3;
mod sandbox;
mod serve;
mod sql_cli;
mod stored_metrics;
