//! Acceptance on the real public data in ../shared/data.

use crate::common::*;

#[tokio::test]
async fn tau_bench_airline_gives_200_trajectories_and_1164_paired_calls() {
    let (_d, corpus) = temp_corpus();
    let file = shared("tau-bench/gpt-4o-airline.json");
    let s = ingest(&corpus, std::slice::from_ref(&file)).await;
    assert_eq!(
        (s.read, s.ingested, s.duplicates, s.rejected),
        (200, 200, 0, 0)
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM trajectories").await,
        200
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT sum(num_tool_calls) FROM trajectories").await,
        1164
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM tool_calls").await,
        1164
    );
    // Every call has its result, and each result message is used exactly once.
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(*) FROM tool_calls WHERE result IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM (SELECT unnest(messages) AS m FROM trajectories) WHERE m['role'] = 'tool'").await,
        1164
    );
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(DISTINCT traj_id || '/' || call_id) FROM tool_calls"
        )
        .await,
        1164
    );
    // The result of a call is the tool message of the same name.
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM (SELECT traj_id, unnest(messages) AS m FROM trajectories) t JOIN tool_calls c ON t.traj_id = c.traj_id AND t.m['tool_call_id'] = c.call_id WHERE t.m['name'] <> c.tool_name").await,
        0
    );
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(*) FROM trajectories WHERE domain = 'airline' AND reward IS NOT NULL"
        )
        .await,
        200
    );
    // Independent count of results starting with "Error" in the source file.
    let raw = read_json(&file);
    let errors = raw
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["traj"].as_array().unwrap())
        .filter(|m| {
            m["role"] == "tool"
                && m["content"]
                    .as_str()
                    .unwrap()
                    .trim()
                    .to_lowercase()
                    .starts_with("error")
        })
        .count();
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM tool_calls WHERE is_error").await,
        errors as i64
    );

    let again = ingest(&corpus, &[file]).await;
    assert_eq!(
        (again.ingested, again.duplicates),
        (0, 200),
        "a second ingest adds nothing"
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM trajectories").await,
        200
    );
}

#[tokio::test]
async fn bfcl_live_multiple_one_trajectory_per_line_with_its_tools() {
    let (_d, corpus) = temp_corpus();
    let file = shared("bfcl/BFCL_v4_live_multiple.json");
    let s = ingest(&corpus, std::slice::from_ref(&file)).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1053);
    assert_eq!((s.ingested, s.rejected), (1053, 0));
    let expected_tools: usize = lines
        .iter()
        .map(|l| l["function"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        scalar_i64(&corpus, "SELECT sum(array_length(tools)) FROM trajectories").await,
        expected_tools as i64
    );
    // The reference calls come from possible_answer: one assistant turn per line.
    let answers =
        std::fs::read_to_string(shared("bfcl/possible_answer/BFCL_v4_live_multiple.json")).unwrap();
    let expected_calls: usize = answers
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["ground_truth"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        scalar_i64(&corpus, "SELECT sum(num_tool_calls) FROM trajectories").await,
        expected_calls as i64
    );
    // Spot check: the first line's call.
    let first = strings(&corpus, "SELECT tool_name || ' ' || arguments FROM tool_calls WHERE traj_id = 'BFCL_v4_live_multiple/live_multiple_0-0-0'").await;
    assert_eq!(
        first,
        [
            r#"ChaDri.change_drink {"drink_id":"latte","new_preferences":{"size":"large","milk_type":"coconut","sweetness_level":"extra","temperature":"hot","special_instructions":"served boiling hot"}}"#
        ]
    );
    // Every tool's parameters are valid JSON Schema.
    for p in strings(
        &corpus,
        "SELECT t['parameters'] FROM (SELECT unnest(tools) AS t FROM trajectories)",
    )
    .await
    {
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert!(jsonschema::meta::is_valid(&v), "invalid schema {p}");
    }
}

#[tokio::test]
async fn bfcl_function_docs_land_in_tools_as_json_schema() {
    let (_d, corpus) = temp_corpus();
    let dir = shared("bfcl/multi_turn_func_doc");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let opts = tdscale::ingest::IngestOptions {
        table: tdscale::ingest::TargetTable::Tools,
        ..Default::default()
    };
    let s = tdscale::ingest::ingest(&corpus, &files, &opts)
        .await
        .unwrap();
    let expected: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    assert_eq!((s.ingested as usize, s.rejected), (expected, 0));
    for p in strings(&corpus, "SELECT parameters FROM tools").await {
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert!(jsonschema::meta::is_valid(&v), "invalid schema {p}");
        assert_eq!(v["type"], "object");
    }
    assert_eq!(
        strings(&corpus, "SELECT service FROM tools WHERE name = 'ls'").await,
        ["gorilla_file_system"]
    );
    // `response` docs become the output schema.
    let out = strings(
        &corpus,
        "SELECT output_schema FROM tools WHERE name = 'cat'",
    )
    .await;
    assert!(out[0].contains("file_content"));
}

#[tokio::test]
async fn bfcl_multi_turn_positional_arguments_are_named_from_the_docs() {
    let (_d, corpus) = temp_corpus();
    ingest(&corpus, &[shared("bfcl/BFCL_v4_multi_turn_base.json")]).await;
    let calls = strings(&corpus, "SELECT tool_name || ' ' || arguments FROM tool_calls WHERE traj_id = 'BFCL_v4_multi_turn_base/multi_turn_base_0' ORDER BY call_index").await;
    assert_eq!(calls[0], r#"cd {"folder":"document"}"#);
    assert!(
        calls.contains(&r#"sort {"file_name":"final_report.pdf"}"#.to_string()),
        "{calls:?}"
    );
    assert_eq!(calls.len(), 3 + 2 + 1 + 4, "every call of the four turns");
    // The involved classes' docs are the offered tools.
    assert!(scalar_i64(&corpus, "SELECT array_length(tools) FROM trajectories WHERE traj_id = 'BFCL_v4_multi_turn_base/multi_turn_base_0'").await >= 18);
}
