//! Writing query results as a table, CSV, JSON lines or Parquet, to stdout or a file / URL.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// Result formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    Csv,
    /// One JSON object per line.
    Json,
    /// Parquet (needs --out).
    Parquet,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Parquet => "parquet",
        }
    }
}

crate::choice::impl_choice!(
    OutputFormat,
    [
        OutputFormat::Table,
        OutputFormat::Csv,
        OutputFormat::Json,
        OutputFormat::Parquet
    ]
);

/// Writes `batches` to `w` in a text format.
pub fn write_text(
    w: &mut dyn Write,
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let table = datafusion::arrow::util::pretty::pretty_format_batches(batches)?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(w, "{}\n(0 rows)", names.join(" | "))
                    .map_err(|e| Error::io("stdout", e))?;
            } else {
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                writeln!(
                    w,
                    "{table}\n({rows} row{})",
                    if rows == 1 { "" } else { "s" }
                )
                .map_err(|e| Error::io("stdout", e))?;
            }
        }
        OutputFormat::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *w);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                writer.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(&mut *w);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        OutputFormat::Parquet => {
            return Err(Error::Usage(
                "--format parquet writes a file: add --out result.parquet".into(),
            ));
        }
    }
    Ok(())
}

/// Writes `batches` to `out` (a local path or an s3:// URL) in `format`, as one file.
pub async fn write_file(
    ctx: &SessionContext,
    out: &str,
    format: OutputFormat,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<()> {
    if out.contains("://") {
        // Object stores come from the session's registry.
    } else if let Some(parent) = std::path::Path::new(out)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    if format == OutputFormat::Table {
        let mut buf = Vec::new();
        write_text(&mut buf, format, &schema, &batches)?;
        if out.contains("://") {
            return Err(Error::Usage(
                "--format table writes only local files".into(),
            ));
        }
        return std::fs::write(out, buf).map_err(|e| Error::io(out, e));
    }
    let df = ctx.read_batches(if batches.is_empty() {
        vec![RecordBatch::new_empty(schema.clone())]
    } else {
        batches
    })?;
    let options = DataFrameWriteOptions::new().with_single_file_output(true);
    match format {
        OutputFormat::Csv => df.write_csv(out, options, None).await?,
        OutputFormat::Json => df.write_json(out, options, None).await?,
        OutputFormat::Parquet => df.write_parquet(out, options, None).await?,
        OutputFormat::Table => unreachable!("handled above"),
    };
    Ok(())
}
