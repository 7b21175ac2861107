//! Business clusters: tools of one real service that feed each other, so that a synthesised
//! trajectory can chain them the way a real workflow does.
//!
//! `tdscale clusters build` reads the `tools` table and writes two tables:
//! - `cluster_edges`: from tool, to tool, the input field that links them, the evidence and a
//!   score (see [`edges`]);
//! - `clusters`: tools grouped by service (the MCP server or catalog, and the `Name.` prefix of
//!   namespaced tools), split along the dependency graph when larger than the maximum size, each
//!   with a domain label from a keyword taxonomy (overridable) and, for the clusters chosen by a
//!   greedy maximum-coverage pass ([`selection`]), its rank and marginal coverage gain.

pub mod edges;
pub mod selection;
pub mod taxonomy;

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::session::CorpusSession;
use crate::store::{rows, tables};
use edges::{ToolShape, find_edges};

/// A row of `cluster_edges`.
#[derive(Debug, Clone, Serialize)]
struct EdgeRow {
    cluster_id: String,
    from_tool: String,
    to_tool: String,
    field: String,
    evidence: String,
    score: f64,
}

/// A row of `clusters`: a cluster and its size.
#[derive(Serialize)]
struct ClusterRow<'a> {
    #[serde(flatten)]
    cluster: &'a Cluster,
    size: usize,
}

/// Build settings.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub max_cluster_size: usize,
    /// How many clusters the coverage pass selects.
    pub select: usize,
    /// Domain labels by service or cluster id, overriding the taxonomy.
    pub domain_overrides: HashMap<String, String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            max_cluster_size: 12,
            select: 500,
            domain_overrides: HashMap::new(),
        }
    }
}

/// One cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    pub service: String,
    pub domain: String,
    pub tool_ids: Vec<String>,
    pub tool_names: Vec<String>,
    pub internal_edges: usize,
    pub selected: bool,
    pub rank: Option<usize>,
    pub coverage_gain: Option<usize>,
}

/// What a build did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BuildSummary {
    pub tools: usize,
    pub services: usize,
    pub clusters: usize,
    pub edges: usize,
    pub selected: usize,
    pub covered_items: usize,
    /// Problems found in the catalogs; none stops the build.
    pub problems: Vec<String>,
}

impl BuildSummary {
    /// The first problems, one line each (the terminal's standard error).
    pub fn problem_lines(&self) -> String {
        let mut out = String::new();
        for p in self.problems.iter().take(10) {
            out.push_str(&format!("note: {p}\n"));
        }
        if self.problems.len() > 10 {
            out.push_str(&format!(
                "note: … and {} more (see --json)\n",
                self.problems.len() - 10
            ));
        }
        out
    }

    /// The summary as one line of text.
    pub fn to_text(&self) -> String {
        format!(
            "{} tools in {} services → {} clusters, {} dependency edges; {} clusters selected covering {} tools and capabilities\n",
            self.tools, self.services, self.clusters, self.edges, self.selected, self.covered_items
        )
    }
}

/// The service key of a tool: its service, plus the namespace of a `Name.method` tool.
fn service_key(service: &str, name: &str) -> String {
    match name.split_once('.') {
        Some((ns, _)) if !ns.is_empty() => format!("{service}/{ns}"),
        _ => service.to_string(),
    }
}

/// The capability a tool offers, independent of its service (`cancel_order`).
fn capability(name: &str) -> String {
    format!(
        "cap:{}",
        edges::normalize(name.rsplit('.').next().unwrap_or(name))
    )
}

struct Row {
    tool_id: String,
    name: String,
    service: String,
    description: String,
    parameters: Option<String>,
    output: Option<String>,
}

async fn read_tools(session: &CorpusSession) -> Result<Vec<Row>> {
    let batches = session.ctx().sql("SELECT tool_id, name, service, description, parameters, output_schema FROM tools ORDER BY tool_id").await?.collect().await?;
    let mut rows = vec![];
    for b in &batches {
        let s = |i: usize| datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8);
        let cols: Vec<ArrayRef> = (0..6).map(s).collect::<std::result::Result<_, _>>()?;
        let get = |c: usize, r: usize| {
            let a = cols[c].as_string::<i32>();
            (!datafusion::arrow::array::Array::is_null(a, r)).then(|| a.value(r).to_string())
        };
        for r in 0..b.num_rows() {
            rows.push(Row {
                tool_id: get(0, r).unwrap_or_default(),
                name: get(1, r).unwrap_or_default(),
                service: get(2, r).unwrap_or_default(),
                description: get(3, r).unwrap_or_default(),
                parameters: get(4, r),
                output: get(5, r),
            });
        }
    }
    Ok(rows)
}

