//! `tdscale tools infer`: a definition for every tool that the corpus calls but defines nowhere
//! (neither in `tools` nor in the tools its trajectories offer), learnt from all its calls.
//!
//! The argument schema comes from every call whose arguments are a JSON object: the types of each
//! argument, the ones present in every call as `required`, `enum`s for small closed sets,
//! `format`s (date, date-time, email, uuid, uri) and `pattern`s for identifiers (see
//! [`super::shape`]), so every call it was learnt from validates against it. The output schema
//! comes from the results that are not errors: the fields of JSON objects, the items of lists,
//! plain text as a string.
//!
//! The definitions are rows of `tools` with `provenance = 'inferred'`, `learned_from_calls` and
//! `service` = the dataset that calls the tool most. They live in one file,
//! `tools/inferred.parquet`, written in one atomic PUT, so running the command again replaces
//! them (and writes the same bytes when the corpus has not changed). A catalog definition always
//! wins: a tool defined anywhere else is never inferred, and readers that find both prefer the
//! catalog's.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::shape::{Learn, Shape};
use crate::error::Result;
use crate::model::CatalogTool;
use crate::query::session::CorpusSession;
use crate::store::{convert, rows, tables};

/// Where the inferred definitions are stored, relative to the corpus root.
pub const INFERRED_FILE: &str = "tools/inferred.parquet";

/// The `provenance` of an inferred definition.
pub const PROVENANCE: &str = "inferred";

/// The calls of tools that have no definition.
const UNDEFINED_CALLS_SQL: &str = "
WITH defined AS (
    SELECT name FROM tools
    WHERE coalesce(provenance, 'catalog') <> 'inferred' AND parameters IS NOT NULL
    UNION
    SELECT o['name'] AS name FROM (SELECT unnest(tools) AS o FROM trajectories)
    WHERE o['parameters'] IS NOT NULL
)
SELECT tool_name, source, arguments, result, is_error
FROM tool_calls
WHERE tool_name NOT IN (SELECT name FROM defined)";

/// What was learnt about one tool.
#[derive(Debug, Clone, Serialize)]
pub struct InferredTool {
    pub name: String,
    pub service: String,
    pub calls: i64,
    /// Calls whose arguments were a JSON object: the schema validates every one of them.
    pub learned_from_calls: i64,
    /// Calls whose arguments were not a JSON object (not learnt from).
    pub unreadable_arguments: i64,
    /// Results the output schema was learnt from; error results are left out.
    pub results: i64,
    pub error_results: i64,
    pub parameters: Vec<String>,
    pub required: Vec<String>,
}

/// What `tools infer` did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct InferSummary {
    pub tools: Vec<InferredTool>,
    pub calls: i64,
    pub unreadable_arguments: i64,
    /// An earlier inference was replaced.
    pub replaced: bool,
}

impl InferSummary {
    /// The summary as text.
    pub fn to_text(&self) -> String {
        if self.tools.is_empty() {
            return "every called tool has a definition: nothing to infer\n".into();
        }
        let mut out = format!(
            "inferred {} tool definitions from {} calls ({} with arguments that are not a JSON object, not learnt from){}\n",
            self.tools.len(),
            self.calls,
            self.unreadable_arguments,
            if self.replaced {
                "; the earlier inferred definitions were replaced"
            } else {
                ""
            }
        );
        for t in &self.tools {
            out.push_str(&format!(
                "  {:<32} {:>7} calls  {} parameters ({} required), {} results\n",
                t.name,
                t.learned_from_calls,
                t.parameters.len(),
                t.required.len(),
                t.results
            ));
        }
        out
    }
}

#[derive(Default)]
struct Learner {
    calls: i64,
    arguments: Shape,
    unreadable: i64,
    results: Shape,
    error_results: i64,
    sources: BTreeMap<String, i64>,
}

impl Learner {
    fn observe(
        &mut self,
        source: &str,
        arguments: Option<&str>,
        result: Option<&str>,
        error: bool,
    ) {
        self.calls += 1;
        *self.sources.entry(source.to_string()).or_default() += 1;
        match arguments.map(serde_json::from_str::<Value>) {
            Some(Ok(v @ Value::Object(_))) => self.arguments.observe(&v),
            _ => self.unreadable += 1,
        }
        match result {
            _ if error => self.error_results += 1,
            None => {}
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) => self.results.observe(&v),
                Err(_) => self.results.observe(&Value::String(text.to_string())),
            },
        }
    }

    /// The dataset calling the tool most (ties by name).
    fn service(&self) -> String {
        self.sources
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(s, _)| s.clone())
            .unwrap_or_default()
    }
}

