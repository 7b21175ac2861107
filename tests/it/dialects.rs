//! The content-part, code-agent, Parquet and MCP-collection dialects: every fixture ingests with
//! exactly the counts of `testdata/formats/expected/EXPECTED.json` (an independent reading of the
//! fixtures by `expected_counts.py`), bad ones are rejected with their reasons, and ingesting
//! again adds nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use tdscale::model::Trajectory;
use tdscale::store::{Corpus, convert, read, tables};

use crate::common::*;

/// The expected counts, by fixture path relative to `testdata/`.
pub fn expected() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(testdata("formats/expected/EXPECTED.json"))
        .expect("testdata/formats/expected/EXPECTED.json");
    let v: Value = serde_json::from_str(&text).expect("EXPECTED.json is JSON");
    v["files"]
        .as_object()
        .expect("files")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every stored trajectory, in the order it was written.
pub async fn stored(corpus: &Corpus) -> Vec<Trajectory> {
    let files = corpus.list_table(&tables::TRAJECTORIES).await.unwrap();
    let mut out = vec![];
    read::for_each_batch(corpus, &files, None, |b| {
        out.extend(convert::batch_to_trajectories(&b)?);
        Ok(())
    })
    .await
    .unwrap();
    out
}

/// The expected reason in words, without the Python exception name the reference appends.
fn phrase(reason: &str) -> &str {
    match reason.find(" (") {
        Some(i) if reason.ends_with(')') && reason[i..].contains("Error") => &reason[..i],
        _ => reason,
    }
}

/// Results whose call is not waiting for one (the pairing ingest and the metrics use).
fn unpaired(t: &Trajectory) -> usize {
    let mut pending: Vec<String> = vec![];
    let mut n = 0;
    for m in &t.messages {
        match m.role.as_ref() {
            "assistant" => {
                pending = m.tool_calls.iter().filter_map(|c| c.id.clone()).collect();
            }
            "tool" => match m
                .tool_call_id
                .as_ref()
                .and_then(|id| pending.iter().position(|p| p == id))
            {
                Some(i) => {
                    pending.remove(i);
                }
                None => n += 1,
            },
            _ => pending.clear(),
        }
    }
    n
}

/// Number of entries of every `content_parts` list under `v`.
fn kept_parts(v: &Value) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| match (k.as_str(), x) {
                ("content_parts", Value::Array(a)) => a.len(),
                _ => kept_parts(x),
            })
            .sum(),
        Value::Array(a) => a.iter().map(kept_parts).sum(),
        _ => 0,
    }
}

/// The counts of one stored trajectory, in EXPECTED.json's terms.
fn counts(t: &Trajectory) -> Value {
    let role = |r: &str| t.messages.iter().filter(|m| m.role == r).count();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for c in t.messages.iter().flat_map(|m| &m.tool_calls) {
        *names.entry(c.name.clone()).or_default() += 1;
    }
    let reasoning: usize = t
        .messages
        .iter()
        .filter_map(|m| m.reasoning.as_deref())
        .map(|r| r.split("\n\n").count())
        .sum();
    let parts = ["message_fields", "system_fields"]
        .iter()
        .filter_map(|k| t.metadata.get(*k))
        .map(kept_parts)
        .sum::<usize>();
    serde_json::json!({
        "system": t.system.is_some(),
        "tools": t.tools.len(),
        "messages": {"user": role("user"), "assistant": role("assistant"), "tool": role("tool"), "system": role("system")},
        "tool_calls": t.num_tool_calls(),
        "call_names": names,
        "tool_results": role("tool"),
        "unpaired_results": unpaired(t),
        "error_results": t.messages.iter().filter(|m| m.role == "tool" && m.error == Some(true)).count(),
        "reasoning_parts": reasoning,
        "metadata_parts": parts,
        "metadata_events": t.metadata.get("events").and_then(Value::as_array).map_or(0, Vec::len),
        "reward": t.reward,
    })
}

