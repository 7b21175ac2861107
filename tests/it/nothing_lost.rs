//! Nothing lost, by construction: for every fixture — good and bad, every dialect and container
//! — every piece of text the input carries is found again after ingest, in a stored row (its
//! columns or its metadata) or in the rejects file next to a reason.
//!
//! The input is read independently of tdscale's readers: JSON and JSON lines with serde_json
//! (strings holding JSON are opened too), Parquet with the arrow reader, column by column. Only
//! the values of the keys that name a shape (`type`, `role`, `class_`, `from`) are not looked
//! for: they are read into the structure (which role a message has, which kind of part it was).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use serde_json::Value;
use tdscale::store::{convert, read, tables};

use crate::common::*;

const SHAPE_KEYS: &[&str] = &["type", "role", "class_", "from"];

/// Every fixture under `testdata/formats` and `testdata/bad`, except the expected counts and the
/// scripts that wrote fixtures.
fn fixtures() -> Vec<PathBuf> {
    let mut out = vec![];
    for root in ["formats", "bad"] {
        let mut stack = vec![testdata(root)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if p.is_dir() {
                    if name != "expected" {
                        stack.push(p);
                    }
                } else if !name.ends_with(".py") && !name.ends_with(".md") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// String leaves of a JSON value; strings that hold JSON are opened, shape keys skipped.
fn leaves(v: &Value, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if key.is_some_and(|k| SHAPE_KEYS.contains(&k)) {
                return;
            }
            let t = s.trim();
            if t.starts_with(['{', '['])
                && let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(t)
            {
                leaves(&inner, None, out);
                return;
            }
            if !t.is_empty() {
                out.push(s.clone());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| leaves(x, key, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| leaves(x, Some(k), out)),
        _ => {}
    }
}

fn decompressed(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    let name = path.to_string_lossy();
    let mut out = vec![];
    if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(&raw[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    } else {
        out = raw;
    }
    out
}

fn arrow_strings(a: &ArrayRef, out: &mut Vec<String>) {
    match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = datafusion::arrow::compute::cast(a, &DataType::Utf8).unwrap();
            for x in s.as_string::<i32>().iter().flatten() {
                leaves(&Value::String(x.to_string()), None, out);
            }
        }
        DataType::List(_) => arrow_strings(a.as_list::<i32>().values(), out),
        DataType::LargeList(_) => arrow_strings(a.as_list::<i64>().values(), out),
        DataType::Struct(fields) => {
            let s = a.as_struct();
            for (f, c) in fields.iter().zip(s.columns()) {
                // The shape keys of nested structs are read into the structure.
                if !SHAPE_KEYS.contains(&f.name().as_str()) {
                    arrow_strings(c, out);
                }
            }
        }
        _ => {}
    }
}

/// The text pieces of an input file, and its lines that are not JSON at all.
fn input_pieces(path: &Path) -> (Vec<String>, Vec<String>) {
    let mut out = vec![];
    let mut raw_lines = vec![];
    if path.to_string_lossy().ends_with(".parquet") {
        let file = std::fs::File::open(path).unwrap();
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024)
                .unwrap();
        for b in reader {
            let b = b.unwrap();
            for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                if !SHAPE_KEYS.contains(&f.name().as_str()) {
                    arrow_strings(c, &mut out);
                }
            }
        }
        return (out, raw_lines);
    }
    let bytes = decompressed(path);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => leaves(&v, None, &mut out),
        Err(_) => {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                // An element of an array that is cut off later still parses on its own.
                let element = line.trim().trim_end_matches(',');
                match serde_json::from_str::<Value>(line)
                    .or_else(|_| serde_json::from_str::<Value>(element))
                {
                    Ok(v) => leaves(&v, None, &mut out),
                    Err(_) => raw_lines.push(line.to_string()),
                }
            }
        }
    }
    (out, raw_lines)
}

