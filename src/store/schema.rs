//! Arrow schemas of the corpus tables (DESIGN.md, "Canonical trajectory schema").

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

/// Name of the hive partition column of `trajectories`.
pub const ROUND_COLUMN: &str = "round";

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), true)))
}

/// `Struct{id, name, arguments}` of one tool call.
pub fn tool_call_fields() -> Fields {
    Fields::from(vec![
        utf8("id", true),
        utf8("name", false),
        utf8("arguments", false),
    ])
}

/// `Struct{role, content, reasoning, tool_calls, tool_call_id, name, error}` of one message.
pub fn message_fields() -> Fields {
    Fields::from(vec![
        utf8("role", false),
        utf8("content", true),
        utf8("reasoning", true),
        Field::new("tool_calls", list_of(tool_call_fields()), true),
        utf8("tool_call_id", true),
        utf8("name", true),
        Field::new("error", DataType::Boolean, true),
    ])
}

/// `Struct{name, description, parameters}` of one offered tool.
pub fn tool_fields() -> Fields {
    Fields::from(vec![
        utf8("name", false),
        utf8("description", true),
        utf8("parameters", true),
    ])
}

/// The type of the `messages` column.
pub fn messages_type() -> DataType {
    list_of(message_fields())
}

/// The type of the `tools` column.
pub fn tools_type() -> DataType {
    list_of(tool_fields())
}

static TRAJECTORY_FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("traj_id", false),
        utf8("source", false),
        utf8("format", false),
        utf8("parent_id", true),
        utf8("batch_id", true),
        utf8("cluster_id", true),
        utf8("domain", true),
        utf8("reasoning_mode", true),
        utf8("system", true),
        Field::new("tools", tools_type(), true),
        Field::new("messages", messages_type(), true),
        Field::new("num_turns", DataType::Int32, false),
        Field::new("num_tool_calls", DataType::Int32, false),
        Field::new("num_tokens", DataType::Int64, false),
        Field::new("reward", DataType::Float64, true),
        utf8("metadata", false),
        // Added after the first corpora were written: files without it read as NULL.
        utf8("domain_source", true),
    ]))
});

/// Schema of a `trajectories` Parquet file. `round` is not in the file: it is the hive
/// partition column (`trajectories/round=N/…`) and the table adds it.
pub fn trajectory_file_schema() -> SchemaRef {
    TRAJECTORY_FILE_SCHEMA.clone()
}

static TRAJECTORY_METRICS_FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let list_of = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    Arc::new(Schema::new(vec![
        utf8("traj_id", false),
        utf8("source", false),
        utf8("format", false),
        utf8("domain", true),
        utf8("cluster_id", true),
        utf8("reasoning_mode", true),
        utf8("mode", true),
        Field::new("cac", DataType::Float64, true),
        Field::new("steps", DataType::UInt64, true),
        Field::new("num_turns", DataType::Int32, false),
        Field::new("num_tool_calls", DataType::Int32, false),
        Field::new("num_tokens", DataType::Int64, false),
        Field::new("reward", DataType::Float64, true),
        Field::new("tools_offered", DataType::UInt64, true),
        Field::new("tools_used", DataType::UInt64, true),
        Field::new("tool_sequence", list_of(DataType::Utf8), true),
        Field::new("user_minhash", list_of(DataType::UInt32), true),
    ]))
});

/// Schema of a `trajectory_metrics` Parquet file (`round` is the partition column, as in
/// `trajectories`): the columns of `sql/views/computed_trajectory_metrics.sql`, in its order.
pub fn trajectory_metrics_file_schema() -> SchemaRef {
    TRAJECTORY_METRICS_FILE_SCHEMA.clone()
}

static TOOLS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("tool_id", false),
        utf8("name", false),
        utf8("description", true),
        utf8("parameters", true),
        utf8("output_schema", true),
        utf8("service", false),
        utf8("source", false),
        utf8("format", false),
        utf8("metadata", false),
        utf8("domain", true),
        utf8("provenance", true),
        Field::new("learned_from_calls", DataType::Int64, true),
    ]))
});

/// Schema of the `tools` table (tool catalogs).
pub fn tools_schema() -> SchemaRef {
    TOOLS_SCHEMA.clone()
}

fn int32(name: &str) -> Field {
    Field::new(name, DataType::Int32, false)
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

fn float64(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}

/// The columns of a synthesis request (`seeds_next_round` and the `synthesis_requests` table).
pub fn synthesis_request_schema() -> SchemaRef {
    // All nullable: the rows come from arbitrary user SQL; a request without a seed fails alone.
    Arc::new(Schema::new(vec![
        utf8("seed_id", true),
        Field::new("round", DataType::Int32, true),
        utf8("mutation", true),
        float64("score", true),
        utf8("domain", true),
        utf8("reasoning_mode", true),
        float64("cac", true),
        utf8("cluster_id", true),
        utf8("target_domain", true),
        utf8("donor_id", true),
    ]))
}

/// `batches`: one row per finished synthesis batch.
pub fn batches_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("batch_id", false),
        int32("round"),
        int64("requested"),
        int64("accepted"),
        int64("rejected"),
        int64("failed"),
        int64("already_present"),
        utf8("backend", false),
        float64("seconds", false),
        utf8("finished_at", false),
    ]))
}

