//! The evolution loop on real corpora: tau-bench airline (no tool schemas in its files, so
//! `tools infer` first) and the BFCL multi-turn files (with their function docs): the offline
//! backend's trajectories pass their own verifier, their tool results come from the corpus, and
//! steered seeds raise reasoning-mode entropy above a random-seed control at every round.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;
use tdscale::synth::blueprint::{Blueprint, Mutation, Step};
use tdscale::synth::verify::verify;

use crate::common::{number, ok_json, run, shared, sql_rows, stderr, stdout};

fn ingest(corpus: &str, files: &[&Path], extra: &[&str]) {
    let mut args: Vec<&str> = vec!["ingest", corpus];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Evolves `corpus` and returns its `rounds` rows.
fn evolve(corpus: &str, strategy: &str, rounds: usize, per_round: usize) -> Vec<Value> {
    let s = ok_json(&run(&[
        "evolve",
        corpus,
        "--rounds",
        &rounds.to_string(),
        "--per-round",
        &per_round.to_string(),
        "--strategy",
        strategy,
        "--json",
    ]));
    assert_eq!(s["batches"].as_array().unwrap().len(), rounds);
    let rows = ok_json(&run(&["rounds", corpus, "--json"]));
    let rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.len(), rounds + 1, "baseline and each round");
    rows
}

