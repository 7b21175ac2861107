//! Conversion between the Rust model (`model`) and Arrow record batches.
//!
//! Arrays are assembled column by column from flat vectors and offsets: faster and clearer
//! than nested `StructBuilder`s for a fixed schema.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Fields};
use datafusion::error::{DataFusionError, Result};

use crate::model::{
    CatalogTool, MESSAGE_TOKENS, Message, ToolCall, ToolDef, Trajectory, role_name, token_estimate,
    tokens_of_chars,
};
use crate::store::schema;

/// A string array, sized before it is filled: a batch's text columns hold megabytes, and
/// growing them by doubling copies every byte again.
fn strings<'a>(it: impl Iterator<Item = Option<&'a str>> + Clone) -> ArrayRef {
    let (count, bytes) = it
        .clone()
        .fold((0, 0), |(n, b), s| (n + 1, b + s.map_or(0, str::len)));
    let mut builder = StringBuilder::with_capacity(count, bytes);
    for s in it {
        builder.append_option(s);
    }
    Arc::new(builder.finish())
}

fn list(
    item_type: &DataType,
    lengths: impl IntoIterator<Item = usize>,
    values: ArrayRef,
) -> ArrayRef {
    let DataType::List(field) = item_type else {
        unreachable!("list columns are declared as DataType::List")
    };
    Arc::new(ListArray::new(
        field.clone(),
        OffsetBuffer::from_lengths(lengths),
        values,
        None,
    ))
}

fn tool_calls_array(calls: &[&ToolCall]) -> ArrayRef {
    Arc::new(StructArray::new(
        schema::tool_call_fields(),
        vec![
            strings(calls.iter().map(|c| c.id.as_deref())),
            strings(calls.iter().map(|c| Some(c.name.as_str()))),
            strings(calls.iter().map(|c| Some(c.arguments.as_str()))),
        ],
        None,
    ))
}

/// Builds the `messages` list array for a set of trajectories' message lists.
pub fn messages_array<'a>(lists: impl Iterator<Item = &'a [Message]> + Clone) -> ArrayRef {
    let mut msgs: Vec<&Message> = Vec::with_capacity(lists.clone().map(<[_]>::len).sum());
    msgs.extend(lists.clone().flatten());
    let mut calls: Vec<&ToolCall> =
        Vec::with_capacity(msgs.iter().map(|m| m.tool_calls.len()).sum());
    calls.extend(msgs.iter().flat_map(|m| m.tool_calls.iter()));
    let fields: Fields = schema::message_fields();
    let tool_calls_type = fields[3].data_type().clone();
    let message_struct = StructArray::new(
        fields,
        vec![
            strings(msgs.iter().map(|m| Some(m.role.as_ref()))),
            strings(msgs.iter().map(|m| m.content.as_deref())),
            strings(msgs.iter().map(|m| m.reasoning.as_deref())),
            list(
                &tool_calls_type,
                msgs.iter().map(|m| m.tool_calls.len()),
                tool_calls_array(&calls),
            ),
            strings(msgs.iter().map(|m| m.tool_call_id.as_deref())),
            strings(msgs.iter().map(|m| m.name.as_deref())),
            Arc::new(BooleanArray::from_iter(msgs.iter().map(|m| m.error))),
        ],
        None,
    );
    list(
        &schema::messages_type(),
        lists.map(|l| l.len()),
        Arc::new(message_struct),
    )
}

fn tools_array<'a>(lists: impl Iterator<Item = &'a [ToolDef]> + Clone) -> ArrayRef {
    let mut tools: Vec<&ToolDef> = Vec::with_capacity(lists.clone().map(<[_]>::len).sum());
    tools.extend(lists.clone().flatten());
    let tool_struct = StructArray::new(
        schema::tool_fields(),
        vec![
            strings(tools.iter().map(|t| Some(t.name.as_str()))),
            strings(tools.iter().map(|t| t.description.as_deref())),
            strings(tools.iter().map(|t| t.parameters.as_deref())),
        ],
        None,
    );
    list(
        &schema::tools_type(),
        lists.map(|l| l.len()),
        Arc::new(tool_struct),
    )
}

/// The `metadata` column's text of `m`; most records carry nothing there, and their `{}` is
/// not allocated.
fn metadata_text(m: &serde_json::Map<String, serde_json::Value>) -> std::borrow::Cow<'static, str> {
    if m.is_empty() {
        return "{}".into();
    }
    serde_json::to_string(m).map_or("{}".into(), Into::into)
}

/// The `domain_source` of a domain the data itself gave.
pub const DOMAIN_FROM_SOURCE: &str = "source";

