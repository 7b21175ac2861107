//! MCP server collections: one JSON file per server, or a bundle of servers.
//!
//! - Labeled server files (the Toucan crawl of Smithery): `{"labels": {primary_label,
//!   secondary_labels, custom_label, …}, "metadata": {server_name, remote_server_response: {tools},
//!   server_info_crawled: {tools, …}, …}}`. The service is `metadata.server_name`, the domain
//!   `labels.primary_label`. Tools come from the live server's answer, or from the crawled page
//!   when the server could not be reached; the other list, which repeats the same tools, is kept
//!   only for the tools that differ.
//! - Registry entries (Smithery `GET /servers/{name}`): `{"qualifiedName", "tools", …}`; the
//!   service is the qualified name.
//! - Bundles: `{"servers": [{"name", "category" | "labels", "tools"}]}`; one service per server.
//!
//! Input schemas under `inputSchema`, `input_schema` or `parameters`; output schemas under
//! `outputSchema` or `output_schema`. Everything else about the server is kept in each tool's
//! `metadata.server`. A tool whose input schema is not an object is rejected alone.

use serde_json::{Map, Value, json};

use super::ParseContext;
use super::catalog::{ToolResult, catalog_tool};
use super::fields::RecordResult;
use crate::model::CatalogTool;

/// Where each source field goes (`ingest --explain`).
pub const MAPPING: &[(&str, &str)] = &[
    (
        "metadata.remote_server_response.tools (else server_info_crawled.tools)",
        "rows of the tools table",
    ),
    (
        "metadata.server_name / qualifiedName / servers[].name",
        "service",
    ),
    ("labels.primary_label / servers[].category", "domain"),
    ("input_schema / inputSchema / parameters", "parameters"),
    ("output_schema / outputSchema", "output_schema"),
    (
        "the rest of the server (labels, crawl data, connections)",
        "metadata.server",
    ),
];

/// True for a labeled server file, a registry entry or a bundle of servers.
pub fn looks_like(m: &Map<String, Value>) -> bool {
    let meta = m.get("metadata");
    let labeled = meta.is_some_and(|md| {
        md.get("remote_server_response").is_some() || md.get("server_info_crawled").is_some()
    });
    let registry = m.contains_key("qualifiedName") && m.get("tools").is_some_and(Value::is_array);
    let bundle = m.get("servers").and_then(Value::as_array).is_some_and(|s| {
        s.iter()
            .any(|x| x.get("tools").is_some_and(Value::is_array))
    });
    labeled || registry || bundle
}

/// One server's tools, each with the server's fields and domain.
fn server_tools(
    ctx: &ParseContext,
    service: &str,
    domain: Option<String>,
    tools: &[Value],
    where_: &str,
    server: &Value,
) -> Vec<ToolResult> {
    tools
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{where_}[{i}]");
            let schema = item
                .get("input_schema")
                .or(item.get("inputSchema"))
                .or(item.get("parameters"));
            let schema_ok = match schema {
                None | Some(Value::Null) | Some(Value::Object(_)) => true,
                Some(Value::String(s)) => {
                    serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object())
                }
                Some(_) => false,
            };
            if !schema_ok {
                return Err((
                    format!("{path}: input schema is not a JSON object"),
                    item.to_string(),
                ));
            }
            let mut tool: CatalogTool = catalog_tool(item, service, &ctx.source, &path)
                .map_err(|r| (r, item.to_string()))?;
            tool.format = "mcp-collection".into();
            tool.domain = domain.clone();
            tool.metadata.insert("server".into(), server.clone());
            Ok(tool)
        })
        .collect()
}

/// The tools of `other` that `used` does not hold as they are.
fn differing(used: &[Value], other: &[Value]) -> Vec<Value> {
    other
        .iter()
        .filter(|t| !used.contains(t))
        .cloned()
        .collect()
}

/// Parses one server file or bundle.
pub fn parse(ctx: &ParseContext, v: &Value) -> RecordResult<Vec<ToolResult>> {
    let Value::Object(m) = v else {
        return Err("expected an MCP server object".into());
    };
    if let Some(meta) = m.get("metadata").and_then(Value::as_object)
        && (meta.contains_key("remote_server_response") || meta.contains_key("server_info_crawled"))
    {
        let remote = v
            .pointer("/metadata/remote_server_response/tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let crawled = v
            .pointer("/metadata/server_info_crawled/tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (tools, where_, other_ptr, other) = if !remote.is_empty() {
            (
                remote,
                "metadata.remote_server_response.tools",
                "server_info_crawled",
                crawled,
            )
        } else {
            (
                crawled,
                "metadata.server_info_crawled.tools",
                "remote_server_response",
                remote,
            )
        };
        let used_ptr = if where_.contains("remote") {
            "remote_server_response"
        } else {
            "server_info_crawled"
        };
        // The server without its tool lists; the other list only where it differs.
        let mut server = v.clone();
        if let Some(md) = server.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(Value::Object(u)) = md.get_mut(used_ptr) {
                u.remove("tools");
                u.insert("tools_read_here".into(), Value::Bool(true));
            }
            if let Some(Value::Object(o)) = md.get_mut(other_ptr)
                && o.contains_key("tools")
            {
                let diff = differing(&tools, &other);
                o.insert("tools".into(), Value::Array(diff));
                o.insert(
                    "tools_not_listed_repeat_the_ones_read".into(),
                    Value::Bool(true),
                );
            }
        }
        let service = v
            .pointer("/metadata/server_name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ctx.source.clone());
        let domain = v
            .pointer("/labels/primary_label")
            .and_then(Value::as_str)
            .map(str::to_string);
        return Ok(server_tools(ctx, &service, domain, &tools, where_, &server));
    }
    if let Some(name) = m.get("qualifiedName").and_then(Value::as_str) {
        let tools = m
            .get("tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut server = m.clone();
        server.remove("tools");
        return Ok(server_tools(
            ctx,
            name,
            None,
            &tools,
            "tools",
            &Value::Object(server),
        ));
    }
    if let Some(servers) = m.get("servers").and_then(Value::as_array) {
        let collection: Map<String, Value> = m
            .iter()
            .filter(|(k, _)| k.as_str() != "servers")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = vec![];
        for (i, srv) in servers.iter().enumerate() {
            let Some(name) = srv.get("name").and_then(Value::as_str) else {
                out.push(Err((
                    format!("servers[{i}].name: a server without a name"),
                    srv.to_string(),
                )));
                continue;
            };
            let domain = srv
                .get("category")
                .and_then(Value::as_str)
                .or(srv.pointer("/labels/primary_label").and_then(Value::as_str))
                .map(str::to_string);
            let tools = srv
                .get("tools")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut server = srv.clone();
            if let Value::Object(s) = &mut server {
                s.remove("tools");
                if !collection.is_empty() {
                    s.insert("collection".into(), json!(collection));
                }
            }
            out.extend(server_tools(
                ctx,
                name,
                domain,
                &tools,
                &format!("servers[{i}].tools"),
                &server,
            ));
        }
        return Ok(out);
    }
    Err("no tool list found: expected metadata.remote_server_response, qualifiedName + tools, or servers[].tools".into())
}
