//! `ingest --explain`: for each input file, its layout, the dialect detected, where each source
//! field goes, and what its first record becomes — read and parsed exactly as ingest would, with
//! nothing written anywhere.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde::Serialize;
use serde_json::Value;

use super::sources::{self, Input};
use super::{IngestOptions, Splitter, file_context, gathers, open_input};
use crate::error::{Error, Result};
use crate::formats::{self, Parsed};
use crate::model::Trajectory;

/// One source field and where it is stored.
#[derive(Debug, Clone, Serialize)]
pub struct FieldMapping {
    pub source: String,
    pub stored_as: String,
}

/// What the first record of a file became.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirstRecord {
    /// Line (row, for Parquet) where it starts.
    pub line: usize,
    /// `None` when it is stored; else why it would be rejected.
    pub rejected: Option<String>,
    /// Trajectory ids (several for a session holding sub-agents).
    pub traj_ids: Vec<String>,
    pub messages: usize,
    pub user: usize,
    pub assistant: usize,
    pub tool_results: usize,
    pub tool_calls: usize,
    pub with_reasoning: usize,
    pub tools: usize,
    pub system: bool,
    pub reward: Option<f64>,
    /// Top-level keys of the stored `metadata`.
    pub metadata_keys: Vec<String>,
    /// For a catalog: rows of the `tools` table and their services.
    pub catalog_tools: usize,
    pub services: Vec<String>,
    pub domains: Vec<String>,
}

/// What ingest would do with one file.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub file: String,
    pub layout: String,
    /// The dialect detected (or forced), `None` when unknown.
    pub format: Option<String>,
    /// True when the whole file is one record (a session log, an OpenHands event list).
    pub whole_file: bool,
    /// The table the records go to.
    pub table: String,
    pub mapping: Vec<FieldMapping>,
    pub first_record: Option<FirstRecord>,
}

fn describe(line: usize, res: std::result::Result<Parsed, String>) -> FirstRecord {
    let mut f = FirstRecord {
        line,
        ..Default::default()
    };
    let trajectories: Vec<Trajectory> = match res {
        Err(reason) => {
            f.rejected = Some(reason);
            return f;
        }
        Ok(Parsed::Trajectory(t)) => vec![*t],
        Ok(Parsed::Trajectories(ts)) => ts,
        Ok(Parsed::Tools(tools)) => {
            for t in tools {
                match t {
                    Ok(t) => {
                        f.catalog_tools += 1;
                        if !f.services.contains(&t.service) {
                            f.services.push(t.service.clone());
                        }
                        if let Some(d) = t.domain
                            && !f.domains.contains(&d)
                        {
                            f.domains.push(d);
                        }
                    }
                    Err((reason, _)) => {
                        f.rejected
                            .get_or_insert(format!("a tool is rejected: {reason}"));
                    }
                }
            }
            return f;
        }
    };
    for t in &trajectories {
        f.traj_ids.push(t.traj_id.clone());
        f.messages += t.messages.len();
        let role = |r: &str| t.messages.iter().filter(|m| m.role == r).count();
        f.user += role("user");
        f.assistant += role("assistant");
        f.tool_results += role("tool");
        f.tool_calls += t.num_tool_calls() as usize;
        f.with_reasoning += t.messages.iter().filter(|m| m.reasoning.is_some()).count();
        f.tools += t.tools.len();
        f.system |= t.system.is_some();
        f.reward = f.reward.or(t.reward);
        for k in t.metadata.keys() {
            if !f.metadata_keys.contains(k) {
                f.metadata_keys.push(k.clone());
            }
        }
    }
    f
}

