//! Small tables of plain rows (requests, blueprints, batches, rounds) to and from Arrow, through
//! serde, so each table is one `#[derive(Serialize, Deserialize)]` struct and one schema.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::{ArrayWriter, ReaderBuilder};
use object_store::path::Path;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::store::{Corpus, tables::Table, writer::PartWriter};

/// Rows → one record batch of `schema` (field names are the struct's field names).
pub fn to_batch<T: Serialize>(schema: SchemaRef, rows: &[T]) -> Result<RecordBatch> {
    let mut decoder = ReaderBuilder::new(schema.clone()).build_decoder()?;
    decoder.serialize(rows)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema)))
}

/// Record batches → the bytes of one Parquet file.
pub fn parquet_bytes(batches: &[RecordBatch], schema: SchemaRef) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None)?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(buf)
}

/// Record batches → rows.
pub fn from_batches<T: DeserializeOwned>(batches: &[RecordBatch]) -> Result<Vec<T>> {
    let mut w = ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
    if refs.is_empty() {
        return Ok(vec![]);
    }
    w.write_batches(&refs)?;
    w.finish()?;
    let bytes = w.into_inner();
    serde_json::from_slice(&bytes).map_err(|e| Error::Other(format!("reading rows back: {e}")))
}

/// Appends rows to a table as one new Parquet part (visible when complete); returns the file
/// written, if any.
pub async fn append<T: Serialize>(corpus: &Corpus, table: &Table, rows: &[T]) -> Result<Vec<Path>> {
    append_to(corpus, &table.folder(0), table.file_schema(), rows).await
}

/// Appends rows of `schema` as one new Parquet part in the folder `rel`.
pub async fn append_to<T: Serialize>(
    corpus: &Corpus,
    rel: &str,
    schema: SchemaRef,
    rows: &[T],
) -> Result<Vec<Path>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let batch = to_batch(schema.clone(), rows)?;
    let mut w = PartWriter::new(corpus, rel, schema);
    w.write(&batch).await?;
    Ok(w.finish().await?.paths())
}

/// Replaces a table's rows: the new part is written first, then the old files are removed, so
/// readers see the old or the new rows complete, never neither.
pub async fn replace<T: Serialize>(corpus: &Corpus, table: &Table, rows: &[T]) -> Result<()> {
    let old = corpus.list_table(table).await?;
    append(corpus, table, rows).await?;
    corpus.remove_files(old).await
}
