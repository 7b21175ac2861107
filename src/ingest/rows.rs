//! Rows of Arrow record batches (a data frame, a Hugging Face dataset) as raw JSON records.
//!
//! Each row becomes the JSON object a JSON Lines file would hold for it — lists and structs as
//! arrays and objects, null fields left out — so rows go through the same format detection and
//! parsers as files, and a row is rejected, never dropped, when it cannot be written as JSON.
//! Rows are numbered from 1 like lines.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::{LineDelimitedWriter, WriterBuilder};

use super::input::{RawRecord, SplitError};

/// The records of a stream of batches, one per row.
pub struct JsonRows {
    batches: Box<dyn RecordBatchReader + Send>,
    pending: VecDeque<Result<RawRecord, SplitError>>,
    /// Rows read so far.
    rows: usize,
    /// JSON bytes produced, for the progress bar and the summary.
    bytes: Arc<AtomicU64>,
    done: bool,
}

impl JsonRows {
    pub fn new(batches: Box<dyn RecordBatchReader + Send>, bytes: Arc<AtomicU64>) -> Self {
        Self {
            batches,
            pending: VecDeque::new(),
            rows: 0,
            bytes,
            done: false,
        }
    }

    /// Queues the records of one batch.
    fn push_batch(&mut self, batch: &RecordBatch) {
        match encode(batch) {
            Ok(lines) => {
                for text in lines {
                    self.rows += 1;
                    self.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                    self.pending.push_back(Ok(RawRecord {
                        line: self.rows,
                        text,
                    }));
                }
            }
            // Some value cannot be written: find which rows, one at a time.
            Err(_) => {
                for i in 0..batch.num_rows() {
                    self.rows += 1;
                    let item = match encode(&batch.slice(i, 1)) {
                        Ok(mut lines) if lines.len() == 1 => {
                            let text = lines.remove(0);
                            self.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                            Ok(RawRecord {
                                line: self.rows,
                                text,
                            })
                        }
                        Ok(lines) => Err(SplitError {
                            line: self.rows,
                            reason: format!("row became {} JSON lines instead of one", lines.len()),
                            text: lines.join("\n"),
                        }),
                        Err(e) => Err(SplitError {
                            line: self.rows,
                            reason: format!("row cannot be written as JSON: {e}"),
                            text: String::new(),
                        }),
                    };
                    self.pending.push_back(item);
                }
            }
        }
    }
}

/// The JSON Lines text of a batch, one string per row.
fn encode(batch: &RecordBatch) -> Result<Vec<String>, ArrowError> {
    let mut buf = Vec::new();
    let mut writer: LineDelimitedWriter<&mut Vec<u8>> = WriterBuilder::new()
        .with_explicit_nulls(false)
        .build(&mut buf);
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    // The writer escapes newlines inside strings, so each line is one row.
    let text = String::from_utf8(buf).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    Ok(text.lines().map(str::to_string).collect())
}

impl Iterator for JsonRows {
    type Item = Result<RawRecord, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.batches.next() {
                None => self.done = true,
                Some(Ok(batch)) => self.push_batch(&batch),
                Some(Err(e)) => {
                    // The stream cannot go on: say where it stopped.
                    self.done = true;
                    return Some(Err(SplitError {
                        line: self.rows + 1,
                        reason: format!("reading the rows failed after row {}: {e}", self.rows),
                        text: String::new(),
                    }));
                }
            }
        }
    }
}
