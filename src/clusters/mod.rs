//! Business clusters: tools of one real service that feed each other, so that a synthesised
//! trajectory can chain them the way a real workflow does.
//!
//! `tdscale clusters build` reads the `tools` table (and the trajectories, when the corpus has
//! some) and writes two tables:
//! - `cluster_edges`: from tool, to tool, the input field that links them, the kind of evidence
//!   (`observed_flow`, `output_schema`, `entity_id`, `description`), what supports it and a
//!   score (see [`edges`] for the catalog evidence and [`flows`] for the observed one);
//! - `clusters`: tools grouped by service (the MCP server or catalog, and the `Name.` prefix of
//!   namespaced tools), split along the strongest edges when larger than the maximum size, each
//!   with a domain label (the catalogs' own labels first, a keyword taxonomy otherwise,
//!   overridable) and, for the clusters chosen by a greedy maximum-coverage pass
//!   ([`selection`]) that also values dependency edges, its rank and marginal gain.

pub mod edges;
pub mod fields;
pub mod flows;
pub mod lexicon;
pub mod selection;
pub mod taxonomy;

use std::collections::{BTreeMap, HashMap, HashSet};

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::query::session::CorpusSession;
use crate::store::{rows, tables};
use edges::{Edge, EvidenceKind, ToolShape, find_edges};

/// A row of `cluster_edges`.
#[derive(Debug, Clone, Serialize)]
struct EdgeRow {
    cluster_id: String,
    to_cluster_id: String,
    from_tool: String,
    to_tool: String,
    field: String,
    path: String,
    evidence_kind: String,
    entity: Option<String>,
    evidence: String,
    score: f64,
    trajectories: Option<i64>,
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
    /// Domain labels by service or cluster id, overriding the catalogs and the taxonomy.
    pub domain_overrides: HashMap<String, String>,
    /// Read the trajectories for observed flows.
    pub observed_flows: bool,
    /// Trajectories an observed flow needs before it makes an edge.
    pub min_flow_trajectories: u64,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            max_cluster_size: 12,
            select: 500,
            domain_overrides: HashMap::new(),
            observed_flows: true,
            min_flow_trajectories: 2,
        }
    }
}

/// One cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    pub service: String,
    pub domain: String,
    /// Where the domain comes from: `override`, `catalog` or `taxonomy`.
    pub domain_source: String,
    pub tool_ids: Vec<String>,
    pub tool_names: Vec<String>,
    pub internal_edges: usize,
    /// The sum, over the ordered tool pairs linked inside the cluster, of their best edge score.
    pub edge_score: f64,
    pub selected: bool,
    pub rank: Option<usize>,
    /// New tools and capabilities the cluster covered when it was selected.
    pub coverage_gain: Option<usize>,
    /// What the selection valued it at: `coverage_gain` plus `edge_score`.
    pub selection_gain: Option<f64>,
}

/// What a build did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BuildSummary {
    pub tools: usize,
    pub services: usize,
    pub clusters: usize,
    pub edges: usize,
    /// Edges by their strongest evidence.
    pub edges_by_evidence: BTreeMap<String, usize>,
    /// Original trajectories read for observed flows.
    pub trajectories_read: u64,
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

    /// The summary as text.
    pub fn to_text(&self) -> String {
        let by: Vec<String> = self
            .edges_by_evidence
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let flows = if self.trajectories_read > 0 {
            format!(
                " (observed flows from {} trajectories)",
                self.trajectories_read
            )
        } else {
            String::new()
        };
        format!(
            "{} tools in {} services → {} clusters, {} dependency edges{}{flows}; {} clusters selected covering {} tools and capabilities\n",
            self.tools,
            self.services,
            self.clusters,
            self.edges,
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            },
            self.selected,
            self.covered_items
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
    domain: Option<String>,
}

async fn read_tools(session: &CorpusSession) -> Result<Vec<Row>> {
    let batches = session
        .collect("SELECT tool_id, name, service, description, parameters, output_schema, domain FROM tools ORDER BY tool_id")
        .await?;
    let mut rows = vec![];
    for b in &batches {
        let s = |i: usize| datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8);
        let cols: Vec<ArrayRef> = (0..7).map(s).collect::<std::result::Result<_, _>>()?;
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
                domain: get(6, r).filter(|d| !d.trim().is_empty()),
            });
        }
    }
    Ok(rows)
}

