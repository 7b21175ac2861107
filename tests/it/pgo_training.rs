//! `scripts/pgo_train.sh`, the training run of the profile-guided build (`scripts/pgo.sh`): every
//! command it runs must work with the binary of the day, or the build it trains fails an hour in.

use std::path::Path;
use std::process::{Command, Output};

use super::common::{repo, sql_rows, stderr};

fn train(bin: &str, work: &Path) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/pgo_train.sh"))
        .arg(bin)
        .arg(work)
        .env("PGO_TRAIN_ROUNDS", "1")
        .env("PGO_TRAIN_TRAJECTORIES", "300")
        .output()
        .expect("run scripts/pgo_train.sh")
}

#[test]
fn the_training_run_goes_through_every_step() {
    let work = tempfile::tempdir().unwrap();
    let o = train(env!("CARGO_BIN_EXE_tdscale"), work.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("pgo training: done\n"),
        "{}",
        stderr(&o)
    );
    // The generated corpus was ingested whole and exported again.
    let corpus = work.path().join("corpus");
    let rows = sql_rows(
        corpus.to_str().unwrap(),
        "SELECT count(*) AS n, count(DISTINCT domain) AS domains FROM trajectories",
    );
    assert_eq!(rows[0]["n"], 300);
    assert!(rows[0]["domains"].as_i64().unwrap() > 1, "{rows:?}");
    let exported = std::fs::read_to_string(work.path().join("all.jsonl")).unwrap();
    assert_eq!(exported.lines().count(), 300);
    // Every bundled dialect was read: the formats corpus holds trajectories of each reader.
    let formats: Vec<String> = sql_rows(
        work.path().join("formats").to_str().unwrap(),
        "SELECT DISTINCT format FROM trajectories ORDER BY format",
    )
    .iter()
    .map(|r| r["format"].as_str().unwrap().to_string())
    .collect();
    let readers = [
        "adp",
        "anthropic",
        "bfcl",
        "claude-code",
        "codex",
        "hermes",
        "llamafactory",
        "openai",
        "openai-responses",
        "openhands",
        "sharegpt",
        "swe-agent",
        "tau-bench",
        "xlam",
    ];
    assert_eq!(formats, readers);
}

#[test]
fn a_failing_command_stops_the_training_with_its_status() {
    let work = tempfile::tempdir().unwrap();
    let o = train("/bin/false", work.path());
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("pgo training: done"), "{}", stderr(&o));
}
