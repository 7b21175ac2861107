//! The integration tests: one binary, one module per area.

mod bad_input;
mod budget;
#[cfg(feature = "cluster")]
mod cluster;
mod clusters;
mod common;
mod durability;
mod evolve;
mod export;
mod ingest_formats;
mod ingest_real;
mod layers;
mod metrics;
mod report;
mod round_trip;
mod s3;
mod sandbox;
mod sql_cli;
mod stored_metrics;
