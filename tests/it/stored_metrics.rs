//! The per-trajectory metrics stored at write time: the same results as computing them from
//! `messages` for every view and plan, a part per trajectories part under the definitions'
//! version, corpora without them upgraded on first use, a new version detected, stale files
//! removed, `tdscale metrics refresh`, and a pinned fingerprint of the stored values.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use tdscale::query::session::{CorpusSession, SessionOptions};
use tdscale::store::tables::{METRICS_VERSION, TRAJECTORIES, TRAJECTORY_METRICS};
use tdscale::store::{Corpus, schema, trajectory_metrics};

use crate::common::*;

fn ok(args: &[&str]) -> serde_json::Value {
    ok_json(&run(args))
}

/// Relative paths of the Parquet files under `dir`.
fn parquet_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(dir)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .collect();
    v.sort();
    v
}

/// A trajectories part as an older tdscale wrote it (no metrics beside it), with the rows ingest
/// never produces: NULL messages, NULL tools, an empty conversation, a stored mode label, a call
/// whose arguments are not JSON and an error result followed by a retry.
async fn write_part_without_metrics(corpus: &Corpus, round: i32) {
    use tdscale::store::writer::PartWriter;
    let s = |v: &[Option<&str>]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    let rows = 4;
    let fields = schema::message_fields();
    let call_fields = schema::tool_call_fields();
    let DataType::List(call_item) = fields[3].data_type().clone() else {
        unreachable!()
    };
    // Row 0: NULL messages. Row 1: no messages. Row 2: user, a call with broken arguments, an
    // error, a retry consuming nothing, a result, a question. Row 3: one call, labelled mode.
    let roles = [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
    ];
    let content = [
        Some("Book flight 42 for Ana please"),
        None,
        Some("Error: seat map unavailable"),
        None,
        Some(r#"{"seat": "12A", "price": 310}"#),
        Some("Shall I confirm seat 12A?"),
        Some("What is the weather in Paris"),
        None,
        Some("sunny"),
    ];
    let calls_per_message = [0usize, 1, 0, 1, 0, 0, 0, 1, 0];
    let call_names = ["book_seat", "book_seat", "weather"];
    let call_args = [
        "{not json",
        r#"{"flight": 42, "who": "Ana"}"#,
        r#"{"city": "Paris"}"#,
    ];
    let calls = StructArray::new(
        call_fields,
        vec![
            s(&[Some("c1"), Some("c2"), Some("c3")]),
            s(&call_names.map(Some)),
            s(&call_args.map(Some)),
        ],
        None,
    );
    let messages = StructArray::new(
        fields,
        vec![
            s(&roles.map(Some)),
            s(&content),
            s(&[None; 9]),
            Arc::new(ListArray::new(
                call_item,
                OffsetBuffer::from_lengths(calls_per_message),
                Arc::new(calls),
                None,
            )),
            s(&[
                None,
                None,
                Some("c1"),
                None,
                Some("c2"),
                None,
                None,
                None,
                Some("c3"),
            ]),
            s(&[None; 9]),
            Arc::new(BooleanArray::from(vec![None; 9])),
        ],
        None,
    );
    let DataType::List(msg_item) = schema::messages_type() else {
        unreachable!()
    };
    let messages = ListArray::new(
        msg_item,
        OffsetBuffer::from_lengths([0, 0, 6, 3]),
        Arc::new(messages),
        Some(NullBuffer::from(vec![false, true, true, true])),
    );
    let DataType::List(tool_item) = schema::tools_type() else {
        unreachable!()
    };
    let tools = ListArray::new(
        tool_item,
        OffsetBuffer::from_lengths([0, 0, 1, 0]),
        Arc::new(StructArray::new(
            schema::tool_fields(),
            vec![s(&[Some("book_seat")]), s(&[None]), s(&[None])],
            None,
        )),
        Some(NullBuffer::from(vec![false, true, true, true])),
    );
    let batch = RecordBatch::try_new(
        schema::trajectory_file_schema(),
        vec![
            s(&[Some("old/0"), Some("old/1"), Some("old/2"), Some("old/3")]),
            s(&[Some("old"); 4]),
            s(&[Some("openai"); 4]),
            s(&[None; 4]),
            s(&[None; 4]),
            s(&[None; 4]),
            s(&[Some("airline"), None, Some("airline"), Some("weather")]),
            s(&[None, None, None, Some("S1>A")]),
            s(&[None; 4]),
            Arc::new(tools),
            Arc::new(messages),
            Arc::new(Int32Array::from(vec![0, 0, 2, 1])),
            Arc::new(Int32Array::from(vec![0, 0, 2, 1])),
            Arc::new(Int64Array::from(vec![1, 1, 60, 20])),
            Arc::new(Float64Array::from(vec![None, Some(0.0), Some(1.0), None])),
            s(&[Some("{}"); 4]),
            s(&[None; 4]),
        ],
    )
    .unwrap();
    assert_eq!(batch.num_rows(), rows);
    let mut w = PartWriter::for_table(corpus, &TRAJECTORIES, round);
    w.write(&batch).await.unwrap();
    w.finish().await.unwrap();
}

/// Every row of a result as values, sorted by their text, so results that differ only in the
/// order of unordered rows compare equal.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<ScalarValue>> {
    let mut out = vec![];
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, r).unwrap())
                    .collect::<Vec<_>>(),
            );
        }
    }
    out.sort_by_cached_key(|r| format!("{r:?}"));
    out
}

