//! Atomic Parquet part files: a file is visible only when it is complete.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use object_store::buffered::BufWriter;
use object_store::path::Path;

use crate::error::Result;
use crate::store::Corpus;
use crate::store::tables::Table;

/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 16 * 1024;
/// Flush a row group early when its encoded buffer grows past this many bytes, so memory
/// stays bounded whatever the size of the trajectories.
const ROW_GROUP_BYTES: usize = 64 << 20;
/// Start a new part file after this many rows.
pub const FILE_ROWS: usize = 500_000;

/// A unique name for this process's output files: time and pid, so concurrent or repeated
/// runs never collide.
pub fn run_id() -> String {
    let now = chrono::Utc::now();
    format!("{}-{}", now.format("%Y%m%dT%H%M%S%.6f"), std::process::id())
}

/// The settings of every part file: zstd level 1, row groups of [`ROW_GROUP_ROWS`].
pub fn writer_properties() -> WriterProperties {
    properties_builder().build()
}

/// [`writer_properties`] as a builder, for a table that sets some columns apart.
pub fn properties_builder() -> datafusion::parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
}

/// Writes record batches into part files `<dir>/part-<run>-<n>.parquet`, rolling to a new file
/// every [`FILE_ROWS`] rows (or as set). Each file is uploaded through a buffered multipart writer and only
/// becomes visible when [`PartWriter::finish`] (or a roll) completes it; dropping the writer or
/// killing the process leaves nothing visible.
pub struct PartWriter {
    corpus: Corpus,
    dir: String,
    schema: SchemaRef,
    run: String,
    seq: usize,
    current: Option<(AsyncArrowWriter<BufWriter>, Path)>,
    rows_in_file: usize,
    rows_per_file: usize,
    written: Vec<(Path, usize)>,
    properties: WriterProperties,
    /// Write exactly this file (relative to the root) instead of numbered parts.
    file: Option<String>,
}

impl PartWriter {
    /// A writer into `dir` (relative to the corpus root, e.g. `trajectories/round=0`).
    pub fn new(corpus: &Corpus, dir: &str, schema: SchemaRef) -> Self {
        Self {
            corpus: corpus.clone(),
            dir: dir.to_string(),
            schema,
            run: run_id(),
            seq: 0,
            current: None,
            rows_in_file: 0,
            rows_per_file: FILE_ROWS,
            written: vec![],
            properties: writer_properties(),
            file: None,
        }
    }

    /// A writer of exactly one file, `rel` (relative to the corpus root), that never rolls.
    pub fn to_file(corpus: &Corpus, rel: &str, schema: SchemaRef) -> Self {
        let mut w = Self::new(corpus, "", schema);
        w.file = Some(rel.to_string());
        w.rows_per_file = usize::MAX;
        w
    }

    /// Names the parts after `run` instead of a fresh run id, so that two writers fed the same
    /// rows produce files of the same names (a table written beside another).
    pub fn with_run_id(mut self, run: &str) -> Self {
        self.run = run.to_string();
        self
    }

    /// The run id the part names carry.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Writes with these Parquet settings instead of [`writer_properties`].
    pub fn with_properties(mut self, properties: WriterProperties) -> Self {
        self.properties = properties;
        self
    }

    /// A writer of `table`'s files (into partition `round` for a table partitioned by round).
    pub fn for_table(corpus: &Corpus, table: &Table, round: i32) -> Self {
        Self::new(corpus, &table.folder(round), table.file_schema())
    }

    /// Rolls to a new part file every `rows` rows (at batch boundaries).
    pub fn with_rows_per_file(mut self, rows: usize) -> Self {
        self.rows_per_file = rows.max(1);
        self
    }

    fn open(&mut self) -> Result<()> {
        let path = match &self.file {
            Some(rel) => self.corpus.path(rel),
            None => self.corpus.path(&format!(
                "{}/part-{}-{:04}.parquet",
                self.dir, self.run, self.seq
            )),
        };
        self.seq += 1;
        let sink = BufWriter::new(self.corpus.store(), path.clone());
        let writer =
            AsyncArrowWriter::try_new(sink, self.schema.clone(), Some(self.properties.clone()))?;
        self.current = Some((writer, path));
        self.rows_in_file = 0;
        Ok(())
    }

    /// Appends a batch.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // Split the batch so that every file but the last holds exactly `rows_per_file` rows.
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.current.is_none() {
                self.open()?;
            }
            let take = (self.rows_per_file - self.rows_in_file).min(batch.num_rows() - offset);
            let (w, _) = self.current.as_mut().expect("opened above");
            w.write(&batch.slice(offset, take)).await?;
            if w.in_progress_size() > ROW_GROUP_BYTES {
                w.flush().await?;
            }
            offset += take;
            self.rows_in_file += take;
            if self.rows_in_file >= self.rows_per_file {
                self.close_current().await?;
            }
        }
        Ok(())
    }

    async fn close_current(&mut self) -> Result<()> {
        if let Some((w, path)) = self.current.take() {
            w.close().await?;
            self.written.push((path, self.rows_in_file));
        }
        Ok(())
    }

    /// Completes the open file and returns every file written with its row count.
    pub async fn finish(mut self) -> Result<Vec<(Path, usize)>> {
        self.close_current().await?;
        Ok(std::mem::take(&mut self.written))
    }
}

/// A streaming text object (NDJSON) that becomes visible when finished.
pub struct TextWriter {
    inner: BufWriter,
    lines: usize,
}

impl TextWriter {
    /// Starts `rel` under the corpus root.
    pub fn new(corpus: &Corpus, rel: &str) -> Self {
        Self {
            inner: BufWriter::new(corpus.store(), corpus.path(rel)),
            lines: 0,
        }
    }

    /// Appends one line (a newline is added).
    pub async fn line(&mut self, text: &str) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.inner.write_all(text.as_bytes()).await?;
        self.inner.write_all(b"\n").await?;
        self.lines += 1;
        Ok(())
    }

    /// Completes the object; with no line written nothing is created.
    pub async fn finish(mut self) -> std::io::Result<usize> {
        use tokio::io::AsyncWriteExt;
        if self.lines == 0 {
            self.inner.abort().await.ok();
            return Ok(0);
        }
        self.inner.shutdown().await?;
        Ok(self.lines)
    }
}
