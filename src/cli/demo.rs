//! `tdscale demo`: the one-command tour of the bundled data, calling the library as a user's
//! program would.

use super::args::DemoArgs;
use crate::error::{Error, Result};
use crate::ingest::{IngestOptions, TargetTable};
use crate::query::output::{self, OutputFormat};
use crate::query::session::CorpusSession;
use crate::store::tables;

/// The files directly in `dir`, sorted.
fn files_in(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Runs the tour.
pub async fn run(a: DemoArgs) -> Result<()> {
    if !a.data.is_dir() {
        return Err(Error::Usage(format!(
            "bundled data folder `{}` not found: run from the repository root or pass --data",
            a.data.display()
        )));
    }
    let corpus = super::corpus(&a.corpus)?;
    let trajectories = files_in(&a.data.join("formats"))?;
    let catalogs = files_in(&a.data.join("catalogs"))?;
    println!(
        "== ingest {} trajectory files into {}",
        trajectories.len(),
        a.corpus
    );
    let s = crate::ingest::ingest(&corpus, &trajectories, &IngestOptions::default()).await?;
    eprint!("{}", s.reject_lines());
    print!("{}", s.to_text());
    println!("\n== ingest {} tool catalogs", catalogs.len());
    let opts = IngestOptions {
        table: TargetTable::Tools,
        ..Default::default()
    };
    let s = crate::ingest::ingest(&corpus, &catalogs, &opts).await?;
    eprint!("{}", s.reject_lines());
    print!("{}", s.to_text());

    let session = CorpusSession::open(&corpus).await?;
    println!("\n== queries/corpus_summary.sql");
    let summary = include_str!("../../queries/corpus_summary.sql");
    for (schema, batches) in crate::query::run_sql(session.ctx(), summary).await? {
        output::write_text(
            &mut std::io::stdout(),
            OutputFormat::Table,
            &schema,
            &batches,
        )?;
    }
    println!("\n== tdscale report {} --by source", a.corpus);
    let r = crate::report::build(&session, crate::report::GroupBy::Source).await?;
    print!("{}", crate::report::to_text(&r));
    let html = std::path::Path::new(&a.corpus).join("report.html");
    std::fs::write(&html, crate::report::html::render(&r)).map_err(|e| Error::io(&html, e))?;
    println!("\nthe same report with charts: {}", html.display());

    println!("\n== tdscale clusters build {}", a.corpus);
    let (cs, clusters) = crate::clusters::build(&session, &Default::default()).await?;
    for c in &clusters {
        println!(
            "{:<28} {:<10} {} tools, {} edges: {}",
            c.cluster_id,
            c.domain,
            c.tool_ids.len(),
            c.internal_edges,
            c.tool_names.join(", ")
        );
    }
    println!("{} clusters, {} dependency edges", cs.clusters, cs.edges);

    let out = format!("{}/runs/demo", a.corpus.trim_end_matches('/'));
    println!(
        "\n== tdscale budget {} --budgets 4,8 --seeds 1 --out {out}",
        a.corpus
    );
    let budget = crate::select::budget::BudgetOptions {
        budgets: vec![4, 8],
        unit: crate::select::Unit::Trajectories,
        strategies: crate::select::Strategy::ALL.to_vec(),
        seeds: 1,
        out: out.clone(),
        threshold: 0.6,
        training_files: true,
        progress: false,
    };
    let rows = crate::select::budget::run(&session, &budget).await?;
    print!("{}", crate::select::budget::to_text(&rows, &out));

    // Evolution needs a corpus with a long tail: a generated one, next to the demo corpus.
    let evolved = format!("{}/evolved", a.corpus.trim_end_matches('/'));
    println!(
        "\n== tdscale gen {evolved} --trajectories 2000, then tdscale evolve {evolved} --rounds 2 --per-round 50 --backend offline"
    );
    let ev = super::corpus(&evolved)?;
    if ev.list_table(&tables::ROUNDS).await?.is_empty() {
        crate::generate::generate(&ev, 2000, Default::default(), None, false).await?;
    }
    let session = CorpusSession::open(&ev).await?;
    let opts = crate::evolve::EvolveOptions {
        rounds: 2,
        per_round: 50,
        strategy: crate::evolve::SeedStrategy::Steered,
        params: Default::default(),
        seed: 0,
    };
    let s = crate::evolve::evolve(&session, &opts, Default::default()).await?;
    for b in &s.batches {
        println!(
            "round {}: {} requested, {} accepted, {} rejected, {} failed",
            b.round, b.requested, b.accepted, b.rejected, b.failed
        );
    }
    print!(
        "{}",
        crate::evolve::rounds::to_text(&crate::evolve::rounds::list(&session).await?)
    );
    Ok(())
}