#[tokio::test]
async fn every_dialect_ingests_with_the_expected_counts_and_reasons() {
    let mut checked = 0;
    for (rel, e) in expected() {
        if e["table"] != "trajectories" {
            continue;
        }
        let file = testdata(&rel);
        let (_d, corpus) = temp_corpus();
        let s = ingest(&corpus, std::slice::from_ref(&file)).await;
        let want = e["trajectories"].as_array().unwrap();
        let rejects = e["rejects"].as_array().unwrap();
        assert_eq!(
            (s.ingested as usize, s.rejected as usize),
            (want.len(), rejects.len()),
            "{rel}: ingested and rejected ({:?})",
            s.sample_rejects
        );
        for r in rejects {
            // Type names are spelled differently by pyarrow and arrow-rs (int64 / Int64).
            let reason = phrase(r["reason"].as_str().unwrap()).to_lowercase();
            assert!(
                s.sample_rejects
                    .iter()
                    .any(|x| x.reason.to_lowercase().contains(&reason)),
                "{rel}: no reject saying `{reason}` in {:?}",
                s.sample_rejects
            );
            if let Some(line) = r["line"].as_u64() {
                assert!(
                    s.sample_rejects.iter().any(|x| x.line as u64 == line),
                    "{rel}: no reject at line {line}"
                );
            }
        }
        let got = stored(&corpus).await;
        assert_eq!(got.len(), want.len(), "{rel}");
        for (t, w) in got.iter().zip(want) {
            if let Some(id) = w["source_id"].as_str() {
                assert!(
                    t.traj_id.ends_with(&format!("/{id}")),
                    "{rel}: traj_id {} for source id {id}",
                    t.traj_id
                );
            }
            let mut w = w.clone();
            let m = w.as_object_mut().unwrap();
            m.remove("source_id");
            m.remove("record");
            assert_eq!(counts(t), w, "{rel}: {} ({})", t.traj_id, t.format);
        }
        // Ingesting again adds nothing.
        let again = ingest(&corpus, std::slice::from_ref(&file)).await;
        assert_eq!(
            (again.ingested, again.duplicates as usize),
            (0, want.len()),
            "{rel}: re-ingest"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} fixture files checked");
}

#[tokio::test]
async fn parquet_extra_columns_are_kept_in_metadata() {
    for (rel, e) in expected() {
        let Some(cols) = e["metadata_columns"].as_array() else {
            continue;
        };
        if e["trajectories"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        let (_d, corpus) = temp_corpus();
        ingest(&corpus, &[testdata(&rel)]).await;
        let got = stored(&corpus).await;
        for c in cols.iter().filter_map(Value::as_str) {
            assert!(
                got.iter().any(|t| t.metadata.contains_key(c)),
                "{rel}: column `{c}` is in no trajectory's metadata"
            );
        }
    }
}

#[tokio::test]
async fn compressed_copies_read_as_their_originals_and_add_nothing() {
    let all = expected();
    for (rel, e) in &all {
        let Some(original) = e["same_as"].as_str() else {
            continue;
        };
        let (_d, corpus) = temp_corpus();
        let a = ingest(&corpus, &[testdata(original)]).await;
        let b = ingest(&corpus, &[testdata(rel)]).await;
        assert!(a.ingested > 0);
        assert_eq!(
            (b.ingested, b.duplicates, b.rejected),
            (0, a.ingested, 0),
            "{rel} holds the same runs as {original}"
        );
    }
}

#[tokio::test]
async fn mcp_collections_fill_the_tools_table_with_services_and_domains() {
    let mut checked = 0;
    for (rel, e) in expected() {
        if e["table"] != "tools" {
            continue;
        }
        let (_d, corpus) = temp_corpus();
        let opts = tdscale::ingest::IngestOptions {
            table: tdscale::ingest::TargetTable::Tools,
            ..Default::default()
        };
        let file: PathBuf = testdata(&rel);
        let s = tdscale::ingest::ingest(&corpus, std::slice::from_ref(&file), &opts)
            .await
            .unwrap();
        assert_eq!(
            s.rejected as usize,
            e["rejects"].as_array().unwrap().len(),
            "{rel}: {:?}",
            s.sample_rejects
        );
        for r in e["rejects"].as_array().unwrap() {
            let tool = r["tool"].as_str().unwrap();
            assert!(
                s.sample_rejects.iter().any(|x| x.reason.starts_with(tool)
                    && x.reason.contains(r["reason"].as_str().unwrap())),
                "{rel}: {tool} {:?}",
                s.sample_rejects
            );
        }
        for svc in e["services"].as_array().unwrap() {
            let name = svc["service"].as_str().unwrap();
            let q = format!(
                "SELECT name, coalesce(domain, 'NULL'), output_schema IS NOT NULL, format, provenance FROM tools WHERE service = '{}' ORDER BY name",
                name.replace('\'', "''")
            );
            let rows = sql(&corpus, &q).await;
            let mut got = vec![];
            for b in &rows {
                for i in 0..b.num_rows() {
                    let s = |c: usize| {
                        let a = datafusion::arrow::compute::cast(
                            b.column(c),
                            &datafusion::arrow::datatypes::DataType::Utf8,
                        )
                        .unwrap();
                        datafusion::arrow::array::AsArray::as_string::<i32>(&a)
                            .value(i)
                            .to_string()
                    };
                    got.push((s(0), s(1), s(2), s(3), s(4)));
                }
            }
            let mut names: Vec<String> = svc["tool_names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            names.sort();
            assert_eq!(
                got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
                names,
                "{rel}: tools of {name}"
            );
            let domain = svc["domain"].as_str().unwrap_or("NULL");
            assert!(
                got.iter().all(|g| g.1 == domain),
                "{rel}: domain of {name}: {got:?}"
            );
            assert_eq!(
                got.iter().filter(|g| g.2 == "true").count() as u64,
                svc["with_output_schema"].as_u64().unwrap(),
                "{rel}: output schemas of {name}"
            );
            assert!(
                got.iter()
                    .all(|g| g.3 == "mcp-collection" && g.4 == "catalog")
            );
        }
        let again = tdscale::ingest::ingest(&corpus, &[file], &opts)
            .await
            .unwrap();
        assert_eq!(again.ingested, 0, "{rel}: re-ingest");
        checked += 1;
    }
    assert_eq!(checked, 6);
}