/// Splits the tools of one service into clusters of at most `max`: the strongest edges join
/// tools first, and a join that would make a cluster larger than `max` is skipped, so a large
/// component is cut along its weakest links. Tools without any edge are kept together.
fn split(n: usize, edges: &[Edge], max: usize) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    let mut size = vec![1usize; n];
    fn root(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut order: Vec<&Edge> = edges.iter().filter(|e| e.from != e.to).collect();
    order.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.from.min(a.to).cmp(&b.from.min(b.to)))
            .then(a.from.max(a.to).cmp(&b.from.max(b.to)))
    });
    for e in order {
        let (ra, rb) = (root(&mut parent, e.from), root(&mut parent, e.to));
        if ra != rb && size[ra] + size[rb] <= max {
            let (big, small) = if size[ra] >= size[rb] {
                (ra, rb)
            } else {
                (rb, ra)
            };
            parent[small] = big;
            size[big] += size[small];
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut linked: Vec<Vec<usize>> = vec![];
    let mut singles: Vec<usize> = vec![];
    for g in groups.into_values() {
        if g.len() == 1 {
            singles.push(g[0]);
        } else {
            linked.push(g);
        }
    }
    linked.sort_by_key(|g| g[0]);
    // Tools that feed nothing still belong to their service: keep them together.
    linked.extend(singles.chunks(max).map(<[usize]>::to_vec));
    linked
}

/// The catalog label most of a cluster's tools carry (ties: the first in alphabetical order).
fn catalog_domain<'a>(labels: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in labels {
        *counts.entry(l).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(l, _)| l.to_string())
}

/// One service: its tools, their rows in the `tools` table, and their edges.
struct Service {
    key: String,
    tools: Vec<ToolShape>,
    rows: Vec<usize>,
    edges: Vec<Edge>,
}

/// Reads a tool's schemas; a schema that is not a JSON object counts as having no fields.
fn schema_fields(
    text: &Option<String>,
    tool_id: &str,
    what: &str,
    problems: &mut Vec<String>,
) -> Vec<fields::Field> {
    match text.as_deref().map(serde_json::from_str::<Value>) {
        None => vec![],
        Some(Ok(v)) if v.is_object() => {
            if v.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "object")
            {
                problems.push(format!(
                    "{tool_id}: {what} is not an object schema; treated as having no fields"
                ));
            }
            fields::fields(&v)
        }
        Some(_) => {
            problems.push(format!(
                "{tool_id}: {what} is not a JSON Schema object; treated as having no fields"
            ));
            vec![]
        }
    }
}

/// Adds the observed flows to the services' edges: a flow between two tools of a service is an
/// edge of its own, or makes the catalog edge on the same parameter an observed one.
fn add_observed(
    services: &mut [Service],
    flows: &flows::ObservedFlows,
    min: u64,
    problems: &mut Vec<String>,
) -> usize {
    let mut by_name: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (s, svc) in services.iter().enumerate() {
        for (i, t) in svc.tools.iter().enumerate() {
            by_name.entry(t.name.as_str()).or_default().push((s, i));
        }
    }
    let mut added: Vec<(usize, Edge)> = vec![];
    let mut upgrades: Vec<(usize, usize, u64, String)> = vec![];
    let mut unknown: HashSet<&str> = HashSet::new();
    let mut cross = 0usize;
    let mut keys: Vec<(&flows::FlowKey, &flows::FlowCount)> = flows.flows.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for ((a, b, field), count) in keys {
        if count.trajectories < min {
            continue;
        }
        let (Some(froms), Some(tos)) = (by_name.get(a.as_str()), by_name.get(b.as_str())) else {
            unknown.extend(
                [a.as_str(), b.as_str()]
                    .into_iter()
                    .filter(|n| !by_name.contains_key(n)),
            );
            continue;
        };
        let mut placed = false;
        for &(sa, ia) in froms {
            for &(sb, ib) in tos.iter().filter(|(sb, _)| *sb == sa) {
                placed = true;
                let evidence = format!(
                    "seen in {} trajectories: a value {a} returned was passed as `{field}` of {b} (matched in {}, counting the values the user typed or {a} echoed)",
                    count.trajectories, count.matched
                );
                let svc = &services[sa];
                match svc
                    .edges
                    .iter()
                    .position(|e| e.from == ia && e.to == ib && e.field == *field)
                {
                    Some(k) => upgrades.push((sa, k, count.trajectories, evidence)),
                    None => added.push((
                        sb,
                        Edge {
                            from: ia,
                            to: ib,
                            field: field.clone(),
                            path: field.clone(),
                            kind: EvidenceKind::ObservedFlow,
                            entity: String::new(),
                            evidence,
                            score: flows::flow_score(count.trajectories, min),
                            trajectories: Some(count.trajectories),
                        },
                    )),
                }
            }
        }
        if !placed {
            cross += 1;
        }
    }
    if !unknown.is_empty() {
        let mut names: Vec<&str> = unknown.into_iter().collect();
        names.sort();
        problems.push(format!(
            "observed flows name {} tools that are not in the tools table ({}{}); ingest their catalogs to link them",
            names.len(),
            names.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            if names.len() > 5 { ", …" } else { "" }
        ));
    }
    if cross > 0 {
        problems.push(format!(
            "{cross} observed flows link tools of different services; clusters keep services apart, so they make no edge"
        ));
    }
    let mut count = 0;
    for (s, k, n, evidence) in upgrades {
        let e = &mut services[s].edges[k];
        e.evidence = format!("{evidence}; and {}", e.evidence);
        e.kind = EvidenceKind::ObservedFlow;
        e.score = e.score.max(flows::flow_score(n, min));
        e.trajectories = Some(n);
        count += 1;
    }
    for (s, e) in added {
        services[s].edges.push(e);
        count += 1;
    }
    count
}

