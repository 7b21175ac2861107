//! The commands that answer with a value: each runs through the library and returns an
//! [`Outcome`] — the value `--json` prints, and for a terminal the text and notes printed
//! otherwise. The command line ([`super::main`]) prints it; [`super::embed`] hands the value to
//! the program that embeds tdscale. One function, so both run a command the same way (locks,
//! options, errors).

use serde_json::{Value, json};

use super::args::{
    AblationArgs, BudgetArgs, ClustersBuildArgs, ClustersCommand, Command, DecontaminateArgs,
    EvolveArgs, ExportCommand, GenArgs, IngestArgs, LabelArgs, MetricsCommand, MetricsRefreshArgs,
    ReportArgs, RoundsArgs, SplitArgs, ToolsCommand, progress_bar_wanted,
};
use super::cluster::cluster_context;
use super::open;
use super::writers::{corpus, release};
use crate::error::{Error, Result};
use crate::query::session::CorpusSession;
use crate::store::lock::WriterLock;

/// What a command produced.
pub(super) struct Outcome {
    /// What `--json` prints and an embedding program receives.
    pub value: Value,
    /// What the command prints instead (empty when the value is asked for).
    pub text: String,
    /// Lines for stderr beside the text: rejects, problems, files written.
    pub notes: String,
    /// The error the command ends with once its output is printed (`ingest --strict` with
    /// rejects, an evolution whose every request failed).
    pub error: Option<Error>,
}

impl Outcome {
    fn new<T: serde::Serialize>(
        value: &T,
        text: impl FnOnce() -> String,
        json: bool,
    ) -> Result<Self> {
        Ok(Outcome {
            value: serde_json::to_value(value).map_err(|e| Error::Other(e.to_string()))?,
            text: if json { String::new() } else { text() },
            notes: String::new(),
            error: None,
        })
    }

    fn notes(mut self, notes: String) -> Self {
        self.notes.push_str(&notes);
        self
    }
}

/// Runs `command` when it answers with a value; `None` for the commands that only make sense on
/// a terminal or as a server (`sql`, `demo`, `sandbox`, `cluster`, `serve`). `json`: the value is
/// wanted, not the text. `progress`: draw progress bars of long work, or (`None`) when stderr is
/// a terminal and the text is wanted.
pub(super) async fn execute(
    command: Command,
    json: bool,
    progress: Option<bool>,
) -> Option<Result<Outcome>> {
    let progress = progress.unwrap_or_else(|| progress_bar_wanted(json));
    Some(match command {
        Command::Ingest(a) => ingest(a, json, progress).await,
        Command::Report(a) => report(a, json).await,
        Command::Budget(a) => budget(a, json, progress).await,
        Command::Ablation(a) => ablation(a, json).await,
        Command::Gen(a) => gen_corpus(a, json, progress).await,
        Command::Clusters(ClustersCommand::Show { corpus, id }) => {
            clusters_show(&corpus, &id).await
        }
        Command::Clusters(ClustersCommand::Build(a)) => clusters_build(a, json).await,
        Command::Tools(ToolsCommand::Infer(a)) => tools_infer(&a.corpus, json).await,
        Command::Label(a) => label(a, json, progress).await,
        Command::Metrics(MetricsCommand::Refresh(a)) => metrics_refresh(a, json).await,
        Command::Evolve(a) => evolve(a, json, progress).await,
        Command::Rounds(a) => rounds(a, json).await,
        Command::Split(a) => split(a, json).await,
        Command::Decontaminate(a) => decontaminate(a, json).await,
        Command::Export(e) => export(e, json).await,
        Command::Sql(_)
        | Command::Demo(_)
        | Command::Sandbox(_)
        | Command::Cluster(_)
        | Command::Serve(_) => return None,
    })
}

async fn ingest(a: IngestArgs, json: bool, progress: bool) -> Result<Outcome> {
    let opts = crate::ingest::IngestOptions {
        progress,
        ..a.options()
    };
    if a.explain {
        let files = crate::ingest::explain::explain(&a.inputs, &opts).await?;
        return Outcome::new(&files, || crate::ingest::explain::to_text(&files), json);
    }
    let s = crate::ingest::ingest(&corpus(&a.corpus)?, &a.inputs, &opts).await?;
    ingest_outcome(&a, &s, json)
}

