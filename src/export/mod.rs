//! Exports of corpus data to files and object storage.

pub mod openai;
pub mod sink;