fn explain_file(input: &Input, opts: &IngestOptions) -> Explained {
    let count = Arc::new(AtomicU64::new(0));
    let mut out = Explained {
        file: input.display.clone(),
        layout: String::new(),
        format: None,
        whole_file: false,
        table: opts.table.name().to_string(),
        mapping: vec![],
        first_record: None,
    };
    let mut splitter = match open_input(input, count, opts) {
        Ok(s) => s,
        Err(reason) => {
            out.layout = "unreadable".into();
            out.first_record = Some(FirstRecord {
                rejected: Some(reason),
                ..Default::default()
            });
            return out;
        }
    };
    // The first records, enough to detect the dialect.
    let mut firsts = vec![];
    let mut format = opts.format;
    let mut first_value = None;
    for item in splitter.by_ref().take(16) {
        if let Ok(r) = &item
            && let Ok(v) = serde_json::from_str::<Value>(&r.text)
        {
            if opts.format.is_none() {
                format = formats::detect_next(format, &v);
            }
            first_value.get_or_insert(v);
        }
        firsts.push(item);
        if opts.format.is_some() || formats::settled(format) {
            break;
        }
    }
    out.layout = match &splitter {
        Splitter::Json(r) => r.layout_name().to_string(),
        Splitter::Parquet(p) => p.describe(),
    };
    out.format = format.map(|f| f.name().to_string());
    let Some(format) = format else {
        let reason = match firsts.first() {
            None => "the file holds no record".to_string(),
            Some(Err(e)) => e.reason.clone(),
            Some(Ok(r)) => match serde_json::from_str::<Value>(&r.text) {
                Ok(v) => format!("unknown format: {}; pass --format", super::keys_of(&v)),
                Err(e) => format!("unknown format: the records are not JSON ({e})"),
            },
        };
        out.first_record = Some(FirstRecord {
            rejected: Some(reason),
            ..Default::default()
        });
        return out;
    };
    if format.is_catalog() {
        out.table = "tools".into();
    }
    out.mapping = format
        .mapping()
        .iter()
        .map(|(s, t)| FieldMapping {
            source: s.to_string(),
            stored_as: t.to_string(),
        })
        .collect();
    let ctx = file_context(input, opts, format);
    out.whole_file = gathers(format, first_value.as_ref());
    let first = if out.whole_file {
        // The whole file is the record: read the rest of it.
        let mut lines = vec![];
        let mut broken = None;
        for item in firsts.into_iter().chain(splitter) {
            match item {
                Ok(r) => lines.push((r.line, r.text)),
                Err(e) => {
                    broken.get_or_insert(format!("line {}: {}", e.line, e.reason));
                }
            }
        }
        let line = lines.first().map_or(1, |l| l.0);
        let res = match broken {
            Some(b) => Err(b),
            None if format.is_session() => {
                let refs: Vec<(usize, &str)> =
                    lines.iter().map(|(n, t)| (*n, t.as_str())).collect();
                formats::parse_session(format, &ctx, &refs)
            }
            None => {
                let joined = format!(
                    "[{}]",
                    lines
                        .iter()
                        .map(|(_, t)| t.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                serde_json::from_str::<Value>(&joined)
                    .map_err(|e| format!("malformed JSON: {e}"))
                    .and_then(|v| formats::parse(format, &ctx, v))
            }
        };
        describe(line, res)
    } else {
        match firsts.into_iter().next() {
            None => FirstRecord {
                rejected: Some("the file holds no record".into()),
                ..Default::default()
            },
            Some(Err(e)) => FirstRecord {
                line: e.line,
                rejected: Some(e.reason),
                ..Default::default()
            },
            Some(Ok(r)) => describe(r.line, formats::parse_text(format, &ctx, &r.text)),
        }
    };
    out.first_record = Some(first);
    out
}

/// Explains every input (files, folders, patterns, `s3://` URLs as [`super::ingest`] takes them)
/// without writing anything.
pub async fn explain(inputs: &[PathBuf], opts: &IngestOptions) -> Result<Vec<Explained>> {
    let names: Vec<String> = inputs
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let inputs = sources::expand(&names, opts.glob.as_deref()).await?;
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || inputs.iter().map(|i| explain_file(i, &opts)).collect())
        .await
        .map_err(|e| Error::Other(format!("explain failed: {e}")))
}

/// The explanation as text, one block per file.
pub fn to_text(files: &[Explained]) -> String {
    let mut out = String::new();
    for f in files {
        out.push_str(&format!(
            "{}: {}, {}{} → {}\n",
            f.file,
            f.format.as_deref().unwrap_or("unknown format"),
            f.layout,
            if f.whole_file {
                " (the whole file is one record)"
            } else {
                ""
            },
            f.table
        ));
        let width = f
            .mapping
            .iter()
            .map(|m| m.source.chars().count())
            .max()
            .unwrap_or(0);
        for m in &f.mapping {
            out.push_str(&format!(
                "  {:width$}  →  {}\n",
                m.source,
                m.stored_as,
                width = width
            ));
        }
        if let Some(r) = &f.first_record {
            match &r.rejected {
                Some(reason) if r.catalog_tools == 0 => {
                    out.push_str(&format!(
                        "  first record (line {}): rejected: {reason}\n",
                        r.line
                    ));
                }
                _ if r.catalog_tools > 0 => {
                    out.push_str(&format!(
                        "  first record (line {}): {} tool(s) of {}{}{}\n",
                        r.line,
                        r.catalog_tools,
                        r.services.join(", "),
                        if r.domains.is_empty() {
                            String::new()
                        } else {
                            format!(", domain {}", r.domains.join(", "))
                        },
                        r.rejected
                            .as_ref()
                            .map(|x| format!("; {x}"))
                            .unwrap_or_default()
                    ));
                }
                _ => {
                    out.push_str(&format!(
                        "  first record (line {}): {} → {} messages ({} user, {} assistant, {} tool results), {} tool calls, {} with reasoning, {} tools{}{}\n",
                        r.line,
                        r.traj_ids.join(", "),
                        r.messages,
                        r.user,
                        r.assistant,
                        r.tool_results,
                        r.tool_calls,
                        r.with_reasoning,
                        r.tools,
                        if r.system { ", a system prompt" } else { "" },
                        r.reward.map(|x| format!(", reward {x}")).unwrap_or_default(),
                    ));
                    if !r.metadata_keys.is_empty() {
                        out.push_str(&format!(
                            "  kept in metadata: {}\n",
                            r.metadata_keys.join(", ")
                        ));
                    }
                }
            }
        }
    }
    out.push_str("nothing was written (--explain)\n");
    out
}
