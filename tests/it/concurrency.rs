//! Concurrent writers on one corpus: one writer at a time (an OS lock on a folder, a lease on
//! S3), a waiting writer never deletes the running one's staging files, a killed writer's lock is
//! taken over, and no id is ever stored twice — not even by writers that get past the lock
//! together (two tasks of one process).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// `len` characters that do not compress (a xorshift stream over 64 letters), different for each
/// `seed`: parts big enough to be uploaded in pieces need incompressible text.
fn noise(seed: usize, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % 64) as usize] as char
        })
        .collect()
}

/// Writes OpenAI chat lines with ids `<prefix><i>` for `ids`, each padded with `pad`
/// incompressible characters.
fn write_jsonl(path: &Path, prefix: &str, ids: std::ops::Range<usize>, pad: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in ids {
        let pad = noise(i, pad);
        writeln!(
            w,
            r#"{{"id": "{prefix}{i}", "messages": [{{"role": "user", "content": "task {i} {pad}"}}, {{"role": "assistant", "content": null, "tool_calls": [{{"id": "c1", "type": "function", "function": {{"name": "lookup", "arguments": "{{\"key\": \"k{i}\"}}"}}}}]}}, {{"role": "tool", "tool_call_id": "c1", "content": "value {i}"}}, {{"role": "assistant", "content": "done"}}]}}"#
        )
        .unwrap();
    }
}

fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tdscale")
}

/// `count(*)` and `count(DISTINCT traj_id)` of the trajectories.
fn counts(root: &str) -> (u64, u64) {
    let r = sql_rows(
        root,
        "SELECT count(*) AS n, count(DISTINCT traj_id) AS ids FROM trajectories",
    );
    (number(&r[0]["n"]) as u64, number(&r[0]["ids"]) as u64)
}

/// Every stored trajectory id.
fn stored_ids(root: &str) -> HashSet<String> {
    sql_rows(root, "SELECT traj_id FROM trajectories")
        .iter()
        .map(|r| r["traj_id"].as_str().unwrap().to_string())
        .collect()
}

/// Staging (`#n`) and uncommitted (`.pending`) files left in the table folders.
fn leftovers(root: &Path) -> Vec<String> {
    tdscale::store::tables::ALL
        .iter()
        .flat_map(|t| {
            files_under(&root.join(t.name))
                .into_iter()
                .map(move |f| format!("{}/{f}", t.name))
        })
        .filter(|f| f.contains('#') || f.contains(".pending"))
        .collect()
}