/// Splits the tools of one service into clusters of at most `max` along the dependency graph:
/// connected components first, then a component too large is cut in breadth-first order.
fn split(n: usize, edges: &[edges::Edge], max: usize) -> Vec<Vec<usize>> {
    let mut adj = vec![vec![]; n];
    for e in edges {
        adj[e.from].push(e.to);
        adj[e.to].push(e.from);
    }
    let mut seen = vec![false; n];
    let mut groups: Vec<Vec<usize>> = vec![];
    let mut singles: Vec<usize> = vec![];
    for start in 0..n {
        if seen[start] {
            continue;
        }
        let mut order = vec![start];
        seen[start] = true;
        let mut k = 0;
        while k < order.len() {
            for &m in &adj[order[k]] {
                if !seen[m] {
                    seen[m] = true;
                    order.push(m);
                }
            }
            k += 1;
        }
        if order.len() == 1 {
            singles.push(start);
        } else {
            groups.extend(order.chunks(max).map(<[usize]>::to_vec));
        }
    }
    // Tools that feed nothing still belong to their service: keep them together.
    groups.extend(singles.chunks(max).map(<[usize]>::to_vec));
    groups
}

/// Builds the clusters from the `tools` table and writes `clusters` and `cluster_edges`,
/// holding the corpus's writer lock.
pub async fn build(
    session: &CorpusSession,
    opts: &BuildOptions,
) -> Result<(BuildSummary, Vec<Cluster>)> {
    let lock = session.lock_writer("clusters build").await?;
    let result = build_locked(session, opts).await;
    lock.release().await;
    result
}

async fn build_locked(
    session: &CorpusSession,
    opts: &BuildOptions,
) -> Result<(BuildSummary, Vec<Cluster>)> {
    let corpus = session.corpus();
    if opts.max_cluster_size == 0 {
        return Err(Error::Usage("--max-cluster-size must be at least 1".into()));
    }
    let rows = read_tools(session).await?;
    if rows.is_empty() {
        return Err(Error::Usage(format!(
            "the corpus {} has no tools: ingest catalogs first with `tdscale ingest {} FILES --table tools`",
            corpus.display(),
            corpus.display()
        )));
    }
    let mut summary = BuildSummary {
        tools: rows.len(),
        ..Default::default()
    };
    // Duplicate names across services are legitimate but worth knowing.
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &rows {
        by_name
            .entry(r.name.as_str())
            .or_default()
            .push(r.service.as_str());
    }
    for (name, services) in &by_name {
        if services.len() > 1 {
            summary.problems.push(format!(
                "tool name `{name}` appears in {} services ({}); they stay in separate clusters",
                services.len(),
                services.join(", ")
            ));
        }
    }
    let mut services: BTreeMap<String, Vec<ToolShape>> = BTreeMap::new();
    for r in &rows {
        let parse = |text: &Option<String>,
                     what: &str,
                     problems: &mut Vec<String>|
         -> Vec<(String, Option<String>)> {
            match text.as_deref().map(serde_json::from_str::<Value>) {
                None => vec![],
                Some(Ok(v)) if v.is_object() => {
                    if v.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t != "object")
                    {
                        problems.push(format!(
                            "{}: {what} is not an object schema; treated as having no fields",
                            r.tool_id
                        ));
                    }
                    edges::fields(&v)
                }
                Some(_) => {
                    problems.push(format!(
                        "{}: {what} is not a JSON Schema object; treated as having no fields",
                        r.tool_id
                    ));
                    vec![]
                }
            }
        };
        let inputs = parse(&r.parameters, "parameters", &mut summary.problems);
        let outputs = parse(&r.output, "output schema", &mut summary.problems);
        services
            .entry(service_key(&r.service, &r.name))
            .or_default()
            .push(ToolShape {
                tool_id: r.tool_id.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                inputs,
                outputs,
            });
    }
    summary.services = services.len();
    let mut clusters: Vec<Cluster> = vec![];
    let mut edge_rows: Vec<EdgeRow> = vec![];
    for (service, tools) in &services {
        let es = find_edges(tools);
        let groups = split(tools.len(), &es, opts.max_cluster_size);
        for (k, g) in groups.iter().enumerate() {
            let cluster_id = if groups.len() == 1 {
                service.clone()
            } else {
                format!("{service}#{k}")
            };
            let members: std::collections::HashSet<usize> = g.iter().copied().collect();
            let internal: Vec<&edges::Edge> = es
                .iter()
                .filter(|e| members.contains(&e.from) && members.contains(&e.to))
                .collect();
            for e in &internal {
                edge_rows.push(EdgeRow {
                    cluster_id: cluster_id.clone(),
                    from_tool: tools[e.from].tool_id.clone(),
                    to_tool: tools[e.to].tool_id.clone(),
                    field: e.field.clone(),
                    evidence: e.evidence.clone(),
                    score: e.score,
                });
            }
            let names: Vec<String> = g.iter().map(|&i| tools[i].name.clone()).collect();
            let text: Vec<&str> = g
                .iter()
                .flat_map(|&i| [tools[i].name.as_str(), tools[i].description.as_str()])
                .collect();
            let domain = opts
                .domain_overrides
                .get(&cluster_id)
                .or_else(|| opts.domain_overrides.get(service))
                .cloned()
                .unwrap_or_else(|| taxonomy::domain_of(service, &text));
            clusters.push(Cluster {
                cluster_id,
                service: service.clone(),
                domain,
                tool_ids: g.iter().map(|&i| tools[i].tool_id.clone()).collect(),
                tool_names: names,
                internal_edges: internal.len(),
                selected: false,
                rank: None,
                coverage_gain: None,
            });
        }
    }
    // Coverage: each cluster covers its tools and the capabilities they offer.
    let items: Vec<Vec<String>> = clusters
        .iter()
        .map(|c| {
            c.tool_ids
                .iter()
                .cloned()
                .chain(c.tool_names.iter().map(|n| capability(n)))
                .collect()
        })
        .collect();
    let picks = selection::greedy_max_coverage(&items, opts.select);
    for (rank, p) in picks.iter().enumerate() {
        let c = &mut clusters[p.cluster];
        c.selected = true;
        c.rank = Some(rank + 1);
        c.coverage_gain = Some(p.gain);
    }
    summary.clusters = clusters.len();
    summary.edges = edge_rows.len();
    summary.selected = picks.len();
    summary.covered_items = picks.iter().map(|p| p.gain).sum();
    write_tables(session, &clusters, &edge_rows).await?;
    Ok((summary, clusters))
}