fn opt_strings(b: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let a = b.column_by_name(name).ok_or_else(|| {
        crate::error::Error::Other(format!("the calls query has no column `{name}`"))
    })?;
    let a = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(a.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// Infers the definitions and stores them (replacing any earlier inference).
pub async fn infer(session: &CorpusSession) -> Result<InferSummary> {
    let corpus = session.corpus();
    let mut learners: BTreeMap<String, Learner> = BTreeMap::new();
    let mut stream = session
        .sql(UNDEFINED_CALLS_SQL)
        .await?
        .execute_stream()
        .await?;
    while let Some(b) = stream.try_next().await? {
        let names = opt_strings(&b, "tool_name")?;
        let sources = opt_strings(&b, "source")?;
        let args = opt_strings(&b, "arguments")?;
        let results = opt_strings(&b, "result")?;
        let errors = b
            .column_by_name("is_error")
            .map(|a| a.as_boolean().clone())
            .ok_or_else(|| crate::error::Error::Other("no is_error column".into()))?;
        for i in 0..b.num_rows() {
            let Some(name) = &names[i] else { continue };
            learners.entry(name.clone()).or_default().observe(
                sources[i].as_deref().unwrap_or_default(),
                args[i].as_deref(),
                results[i].as_deref(),
                !errors.is_null(i) && errors.value(i),
            );
        }
    }
    let mut summary = InferSummary::default();
    let mut rows_out: Vec<CatalogTool> = vec![];
    for (name, l) in &learners {
        let mut parameters = l.arguments.render(Learn::ARGUMENTS);
        if l.arguments.seen() == 0 {
            parameters = json!({"type": "object", "properties": {}});
        }
        let names_of = |key: &str| -> Vec<String> {
            match &parameters[key] {
                Value::Object(m) => m.keys().cloned().collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => vec![],
            }
        };
        let service = l.service();
        let learned = l.calls - l.unreadable;
        summary.calls += l.calls;
        summary.unreadable_arguments += l.unreadable;
        summary.tools.push(InferredTool {
            name: name.clone(),
            service: service.clone(),
            calls: l.calls,
            learned_from_calls: learned,
            unreadable_arguments: l.unreadable,
            results: l.results.seen() as i64,
            error_results: l.error_results,
            parameters: names_of("properties"),
            required: names_of("required"),
        });
        let mut metadata = Map::new();
        metadata.insert("calls".into(), json!(l.calls));
        metadata.insert("unreadable_arguments".into(), json!(l.unreadable));
        metadata.insert("results".into(), json!(l.results.seen()));
        metadata.insert("error_results".into(), json!(l.error_results));
        metadata.insert("called_in".into(), json!(l.sources));
        rows_out.push(CatalogTool {
            tool_id: format!("{PROVENANCE}:{}", CatalogTool::make_id(&service, name)),
            name: name.clone(),
            description: Some(format!(
                "Learnt from {learned} observed calls; the corpus has no definition of this tool."
            )),
            parameters: Some(parameters.to_string()),
            output_schema: (l.results.seen() > 0)
                .then(|| l.results.render(Learn::RESULTS).to_string()),
            service: service.clone(),
            source: service,
            format: PROVENANCE.into(),
            metadata,
            domain: None,
            provenance: Some(PROVENANCE.into()),
            learned_from_calls: Some(learned),
        });
    }
    let lock = session.lock_writer("tools infer").await?;
    let written = store_inferred(corpus, &rows_out).await;
    lock.release().await;
    summary.replaced = written?;
    session.refresh(&tables::TOOLS)?;
    Ok(summary)
}

/// Replaces the inferred definitions with `rows_out` (none: removes them); returns whether
/// there were earlier ones.
async fn store_inferred(corpus: &crate::store::Corpus, rows_out: &[CatalogTool]) -> Result<bool> {
    let existing = corpus.list_table(&tables::TOOLS).await?;
    let previous: Vec<_> = existing
        .into_iter()
        .filter(|m| m.location.as_ref().ends_with(INFERRED_FILE))
        .collect();
    let replaced = !previous.is_empty();
    if rows_out.is_empty() {
        corpus.remove_files(previous).await?;
    } else {
        let batch = convert::catalog_tools_to_batch(rows_out)?;
        let bytes = rows::parquet_bytes(std::slice::from_ref(&batch), batch.schema())?;
        corpus.location().put(INFERRED_FILE, bytes).await?;
    }
    Ok(replaced)
}
