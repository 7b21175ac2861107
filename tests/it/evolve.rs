//! Adaptive evolution: the seed plan, `INSERT INTO synthesis_requests`, the verifier, the offline
//! loop (steered against random seeds), and the OpenAI backend against a faulty server, killed
//! and resumed.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{Value, json};
use tdscale::model::{Message, ToolCall, ToolDef, Trajectory};
use tdscale::synth::blueprint::{Blueprint, Dependency, Mutation, PlannedCall, Step};
use tdscale::synth::verify::verify;

use crate::common::{OpenAiStub, bin, json_lines, number, ok_json, run, sql_rows, stderr, stdout};

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// get_user produces the order id that get_order consumes.
fn order_blueprint() -> Blueprint {
    let tool = |name: &str, param: &str| {
        ToolDef {
        name: name.into(),
        description: None,
        parameters: Some(
            json!({"type": "object", "properties": {param: {"type": "string"}}, "required": [param]})
                .to_string(),
        ),
    }
    };
    let mut bp = Blueprint {
        blueprint_id: "bp-test".into(),
        seed_id: "seed".into(),
        mutation: Mutation::Deepen,
        domain: Some("retail".into()),
        cluster_id: None,
        goal: "Where is my order?".into(),
        persona: "a customer".into(),
        expected_outcome: "the order status".into(),
        system: None,
        tools: vec![tool("get_user", "user_id"), tool("get_order", "order_id")],
        steps: vec![
            Step::Calls {
                calls: vec![PlannedCall {
                    tool: "get_user".into(),
                    arguments: obj(json!({"user_id": "u_123"})),
                    produces: obj(json!({"order_id": "ord_987"})),
                    depends_on: vec![],
                    fails_first: false,
                }],
            },
            Step::Calls {
                calls: vec![PlannedCall {
                    tool: "get_order".into(),
                    arguments: obj(json!({"order_id": "ord_987"})),
                    produces: Default::default(),
                    depends_on: vec![Dependency {
                        argument: "order_id".into(),
                        call: 0,
                        field: "order_id".into(),
                    }],
                    fails_first: false,
                }],
            },
            Step::Answer {
                text: "Your order ships tomorrow.".into(),
            },
        ],
        target_mode: String::new(),
        target_complexity: 0.0,
    };
    bp.compute_targets(&tdscale::synth::grounding::Grounding::default());
    bp
}

fn call(id: &str, name: &str, args: Value) -> Message {
    Message::calls(vec![ToolCall {
        id: Some(id.into()),
        name: name.into(),
        arguments: args.to_string(),
    }])
}

fn result(id: &str, content: Value) -> Message {
    let mut m = Message::tool_result(content.to_string());
    m.tool_call_id = Some(id.into());
    m
}

/// The trajectory the blueprint describes, with the second call's arguments as given.
fn order_trajectory(bp: &Blueprint, second: (&str, Value)) -> Trajectory {
    Trajectory {
        traj_id: "t".into(),
        tools: bp.tools.clone().into(),
        messages: vec![
            Message::text("user", "Where is my order?"),
            call("c1", "get_user", json!({"user_id": "u_123"})),
            result("c1", json!({"name": "Mia", "order_id": "ord_987"})),
            call("c2", second.0, second.1),
            result("c2", json!({"status": "shipped"})),
            Message::text("assistant", "Your order ships tomorrow."),
        ],
        ..Default::default()
    }
}

#[test]
fn blueprint_targets_are_the_metrics_of_its_skeleton() {
    let bp = order_blueprint();
    // By hand: get_user is a single call consuming nothing (S1); get_order consumes "ord_987"
    // from the first result (C1); then the answer (A).
    assert_eq!(bp.target_mode, "S1>C1>A");
    // c = 1 + 0.5·ln(1+1) + 1·new for get_user; the same + 1·dep for get_order.
    let expected = (2.0 + 0.5 * 2f64.ln()) + (3.0 + 0.5 * 2f64.ln());
    assert!((bp.target_complexity - expected).abs() < 1e-9);
}

