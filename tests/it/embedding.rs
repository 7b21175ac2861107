//! What the Python package is built on: Arrow rows through the ingest parsers, a corpus's
//! tables and table functions bound to its session for another session, and the commands as
//! calls that parse like the command line.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::infer_json_schema_from_seekable;
use datafusion::prelude::SessionContext;
use tdscale::cli::embed;
use tdscale::error::Error;
use tdscale::ingest::{IngestOptions, ingest_batches};
use tdscale::query::session::CorpusSession;

use crate::common::*;

/// The records of a JSON Lines file as Arrow batches of `rows` rows (schema inferred, nested
/// lists and structs as Arrow lists and structs).
fn batches_of(path: &std::path::Path, rows: usize) -> Box<dyn RecordBatchReader + Send> {
    let mut file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let (schema, _) = infer_json_schema_from_seekable(&mut file, None).unwrap();
    let reader = ReaderBuilder::new(Arc::new(schema))
        .with_batch_size(rows)
        .build(file)
        .unwrap();
    Box::new(reader)
}

/// Three chat records of one shape in `dir/openai_chat.jsonl`: Arrow's schema inference needs
/// one type per field (the openai_chat fixture mixes shapes on purpose).
fn chat_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for (i, (city, forecast)) in [("Paris", "rain"), ("Rome", "sun"), ("Oslo", "snow")]
        .iter()
        .enumerate()
    {
        let args = serde_json::json!({ "city": city }).to_string();
        let result = serde_json::json!({ "forecast": forecast }).to_string();
        let record = serde_json::json!({
            "id": format!("wx-{i}"),
            "messages": [
                {"role": "user", "content": format!("Weather in {city} tomorrow?")},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": format!("call_{i}"), "type": "function",
                     "function": {"name": "get_weather", "arguments": args}}
                ]},
                {"role": "tool", "tool_call_id": format!("call_{i}"), "content": result},
                {"role": "assistant", "content": format!("{city}: {forecast}.")}
            ],
            "domain": "travel"
        });
        text.push_str(&record.to_string());
        text.push('\n');
    }
    let path = dir.join("openai_chat.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

const COLUMNS: &str = "SELECT traj_id, source, format, messages, tools, num_turns, num_tool_calls, num_tokens FROM trajectories ORDER BY traj_id";

async fn rendered(corpus: &tdscale::store::Corpus, q: &str) -> String {
    datafusion::arrow::util::pretty::pretty_format_batches(&sql(corpus, q).await)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn rows_of_arrow_batches_are_stored_like_the_file_they_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = chat_file(dir.path());
    let (_a, from_file) = temp_corpus();
    let (_b, from_rows) = temp_corpus();
    let f = ingest(&from_file, std::slice::from_ref(&file)).await;
    // One row per batch: numbering runs across batches.
    let s = ingest_batches(
        &from_rows,
        "openai_chat",
        batches_of(&file, 1),
        &IngestOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((s.read, s.ingested, s.rejected), (f.read, f.ingested, 0));
    assert_eq!(s.files.len(), 1);
    assert_eq!(s.files[0].path, "openai_chat");
    assert_eq!(s.files[0].format.as_deref(), Some("openai"));
    assert!(s.bytes > 0);
    assert_eq!(
        rendered(&from_file, COLUMNS).await,
        rendered(&from_rows, COLUMNS).await
    );
    // Keys of `metadata` follow the Arrow fields' order, not the line's: compare them parsed.
    let meta = "SELECT metadata FROM trajectories ORDER BY traj_id";
    let parse = |rows: Vec<String>| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|m| serde_json::from_str(m).unwrap_or(serde_json::Value::Null))
            .collect()
    };
    assert_eq!(
        parse(strings(&from_file, meta).await),
        parse(strings(&from_rows, meta).await)
    );
    // The same rows again are duplicates, as the same file would be.
    let again = ingest_batches(
        &from_rows,
        "openai_chat",
        batches_of(&file, 2),
        &IngestOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((again.ingested, again.duplicates), (0, f.ingested));
}

#[tokio::test]
async fn a_row_that_is_not_a_record_is_a_reject_with_its_row_number() {
    let (_d, corpus) = temp_corpus();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(
            "messages",
            datafusion::arrow::datatypes::DataType::Int64,
            true,
        ),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(datafusion::arrow::array::Int64Array::from(vec![
            1, 2,
        ]))],
    )
    .unwrap();
    let opts = IngestOptions {
        format: Some(tdscale::formats::Format::Openai),
        ..Default::default()
    };
    let s = ingest_batches(
        &corpus,
        "numbers",
        Box::new(RecordBatchIterator::new([Ok(batch)], schema)),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!((s.read, s.ingested, s.rejected), (2, 0, 2));
    let rejects = strings(
        &corpus,
        "SELECT concat(file, ':', line, ':', record) FROM rejects ORDER BY line",
    )
    .await;
    assert_eq!(
        rejects,
        vec![
            r#"numbers:1:{"messages":1}"#.to_string(),
            r#"numbers:2:{"messages":2}"#.to_string()
        ]
    );
}

