//! Exports of corpus data: training files (`openai`), evaluation splits (`split`) in BFCL's and
//! tau²'s formats (`bfcl`, `tau2`), contamination checks against evaluation files
//! (`decontaminate`), all written through `target` to a folder or object storage.

pub mod bfcl;
pub mod decontaminate;
pub mod openai;
pub mod sink;
pub mod split;
pub mod target;
pub mod tau2;