/// `blueprints`: one row per planned synthesis (steps and tools as JSON text).
pub fn blueprints_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("blueprint_id", false),
        utf8("batch_id", false),
        utf8("seed_id", false),
        int32("round"),
        utf8("mutation", false),
        utf8("domain", true),
        utf8("cluster_id", true),
        utf8("goal", false),
        utf8("persona", false),
        utf8("expected_outcome", false),
        utf8("target_mode", false),
        float64("target_complexity", false),
        utf8("steps", false),
        utf8("tools", false),
    ]))
}

/// `synthesis_rejects`: trajectories the verifier refused and requests that failed, with why.
pub fn synthesis_rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("batch_id", false),
        utf8("seed_id", false),
        int32("round"),
        utf8("stage", false),
        utf8("reasons", false),
        utf8("trajectory", true),
    ]))
}

/// `rounds`: the corpus after each evolution round (cumulative over rounds ≤ `round`).
pub fn rounds_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        int32("round"),
        utf8("strategy", false),
        utf8("batch_id", true),
        int64("trajectories"),
        int64("new_trajectories"),
        float64("de_bits", true),
        float64("rme_bits", true),
        int64("modes"),
        float64("cac_p50", true),
        float64("cac_p90", true),
        float64("cac_p99", true),
        int64("requested"),
        int64("accepted"),
        int64("rejected"),
        int64("failed"),
        float64("acceptance_rate", true),
        utf8("finished_at", false),
        // JSON object: rejection or failure kind → trajectories, most frequent first.
        utf8("rejection_reasons", true),
    ]))
}

/// `splits`: the train/test assignment of each trajectory (`tdscale split`).
pub fn splits_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("traj_id", false),
        utf8("split", false),
        utf8("stratum", false),
        // The near-duplicate group (its representative's id): a group is never split.
        utf8("group_id", false),
        Field::new("seed", DataType::Int64, false),
        float64("test_fraction", false),
    ]))
}

/// `clusters`: business clusters of the tools table.
pub fn clusters_schema() -> SchemaRef {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("cluster_id", DataType::Utf8, false),
        Field::new("service", DataType::Utf8, false),
        Field::new("domain", DataType::Utf8, false),
        // `override`, `catalog` or `taxonomy` (nullable: builds before it had none).
        Field::new("domain_source", DataType::Utf8, true),
        Field::new("size", DataType::Int64, false),
        Field::new("tool_ids", list.clone(), false),
        Field::new("tool_names", list, false),
        Field::new("internal_edges", DataType::Int64, false),
        Field::new("edge_score", DataType::Float64, true),
        Field::new("selected", DataType::Boolean, false),
        Field::new("rank", DataType::Int64, true),
        Field::new("coverage_gain", DataType::Int64, true),
        Field::new("selection_gain", DataType::Float64, true),
    ]))
}

/// `cluster_edges`: the dependency edges of each service, each with its strongest evidence
/// (`evidence_kind`: `observed_flow`, `output_schema`, `entity_id` or `description`), what
/// supports it, and for an observed flow the number of trajectories it was seen in. The columns
/// added since the first builds are nullable so those builds stay readable.
pub fn cluster_edges_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cluster_id", DataType::Utf8, false),
        // The cluster of `to_tool`: the same as `cluster_id` for an edge inside a cluster, another
        // cluster of the same service for one a split cut (nullable: builds before it had none).
        Field::new("to_cluster_id", DataType::Utf8, true),
        Field::new("from_tool", DataType::Utf8, false),
        Field::new("to_tool", DataType::Utf8, false),
        Field::new("field", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, true),
        Field::new("evidence_kind", DataType::Utf8, true),
        Field::new("entity", DataType::Utf8, true),
        Field::new("evidence", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
        Field::new("trajectories", DataType::Int64, true),
    ]))
}

/// `contamination`: training trajectories that are near-duplicates of evaluation items.
pub fn contamination_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("traj_id", false),
        utf8("eval_file", false),
        utf8("eval_id", false),
        float64("similarity", false),
        float64("threshold", false),
    ]))
}

/// `rejects`: records ingest could not read, with where they were and why (JSON lines).
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("file", false),
        Field::new("line", DataType::Int64, false),
        utf8("reason", false),
        utf8("record", false),
    ]))
}
