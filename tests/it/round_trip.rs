//! ingest → export as OpenAI JSONL → ingest into a fresh corpus: same ids, same messages.

use crate::common::*;
use tdscale::model::Trajectory;

async fn all(corpus: &tdscale::store::Corpus) -> Vec<Trajectory> {
    let mut out = vec![];
    for b in sql(corpus, "SELECT * FROM trajectories ORDER BY traj_id").await {
        out.extend(tdscale::store::convert::batch_to_trajectories(&b).unwrap());
    }
    out
}

#[tokio::test]
async fn export_openai_and_reingest_round_trips() {
    let (dir, a) = temp_corpus();
    let mut inputs: Vec<_> = std::fs::read_dir(testdata("formats"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    inputs.push(shared("tau-bench/gpt-4o-airline.json"));
    let s = ingest(&a, &inputs).await;
    assert_eq!(s.rejected, 0);
    let out = dir.path().join("export/all.jsonl");
    let session = tdscale::query::session::CorpusSession::open(&a)
        .await
        .unwrap();
    let n = tdscale::export::openai::export(&session, out.to_str().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(n, s.ingested);
    let b = tdscale::store::Corpus::open(dir.path().join("b").to_str().unwrap()).unwrap();
    let s2 = ingest(&b, &[out]).await;
    assert_eq!((s2.ingested, s2.rejected), (n, 0));
    let (ta, tb) = (all(&a).await, all(&b).await);
    assert_eq!(ta.len(), tb.len());
    for (x, y) in ta.iter().zip(&tb) {
        assert_eq!(x.traj_id, y.traj_id);
        assert_eq!(x.messages, y.messages, "messages of {}", x.traj_id);
        assert_eq!(x.system, y.system);
        assert_eq!(x.tools, y.tools, "tools of {}", x.traj_id);
        assert_eq!(
            (&x.source, &x.domain, x.reward),
            (&y.source, &y.domain, y.reward)
        );
        for (k, v) in &x.metadata {
            assert_eq!(y.metadata.get(k), Some(v), "metadata {k} of {}", x.traj_id);
        }
    }
}

/// Part files give a dictionary to repeated text (labels, roles, tool names and schemas) and
/// none to the nearly distinct (ids, message texts, call arguments), and keep no statistics for
/// the leaves inside lists.
#[tokio::test]
async fn part_files_keep_dictionaries_for_repeated_text_only() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let (dir, corpus) = temp_corpus();
    let s = ingest(&corpus, &[testdata("formats/openai_chat.jsonl")]).await;
    assert!(s.ingested > 1, "{s:?}");
    let root = dir.path().join("corpus").join("trajectories");
    let part = files_under(&root)
        .into_iter()
        .find(|f| f.ends_with(".parquet"))
        .expect("a trajectories part");
    let reader = SerializedFileReader::new(std::fs::File::open(root.join(part)).unwrap()).unwrap();
    let mut seen = vec![];
    for c in reader.metadata().row_group(0).columns() {
        let path = c.column_path().string();
        let leaf = c.column_path().parts().last().unwrap().clone();
        let dictionary = c.dictionary_page_offset().is_some();
        match leaf.as_str() {
            "traj_id" | "content" | "arguments" | "tool_call_id" => {
                assert!(!dictionary, "{path} has a dictionary")
            }
            "source" | "format" | "role" | "name" | "parameters" => {
                assert!(dictionary, "{path} has no dictionary")
            }
            _ => {}
        }
        if c.column_descr().max_rep_level() > 0 {
            assert!(c.statistics().is_none(), "{path} has statistics");
        }
        seen.push(path);
    }
    for p in [
        "traj_id",
        "messages.list.item.content",
        "messages.list.item.tool_calls.list.item.arguments",
        "tools.list.item.parameters",
    ] {
        assert!(seen.iter().any(|s| s == p), "{p} not among {seen:?}");
    }
}

/// The `num_tokens` column of a batch is each trajectory's own estimate (⌈characters / 4⌉ per
/// text, 4 per message), whether a column's texts are all ASCII (counted from their offsets) or
/// not (counted by characters), with null, empty and multi-byte texts.
#[test]
fn a_batch_counts_each_rows_tokens_as_the_trajectory_does() {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use tdscale::model::{Message, ToolCall, ToolDef};
    let call = |name: &str, arguments: &str| ToolCall {
        id: Some("c1".into()),
        name: name.into(),
        arguments: arguments.into(),
    };
    // By hand: system 9 characters → 3; "héllo wörld" 11 characters (13 bytes) → 3, + 4; a
    // message without content calling f({}) → 1 + 1, + 4; an empty result → 0, + 4: 20.
    let accented = Trajectory {
        traj_id: "accented".into(),
        system: Some("Be brief.".into()),
        messages: vec![
            Message::text("user", "héllo wörld"),
            Message::calls(vec![call("f", "{}")]),
            Message::text("tool", ""),
        ],
        ..Default::default()
    };
    let emoji = Trajectory {
        traj_id: "emoji".into(),
        tools: vec![ToolDef {
            name: "lookup".into(),
            description: Some("Finds things 😀".into()),
            parameters: Some(r#"{"type":"object"}"#.into()),
        }]
        .into(),
        messages: vec![
            Message {
                reasoning: Some("🙂🙂🙂🙂🙂".into()),
                ..Message::calls(vec![call("lookup", r#"{"q":"ß"}"#), call("g", "")])
            },
            Message::text("assistant", "done"),
        ],
        ..Default::default()
    };
    let plain = Trajectory {
        traj_id: "plain".into(),
        system: Some(String::new()),
        messages: vec![
            Message::text("user", "a question of some length"),
            Message::calls(vec![call("search", r#"{"query":"x"}"#)]),
        ],
        ..Default::default()
    };
    let tokens = |rows: &[Trajectory]| -> Vec<i64> {
        let b = tdscale::store::convert::trajectories_to_batch(rows).unwrap();
        let c = b.column_by_name("num_tokens").unwrap();
        c.as_primitive::<Int64Type>().values().to_vec()
    };
    assert_eq!(accented.num_tokens(), 20);
    let mixed = [accented, emoji, plain.clone()];
    let expected: Vec<i64> = mixed.iter().map(Trajectory::num_tokens).collect();
    assert_eq!(tokens(&mixed), expected);
    // Only ASCII texts: every column counted from its offsets.
    let ascii = [plain.clone(), Trajectory::default(), plain];
    let expected: Vec<i64> = ascii.iter().map(Trajectory::num_tokens).collect();
    assert_eq!(tokens(&ascii), expected);
}