/// Writes the new tables, then removes the files of the previous build (readers see either the
/// old or the new build's files complete, never a partial file).
async fn write_tables(
    session: &CorpusSession,
    clusters: &[Cluster],
    edges: &[EdgeRow],
) -> Result<()> {
    let corpus = session.corpus();
    let old = [
        corpus.list_table(&tables::CLUSTERS).await?,
        corpus.list_table(&tables::CLUSTER_EDGES).await?,
    ]
    .concat();
    let cluster_rows: Vec<ClusterRow> = clusters
        .iter()
        .map(|c| ClusterRow {
            cluster: c,
            size: c.tool_ids.len(),
        })
        .collect();
    rows::append(corpus, &tables::CLUSTERS, &cluster_rows).await?;
    rows::append(corpus, &tables::CLUSTER_EDGES, edges).await?;
    corpus.remove_files(old).await?;
    session.refresh(&tables::CLUSTERS)?;
    session.refresh(&tables::CLUSTER_EDGES)
}

/// A cluster's tools and internal edges, for `tdscale clusters show`.
pub async fn show(session: &CorpusSession, cluster_id: &str) -> Result<String> {
    let (ctx, corpus) = (session.ctx(), session.corpus());
    let id = crate::query::params::string_literal(cluster_id);
    let head = ctx.sql(&format!("SELECT cluster_id, service, domain, size, internal_edges, selected, rank, coverage_gain FROM clusters WHERE cluster_id = {id}")).await?.collect().await?;
    if head.iter().all(|b| b.num_rows() == 0) {
        let built = corpus.list_table(&tables::CLUSTERS).await?;
        return Err(Error::Usage(if built.is_empty() {
            format!(
                "no clusters in {}: run `tdscale clusters build {}` first",
                corpus.display(),
                corpus.display()
            )
        } else {
            format!(
                "no cluster `{cluster_id}`; list them with: tdscale sql {} \"SELECT cluster_id FROM clusters\"",
                corpus.display()
            )
        }));
    }
    let tools = ctx.sql(&format!("SELECT t.name, t.description FROM (SELECT unnest(tool_ids) AS id FROM clusters WHERE cluster_id = {id}) c JOIN tools t ON t.tool_id = c.id ORDER BY t.name")).await?.collect().await?;
    let edges = ctx.sql(&format!("SELECT from_tool, to_tool, field, score, evidence FROM cluster_edges WHERE cluster_id = {id} ORDER BY from_tool, to_tool, field")).await?.collect().await?;
    let pretty = |b: &[RecordBatch]| {
        datafusion::arrow::util::pretty::pretty_format_batches(b).map(|t| t.to_string())
    };
    Ok(format!(
        "{}\n\ntools:\n{}\n\nedges:\n{}\n",
        pretty(&head)?,
        pretty(&tools)?,
        pretty(&edges)?
    ))
}