/// Builds one `trajectories` record batch (file schema, without `round`).
pub fn trajectories_to_batch(rows: &[Trajectory]) -> Result<RecordBatch> {
    let opt = |f: fn(&Trajectory) -> &Option<String>| strings(rows.iter().map(|t| f(t).as_deref()));
    let metadata: Vec<_> = rows.iter().map(|t| metadata_text(&t.metadata)).collect();
    let system = opt(|t| &t.system);
    let messages = messages_array(rows.iter().map(|t| t.messages.as_slice()));
    let num_tokens = num_tokens(rows, &system, &messages)?;
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|t| Some(t.traj_id.as_str()))),
        strings(rows.iter().map(|t| Some(t.source.as_str()))),
        strings(rows.iter().map(|t| Some(t.format.as_str()))),
        opt(|t| &t.parent_id),
        opt(|t| &t.batch_id),
        opt(|t| &t.cluster_id),
        opt(|t| &t.domain),
        opt(|t| &t.reasoning_mode),
        system,
        tools_array(rows.iter().map(|t| t.tools.as_slice())),
        messages,
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|t| t.num_turns()),
        )),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|t| t.num_tool_calls()),
        )),
        Arc::new(num_tokens),
        Arc::new(Float64Array::from_iter(rows.iter().map(|t| t.reward))),
        strings(metadata.iter().map(|s| Some(s.as_ref()))),
        strings(rows.iter().map(|t| {
            t.domain_source
                .as_deref()
                .or(t.domain.as_ref().map(|_| DOMAIN_FROM_SOURCE))
        })),
    ];
    Ok(RecordBatch::try_new(
        schema::trajectory_file_schema(),
        columns,
    )?)
}

/// [`Trajectory::num_tokens`] of each row, counted on the row's texts as the batch holds them:
/// they were just copied there, side by side, so they are read from the cache, and a column of
/// ASCII texts needs only its offsets.
fn num_tokens(rows: &[Trajectory], system: &ArrayRef, messages: &ArrayRef) -> Result<Int64Array> {
    let messages = messages.as_list::<i32>();
    let fields = messages.values().as_struct();
    let content = text_tokens(struct_field(fields, "content")?);
    let reasoning = text_tokens(struct_field(fields, "reasoning")?);
    let calls = struct_field(fields, "tool_calls")?.as_list::<i32>();
    let call_fields = calls.values().as_struct();
    let names = text_tokens(struct_field(call_fields, "name")?);
    let arguments = text_tokens(struct_field(call_fields, "arguments")?);
    let calls_of = calls.value_offsets();
    let per_message: Vec<i64> = (0..fields.len())
        .map(|m| {
            let own = calls_of[m] as usize..calls_of[m + 1] as usize;
            MESSAGE_TOKENS
                + content[m]
                + reasoning[m]
                + own.map(|c| names[c] + arguments[c]).sum::<i64>()
        })
        .collect();
    let system = text_tokens(system);
    let messages_of = messages.value_offsets();
    Ok(Int64Array::from_iter_values(rows.iter().enumerate().map(
        |(i, t)| {
            let own = messages_of[i] as usize..messages_of[i + 1] as usize;
            system[i] + t.tools.tokens() + per_message[own].iter().sum::<i64>()
        },
    )))
}

/// The token estimate of each value of a string array (0 for a null).
fn text_tokens(a: &ArrayRef) -> Vec<i64> {
    let a = a.as_string::<i32>();
    let offsets = a.value_offsets();
    if a.values().is_ascii() {
        // One character per byte; a null's range is empty.
        offsets
            .windows(2)
            .map(|w| tokens_of_chars((w[1] - w[0]) as usize))
            .collect()
    } else {
        (0..a.len()).map(|i| token_estimate(a.value(i))).collect()
    }
}

/// Builds one `tools` record batch.
pub fn catalog_tools_to_batch(rows: &[CatalogTool]) -> Result<RecordBatch> {
    let metadata: Vec<_> = rows.iter().map(|t| metadata_text(&t.metadata)).collect();
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|t| Some(t.tool_id.as_str()))),
        strings(rows.iter().map(|t| Some(t.name.as_str()))),
        strings(rows.iter().map(|t| t.description.as_deref())),
        strings(rows.iter().map(|t| t.parameters.as_deref())),
        strings(rows.iter().map(|t| t.output_schema.as_deref())),
        strings(rows.iter().map(|t| Some(t.service.as_str()))),
        strings(rows.iter().map(|t| Some(t.source.as_str()))),
        strings(rows.iter().map(|t| Some(t.format.as_str()))),
        strings(metadata.iter().map(|s| Some(s.as_ref()))),
        strings(rows.iter().map(|t| t.domain.as_deref())),
        strings(rows.iter().map(|t| t.provenance.as_deref())),
        Arc::new(Int64Array::from_iter(
            rows.iter().map(|t| t.learned_from_calls),
        )),
    ];
    Ok(RecordBatch::try_new(schema::tools_schema(), columns)?)
}