/// Values agree: floats to 1e-9 relative (an average summed in another order may differ in its
/// last bits), everything else exactly.
fn same(a: &ScalarValue, b: &ScalarValue) -> bool {
    match (a, b) {
        (ScalarValue::Float64(Some(x)), ScalarValue::Float64(Some(y))) => {
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

fn assert_same_rows(what: &str, stored: &[RecordBatch], computed: &[RecordBatch]) {
    let (s, c) = (rows(stored), rows(computed));
    assert_eq!(s.len(), c.len(), "{what}: row counts differ");
    for (rs, rc) in s.iter().zip(&c) {
        assert!(
            rs.len() == rc.len() && rs.iter().zip(rc).all(|(x, y)| same(x, y)),
            "{what}: stored metrics give\n{rs:?}\ncomputed give\n{rc:?}"
        );
    }
}

/// The first place where two JSON values differ (numbers to 1e-9 relative), if any.
fn json_diff(at: &str, a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x != y && (x - y).abs() > 1e-9 * x.abs().max(y.abs()))
                .then(|| format!("{at}: stored {x}, computed {y}"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| json_diff(&format!("{at}[{i}]"), x, y)),
        (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
            x.iter().find_map(|(k, v)| match y.get(k) {
                Some(w) => json_diff(&format!("{at}.{k}"), v, w),
                None => Some(format!("{at}.{k}: only in the stored report")),
            })
        }
        _ => (a != b).then(|| format!("{at}: stored {a}, computed {b}")),
    }
}

async fn collect(session: &CorpusSession, sql: &str) -> Vec<RecordBatch> {
    let mut r = tdscale::query::run_sql(session.ctx(), sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    r.pop().map(|x| x.1).unwrap_or_default()
}

/// A corpus with every path that writes trajectories: `gen`, ingest of every bundled format
/// and of the real tau-bench runs, two offline evolution rounds (labelled modes, lineage,
/// clusters), a split, and a part from before metrics were stored.
async fn varied_corpus(dir: &Path) -> (String, Corpus) {
    let root = dir.join("corpus").to_str().unwrap().to_string();
    ok(&[
        "gen",
        &root,
        "--trajectories",
        "1500",
        "--seed",
        "5",
        "--json",
    ]);
    let mut inputs: Vec<String> = [
        "formats/openai_chat.jsonl",
        "formats/hermes_function_calling.jsonl",
        "formats/sharegpt_llamafactory.json",
        "formats/xlam_function_calling.json",
        "formats/tau_bench_retail.json",
        "formats/BFCL_v4_demo_multiple.json",
    ]
    .iter()
    .map(|f| testdata(f).to_str().unwrap().to_string())
    .collect();
    inputs.push(
        shared("tau-bench/gpt-4o-airline.json")
            .to_str()
            .unwrap()
            .into(),
    );
    let mut args = vec!["ingest", &root];
    args.extend(inputs.iter().map(String::as_str));
    args.push("--json");
    let s = ok(&args);
    assert!(number(&s["ingested"]) > 200.0, "{s}");
    let mut args = vec!["ingest", &root, "--table", "tools"];
    let catalogs: Vec<String> = [
        "catalogs/openai_tools_calendar.json",
        "catalogs/mcp_github_tools_list.json",
    ]
    .iter()
    .map(|f| testdata(f).to_str().unwrap().to_string())
    .collect();
    args.extend(catalogs.iter().map(String::as_str));
    args.push("--json");
    ok(&args);
    ok(&["clusters", "build", &root, "--json"]);
    ok(&[
        "evolve",
        &root,
        "--rounds",
        "2",
        "--per-round",
        "25",
        "--backend",
        "offline",
        "--json",
    ]);
    let corpus = Corpus::open(&root).unwrap();
    write_part_without_metrics(&corpus, 0).await;
    (root, corpus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_and_computed_metrics_agree_on_every_view_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (root, corpus) = varied_corpus(dir.path()).await;
    let traj_dir = Path::new(&root).join("trajectories");
    let metrics_dir = Path::new(&root).join(TRAJECTORY_METRICS.dir);
    // gen, ingest and evolution wrote a metrics part beside each of their trajectories parts;
    // the part written without one is the only one missing.
    let parts = parquet_files(&traj_dir);
    let before = parquet_files(&metrics_dir);
    assert_eq!(before.len() + 1, parts.len(), "{parts:?}\n{before:?}");
    assert!(parts.iter().any(|p| p.starts_with("round=2/")), "{parts:?}");

    let stored = CorpusSession::open(&corpus).await.unwrap();
    assert!(stored.stored_metrics());
    // Opening the corpus stored the missing part's metrics, under the same name.
    assert_eq!(parquet_files(&metrics_dir), parts);
    let computed = CorpusSession::open_with(
        &corpus,
        &SessionOptions {
            computed_metrics: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!computed.stored_metrics());
    // The split first: the export plan reads it. Each session writes the same `splits` table.
    let split = |s: &CorpusSession| {
        let s = s.clone();
        async move {
            tdscale::export::split::split(
                &s,
                &tdscale::export::split::SplitOptions {
                    by: vec!["domain".into()],
                    test: 0.2,
                    seed: 3,
                    near_dup: 0.8,
                },
            )
            .await
            .unwrap()
            .1
        }
    };
    let (split_s, split_c) = (split(&stored).await, split(&computed).await);
    assert!(split_s.iter().any(|r| r.split == "test"));
    assert_eq!(split_s, split_c);
    for s in [&stored, &computed] {
        s.refresh(&tdscale::store::tables::SPLITS).unwrap();
    }

    // The table itself, every column (stored vs the SQL functions), row by row.
    let all = "SELECT * FROM trajectory_metrics";
    let (s, c) = (collect(&stored, all).await, collect(&computed, all).await);
    assert_eq!(
        rows(&s).len(),
        scalar_i64(&corpus, "SELECT count(*) FROM trajectories").await as usize
    );
    assert_same_rows(all, &s, &c);
    // The rows ingest never writes, worked out by hand (DESIGN.md's definitions).
    let fixed = "SELECT traj_id, mode, cac, steps, tools_offered, tools_used, array_to_string(tool_sequence, ',') AS seq, user_minhash IS NULL AS no_hash FROM trajectory_metrics WHERE source = 'old' ORDER BY traj_id";
    let got = rows(&collect(&stored, fixed).await);
    let str_of = |v: &ScalarValue| match v {
        ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    };
    let f64_of = |v: &ScalarValue| match v {
        ScalarValue::Float64(x) => *x,
        other => panic!("not a float: {other:?}"),
    };
    let u64_of = |v: &ScalarValue| match v {
        ScalarValue::UInt64(x) => *x,
        other => panic!("not a u64: {other:?}"),
    };
    // NULL messages and tools: no derived value, no label to keep.
    let r = &got[0];
    assert_eq!(str_of(&r[0]).as_deref(), Some("old/0"));
    assert_eq!(
        (str_of(&r[1]), f64_of(&r[2]), u64_of(&r[3])),
        (None, None, None),
        "{r:?}"
    );
    assert_eq!(
        (u64_of(&r[4]), u64_of(&r[5]), str_of(&r[6])),
        (None, None, None),
        "{r:?}"
    );
    assert_eq!(r[7], ScalarValue::Boolean(Some(true)));
    // No messages: the empty mode, CAC 0, nothing called or offered.
    let r = &got[1];
    assert_eq!(str_of(&r[1]).as_deref(), Some(""), "{r:?}");
    assert_eq!(f64_of(&r[2]).map(f64::abs), Some(0.0), "{r:?}");
    assert_eq!(
        (u64_of(&r[3]), u64_of(&r[4]), u64_of(&r[5])),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(str_of(&r[6]).as_deref(), Some(""));
    // A first call whose arguments are not JSON (1 + 0.5·ln 1 + new = 2), an error, a retry
    // (R; two leaves, neither in the error text: 1 + 0.5·ln 3), then a question.
    let r = &got[2];
    assert_eq!(str_of(&r[1]).as_deref(), Some("S1>R>Q"), "{r:?}");
    let cac = f64_of(&r[2]).unwrap();
    assert!((cac - (3.0 + 0.5 * 3f64.ln())).abs() < 1e-12, "{cac}");
    assert_eq!(
        (u64_of(&r[3]), u64_of(&r[4]), u64_of(&r[5])),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(str_of(&r[6]).as_deref(), Some("book_seat,book_seat"));
    // The stored label wins over the derived mode (S1>A here); CAC 1 + 0.5·ln 2 + 1.
    let r = &got[3];
    assert_eq!(str_of(&r[1]).as_deref(), Some("S1>A"), "{r:?}");
    assert!((f64_of(&r[2]).unwrap() - (2.0 + 0.5 * 2f64.ln())).abs() < 1e-12);
    assert_eq!(r[7], ScalarValue::Boolean(Some(false)));

    // Every plan in queries/ and every view, with the parameters they need.
    let selection = "CREATE TABLE selection AS SELECT * FROM (SELECT traj_id, row_number() OVER (ORDER BY traj_id) AS pick, 1 AS cost, row_number() OVER (ORDER BY traj_id) AS used FROM trajectories) WHERE pick <= 300";
    for s in [&stored, &computed] {
        collect(s, selection).await;
    }
    let params = HashMap::from([
        ("budget".to_string(), "120".to_string()),
        ("by".to_string(), "domain".to_string()),
        ("round".to_string(), "1".to_string()),
        ("n".to_string(), "40".to_string()),
    ]);
    let mut checked = 0;
    for entry in std::fs::read_dir(repo().join("queries")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("ablation_") {
            // They read a budget run's summary and a scores file, not the corpus (the budget
            // summaries are compared below).
            continue;
        }
        let sql =
            tdscale::query::params::substitute(&std::fs::read_to_string(&path).unwrap(), &params)
                .unwrap();
        // approx_percentile_cont's t-digest depends on the order rows arrive in; with more
        // centroids than rows it keeps every value and is exact, whatever the order.
        let sql = sql.replace(
            "approx_percentile_cont(cac, 0.9)",
            "approx_percentile_cont(cac, 0.9, 1000000)",
        );
        let (s, c) = (collect(&stored, &sql).await, collect(&computed, &sql).await);
        // No trajectory of this corpus calls or offers a tool of its two catalogs, so no
        // domain comes from their clusters (tests/it/labels.rs checks the query on BFCL).
        assert!(
            !rows(&s).is_empty() || name == "rounds.sql" || name == "domains_from_clusters.sql",
            "{name}: no rows"
        );
        assert_same_rows(&name, &s, &c);
        checked += 1;
    }
    assert!(checked >= 17, "only {checked} plans found");
    for q in [
        "SELECT * FROM tool_calls",
        "SELECT * FROM computed_trajectory_metrics",
        "SELECT * FROM greedy_entropy(200, 1, 'trajectories')",
        "SELECT * FROM greedy_entropy(200000, 2, 'tokens')",
        "SELECT * FROM deita_select(150, 'trajectories', 0.6)",
        "SELECT * FROM deita_select(20000, 'tokens', 0.8)",
    ] {
        let (s, c) = (collect(&stored, q).await, collect(&computed, q).await);
        assert!(!rows(&s).is_empty(), "{q}: no rows");
        assert_same_rows(q, &s, &c);
    }

    // The Rust plans: the report, a budget grid, and the split written above.
    for by in [
        tdscale::report::GroupBy::Domain,
        tdscale::report::GroupBy::Round,
    ] {
        let (s, c) = (
            tdscale::report::build(&stored, by).await.unwrap(),
            tdscale::report::build(&computed, by).await.unwrap(),
        );
        let (mut s, mut c) = (
            serde_json::to_value(s).unwrap(),
            serde_json::to_value(c).unwrap(),
        );
        s["corpus"] = serde_json::Value::Null;
        c["corpus"] = serde_json::Value::Null;
        if let Some(diff) = json_diff("", &s, &c) {
            panic!("report by {by:?}: {diff}");
        }
    }
    let budget = |out: &Path| tdscale::select::budget::BudgetOptions {
        budgets: vec![50, 200],
        unit: tdscale::select::Unit::Trajectories,
        strategies: tdscale::select::Strategy::ALL.to_vec(),
        seeds: 2,
        out: out.to_str().unwrap().to_string(),
        threshold: 0.6,
        training_files: false,
        progress: false,
    };
    let s = tdscale::select::budget::run(&stored, &budget(&dir.path().join("run-s")))
        .await
        .unwrap();
    let c = tdscale::select::budget::run(&computed, &budget(&dir.path().join("run-c")))
        .await
        .unwrap();
    assert_eq!(s.len(), 2 * 2 * tdscale::select::Strategy::ALL.len());
    assert_eq!(s, c);
    for name in s.iter().map(|x| &x.name) {
        let read = |run: &str| {
            std::fs::read(dir.path().join(run).join(name).join("manifest.parquet")).unwrap()
        };
        assert_eq!(read("run-s"), read("run-c"), "{name}: the manifests differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpora_without_stored_metrics_are_upgraded_and_stale_versions_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("corpus");
    let root_s = root.to_str().unwrap();
    let corpus = Corpus::open(root_s).unwrap();
    // Two parts as an older tdscale wrote them.
    write_part_without_metrics(&corpus, 0).await;
    write_part_without_metrics(&corpus, 3).await;
    let metrics_dir = root.join(TRAJECTORY_METRICS.dir);
    assert!(parquet_files(&metrics_dir).is_empty());

    // `tdscale sql` opens the corpus: the metrics are computed once, then read.
    let o = run(&[
        "sql",
        root_s,
        "--format",
        "json",
        "SELECT traj_id, mode, \"round\" FROM trajectory_metrics ORDER BY \"round\", traj_id",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = json_lines(&stdout(&o));
    assert_eq!(got.len(), 8);
    assert_eq!(got[2]["mode"], "S1>R>Q");
    assert_eq!(got[7]["round"], 3);
    let parts = parquet_files(&root.join("trajectories"));
    assert_eq!(parquet_files(&metrics_dir), parts);
    let refresh = ok(&["metrics", "refresh", root_s, "--json"]);
    assert_eq!(refresh["computed"], 0, "{refresh}");
    assert_eq!(refresh["parts"], 2, "{refresh}");
    assert_eq!(refresh["version"], METRICS_VERSION);

    // Metrics of another definition version are not read; the next use computes the current
    // ones and removes the old.
    let old = root.join("trajectory_metrics/v0");
    std::fs::rename(&metrics_dir, &old).unwrap();
    let r = trajectory_metrics::refresh(&corpus, false).await.unwrap();
    assert_eq!((r.computed, r.removed, r.trajectories), (2, 2, 8), "{r:?}");
    assert!(parquet_files(&old).is_empty());
    assert_eq!(parquet_files(&metrics_dir), parts);

    // A trajectories part that is gone takes its metrics with it.
    let gone = root.join("trajectories").join(&parts[1]);
    std::fs::remove_file(&gone).unwrap();
    let r = trajectory_metrics::refresh(&corpus, false).await.unwrap();
    assert_eq!((r.computed, r.removed, r.parts), (0, 1, 1), "{r:?}");
    assert_eq!(parquet_files(&metrics_dir), vec![parts[0].clone()]);

    // --force recomputes every part, to the same values.
    let before = sql_rows(root_s, "SELECT * FROM trajectory_metrics ORDER BY traj_id");
    let forced = ok(&["metrics", "refresh", root_s, "--force", "--json"]);
    assert_eq!(forced["computed"], 1, "{forced}");
    assert_eq!(forced["trajectories"], 4, "{forced}");
    assert_eq!(
        sql_rows(root_s, "SELECT * FROM trajectory_metrics ORDER BY traj_id"),
        before
    );

    // A trajectories file that is not Parquet: opening the corpus still works (the metrics are
    // computed in the queries, which then name the broken file), and the refresh command says
    // what is wrong.
    std::fs::write(
        root.join("trajectories/round=0/part-broken.parquet"),
        b"not parquet",
    )
    .unwrap();
    let o = run(&["metrics", "refresh", root_s]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("part-broken.parquet") || stderr(&o).to_lowercase().contains("parquet"),
        "{}",
        stderr(&o)
    );
    let session = CorpusSession::open(&corpus).await.unwrap();
    assert!(!session.stored_metrics());
    let err =
        tdscale::query::run_sql(session.ctx(), "SELECT count(*) FROM trajectory_metrics").await;
    assert!(err.is_err());
}

/// A fingerprint of the stored values of a fixed generated corpus. When it changes, a metric
/// definition changed what it returns: raise `metrics_version!` in src/store/tables.rs (so
/// stored corpora are computed again) and update the value here. (If `tdscale gen` changed
/// instead, only the value here needs updating.)
#[test]
fn stored_values_of_a_fixed_corpus_are_pinned() {
    let g = tdscale::generate::Generator::new(tdscale::generate::GenOptions {
        seed: 42,
        ..Default::default()
    });
    let ts: Vec<_> = (0..400).map(|i| g.trajectory(i)).collect();
    let batch = tdscale::store::convert::trajectories_to_batch(&ts).unwrap();
    let m = trajectory_metrics::compute(&batch).unwrap();
    assert_eq!(m.schema(), TRAJECTORY_METRICS.file_schema());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for r in 0..m.num_rows() {
        for c in [
            "mode",
            "cac",
            "steps",
            "tools_used",
            "tool_sequence",
            "user_minhash",
        ] {
            let v = ScalarValue::try_from_array(m.column_by_name(c).unwrap(), r).unwrap();
            // CAC to 1e-9, so that a last-bit difference of `ln` between platforms is not a
            // change of definition.
            let text = match v {
                ScalarValue::Float64(Some(x)) => format!("{:.9}", x),
                other => format!("{other:?}"),
            };
            eat(text.as_bytes());
        }
    }
    let modes: std::collections::BTreeSet<String> = (0..m.num_rows())
        .map(|r| {
            ScalarValue::try_from_array(m.column_by_name("mode").unwrap(), r)
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        modes.len() > 20,
        "the corpus exercises many modes: {modes:?}"
    );
    assert_eq!(
        format!("{h:016x}"),
        "b81fdf3683f52f16",
        "the stored metrics of a fixed corpus changed: raise metrics_version! in src/store/tables.rs and update this value"
    );
}
