//! Reading stored rows back without a SQL session: a table's id column for the duplicate check,
//! or the rows of a small table. Each Parquet file is streamed row group by row group with only
//! the wanted columns decoded.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::de::DeserializeOwned;

use super::Corpus;
use crate::error::Result;

/// A Parquet file in an object store, read by byte ranges.
pub(super) struct StoreFile {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) path: Path,
    pub(super) size: u64,
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A 128-bit key of an id, so that sets of known ids stay small for large corpora.
pub fn id_key(id: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut a = std::collections::hash_map::DefaultHasher::new();
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (0u8, id).hash(&mut a);
    (1u8, id).hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// Calls `f` with every batch of the Parquet files `files`, decoding only `columns` (all when
/// `None`).
pub async fn for_each_batch(
    corpus: &Corpus,
    files: &[ObjectMeta],
    columns: Option<&[&str]>,
    mut f: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    for meta in files
        .iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
    {
        let reader = StoreFile {
            store: corpus.store(),
            path: meta.location.clone(),
            size: meta.size,
        };
        let mut builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        if let Some(cols) = columns {
            let mask = ProjectionMask::columns(builder.parquet_schema(), cols.iter().copied());
            builder = builder.with_projection(mask);
        }
        let mut stream = builder.build()?;
        while let Some(batch) = stream.try_next().await? {
            f(batch)?;
        }
    }
    Ok(())
}

/// The batches of one Parquet file, decoding only the top-level `columns` it has (all when
/// `None`), `batch_rows` rows at a time.
pub async fn file_batches(
    corpus: &Corpus,
    meta: &ObjectMeta,
    columns: Option<&[&str]>,
    batch_rows: usize,
) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch>>> {
    let reader = StoreFile {
        store: corpus.store(),
        path: meta.location.clone(),
        size: meta.size,
    };
    let mut builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await?
        .with_batch_size(batch_rows);
    if let Some(cols) = columns {
        let roots: Vec<usize> = builder
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| cols.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        builder = builder.with_projection(mask);
    }
    Ok(builder.build()?.map_err(crate::error::Error::from).boxed())
}

/// Calls `f` with every value of the string column `column` of a table's files.
pub async fn for_each_string(
    corpus: &Corpus,
    files: &[ObjectMeta],
    column: &str,
    mut f: impl FnMut(&str),
) -> Result<()> {
    for_each_batch(corpus, files, Some(&[column]), |batch| {
        if let Some(col) = batch.column_by_name(column) {
            let col = datafusion::arrow::compute::cast(col, &DataType::Utf8)?;
            col.as_string::<i32>().iter().flatten().for_each(&mut f);
        }
        Ok(())
    })
    .await
}

/// Every row of the Parquet files under `rel` (a folder relative to the root), as `T`.
pub async fn rows<T: DeserializeOwned>(corpus: &Corpus, rel: &str) -> Result<Vec<T>> {
    let files = corpus.list(rel).await?;
    let mut batches = vec![];
    for_each_batch(corpus, &files, None, |b| {
        batches.push(b);
        Ok(())
    })
    .await?;
    super::rows::from_batches(&batches)
}
