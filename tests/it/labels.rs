//! Labels the data lacks: tool schemas inferred from the calls of real trajectories (tau-bench
//! airline, whose files carry no schemas), and a domain for every trajectory from its tools'
//! clusters or from a model (the OpenAI-compatible test server), on the BFCL multi-turn files.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Value, json};
use tdscale::labels::shape::{Learn, Shape, sample_pattern};

use crate::common::{
    OpenAiStub, files_under, number, ok_json, run, shared, sql_rows, stderr, stdout,
};

const TAU: &str = "tau-bench/gpt-4o-airline.json";

fn ingest(corpus: &str, files: &[&Path], extra: &[&str]) {
    let mut args: Vec<&str> = vec!["ingest", corpus];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn schema_of(corpus: &str, tool: &str, column: &str) -> Value {
    let rows = sql_rows(
        corpus,
        &format!(
            "SELECT {column} AS s FROM tools WHERE name = '{tool}' AND provenance = 'inferred'"
        ),
    );
    assert_eq!(rows.len(), 1, "one inferred definition of {tool}: {rows:?}");
    serde_json::from_str(rows[0]["s"].as_str().unwrap()).unwrap()
}

#[test]
fn the_shape_learner_writes_types_formats_enums_and_patterns_that_every_value_passes() {
    let mut s = Shape::default();
    let ids = ["ZFA04Y", "4WQ150", "HATHAT", "Q0ZF0J"];
    let users = ["mia_li_3668", "noah_muller_9847"];
    let cabins = ["economy", "business"];
    for i in 0..12 {
        s.observe(&json!({
            "reservation_id": ids[i % 4],
            "user_id": users[i % 2],
            "cabin": cabins[i % 2],
            "when": format!("2024-05-{:02}", 10 + i),
            "at": "2024-05-15T15:00:00Z",
            "mail": format!("u{i}@example.org"),
            "n": i,
            "price": 1.5 * i as f64,
            "note": if i == 3 { Value::Null } else { json!(format!("free text number {i}")) },
            "legs": [{"flight": "HAT001", "seat": i}],
        }));
    }
    s.observe(&json!({"reservation_id": "AB12CD", "user_id": "ana_ito_1234", "cabin": "economy", "when": "2024-06-01", "at": "2024-06-01T00:00:00+02:00", "mail": "x@y.io", "n": 3, "price": 2, "legs": []}));
    let schema = s.render(Learn::ARGUMENTS);
    let p = &schema["properties"];
    assert_eq!(p["reservation_id"]["pattern"], "^[A-Z0-9]{6}$");
    assert_eq!(p["user_id"]["pattern"], "^[a-z]{3,4}_[a-z]{2,6}_[0-9]{4}$");
    assert_eq!(p["cabin"]["enum"], json!(["business", "economy"]));
    assert_eq!(p["when"]["format"], "date");
    assert_eq!(p["at"]["format"], "date-time");
    assert_eq!(p["mail"]["format"], "email");
    assert_eq!(p["n"]["type"], "integer");
    assert_eq!(p["price"]["type"], "number");
    assert_eq!(p["note"]["type"], json!(["string", "null"]));
    assert!(p["note"].get("enum").is_none(), "free text is not a set");
    assert_eq!(p["legs"]["items"]["required"], json!(["flight", "seat"]));
    // `note` and `legs`' contents are missing from some objects: not required.
    assert_eq!(
        schema["required"],
        json!([
            "at",
            "cabin",
            "legs",
            "mail",
            "n",
            "price",
            "reservation_id",
            "user_id",
            "when"
        ])
    );
    // Results learn types and structure, not enums or patterns.
    let out = s.render(Learn::RESULTS);
    assert!(out["properties"]["cabin"].get("enum").is_none());
    assert!(out["properties"]["reservation_id"].get("pattern").is_none());
    // Formats that look close but are not: no format.
    let mut t = Shape::default();
    for v in ["2024-05-15", "2024-13-01"] {
        t.observe(&json!(v));
    }
    t.observe(&json!("2024-05-15 15:00:00"));
    assert!(t.render(Learn::ARGUMENTS).get("format").is_none());
    // Samples of a learnt pattern match it.
    let pattern = p["user_id"]["pattern"].as_str().unwrap();
    let check = json!({"type": "string", "pattern": pattern}).to_string();
    let mut k = 0usize;
    for _ in 0..50 {
        let v = sample_pattern(pattern, &mut |n| {
            k = k.wrapping_mul(31).wrapping_add(17);
            k % n
        })
        .unwrap();
        assert_eq!(
            tdscale::metrics::args_valid::validate(&json!(v).to_string(), &check),
            Some(true),
            "{v} does not match {pattern}"
        );
    }
}

#[test]
fn tools_infer_learns_tau_bench_schemas_that_validate_every_call_and_yields_to_catalogs() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c").to_str().unwrap().to_string();
    ingest(&c, &[&shared(TAU)], &[]);
    let s = ok_json(&run(&["tools", "infer", &c, "--json"]));
    // 14 tools, 1,164 calls (the data's README; counted again below from the corpus).
    assert_eq!(s["tools"].as_array().unwrap().len(), 14);
    assert_eq!(number(&s["calls"]), 1164.0);
    assert_eq!(number(&s["unreadable_arguments"]), 0.0);
    assert_eq!(s["replaced"], json!(false));

    // Hand-written expectations, from reading the calls in the file.
    let reservation = json!({
        "type": "object",
        "properties": {"reservation_id": {"type": "string", "pattern": "^[A-Z0-9]{6}$"}},
        "required": ["reservation_id"]
    });
    assert_eq!(
        schema_of(&c, "get_reservation_details", "parameters"),
        reservation
    );
    assert_eq!(
        schema_of(&c, "cancel_reservation", "parameters"),
        reservation
    );
    assert_eq!(
        schema_of(&c, "search_direct_flight", "parameters"),
        json!({
            "type": "object",
            "properties": {
                "date": {"type": "string", "format": "date"},
                "destination": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "origin": {"type": "string", "pattern": "^[A-Z]{3}$"}
            },
            "required": ["date", "destination", "origin"]
        })
    );
    let book = schema_of(&c, "book_reservation", "parameters");
    assert_eq!(
        book["required"],
        json!([
            "cabin",
            "destination",
            "flight_type",
            "flights",
            "insurance",
            "nonfree_baggages",
            "origin",
            "passengers",
            "payment_methods",
            "total_baggages",
            "user_id"
        ])
    );
    let p = &book["properties"];
    assert_eq!(
        p["cabin"],
        json!({"type": "string", "enum": ["basic_economy", "business", "economy"]})
    );
    assert_eq!(
        p["flight_type"],
        json!({"type": "string", "enum": ["one_way", "round_trip"]})
    );
    assert_eq!(p["insurance"], json!({"type": "string", "enum": ["no"]}));
    assert_eq!(p["total_baggages"], json!({"type": "integer"}));
    assert_eq!(p["passengers"]["type"], "array");
    assert_eq!(
        p["passengers"]["items"]["required"],
        json!(["dob", "first_name", "last_name"])
    );
    assert_eq!(
        p["passengers"]["items"]["properties"]["dob"]["format"],
        "date"
    );
    assert_eq!(
        p["flights"]["items"]["properties"]["flight_number"]["pattern"],
        "^[A-Z0-9]{6}$"
    );
    let flights = schema_of(&c, "update_reservation_flights", "parameters");
    assert_eq!(
        flights["properties"]["cabin"]["enum"],
        json!(["business", "economy"])
    );
    assert_eq!(
        flights["required"],
        json!(["cabin", "flights", "payment_id", "reservation_id"])
    );
    // An identifier made of words and digits gets a pattern, never an enum.
    let user = schema_of(&c, "get_user_details", "parameters");
    assert_eq!(user["properties"]["user_id"]["type"], "string");
    assert!(user["properties"]["user_id"]["pattern"].is_string());
    assert!(user["properties"]["user_id"].get("enum").is_none());
    // Output schemas: an object's fields, a list's items, plain text as a string.
    let out = schema_of(&c, "get_user_details", "output_schema");
    assert_eq!(out["type"], "object");
    assert_eq!(out["properties"]["email"]["format"], "email");
    let out = schema_of(&c, "search_direct_flight", "output_schema");
    assert_eq!(out["type"], "array");
    assert_eq!(
        out["items"]["properties"]["flight_number"]["type"],
        "string"
    );
    assert_eq!(
        schema_of(&c, "transfer_to_human_agents", "output_schema"),
        json!({"type": "string"})
    );

    // Every call validates against the schema learnt from it, and each tool counts its calls.
    let rows = sql_rows(
        &c,
        "SELECT t.name, count(*) AS calls, max(t.learned_from_calls) AS learned,
                sum(CASE WHEN args_valid(c.arguments, t.parameters) THEN 1 ELSE 0 END) AS valid,
                max(t.provenance) AS provenance
         FROM tool_calls c JOIN tools t ON t.name = c.tool_name GROUP BY t.name",
    );
    assert_eq!(rows.len(), 14);
    let mut total = 0.0;
    for r in &rows {
        assert_eq!(r["provenance"], "inferred");
        assert_eq!(number(&r["valid"]), number(&r["calls"]), "{r}");
        assert_eq!(number(&r["learned"]), number(&r["calls"]), "{r}");
        total += number(&r["calls"]);
    }
    assert_eq!(total, 1164.0);
    // ... and every JSON result that is not an error validates against the output schema.
    let rows = sql_rows(
        &c,
        "SELECT count(*) AS n, sum(CASE WHEN args_valid(c.result, t.output_schema) THEN 1 ELSE 0 END) AS valid
         FROM tool_calls c JOIN tools t ON t.name = c.tool_name
         WHERE NOT c.is_error AND (c.result LIKE '{%' OR c.result LIKE '[%')",
    );
    assert!(number(&rows[0]["n"]) > 700.0);
    assert_eq!(rows[0]["n"], rows[0]["valid"]);

    // Running it again replaces the inferred rows with the same ones.
    let file = Path::new(&c).join("tools/inferred.parquet");
    let before = std::fs::read(&file).unwrap();
    let again = ok_json(&run(&["tools", "infer", &c, "--json"]));
    assert_eq!(again["replaced"], json!(true));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(
        number(&sql_rows(&c, "SELECT count(*) AS n FROM tools")[0]["n"]),
        14.0
    );

    // A catalog definition wins: the tool is no longer inferred once a catalog defines it.
    let catalog = dir.path().join("users.json");
    std::fs::write(
        &catalog,
        json!([{"type": "function", "function": {"name": "get_user_details", "description": "Look up a customer profile by id.", "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}, "required": ["user_id"]}}}]).to_string(),
    )
    .unwrap();
    ingest(&c, &[&catalog], &["--table", "tools"]);
    let s = ok_json(&run(&["tools", "infer", &c, "--json"]));
    let names: Vec<&str> = s["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 13);
    assert!(!names.contains(&"get_user_details"));
    let defs = sql_rows(
        &c,
        "SELECT provenance FROM tools WHERE name = 'get_user_details'",
    );
    assert_eq!(defs, vec![json!({"provenance": "catalog"})]);
}

#[test]
fn tools_infer_learns_only_from_readable_arguments_and_says_how_many_were_not() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c").to_str().unwrap().to_string();
    let file = dir.path().join("calls.jsonl");
    let traj = |id: &str, name: &str, args: &str, result: &str| {
        json!({"id": id, "messages": [
            {"role": "user", "content": "please"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}]},
            {"role": "tool", "tool_call_id": "c1", "content": result},
            {"role": "assistant", "content": "done"}
        ]})
        .to_string()
    };
    let lines = [
        traj(
            "a",
            "lookup",
            r#"{"q": "alpha", "limit": 3}"#,
            r#"{"hits": [1, 2]}"#,
        ),
        traj("b", "lookup", r#"{"q": "beta"}"#, r#"{"hits": []}"#),
        traj("c", "lookup", r#"{"q": "#, r#"{"hits": [3]}"#),
        traj("d", "lookup", r#"["q", "gamma"]"#, "Error: bad request"),
        traj("e", "broken", "not json at all", "ok"),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    ingest(&c, &[&file], &[]);
    let s = ok_json(&run(&["tools", "infer", &c, "--json"]));
    let tools: BTreeMap<String, Value> = s["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t.clone()))
        .collect();
    let lookup = &tools["lookup"];
    assert_eq!(number(&lookup["calls"]), 4.0);
    assert_eq!(number(&lookup["learned_from_calls"]), 2.0);
    assert_eq!(number(&lookup["unreadable_arguments"]), 2.0);
    assert_eq!(number(&lookup["error_results"]), 1.0);
    assert_eq!(lookup["required"], json!(["q"]));
    assert_eq!(
        schema_of(&c, "lookup", "parameters"),
        json!({"type": "object", "properties": {"limit": {"type": "integer"}, "q": {"type": "string"}}, "required": ["q"]})
    );
    // Results: the error is left out, the rest merged.
    assert_eq!(
        schema_of(&c, "lookup", "output_schema"),
        json!({"type": "object", "properties": {"hits": {"type": "array", "items": {"type": "integer"}}}, "required": ["hits"]})
    );
    // A tool whose every call is unreadable is still defined, learnt from no call.
    assert_eq!(number(&tools["broken"]["learned_from_calls"]), 0.0);
    assert_eq!(
        schema_of(&c, "broken", "parameters"),
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(number(&s["unreadable_arguments"]), 3.0);
}

/// The BFCL multi-turn trajectories (no domain labels) and, with `catalog`, their function docs.
fn bfcl_corpus(dir: &Path, name: &str, catalog: bool) -> String {
    let c = dir.join(name).to_str().unwrap().to_string();
    ingest(
        &c,
        &[
            &shared("bfcl/BFCL_v4_multi_turn_base.json"),
            &shared("bfcl/BFCL_v4_multi_turn_miss_func.json"),
        ],
        &[],
    );
    if catalog {
        let docs: Vec<std::path::PathBuf> = std::fs::read_dir(shared("bfcl/multi_turn_func_doc"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let docs: Vec<&Path> = docs.iter().map(|p| p.as_path()).collect();
        ingest(&c, &docs, &["--table", "tools"]);
    }
    c
}

/// Every column but the domain's, in order: what a relabelling must leave as it was.
fn other_columns(c: &str) -> Vec<Value> {
    sql_rows(
        c,
        "SELECT traj_id, source, format, \"round\", parent_id, batch_id, cluster_id, reasoning_mode,
                system, tools, messages, num_turns, num_tool_calls, num_tokens, reward, metadata
         FROM trajectories ORDER BY traj_id",
    )
}

#[test]
fn label_from_clusters_gives_every_bfcl_trajectory_a_domain_and_de_appears() {
    let dir = tempfile::tempdir().unwrap();
    let c = bfcl_corpus(dir.path(), "c", false);
    let n = |q: &str| number(&sql_rows(&c, q)[0]["n"]);
    assert_eq!(
        n("SELECT count(*) AS n FROM trajectories WHERE domain IS NOT NULL"),
        0.0
    );
    // No catalog: a clear usage error.
    let o = run(&["label", &c, "--domains", "clusters"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--table tools"), "{}", stderr(&o));
    // A file of trajectories whose domain their data gives: never relabelled.
    let own = dir.path().join("own.jsonl");
    std::fs::write(
        &own,
        json!({"id": "mine", "messages": [{"role": "user", "content": "list my files"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]}]}).to_string(),
    )
    .unwrap();
    ingest(&c, &[&own], &["--domain", "my_domain"]);
    let docs = bfcl_corpus(dir.path(), "c", true);
    assert_eq!(docs, c);
    let before = other_columns(&c);
    let files_before = files_under(&Path::new(&c).join("trajectories"));

    let s = ok_json(&run(&["label", &c, "--domains", "clusters", "--json"]));
    assert!(number(&s["clusters_built"]) > 0.0, "{s}");
    let total = n("SELECT count(*) AS n FROM trajectories");
    assert_eq!(total, 401.0);
    let labelled = n("SELECT count(*) AS n FROM trajectories WHERE domain IS NOT NULL");
    assert!(labelled >= 0.95 * total, "{labelled} of {total} labelled");
    assert_eq!(number(&s["labelled"]), 400.0);
    assert_eq!(number(&s["kept"]), 1.0);
    assert_eq!(
        sql_rows(
            &c,
            "SELECT domain, domain_source FROM trajectories WHERE traj_id = 'own/mine'"
        ),
        vec![json!({"domain": "my_domain", "domain_source": "source"})]
    );
    // Nothing else changed, and the files kept their names (rewritten in place).
    assert_eq!(other_columns(&c), before);
    assert_eq!(
        files_under(&Path::new(&c).join("trajectories")),
        files_before
    );

    // The stored labels are the majority vote of the calls, computed here from the clusters.
    let clusters = sql_rows(&c, "SELECT domain, tool_names FROM clusters");
    let mut tool_domains: HashMap<String, Vec<String>> = HashMap::new();
    for k in &clusters {
        for t in k["tool_names"].as_array().unwrap() {
            let e = tool_domains
                .entry(t.as_str().unwrap().to_string())
                .or_default();
            let d = k["domain"].as_str().unwrap().to_string();
            if !e.contains(&d) {
                e.push(d);
            }
        }
    }
    let rows = sql_rows(
        &c,
        "SELECT traj_id, domain, domain_source, tool_sequence(messages) AS calls
         FROM trajectories WHERE source <> 'own'",
    );
    for r in &rows {
        let mut votes: BTreeMap<String, f64> = BTreeMap::new();
        for t in r["calls"].as_array().unwrap() {
            if let Some(ds) = tool_domains.get(t.as_str().unwrap()) {
                for d in ds {
                    *votes.entry(d.clone()).or_default() += 1.0 / ds.len() as f64;
                }
            }
        }
        let best = votes
            .iter()
            .max_by(|a, b| a.1.partial_cmp(b.1).unwrap().then(b.0.cmp(a.0)))
            .map(|(d, _)| d.clone());
        assert_eq!(r["domain"].as_str(), best.as_deref(), "{}", r["traj_id"]);
        assert_eq!(r["domain_source"], "cluster");
    }

    // Again: nothing to change, nothing rewritten.
    let again = ok_json(&run(&["label", &c, "--domains", "clusters", "--json"]));
    assert_eq!(number(&again["files_rewritten"]), 0.0);
    assert_eq!(number(&again["unchanged"]), 400.0);

    // DE is defined in the report and in the rounds of an evolution.
    let report = ok_json(&run(&["report", &c, "--json"]));
    let text = report.to_string();
    assert!(text.contains("de_bits"), "{text}");
    let o = run(&["report", &c]);
    let first_group = stdout(&o)
        .lines()
        .find(|l| l.trim_start().starts_with('0'))
        .unwrap()
        .to_string();
    assert!(
        first_group
            .split_whitespace()
            .nth(2)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 1.0,
        "{first_group}"
    );
    ok_json(&run(&[
        "evolve",
        &c,
        "--rounds",
        "1",
        "--per-round",
        "20",
        "--json",
    ]));
    let rounds = ok_json(&run(&["rounds", &c, "--json"]));
    for r in rounds.as_array().unwrap() {
        assert!(number(&r["de_bits"]) > 1.0, "{r}");
    }
}

#[test]
fn label_reads_and_rewrites_files_written_before_domain_source_existed() {
    use datafusion::arrow::array::RecordBatch;
    let dir = tempfile::tempdir().unwrap();
    let c = bfcl_corpus(dir.path(), "c", true);
    // Rewrite one trajectories file the way an older tdscale wrote it: no domain_source column.
    let tdir = Path::new(&c).join("trajectories/round=0");
    let file = std::fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let old: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let i = b.schema().index_of("domain_source").unwrap();
            let mut b = b.clone();
            b.remove_column(i);
            b
        })
        .collect();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&file).unwrap(),
        old[0].schema(),
        None,
    )
    .unwrap();
    for b in &old {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    let rows = sql_rows(
        &c,
        "SELECT count(*) AS n, count(domain_source) AS s FROM trajectories",
    );
    assert_eq!(rows[0], json!({"n": 400, "s": 0}));
    let s = ok_json(&run(&["label", &c, "--domains", "clusters", "--json"]));
    assert_eq!(number(&s["labelled"]), 400.0);
    let rows = sql_rows(
        &c,
        "SELECT count(*) AS n, count(domain_source) AS s FROM trajectories",
    );
    assert_eq!(rows[0], json!({"n": 400, "s": 400}));
}

#[test]
fn label_with_a_model_batches_requests_caches_them_and_resumes_failed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("c").to_str().unwrap().to_string();
    ingest(&c, &[&shared("bfcl/BFCL_v4_multi_turn_base.json")], &[]);
    let o = run(&["label", &c, "--domains", "llm"]);
    assert_eq!(o.status.code(), Some(2), "no model: {}", stderr(&o));
    let args = |stub: &OpenAiStub| -> Vec<String> {
        [
            "label",
            &c,
            "--domains",
            "llm",
            "--backend",
            "openai",
            "--base-url",
            &stub.base_url,
            "--model",
            "stub-model",
            "--batch-size",
            "20",
            "--max-retries",
            "1",
            "--retry-base",
            "10ms",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let label = |stub: &OpenAiStub| {
        let a = args(stub);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok_json(&run(&a))
    };
    // Requests that mention `lockDoors` fail every time: their trajectories stay unlabelled.
    let failing = OpenAiStub::start(
        &dir.path().join("failing.jsonl"),
        &["--always-fail", "lockDoors"],
    );
    let s = label(&failing);
    assert_eq!(
        number(&s["requests"]),
        10.0,
        "200 trajectories, 20 a request"
    );
    let failed = number(&s["failed_requests"]);
    assert!((1.0..10.0).contains(&failed), "{s}");
    assert_eq!(
        number(&s["labelled"]) + number(&s["unlabelled"]),
        200.0,
        "{s}"
    );
    assert_eq!(number(&s["unlabelled"]), 20.0 * failed, "{s}");
    let asked: Vec<Value> = failing.requests();
    assert!(asked.iter().all(|r| r["agent"] == "labeler"));
    drop(failing);

    // The same command against a healthy server sends only the requests that failed.
    let healthy = OpenAiStub::start(&dir.path().join("healthy.jsonl"), &[]);
    let s = label(&healthy);
    assert_eq!(healthy.requests().len() as f64, failed, "{s}");
    assert_eq!(number(&s["backend"]["cache_hits"]), 10.0 - failed);
    assert_eq!(number(&s["unlabelled"]), 0.0);
    // Each label is the model's answer: `stub <first tool called>`, tidied.
    let rows = sql_rows(
        &c,
        "SELECT traj_id, domain, domain_source, tool_sequence(messages)[1] AS first FROM trajectories",
    );
    assert_eq!(rows.len(), 200);
    for r in &rows {
        let expected = match r["first"].as_str() {
            Some(t) => format!("stub_{}", t.to_lowercase()),
            None => "stub_chat".into(),
        };
        assert_eq!(r["domain"].as_str(), Some(expected.as_str()), "{r}");
        assert_eq!(r["domain_source"], "llm");
    }
    // A third run is answered from the cache and changes nothing.
    let before = healthy.requests().len();
    let s = label(&healthy);
    assert_eq!(healthy.requests().len(), before);
    assert_eq!(number(&s["files_rewritten"]), 0.0);
    assert_eq!(number(&s["unchanged"]), 200.0);
}