/// Everything an ingest kept: the stored rows' strings (JSON text opened) and the rejects.
async fn kept(corpus: &tdscale::store::Corpus, rejects: Option<&str>) -> (String, String) {
    let mut strings: Vec<String> = vec![];
    let files = corpus.list_table(&tables::TRAJECTORIES).await.unwrap();
    let mut ts = vec![];
    read::for_each_batch(corpus, &files, None, |b| {
        ts.extend(convert::batch_to_trajectories(&b)?);
        Ok(())
    })
    .await
    .unwrap();
    for t in ts {
        let mut push = |s: &str| leaves(&Value::String(s.to_string()), None, &mut strings);
        for s in [&t.traj_id, &t.source]
            .into_iter()
            .chain(t.system.as_ref())
            .chain(t.parent_id.as_ref())
            .chain(t.domain.as_ref())
        {
            push(s);
        }
        for d in &t.tools {
            push(&d.name);
            d.description.as_deref().map(&mut push);
            d.parameters.as_deref().map(&mut push);
        }
        for m in &t.messages {
            for s in [&m.content, &m.reasoning, &m.name, &m.tool_call_id]
                .into_iter()
                .flatten()
            {
                push(s);
            }
            for c in &m.tool_calls {
                push(&c.name);
                push(&c.arguments);
                c.id.as_deref().map(&mut push);
            }
        }
        leaves(&Value::Object(t.metadata.clone()), None, &mut strings);
    }
    let tool_files = corpus.list_table(&tables::TOOLS).await.unwrap();
    read::for_each_batch(corpus, &tool_files, None, |b| {
        for c in b.columns() {
            arrow_strings(c, &mut strings);
        }
        Ok(())
    })
    .await
    .unwrap();
    let mut rejected = String::new();
    if let Some(url) = rejects {
        let path = url::Url::parse(url).unwrap().to_file_path().unwrap();
        for r in json_lines(&std::fs::read_to_string(path).unwrap()) {
            let record = r["record"].as_str().unwrap_or("");
            rejected.push_str(record);
            rejected.push('\u{1}');
            match serde_json::from_str::<Value>(record) {
                Ok(v) => {
                    let mut l = vec![];
                    leaves(&v, None, &mut l);
                    rejected.push_str(&l.join("\u{1}"));
                }
                Err(_) => {
                    // A session or array element kept as raw text: its lines.
                    for line in record.lines() {
                        if let Ok(v) = serde_json::from_str::<Value>(line) {
                            let mut l = vec![];
                            leaves(&v, None, &mut l);
                            rejected.push_str(&l.join("\u{1}"));
                        }
                    }
                }
            }
            rejected.push('\u{1}');
        }
    }
    (strings.join("\u{1}"), rejected)
}

/// Hermes / Qwen markup: the text between these tags is stored apart from the text around it
/// (reasoning, calls, tool results).
const TAGS: &[&str] = &[
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<tools>",
    "</tools>",
];

/// True when `piece` is kept: whole, or — for text with markup — each piece between the tags,
/// whole or, for a call written as JSON or a Python dict, value by value.
fn found(piece: &str, kept: &str) -> bool {
    if kept.contains(piece) {
        return true;
    }
    if !TAGS.iter().any(|t| piece.contains(t)) {
        return false;
    }
    let mut segments = vec![piece.to_string()];
    for t in TAGS {
        segments = segments
            .iter()
            .flat_map(|s| s.split(t).map(str::to_string).collect::<Vec<_>>())
            .collect();
    }
    segments.iter().map(|s| s.trim()).all(|seg| {
        if seg.is_empty() || kept.contains(seg) {
            return true;
        }
        match tdscale::formats::pylit::lenient_json(seg) {
            Ok(v) => {
                let mut l = vec![];
                leaves(&v, None, &mut l);
                l.iter().all(|x| kept.contains(x.as_str()))
            }
            Err(_) => false,
        }
    })
}

