//! Business clusters from the real BFCL catalogs, greedy coverage against brute force, and bad
//! catalogs.

use crate::common::*;
use tdscale::clusters::selection::greedy_max_coverage;

fn bfcl_corpus(dir: &std::path::Path) -> String {
    let root = dir.join("c").to_str().unwrap().to_string();
    let mut args = vec![
        "ingest".to_string(),
        root.clone(),
        "--table".into(),
        "tools".into(),
    ];
    for f in std::fs::read_dir(shared("bfcl/multi_turn_func_doc")).unwrap() {
        args.push(f.unwrap().path().to_str().unwrap().to_string());
    }
    args.push(
        shared("bfcl/BFCL_v4_live_multiple.json")
            .to_str()
            .unwrap()
            .to_string(),
    );
    let o = bin().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    root
}

#[tokio::test]
async fn real_dependencies_of_the_multi_turn_apis_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = bfcl_corpus(dir.path());
    let o = run(&["clusters", "build", &root, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(s["edges"].as_u64().unwrap() > 50);
    let corpus = tdscale::store::Corpus::open(&root).unwrap();
    let edges = strings(
        &corpus,
        "SELECT from_tool || ' -> ' || to_tool || ' via ' || field FROM cluster_edges",
    )
    .await;
    for expected in [
        "trading_bot/place_order -> trading_bot/cancel_order via order_id",
        "trading_bot/place_order -> trading_bot/get_order_details via order_id",
        "trading_bot/get_symbol_by_name -> trading_bot/get_stock_info via symbol",
        "travel_booking/book_flight -> travel_booking/cancel_booking via booking_id",
        "travel_booking/book_flight -> travel_booking/purchase_insurance via booking_id",
        "travel_booking/authenticate_travel -> travel_booking/book_flight via access_token",
        "travel_booking/register_credit_card -> travel_booking/book_flight via card_id",
        "travel_booking/purchase_insurance -> travel_booking/retrieve_invoice via insurance_id",
        "ticket_api/create_ticket -> ticket_api/close_ticket via ticket_id",
        "message_api/get_user_id -> message_api/message_login via user_id",
    ] {
        assert!(
            edges.contains(&expected.to_string()),
            "missing edge {expected}"
        );
    }
    // No edge is invented between tools that share nothing.
    assert!(
        !edges
            .iter()
            .any(|e| e.starts_with("trading_bot/get_current_time ->"))
    );
    // Tools of unrelated catalogs never share a cluster, and no cluster is over the size limit.
    let mixed = scalar_i64(&corpus, "SELECT count(*) FROM (SELECT c.cluster_id FROM (SELECT cluster_id, unnest(tool_ids) AS id FROM clusters) c JOIN tools t ON t.tool_id = c.id GROUP BY c.cluster_id HAVING count(DISTINCT t.service) > 1)").await;
    assert_eq!(mixed, 0);
    assert!(scalar_i64(&corpus, "SELECT max(size) FROM clusters").await <= 12);
    assert_eq!(
        scalar_i64(
            &corpus,
            "SELECT count(*) FROM (SELECT unnest(tool_ids) FROM clusters)"
        )
        .await,
        scalar_i64(&corpus, "SELECT count(*) FROM tools").await,
        "every tool is in exactly one cluster"
    );
    let domains = strings(&corpus, "SELECT DISTINCT domain FROM clusters WHERE service IN ('trading_bot', 'travel_booking', 'gorilla_file_system', 'ticket_api') ORDER BY 1").await;
    assert_eq!(domains, ["files", "finance", "support", "travel"]);
    // Selection: ranks 1..n, gains (new tools and capabilities plus the cluster's edge scores)
    // never increase.
    let gains: Vec<f64> = strings(
        &corpus,
        "SELECT CAST(selection_gain AS VARCHAR) FROM clusters WHERE selected ORDER BY rank",
    )
    .await
    .iter()
    .map(|g| g.parse().unwrap())
    .collect();
    assert_eq!(gains.len(), 500);
    assert!(
        gains.windows(2).all(|w| w[0] >= w[1]),
        "greedy gains are non-increasing"
    );
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM clusters WHERE selected AND abs(selection_gain - coverage_gain - edge_score) > 1e-9").await,
        0
    );
    // Show one.
    let o = run(&["clusters", "show", &root, "trading_bot#0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("place_order") && stdout(&o).contains("order_id"));
    let o = run(&["clusters", "show", &root, "nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    // A smaller limit splits further; a rebuild replaces the previous tables.
    let o = run(&[
        "clusters",
        "build",
        &root,
        "--max-cluster-size",
        "4",
        "--select",
        "10",
    ]);
    assert!(o.status.success());
    assert!(scalar_i64(&corpus, "SELECT max(size) FROM clusters").await <= 4);
    assert_eq!(
        scalar_i64(&corpus, "SELECT count(*) FROM clusters WHERE selected").await,
        10
    );
}

/// Every way to choose `k` of the sets: the best coverage.
fn brute_force(sets: &[Vec<u32>], k: usize) -> usize {
    let n = sets.len();
    let mut best = 0;
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize != k {
            continue;
        }
        let mut covered = std::collections::HashSet::new();
        for (i, s) in sets.iter().enumerate() {
            if mask & (1 << i) != 0 {
                covered.extend(s.iter().copied());
            }
        }
        best = best.max(covered.len());
    }
    best
}

#[test]
fn greedy_coverage_against_brute_force() {
    let mut rng = tdscale::rng::Rng::new(42);
    for case in 0..300 {
        let n = 4 + rng.below(7);
        let k = 1 + rng.below(4);
        let sets: Vec<Vec<u32>> = (0..n)
            .map(|_| {
                (0..1 + rng.below(6))
                    .map(|_| rng.below(14) as u32)
                    .collect()
            })
            .collect();
        let greedy: usize = greedy_max_coverage(&sets, k).iter().map(|p| p.gain).sum();
        let opt = brute_force(&sets, k.min(n));
        assert!(
            greedy as f64 >= (1.0 - 1.0 / std::f64::consts::E) * opt as f64,
            "case {case}: greedy {greedy} < (1-1/e)·{opt} for {sets:?}"
        );
        assert!(greedy <= opt);
    }
    // Easy cases: disjoint sets, and one set containing all the others.
    let disjoint: Vec<Vec<u32>> = (0..6)
        .map(|i| (0..=i).map(|j| i * 10 + j).collect())
        .collect();
    for k in 1..=6 {
        let greedy: usize = greedy_max_coverage(&disjoint, k)
            .iter()
            .map(|p| p.gain)
            .sum();
        assert_eq!(greedy, brute_force(&disjoint, k));
    }
    let nested = vec![vec![1, 2], vec![1, 2, 3, 4, 5], vec![3], vec![6, 7]];
    let picks = greedy_max_coverage(&nested, 2);
    assert_eq!(picks.iter().map(|p| p.cluster).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(brute_force(&nested, 2), 7);
    // Nothing left to cover: stops early.
    assert_eq!(greedy_max_coverage(&nested, 4).len(), 2);
}

#[tokio::test]
async fn bad_catalogs_are_reported_and_the_rest_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("shop.json");
    std::fs::write(
        &bad,
        r#"{"tools": [
            {"description": "no name", "inputSchema": {"type": "object"}},
            {"name": "weird_params", "inputSchema": "not a schema"},
            {"name": "string_schema", "description": "takes a string", "inputSchema": {"type": "string"}},
            {"name": "get_order", "description": "returns order_id", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}, "outputSchema": {"type": "object", "properties": {"order_id": {"type": "string"}}}},
            {"name": "cancel_order", "inputSchema": {"type": "object", "properties": {"order_id": {"type": "string"}}}}
        ]}"#,
    )
    .unwrap();
    let other = dir.path().join("other_shop.json");
    // The MCP server is named in the file: its tools are `shop/…`.
    std::fs::write(&other, r#"[{"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]"#).unwrap();
    let root = dir.path().join("c");
    let o = run(&[
        "ingest",
        root.to_str().unwrap(),
        "--table",
        "tools",
        bad.to_str().unwrap(),
        other.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The two unreadable tools are rejected one by one; the rest of the catalog is kept.
    assert_eq!(s["rejected"], 2, "{s}");
    assert_eq!(s["ingested"], 4);
    let reasons: Vec<String> = std::fs::read_dir(root.join("rejects"))
        .unwrap()
        .flat_map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("tools[0].name: required string is missing")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("tools[1].parameters: invalid JSON Schema text")),
        "{reasons:?}"
    );
    let o = run(&["clusters", "build", root.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems: Vec<&str> = s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("cancel_order") && p.contains("2 services")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("shop/string_schema") && p.contains("not an object schema")),
        "{problems:?}"
    );
    assert_eq!(
        s["edges"], 1,
        "get_order feeds cancel_order in the same shop only"
    );
    let corpus = tdscale::store::Corpus::open(root.to_str().unwrap()).unwrap();
    assert_eq!(
        strings(
            &corpus,
            "SELECT from_tool || '>' || to_tool FROM cluster_edges"
        )
        .await,
        ["shop/get_order>shop/cancel_order"]
    );
}

/// `tdscale ingest ROOT FILES… --table tools`, which must succeed.
fn ingest_tools(root: &std::path::Path, files: &[std::path::PathBuf]) {
    let o = bin()
        .arg("ingest")
        .arg(root)
        .args(files)
        .args(["--table", "tools"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A tool name found in many services is reported with the number of services and the first
/// eight of them, not with every one.
#[test]
fn a_name_in_many_services_is_reported_with_the_first_few() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let files: Vec<_> = (0..11)
        .map(|i| {
            let file = dir.path().join(format!("svc{i:02}.json"));
            std::fs::write(
                &file,
                r#"{"tools": [{"name": "ping", "inputSchema": {"type": "object", "properties": {"host": {"type": "string"}}}}]}"#,
            )
            .unwrap();
            file
        })
        .collect();
    ingest_tools(&root, &files);
    let o = run(&["clusters", "build", root.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problem = s["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .find(|p| p.contains("`ping`"))
        .unwrap_or_else(|| panic!("no problem names ping: {s}"))
        .to_string();
    assert!(problem.contains("appears in 11 services"), "{problem}");
    assert_eq!(problem.matches("svc").count(), 8, "{problem}");
    assert!(problem.contains(", … 3 more)"), "{problem}");
}

#[tokio::test]
async fn bundled_catalogs_cluster_with_their_edges() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    // The catalog files at the top (the labelled servers have tests of their own).
    let mut files: Vec<_> = std::fs::read_dir(testdata("catalogs"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    ingest_tools(&root, &files);
    let o = run(&["clusters", "build", root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let corpus = tdscale::store::Corpus::open(root.to_str().unwrap()).unwrap();
    let edges = strings(
        &corpus,
        "SELECT from_tool || ' -> ' || to_tool || ' via ' || field FROM cluster_edges ORDER BY 1",
    )
    .await;
    assert_eq!(
        edges,
        [
            "bfcl_func_doc_banking/get_account -> bfcl_func_doc_banking/transfer via from_account_id",
            "bfcl_func_doc_banking/get_account -> bfcl_func_doc_banking/transfer via to_account_id",
            "github/list_issues -> github/add_issue_comment via issue_number",
            "github/list_issues -> github/get_issue via issue_number",
            "openai_tools_calendar/create_event -> openai_tools_calendar/invite via event_id",
        ]
    );
    let domains = strings(
        &corpus,
        "SELECT cluster_id || '=' || domain FROM clusters ORDER BY 1",
    )
    .await;
    assert_eq!(
        domains,
        [
            "bfcl_func_doc_banking=finance",
            "github=code",
            "openai_tools_calendar=calendar"
        ]
    );
    // An override file relabels.
    let over = dir.path().join("domains.json");
    std::fs::write(&over, r#"{"github": "devtools"}"#).unwrap();
    assert!(
        run(&[
            "clusters",
            "build",
            root.to_str().unwrap(),
            "--domains",
            over.to_str().unwrap()
        ])
        .status
        .success()
    );
    assert_eq!(
        strings(
            &corpus,
            "SELECT domain FROM clusters WHERE cluster_id = 'github'"
        )
        .await,
        ["devtools"]
    );
}
