//! Bad input never aborts an ingest and never disappears.

use crate::common::*;

#[tokio::test]
async fn each_bad_record_is_reported_copied_and_counted() {
    let (_d, corpus) = temp_corpus();
    let files = [
        testdata("bad/malformed.jsonl"),
        testdata("bad/truncated_array.json"),
        testdata("bad/unknown_format.jsonl"),
        testdata("formats/xlam_function_calling.json"),
    ];
    let s = ingest(&corpus, &files).await;
    assert_eq!(s.rejected, 5 + 1 + 2);
    assert_eq!(
        s.ingested,
        2 + 1 + 2,
        "good records around the bad ones are kept"
    );
    let reasons: Vec<(String, usize, String)> = s
        .sample_rejects
        .iter()
        .map(|r| {
            (
                r.file.rsplit('/').next().unwrap().to_string(),
                r.line,
                r.reason.clone(),
            )
        })
        .collect();
    let find = |file: &str, line: usize| {
        reasons
            .iter()
            .find(|r| r.0 == file && r.1 == line)
            .map(|r| r.2.clone())
            .unwrap_or_else(|| panic!("no reject for {file}:{line} in {reasons:?}"))
    };
    assert!(find("malformed.jsonl", 2).contains("malformed JSON"));
    assert!(find("malformed.jsonl", 3).contains("messages: expected an array, found string"));
    assert!(find("malformed.jsonl", 4).contains("messages[0].content"));
    assert!(find("malformed.jsonl", 5).contains("tool_calls[0].function.name"));
    assert!(
        find("malformed.jsonl", 7).contains("malformed JSON"),
        "truncated last line"
    );
    assert!(find("truncated_array.json", 3).contains("truncated"));
    assert!(find("unknown_format.jsonl", 1).contains("unknown format"));
    // The rejects file holds every bad record with its original text.
    let rejects = s.rejects_file.clone().expect("a rejects file");
    let path = url::Url::parse(&rejects).unwrap().to_file_path().unwrap();
    let lines = json_lines(&std::fs::read_to_string(path).unwrap());
    assert_eq!(lines.len(), 8);
    let original: Vec<&str> = include_str!("../../testdata/bad/malformed.jsonl")
        .lines()
        .collect();
    for (line, text) in [(3, original[2]), (4, original[3])] {
        assert!(
            lines
                .iter()
                .any(|r| r["line"] == line && r["record"].as_str().unwrap().trim() == text),
            "record of line {line} copied verbatim"
        );
    }
    // And they are queryable.
    assert_eq!(scalar_i64(&corpus, "SELECT count(*) FROM rejects").await, 8);
}

#[tokio::test]
async fn truncated_and_corrupt_compressed_input_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..2000 {
        text.push_str(&format!("{{\"id\": {i}, \"messages\": [{{\"role\": \"user\", \"content\": \"question number {i} with some padding to make it longer\"}}]}}\n"));
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let cut = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let (_d, corpus) = temp_corpus();
    let s = ingest(&corpus, &[cut]).await;
    assert!(
        s.ingested > 100 && s.ingested < 2000,
        "records before the cut are kept: {}",
        s.ingested
    );
    assert!(s.rejected >= 1);
    assert!(
        s.sample_rejects
            .iter()
            .any(|r| r.reason.contains("ends early") || r.reason.contains("malformed")),
        "{:?}",
        s.sample_rejects
    );
}

