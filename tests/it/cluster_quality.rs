//! How good the dependency edges of `clusters build` are: precision and recall against the
//! hand-labelled pairs of 21 real MCP servers (catalog evidence alone), the data flows seen in
//! the tau-bench airline trajectories (observed flow), no edge from a shared parameter name,
//! catalog domain labels, and a generated collection of many servers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::common::*;

const MCP: &str = "catalogs/mcp_servers";

fn labels() -> Vec<Value> {
    let text = std::fs::read_to_string(testdata(&format!("{MCP}/edges_labelled.jsonl"))).unwrap();
    json_lines(&text)
}

fn ingest_tools(root: &str, files: &[std::path::PathBuf]) {
    let mut args = vec![
        "ingest".to_string(),
        root.to_string(),
        "--table".into(),
        "tools".into(),
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let o = bin().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert_ne!(s["rejected"], 1, "{s}");
}

/// (from tool, to tool, field, evidence kind, trajectories) of every edge, tool ids split into
/// (service, name).
async fn edges_of(root: &str) -> Vec<(String, String, String, String, String, String)> {
    let corpus = tdscale::store::Corpus::open(root).unwrap();
    let rows = strings(
        &corpus,
        "SELECT from_tool || '\t' || to_tool || '\t' || field || '\t' || evidence_kind || '\t' || coalesce(CAST(trajectories AS VARCHAR), '') || '\t' || path FROM cluster_edges ORDER BY 1",
    )
    .await;
    rows.iter()
        .map(|r| {
            let p: Vec<&str> = r.split('\t').collect();
            let (fs, fname) = p[0].split_once('/').unwrap();
            let (_, tname) = p[1].split_once('/').unwrap();
            (
                fs.to_string(),
                fname.to_string(),
                tname.to_string(),
                p[2].to_string(),
                p[3].to_string(),
                p[4].to_string(),
            )
        })
        .collect()
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Precision and recall of the edges found from the catalogs alone, over the 21 labelled
/// servers. A found ordered pair is right when it is labelled `flows: true`; every other pair of
/// the same server is a negative (the label file's convention).
///
/// Which positives count for recall: all of them in the main figure. `container` positives
/// (a repository, project, base or workspace found or created upstream, fed to every tool of
/// that scope) are dependencies a catalog rule can see (the scope's identifier is a parameter of
/// each tool), so they stay in. `embedded` positives (a table name inside SQL, an id inside a
/// `spotify:track:` URI, a listed file name joined to its directory) are reported apart as well:
/// no rule on names can find a value that is only part of an argument.
#[tokio::test]
async fn catalog_edges_against_the_labelled_mcp_servers() {
    let labels = labels();
    let servers: BTreeSet<String> = labels
        .iter()
        .map(|l| l["server"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(servers.len(), 21);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c").to_str().unwrap().to_string();
    let files: Vec<_> = servers
        .iter()
        .map(|s| testdata(&format!("{MCP}/{s}.json")))
        .collect();
    ingest_tools(&root, &files);
    let o = run(&["clusters", "build", &root, "--no-observed-flows", "--json"]);
    let summary = ok_json(&o);
    let edges = edges_of(&root).await;
    assert_eq!(edges.len() as u64, summary["edges"].as_u64().unwrap());

    let key = |l: &Value| {
        (
            l["server"].as_str().unwrap().to_string(),
            l["from"].as_str().unwrap().to_string(),
            l["to"].as_str().unwrap().to_string(),
        )
    };
    let positives: HashMap<(String, String, String), &Value> = labels
        .iter()
        .filter(|l| l["flows"] == true)
        .map(|l| (key(l), l))
        .collect();
    let negatives: HashMap<(String, String, String), &Value> = labels
        .iter()
        .filter(|l| l["flows"] == false)
        .map(|l| (key(l), l))
        .collect();
    assert_eq!(positives.len(), 840);

    let mut found: BTreeMap<(String, String, String), Vec<(String, String)>> = BTreeMap::new();
    for (s, a, b, field, kind, _) in &edges {
        found
            .entry((s.clone(), a.clone(), b.clone()))
            .or_default()
            .push((field.clone(), kind.clone()));
    }
    let tp: Vec<_> = found
        .keys()
        .filter(|k| positives.contains_key(*k))
        .collect();
    let precision = ratio(tp.len(), found.len());
    let of = |pred: &dyn Fn(&Value) -> bool| {
        let all: Vec<_> = positives.iter().filter(|(_, l)| pred(l)).collect();
        let hit = all.iter().filter(|(k, _)| found.contains_key(*k)).count();
        (hit, all.len())
    };
    let (hit_all, n_all) = of(&|_| true);
    let (hit_ne, n_ne) = of(&|l| l["kind"] != "embedded");
    let (hit_entity, n_entity) = of(&|l| l["level"] == "entity" && l["kind"] != "embedded");
    let (hit_container, n_container) = of(&|l| l["level"] == "container");
    let (hit_emb, n_emb) = of(&|l| l["kind"] == "embedded");

    println!("catalog evidence alone, 21 MCP servers, 297 tools, 5,540 ordered pairs:");
    println!(
        "  found {} pairs ({} edges), {} right: precision {:.3}",
        found.len(),
        edges.len(),
        tp.len(),
        precision
    );
    println!(
        "  recall, all 840 positives: {:.3} ({hit_all}/{n_all})",
        ratio(hit_all, n_all)
    );
    println!(
        "  recall, without `embedded`: {:.3} ({hit_ne}/{n_ne})",
        ratio(hit_ne, n_ne)
    );
    println!(
        "  recall, `entity` level without `embedded`: {:.3} ({hit_entity}/{n_entity})",
        ratio(hit_entity, n_entity)
    );
    println!(
        "  recall, `container` level: {:.3} ({hit_container}/{n_container})",
        ratio(hit_container, n_container)
    );
    println!(
        "  recall, `embedded`: {:.3} ({hit_emb}/{n_emb})",
        ratio(hit_emb, n_emb)
    );
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (k, fields) in &found {
        let best = fields
            .iter()
            .map(|(_, kind)| kind.as_str())
            .min_by_key(|k| match *k {
                "output_schema" => 0,
                "entity_id" => 1,
                _ => 2,
            });
        let e = by_kind.entry(best.unwrap()).or_default();
        e.0 += 1;
        e.1 += usize::from(positives.contains_key(k));
    }
    for (kind, (n, right)) in &by_kind {
        println!(
            "  pairs whose best evidence is {kind}: {n}, precision {:.3}",
            ratio(*right, *n)
        );
    }
    println!("  per server (right / found / positives):");
    for s in &servers {
        let f = found.keys().filter(|k| &k.0 == s).count();
        let r = found
            .keys()
            .filter(|k| &k.0 == s && positives.contains_key(*k))
            .count();
        let p = positives.keys().filter(|k| &k.0 == s).count();
        println!("    {s:<14} {r:>4} / {f:>4} / {p:>4}");
    }
    // The tempting mistakes the label file names, and fields it says are wrong.
    let mut named = vec![];
    for (k, fields) in &found {
        if let Some(n) = negatives.get(k) {
            named.push(format!("{k:?} via {:?}: labelled {}", fields, n["kind"]));
        }
        if let Some(p) = positives.get(k) {
            for (f, _) in fields {
                if p["wrong_fields"].get(f).is_some() {
                    named.push(format!("{k:?} via `{f}`: a wrong field of a right pair"));
                }
            }
        }
    }
    println!(
        "  explicit negatives and wrong fields found ({}):",
        named.len()
    );
    for n in &named {
        println!("    {n}");
    }

    assert!(precision >= 0.8, "precision {precision:.3} < 0.8");
    assert!(
        ratio(hit_all, n_all) >= 0.6,
        "recall {:.3} < 0.6",
        ratio(hit_all, n_all)
    );
    assert!(named.len() <= 5, "{named:#?}");
    // No edge goes through the parameter a labelled `shared_param` pair merely shares.
    for (k, n) in &negatives {
        if n["kind"] == "shared_param" {
            let shared: Vec<&str> = std::iter::once(n["field"].as_str().unwrap())
                .chain(
                    n["more_fields"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys().map(String::as_str)),
                )
                .collect();
            if let Some(fields) = found.get(k) {
                assert!(
                    fields.iter().all(|(f, _)| !shared.contains(&f.as_str())),
                    "{k:?} only share {shared:?}: {fields:?}"
                );
            }
        }
    }
    // Each kind of catalog evidence is at work, and every edge says what supports it.
    for kind in ["output_schema", "entity_id", "description"] {
        assert!(by_kind.contains_key(kind), "no edge from {kind}");
    }
    let corpus = tdscale::store::Corpus::open(&root).unwrap();
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM cluster_edges WHERE evidence = '' OR evidence_kind IS NULL OR score <= 0 OR score > 1").await,
        0
    );
    // The fields are the labelled ones: `get_pull_request_files` feeds a review's comments by
    // their path, an Airtable base id reaches `list_records`.
    for (s, a, b, f) in [
        ("github", "create_issue", "get_issue", "issue_number"),
        (
            "github",
            "list_pull_requests",
            "merge_pull_request",
            "pull_number",
        ),
        ("airtable", "list_bases", "list_records", "baseId"),
        ("stripe", "create_customer", "create_invoice", "customer"),
        ("todoist", "find-projects", "add-tasks", "tasks"),
        (
            "sentry",
            "find_organizations",
            "find_projects",
            "organizationSlug",
        ),
        (
            "notion",
            "API-post-search",
            "API-retrieve-a-page",
            "page_id",
        ),
        (
            "jira",
            "jira_get_sprints_from_board",
            "jira_add_issues_to_sprint",
            "sprint_id",
        ),
    ] {
        let fields = found.get(&(s.into(), a.into(), b.into()));
        assert!(
            fields.is_some_and(|fs| fs.iter().any(|(x, _)| x == f)),
            "{s}: {a} -> {b} via {f}: {fields:?}"
        );
    }
}

/// Tools that share parameters and return nothing the other takes are never linked: not by
/// `limit`, `query`, `cursor`, `owner`, nor by an identifier both take but neither returns.
#[tokio::test]
async fn no_edge_from_a_shared_parameter_name() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("shop.json");
    let p = |props: &str| format!(r#"{{"type": "object", "properties": {{{props}}}}}"#);
    let shared = r#""limit": {"type": "integer"}, "query": {"type": "string"}, "cursor": {"type": "string"}, "owner": {"type": "string", "description": "Account that owns the store"}, "store_id": {"type": "string", "description": "Store ID"}, "order_id": {"type": "string", "description": "Order ID"}"#;
    let tools = [
        ("refund_order", "Refunds an order.", p(shared)),
        ("ship_order", "Ships an order.", p(shared)),
        ("archive_order", "Archives an order; answers OK.", p(shared)),
        (
            "price_check",
            "Checks a price for a query.",
            p(r#""query": {"type": "string"}, "limit": {"type": "integer"}"#),
        ),
        // creates notes, which nothing takes
        (
            "create_note",
            "Creates a note on an order. Returns the note with its id.",
            p(shared),
        ),
    ];
    let list: Vec<String> = tools
        .iter()
        .map(|(n, d, s)| format!(r#"{{"name": "{n}", "description": "{d}", "inputSchema": {s}}}"#))
        .collect();
    std::fs::write(
        &cat,
        format!(r#"{{"server": "shop", "tools": [{}]}}"#, list.join(",")),
    )
    .unwrap();
    let root = dir.path().join("c").to_str().unwrap().to_string();
    ingest_tools(&root, std::slice::from_ref(&cat));
    let s = ok_json(&run(&["clusters", "build", &root, "--json"]));
    assert_eq!(s["edges"], 0, "{s}");
    // The same catalog with one tool that does return orders: edges, all from it.
    let with_list = format!(
        r#"{{"server": "shop", "tools": [{}, {{"name": "list_orders", "description": "Lists the store's orders with their ids.", "inputSchema": {}}}]}}"#,
        list.join(","),
        p(
            r#""store_id": {"type": "string", "description": "Store ID"}, "limit": {"type": "integer"}"#
        )
    );
    let dir2 = tempfile::tempdir().unwrap();
    let cat2 = dir2.path().join("shop.json");
    std::fs::write(&cat2, with_list).unwrap();
    let root2 = dir2.path().join("c").to_str().unwrap().to_string();
    ingest_tools(&root2, &[cat2]);
    ok_json(&run(&["clusters", "build", &root2, "--json"]));
    let edges = edges_of(&root2).await;
    let got: Vec<String> = edges
        .iter()
        .map(|e| format!("{} -> {} via {}", e.1, e.2, e.3))
        .collect();
    assert_eq!(
        got,
        [
            "list_orders -> archive_order via order_id",
            // a note is made on an order: the order it takes is one list_orders found
            "list_orders -> create_note via order_id",
            "list_orders -> refund_order via order_id",
            "list_orders -> ship_order via order_id",
        ]
    );
}

/// The airline flows the tau-bench trajectories show (testdata/catalogs/mcp_servers/README.md,
/// "Observed flows in tau-bench airline"), as ordered tool pairs.
const AIRLINE_FLOWS: &[(&str, &str)] = &[
    ("get_user_details", "get_reservation_details"),
    ("get_user_details", "update_reservation_flights"),
    ("get_user_details", "cancel_reservation"),
    ("get_user_details", "update_reservation_baggages"),
    ("get_user_details", "book_reservation"),
    ("get_reservation_details", "update_reservation_flights"),
    ("get_reservation_details", "update_reservation_baggages"),
    ("get_reservation_details", "search_direct_flight"),
    ("get_reservation_details", "search_onestop_flight"),
    ("search_direct_flight", "update_reservation_flights"),
    ("search_direct_flight", "book_reservation"),
    ("search_onestop_flight", "update_reservation_flights"),
    ("search_onestop_flight", "book_reservation"),
    ("calculate", "book_reservation"),
];

/// Flows the README judged echoes, values the user typed, or closed vocabulary: the rule alone
/// matches them, and none may become an observed-flow edge.
const AIRLINE_NOT_FLOWS: &[(&str, &str, &str)] = &[
    (
        "get_reservation_details",
        "update_reservation_flights",
        "reservation_id",
    ),
    (
        "get_reservation_details",
        "cancel_reservation",
        "reservation_id",
    ),
    (
        "get_reservation_details",
        "update_reservation_flights",
        "cabin",
    ),
    (
        "search_direct_flight",
        "update_reservation_flights",
        "cabin",
    ),
    ("search_direct_flight", "book_reservation", "cabin"),
    ("search_direct_flight", "book_reservation", "origin"),
    ("search_direct_flight", "book_reservation", "destination"),
    ("get_reservation_details", "book_reservation", "user_id"),
    ("get_reservation_details", "book_reservation", "flight_type"),
    ("get_reservation_details", "send_certificate", "user_id"),
    (
        "update_reservation_flights",
        "update_reservation_baggages",
        "reservation_id",
    ),
    (
        "update_reservation_flights",
        "update_reservation_baggages",
        "payment_id",
    ),
    ("get_user_details", "book_reservation", "total_baggages"),
    ("calculate", "book_reservation", "total_baggages"),
];

/// With the tau-bench airline trajectories in the corpus, the flows visible in them are edges
/// whose evidence is the observed flow, with the number of trajectories an independent Python
/// reading of the same file counts (`observed_flows.py`); echoes, typed values and closed
/// vocabulary are not. The catalog alone finds few of them.
#[tokio::test]
async fn observed_flows_of_the_tau_bench_airline_trajectories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c").to_str().unwrap().to_string();
    let o = run(&[
        "ingest",
        &root,
        shared("tau-bench/gpt-4o-airline.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    ingest_tools(&root, &[testdata("catalogs/tau_bench/airline.json")]);

    let pairs = |edges: &[(String, String, String, String, String, String)], kind: Option<&str>| {
        edges
            .iter()
            .filter(|e| kind.is_none_or(|k| e.4 == k))
            .map(|e| (e.1.clone(), e.2.clone()))
            .collect::<BTreeSet<_>>()
    };
    let expected: BTreeSet<(String, String)> = AIRLINE_FLOWS
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();

    let s = ok_json(&run(&[
        "clusters",
        "build",
        &root,
        "--json",
        "--no-observed-flows",
    ]));
    assert_eq!(s["trajectories_read"], 0);
    let catalog_only = pairs(&edges_of(&root).await, None);
    let catalog_hits = expected.intersection(&catalog_only).count();

    let s = ok_json(&run(&["clusters", "build", &root, "--json"]));
    // the trajectories with two calls or more: a flow needs an earlier result
    let corpus = tdscale::store::Corpus::open(&root).unwrap();
    let with_two = scalar_i64(
        &corpus,
        "SELECT count(*) FROM trajectories WHERE num_tool_calls >= 2",
    )
    .await;
    assert_eq!(s["trajectories_read"].as_i64(), Some(with_two), "{s}");
    assert!(with_two > 150, "{with_two}");
    let edges = edges_of(&root).await;
    let observed = pairs(&edges, Some("observed_flow"));
    let all = pairs(&edges, None);
    let hits = expected.intersection(&all).count();
    println!(
        "tau-bench airline, the {} flows seen in its trajectories:",
        expected.len()
    );
    println!(
        "  catalog evidence alone: {catalog_hits} found, {} edges in all",
        catalog_only.len()
    );
    println!(
        "  with observed flow: {hits} found, {} edges in all ({} pairs observed)",
        all.len(),
        observed.len()
    );
    for (a, b) in observed.difference(&expected) {
        let fields: Vec<&str> = edges
            .iter()
            .filter(|e| &e.1 == a && &e.2 == b)
            .map(|e| e.3.as_str())
            .collect();
        println!("  also observed: {a} -> {b} via {fields:?}");
    }
    assert_eq!(
        hits,
        expected.len(),
        "missing: {:?}",
        expected.difference(&all).collect::<Vec<_>>()
    );
    assert!(
        expected.is_subset(&observed),
        "not from observed flow: {:?}",
        expected.difference(&observed).collect::<Vec<_>>()
    );
    assert!(catalog_hits < hits);
    for (a, b, f) in AIRLINE_NOT_FLOWS {
        assert!(
            !edges
                .iter()
                .any(|e| e.1 == *a && e.2 == *b && e.3 == *f && e.4 == "observed_flow"),
            "{a} -> {b} via {f} is an echo, typed or closed vocabulary"
        );
    }
    // Counts: where the Python reading saw neither a typed value nor an echo, both count the
    // same trajectories (enumerated parameters are closed vocabulary here, left out).
    let flows: Value = serde_json::from_str(
        &std::fs::read_to_string(testdata(&format!("{MCP}/tau_bench_airline_flows.json"))).unwrap(),
    )
    .unwrap();
    let closed = ["cabin", "flight_type", "insurance"];
    // numbers shorter than 3 characters (bag counts) are left out of observed flows
    let small_numbers = ["total_baggages", "nonfree_baggages"];
    let mut compared = 0;
    for f in flows["flows"].as_array().unwrap() {
        let (a, b, field) = (
            f["from"].as_str().unwrap(),
            f["to"].as_str().unwrap(),
            f["field"].as_str().unwrap(),
        );
        let n = f["trajectories"].as_u64().unwrap();
        if a == b
            || n < 2
            || closed.contains(&field)
            || small_numbers.contains(&field)
            || f["trajectories_where_value_was_also_typed_by_user"] != 0
            || f["trajectories_where_a_only_echoed_its_own_argument"] != 0
        {
            continue;
        }
        let ours = edges.iter().find(|e| e.1 == a && e.2 == b && e.3 == field);
        assert_eq!(
            ours.map(|e| e.5.as_str()),
            Some(n.to_string().as_str()),
            "{a} -> {b} via {field}: python counts {n}"
        );
        compared += 1;
    }
    assert!(compared >= 8, "{compared}");
    // `clusters show` prints each edge with its evidence.
    let cluster = strings(
        &corpus,
        "SELECT cluster_id FROM cluster_edges WHERE from_tool = 'airline/get_user_details' AND to_tool = 'airline/get_reservation_details'",
    )
    .await;
    let o = run(&["clusters", "show", &root, &cluster[0]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("observed_flow")
            && text.contains("seen in")
            && text.contains("reservation_id"),
        "{text}"
    );
}

/// The `domain` a catalog gives its tools names their cluster; the taxonomy only guesses for
/// clusters without one, and an override file still wins.
#[tokio::test]
async fn catalog_domain_labels_name_the_clusters() {
    #[derive(serde::Serialize)]
    struct ToolRow {
        tool_id: String,
        name: String,
        description: Option<String>,
        parameters: Option<String>,
        output_schema: Option<String>,
        service: String,
        source: String,
        format: String,
        metadata: String,
        domain: Option<String>,
        provenance: Option<String>,
        learned_from_calls: Option<i64>,
    }
    let tool = |service: &str, name: &str, params: &str, domain: Option<&str>| ToolRow {
        tool_id: format!("{service}/{name}"),
        name: name.into(),
        description: Some(format!("{name} of {service}")),
        parameters: Some(params.into()),
        output_schema: None,
        service: service.into(),
        source: "test".into(),
        format: "catalog".into(),
        metadata: "{}".into(),
        domain: domain.map(str::to_string),
        provenance: Some("catalog".into()),
        learned_from_calls: None,
    };
    let id = |n: &str| {
        format!(r#"{{"type": "object", "properties": {{"{n}_id": {{"type": "string"}}}}}}"#)
    };
    let rows = vec![
        // labelled by the catalog, although the words say "flight" (travel in the taxonomy)
        tool(
            "skyline",
            "create_flight_log",
            r#"{"type": "object"}"#,
            Some("Weather"),
        ),
        tool(
            "skyline",
            "get_flight_log",
            &id("flight_log"),
            Some("Weather"),
        ),
        tool("skyline", "delete_flight_log", &id("flight_log"), None),
        // no label: the taxonomy decides
        tool("ledger", "list_invoices", r#"{"type": "object"}"#, None),
        tool("ledger", "pay_invoice", &id("invoice"), None),
        // a blank label is no label
        tool("notes", "create_note", r#"{"type": "object"}"#, Some("  ")),
    ];
    let (_d, corpus) = temp_corpus();
    tdscale::store::rows::append(&corpus, &tdscale::store::tables::TOOLS, &rows)
        .await
        .unwrap();
    let root = corpus.display().to_string();
    ok_json(&run(&["clusters", "build", &root, "--json"]));
    let got = strings(&corpus, "SELECT cluster_id || '=' || domain || ' (' || domain_source || ')' FROM clusters ORDER BY 1").await;
    assert_eq!(
        got,
        [
            "ledger=finance (taxonomy)",
            "notes=general (taxonomy)",
            "skyline=Weather (catalog)"
        ]
    );
    assert_eq!(
        strings(
            &corpus,
            "SELECT from_tool || ' -> ' || to_tool FROM cluster_edges ORDER BY 1"
        )
        .await,
        [
            "ledger/list_invoices -> ledger/pay_invoice",
            "skyline/create_flight_log -> skyline/delete_flight_log",
            "skyline/create_flight_log -> skyline/get_flight_log",
        ]
    );
    let over = _d.path().join("domains.json");
    std::fs::write(&over, r#"{"skyline": "aviation"}"#).unwrap();
    ok_json(&run(&[
        "clusters",
        "build",
        &root,
        "--json",
        "--domains",
        over.to_str().unwrap(),
    ]));
    assert_eq!(
        strings(&corpus, "SELECT domain || ' (' || domain_source || ')' FROM clusters WHERE cluster_id = 'skyline'").await,
        ["aviation (override)"]
    );
}

/// A generated collection of many servers (`benches/make_mcp_collection.py`, the same generator
/// the full-size timing in benches/RESULTS.md uses) builds with every planted dependency found,
/// nothing linked across servers, and every tool in exactly one cluster.
#[tokio::test]
async fn a_generated_collection_of_many_servers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("servers");
    let o = std::process::Command::new("python3")
        .arg(repo().join("benches/make_mcp_collection.py"))
        .args(["--servers", "120", "--seed", "11", "--out"])
        .arg(&out)
        .output()
        .expect("python3 is needed to generate the collection");
    assert!(o.status.success(), "{}", stderr(&o));
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 120);
    let root = dir.path().join("c").to_str().unwrap().to_string();
    ingest_tools(&root, &files);
    let s = ok_json(&run(&[
        "clusters",
        "build",
        &root,
        "--json",
        "--max-cluster-size",
        "8",
    ]));
    let corpus = tdscale::store::Corpus::open(&root).unwrap();
    let tools = scalar_i64(&corpus, "SELECT count(*) FROM tools").await;
    assert_eq!(s["tools"].as_i64().unwrap(), tools);
    assert_eq!(s["services"], 120);
    assert!(tools > 120 * 6, "{tools}");
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(*) FROM (SELECT unnest(tool_ids) AS t FROM clusters)"
        )
        .await,
        tools
    );
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(DISTINCT t) FROM (SELECT unnest(tool_ids) AS t FROM clusters)"
        )
        .await,
        tools
    );
    assert!(scalar_i64(&corpus, "SELECT max(size) FROM clusters").await <= 8);
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM cluster_edges WHERE split_part(from_tool, '/', 1) <> split_part(to_tool, '/', 1)").await,
        0
    );
    // The planted dependencies, and the planted distractors (shared `limit`, `query`, `cursor`,
    // a scope id several tools take), against what was found.
    let truth = json_lines(&std::fs::read_to_string(out.join("truth.jsonl")).unwrap());
    let planted: BTreeSet<String> = truth
        .iter()
        .map(|t| {
            format!(
                "{}/{} -> {}/{}",
                t["server"].as_str().unwrap(),
                t["from"].as_str().unwrap(),
                t["server"].as_str().unwrap(),
                t["to"].as_str().unwrap()
            )
        })
        .collect();
    let found: BTreeSet<String> = strings(
        &corpus,
        "SELECT DISTINCT from_tool || ' -> ' || to_tool FROM cluster_edges",
    )
    .await
    .into_iter()
    .collect();
    let missing: Vec<_> = planted.difference(&found).take(10).collect();
    let extra: Vec<_> = found.difference(&planted).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} planted edges missing, e.g. {missing:?}",
        planted.difference(&found).count()
    );
    assert!(
        extra.is_empty(),
        "{} edges not planted, e.g. {extra:?}",
        found.difference(&planted).count()
    );
}

/// Observed flows on hand-made trajectories: a value a tool returned and a later call took
/// counts; one the user typed, one a tool only echoed, an enumerated parameter and a small
/// number do not; unreadable arguments and unanswered results are skipped; flows between tools
/// the catalog lacks are reported.
#[tokio::test]
async fn observed_flows_leave_out_echoes_typed_values_and_closed_vocabulary() {
    use serde_json::json;
    let call = |id: &str, name: &str, args: &str| json!({"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": args}}]});
    let result = |id: &str, content: Value| json!({"role": "tool", "tool_call_id": id, "content": content.to_string()});
    let user = |text: &str| json!({"role": "user", "content": text});
    let mut trajs: Vec<Value> = vec![];
    for (k, customer) in ["cus_9001", "cus_9002", "cus_9003"].iter().enumerate() {
        let ticket = format!("TCK-500{k}");
        trajs.push(json!({"id": format!("open-{k}"), "messages": [
            user("my email is ann@example.com, please open a billing ticket"),
            call("c1", "whois", r#"{"email": "ann@example.com"}"#),
            result("c1", json!({"customer": customer, "tier": "gold", "topic": "billing", "bags": 5})),
            call("c2", "open_ticket", &json!({"customer": customer, "topic": "billing", "priority": 5}).to_string()),
            result("c2", json!({"ticket": ticket, "customer": customer})),
            call("c3", "close_ticket", &json!({"ticket": ticket}).to_string()),
            result("c3", json!({"closed": true})),
        ]}));
    }
    for (k, ticket) in ["TCK-4411", "TCK-4412"].iter().enumerate() {
        // whois lists the ticket; show_ticket only echoes it
        trajs.push(json!({"id": format!("echo-{k}"), "messages": [
            user("close my open ticket"),
            call("c1", "whois", r#"{"email": "bob@example.com"}"#),
            result("c1", json!({"customer": "cus_1", "open_tickets": [ticket]})),
            call("c2", "show_ticket", &json!({"ticket": ticket}).to_string()),
            result("c2", json!({"ticket": ticket, "state": "open"})),
            call("c3", "close_ticket", &json!({"ticket": ticket}).to_string()),
            result("c3", json!({"closed": true})),
        ]}));
    }
    for k in 0..3 {
        // the user typed the ticket: show_ticket -> close_ticket is no dependency
        trajs.push(json!({"id": format!("typed-{k}"), "messages": [
            user(&format!("please close TCK-900{k}")),
            call("c1", "show_ticket", &format!(r#"{{"ticket": "TCK-900{k}"}}"#)),
            result("c1", json!({"ticket": format!("TCK-900{k}"), "customer": "cus_3"})),
            call("c2", "close_ticket", &format!(r#"{{"ticket": "TCK-900{k}"}}"#)),
            result("c2", json!({"closed": true})),
        ]}));
    }
    for k in 0..2 {
        // tools the catalog does not have; an unreadable call; a result nobody asked for
        trajs.push(json!({"id": format!("legacy-{k}"), "messages": [
            user("do the legacy thing"),
            call("c1", "legacy_lookup", "{}"),
            result("c1", json!({"ref": format!("LEG-77{k}")})),
            call("c2", "legacy_close", &format!(r#"{{"ref": "LEG-77{k}"}}"#)),
            result("c2", json!("ok")),
            call("c3", "whois", "{not json"),
            result("c3", json!({"customer": "cus_4"})),
            json!({"role": "tool", "tool_call_id": "nobody", "content": "stray cus_4 TCK-5000"}),
            call("c4", "close_ticket", r#"{"ticket": "TCK-5000"}"#),
            result("c4", json!({"closed": false})),
        ]}));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("support.jsonl");
    std::fs::write(
        &file,
        trajs
            .iter()
            .map(|t| t.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let root = dir.path().join("c").to_str().unwrap().to_string();
    let s = ok_json(&run(&["ingest", &root, file.to_str().unwrap(), "--json"]));
    assert_eq!(s["ingested"], trajs.len() as u64, "{s}");
    let cat = dir.path().join("support_tools.json");
    std::fs::write(
        &cat,
        json!({"server": "support", "tools": [
            {"name": "whois", "description": "Tells who owns an email address.", "inputSchema": {"type": "object", "properties": {"email": {"type": "string"}}}},
            {"name": "open_ticket", "description": "Opens a support ticket for a customer.", "inputSchema": {"type": "object", "properties": {"customer": {"type": "string", "description": "Customer reference"}, "topic": {"type": "string", "enum": ["billing", "delivery"]}, "priority": {"type": "integer"}}}},
            {"name": "show_ticket", "description": "Shows a ticket.", "inputSchema": {"type": "object", "properties": {"ticket": {"type": "string"}}}},
            {"name": "close_ticket", "description": "Closes a ticket.", "inputSchema": {"type": "object", "properties": {"ticket": {"type": "string"}}}}
        ]})
        .to_string(),
    )
    .unwrap();
    ingest_tools(&root, &[cat]);

    let s = ok_json(&run(&[
        "clusters",
        "build",
        &root,
        "--json",
        "--no-observed-flows",
    ]));
    assert_eq!(s["edges"], 0, "the catalog alone links nothing: {s}");
    let s = ok_json(&run(&["clusters", "build", &root, "--json"]));
    let problems = s["problems"].to_string();
    assert!(
        problems.contains("2 tools that are not in the tools table (legacy_close, legacy_lookup)"),
        "{problems}"
    );
    let got: Vec<String> = edges_of(&root)
        .await
        .iter()
        .map(|e| format!("{} -> {} via {} ({}, {})", e.1, e.2, e.3, e.4, e.5))
        .collect();
    assert_eq!(
        got,
        [
            "open_ticket -> close_ticket via ticket (observed_flow, 3)",
            "whois -> close_ticket via ticket (observed_flow, 2)",
            "whois -> open_ticket via customer (observed_flow, 3)",
            // whois listed the ticket that show_ticket was then asked about
            "whois -> show_ticket via ticket (observed_flow, 2)",
        ]
    );
    // a higher bar leaves the flows seen twice out
    ok_json(&run(&[
        "clusters",
        "build",
        &root,
        "--json",
        "--min-flow-trajectories",
        "3",
    ]));
    assert_eq!(edges_of(&root).await.len(), 2);
}
