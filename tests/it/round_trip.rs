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