/// An ingest's summary and, under `--strict` with rejects, the error the command ends with
/// (carrying a sample of the rejects when no text showed them).
pub(super) fn ingest_outcome(
    a: &IngestArgs,
    s: &crate::ingest::IngestSummary,
    json: bool,
) -> Result<Outcome> {
    let mut out = Outcome::new(s, || s.to_text(), json)?;
    if !json {
        out.notes = s.reject_lines();
    }
    if a.strict && s.rejected > 0 {
        let mut message = format!("{} record(s) rejected and --strict is set", s.rejected);
        if json {
            message = format!("{message}\n{}", s.reject_lines().trim_end());
        }
        out.error = Some(Error::Rejected(message));
    }
    Ok(out)
}

async fn report(a: ReportArgs, json: bool) -> Result<Outcome> {
    let corpus = corpus(&a.corpus)?;
    let session = match &a.cluster {
        Some(url) => CorpusSession::on(&corpus, cluster_context(url).await?).await?,
        None => CorpusSession::open_with(&corpus, &a.session_options()).await?,
    };
    let r = crate::report::build(&session, a.by).await?;
    let mut notes = String::new();
    if let Some(path) = &a.html {
        notes = write_file(path, &crate::report::html::render(&r))?;
    }
    Ok(Outcome::new(&r, || crate::report::to_text(&r), json)?.notes(notes))
}

async fn budget(a: BudgetArgs, json: bool, progress: bool) -> Result<Outcome> {
    let session = open(&a.corpus).await?;
    let opts = crate::select::budget::BudgetOptions {
        progress,
        ..a.options()
    };
    let rows = crate::select::budget::run(&session, &opts).await?;
    Outcome::new(
        &rows,
        || crate::select::budget::to_text(&rows, &opts.out),
        json,
    )
}

async fn ablation(a: AblationArgs, json: bool) -> Result<Outcome> {
    let ab = crate::select::ablation::build(&a.run, &a.scores).await?;
    let mut notes = String::new();
    if let Some(path) = &a.html {
        notes = write_file(path, &crate::select::ablation::to_html(&ab))?;
    }
    Ok(Outcome::new(&ab, || crate::select::ablation::to_text(&ab), json)?.notes(notes))
}

async fn gen_corpus(a: GenArgs, json: bool, progress: bool) -> Result<Outcome> {
    let s = crate::generate::generate(
        &corpus(&a.corpus)?,
        a.trajectories,
        a.options(),
        a.jsonl.as_deref(),
        progress,
    )
    .await?;
    Outcome::new(&s, || s.to_text(&a.corpus), json)
}

async fn clusters_show(root: &str, id: &str) -> Result<Outcome> {
    let text = crate::clusters::show(&open(root).await?, id).await?;
    Ok(Outcome {
        value: Value::String(text.clone()),
        text,
        notes: String::new(),
        error: None,
    })
}

async fn clusters_build(a: ClustersBuildArgs, json: bool) -> Result<Outcome> {
    let session = open(&a.corpus).await?;
    let (s, _) = crate::clusters::build(&session, &a.options()?).await?;
    let notes = if json {
        String::new()
    } else {
        s.problem_lines()
    };
    Ok(Outcome::new(&s, || s.to_text(), json)?.notes(notes))
}

async fn tools_infer(root: &str, json: bool) -> Result<Outcome> {
    let s = crate::labels::infer::infer(&open(root).await?).await?;
    Outcome::new(&s, || s.to_text(), json)
}

async fn label(a: LabelArgs, json: bool, progress: bool) -> Result<Outcome> {
    let opts = crate::labels::domains::LabelOptions {
        progress,
        ..a.options()
    };
    let s = crate::labels::domains::label(&open(&a.corpus).await?, &opts).await?;
    Outcome::new(&s, || s.to_text(), json)
}

async fn metrics_refresh(a: MetricsRefreshArgs, json: bool) -> Result<Outcome> {
    let corpus = corpus(&a.corpus)?;
    if !corpus.is_local() {
        corpus.location().check_reachable().await?;
    }
    let r = crate::store::trajectory_metrics::refresh(&corpus, a.force).await?;
    Outcome::new(&r, || r.to_text(), json)
}

async fn evolve(a: EvolveArgs, json: bool, progress: bool) -> Result<Outcome> {
    // The lock before the session, so its listings hold for the whole evolution.
    let corpus = corpus(&a.corpus)?;
    let lock = corpus.lock_writer("evolve").await?;
    let result = async {
        let session = CorpusSession::open(&corpus).await?;
        evolve_locked(&a, &session, json, progress).await
    }
    .await;
    lock.release().await;
    result
}

