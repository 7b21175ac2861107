//! What ingest reads: folders (recursively), glob patterns, `s3://` objects and prefixes on the
//! local S3 server, large Parquet files row group by row group, and `--explain`.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;

use crate::common::*;

fn ingest_json(corpus: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["ingest", corpus];
    all.extend_from_slice(args);
    all.push("--json");
    ok_json(&run(&all))
}

#[test]
fn folders_are_read_recursively_and_globs_pick_files() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let c = corpus.to_str().unwrap();
    // A folder: its session file and, two levels down, the sub-agent's.
    let s = ingest_json(c, &[testdata("formats/claude_code").to_str().unwrap()]);
    assert_eq!(s["ingested"], 2, "{s}");
    let rows = sql_rows(
        c,
        "SELECT traj_id, parent_id FROM trajectories ORDER BY traj_id",
    );
    assert_eq!(
        rows[0]["traj_id"],
        "claude-code/3f2a9c1e-5b7d-4e21-9a0c-7d1e2f3a4b5c"
    );
    assert_eq!(
        rows[1]["traj_id"],
        "claude-code/3f2a9c1e-5b7d-4e21-9a0c-7d1e2f3a4b5c/a1b2c3d"
    );
    assert_eq!(rows[1]["parent_id"], rows[0]["traj_id"]);
    // --glob on a folder matches the path below it; the counts file next to the fixtures is
    // not matched.
    let s = ingest_json(
        c,
        &[
            testdata("formats").to_str().unwrap(),
            "--glob",
            "*chat_parts.jsonl*",
        ],
    );
    assert_eq!(s["files"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(
        (s["ingested"].as_u64(), s["duplicates"].as_u64()),
        (Some(3), Some(3))
    );
    // A pattern among the inputs, as a shell that did not expand it passes it on.
    let pattern = format!("{}/*.traj", testdata("formats/swe_agent").display());
    let s = ingest_json(c, &[&pattern]);
    assert_eq!(s["ingested"], 2, "{s}");
    let o = run(&[
        "ingest",
        c,
        &format!("{}/*.nothing", testdata("formats").display()),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("matches no file"), "{}", stderr(&o));
}

#[test]
fn explain_names_the_dialect_and_the_mapping_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("never");
    let files = [
        testdata("formats/llamafactory_parts/v1_sft.jsonl"),
        testdata(
            "formats/compressed/rollout-2025-10-14T09-12-03-0199e0b2-7c1d-7a10-b3c4-5d6e7f809a1b.jsonl.zst",
        ),
        testdata("formats/parquet/messages_nested.parquet"),
        testdata("bad/swe_agent/history_not_a_list.traj"),
        testdata("formats/mcp_collection/0003.@inkwell_sketchpad_labeled.json"),
    ];
    let mut args = vec!["ingest", corpus.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--explain", "--json"]);
    let v = ok_json(&run(&args));
    assert!(!corpus.exists(), "--explain writes nothing");
    let f = v.as_array().unwrap();
    assert_eq!(f.len(), 5);
    assert_eq!(f[0]["format"], "llamafactory");
    assert_eq!(f[0]["layout"], "JSON lines");
    assert!(
        f[0]["mapping"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["source"].as_str().unwrap().contains("reasoning")
                && m["stored_as"] == "messages[].reasoning")
    );
    let first = &f[0]["first_record"];
    assert_eq!(
        (
            first["user"].as_u64(),
            first["assistant"].as_u64(),
            first["tool_calls"].as_u64()
        ),
        (Some(1), Some(2), Some(2))
    );
    assert!(
        first["metadata_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "message_fields")
    );
    assert_eq!(f[1]["format"], "codex");
    assert_eq!(f[1]["whole_file"], true);
    assert_eq!(
        f[1]["first_record"]["traj_ids"][0],
        "codex/0199e0b2-7c1d-7a10-b3c4-5d6e7f809a1b"
    );
    assert_eq!(f[1]["first_record"]["tool_calls"], 5);
    assert!(
        f[2]["layout"]
            .as_str()
            .unwrap()
            .starts_with("Parquet with columns id string, messages list<struct<role, content")
    );
    assert_eq!(f[2]["format"], "openai");
    assert_eq!(f[3]["format"], "swe-agent");
    assert!(
        f[3]["first_record"]["rejected"]
            .as_str()
            .unwrap()
            .contains("not a list of messages")
    );
    assert_eq!(f[4]["table"], "tools");
    assert_eq!(f[4]["first_record"]["catalog_tools"], 2);
    assert_eq!(f[4]["first_record"]["domains"][0], "Design & Creative");
    // The text form says the same in lines.
    let o = run(&[
        "ingest",
        corpus.to_str().unwrap(),
        files[0].to_str().unwrap(),
        "--explain",
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("llamafactory, JSON lines → trajectories"),
        "{text}"
    );
    assert!(text.contains("nothing was written"));
    assert!(!corpus.exists());
}

/// Puts a local file on the test S3 server.
fn upload(endpoint: &str, bucket: &str, key: &str, file: &Path) {
    let out = std::process::Command::new("curl")
        // `-T` sends the bytes as they are: with `--data-binary` curl declares a form body,
        // which the test server tries to parse (and hangs on, for gzip bytes).
        .args([
            "-sf",
            "-T",
            &file.display().to_string(),
            &format!("{endpoint}/{bucket}/{key}"),
        ])
        .output()
        .expect("curl");
    assert!(out.status.success(), "upload {key}");
}

#[test]
fn s3_inputs_objects_prefixes_and_patterns_compressed_or_parquet() {
    let s3 = moto();
    let bucket = s3.bucket("tds-inputs");
    for (key, file) in [
        (
            "raw/2025/chat_parts.jsonl.gz",
            "formats/compressed/chat_parts.jsonl.gz",
        ),
        (
            "raw/2025/rollout-2025-10-14T09-12-03-0199e0b2-7c1d-7a10-b3c4-5d6e7f809a1b.jsonl.zst",
            "formats/compressed/rollout-2025-10-14T09-12-03-0199e0b2-7c1d-7a10-b3c4-5d6e7f809a1b.jsonl.zst",
        ),
        (
            "hf/train-00000.parquet",
            "formats/parquet/messages_json_string.parquet",
        ),
        (
            "hf/train-00001.parquet",
            "formats/parquet/messages_nested.parquet",
        ),
        ("raw/notes.txt", "formats/expected/README.md"),
    ] {
        upload(&s3.endpoint, &bucket, key, &testdata(file));
    }
    // The corpus on S3 too: one object-store configuration for both.
    let corpus = format!("s3://{bucket}/corpus");
    let ingest = |args: &[&str]| {
        let mut all = vec!["ingest", corpus.as_str()];
        all.extend_from_slice(args);
        all.push("--json");
        ok_json(&s3.run(&all))
    };
    // A prefix with --glob.
    let s = ingest(&[&format!("s3://{bucket}/raw/"), "--glob", "*.zst"]);
    assert_eq!(
        (s["ingested"].as_u64(), s["rejected"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(s["files"][0]["format"], "codex");
    // A pattern in the URL; a prefix without --glob takes input files only (not notes.txt).
    let s = ingest(&[&format!("s3://{bucket}/raw/*/*.gz")]);
    assert_eq!(s["ingested"], 3, "{s}");
    let s = ingest(&[&format!("s3://{bucket}/raw")]);
    assert_eq!(
        (
            s["ingested"].as_u64(),
            s["duplicates"].as_u64(),
            s["files"].as_array().map(Vec::len)
        ),
        (Some(0), Some(4), Some(2)),
        "{s}"
    );
    // Parquet objects, read by ranges.
    let s = ingest(&[
        &format!("s3://{bucket}/hf/train-00000.parquet"),
        &format!("s3://{bucket}/hf/train-00001.parquet"),
    ]);
    assert_eq!(
        (s["ingested"].as_u64(), s["rejected"].as_u64()),
        (Some(7), Some(0)),
        "{s}"
    );
    let o = s3.run(&[
        "sql",
        &corpus,
        "SELECT count(*) AS n, sum(num_tool_calls) AS calls FROM trajectories",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&o).trim(), "n,calls\n11,17", "{}", stderr(&o));
    // Nothing there: said so.
    let o = s3.run(&["ingest", &corpus, &format!("s3://{bucket}/nothing/")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no object"), "{}", stderr(&o));
}

/// Writes a Parquet file of `rows` generated chat trajectories, with `messages` as JSON text or
/// as nested columns, in row groups of 30,000 rows; returns the number of calls written.
pub fn write_generated_parquet(path: &Path, rows: usize, nested: bool) -> u64 {
    let mut calls = 0u64;
    let message_type = DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(
            vec![
                Field::new("role", DataType::Utf8, true),
                Field::new("content", DataType::Utf8, true),
                Field::new(
                    "tool_calls",
                    DataType::List(Arc::new(Field::new(
                        "item",
                        DataType::Struct(
                            vec![
                                Field::new("id", DataType::Utf8, true),
                                Field::new("type", DataType::Utf8, true),
                                Field::new(
                                    "function",
                                    DataType::Struct(
                                        vec![
                                            Field::new("name", DataType::Utf8, true),
                                            Field::new("arguments", DataType::Utf8, true),
                                        ]
                                        .into(),
                                    ),
                                    true,
                                ),
                            ]
                            .into(),
                        ),
                        true,
                    ))),
                    true,
                ),
                Field::new("tool_call_id", DataType::Utf8, true),
            ]
            .into(),
        ),
        true,
    )));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new(
            "messages",
            if nested { message_type } else { DataType::Utf8 },
            true,
        ),
        Field::new("split", DataType::Utf8, true),
    ]));
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(30_000))
        .build();
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        schema.clone(),
        Some(props),
    )
    .unwrap();
    let mut start = 0;
    while start < rows {
        let end = (start + 10_000).min(rows);
        let mut lines = String::new();
        for i in start..end {
            let n = 1 + i % 3;
            calls += n as u64;
            let tc: Vec<serde_json::Value> = (0..n)
                .map(|k| serde_json::json!({"id": format!("c{k}"), "type": "function",
                    "function": {"name": format!("tool_{}", (i + k) % 17), "arguments": format!("{{\"q\": {i}}}")}}))
                .collect();
            let mut msgs = vec![
                serde_json::json!({"role": "user", "content": format!("question {i}")}),
                serde_json::json!({"role": "assistant", "tool_calls": tc}),
            ];
            for k in 0..n {
                msgs.push(serde_json::json!({"role": "tool", "tool_call_id": format!("c{k}"), "content": format!("result {i}.{k}")}));
            }
            msgs.push(serde_json::json!({"role": "assistant", "content": format!("answer {i}")}));
            let m = serde_json::Value::Array(msgs);
            let row = serde_json::json!({
                "id": format!("r{i}"),
                "messages": if nested { m } else { serde_json::Value::String(m.to_string()) },
                "split": if i % 10 == 0 { "test" } else { "train" },
            });
            lines.push_str(&row.to_string());
            lines.push('\n');
        }
        let reader = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(10_000)
            .build(std::io::Cursor::new(lines.into_bytes()))
            .unwrap();
        for b in reader {
            let b: RecordBatch = b.unwrap();
            w.write(&b).unwrap();
        }
        start = end;
    }
    w.close().unwrap();
    calls
}

#[tokio::test]
async fn a_generated_100k_row_parquet_ingests_every_row_json_text_or_nested() {
    let dir = tempfile::tempdir().unwrap();
    for nested in [false, true] {
        let file = dir.path().join(format!("gen-{nested}.parquet"));
        let calls = write_generated_parquet(&file, 100_000, nested);
        let meta = datafusion::parquet::file::reader::FileReader::metadata(
            &datafusion::parquet::file::reader::SerializedFileReader::new(
                std::fs::File::open(&file).unwrap(),
            )
            .unwrap(),
        )
        .num_row_groups();
        assert!(meta >= 4, "several row groups: {meta}");
        let (_d, corpus) = temp_corpus();
        let s = ingest(&corpus, std::slice::from_ref(&file)).await;
        assert_eq!((s.ingested, s.rejected), (100_000, 0), "nested: {nested}");
        assert_eq!(
            scalar_i64(&corpus, "SELECT count(DISTINCT traj_id) FROM trajectories").await,
            100_000
        );
        assert_eq!(
            scalar_i64(&corpus, "SELECT sum(num_tool_calls) FROM trajectories").await as u64,
            calls
        );
        assert_eq!(
            scalar_i64(
                &corpus,
                "SELECT count(*) FROM trajectories WHERE metadata LIKE '%\"split\":\"test\"%'"
            )
            .await,
            10_000
        );
        std::fs::remove_file(&file).unwrap();
    }
}

/// Whether the file system under `path` takes direct (`O_DIRECT`) opens, found independently
/// of tdscale's reader.
fn takes_direct_opens(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .is_ok()
}

#[test]
fn direct_and_cached_reads_give_every_byte_at_any_size() {
    use std::io::Read;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tdscale::ingest::FileReads;
    use tdscale::ingest::local_file::FileReader;

    let dir = tempfile::tempdir().unwrap();
    // tmpfs, which may refuse direct opens, beside the temporary folder's file system.
    let shm = tempfile::tempdir_in("/dev/shm").ok();
    let folders: Vec<&Path> = [Some(dir.path()), shm.as_ref().map(|d| d.path())]
        .into_iter()
        .flatten()
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut byte = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 56) as u8
    };
    const MIB: usize = 1 << 20;
    // Around the alignment of direct reads and the size of one read (4 MiB).
    for size in [
        0,
        1,
        4095,
        4096,
        4097,
        4 * MIB - 1,
        4 * MIB,
        4 * MIB + 1,
        9 * MIB + 123,
    ] {
        let content: Vec<u8> = (0..size).map(|_| byte()).collect();
        for folder in &folders {
            let path = folder.join(format!("f{size}.jsonl"));
            std::fs::write(&path, &content).unwrap();
            let direct_here = takes_direct_opens(&path);
            for reads in [FileReads::Direct, FileReads::Cached, FileReads::Auto] {
                let count = Arc::new(AtomicU64::new(0));
                let mut reader = FileReader::open(&path, reads, count.clone()).unwrap();
                let what = format!("{} bytes, {reads:?}, in {}", size, folder.display());
                // A file of a few MiB is never larger than the memory available to cache it.
                let expect_direct = reads == FileReads::Direct && direct_here;
                assert_eq!(reader.is_direct(), expect_direct, "{what}");
                let mut got = Vec::new();
                reader.read_to_end(&mut got).unwrap();
                assert!(got == content, "{what}: {} bytes read back", got.len());
                assert_eq!(count.load(Ordering::Relaxed), size as u64, "{what}");
            }
        }
    }
    assert!(
        takes_direct_opens(&dir.path().join("f1.jsonl")) || shm.is_some(),
        "the test covered neither direct reads nor their refusal"
    );
}

