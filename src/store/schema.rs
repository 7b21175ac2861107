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
    ]))
});

/// Schema of a `trajectories` Parquet file. `round` is not in the file: it is the hive
/// partition column (`trajectories/round=N/…`) and the table adds it.
pub fn trajectory_file_schema() -> SchemaRef {
    TRAJECTORY_FILE_SCHEMA.clone()
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
    ]))
});

/// Schema of the `tools` table (tool catalogs).
pub fn tools_schema() -> SchemaRef {
    TOOLS_SCHEMA.clone()
}
