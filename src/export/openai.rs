//! `tdscale export openai`: trajectories as OpenAI chat JSONL, one trajectory per line, with
//! every label and the metadata, so that ingesting the file again gives the same `traj_id`s and
//! the same messages.

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::query::session::CorpusSession;
use crate::store::convert;
use crate::store::location::Location;

/// Writes the trajectories selected by `filter` (a SQL boolean expression, or all) to `out` as
/// OpenAI JSONL (under the corpus's writer lock when `out` is inside the corpus's folder).
/// Returns the number of lines written.
pub async fn export(session: &CorpusSession, out: &str, filter: Option<&str>) -> Result<u64> {
    // Only an output inside the corpus's folder is a write into the corpus.
    if !session.corpus().contains(out) {
        return write_jsonl(session, out, filter).await;
    }
    let lock = session.lock_writer("export").await?;
    let result = write_jsonl(session, out, filter).await;
    lock.release().await;
    result
}

/// Writes the JSONL.
async fn write_jsonl(session: &CorpusSession, out: &str, filter: Option<&str>) -> Result<u64> {
    let ctx = session.ctx();
    let sql = match filter {
        Some(f) => format!("SELECT * FROM trajectories WHERE {f} ORDER BY traj_id"),
        None => "SELECT * FROM trajectories ORDER BY traj_id".to_string(),
    };
    let mut stream = ctx.sql(&sql).await?.execute_stream().await?;
    let (folder, name) = Location::of_object(out)?;
    let mut w = folder.writer(&name);
    let mut n = 0u64;
    let io = |e: std::io::Error| Error::Storage {
        url: out.to_string(),
        message: e.to_string(),
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let mut buf = Vec::new();
        for t in convert::batch_to_trajectories(&batch)? {
            serde_json::to_writer(&mut buf, &crate::formats::openai::to_openai_json(&t))
                .map_err(|e| Error::Other(e.to_string()))?;
            buf.push(b'\n');
            n += 1;
        }
        w.write_all(&buf).await.map_err(io)?;
    }
    w.shutdown().await.map_err(io)?;
    Ok(n)
}