fn summary(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

/// Issue 22, row 3: an ingest started while another one is writing used to delete the running
/// one's staging file at start-up, and the first then failed and lost all its rows. Now the
/// second waits for the first (saying who holds the corpus) and both complete.
#[test]
fn a_second_ingest_waits_for_a_running_one_and_removes_none_of_its_staging() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let root_s = root.to_str().unwrap();
    let (big, small) = (dir.path().join("big.jsonl"), dir.path().join("small.jsonl"));
    // About 25 MB of Parquet: more than the 10 MB an upload buffers before it stages a file.
    let (n_big, n_small) = (50_000, 1_000);
    write_jsonl(&big, "t", 0..n_big, 500);
    write_jsonl(&small, "s", 0..n_small, 50);

    let mut first = spawn(&["ingest", root_s, big.to_str().unwrap(), "--json"]);
    let first_pid = first.id();
    // Start the second one while the first one's part is being written (a staging file).
    let table = root.join("trajectories");
    let started = Instant::now();
    while !files_under(&table).iter().any(|f| f.contains('#')) {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the first ingest never staged a part"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first ingest ended before it staged a part"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = spawn(&["ingest", root_s, small.to_str().unwrap(), "--json"]);
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();

    assert!(
        first.status.success(),
        "the running ingest must complete: {}",
        stderr(&first)
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(summary(&first)["ingested"], n_big);
    assert_eq!(summary(&second)["ingested"], n_small);
    assert!(
        stderr(&second).contains(&format!("held by `ingest` (pid {first_pid} on host")),
        "the waiting ingest names the holder: {}",
        stderr(&second)
    );
    assert_eq!(
        counts(root_s),
        ((n_big + n_small) as u64, (n_big + n_small) as u64)
    );
    assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
}

/// Issue 22, row 4: the same file ingested by two processes at once used to store every record
/// twice (both read the corpus's ids before either wrote). Now every record is stored once.
#[test]
fn the_same_file_ingested_by_two_processes_at_once_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let root_s = root.to_str().unwrap();
    let input = dir.path().join("same.jsonl");
    let n = 20_000;
    write_jsonl(&input, "t", 0..n, 200);
    let args = ["ingest", root_s, input.to_str().unwrap(), "--json"];
    let (a, b) = (spawn(&args), spawn(&args));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    let (a, b) = (summary(&a), summary(&b));
    let total = |k: &str| a[k].as_u64().unwrap() + b[k].as_u64().unwrap();
    assert_eq!(total("ingested"), n as u64, "{a}\n{b}");
    assert_eq!(total("duplicates"), n as u64, "{a}\n{b}");
    assert_eq!(counts(root_s), (n as u64, n as u64));
    let expected: HashSet<String> = (0..n).map(|i| format!("same/t{i}")).collect();
    assert_eq!(stored_ids(root_s), expected);
}

/// Two ingests of one process share its lock (the lock is re-entrant, as an evolution round's
/// batches need), so they get past it together: the commit's check of the ids committed since
/// each started is what keeps every id once. Small parts make many commits interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingests_past_the_lock_in_one_process_store_each_id_once() {
    let (dir, corpus) = temp_corpus();
    let input = dir.path().join("race.jsonl");
    let n = 6_000;
    write_jsonl(&input, "t", 0..n, 100);
    let opts = tdscale::ingest::IngestOptions {
        rows_per_file: 250,
        ..Default::default()
    };
    let run = |corpus: tdscale::store::Corpus, input: std::path::PathBuf, opts| {
        tokio::spawn(async move { tdscale::ingest::ingest(&corpus, &[input], &opts).await })
    };
    let a = run(corpus.clone(), input.clone(), opts.clone());
    let b = run(corpus.clone(), input.clone(), opts.clone());
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert_eq!(a.ingested + b.ingested, n as u64, "{a:?}\n{b:?}");
    assert_eq!(a.duplicates + b.duplicates, n as u64, "{a:?}\n{b:?}");
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM trajectories").await,
        n as i64
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(DISTINCT traj_id) FROM trajectories").await,
        n as i64
    );
}

/// The same synthesis batch run twice at once in one process (both past the lock): the second
/// commit finds the first one's trajectories and stores none of them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_synthesis_batch_run_twice_at_once_stores_each_trajectory_once() {
    let (_dir, corpus) = temp_corpus();
    tdscale::generate::generate(&corpus, 300, Default::default(), None, false)
        .await
        .unwrap();
    let params: HashMap<String, String> = [("n", "12"), ("seed", "1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut runs = vec![];
    for _ in 0..2 {
        let session = tdscale::query::session::CorpusSession::open(&corpus)
            .await
            .unwrap();
        let shared = tdscale::evolve::register(&session, Default::default(), &params)
            .await
            .unwrap();
        runs.push(tokio::spawn(async move {
            session
                .collect("INSERT INTO synthesis_requests SELECT * FROM seeds_next_round")
                .await
                .unwrap();
            shared.finished.lock().unwrap().pop().unwrap()
        }));
    }
    let mut batches = vec![];
    for r in runs {
        batches.push(r.await.unwrap());
    }
    assert_eq!(batches[0].batch_id, batches[1].batch_id, "the same batch");
    let accepted = batches[0].accepted;
    assert!(accepted > 0, "{batches:?}");
    assert_eq!(batches[1].accepted, accepted);
    assert_eq!(
        batches[0].already_present + batches[1].already_present,
        accepted,
        "one run stores the batch, the other finds it there: {batches:?}"
    );
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(*) FROM trajectories WHERE \"round\" = 1"
        )
        .await,
        accepted
    );
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(DISTINCT traj_id) FROM trajectories WHERE \"round\" = 1"
        )
        .await,
        accepted
    );
}

