//! Parquet input (Hugging Face datasets and the like), read row group by row group and batch by
//! batch, so memory follows the batch, not the file. Each row becomes one JSON record: nested
//! columns (`messages` as `list<struct<role, content, tool_calls…>>`, `conversations`, typed
//! content parts) become JSON as they are, a `messages` / `conversations` column holding JSON
//! text is parsed, and every other column is a field of the record (the dialect readers keep the
//! fields they do not map in `metadata`). Null fields are left out, as the datasets' readers do.
//! Rows handed over as Arrow batches (a data frame, [`super::ingest_batches`]) are read the same
//! way.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::json::WriterBuilder;
use datafusion::arrow::json::writer::LineDelimited;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::reader::{ChunkReader, Length};
use serde_json::Value;

use super::input::{Counting, RawRecord, SplitError};
use super::sources::{Input, InputKind, ObjectChunks};

/// Rows decoded at a time.
const BATCH_ROWS: usize = 1024;

/// Columns that hold the conversation: JSON text is parsed, lists are read as they are.
const CONVERSATION_COLUMNS: &[&str] = &[
    "messages",
    "conversations",
    "chosen_messages",
    "rejected_messages",
    "trajectory",
];

/// A local file whose reads are counted, for the progress bar.
struct CountingFile {
    file: File,
    count: Arc<AtomicU64>,
}

impl Length for CountingFile {
    fn len(&self) -> u64 {
        self.file.len()
    }
}