async fn evolve_locked(
    a: &EvolveArgs,
    session: &CorpusSession,
    json: bool,
    progress: bool,
) -> Result<Outcome> {
    let s = crate::evolve::evolve(session, &a.options()?, a.synth.options(progress)).await?;
    let text = if json {
        String::new()
    } else {
        let all = crate::evolve::rounds::list(session).await?;
        format!(
            "{}rejections and failures: tdscale sql {} \"SELECT stage, reasons FROM synthesis_rejects\"\n",
            s.to_text(&all),
            a.corpus
        )
    };
    let mut out = Outcome::new(&s, || text, json)?;
    out.error = s.all_failed_batch().map(|b| {
        Error::Backend(format!(
            "every one of the {} requests of batch {} failed, so evolution stopped: check --base-url, --model and the API key (the reasons are in the synthesis_rejects table)",
            b.requested, b.batch_id
        ))
    });
    Ok(out)
}

async fn rounds(a: RoundsArgs, json: bool) -> Result<Outcome> {
    let rows = crate::evolve::rounds::list(&open(&a.corpus).await?).await?;
    Outcome::new(
        &rows,
        || {
            if rows.is_empty() {
                format!("no rounds yet: run `tdscale evolve {}`\n", a.corpus)
            } else {
                crate::evolve::rounds::to_text(&rows)
            }
        },
        json,
    )
}

async fn split(a: SplitArgs, json: bool) -> Result<Outcome> {
    let session = open(&a.corpus).await?;
    let (s, _) = crate::export::split::split(&session, &a.options()).await?;
    Outcome::new(&s, || s.to_text(), json)
}

async fn decontaminate(a: DecontaminateArgs, json: bool) -> Result<Outcome> {
    let session = open(&a.corpus).await?;
    let (s, flags) =
        crate::export::decontaminate::decontaminate(&session, &a.against, a.threshold).await?;
    let notes = if json {
        String::new()
    } else {
        s.unreadable
            .iter()
            .take(5)
            .map(|u| format!("unreadable evaluation record {u}\n"))
            .collect()
    };
    let value = json!({"summary": s, "flagged": flags});
    Ok(Outcome::new(&value, || s.to_text(&flags, a.threshold), json)?.notes(notes))
}

async fn export(command: ExportCommand, json: bool) -> Result<Outcome> {
    match command {
        ExportCommand::Openai(a) => {
            let session = open(&a.corpus).await?;
            let n = crate::export::openai::export(&session, &a.out, a.filter.as_deref()).await?;
            Outcome::new(
                &json!({"written": n, "out": a.out}),
                || format!("wrote {n} trajectories to {}\n", a.out),
                json,
            )
        }
        ExportCommand::Bfcl(a) => {
            let (trajectories, target, lock) = eval_selection(&a).await?;
            let s = crate::export::bfcl::export(&trajectories, target).await;
            release(lock).await;
            let s = s?;
            let notes = if json {
                String::new()
            } else {
                s.skipped_lines()
            };
            Ok(Outcome::new(&s, || s.to_text(&a.to), json)?.notes(notes))
        }
        ExportCommand::Tau2(a) => {
            let (trajectories, target, lock) = eval_selection(&a.common).await?;
            let s = crate::export::tau2::export(&trajectories, &a.domain_name, target).await;
            release(lock).await;
            let s = s?;
            Outcome::new(&s, || s.to_text(&a.common.to), json)
        }
    }
}

/// The trajectories an evaluation export writes, where it writes them, and the corpus's writer
/// lock when that is inside the corpus.
async fn eval_selection(
    a: &super::args::ExportEvalArgs,
) -> Result<(
    Vec<crate::model::Trajectory>,
    crate::export::target::ExportTarget,
    Option<WriterLock>,
)> {
    let session = open(&a.corpus).await?;
    let lock = if session.corpus().contains(&a.to) {
        Some(session.lock_writer("export").await?)
    } else {
        None
    };
    let params = crate::query::params::parse_pairs(&a.params)?;
    let trajectories =
        crate::export::split_trajectories(&session, &a.split, a.query_text()?.as_deref(), &params)
            .await?;
    let target = crate::export::target::ExportTarget::open(&a.to, a.retry())?;
    Ok((trajectories, target, lock))
}

/// Writes a page the command was asked for; the note saying so.
fn write_file(path: &std::path::Path, text: &str) -> Result<String> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    Ok(format!("wrote {}\n", path.display()))
}