#[test]
fn an_ingest_read_around_the_page_cache_stores_what_a_cached_one_does() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 generated records (about 11 MB, three direct reads), 1,000 others gzip-compressed,
    // and a real JSON array of 200 tau-bench runs.
    let generate = |name: &str, n: &str, seed: &str| {
        let jsonl = dir.path().join(name);
        let o = run(&[
            "gen",
            dir.path().join(format!("g{seed}")).to_str().unwrap(),
            "--trajectories",
            n,
            "--seed",
            seed,
            "--jsonl",
            jsonl.to_str().unwrap(),
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        jsonl
    };
    let jsonl = generate("gen.jsonl", "3000", "3");
    assert!(std::fs::metadata(&jsonl).unwrap().len() > 8 << 20);
    let other = generate("other.jsonl", "1000", "4");
    let gz = dir.path().join("other.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &std::fs::read(&other).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let airline = shared("tau-bench/gpt-4o-airline.json");
    let inputs = [
        jsonl.to_str().unwrap(),
        gz.to_str().unwrap(),
        airline.to_str().unwrap(),
    ];

    let mut stored = vec![];
    for reads in ["direct", "cached"] {
        let corpus = dir.path().join(reads);
        let c = corpus.to_str().unwrap();
        let mut args = inputs.to_vec();
        args.extend(["--file-reads", reads]);
        let s = ingest_json(c, &args);
        assert_eq!(s["rejected"], 0, "{s}");
        assert_eq!(s["ingested"], 3000 + 1000 + 200, "{s}");
        stored.push(sql_rows(
            c,
            "SELECT traj_id, messages, tools, metadata, num_tokens FROM trajectories ORDER BY traj_id",
        ));
    }
    assert_eq!(stored[0].len(), 4200);
    assert!(
        stored[0] == stored[1],
        "the two ingests stored different rows"
    );
}
