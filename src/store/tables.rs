//! The registry of a corpus's tables: each table's name, how its files are laid out under the
//! root, and its schema. Sessions register every table from this list, writers take their folder
//! and schema from it, so a table is named and typed in one place.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::schema;

/// How a table's files are laid out in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Parquet part files directly in the folder.
    Parquet,
    /// Parquet part files in hive partitions `round=N/`; the table adds an Int32 `round`.
    ParquetByRound,
    /// JSON lines files (`*.jsonl`).
    JsonLines,
}

/// One table of a corpus.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// The table's folder under the corpus root: its name, or for a table whose contents
    /// depend on a definition, the name and the definition's version
    /// (`trajectory_metrics/v2`), so files of another version are never read as this one.
    pub dir: &'static str,
    pub layout: Layout,
    file_schema: fn() -> SchemaRef,
}

impl Table {
    /// The schema of the table's files (without a partition column).
    pub fn file_schema(&self) -> SchemaRef {
        (self.file_schema)()
    }

    /// The schema queries see: the file schema plus the partition column, if any.
    pub fn schema(&self) -> SchemaRef {
        let files = self.file_schema();
        match self.layout {
            Layout::ParquetByRound => {
                let mut fields: Vec<Field> =
                    files.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new(schema::ROUND_COLUMN, DataType::Int32, false));
                Arc::new(Schema::new(fields))
            }
            Layout::Parquet | Layout::JsonLines => files,
        }
    }

    /// The folder new files go to, relative to the root: `trajectories/round=2` for a table
    /// partitioned by round, the table's own folder otherwise.
    pub fn folder(&self, round: i32) -> String {
        match self.layout {
            Layout::ParquetByRound => format!("{}/{}={round}", self.dir, schema::ROUND_COLUMN),
            Layout::Parquet | Layout::JsonLines => self.dir.to_string(),
        }
    }

    /// The extension of the table's files.
    pub fn extension(&self) -> &'static str {
        match self.layout {
            Layout::Parquet | Layout::ParquetByRound => ".parquet",
            Layout::JsonLines => ".jsonl",
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! table {
    ($id:ident, $name:literal, $layout:ident, $schema:path, $doc:literal) => {
        table!($id, $name, $name, $layout, $schema, $doc);
    };
    ($id:ident, $name:literal, $dir:expr, $layout:ident, $schema:path, $doc:literal) => {
        #[doc = $doc]
        pub static $id: Table = Table {
            name: $name,
            dir: $dir,
            layout: Layout::$layout,
            file_schema: $schema,
        };
    };
}

/// The version of the per-trajectory metric definitions stored in `trajectory_metrics`
/// (src/metrics: reasoning mode, CAC, steps, tool sequence, user-text MinHash). Raise it when
/// a definition changes what it returns: the next use of a corpus, or `tdscale metrics
/// refresh`, then computes the table again under the new version's folder.
/// (tests/it/stored_metrics.rs pins the values of a fixed corpus to catch a forgotten raise.)
macro_rules! metrics_version {
    () => {
        "2"
    };
}

/// The version of the stored metric definitions (see `metrics_version!`).
pub const METRICS_VERSION: &str = metrics_version!();

table!(
    TRAJECTORIES,
    "trajectories",
    ParquetByRound,
    schema::trajectory_file_schema,
    "One row per trajectory (DESIGN.md's canonical schema), partitioned by evolution round."
);
table!(
    TRAJECTORY_METRICS,
    "trajectory_metrics",
    concat!("trajectory_metrics/v", metrics_version!()),
    ParquetByRound,
    schema::trajectory_metrics_file_schema,
    "Per-trajectory metrics (reasoning mode, CAC, steps, tool sequence, user-text MinHash and the \
     columns the plans read), written beside each `trajectories` part with the same file name."
);
table!(
    TOOLS,
    "tools",
    Parquet,
    schema::tools_schema,
    "Tool definitions from catalogs (and the tools offered in trajectories with `--table tools`)."
);
table!(
    REJECTS,
    "rejects",
    JsonLines,
    schema::rejects_schema,
    "Records ingest could not read, with file, line and reason."
);
table!(
    CLUSTERS,
    "clusters",
    Parquet,
    schema::clusters_schema,
    "Business clusters of the tools table."
);
table!(
    CLUSTER_EDGES,
    "cluster_edges",
    Parquet,
    schema::cluster_edges_schema,
    "Dependency edges between the tools of each cluster, with their evidence."
);
table!(
    BLUEPRINTS,
    "blueprints",
    Parquet,
    schema::blueprints_schema,
    "One row per planned synthesis."
);
table!(
    BATCHES,
    "batches",
    Parquet,
    schema::batches_schema,
    "One row per finished synthesis batch."
);
table!(
    SYNTHESIS_REJECTS,
    "synthesis_rejects",
    Parquet,
    schema::synthesis_rejects_schema,
    "Synthesized trajectories the verifier refused and requests that failed, with why."
);
table!(
    ROUNDS,
    "rounds",
    Parquet,
    schema::rounds_schema,
    "The corpus after each evolution round: counts, DE, RME, CAC percentiles, acceptance."
);
table!(
    SPLITS,
    "splits",
    Parquet,
    schema::splits_schema,
    "The train/test assignment of each trajectory."
);
table!(
    CONTAMINATION,
    "contamination",
    Parquet,
    schema::contamination_schema,
    "Training trajectories that are near-duplicates of evaluation items."
);

/// Every table of a corpus, in the order sessions register them.
pub static ALL: &[&Table] = &[
    &TRAJECTORIES,
    &TRAJECTORY_METRICS,
    &TOOLS,
    &REJECTS,
    &CLUSTERS,
    &CLUSTER_EDGES,
    &BLUEPRINTS,
    &BATCHES,
    &SYNTHESIS_REJECTS,
    &ROUNDS,
    &SPLITS,
    &CONTAMINATION,
];

/// The table called `name`.
pub fn by_name(name: &str) -> Option<&'static Table> {
    ALL.iter().copied().find(|t| t.name == name)
}
