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
            Layout::ParquetByRound => format!("{}/{}={round}", self.name, schema::ROUND_COLUMN),
            Layout::Parquet | Layout::JsonLines => self.name.to_string(),
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
        #[doc = $doc]
        pub static $id: Table = Table {
            name: $name,
            layout: Layout::$layout,
            file_schema: $schema,
        };
    };
}

table!(
    TRAJECTORIES,
    "trajectories",
    ParquetByRound,
    schema::trajectory_file_schema,
    "One row per trajectory (DESIGN.md's canonical schema), partitioned by evolution round."
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