/// Builds the clusters from the `tools` table (and the trajectories' observed flows) and writes
/// `clusters` and `cluster_edges`, holding the corpus's writer lock.
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
    let started = std::time::Instant::now();
    let rows = read_tools(session).await?;
    tracing::debug!("read {} tools in {:?}", rows.len(), started.elapsed());
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
    // A name repeated in every record of a dataset names thousands of services: the first
    // few say which.
    const NAMED_SERVICES: usize = 8;
    for (name, services) in &by_name {
        if services.len() > 1 {
            let mut named = services[..services.len().min(NAMED_SERVICES)].join(", ");
            if services.len() > NAMED_SERVICES {
                named.push_str(&format!(", … {} more", services.len() - NAMED_SERVICES));
            }
            summary.problems.push(format!(
                "tool name `{name}` appears in {} services ({named}); they stay in separate clusters",
                services.len(),
            ));
        }
    }
    let mut grouped: BTreeMap<String, Service> = BTreeMap::new();
    // Parameters with an enumeration, by tool name: closed vocabulary for observed flows.
    let mut closed: HashMap<String, HashSet<String>> = HashMap::new();
    for (k, r) in rows.iter().enumerate() {
        let inputs = schema_fields(
            &r.parameters,
            &r.tool_id,
            "parameters",
            &mut summary.problems,
        );
        let outputs = schema_fields(
            &r.output,
            &r.tool_id,
            "output schema",
            &mut summary.problems,
        );
        for f in inputs.iter().filter(|f| f.enumerated && f.path == f.top) {
            closed
                .entry(r.name.clone())
                .or_default()
                .insert(f.top.clone());
        }
        let key = service_key(&r.service, &r.name);
        let svc = grouped.entry(key.clone()).or_insert_with(|| Service {
            key,
            tools: vec![],
            rows: vec![],
            edges: vec![],
        });
        svc.tools.push(ToolShape {
            tool_id: r.tool_id.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            inputs,
            outputs,
        });
        svc.rows.push(k);
    }
    let mut services: Vec<Service> = grouped.into_values().collect();
    summary.services = services.len();
    tracing::debug!("parsed the schemas at {:?}", started.elapsed());
    services
        .par_iter_mut()
        .for_each(|s| s.edges = find_edges(&s.tools));
    tracing::debug!("catalog edges at {:?}", started.elapsed());
    if opts.observed_flows {
        let observed = flows::observe(session, &closed).await?;
        summary.trajectories_read = observed.trajectories;
        add_observed(
            &mut services,
            &observed,
            opts.min_flow_trajectories.max(1),
            &mut summary.problems,
        );
        tracing::debug!("observed flows at {:?}", started.elapsed());
    }
    let mut clusters: Vec<Cluster> = vec![];
    let mut edge_rows: Vec<EdgeRow> = vec![];
    for svc in &services {
        let (tools, es) = (&svc.tools, &svc.edges);
        let groups = split(tools.len(), es, opts.max_cluster_size);
        let ids: Vec<String> = (0..groups.len())
            .map(|k| {
                if groups.len() == 1 {
                    svc.key.clone()
                } else {
                    format!("{}#{k}", svc.key)
                }
            })
            .collect();
        let mut group_of = vec![0usize; tools.len()];
        for (k, g) in groups.iter().enumerate() {
            for &i in g {
                group_of[i] = k;
            }
        }
        // Every edge is kept; one between two clusters of a service names both.
        let mut ordered: Vec<&Edge> = es.iter().collect();
        ordered.sort_by(|a, b| (a.from, a.to, &a.field).cmp(&(b.from, b.to, &b.field)));
        let mut internal = vec![0usize; groups.len()];
        let mut best: Vec<BTreeMap<(usize, usize), f64>> = vec![BTreeMap::new(); groups.len()];
        for e in ordered {
            let (gf, gt) = (group_of[e.from], group_of[e.to]);
            if gf == gt {
                internal[gf] += 1;
                let s = best[gf].entry((e.from, e.to)).or_insert(0.0);
                *s = s.max(e.score);
            }
            *summary
                .edges_by_evidence
                .entry(e.kind.as_str().to_string())
                .or_default() += 1;
            edge_rows.push(EdgeRow {
                cluster_id: ids[gf].clone(),
                to_cluster_id: ids[gt].clone(),
                from_tool: tools[e.from].tool_id.clone(),
                to_tool: tools[e.to].tool_id.clone(),
                field: e.field.clone(),
                path: e.path.clone(),
                evidence_kind: e.kind.as_str().to_string(),
                entity: (!e.entity.is_empty()).then(|| e.entity.clone()),
                evidence: e.evidence.clone(),
                score: e.score,
                trajectories: e.trajectories.map(|n| n as i64),
            });
        }
        for (k, g) in groups.iter().enumerate() {
            let cluster_id = ids[k].clone();
            let names: Vec<String> = g.iter().map(|&i| tools[i].name.clone()).collect();
            let text: Vec<&str> = g
                .iter()
                .flat_map(|&i| [tools[i].name.as_str(), tools[i].description.as_str()])
                .collect();
            let labels = g
                .iter()
                .filter_map(|&i| rows[svc.rows[i]].domain.as_deref());
            let (domain, domain_source) = match opts
                .domain_overrides
                .get(&cluster_id)
                .or_else(|| opts.domain_overrides.get(&svc.key))
            {
                Some(d) => (d.clone(), "override"),
                None => match catalog_domain(labels) {
                    Some(d) => (d, "catalog"),
                    None => (taxonomy::domain_of(&svc.key, &text), "taxonomy"),
                },
            };
            clusters.push(Cluster {
                cluster_id,
                service: svc.key.clone(),
                domain,
                domain_source: domain_source.into(),
                tool_ids: g.iter().map(|&i| tools[i].tool_id.clone()).collect(),
                tool_names: names,
                internal_edges: internal[k],
                edge_score: best[k].values().fold(0.0, |a, b| a + b),
                selected: false,
                rank: None,
                coverage_gain: None,
                selection_gain: None,
            });
        }
    }
    // Coverage: each cluster covers its tools and the capabilities they offer; its internal
    // dependency edges add their scores.
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
    let bonus: Vec<f64> = clusters.iter().map(|c| c.edge_score).collect();
    tracing::debug!("clusters at {:?}", started.elapsed());
    let picks = selection::greedy_weighted_coverage(&items, &bonus, opts.select);
    tracing::debug!("selection at {:?}", started.elapsed());
    for (rank, p) in picks.iter().enumerate() {
        let c = &mut clusters[p.cluster];
        c.selected = true;
        c.rank = Some(rank + 1);
        c.coverage_gain = Some(p.gain);
        c.selection_gain = Some(p.value);
    }
    summary.clusters = clusters.len();
    summary.edges = edge_rows.len();
    summary.selected = picks.len();
    summary.covered_items = picks.iter().map(|p| p.gain).sum();
    write_tables(session, &clusters, &edge_rows).await?;
    tracing::debug!("written at {:?}", started.elapsed());
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