/// A writer that may not wait (`--lock-timeout 0`) fails at once with exit code 7 and names the
/// holder; one that waits and is stopped by SIGTERM exits with 143 and writes nothing; once the
/// holder lets go, the same command completes.
#[tokio::test]
async fn a_writer_names_the_holder_exits_7_when_it_may_not_wait_and_143_when_stopped() {
    let (dir, corpus) = temp_corpus();
    let root = corpus.display().to_string();
    let input = dir.path().join("x.jsonl");
    write_jsonl(&input, "x", 0..20, 10);
    let lock = corpus.lock_writer("holding test").await.unwrap();
    let me = std::process::id();

    let o = run(&[
        "ingest",
        &root,
        input.to_str().unwrap(),
        "--lock-timeout",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "is being written by `holding test` (pid {me} on host"
        )),
        "{}",
        stderr(&o)
    );

    let mut waiting = spawn(&["ingest", &root, input.to_str().unwrap()]);
    let mut err = std::io::BufReader::new(waiting.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut err, &mut first).unwrap();
    assert!(
        first.starts_with(&format!(
            "waiting for the writer lock of {root}: held by `holding test` (pid {me} on host"
        )),
        "{first}"
    );
    unsafe { libc::kill(waiting.id() as i32, libc::SIGTERM) };
    let status = waiting.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(143), "{rest}");
    assert!(rest.contains("interrupted by SIGTERM"), "{rest}");
    assert!(
        corpus
            .list_table(&tdscale::store::tables::TRAJECTORIES)
            .await
            .unwrap()
            .is_empty()
    );

    lock.release().await;
    let o = run(&["ingest", &root, input.to_str().unwrap(), "--json"]);
    assert_eq!(summary(&o)["ingested"], 20);
}