#[test]
fn verifier_accepts_the_blueprint_and_rejects_each_fault_with_its_reason() {
    let bp = order_blueprint();
    let good = order_trajectory(&bp, ("get_order", json!({"order_id": "ord_987"})));
    assert_eq!(verify(&good, &bp), Vec::<String>::new());

    let unknown = order_trajectory(&bp, ("delete_all_orders", json!({"order_id": "ord_987"})));
    let reasons = verify(&unknown, &bp);
    assert!(
        reasons
            .iter()
            .any(|r| r == "unknown tool `delete_all_orders` (call 1)"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r
                .starts_with("strayed from the blueprint: called [get_user, delete_all_orders]")),
        "{reasons:?}"
    );

    let broken = order_trajectory(&bp, ("get_order", json!({"order_id": "ord_000"})));
    let reasons = verify(&broken, &bp);
    assert!(
        reasons.iter().any(|r| r.starts_with(
            "broken dependency: argument `order_id` of call 1 (`get_order`) does not come from the result of call 0"
        )),
        "{reasons:?}"
    );
    // Without the dependency both calls are plain single calls (a tool result ends each run):
    // the pattern is S1>A, not S1>C1>A.
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("reasoning mode `S1>A`, planned `S1>C1>A`")),
        "{reasons:?}"
    );

    let invalid = order_trajectory(&bp, ("get_order", json!({"order_id": 987})));
    let reasons = verify(&invalid, &bp);
    assert!(
        reasons.iter().any(
            |r| r.starts_with("invalid arguments for `get_order` (call 1)") && r.contains("string")
        ),
        "{reasons:?}"
    );

    let not_json = order_trajectory(&bp, ("get_order", json!("x")));
    let mut t = not_json.clone();
    t.messages[3].tool_calls[0].arguments = "{\"order_id\": ".into();
    let reasons = verify(&t, &bp);
    assert!(
        reasons.iter().any(|r| r.contains("arguments are not JSON")),
        "{reasons:?}"
    );

    let mut unanswered = good.clone();
    unanswered.messages.pop();
    let reasons = verify(&unanswered, &bp);
    assert!(
        reasons
            .iter()
            .any(|r| r == "no final answer from the assistant"),
        "{reasons:?}"
    );
}