impl ChunkReader for CountingFile {
    type T = Counting<BufReader<File>>;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        Ok(Counting {
            inner: self.file.get_read(start)?,
            count: self.count.clone(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> datafusion::parquet::errors::Result<Bytes> {
        self.count
            .fetch_add(length as u64, std::sync::atomic::Ordering::Relaxed);
        self.file.get_bytes(start, length)
    }
}

/// A column type in a few words: `list<struct<role, content, tool_calls>>`, `string`.
fn short_type(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            format!("list<{}>", short_type(f.data_type()))
        }
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string().to_lowercase(),
    }
}

/// How a conversation column is read.
#[derive(Debug, Clone)]
enum Column {
    Text(String),
    Nested,
    Wrong(String, DataType),
}

/// The rows of a Parquet file, or of Arrow batches, as records.
pub struct ParquetRecords {
    reader: Box<dyn RecordBatchReader + Send>,
    /// Counts the records' JSON bytes, for rows that come from no file.
    json_bytes: Option<Arc<AtomicU64>>,
    /// What a failed read means, for its reject.
    failure: &'static str,
    columns: Vec<Column>,
    row: usize,
    max_record: usize,
    queue: VecDeque<Result<RawRecord, SplitError>>,
    failed: bool,
}

/// Opens a Parquet input; the error is the reason for the file's one reject.
pub fn open(
    input: &Input,
    count: Arc<AtomicU64>,
    max_record: usize,
) -> Result<ParquetRecords, String> {
    let reader = match &input.kind {
        InputKind::Local(p) => {
            let file = File::open(p).map_err(|e| format!("cannot open: {e}"))?;
            ParquetRecordBatchReaderBuilder::try_new(CountingFile { file, count })
                .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        }
        InputKind::Rows => return Err("rows in memory are not a Parquet file".into()),
        InputKind::Object { store, path } => {
            let chunks = ObjectChunks {
                store: store.clone(),
                path: path.clone(),
                size: input.size,
                rt: tokio::runtime::Handle::current(),
                count,
            };
            ParquetRecordBatchReaderBuilder::try_new(chunks)
                .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        }
    }
    .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let mut records = ParquetRecords::from_batches(Box::new(reader), None, max_record);
    records.failure = "Parquet file is corrupt";
    Ok(records)
}

impl ParquetRecords {
    /// The rows of `reader` as records; `json_bytes` counts the bytes of their JSON text.
    pub fn from_batches(
        reader: Box<dyn RecordBatchReader + Send>,
        json_bytes: Option<Arc<AtomicU64>>,
        max_record: usize,
    ) -> Self {
        let schema = reader.schema();
        let columns = CONVERSATION_COLUMNS
            .iter()
            .filter_map(|name| {
                let f = schema.field_with_name(name).ok()?;
                Some(match f.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                        Column::Text(name.to_string())
                    }
                    DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) => {
                        Column::Nested
                    }
                    // A `trajectory` column of another type is some other data, kept as it is.
                    _ if *name == "trajectory" => Column::Nested,
                    other => Column::Wrong(name.to_string(), other.clone()),
                })
            })
            .collect();
        ParquetRecords {
            reader,
            json_bytes,
            failure: "reading the rows failed",
            columns,
            row: 0,
            max_record,
            queue: VecDeque::new(),
            failed: false,
        }
    }

    /// The file's columns and their types, in words.
    pub fn describe(&self) -> String {
        let schema = self.reader.schema();
        let cols: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), short_type(f.data_type())))
            .collect();
        format!("Parquet with columns {}", cols.join(", "))
    }

    fn rows_of(&mut self, batch: &RecordBatch) {
        match json_lines(batch) {
            Ok(buf) => self.queue_lines(&buf),
            // Some value cannot be written as JSON: find which rows, one at a time.
            Err(_) => {
                for i in 0..batch.num_rows() {
                    match json_lines(&batch.slice(i, 1)) {
                        Ok(buf) => self.queue_lines(&buf),
                        Err(e) => {
                            self.row += 1;
                            self.queue.push_back(Err(SplitError {
                                line: self.row,
                                reason: format!("row cannot be read as JSON: {e}"),
                                text: String::new(),
                            }));
                        }
                    }
                }
            }
        }
    }

    /// Queues the records of JSON lines, one per row.
    fn queue_lines(&mut self, buf: &[u8]) {
        if let Some(count) = &self.json_bytes {
            count.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        // The writer escapes newlines inside strings, so each line is one row.
        for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.row += 1;
            let record = self.record(line);
            self.queue.push_back(record);
        }
    }

    fn record(&self, line: &[u8]) -> Result<RawRecord, SplitError> {
        let text = || String::from_utf8_lossy(line).into_owned();
        let fail = |reason: String| SplitError {
            line: self.row,
            reason,
            text: text(),
        };
        if line.len() > self.max_record {
            return Err(SplitError {
                line: self.row,
                reason: format!(
                    "row of {} bytes is over the limit of {} bytes (--max-record-mb)",
                    line.len(),
                    self.max_record
                ),
                text: String::from_utf8_lossy(&line[..line.len().min(64 << 10)]).into_owned(),
            });
        }
        for c in &self.columns {
            if let Column::Wrong(name, ty) = c {
                return Err(fail(format!(
                    "`{name}` column has type {ty}; expected JSON text or a list of messages"
                )));
            }
        }
        if !self.columns.iter().any(|c| matches!(c, Column::Text(_))) {
            return Ok(RawRecord {
                line: self.row,
                text: text(),
            });
        }
        let mut v: Value = serde_json::from_slice(line)
            .map_err(|e| fail(format!("row is not valid JSON after conversion: {e}")))?;
        for c in &self.columns {
            let Column::Text(name) = c else { continue };
            if let Some(Value::String(s)) = v.get(name.as_str())
                && s.trim_start().starts_with(['[', '{'])
            {
                let parsed: Value = serde_json::from_str(s).map_err(|e| {
                    fail(format!("`{name}` column value is not valid JSON text: {e}"))
                })?;
                v[name.as_str()] = parsed;
            }
        }
        Ok(RawRecord {
            line: self.row,
            text: v.to_string(),
        })
    }
}

/// The JSON Lines text of a batch, null fields left out.
fn json_lines(batch: &RecordBatch) -> Result<Vec<u8>, datafusion::arrow::error::ArrowError> {
    let mut buf = Vec::new();
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(false)
        .build::<_, LineDelimited>(&mut buf);
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

impl Iterator for ParquetRecords {
    type Item = Result<RawRecord, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.queue.pop_front() {
                return Some(r);
            }
            if self.failed {
                return None;
            }
            match self.reader.next()? {
                Ok(batch) => self.rows_of(&batch),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(SplitError {
                        line: self.row + 1,
                        reason: format!("{} after row {}: {e}", self.failure, self.row),
                        text: String::new(),
                    }));
                }
            }
        }
    }
}