/// The moto server's bucket as an object store, with its credentials.
fn bucket_store(s3: &S3Server, bucket: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .with_region("us-east-1")
        .build()
        .unwrap()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The content of an S3 corpus's lease object.
fn read_lease(s3: &S3Server, bucket: &str, key: &str) -> Option<Value> {
    use object_store::ObjectStoreExt;
    let store = bucket_store(s3, bucket);
    block_on(async {
        let got = store.get(&object_store::path::Path::from(key)).await.ok()?;
        serde_json::from_slice(&got.bytes().await.ok()?).ok()
    })
}

/// Waits until the lease object names `child` as its holder.
fn wait_for_lease(s3: &S3Server, bucket: &str, key: &str, child: &mut Child) {
    let started = Instant::now();
    loop {
        let l = read_lease(s3, bucket, key);
        if l.as_ref()
            .is_some_and(|l| l["holder"]["pid"] == child.id() && l["released"] == false)
        {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the writer ended before it was seen holding the lease: {l:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the writer never took the lease: {l:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A slow evolution on S3 (every model answer takes `delay` seconds, one request at a time).
fn slow_evolution(s3: &S3Server, root: &str, stub: &OpenAiStub, per_round: &str) -> Child {
    bin()
        .args([
            "evolve",
            root,
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
            "--concurrency",
            "1",
        ])
        .envs(s3.env())
        .env("TDSCALE_LEASE_SECONDS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A writer whose S3 lease another writer took over (here: overwritten while it works) stops
/// with exit code 8 before making its batch visible.
#[test]
fn s3_writer_whose_lease_was_taken_over_stops_with_exit_code_8() {
    let s3 = moto();
    let bucket = s3.bucket("tds-lease-lost");
    let root = format!("s3://{bucket}/c");
    let o = s3.run(&["gen", &root, "--trajectories", "200", "--seed", "6"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let stub = OpenAiStub::start(&dir.path().join("requests.jsonl"), &["--delay", "0.1"]);
    let mut holder = slow_evolution(s3, &root, &stub, "10");
    wait_for_lease(s3, &bucket, "c/writer.lease", &mut holder);
    let thief = serde_json::json!({
        "holder": {"pid": 1, "host": "elsewhere", "command": "ingest", "since": "2026-01-01T00:00:00Z"},
        "expires_at_ms": chrono::Utc::now().timestamp_millis() + 600_000,
        "released": false,
    });
    block_on(async {
        use object_store::ObjectStoreExt;
        bucket_store(s3, &bucket)
            .put(
                &object_store::path::Path::from("c/writer.lease"),
                serde_json::to_vec(&thief).unwrap().into(),
            )
            .await
            .unwrap();
    });
    let o = holder.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "lost the writer lock of {root}: another writer took over its lease"
        )),
        "{}",
        stderr(&o)
    );
    let o = s3.run(&[
        "sql",
        &root,
        "SELECT count(*) AS n FROM trajectories",
        "--format",
        "csv",
    ]);
    assert_eq!(
        stdout(&o),
        "n\n200\n",
        "nothing of the batch is visible: {}",
        stderr(&o)
    );
}

/// On S3 the lock is a lease object: while an evolution holds it, a writer that may not wait
/// fails with exit code 7 naming the holder; once the holder is killed (no release, no renewal)
/// its lease expires and the next writer takes it over and completes.
#[test]
fn s3_lease_makes_a_second_writer_fail_clearly_and_a_killed_holders_lease_is_taken_over() {
    let s3 = moto();
    let bucket = s3.bucket("tds-lease");
    let root = format!("s3://{bucket}/c");
    let lease = [("TDSCALE_LEASE_SECONDS", "2")];
    let o = s3.run(&["gen", &root, "--trajectories", "200", "--seed", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let stub = OpenAiStub::start(&dir.path().join("requests.jsonl"), &["--delay", "0.2"]);
    let mut holder = slow_evolution(s3, &root, &stub, "40");
    let holder_pid = holder.id();
    wait_for_lease(s3, &bucket, "c/writer.lease", &mut holder);

    let input = dir.path().join("late.jsonl");
    write_jsonl(&input, "late", 0..50, 20);
    let ingest = |timeout: &str| {
        bin()
            .args([
                "ingest",
                &root,
                input.to_str().unwrap(),
                "--json",
                "--lock-timeout",
                timeout,
            ])
            .envs(s3.env())
            .envs(lease)
            .output()
            .unwrap()
    };
    let refused = ingest("1s");
    assert_eq!(refused.status.code(), Some(7), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains(&format!("`evolve` (pid {holder_pid} on host"))
            && err.contains("--lock-timeout"),
        "{err}"
    );
    assert!(holder.try_wait().unwrap().is_none(), "still holding");

    holder.kill().unwrap();
    holder.wait().unwrap();
    let taken = ingest("60s");
    assert!(taken.status.success(), "{}", stderr(&taken));
    assert_eq!(summary(&taken)["ingested"], 50);
    assert!(
        stderr(&taken).contains(&format!("took over the writer lock of {root}"))
            && stderr(&taken).contains(&format!("pid {holder_pid} ")),
        "{}",
        stderr(&taken)
    );
    let l = read_lease(s3, &bucket, "c/writer.lease").expect("the lease object");
    assert_eq!(l["released"], true, "released at the end: {l}");
    let o = s3.run(&[
        "sql",
        &root,
        "SELECT count(*) = count(DISTINCT traj_id) AS ok, count(*) FILTER (WHERE traj_id LIKE 'late/%') AS late FROM trajectories",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&o), "ok,late\ntrue,50\n", "{}", stderr(&o));
}

/// What one writer of the soak was asked to do.
enum Job {
    Ingest(Vec<String>),
    Evolve,
}

/// The acceptance soak of issue 22: 4 concurrent writers × 5 rounds of ingest and evolve into
/// one corpus, one writer killed (SIGKILL) per round. In the end no id is stored twice, every
/// record of every ingest that finished is there, and every trajectory of every batch that
/// finished is there.
#[test]
fn soak_four_writers_five_rounds_one_killed_per_round() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let root_s = root.to_str().unwrap().to_string();
    let o = run(&["gen", &root_s, "--trajectories", "300", "--seed", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A pool of records to ingest, in overlapping chunks: each chunk shares 50 records with the
    // next one, so concurrent ingests try to store the same ids.
    let pool = dir.path().join("pool.jsonl");
    let o = run(&[
        "gen",
        dir.path().join("pool").to_str().unwrap(),
        "--trajectories",
        "1600",
        "--seed",
        "2",
        "--jsonl",
        pool.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = std::fs::read_to_string(&pool)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let id_of = |line: &str| -> String {
        let v: Value = serde_json::from_str(line).unwrap();
        v["traj_id"].as_str().unwrap().to_string()
    };

    let mut accepted_ids: HashSet<String> = HashSet::new();
    let mut finished_batches: Vec<(String, i64)> = vec![];
    let mut killed = 0;
    for round in 0..5usize {
        let mut jobs = vec![];
        for w in 0..2 {
            let start = (round * 2 + w) * 150;
            let chunk = &lines[start..start + 200];
            let file = dir.path().join(format!("r{round}w{w}.jsonl"));
            std::fs::write(&file, chunk.join("\n") + "\n").unwrap();
            let child = spawn(&[
                "ingest",
                &root_s,
                file.to_str().unwrap(),
                "--json",
                "--rows-per-file",
                "60",
            ]);
            jobs.push((child, Job::Ingest(chunk.iter().map(|l| id_of(l)).collect())));
        }
        for w in 0..2 {
            let child = spawn(&[
                "evolve",
                &root_s,
                "--rounds",
                "1",
                "--per-round",
                "6",
                "--backend",
                "offline",
                "--seed",
                &(round * 2 + w).to_string(),
                "--json",
            ]);
            jobs.push((child, Job::Evolve));
        }
        // Kill one writer per round, at a point that moves from round to round: while it
        // waits for the lock, or while it writes.
        let victim = round % 4;
        std::thread::sleep(Duration::from_millis(150 + (round as u64 * 311) % 900));
        let _ = jobs[victim].0.kill();
        for (i, (child, job)) in jobs.into_iter().enumerate() {
            let o = child.wait_with_output().unwrap();
            if !o.status.success() {
                assert_eq!(
                    i,
                    victim,
                    "round {round}: writer {i} failed: {}",
                    stderr(&o)
                );
                killed += 1;
                continue;
            }
            let s = summary(&o);
            match job {
                Job::Ingest(ids) => {
                    assert_eq!(s["rejected"], 0, "{s}");
                    assert_eq!(number(&s["ingested"]) + number(&s["duplicates"]), 200.0);
                    accepted_ids.extend(ids);
                }
                Job::Evolve => {
                    for b in s["batches"].as_array().unwrap() {
                        finished_batches.push((
                            b["batch_id"].as_str().unwrap().to_string(),
                            b["accepted"].as_i64().unwrap(),
                        ));
                    }
                }
            }
        }
    }
    assert!(killed > 0, "no writer was killed before it finished");
    // One more writer cleans up after the last round's victim.
    let o = run(&[
        "ingest",
        &root_s,
        dir.path().join("r0w0.jsonl").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let (n, distinct) = counts(&root_s);
    assert_eq!(n, distinct, "an id is stored twice");
    let stored = stored_ids(&root_s);
    let missing: Vec<&String> = accepted_ids.difference(&stored).collect();
    assert!(missing.is_empty(), "accepted records missing: {missing:?}");
    assert!(!finished_batches.is_empty());
    for (batch, accepted) in &finished_batches {
        let r = sql_rows(
            &root_s,
            &format!("SELECT count(*) AS n FROM trajectories WHERE batch_id = '{batch}'"),
        );
        assert_eq!(number(&r[0]["n"]) as i64, *accepted, "batch {batch}");
    }
    assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
}