#[tokio::test]
async fn a_stream_that_fails_keeps_the_rows_before_and_says_where_it_stopped() {
    let (_d, corpus) = temp_corpus();
    let dir = tempfile::tempdir().unwrap();
    let file = chat_file(dir.path());
    let mut good: Vec<Result<RecordBatch, ArrowError>> = vec![];
    let reader = batches_of(&file, 2);
    let schema = reader.schema();
    for b in reader {
        good.push(b);
    }
    let first = good.remove(0).unwrap();
    let n = first.num_rows();
    let items = vec![
        Ok(first),
        Err(ArrowError::ExternalError("the source went away".into())),
    ];
    let s = ingest_batches(
        &corpus,
        "cut",
        Box::new(RecordBatchIterator::new(items, schema)),
        &IngestOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((s.ingested, s.rejected), (n as u64, 1));
    let reason = strings(&corpus, "SELECT concat(line, ' ', reason) FROM rejects").await;
    assert_eq!(reason.len(), 1);
    assert!(
        reason[0].starts_with(&format!("{} reading the rows failed after row {n}", n + 1))
            && reason[0].contains("the source went away"),
        "{reason:?}"
    );
}

#[tokio::test]
async fn bound_tables_and_table_functions_answer_in_another_session_and_see_later_writes() {
    let (_d, corpus) = temp_corpus();
    ingest(&corpus, &[testdata("formats/tau_bench_retail.json")]).await;
    let session = CorpusSession::open(&corpus).await.unwrap();
    // A bare session: no corpus views, none of tdscale's functions beyond what it registers.
    let other = SessionContext::new();
    for (name, table) in session.bound_tables().await.unwrap() {
        other.register_table(name, table).unwrap();
    }
    for (name, f) in session.bound_table_functions() {
        other.register_udtf(name, f);
    }
    let count = |ctx: SessionContext, q: &'static str| async move {
        let b = ctx.sql(q).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string()
    };
    let q = "SELECT count(*) AS n FROM trajectories";
    assert_eq!(
        count(other.clone(), q).await,
        count(session.ctx().clone(), q).await
    );
    // The retail fixture holds two trajectories: both are picked, in the same order.
    let pick = "SELECT traj_id, pick FROM greedy_entropy(2, 1, 'trajectories') ORDER BY pick";
    let picked = count(other.clone(), pick).await;
    assert_eq!(picked, count(session.ctx().clone(), pick).await);
    assert_eq!(picked.lines().count(), 2 + 4, "{picked}");
    // A later ingest is seen by the next query of the same sessions.
    let before = scalar_i64(&corpus, q).await;
    let more = ingest(&corpus, &[testdata("formats/openai_chat.jsonl")]).await;
    let after = count(other.clone(), q).await;
    assert!(
        after.contains(&format!("| {} ", before + more.ingested as i64)),
        "{after}"
    );
}

#[tokio::test]
async fn commands_as_calls_parse_like_the_command_line() {
    let (_d, corpus) = temp_corpus();
    let root = corpus.display().to_string();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // A value clap refuses: the message the command line prints after `error: `.
    let e = embed::run(
        &args(&["budget", &root, "--budgets", "5", "--unit", "bogus"]),
        false,
    )
    .await
    .unwrap_err();
    let o = run(&["budget", &root, "--budgets", "5", "--unit", "bogus"]);
    assert_eq!(o.status.code(), Some(e.exit_code()));
    assert!(matches!(e, Error::Usage(_)));
    let printed = stderr(&o);
    let printed = printed.strip_prefix("error: ").unwrap();
    assert!(
        printed.starts_with(&e.to_string()),
        "{printed:?} vs {:?}",
        e.to_string()
    );
    assert!(!e.to_string().contains("For more information"));
    // A command's value is what --json prints.
    ingest(&corpus, &[testdata("formats/tau_bench_retail.json")]).await;
    let value = embed::run(&args(&["report", &root, "--by", "domain"]), false)
        .await
        .unwrap();
    assert_eq!(
        value,
        ok_json(&run(&["report", &root, "--by", "domain", "--json"]))
    );
    let e = embed::run(&args(&["demo"]), false).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "`tdscale demo` runs on the command line only"
    );
}
