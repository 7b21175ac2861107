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