/// Every accepted trajectory passes the verifier again, against its stored blueprint.
fn reverify(corpus: &str) -> usize {
    let bps = sql_rows(
        corpus,
        "SELECT blueprint_id, seed_id, mutation, domain, goal, persona, expected_outcome,
                target_mode, target_complexity, steps, tools FROM blueprints",
    );
    let by_id: HashMap<String, Blueprint> = bps
        .iter()
        .map(|r| {
            let bp = Blueprint {
                blueprint_id: r["blueprint_id"].as_str().unwrap().into(),
                seed_id: r["seed_id"].as_str().unwrap().into(),
                mutation: Mutation::parse(r["mutation"].as_str().unwrap()).unwrap(),
                domain: r["domain"].as_str().map(str::to_string),
                cluster_id: None,
                goal: r["goal"].as_str().unwrap().into(),
                persona: r["persona"].as_str().unwrap().into(),
                expected_outcome: r["expected_outcome"].as_str().unwrap().into(),
                system: None,
                tools: serde_json::from_str(r["tools"].as_str().unwrap()).unwrap(),
                steps: serde_json::from_str::<Vec<Step>>(r["steps"].as_str().unwrap()).unwrap(),
                target_mode: r["target_mode"].as_str().unwrap().into(),
                target_complexity: number(&r["target_complexity"]),
            };
            (bp.blueprint_id.clone(), bp)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth.jsonl");
    let o = run(&[
        "export",
        "openai",
        corpus,
        "--out",
        out.to_str().unwrap(),
        "--where",
        "\"round\" > 0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ctx = tdscale::formats::ParseContext {
        source: "x".into(),
        ..Default::default()
    };
    let mut n = 0;
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let Ok(tdscale::formats::Parsed::Trajectory(t)) =
            tdscale::formats::parse_text(tdscale::formats::Format::Openai, &ctx, line)
        else {
            panic!("an exported trajectory does not read back: {line}");
        };
        let id = t.metadata["blueprint_id"].as_str().unwrap();
        let reasons = verify(&t, &by_id[id]);
        assert!(reasons.is_empty(), "{}: {reasons:?}", t.traj_id);
        n += 1;
    }
    n
}

#[test]
fn tau_bench_evolves_offline_on_inferred_tools_and_steering_beats_random() {
    let dir = tempfile::tempdir().unwrap();
    let mut curves: HashMap<&str, Vec<f64>> = HashMap::new();
    for strategy in ["steered", "random"] {
        let c = dir.path().join(strategy).to_str().unwrap().to_string();
        ingest(&c, &[&shared("tau-bench/gpt-4o-airline.json")], &[]);
        if strategy == "steered" {
            // Without definitions every request fails in the planner, with what to do.
            // A batch whose every request failed is an error (exit code 6); the summary is
            // still printed.
            let o = run(&["evolve", &c, "--rounds", "1", "--per-round", "10", "--json"]);
            assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
            assert!(
                stderr(&o).contains("every one of the 10 requests"),
                "{}",
                stderr(&o)
            );
            let s: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(number(&s["batches"][0]["failed"]), 10.0, "{s}");
            let o = run(&["rounds", &c]);
            assert!(
                stdout(&o).contains("top rejection reasons:")
                    && stdout(&o).contains("planner failed: `")
                    && stdout(&o).contains("tdscale tools infer"),
                "{}",
                stdout(&o)
            );
            let rows = ok_json(&run(&["rounds", &c, "--json"]));
            let reasons: serde_json::Map<String, Value> =
                serde_json::from_str(rows[1]["rejection_reasons"].as_str().unwrap()).unwrap();
            assert_eq!(reasons.values().map(number).sum::<f64>(), 10.0);
            // Start again from the real data alone.
            std::fs::remove_dir_all(&c).unwrap();
            ingest(&c, &[&shared("tau-bench/gpt-4o-airline.json")], &[]);
        }
        ok_json(&run(&["tools", "infer", &c, "--json"]));
        let rows = evolve(&c, strategy, 3, 50);
        for r in &rows[1..] {
            assert!(
                number(&r["acceptance_rate"]) >= 0.9,
                "{strategy} round {}: {r}",
                r["round"]
            );
        }
        curves.insert(
            strategy,
            rows.iter().map(|r| number(&r["rme_bits"])).collect(),
        );
        let accepted: f64 = rows.iter().map(|r| number(&r["accepted"])).sum();
        assert_eq!(reverify(&c) as f64, accepted);
        if strategy == "steered" {
            // Grounded: most synthesized results of the airline's tools are results the
            // service really returned (word for word), the rest adapted from them.
            let real: HashSet<String> = sql_rows(
                &c,
                "SELECT DISTINCT result FROM tool_calls WHERE \"round\" = 0 AND result IS NOT NULL",
            )
            .iter()
            .map(|r| r["result"].as_str().unwrap().to_string())
            .collect();
            let synth = sql_rows(
                &c,
                "SELECT tool_name, result FROM tool_calls WHERE \"round\" > 0 AND tool_name <> 'python' AND NOT is_error",
            );
            let verbatim = synth
                .iter()
                .filter(|r| real.contains(r["result"].as_str().unwrap_or_default()))
                .count();
            assert!(
                verbatim * 2 > synth.len(),
                "{verbatim} of {} results are observed ones",
                synth.len()
            );
        }
    }
    let (steered, random) = (&curves["steered"], &curves["random"]);
    assert_eq!(steered[0], random[0], "both start from the same corpus");
    for r in 1..=3 {
        assert!(
            steered[r] > random[r],
            "round {r}: RME steered {steered:?} vs random {random:?}"
        );
    }
}

#[test]
fn bfcl_multi_turn_evolves_offline_and_steering_beats_random() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<std::path::PathBuf> = std::fs::read_dir(shared("bfcl/multi_turn_func_doc"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let docs: Vec<&Path> = docs.iter().map(|p| p.as_path()).collect();
    let mut curves: HashMap<&str, Vec<f64>> = HashMap::new();
    for strategy in ["steered", "random"] {
        let c = dir.path().join(strategy).to_str().unwrap().to_string();
        ingest(
            &c,
            &[
                &shared("bfcl/BFCL_v4_multi_turn_base.json"),
                &shared("bfcl/BFCL_v4_multi_turn_miss_param.json"),
            ],
            &[],
        );
        ingest(&c, &docs, &["--table", "tools"]);
        let rows = evolve(&c, strategy, 3, 50);
        for r in &rows[1..] {
            assert!(number(&r["acceptance_rate"]) >= 0.9, "{strategy}: {r}");
        }
        let accepted: f64 = rows.iter().map(|r| number(&r["accepted"])).sum();
        assert_eq!(reverify(&c) as f64, accepted);
        curves.insert(
            strategy,
            rows.iter().map(|r| number(&r["rme_bits"])).collect(),
        );
    }
    let (steered, random) = (&curves["steered"], &curves["random"]);
    assert_eq!(steered[0], random[0]);
    for r in 1..=3 {
        assert!(
            steered[r] > random[r],
            "round {r}: RME steered {steered:?} vs random {random:?}"
        );
    }
}