fn generate(dir: &Path, name: &str, n: usize, seed: u64) -> String {
    let c = dir.join(name);
    let o = run(&[
        "gen",
        c.to_str().unwrap(),
        "--trajectories",
        &n.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    c.to_str().unwrap().to_string()
}

fn json_out(args: &[&str]) -> Value {
    ok_json(&run(args))
}

fn num(v: &Value, k: &str) -> f64 {
    number(&v[k])
}

#[test]
fn the_seed_plan_picks_the_rarest_cells_and_insert_runs_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let c = generate(dir.path(), "c", 600, 5);
    // Surprisal only: every picked seed's (domain, mode) cell is at most as frequent as the
    // cell of any trajectory left out.
    let picked = sql_rows(
        &c,
        "SELECT seed_id, domain, reasoning_mode FROM seeds_next_round",
    );
    assert_eq!(picked.len(), 200, "the default n is 200");
    let o = run(&[
        "sql",
        &c,
        "--format",
        "json",
        "-p",
        "n=12",
        "-p",
        "w_cac=0",
        "-p",
        "w_cluster=0",
        "SELECT seed_id, domain, reasoning_mode, mutation, \"round\" FROM seeds_next_round",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let picked = json_lines(&stdout(&o));
    assert_eq!(picked.len(), 12);
    let cells = sql_rows(
        &c,
        "SELECT coalesce(domain, 'unknown') AS d, coalesce(reasoning_mode, reasoning_mode(messages)) AS m, count(*) AS n FROM trajectories GROUP BY 1, 2",
    );
    let count: HashMap<(String, String), f64> = cells
        .iter()
        .map(|r| {
            (
                (
                    r["d"].as_str().unwrap().to_string(),
                    r["m"].as_str().unwrap().to_string(),
                ),
                num(r, "n"),
            )
        })
        .collect();
    let picked_ids: HashSet<&str> = picked
        .iter()
        .map(|r| r["seed_id"].as_str().unwrap())
        .collect();
    let worst_picked = picked
        .iter()
        .map(|r| {
            count[&(
                r["domain"].as_str().unwrap().to_string(),
                r["reasoning_mode"].as_str().unwrap().to_string(),
            )]
        })
        .fold(0.0, f64::max);
    let all = sql_rows(
        &c,
        "SELECT traj_id, coalesce(domain, 'unknown') AS d, coalesce(reasoning_mode, reasoning_mode(messages)) AS m FROM trajectories",
    );
    let best_left = all
        .iter()
        .filter(|r| !picked_ids.contains(r["traj_id"].as_str().unwrap()))
        .map(|r| {
            count[&(
                r["d"].as_str().unwrap().to_string(),
                r["m"].as_str().unwrap().to_string(),
            )]
        })
        .fold(f64::INFINITY, f64::min);
    assert!(
        worst_picked <= best_left,
        "picked a cell of {worst_picked} over one of {best_left}"
    );
    for r in &picked {
        assert_eq!(r["round"], json!(1));
        assert!(["deepen", "broaden", "shift"].contains(&r["mutation"].as_str().unwrap()));
    }

    // The INSERT runs a batch and returns the accepted count.
    let o = run(&[
        "sql",
        &c,
        "--format",
        "json",
        "-p",
        "n=12",
        "INSERT INTO synthesis_requests SELECT * FROM seeds_next_round",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let inserted: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let batches = sql_rows(&c, "SELECT * FROM batches");
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(num(b, "requested"), 12.0);
    assert_eq!(num(&inserted, "count"), num(b, "accepted"));
    assert_eq!(
        num(b, "accepted") + num(b, "rejected") + num(b, "failed"),
        12.0
    );
    let requests = sql_rows(&c, "SELECT count(*) AS n FROM synthesis_requests");
    assert_eq!(num(&requests[0], "n"), 12.0);
    let new = sql_rows(
        &c,
        "SELECT count(*) AS n, count(DISTINCT parent_id) AS parents FROM trajectories WHERE \"round\" = 1",
    );
    assert_eq!(num(&new[0], "n"), num(b, "accepted"));
    assert_eq!(
        num(&new[0], "parents"),
        num(b, "accepted"),
        "one child per seed"
    );
    let bps = sql_rows(
        &c,
        "SELECT count(*) AS n FROM blueprints WHERE target_mode <> '' AND goal <> ''",
    );
    assert_eq!(num(&bps[0], "n"), 12.0);
}

#[test]
fn steered_evolution_raises_diversity_more_than_random_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut curves: HashMap<&str, Vec<(f64, f64)>> = HashMap::new();
    for strategy in ["steered", "random"] {
        let c = generate(dir.path(), strategy, 2000, 11);
        let s = json_out(&[
            "evolve",
            &c,
            "--rounds",
            "3",
            "--per-round",
            "80",
            "--strategy",
            strategy,
            "--json",
        ]);
        assert_eq!(s["batches"].as_array().unwrap().len(), 3);
        let rounds = json_out(&["rounds", &c, "--json"]);
        let rows = rounds.as_array().unwrap();
        assert_eq!(rows.len(), 4, "baseline and three rounds: {rounds}");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r["round"], json!(i));
        }
        curves.insert(
            strategy,
            rows.iter()
                .map(|r| (num(r, "de_bits"), num(r, "rme_bits")))
                .collect(),
        );
        // Every new trajectory passed the verifier, carries its lineage and labels, and is there once.
        let accepted: f64 = s["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| num(b, "accepted"))
            .sum();
        let new = sql_rows(
            &c,
            "SELECT count(*) AS n, count(DISTINCT traj_id) AS ids,
                    sum(CASE WHEN parent_id IS NOT NULL AND batch_id IS NOT NULL AND domain IS NOT NULL
                              AND reasoning_mode = reasoning_mode(messages) THEN 1 ELSE 0 END) AS labelled
             FROM trajectories WHERE \"round\" > 0",
        );
        assert_eq!(num(&new[0], "n"), accepted);
        assert_eq!(num(&new[0], "ids"), accepted);
        assert_eq!(num(&new[0], "labelled"), accepted);
        assert!(
            accepted >= 0.9 * 240.0,
            "offline acceptance too low: {accepted} of 240"
        );
        // Code steps ran for real in the sandbox: each result is the mean the code computes.
        let runs = sql_rows(
            &c,
            "SELECT arguments, result, is_error FROM tool_calls WHERE tool_name = 'python' AND \"round\" > 0 AND arguments LIKE '%values = [%'",
        );
        assert!(!runs.is_empty(), "no code step was synthesized");
        for r in &runs {
            let code: Value = serde_json::from_str(r["arguments"].as_str().unwrap()).unwrap();
            let code = code["code"].as_str().unwrap();
            let list = &code[code.find('[').unwrap() + 1..code.find(']').unwrap()];
            let xs: Vec<f64> = list.split(',').map(|x| x.trim().parse().unwrap()).collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let got: f64 = r["result"].as_str().unwrap().parse().unwrap();
            assert!(
                (got - mean).abs() < 1e-9,
                "{code} printed {got}, expected {mean}"
            );
            assert_eq!(r["is_error"], json!(false));
        }
    }
    let steered = &curves["steered"];
    let random = &curves["random"];
    assert_eq!(steered[0], random[0], "both start from the same corpus");
    for w in steered.windows(2) {
        assert!(
            w[1].0 > w[0].0,
            "steered DE must rise every round: {steered:?}"
        );
        assert!(
            w[1].1 > w[0].1,
            "steered RME must rise every round: {steered:?}"
        );
    }
    for r in 1..=3 {
        assert!(
            steered[r].0 > random[r].0,
            "round {r}: DE steered {steered:?} vs random {random:?}"
        );
        assert!(
            steered[r].1 > random[r].1,
            "round {r}: RME steered {steered:?} vs random {random:?}"
        );
    }
}

fn openai_args<'a>(corpus: &'a str, stub: &'a OpenAiStub, per_round: &'a str) -> Vec<&'a str> {
    vec![
        "evolve",
        corpus,
        "--rounds",
        "1",
        "--per-round",
        per_round,
        "--backend",
        "openai",
        "--base-url",
        &stub.base_url,
        "--model",
        "stub-model",
        "--request-timeout",
        "1s",
        "--retry-base",
        "10ms",
        "--max-retries",
        "4",
        "--concurrency",
        "4",
        "--json",
    ]
}

#[test]
fn openai_backend_retries_transient_faults_and_records_failed_items() {
    let dir = tempfile::tempdir().unwrap();
    let c = generate(dir.path(), "c", 300, 2);
    let stub = OpenAiStub::start(
        &dir.path().join("requests.jsonl"),
        &[
            "--faults",
            "429,500,timeout,truncated,nonjson",
            "--every",
            "4",
            "--timeout-sleep",
            "2",
            "--always-fail",
            "airline_",
        ],
    );
    let s = json_out(&openai_args(&c, &stub, "24"));
    let b = &s["batches"][0];
    let (acc, rej, fail) = (num(b, "accepted"), num(b, "rejected"), num(b, "failed"));
    assert_eq!(acc + rej + fail, 24.0, "no request lost: {b}");
    assert!(
        fail >= 1.0,
        "requests that always fail must fail their items: {b}"
    );
    assert!(acc >= 1.0, "{b}");
    // Every kind of transient fault was seen and retried.
    let faults = &s["backend"]["faults"];
    for kind in ["429", "500", "timeout", "truncated body", "not JSON"] {
        assert!(
            faults[kind].as_u64().unwrap_or(0) >= 1,
            "no {kind} retried: {faults}"
        );
    }
    let log = stub.requests();
    let answered = log.iter().filter(|r| r["outcome"] == "ok").count() as f64;
    assert_eq!(
        num(&s["backend"], "answered"),
        answered,
        "the client counts what the server answered"
    );
    // Failed items are recorded with why; verifier rejections with theirs.
    let rejects = sql_rows(&c, "SELECT stage, reasons FROM synthesis_rejects");
    assert_eq!(rejects.len() as f64, rej + fail);
    let failed: Vec<&Value> = rejects
        .iter()
        .filter(|r| r["stage"] != "verifier")
        .collect();
    assert_eq!(failed.len() as f64, fail);
    for r in failed {
        assert!(
            r["reasons"]
                .as_str()
                .unwrap()
                .contains("gave up after 5 attempts: 500"),
            "{r}"
        );
    }
    let n = sql_rows(
        &c,
        "SELECT count(*) AS n FROM trajectories WHERE \"round\" = 1",
    );
    assert_eq!(num(&n[0], "n"), acc);
}

#[test]
fn killed_batch_resumes_without_duplicates_or_repeated_calls() {
    let dir = tempfile::tempdir().unwrap();
    let c = generate(dir.path(), "c", 300, 4);
    let stub = OpenAiStub::start(&dir.path().join("requests.jsonl"), &["--delay", "0.03"]);
    let args = openai_args(&c, &stub, "30");
    let mut child = bin()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cache = Path::new(&c).join("cache/llm");
    let count = |p: &Path| crate::common::files_under(p).len();
    let started = std::time::Instant::now();
    while count(&cache) < 40 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the batch finished before it could be killed"
        );
        assert!(started.elapsed().as_secs() < 120, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // A `#n` file is an answer still being written when the process was killed: not cached.
    let cached: HashSet<String> = crate::common::files_under(&cache)
        .iter()
        .filter(|f| !f.contains('#'))
        .filter_map(|f| {
            Path::new(f)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    let seen_before = stub.requests().len();
    assert!(
        crate::common::files_under(&Path::new(&c).join("batches")).is_empty(),
        "the batch must not have finished before the kill"
    );

    let s = json_out(&args);
    assert_eq!(s["resumed_batches"], json!(1));
    assert_eq!(
        s["batches"].as_array().unwrap().len(),
        1,
        "the resumed batch is this run's round"
    );
    let b = &s["batches"][0];
    assert_eq!(num(b, "requested"), 30.0);
    let after: Vec<Value> = stub.requests().split_off(seen_before);
    let repeated: Vec<&Value> = after
        .iter()
        .filter(|r| cached.contains(r["key"].as_str().unwrap()))
        .collect();
    assert!(
        repeated.is_empty(),
        "answered calls were sent again: {repeated:?}"
    );
    assert!(
        num(&s["backend"], "cache_hits") >= cached.len() as f64,
        "every answer cached before the kill is reused"
    );
    let rows = sql_rows(
        &c,
        "SELECT count(*) AS n, count(DISTINCT traj_id) AS ids FROM trajectories WHERE \"round\" = 1",
    );
    assert_eq!(num(&rows[0], "n"), num(b, "accepted"));
    assert_eq!(num(&rows[0], "ids"), num(b, "accepted"));
    assert_eq!(sql_rows(&c, "SELECT * FROM batches").len(), 1);
    assert_eq!(
        num(
            &sql_rows(&c, "SELECT count(*) AS n FROM synthesis_requests")[0],
            "n"
        ),
        30.0
    );
    // Running again starts a new round instead of repeating the finished batch.
    let again = json_out(&args);
    assert_eq!(again["resumed_batches"], json!(0));
    assert_eq!(again["batches"][0]["round"], json!(2));
}

#[test]
fn a_batch_where_every_request_fails_stops_evolution_with_exit_code_6() {
    let dir = tempfile::tempdir().unwrap();
    let c = generate(dir.path(), "c", 200, 5);
    let stub = OpenAiStub::start(
        &dir.path().join("requests.jsonl"),
        &["--always-status", "401"],
    );
    let mut args = openai_args(&c, &stub, "6");
    args[3] = "3"; // --rounds 3: the first batch fails whole, so no second one starts
    assert_eq!(args[2], "--rounds");
    let o = bin()
        .args(&args)
        .args(["--api-key", "sk-wrong-key-4d1f"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("every one of the 6 requests") && err.contains("API key"),
        "{err}"
    );
    assert!(!err.contains("sk-wrong-key-4d1f") && !stdout(&o).contains("sk-wrong-key-4d1f"));
    // The summary is still printed, and says what happened.
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let batches = s["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "stopped after the failed batch: {s}");
    assert_eq!(num(&batches[0], "requested"), 6.0);
    assert_eq!(num(&batches[0], "failed"), 6.0);
    assert_eq!(num(&batches[0], "accepted"), 0.0);
    // 401 is not retried: one request per item, none for a second round.
    let log = stub.requests();
    assert_eq!(log.len(), 6, "{log:?}");
    assert!(log.iter().all(|r| r["outcome"] == "401"));
    let rejects = sql_rows(&c, "SELECT count(*) AS n FROM synthesis_rejects");
    assert_eq!(num(&rejects[0], "n"), 6.0);
}