// ---- reading back -------------------------------------------------------------------------

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Plan(format!("column `{name}` is missing")))
}

fn str_at(a: &ArrayRef, i: usize) -> Option<String> {
    str_ref_at(a, i).map(str::to_string)
}

fn str_ref_at(a: &ArrayRef, i: usize) -> Option<&str> {
    let a = a.as_string_opt::<i32>()?;
    (!a.is_null(i)).then(|| a.value(i))
}

fn struct_field<'a>(s: &'a StructArray, name: &str) -> Result<&'a ArrayRef> {
    s.column_by_name(name)
        .ok_or_else(|| DataFusionError::Plan(format!("struct field `{name}` is missing")))
}

/// Reads the messages of row `row` of a `messages` column.
pub fn messages_at(messages: &ListArray, row: usize) -> Result<Vec<Message>> {
    if messages.is_null(row) {
        return Ok(vec![]);
    }
    let values = messages.value(row);
    let s = values.as_struct();
    let (role, content, reasoning) = (
        struct_field(s, "role")?,
        struct_field(s, "content")?,
        struct_field(s, "reasoning")?,
    );
    let (tool_call_id, name) = (struct_field(s, "tool_call_id")?, struct_field(s, "name")?);
    let error = s.column_by_name("error").map(|a| a.as_boolean().clone());
    let calls = struct_field(s, "tool_calls")?.as_list::<i32>();
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        let mut tool_calls = vec![];
        if !calls.is_null(i) {
            let c = calls.value(i);
            let c = c.as_struct();
            let (id, n, args) = (
                struct_field(c, "id")?,
                struct_field(c, "name")?,
                struct_field(c, "arguments")?,
            );
            for j in 0..c.len() {
                tool_calls.push(ToolCall {
                    id: str_at(id, j),
                    name: str_at(n, j).unwrap_or_default(),
                    arguments: str_at(args, j).unwrap_or_default(),
                });
            }
        }
        out.push(Message {
            role: role_name(str_ref_at(role, i).unwrap_or_default()),
            content: str_at(content, i),
            reasoning: str_at(reasoning, i),
            tool_calls,
            tool_call_id: str_at(tool_call_id, i),
            name: str_at(name, i),
            error: error
                .as_ref()
                .and_then(|e| (!e.is_null(i)).then(|| e.value(i))),
        });
    }
    Ok(out)
}

fn tools_at(tools: &ListArray, row: usize) -> Result<Vec<ToolDef>> {
    if tools.is_null(row) {
        return Ok(vec![]);
    }
    let values = tools.value(row);
    let s = values.as_struct();
    let (n, d, p) = (
        struct_field(s, "name")?,
        struct_field(s, "description")?,
        struct_field(s, "parameters")?,
    );
    Ok((0..s.len())
        .map(|i| ToolDef {
            name: str_at(n, i).unwrap_or_default(),
            description: str_at(d, i),
            parameters: str_at(p, i),
        })
        .collect())
}

/// Reads trajectories back from a batch of the `trajectories` table. Columns that the batch
/// lacks are left empty, so a projection of the table is accepted.
pub fn batch_to_trajectories(batch: &RecordBatch) -> Result<Vec<Trajectory>> {
    let get = |name: &str| batch.column_by_name(name);
    let messages = column(batch, "messages")?.as_list::<i32>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let s = |name: &str| get(name).and_then(|a| str_at(a, row));
        let metadata = s("metadata")
            .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
            .and_then(|v| match v {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        out.push(Trajectory {
            traj_id: s("traj_id").unwrap_or_default(),
            source: s("source").unwrap_or_default(),
            format: s("format").unwrap_or_default(),
            round: get("round")
                .and_then(|a| {
                    datafusion::common::ScalarValue::try_from_array(a, row)
                        .ok()
                        .and_then(|v| v.cast_to(&DataType::Int32).ok())
                })
                .and_then(|v| match v {
                    datafusion::common::ScalarValue::Int32(x) => x,
                    _ => None,
                })
                .unwrap_or(0),
            parent_id: s("parent_id"),
            batch_id: s("batch_id"),
            cluster_id: s("cluster_id"),
            domain: s("domain"),
            domain_source: s("domain_source"),
            reasoning_mode: s("reasoning_mode"),
            system: s("system"),
            tools: match get("tools") {
                Some(t) => tools_at(t.as_list::<i32>(), row)?.into(),
                None => Default::default(),
            },
            messages: messages_at(messages, row)?,
            reward: get("reward").and_then(|a| {
                let a = a.as_primitive_opt::<datafusion::arrow::datatypes::Float64Type>()?;
                (!a.is_null(row)).then(|| a.value(row))
            }),
            metadata,
        });
    }
    Ok(out)
}
