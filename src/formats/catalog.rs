//! Tool catalogs for the `tools` table: MCP `tools/list` results (bare `{"tools": [..]}` or the
//! whole JSON-RPC response), OpenAI `tools` arrays, and BFCL function docs (one JSON object per
//! line, BFCL's type dialect mapped to JSON Schema).

use serde_json::Value;

use super::fields::{Obj, RecordResult, kind};
use super::{ParseContext, tool_schema};
use crate::model::CatalogTool;

fn is_tool(v: &Value) -> bool {
    let Value::Object(m) = v else { return false };
    (m.contains_key("name")
        && (m.contains_key("parameters")
            || m.contains_key("inputSchema")
            || m.contains_key("input_schema")))
        || (m.get("type").and_then(Value::as_str) == Some("function") && m.contains_key("function"))
}

fn tool_list(v: &Value) -> Option<&Vec<Value>> {
    v.get("tools")
        .or_else(|| v.pointer("/result/tools"))
        .and_then(Value::as_array)
}

/// True when a record is (or holds) tool definitions and no conversation.
pub fn looks_like(v: &Value) -> bool {
    is_tool(v)
        || tool_list(v).is_some_and(|t| t.is_empty() || t.iter().any(is_tool))
            && v.get("messages").is_none()
}

/// Parses one catalog record into tools. The service is the MCP server's name when the record
/// names one (`server`, `serverInfo.name`), else the context's source (the file name).
///
/// A catalog is read tool by tool: a tool that cannot be read is returned as an error with its
/// own text (for the rejects file) and does not take the rest of its catalog down with it.
pub fn parse(ctx: &ParseContext, v: &Value) -> RecordResult<Vec<ToolResult>> {
    let (items, service, path): (Vec<&Value>, String, &str) = if is_tool(v) {
        (vec![v], ctx.source.clone(), "")
    } else if let Some(list) = tool_list(v) {
        let server = v
            .get("server")
            .and_then(|s| {
                s.as_str()
                    .map(str::to_string)
                    .or_else(|| s.get("name").and_then(Value::as_str).map(str::to_string))
            })
            .or_else(|| {
                v.pointer("/serverInfo/name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                v.pointer("/result/serverInfo/name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| ctx.source.clone());
        (list.iter().collect(), server, "tools")
    } else if let Value::Array(a) = v {
        (a.iter().collect(), ctx.source.clone(), "")
    } else {
        return Err(format!(
            "not a tool catalog: expected tool definitions, found {}",
            describe(v)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let p = if path.is_empty() {
                format!("[{i}]")
            } else {
                format!("{path}[{i}]")
            };
            catalog_tool(item, &service, &ctx.source, &p)
                .map_err(|reason| (reason, item.to_string()))
        })
        .map(Ok)
        .collect()
}

/// One tool of a catalog, or why it was rejected and its text.
pub type ToolResult = Result<CatalogTool, (String, String)>;

/// One catalog tool from a definition in any supported shape.
pub fn catalog_tool(
    item: &Value,
    service: &str,
    source: &str,
    path: &str,
) -> RecordResult<CatalogTool> {
    Obj::of(item, path)?;
    let (def, output, extra) = tool_schema::tool_def(item, path)?;
    Ok(CatalogTool {
        tool_id: CatalogTool::make_id(service, &def.name),
        name: def.name,
        description: def.description,
        parameters: def.parameters,
        output_schema: output.map(|o| o.to_string()),
        service: service.to_string(),
        source: source.to_string(),
        format: "catalog".into(),
        metadata: extra,
        provenance: Some("catalog".into()),
        ..Default::default()
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::Object(m) => format!(
            "an object with keys {:?}",
            m.keys().take(8).collect::<Vec<_>>()
        ),
        other => kind(other).to_string(),
    }
}
