//! The SQL functions against hand-computed values (DESIGN.md, "Metrics").

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde_json::json;
use tdscale::model::{Message, ToolCall, Trajectory};

const LN2_HALF: f64 = 0.5 * std::f64::consts::LN_2;

fn user(text: &str) -> Message {
    Message {
        role: "user".into(),
        content: Some(text.into()),
        ..Default::default()
    }
}
fn say(text: &str) -> Message {
    Message {
        role: "assistant".into(),
        content: Some(text.into()),
        ..Default::default()
    }
}
fn call(calls: &[(&str, serde_json::Value)]) -> Message {
    Message {
        role: "assistant".into(),
        tool_calls: calls
            .iter()
            .map(|(n, a)| ToolCall {
                id: None,
                name: n.to_string(),
                arguments: a.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}
fn raw_call(name: &str, args: &str) -> Message {
    Message {
        role: "assistant".into(),
        tool_calls: vec![ToolCall {
            id: None,
            name: name.into(),
            arguments: args.into(),
        }],
        ..Default::default()
    }
}
fn result(text: &str) -> Message {
    Message {
        role: "tool".into(),
        content: Some(text.into()),
        ..Default::default()
    }
}

/// A session with table `t(traj_id, messages, …)` holding the given conversations.
async fn ctx_with(convs: Vec<(&str, Vec<Message>)>) -> SessionContext {
    let ts: Vec<Trajectory> = convs
        .into_iter()
        .map(|(id, messages)| {
            let mut t = Trajectory {
                traj_id: id.into(),
                source: "test".into(),
                format: "openai".into(),
                messages,
                ..Default::default()
            };
            tdscale::formats::finish(&mut t);
            t
        })
        .collect();
    let batch = tdscale::store::convert::trajectories_to_batch(&ts).unwrap();
    let ctx = tdscale::query::session::bare_context();
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap()),
    )
    .unwrap();
    ctx
}

async fn one_str(ctx: &SessionContext, q: &str) -> Option<String> {
    let b = ctx.sql(q).await.unwrap().collect().await.unwrap();
    let c = datafusion::arrow::compute::cast(
        b[0].column(0),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let c = c.as_string::<i32>();
    (!c.is_null(0)).then(|| c.value(0).to_string())
}

async fn one_f64(ctx: &SessionContext, q: &str) -> Option<f64> {
    let b = ctx
        .sql(q)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let c = datafusion::arrow::compute::cast(
        b[0].column(0),
        &datafusion::arrow::datatypes::DataType::Float64,
    )
    .unwrap();
    let c = c.as_primitive::<Float64Type>();
    (!c.is_null(0)).then(|| c.value(0))
}

async fn err(ctx: &SessionContext, q: &str) -> String {
    match ctx.sql(q).await {
        Err(e) => e.to_string(),
        Ok(df) => df.collect().await.expect_err(q).to_string(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn no_tool_calls() {
    let ctx = ctx_with(vec![(
        "a",
        vec![
            user("hi"),
            say("Which city?  "),
            user("Rome"),
            say("Rome is nice."),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "Q>A"
    );
    assert_eq!(
        one_f64(&ctx, "SELECT action_complexity(messages) FROM t").await,
        Some(0.0)
    );
    assert_eq!(
        one_f64(&ctx, "SELECT cardinality(step_complexity(messages)) FROM t").await,
        Some(0.0)
    );
    assert_eq!(
        one_f64(&ctx, "SELECT cardinality(tool_sequence(messages)) FROM t").await,
        Some(0.0)
    );
    let empty = ctx_with(vec![("e", vec![user("hello")])]).await;
    assert_eq!(
        one_str(&empty, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "",
        "no assistant message: ''"
    );
}

#[tokio::test]
async fn parallel_calls() {
    let ctx = ctx_with(vec![(
        "p",
        vec![
            user("weather in Paris and Rome"),
            call(&[
                ("get_weather", json!({"city": "Paris"})),
                ("get_weather", json!({"city": "Rome"})),
            ]),
            result("rain"),
            result("sun"),
            say("Paris rain, Rome sun."),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "P2>A"
    );
    // call 1: 1 + 0.5 ln 2 + new 1 + par 0.5; call 2: the same tool again, so no `new`.
    let expected = (1.0 + LN2_HALF + 1.0 + 0.5) + (1.0 + LN2_HALF + 0.5);
    assert!(close(
        one_f64(&ctx, "SELECT action_complexity(messages) FROM t")
            .await
            .unwrap(),
        expected
    ));
    assert_eq!(
        one_str(
            &ctx,
            "SELECT array_to_string(tool_sequence(messages), ',') FROM t"
        )
        .await
        .unwrap(),
        "get_weather,get_weather"
    );
    let five = ctx_with(vec![(
        "p5",
        vec![
            user("x"),
            call(&[
                ("a", json!({})),
                ("b", json!({})),
                ("c", json!({})),
                ("d", json!({})),
                ("e", json!({})),
            ]),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&five, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "P4+"
    );
}

#[tokio::test]
async fn dependency_chain_consumes_earlier_results() {
    let ctx = ctx_with(vec![(
        "d",
        vec![
            user("orders of Mia Li?"),
            call(&[("find_user", json!({"name": "Mia Li"}))]),
            result(r#"{"user_id": "mia_42", "balance": 250, "flag": 1}"#),
            call(&[("get_orders", json!({"user_id": "mia_42"}))]),
            result(r#"["o1"]"#),
            say("One order: o1."),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "S1>C1>A"
    );
    let expected = (1.0 + LN2_HALF + 1.0) + (1.0 + LN2_HALF + 1.0 + 1.0);
    assert!(close(
        one_f64(&ctx, "SELECT action_complexity(messages) FROM t")
            .await
            .unwrap(),
        expected
    ));
    // Numbers other than 0 and 1, as written, count; 0/1 and strings under 3 characters do not.
    for (args, dep) in [
        (json!({"amount": 250}), true),
        (json!({"flag": 1}), false),
        (json!({"x": "mi"}), false),
        (json!({"a": [{"deep": "mia_42"}]}), true),
    ] {
        let c = ctx_with(vec![(
            "x",
            vec![
                user("q"),
                call(&[("f", json!({}))]),
                result(r#"{"user_id": "mia_42", "balance": 250, "flag": 1}"#),
                call(&[("g", args.clone())]),
            ],
        )])
        .await;
        let mode = one_str(&c, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap();
        assert_eq!(mode, if dep { "S1>C1" } else { "S1" }, "args {args}");
    }
}

/// The earlier results are searched one way when short and another when long; both must find a
/// value in any one result and never across two.
#[tokio::test]
async fn carried_values_are_found_in_short_and_long_results_alike() {
    for pad in [0, 600, 3000] {
        let filler = "x".repeat(pad);
        for (results, dep) in [
            (
                vec![format!(r#"{{"note": "{filler}", "id": "mia_42"}}"#)],
                true,
            ),
            (
                vec![format!(r#"{{"id": "mia_42", "note": "{filler}"}}"#)],
                true,
            ),
            // The value split across the end of one result and the start of the next.
            (vec![format!("{filler} mia_"), "42 done".to_string()], false),
            (
                vec![format!("{filler} nothing here"), "mia_42".to_string()],
                true,
            ),
        ] {
            let mut messages = vec![user("q"), call(&[("f", json!({}))])];
            messages.extend(results.iter().map(|r| result(r)));
            messages.push(call(&[("g", json!({"id": "mia_42"}))]));
            let c = ctx_with(vec![("x", messages)]).await;
            let mode = one_str(&c, "SELECT reasoning_mode(messages) FROM t")
                .await
                .unwrap();
            assert_eq!(
                mode,
                if dep { "S1>C1" } else { "S1" },
                "results {:?}",
                results.iter().map(|r| r.len()).collect::<Vec<_>>()
            );
        }
    }
}

#[tokio::test]
async fn error_then_retry() {
    for error in ["Error: sold out", "  ERROR 500", r#"{"error": "sold out"}"#] {
        let ctx = ctx_with(vec![(
            "r",
            vec![
                user("book x"),
                call(&[("book", json!({"id": "x1"}))]),
                result(error),
                call(&[("book", json!({"id": "x2"}))]),
                result(r#"{"ok": true}"#),
                say("Booked."),
            ],
        )])
        .await;
        assert_eq!(
            one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
                .await
                .unwrap(),
            "S1>R>A",
            "error text {error:?}"
        );
        assert_eq!(one_f64(&ctx, "SELECT count(*) FROM (SELECT unnest(tool_calls_of(messages)) AS c FROM t) WHERE c['is_error']").await, Some(1.0));
    }
    // A result flagged as an error by its source.
    let mut flagged = result("sold out");
    flagged.error = Some(true);
    let ctx = ctx_with(vec![(
        "f",
        vec![
            user("b"),
            call(&[("book", json!({}))]),
            flagged,
            call(&[("book", json!({}))]),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "S1>R"
    );
    // Not an error: "error" inside a value, or a key that merely contains the word.
    let ctx = ctx_with(vec![(
        "n",
        vec![
            user("b"),
            call(&[("f", json!({}))]),
            result(r#"{"last_error": null, "note": "error free"}"#),
            call(&[("g", json!({}))]),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "S1"
    );
}

#[tokio::test]
async fn code_execution_call() {
    let ctx = ctx_with(vec![(
        "c",
        vec![
            user("2**10?"),
            call(&[("python", json!({"code": "print(2**10)"}))]),
            result("1024"),
            say("1024"),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "X>A"
    );
    let expected = 1.0 + LN2_HALF + 1.0 + 1.0; // new + code
    assert!(close(
        one_f64(&ctx, "SELECT action_complexity(messages) FROM t")
            .await
            .unwrap(),
        expected
    ));
    // A tool flagged as code by the caller.
    let ctx = ctx_with(vec![(
        "s",
        vec![user("run"), call(&[("sandbox", json!({"src": "1"}))])],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "S1"
    );
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages, ['sandbox']) FROM t")
            .await
            .unwrap(),
        "X"
    );
    let w = one_f64(
        &ctx,
        "SELECT action_complexity(messages, [1, 0.5, 1, 1, 0.5, 1], ['sandbox']) FROM t",
    )
    .await
    .unwrap();
    assert!(close(w, 1.0 + LN2_HALF + 1.0 + 1.0));
}

#[tokio::test]
async fn runs_of_single_calls_without_results() {
    let msgs = |n: usize| {
        let mut m = vec![user("go")];
        for i in 0..n {
            m.push(call(&[(&*format!("f{i}"), json!({"k": i}))]));
        }
        m
    };
    for (n, mode) in [(1, "S1"), (2, "S2"), (3, "S3"), (4, "S4+"), (6, "S4+")] {
        let ctx = ctx_with(vec![("r", msgs(n))]).await;
        assert_eq!(
            one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
                .await
                .unwrap(),
            mode
        );
    }
    // The worked example of the reasoning_mode doc comment.
    let ctx = ctx_with(vec![(
        "w",
        vec![
            user("book"),
            say("Which date?"),
            user("May 2"),
            call(&[("get_user", json!({"id": "me"}))]),
            result(r#"{"user": "u_77"}"#),
            say("Here it is."),
            call(&[("book", json!({"user": "u_77"}))]),
            result("Error: full"),
            call(&[("book", json!({"user": "u_77", "day": 3}))]),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "Q>S1>A>C1>R"
    );
}

#[tokio::test]
async fn moves_after_parallel_calls_read_their_own_call() {
    // Each move must read the facts of its own call, not of one of the parallel calls before it:
    // here the single call that consumes a result comes after two that do not, and the code
    // call after it.
    let ctx = ctx_with(vec![(
        "p",
        vec![
            user("find my order"),
            call(&[("find", json!({"q": "mia"})), ("list", json!({}))]),
            result(r#"{"order": "ord_123"}"#),
            result("[]"),
            call(&[("get_order", json!({"id": "ord_123"}))]),
            result(r#"{"total": 70}"#),
            call(&[("python", json!({"code": "print(70 * 2)"}))]),
            call(&[("refund", json!({"id": "x9"}))]),
        ],
    )])
    .await;
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "P2>C1>X>S1"
    );
}

#[tokio::test]
async fn weights_steps_and_running_cac() {
    let ctx = ctx_with(vec![(
        "d",
        vec![
            user("q"),
            call(&[("a", json!({"x": "abc"}))]),
            result("abc def"),
            call(&[("b", json!({"y": "abc"}))]),
            call(&[("a", json!({}))]),
        ],
    )])
    .await;
    // Only `new` weighted: the number of distinct tools.
    assert_eq!(
        one_f64(
            &ctx,
            "SELECT action_complexity(messages, [0, 0, 0, 1, 0, 0]) FROM t"
        )
        .await,
        Some(2.0)
    );
    // Only `dep`: one call consumed a result.
    assert_eq!(
        one_f64(
            &ctx,
            "SELECT action_complexity(messages, [0, 0, 1, 0, 0, 0]) FROM t"
        )
        .await,
        Some(1.0)
    );
    let total = one_f64(&ctx, "SELECT action_complexity(messages) FROM t")
        .await
        .unwrap();
    let steps = one_f64(
        &ctx,
        "SELECT sum(c) FROM (SELECT unnest(step_complexity(messages)) AS c FROM t)",
    )
    .await
    .unwrap();
    assert!(close(total, steps));
    let running = one_f64(
        &ctx,
        "SELECT max(run) FROM (SELECT sum(c) OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run FROM (SELECT unnest(generate_series(1, cardinality(step_complexity(messages)))) AS i, unnest(step_complexity(messages)) AS c FROM t))",
    )
    .await
    .unwrap();
    assert!(close(running, total));
    assert!(
        err(&ctx, "SELECT action_complexity(messages, [1, 2]) FROM t")
            .await
            .contains("6 numbers")
    );
}

#[tokio::test]
async fn nulls_and_malformed_inputs() {
    let ctx = ctx_with(vec![(
        "m",
        vec![
            user("q"),
            raw_call("f", "{not json"),
            raw_call("f", "[1, 2"),
        ],
    )])
    .await;
    // Arguments that are not JSON count 0 leaves: 1 + 0 + new, then 1.
    assert_eq!(
        one_f64(&ctx, "SELECT action_complexity(messages) FROM t").await,
        Some(3.0)
    );
    assert_eq!(
        one_str(&ctx, "SELECT reasoning_mode(messages) FROM t")
            .await
            .unwrap(),
        "S2"
    );
    let null_q = "SELECT reasoning_mode(m), action_complexity(m), tool_sequence(m), step_complexity(m) FROM (SELECT CASE WHEN false THEN messages END AS m FROM t)";
    let b = ctx.sql(null_q).await.unwrap().collect().await.unwrap();
    for c in b[0].columns() {
        assert!(c.is_null(0), "NULL messages give NULL");
    }
    for q in [
        "SELECT reasoning_mode('abc')",
        "SELECT action_complexity([1, 2, 3])",
        "SELECT tool_sequence(named_struct('role', 'user'))",
    ] {
        let e = err(&ctx, q).await;
        assert!(e.contains("expected messages as List<Struct"), "{q}: {e}");
    }
    assert!(
        err(
            &ctx,
            "SELECT reasoning_mode(make_array(named_struct('content', 'x')))"
        )
        .await
        .contains("role")
    );
}

#[tokio::test]
async fn entropy_aggregates() {
    let ctx = tdscale::query::session::bare_context();
    ctx.sql("CREATE TABLE v(g INT, x VARCHAR) AS VALUES (1,'a'),(1,'a'),(1,'b'),(1,'c'),(1,NULL),(2,'z'),(2,'z'),(3,NULL),(4,'p'),(4,'q'),(4,'r'),(4,'s')").await.unwrap().collect().await.unwrap();
    let by_group = |f: &str| format!("SELECT g, {f}(x) AS h FROM v GROUP BY g ORDER BY g");
    let values = |batches: Vec<datafusion::arrow::array::RecordBatch>| -> Vec<Option<f64>> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for f in ["entropy", "domain_entropy", "reasoning_mode_entropy"] {
        let h = values(
            ctx.sql(&by_group(f))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap(),
        );
        // a,a,b,c → 1.5 bits (NULL ignored); one value → 0; only NULLs → NULL; 4 equal → 2.
        assert_eq!(h, [Some(1.5), Some(0.0), None, Some(2.0)], "{f}");
    }
    let h = values(
        ctx.sql(&by_group("normalized_entropy"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap(),
    );
    assert!(close(h[0].unwrap(), 1.5 / 3f64.log2()));
    assert_eq!(&h[1..], [Some(0.0), None, Some(1.0)]);
    // Without GROUP BY (the row accumulator) and as a window function.
    assert_eq!(
        one_f64(&ctx, "SELECT entropy(x) FROM v WHERE g = 1").await,
        Some(1.5)
    );
    assert_eq!(
        one_f64(&ctx, "SELECT entropy(x) FROM v WHERE g = 99").await,
        None,
        "empty input"
    );
    assert_eq!(
        one_f64(
            &ctx,
            "SELECT entropy(x) OVER (PARTITION BY g) FROM v WHERE g = 4 LIMIT 1"
        )
        .await,
        Some(2.0)
    );
    // Non-string values: g = 2, 2, 4, 4, 4, 4 → p = (1/3, 2/3).
    let expected = (1.0 / 3.0) * 3f64.log2() + (2.0 / 3.0) * 1.5f64.log2();
    assert!(close(
        one_f64(&ctx, "SELECT entropy(g) FROM v WHERE g IN (2, 4)")
            .await
            .unwrap(),
        expected
    ));
    // FILTER goes through the grouped path's filter.
    let h = values(
        ctx.sql("SELECT g, entropy(x) FILTER (WHERE x <> 'a') FROM v GROUP BY g ORDER BY g")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap(),
    );
    assert_eq!(h[0], Some(1.0));
    // Strings as views (DataFusion's default reading of Parquet): short ones inline, long ones
    // by place, equal long strings at different places included. The same entropies.
    ctx.sql("CREATE TABLE w AS SELECT g, arrow_cast(CASE WHEN g = 4 THEN x ELSE x || ' is a label longer than twelve bytes' END, 'Utf8View') AS x FROM v")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    for (q, expected) in [
        (
            "SELECT g, entropy(x) FROM w GROUP BY g ORDER BY g",
            vec![Some(1.5), Some(0.0), None, Some(2.0)],
        ),
        (
            "SELECT g, entropy(x) FILTER (WHERE x NOT LIKE 'a%') FROM w GROUP BY g ORDER BY g",
            vec![Some(1.0), Some(0.0), None, Some(2.0)],
        ),
    ] {
        let h = values(ctx.sql(q).await.unwrap().collect().await.unwrap());
        assert_eq!(h, expected, "{q}");
    }
}

/// The grouped path keeps a group's counts in a vector or a map as its values are dense or not,
/// interns an input once for every grouping set, and merges partial states across partitions;
/// none of it may change a value. Expected entropies are counted here from the same formulas.
#[tokio::test]
async fn grouped_entropy_over_many_groups_and_values_matches_counting() {
    let ctx = tdscale::query::session::bare_context();
    for set in [
        "SET datafusion.execution.batch_size = 700",
        "SET datafusion.execution.target_partitions = 3",
        // Rows 0..20000: `small` has 3 groups, group 2 only from row 12000 on (after hundreds of
        // values were seen, so it starts sparse and turns dense); `pair` has 10,000 groups of two
        // rows each (mostly sparse); `late` = 'early' sees four values for 4000 rows, then from row
        // 19000 on far ones (dense turning sparse, then dense again). `x` takes 4 values, then
        // 600 others; NULL every 97th row.
        "CREATE TABLE t AS SELECT i, CASE WHEN i >= 12000 THEN 2 ELSE i % 2 END AS small, i / 2 AS pair, \
         CASE WHEN i < 4000 OR i >= 19000 THEN 'early' ELSE 'late' END AS late, \
         CASE WHEN i % 97 = 0 THEN NULL WHEN i < 4000 THEN 'e' || (i % 4) ELSE 'v' || ((i * 7919) % 600) END AS x \
         FROM generate_series(0, 19999) AS s(i)",
    ] {
        ctx.sql(set).await.unwrap().collect().await.unwrap();
    }
    let x = |i: u64| -> Option<String> {
        if i.is_multiple_of(97) {
            None
        } else if i < 4000 {
            Some(format!("e{}", i % 4))
        } else {
            Some(format!("v{}", (i * 7919) % 600))
        }
    };
    type Groups = std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>;
    let (mut small, mut pair, mut late) = (Groups::new(), Groups::new(), Groups::new());
    for i in 0..20000u64 {
        let Some(v) = x(i) else { continue };
        let s = if i >= 12000 { 2 } else { i % 2 };
        for (groups, key) in [
            (&mut small, s.to_string()),
            (&mut pair, (i / 2).to_string()),
            (
                &mut late,
                (if !(4000..19000).contains(&i) {
                    "early"
                } else {
                    "late"
                })
                .to_string(),
            ),
        ] {
            *groups.entry(key).or_default().entry(v.clone()).or_default() += 1;
        }
    }
    let bits = |counts: &std::collections::BTreeMap<String, i64>| -> f64 {
        let n: i64 = counts.values().sum();
        -counts
            .values()
            .map(|&c| {
                let p = c as f64 / n as f64;
                p * p.log2()
            })
            .sum::<f64>()
    };
    let q = "SELECT arrow_cast(small, 'Utf8') AS s, arrow_cast(pair, 'Utf8') AS p, arrow_cast(late, 'Utf8') AS l, \
             entropy(x) AS h, count(x) AS n \
             FROM t GROUP BY GROUPING SETS ((small), (pair), (late))";
    let batches = ctx.sql(q).await.unwrap().collect().await.unwrap();
    let mut seen = 0;
    for b in &batches {
        let (s, p, l) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
            b.column(2).as_string::<i32>(),
        );
        let (h, n) = (
            b.column(3).as_primitive::<Float64Type>(),
            b.column(4)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>(),
        );
        for r in 0..b.num_rows() {
            let (groups, key) = if !s.is_null(r) {
                (&small, s.value(r))
            } else if !p.is_null(r) {
                (&pair, p.value(r))
            } else {
                (&late, l.value(r))
            };
            match groups.get(key) {
                Some(counts) => {
                    assert_eq!(n.value(r), counts.values().sum::<i64>(), "{key}");
                    assert!(
                        close(h.value(r), bits(counts)),
                        "{key}: {} vs {}",
                        h.value(r),
                        bits(counts)
                    );
                }
                // A group of NULLs only: its entropy is NULL.
                None => assert!(h.is_null(r), "{key}"),
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 3 + 10_000 + 2);
    // The groups are really mixed: 600 values in group 2 and in 'late', 4 and then hundreds
    // more in 'early' (its rows that are NULL take a few).
    assert_eq!((small["2"].len(), late["late"].len()), (600, 600));
    assert!(late["early"].len() > 500, "{}", late["early"].len());
}

/// `user_text`: the user turns joined by newlines, then `tools:` and the called tools in order;
/// assistant and tool texts left out.
#[tokio::test]
async fn user_text_is_the_user_turns_then_the_tool_sequence() {
    let ctx = ctx_with(vec![
        (
            "a",
            vec![
                user("Book a flight"),
                call(&[("search", json!({"to": "Rome"})), ("hold", json!({}))]),
                result("found"),
                say("Booked."),
                user("thanks"),
                call(&[("search", json!({}))]),
            ],
        ),
        ("b", vec![user("only words"), say("ok")]),
        ("c", vec![say("nobody asked")]),
    ])
    .await;
    let text = |id: &str| format!("SELECT user_text(messages) FROM t WHERE traj_id = '{id}'");
    assert_eq!(
        one_str(&ctx, &text("a")).await.as_deref(),
        Some("Book a flight\nthanks\ntools: search hold search")
    );
    assert_eq!(
        one_str(&ctx, &text("b")).await.as_deref(),
        Some("only words")
    );
    assert_eq!(one_str(&ctx, &text("c")).await.as_deref(), Some(""));
}

#[tokio::test]
async fn minhash_and_jaccard() {
    let ctx = tdscale::query::session::bare_context();
    assert_eq!(
        one_f64(
            &ctx,
            "SELECT jaccard('book a flight to rome', 'please book a flight to rome')"
        )
        .await,
        Some(0.75)
    );
    assert_eq!(
        one_f64(&ctx, "SELECT jaccard('Same text here', 'same TEXT, here!')").await,
        Some(1.0)
    );
    assert_eq!(one_f64(&ctx, "SELECT jaccard('', '')").await, Some(1.0));
    assert_eq!(
        one_f64(
            &ctx,
            "SELECT jaccard(minhash('a b c d'), minhash('a b c d'))"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        one_f64(&ctx, "SELECT cardinality(minhash('x', 16))").await,
        Some(16.0)
    );
    let est = one_f64(&ctx, "SELECT jaccard(minhash('the cat sat on the mat by the door today', 256), minhash('the cat sat on the mat by the window today', 256))").await.unwrap();
    let exact = one_f64(&ctx, "SELECT jaccard('the cat sat on the mat by the door today', 'the cat sat on the mat by the window today')").await.unwrap();
    assert!(
        (est - exact).abs() < 0.15,
        "estimate {est} vs exact {exact}"
    );
    assert_eq!(one_f64(&ctx, "SELECT jaccard(NULL, 'x')").await, None);
    assert!(
        err(&ctx, "SELECT jaccard(minhash('a', 8), minhash('a', 16))")
            .await
            .contains("different lengths")
    );
    assert!(
        err(&ctx, "SELECT minhash('a', 0)")
            .await
            .contains("between 1 and")
    );
    // Signatures are 32-bit values; lists of 64-bit ones (the signatures of metrics version 1)
    // compare among themselves, not with the new ones.
    let ty = one_str(&ctx, "SELECT arrow_typeof(minhash('a b c'))")
        .await
        .unwrap();
    assert!(ty.contains("UInt32") && !ty.contains("UInt64"), "{ty}");
    let u64s = |v: [u64; 4]| {
        let items: Vec<String> = v
            .iter()
            .map(|x| format!("arrow_cast({x}, 'UInt64')"))
            .collect();
        format!("make_array({})", items.join(", "))
    };
    assert_eq!(
        one_f64(
            &ctx,
            &format!(
                "SELECT jaccard({}, {})",
                u64s([1, 2, 3, u64::MAX]),
                u64s([1, 2, 0, u64::MAX])
            )
        )
        .await,
        Some(0.75)
    );
    let mixed = err(
        &ctx,
        &format!(
            "SELECT jaccard(minhash('a b c', 4), {})",
            u64s([1, 2, 3, 4])
        ),
    )
    .await;
    assert!(mixed.contains("do not compare"), "{mixed}");
}

/// FNV-1a 64 of a text, from its published constants (the shingle hash of `minhash`).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The shingles of ASCII text (lower-cased byte by byte) and of other text (word by word) against
/// FNV-1a 64 computed here from its published constants.
#[test]
fn shingles_are_the_fnv1a_of_lower_cased_word_trigrams() {
    let expect = |grams: &[&str]| {
        let mut v: Vec<u64> = grams.iter().map(|g| fnv(g)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    use tdscale::metrics::minhash::shingles;
    assert_eq!(
        shingles("The quick, BROWN fox -- the quick brown fox!"),
        expect(&[
            "the quick brown",
            "quick brown fox",
            "brown fox the",
            "fox the quick",
        ])
    );
    assert_eq!(shingles("Hello  world"), expect(&["hello world"]));
    assert_eq!(shingles("a1b2"), expect(&["a1b2"]));
    assert_eq!(shingles(" ,;- "), expect(&[]));
    // Unicode letters and digits are word characters; ÉTÉ lower-cases to été.
    assert_eq!(
        shingles("ÉTÉ à Zürich: Straße ٣"),
        expect(&["été à zürich", "à zürich straße", "zürich straße ٣"])
    );
}

/// Shingles against the definition computed here (the words, each lower-cased, and their joined
/// trigrams), on random texts of zero to many words with mixed case, digits, runs of separators
/// and repeated words.
#[test]
fn shingles_of_random_text_follow_the_definition() {
    fn expected(text: &str) -> Vec<u64> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut v: Vec<u64> = match words.len() {
            0 => vec![],
            1 | 2 => vec![fnv(&words.join(" "))],
            _ => words.windows(3).map(|w| fnv(&w.join(" "))).collect(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // ASCII text (lower-cased byte by byte), then text with letters whose lower case is longer
    // or depends on the word (lower-cased word by word).
    for alphabet in ["aAbBzZ09 ,.-_\n\t!?#\"'{}", "aAéÉßΣσİ9 ,.-\n"] {
        let alphabet: Vec<char> = alphabet.chars().collect();
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(
                tdscale::metrics::minhash::shingles(&text),
                expected(&text),
                "{text:?}"
            );
        }
    }
}

/// Signatures against the definition computed here (SplitMix64 from its published constants),
/// for function counts around the vector blocks and shingle sets from none to many, by every
/// kernel this processor can run.
#[test]
fn minhash_signature_is_each_functions_least_hash() {
    fn splitmix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    use tdscale::metrics::minhash::{
        Kernel, least_hashes_with, shingles, signature, signature_of_shingles,
    };
    let kernels = Kernel::available();
    assert_eq!(kernels[0], Kernel::Portable);
    for n in [0usize, 1, 2, 5, 17, 40] {
        let set: Vec<u64> = (0..n as u64).map(|i| splitmix(i * 7 + n as u64)).collect();
        for k in [1usize, 15, 16, 17, 64, 100, 1024, 1030] {
            let expected: Vec<u64> = (0..k as u64)
                .map(|i| {
                    let seed = splitmix(i + 1);
                    set.iter()
                        .map(|&h| splitmix(h ^ seed))
                        .min()
                        .unwrap_or(u64::MAX)
                })
                .collect();
            // The signature keeps the low 32 bits of each least hash (b-bit MinHash).
            let low_bits: Vec<u32> = expected.iter().map(|&h| (h & 0xFFFF_FFFF) as u32).collect();
            assert_eq!(
                signature_of_shingles(&set, k),
                low_bits,
                "{n} shingles, k = {k}"
            );
            for &kernel in &kernels {
                assert_eq!(
                    least_hashes_with(kernel, &set, k),
                    expected,
                    "{n} shingles, k = {k}, {kernel:?}"
                );
            }
        }
    }
    let text = "I need help with my travel request #42. tools: travel_search travel_book";
    assert_eq!(
        signature(text, 64),
        signature_of_shingles(&shingles(text), 64)
    );
    assert_eq!(signature("", 3), vec![u32::MAX; 3]);
}

#[tokio::test]
async fn args_valid_against_json_schema() {
    let ctx = tdscale::query::session::bare_context();
    let schema = r#"{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1}},"required":["city"]}"#;
    for (args, expected) in [
        (r#"{"city":"Rome","days":3}"#, Some(true)),
        (r#"{"days":3}"#, Some(false)),
        (r#"{"city":"Rome","days":0}"#, Some(false)),
        (r#"{"city":7}"#, Some(false)),
        ("{oops", Some(false)),
    ] {
        let b = ctx
            .sql(&format!("SELECT args_valid('{args}', '{schema}')"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let c = b[0].column(0).as_boolean();
        assert_eq!((!c.is_null(0)).then(|| c.value(0)), expected, "{args}");
    }
    let b = ctx
        .sql("SELECT args_valid('{}', '{\"type\": 5}'), args_valid(NULL, '{}')")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(
        b[0].column(0).is_null(0) && b[0].column(1).is_null(0),
        "a broken schema cannot judge"
    );
}

#[tokio::test]
async fn identical_results_with_1_and_8_partitions() {
    let (_d, corpus) = crate::common::temp_corpus();
    let opts = tdscale::ingest::IngestOptions {
        rows_per_file: 20,
        ..Default::default()
    };
    tdscale::ingest::ingest(
        &corpus,
        &[
            crate::common::shared("tau-bench/gpt-4o-airline.json"),
            crate::common::testdata("formats/tau_bench_retail.json"),
            crate::common::testdata("formats/openai_chat.jsonl"),
        ],
        &opts,
    )
    .await
    .unwrap();
    assert!(
        crate::common::files_under(&corpus.local_dir().unwrap().join("trajectories")).len() > 5,
        "several files"
    );
    let q = "SELECT coalesce(domain, '-') AS d, count(*) AS n, domain_entropy(domain) AS de, reasoning_mode_entropy(mode) AS rme, normalized_entropy(mode) AS nrme, entropy(source) AS es, round(sum(cac), 6) AS cac FROM trajectory_metrics GROUP BY d UNION ALL SELECT 'all', count(*), domain_entropy(domain), reasoning_mode_entropy(mode), normalized_entropy(mode), entropy(source), round(sum(cac), 6) FROM trajectory_metrics ORDER BY d";
    // Our aggregates must agree to the last bit; the built-in float `sum` is rounded because its
    // summation order (and so its last bits) depends on the partitioning.
    let mut outputs = vec![];
    for partitions in [1, 8] {
        let session = tdscale::query::session::CorpusSession::open(&corpus)
            .await
            .unwrap();
        let ctx = session.ctx();
        ctx.sql(&format!(
            "SET datafusion.execution.target_partitions = {partitions}"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx.sql("SET datafusion.execution.batch_size = 7")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let b = ctx.sql(q).await.unwrap().collect().await.unwrap();
        outputs.push(
            datafusion::arrow::util::pretty::pretty_format_batches(&b)
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(outputs[0].contains("airline"));
}

/// SplitMix64 from `seed`: random values for the tests of near-duplicate search.
fn splitmix64(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The signatures of `sigs` at or above `threshold` similarity to `query`, by number: every
/// pair compared, what an index search must find.
fn at_or_above(sigs: &[Vec<u32>], query: &[u32], threshold: f64) -> Vec<(usize, f64)> {
    use tdscale::metrics::lsh::similarity;
    sigs.iter()
        .enumerate()
        .map(|(i, s)| (i, similarity(s, query)))
        .filter(|&(_, s)| s >= threshold)
        .collect()
}

/// The index of near-duplicate signatures finds exactly the pairs at or above its threshold,
/// compared with every pair: signatures that differ from a query in 0 to 64 random positions,
/// at thresholds where the bands are narrow and wide, and at the edges (0 and 1).
#[test]
fn lsh_index_finds_exactly_the_pairs_at_or_above_its_threshold() {
    use tdscale::metrics::lsh::{LshIndex, similarity};
    let mut next = splitmix64(7);
    for threshold in [0.0, 0.3, 0.6, 0.8, 0.81, 0.9, 1.0] {
        for _ in 0..5 {
            let query: Vec<u32> = (0..64).map(|_| next() as u32).collect();
            let mut index = LshIndex::new(threshold);
            let mut indexed = vec![];
            for differing in 0..=64usize {
                for _ in 0..3 {
                    let mut sig = query.clone();
                    // `differing` distinct positions changed to another value.
                    let mut positions: Vec<usize> = (0..64).collect();
                    for i in 0..differing {
                        let j = i + (next() % (64 - i) as u64) as usize;
                        positions.swap(i, j);
                        sig[positions[i]] ^= 1 + (next() as u32 >> 1);
                    }
                    assert_eq!(similarity(&sig, &query), (64 - differing) as f64 / 64.0);
                    index.insert(&sig);
                    indexed.push(sig);
                }
            }
            // A signature of another length is kept but matches nothing.
            index.insert(&query[..32]);
            assert!(index.query(&query[..32]).is_empty());
            let expected = at_or_above(&indexed, &query, threshold);
            assert_eq!(index.query(&query), expected, "threshold {threshold}");
        }
    }
    // Short signatures, every set of differing positions: no placement escapes the bands.
    for n in [5usize, 8, 13] {
        let query: Vec<u32> = (0..n as u32).collect();
        for threshold in [0.2, 0.5, 0.75, 0.8, 0.9, 1.0] {
            let mut index = LshIndex::new(threshold);
            let sigs: Vec<Vec<u32>> = (0..1u32 << n)
                .map(|differ| {
                    (0..n as u32)
                        .map(|i| if differ >> i & 1 == 1 { 100 + i } else { i })
                        .collect()
                })
                .collect();
            for s in &sigs {
                index.insert(s);
            }
            let expected = at_or_above(&sigs, &query, threshold);
            assert!(!expected.is_empty());
            assert_eq!(
                index.query(&query),
                expected,
                "n = {n}, threshold {threshold}"
            );
        }
    }
}

/// A near-duplicate search rejects most candidates on the low byte of each value, which can
/// only say that two values differ: signatures whose values differ but keep their low bytes
/// are compared on the values, so each search still finds exactly the pairs at or above the
/// threshold, and stops at the first when asked.
#[test]
fn lsh_index_confirms_on_the_values_what_the_low_bytes_cannot_tell() {
    use std::ops::ControlFlow;
    use tdscale::metrics::lsh::{LshIndex, similarity};
    let mut next = splitmix64(23);
    for threshold in [0.5, 0.8, 0.95] {
        let query: Vec<u32> = (0..64).map(|_| next() as u32).collect();
        let mut index = LshIndex::new(threshold);
        let mut indexed: Vec<Vec<u32>> = vec![];
        for differing in 0..=64usize {
            // `differing` positions changed above the low byte: their low bytes all agree.
            let mut sig = query.clone();
            for v in &mut sig[..differing] {
                *v ^= (1 + (next() as u32 >> 9)) << 8;
            }
            assert!(sig.iter().zip(&query).all(|(a, b)| a & 0xff == b & 0xff));
            assert_eq!(similarity(&sig, &query), (64 - differing) as f64 / 64.0);
            // And as many changed in the low byte as well, which the low bytes do tell.
            let mut low = query.clone();
            for v in &mut low[64 - differing..] {
                *v ^= 1 + (next() as u32 % 255);
            }
            index.insert(&sig);
            index.insert(&low);
            indexed.push(sig);
            indexed.push(low);
        }
        let expected = at_or_above(&indexed, &query, threshold);
        assert_eq!(index.query(&query), expected, "threshold {threshold}");
        let mut first = vec![];
        index.visit_near(&query, |id, s| {
            first.push((id, s));
            ControlFlow::Break(())
        });
        assert_eq!(first.len(), 1);
        assert!(expected.contains(&first[0]), "threshold {threshold}");
    }
}

/// A search hands over each near signature once, however many bands it shares with the
/// query, and stops when the caller has its answer; the next search sees every one again.
#[test]
fn lsh_index_visits_each_near_signature_once_and_stops_when_asked() {
    use std::ops::ControlFlow;
    use tdscale::metrics::lsh::LshIndex;
    // At 0.5 over 8 values: 5 bands ([0, 2), [2, 4), [4, 6), [6, 7), [7, 8)).
    let query: Vec<u32> = (0..8).collect();
    let mut index = LshIndex::new(0.5);
    index.insert(&query); // shares all 5 bands
    index.insert(&[0, 1, 2, 3, 9, 9, 9, 9]); // shares 2, similarity 1/2
    index.insert(&[9, 9, 9, 9, 9, 9, 6, 9]); // shares 1, similarity 1/8
    index.insert(&[9; 8]); // shares none
    let visits = |index: &mut LshIndex, stop_after: usize| {
        let mut seen = vec![];
        index.visit_near(&query, |id, similarity| {
            seen.push((id, similarity));
            if seen.len() == stop_after {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        seen.sort_by_key(|&(id, _)| id);
        seen
    };
    assert_eq!(visits(&mut index, usize::MAX), vec![(0, 1.0), (1, 0.5)]);
    assert_eq!(visits(&mut index, 1).len(), 1);
    assert_eq!(index.query(&query), vec![(0, 1.0), (1, 0.5)]);
    assert_eq!(visits(&mut index, usize::MAX), vec![(0, 1.0), (1, 0.5)]);
}

/// `deita_select`'s walk admits a candidate exactly when no trajectory selected before it is
/// at or above the threshold, as comparing it with every selected one decides, and stops at
/// the first admitted candidate over the budget.
#[test]
fn deita_walk_matches_comparing_every_selected_trajectory() {
    use tdscale::metrics::deita_select::{Scored, select};
    use tdscale::metrics::lsh::similarity;
    let mut next = splitmix64(11);
    // Variants of a few base signatures, each differing in a random number of positions, so
    // that similarities spread over the whole range around every threshold.
    let bases: Vec<Vec<u32>> = (0..6)
        .map(|_| (0..64).map(|_| next() as u32).collect())
        .collect();
    let cands = |next: &mut dyn FnMut() -> u64| -> Vec<Scored> {
        (0..600)
            .map(|i| {
                let mut signature = bases[i % bases.len()].clone();
                let differing = (next() % 65) as usize;
                for _ in 0..differing {
                    let p = (next() % 64) as usize;
                    signature[p] = next() as u32;
                }
                Scored {
                    traj_id: format!("t{i:04}"),
                    cost: 1 + (next() % 5) as i64,
                    score: (next() % 1000) as f64,
                    signature,
                }
            })
            .collect()
    };
    for threshold in [0.3, 0.6, 0.8, 0.95] {
        for budget in [40, 400, 10_000] {
            let mut all = cands(&mut next);
            // The walk by definition: best score first (ties by id), compared with every pick.
            all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.traj_id.cmp(&b.traj_id)));
            let mut expected: Vec<(String, i64)> = vec![];
            let mut picked_sigs: Vec<&Vec<u32>> = vec![];
            let mut used = 0;
            for c in &all {
                if picked_sigs
                    .iter()
                    .any(|s| similarity(s, &c.signature) >= threshold)
                {
                    continue;
                }
                if used + c.cost > budget {
                    break;
                }
                used += c.cost;
                expected.push((c.traj_id.clone(), c.cost));
                picked_sigs.push(&c.signature);
            }
            assert!(expected.len() > 1, "threshold {threshold}, budget {budget}");
            assert_eq!(
                select(all, budget, threshold),
                expected,
                "threshold {threshold}, budget {budget}"
            );
        }
    }
}