#[tokio::test]
async fn invalid_utf8_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("latin1.jsonl");
    let mut bytes = br#"{"messages": [{"role": "user", "content": "ok"}]}"#.to_vec();
    bytes.push(b'\n');
    bytes.extend_from_slice(b"{\"messages\": [{\"role\": \"user\", \"content\": \"caf\xe9\"}]}\n");
    std::fs::write(&f, bytes).unwrap();
    let (_d, corpus) = temp_corpus();
    let s = ingest(&corpus, &[f]).await;
    assert_eq!((s.ingested, s.rejected), (1, 1));
    assert!(s.sample_rejects[0].reason.contains("UTF-8"));
    let err = tdscale::ingest::ingest(
        &corpus,
        &[dir.path().join("nope.jsonl")],
        &Default::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("does not exist"));
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn strict_turns_rejects_into_exit_code_3_and_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let bad = testdata("bad/malformed.jsonl");
    let o = run(&[
        "ingest",
        corpus.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["rejected"], 5);
    assert_eq!(summary["ingested"], 2);
    assert!(summary["bytes"].as_u64().unwrap() > 0);
    assert!(summary["seconds"].as_f64().is_some());
    let o = run(&[
        "ingest",
        corpus.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("malformed.jsonl:3: messages: expected an array"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--strict"));
    assert!(stdout(&o).contains("2 duplicates"), "{}", stdout(&o));
}

/// Bytes that look random and are the same on every run (a linear congruential generator).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

#[test]
fn deeply_nested_calls_are_rejected_or_kept_as_text_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    // A Hermes record whose call is 5,000 brackets deep, next to a good one.
    let deep = format!(
        "<tool_call>{}{}</tool_call>",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let hermes = dir.path().join("deep_hermes.jsonl");
    let lines = [
        serde_json::json!({"id": "deep", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": deep}]}),
        serde_json::json!({"id": "fine", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>"}]}),
    ];
    std::fs::write(
        &hermes,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    // BFCL multi-turn ground truth with a nested argument, in its sibling possible_answer/.
    let bfcl = dir.path().join("BFCL_v4_multi_turn_base.json");
    std::fs::write(
        &bfcl,
        serde_json::json!({"id": "multi_turn_base_0", "question": [[{"role": "user", "content": "list"}]],
            "involved_classes": ["GorillaFileSystem"]})
        .to_string()
            + "\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("possible_answer")).unwrap();
    let gt = format!("ls(a={}{})", "[".repeat(5000), "]".repeat(5000));
    std::fs::write(
        dir.path()
            .join("possible_answer/BFCL_v4_multi_turn_base.json"),
        serde_json::json!({"id": "multi_turn_base_0", "ground_truth": [[gt]]}).to_string() + "\n",
    )
    .unwrap();
    let corpus = dir.path().join("c");
    // In a child process: a stack overflow would abort it (exit 134), not this test binary.
    let o = run(&[
        "ingest",
        corpus.to_str().unwrap(),
        hermes.to_str().unwrap(),
        bfcl.to_str().unwrap(),
        "--json",
    ]);
    let s = ok_json(&o);
    assert_eq!(s["files"][0]["ingested"], 2, "{s}");
    assert_eq!(s["files"][1]["rejected"], 1, "{s}");
    let rejects = std::fs::read_to_string(
        url::Url::parse(s["rejects_file"].as_str().unwrap())
            .unwrap()
            .to_file_path()
            .unwrap(),
    )
    .unwrap();
    assert!(rejects.contains("nested more than 128 levels"), "{rejects}");
    // The unreadable call stays as text and is noted.
    let rows = sql_rows(
        corpus.to_str().unwrap(),
        "SELECT metadata FROM trajectories WHERE traj_id = 'deep_hermes/deep'",
    );
    let meta: serde_json::Value =
        serde_json::from_str(rows[0]["metadata"].as_str().unwrap()).unwrap();
    assert!(
        meta["unparsed_tool_calls"].to_string().contains("nested"),
        "{meta}"
    );
    assert!(
        tdscale::formats::pylit::literal(&format!("{}{}", "[".repeat(200), "]".repeat(200)))
            .unwrap_err()
            .contains("nested more than 128 levels")
    );
}

#[test]
fn a_failed_first_read_is_one_error_then_the_end() {
    use tdscale::ingest::input::{Records, decompress, open};
    let dir = tempfile::tempdir().unwrap();
    let count = || std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    // A folder opened as a file, a .gz and a .zst with a bad header: each read fails at once.
    let folder = dir.path().join("d.jsonl");
    std::fs::create_dir(&folder).unwrap();
    let gz = dir.path().join("x.jsonl.gz");
    std::fs::write(&gz, noise(3000)).unwrap();
    let zst = dir.path().join("x.jsonl.zst");
    std::fs::write(&zst, noise(3000)).unwrap();
    for p in [&folder, &gz, &zst] {
        let items: Vec<_> = Records::new(open(p, count()).unwrap()).take(10).collect();
        assert_eq!(items.len(), 1, "{}: {items:?}", p.display());
        assert!(items[0].is_err(), "{}", p.display());
    }
    let items: Vec<_> = Records::new(
        decompress("y.jsonl.zst", Box::new(std::io::Cursor::new(noise(100)))).unwrap(),
    )
    .take(10)
    .collect();
    assert_eq!(items.len(), 1);
}

#[test]
fn corrupt_archives_are_one_reject_each_and_leave_no_staging_file() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("x.jsonl.gz");
    std::fs::write(&gz, noise(3000)).unwrap();
    let zst = dir.path().join("x.jsonl.zst");
    std::fs::write(&zst, noise(3000)).unwrap();
    let corpus = dir.path().join("c");
    let good = testdata("formats/openai_chat.jsonl");
    let o = run(&[
        "ingest",
        corpus.to_str().unwrap(),
        gz.to_str().unwrap(),
        zst.to_str().unwrap(),
        good.to_str().unwrap(),
        "--json",
    ]);
    let s = ok_json(&o);
    assert_eq!(
        (s["rejected"].as_u64(), s["ingested"].as_u64()),
        (Some(2), Some(3)),
        "{s}"
    );
    let rejects = std::fs::read_dir(corpus.join("rejects"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let text = std::fs::read_to_string(corpus.join("rejects").join(&rejects[0])).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(
        files_under(&corpus).iter().all(|f| !f.contains('#')),
        "{:?}",
        files_under(&corpus)
    );
    // A folder with no input file in it is said so, at once.
    let empty = dir.path().join("d.jsonl");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["ingest", corpus.to_str().unwrap(), empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no input file"), "{}", stderr(&o));
}

#[tokio::test]
async fn a_broken_array_element_does_not_swallow_the_good_ones_after_it() {
    let good = |n: usize| {
        serde_json::json!({"id": format!("g{n}"), "messages": [{"role": "user", "content": format!("question {n}, with a comma")}]})
            .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    // A string left open, then a bracket missing.
    let cases = [
        (
            format!(
                "[{}, {}, {}, {{\"messages\":\"abc}}, {}, {}]",
                good(1),
                good(2),
                good(3),
                good(4),
                good(5)
            ),
            ["g1", "g2", "g3", "g4", "g5"].as_slice(),
        ),
        (
            format!(
                "[\n{},\n{{\"id\": \"bad\", \"messages\": [{{\"role\": \"user\", \"content\": \"x\"}}}},\n{},\n{}\n]",
                good(1),
                good(2),
                good(3)
            ),
            ["g1", "g2", "g3"].as_slice(),
        ),
    ];
    for (i, (text, ids)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("broken{i}.json"));
        std::fs::write(&f, text).unwrap();
        let (_d, corpus) = temp_corpus();
        let s = ingest(&corpus, &[f]).await;
        assert_eq!(
            (s.ingested as usize, s.rejected),
            (ids.len(), 1),
            "case {i}: {:?}",
            s.sample_rejects
        );
        assert!(s.sample_rejects[0].reason.contains("malformed JSON"));
        let stored = strings(&corpus, "SELECT traj_id FROM trajectories ORDER BY traj_id").await;
        let want: Vec<String> = ids.iter().map(|id| format!("broken{i}/{id}")).collect();
        assert_eq!(stored, want, "case {i}");
    }
}

#[test]
fn a_record_over_the_size_limit_is_rejected_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(3 << 20);
    let line = |id: &str, text: &str| {
        serde_json::json!({"id": id, "messages": [{"role": "user", "content": text}]}).to_string()
    };
    let jsonl = dir.path().join("big.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{}\n{}\n{}\n",
            line("a", "hi"),
            line("big", &big),
            line("b", "ho")
        ),
    )
    .unwrap();
    let array = dir.path().join("bigarray.json");
    std::fs::write(
        &array,
        format!(
            "[{}, {}, {}]",
            line("a", "hi"),
            line("big", &big),
            line("b", "ho")
        ),
    )
    .unwrap();
    let doc = dir.path().join("bigdoc.json");
    std::fs::write(
        &doc,
        format!(
            "{{\n\"id\": \"d\", \"messages\": [{{\"role\": \"user\", \"content\": \"{big}\"}}]}}"
        ),
    )
    .unwrap();
    let corpus = dir.path().join("c");
    let o = run(&[
        "ingest",
        corpus.to_str().unwrap(),
        jsonl.to_str().unwrap(),
        array.to_str().unwrap(),
        doc.to_str().unwrap(),
        "--max-record-mb",
        "1",
        "--json",
    ]);
    let s = ok_json(&o);
    assert_eq!(
        (s["ingested"].as_u64(), s["rejected"].as_u64()),
        (Some(4), Some(3)),
        "{s}"
    );
    let rejects = json_lines(
        &std::fs::read_to_string(
            url::Url::parse(s["rejects_file"].as_str().unwrap())
                .unwrap()
                .to_file_path()
                .unwrap(),
        )
        .unwrap(),
    );
    for r in &rejects {
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .contains("over the limit of 1048576 bytes"),
            "{r}"
        );
        // Only the start of the record is copied.
        assert!(r["record"].as_str().unwrap().len() <= 64 << 10);
    }
    assert_eq!(rejects[0]["line"], 2);
}

/// An input of several chunks (parsed on the pool a few chunks ahead of the worker): bad
/// records in different chunks, one the splitter cannot read (invalid UTF-8) and others that
/// do not parse, are each rejected once, in the order of their lines, and every other record
/// is stored exactly once.
#[tokio::test]
async fn bad_records_across_chunks_are_rejected_in_order_and_the_rest_stored() {
    const N: usize = 7000;
    let bad: [(usize, &[u8]); 5] = [
        (10, br#"{"traj_id": "r10", "messages": ["#),
        (2100, br#"{"traj_id": "r2100", "messages": "not a list"}"#),
        (2500, b"{\"traj_id\": \"r2500\", \"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}"),
        (4097, br#"{"traj_id": "r4097", "messages": [{"role": "user", "content": 5}]}"#),
        (N, br#"{"traj_id": "last", "#),
    ];
    let mut text: Vec<u8> = vec![];
    for line in 1..=N {
        match bad.iter().find(|(l, _)| *l == line) {
            Some((_, b)) => text.extend_from_slice(b),
            None => text.extend_from_slice(
                format!(
                    r#"{{"traj_id": "r{line}", "messages": [{{"role": "user", "content": "q{line}"}}, {{"role": "assistant", "content": "a{line}"}}]}}"#
                )
                .as_bytes(),
            ),
        }
        text.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("chunks.jsonl");
    std::fs::write(&input, &text).unwrap();
    let (_d, corpus) = temp_corpus();
    let s = ingest(&corpus, &[input]).await;
    assert_eq!(
        (s.read, s.ingested, s.rejected),
        (N as u64, N as u64 - 5, 5)
    );
    let rejects = s.rejects_file.clone().expect("a rejects file");
    let path = url::Url::parse(&rejects).unwrap().to_file_path().unwrap();
    let lines: Vec<u64> = json_lines(&std::fs::read_to_string(path).unwrap())
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        [10, 2100, 2500, 4097, N as u64],
        "each once, in order"
    );
    let ids = strings(&corpus, "SELECT traj_id FROM trajectories ORDER BY traj_id").await;
    let mut expected: Vec<String> = (1..=N)
        .filter(|l| bad.iter().all(|(b, _)| b != l))
        .map(|l| format!("r{l}"))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    // Each stored record is its own line's, not a neighbour's.
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(*) FROM trajectories WHERE get_field(messages[1], 'content') <> 'q' || substr(traj_id, 2)"
        )
        .await,
        0
    );
}

/// Repeated ids across the chunks of one input (built on the pool a few chunks ahead of the
/// worker) and ids the corpus already held: each id is stored once, with the first record's
/// content, its metrics row beside it, and every repeat counted as a duplicate.
#[tokio::test]
async fn repeated_ids_across_chunks_keep_the_first_record_and_its_metrics() {
    let record = |id: usize, word: &str| {
        format!(
            r#"{{"traj_id": "r{id}", "messages": [{{"role": "user", "content": "{word} {id}"}}, {{"role": "assistant", "content": "a{id}"}}]}}"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    // The corpus holds r4001..=r4100 (as "old") before the run.
    let before = dir.path().join("before.jsonl");
    let old: Vec<String> = (4001..=4100).map(|i| record(i, "old")).collect();
    std::fs::write(&before, old.join("\n")).unwrap();
    // The input: r1..=r5000, then r1..=r2500 again (six chunks of 2,048 records, the repeats
    // from the third on), then r7 once more in the last line.
    let mut lines: Vec<String> = (1..=5000).map(|i| record(i, "first")).collect();
    // Longer texts, so that a repeat's token count (in its metrics row too) differs.
    let longer = "again and again and again";
    lines.extend((1..=2500).map(|i| record(i, longer)));
    lines.push(record(7, longer));
    let input = dir.path().join("repeats.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let (_d, corpus) = temp_corpus();
    assert_eq!(ingest(&corpus, &[before]).await.ingested, 100);
    let s = ingest(&corpus, &[input]).await;
    assert_eq!(
        (s.read, s.ingested, s.duplicates, s.rejected),
        (7501, 4900, 2601, 0)
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(DISTINCT traj_id) FROM trajectories").await,
        5000
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM trajectories").await,
        5000
    );
    // The first record of each id, or the corpus's own for r4001..=r4100.
    let first_or_old = "SELECT count(*) FROM trajectories WHERE get_field(messages[1], 'content') = \
        CASE WHEN CAST(substr(traj_id, 2) AS INT) BETWEEN 4001 AND 4100 THEN 'old ' ELSE 'first ' END \
        || substr(traj_id, 2)";
    assert_eq!(scalar_i64(&corpus, first_or_old).await, 5000);
    // Each row's stored metrics are its own: same ids, and the steps of its own messages.
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(*) FROM trajectories t JOIN trajectory_metrics m USING (traj_id) \
             WHERE m.num_turns = t.num_turns AND m.num_tokens = t.num_tokens"
        )
        .await,
        5000
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM trajectory_metrics").await,
        5000
    );
}