#[tokio::test]
async fn every_text_of_every_fixture_is_stored_or_rejected_with_a_reason() {
    let all = fixtures();
    assert!(all.len() >= 45, "fixtures found: {}", all.len());
    let mut failures = vec![];
    for path in &all {
        let (_d, corpus) = temp_corpus();
        let s = ingest(&corpus, std::slice::from_ref(path)).await;
        assert!(
            s.sample_rejects.iter().all(|r| !r.reason.trim().is_empty()),
            "every reject has a reason"
        );
        let (stored, rejected) = kept(&corpus, s.rejects_file.as_deref()).await;
        let (pieces, raw_lines) = input_pieces(path);
        let mut missing: HashSet<String> = HashSet::new();
        for p in pieces {
            if !found(&p, &stored) && !rejected.contains(&p) {
                missing.insert(p);
            }
        }
        for l in raw_lines {
            if !rejected.contains(l.trim()) {
                missing.insert(format!("(line that is not JSON) {l}"));
            }
        }
        if !missing.is_empty() {
            let mut m: Vec<_> = missing.into_iter().collect();
            m.sort();
            failures.push(format!(
                "{}: {} piece(s) lost: {:?}",
                path.strip_prefix(testdata("")).unwrap().display(),
                m.len(),
                m.iter().take(5).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The public files of `../shared/data`, read the way a user would ingest them: the tau-bench
/// run, the tau² task files, every BFCL question file (trajectories) and BFCL's tool documents
/// (the `tools` table). The ground-truth answer files are not trajectories and are left out.
fn public_files() -> Vec<(PathBuf, tdscale::ingest::TargetTable)> {
    use tdscale::ingest::TargetTable::{Tools, Trajectories};
    let mut out = vec![
        (shared("tau-bench/gpt-4o-airline.json"), Trajectories),
        (shared("tau2/airline/tasks.json"), Trajectories),
        (shared("tau2/retail/tasks.json"), Trajectories),
    ];
    let mut bfcl: Vec<PathBuf> = std::fs::read_dir(shared("bfcl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    bfcl.sort();
    assert!(bfcl.len() >= 19, "BFCL question files: {}", bfcl.len());
    out.extend(bfcl.into_iter().map(|p| (p, Trajectories)));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(shared("bfcl/multi_turn_func_doc"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    docs.sort();
    out.extend(docs.into_iter().map(|p| (p, Tools)));
    out
}

/// An OpenAI chat file made of public pieces, for the usual OpenAI record with real tool
/// definitions: each tau-bench airline run's messages with, as its `tools`, the functions of one
/// of the first 20 BFCL `multiple` questions (each list on ten records, as datasets repeat one
/// catalog).
fn openai_of_public_pieces(dir: &Path) -> PathBuf {
    let runs: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(shared("tau-bench/gpt-4o-airline.json")).unwrap(),
    )
    .unwrap();
    let lists: Vec<Value> = std::fs::read_to_string(shared("bfcl/BFCL_v4_multiple.json"))
        .unwrap()
        .lines()
        .take(20)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["function"].clone())
        .collect();
    let mut out = String::new();
    for (i, run) in runs.iter().enumerate() {
        let tools: Vec<Value> = lists[i % lists.len()]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| serde_json::json!({"type": "function", "function": f}))
            .collect();
        let record = serde_json::json!({
            "id": format!("run{i}"), "messages": run["traj"], "tools": tools, "reward": run["reward"],
        });
        out.push_str(&record.to_string());
        out.push('\n');
    }
    let path = dir.join("airline_with_bfcl_tools.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

#[tokio::test]
async fn every_text_of_the_public_files_is_stored_or_rejected_with_a_reason() {
    let made = tempfile::tempdir().unwrap();
    let mut files = public_files();
    files.push((
        openai_of_public_pieces(made.path()),
        tdscale::ingest::TargetTable::Trajectories,
    ));
    let mut failures = vec![];
    // Read through the page cache (what `auto` does with files this small) and around it.
    let reads = [
        tdscale::ingest::FileReads::Auto,
        tdscale::ingest::FileReads::Direct,
    ];
    for ((path, table), file_reads) in files
        .into_iter()
        .flat_map(|f| reads.map(|r| (f.clone(), r)))
    {
        let (_d, corpus) = temp_corpus();
        let opts = tdscale::ingest::IngestOptions {
            table,
            file_reads,
            ..Default::default()
        };
        let s = tdscale::ingest::ingest(&corpus, std::slice::from_ref(&path), &opts)
            .await
            .expect("ingest");
        assert!(s.ingested > 0, "{}: nothing ingested", path.display());
        assert!(
            s.sample_rejects.iter().all(|r| !r.reason.trim().is_empty()),
            "every reject has a reason"
        );
        let (stored, rejected) = kept(&corpus, s.rejects_file.as_deref()).await;
        // The real files are large: most pieces are a whole stored string, looked up first.
        let whole: HashSet<&str> = stored.split('\u{1}').collect();
        let (pieces, raw_lines) = input_pieces(&path);
        let mut missing: HashSet<String> = HashSet::new();
        for p in pieces {
            if !whole.contains(p.as_str()) && !found(&p, &stored) && !rejected.contains(&p) {
                missing.insert(p);
            }
        }
        missing.extend(
            raw_lines
                .into_iter()
                .map(|l| format!("(line that is not JSON) {l}")),
        );
        if !missing.is_empty() {
            let mut m: Vec<_> = missing.into_iter().collect();
            m.sort();
            failures.push(format!(
                "{} ({file_reads:?} reads): {} piece(s) lost: {:?}",
                path.display(),
                m.len(),
                m.iter().take(5).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