/// A cluster's tools and internal edges with their evidence, for `tdscale clusters show`.
pub async fn show(session: &CorpusSession, cluster_id: &str) -> Result<String> {
    let (ctx, corpus) = (session.ctx(), session.corpus());
    let id = crate::query::params::string_literal(cluster_id);
    let head = ctx.sql(&format!("SELECT cluster_id, service, domain, domain_source, size, internal_edges, round(edge_score, 2) AS edge_score, selected, rank, coverage_gain FROM clusters WHERE cluster_id = {id}")).await?.collect().await?;
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
    let edges = ctx.sql(&format!("SELECT from_tool, to_tool, path AS field, evidence_kind, round(score, 2) AS score, trajectories, evidence FROM cluster_edges WHERE cluster_id = {id} AND to_cluster_id = {id} ORDER BY from_tool, to_tool, field")).await?.collect().await?;
    let leaving = ctx.sql(&format!("SELECT from_tool, to_tool, to_cluster_id, path AS field, evidence_kind, round(score, 2) AS score FROM cluster_edges WHERE (cluster_id = {id}) <> (to_cluster_id = {id}) AND (cluster_id = {id} OR to_cluster_id = {id}) ORDER BY from_tool, to_tool, field")).await?.collect().await?;
    let pretty = |b: &[RecordBatch]| {
        datafusion::arrow::util::pretty::pretty_format_batches(b).map(|t| t.to_string())
    };
    let mut out = format!(
        "{}\n\ntools:\n{}\n\nedges:\n{}\n",
        pretty(&head)?,
        pretty(&tools)?,
        pretty(&edges)?
    );
    if leaving.iter().any(|b| b.num_rows() > 0) {
        out.push_str(&format!(
            "\nedges to and from the other clusters of its service:\n{}\n",
            pretty(&leaving)?
        ));
    }
    Ok(out)
}
