//! Every input format, on fixtures written for the purpose, checked field by field.

use crate::common::*;
use tdscale::formats::{self, Format, ParseContext, Parsed};
use tdscale::model::Trajectory;

fn parse_file(path: &std::path::Path, format: Format) -> Vec<Trajectory> {
    let ctx = ParseContext {
        source: tdscale::ingest::input::stem(path),
        ..Default::default()
    };
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let records =
        tdscale::ingest::input::Records::new(tdscale::ingest::input::open(path, count).unwrap());
    records
        .map(|r| {
            let text = r.unwrap().text;
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                formats::detect(&v),
                Some(format),
                "detected format of {}",
                path.display()
            );
            let t = match formats::parse(format, &ctx, v).unwrap() {
                Parsed::Trajectory(t) => *t,
                _ => panic!("expected a trajectory"),
            };
            // Ingest reads the text directly (tool lists kept as text and parsed once); twice,
            // so the second read comes from the cache of parsed lists.
            for _ in 0..2 {
                match formats::parse_text(format, &ctx, &text).unwrap() {
                    Parsed::Trajectory(from_text) => assert_eq!(*from_text, t),
                    _ => panic!("expected a trajectory"),
                }
            }
            t
        })
        .collect()
}

#[test]
fn openai_parallel_calls_are_paired_by_id_and_content_parts_joined() {
    let ts = parse_file(&testdata("formats/openai_chat.jsonl"), Format::Openai);
    assert_eq!(ts.len(), 3);
    let t = &ts[0];
    assert_eq!(t.traj_id, "openai_chat/oa-1");
    assert_eq!(
        t.system.as_deref(),
        Some("You are a travel assistant. Use the tools.")
    );
    assert_eq!(t.domain.as_deref(), Some("travel"));
    assert_eq!(t.metadata["split"], "train");
    assert_eq!(t.messages.len(), 5, "system prompt moves to `system`");
    assert_eq!(t.num_tool_calls(), 2);
    // Results came back in the other order: each must still point at its own call.
    assert_eq!(t.messages[2].tool_call_id.as_deref(), Some("call_b"));
    assert_eq!(t.messages[2].name.as_deref(), Some("get_weather"));
    assert!(t.messages[2].content.as_deref().unwrap().contains("Rome"));
    assert_eq!(t.tools[0].name, "get_weather");
    let params: serde_json::Value =
        serde_json::from_str(t.tools[0].parameters.as_deref().unwrap()).unwrap();
    assert_eq!(params["required"][0], "city");

    let t = &ts[1];
    assert!(
        t.traj_id.starts_with("h:"),
        "no source id: content hash, got {}",
        t.traj_id
    );
    assert_eq!(
        t.messages[0].content.as_deref(),
        Some("Find order 8841 and refund it.")
    );
    assert_eq!(
        t.messages[1].reasoning.as_deref(),
        Some("I need the order first.")
    );
    // Object arguments are serialised to JSON text.
    assert_eq!(
        t.messages[1].tool_calls[0].arguments,
        r#"{"order_id":"8841"}"#
    );
    assert_eq!(t.num_tool_calls(), 3);

    let t = &ts[2];
    assert_eq!(t.traj_id, "openai_chat/3", "numeric ids are kept");
    assert_eq!(
        t.messages[1].tool_calls[0].name, "python",
        "legacy function_call"
    );
    assert_eq!(t.messages[2].role, "tool", "legacy function role");
    assert_eq!(t.reward, Some(1.0));
}

#[test]
fn content_hash_ids_are_stable_and_content_sensitive() {
    let a = parse_file(&testdata("formats/openai_chat.jsonl"), Format::Openai);
    let b = parse_file(&testdata("formats/openai_chat.jsonl"), Format::Openai);
    assert_eq!(a[1].traj_id, b[1].traj_id);
    let mut changed = a[1].clone();
    changed.messages[0].content = Some("something else".into());
    assert_ne!(changed.content_hash(), a[1].content_hash());
}

#[test]
fn sharegpt_calls_and_observations_pair_by_order() {
    let ts = parse_file(
        &testdata("formats/sharegpt_llamafactory.json"),
        Format::Sharegpt,
    );
    assert_eq!(ts.len(), 2);
    let t = &ts[0];
    assert_eq!(t.system.as_deref(), Some("You are a finance assistant."));
    let roles: Vec<&str> = t.messages.iter().map(|m| m.role.as_ref()).collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "tool",
            "assistant"
        ]
    );
    assert_eq!(t.messages[1].tool_calls[0].name, "get_rate");
    assert_eq!(
        t.messages[1].tool_calls[0].arguments,
        r#"{"base":"USD","quote":"EUR"}"#
    );
    // Each observation answers the call before it.
    assert_eq!(t.messages[2].tool_call_id, t.messages[1].tool_calls[0].id);
    assert_eq!(t.messages[4].tool_call_id, t.messages[3].tool_calls[0].id);
    assert_eq!(t.messages[4].name.as_deref(), Some("convert"));
    assert_eq!(t.tools.len(), 2, "tools given as JSON text");

    let t = &ts[1];
    assert_eq!(
        t.messages[1].tool_calls.len(),
        2,
        "a list of calls is one parallel turn"
    );
    assert_eq!(t.messages[2].tool_call_id, t.messages[1].tool_calls[0].id);
    assert_eq!(t.messages[3].tool_call_id, t.messages[1].tool_calls[1].id);
    assert_ne!(t.messages[2].tool_call_id, t.messages[3].tool_call_id);
    assert_eq!(t.metadata["category"], "smart_home");
}

#[test]
fn hermes_tags_python_dicts_and_qwen_tool_responses() {
    let ts = parse_file(
        &testdata("formats/hermes_function_calling.jsonl"),
        Format::Hermes,
    );
    let t = &ts[0];
    assert_eq!(t.traj_id, "hermes_function_calling/h-1");
    assert_eq!(
        t.tools.len(),
        1,
        "tools from the <tools> block, written as a Python literal"
    );
    assert_eq!(t.tools[0].name, "get_stock_price");
    let call = &t.messages[1].tool_calls[0];
    assert_eq!(call.name, "get_stock_price");
    assert_eq!(call.arguments, r#"{"symbol":"AAPL"}"#);
    assert_eq!(t.messages[1].content, None, "only the tag was in the text");
    assert_eq!(t.messages[2].role, "tool");
    assert!(t.messages[2].content.as_deref().unwrap().contains("189.5"));
    assert_eq!(t.metadata["category"], "Finance");

    let t = &ts[1];
    assert_eq!(
        t.tools.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["search_flights", "book_flight"]
    );
    let roles: Vec<&str> = t.messages.iter().map(|m| m.role.as_ref()).collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "tool",
            "assistant"
        ],
        "Qwen puts results in user turns"
    );
    assert_eq!(
        t.messages[1].reasoning.as_deref(),
        Some("Search first, then book.")
    );
    assert_eq!(
        t.messages[3].tool_calls[0].arguments,
        r#"{"flight_id":"UA100"}"#
    );
}

#[test]
fn hermes_unreadable_call_is_kept_as_text_and_noted() {
    let v = serde_json::json!({"conversations": [
        {"from": "human", "value": "hi"},
        {"from": "gpt", "value": "<tool_call>{name: broken</tool_call>"}]});
    let ctx = ParseContext {
        source: "x".into(),
        ..Default::default()
    };
    let Parsed::Trajectory(t) = formats::parse(Format::Hermes, &ctx, v).unwrap() else {
        panic!()
    };
    assert!(t.messages[1].tool_calls.is_empty());
    assert!(
        t.messages[1]
            .content
            .as_deref()
            .unwrap()
            .contains("{name: broken")
    );
    assert_eq!(
        t.metadata["unparsed_tool_calls"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn xlam_answers_and_flat_parameters_become_json_schema() {
    let ts = parse_file(
        &testdata("formats/xlam_function_calling.json"),
        Format::Xlam,
    );
    let t = &ts[0];
    assert_eq!(t.traj_id, "xlam_function_calling/7");
    assert_eq!(t.messages[1].tool_calls.len(), 2);
    let t = &ts[1];
    let p: serde_json::Value =
        serde_json::from_str(t.tools[0].parameters.as_deref().unwrap()).unwrap();
    assert_eq!(p["type"], "object");
    assert_eq!(p["properties"]["video_id"]["type"], "string");
    assert_eq!(p["properties"]["limit"]["type"], "integer");
    assert_eq!(p["properties"]["tags"]["type"], "array");
    assert_eq!(p["properties"]["tags"]["items"]["type"], "string");
    assert_eq!(
        p["required"],
        serde_json::json!(["video_id"]),
        "`, optional` parameters are not required"
    );
    assert!(jsonschema::meta::is_valid(&p));
}

#[test]
fn tau_bench_ids_reward_and_reused_call_ids() {
    let ts = parse_file(&testdata("formats/tau_bench_retail.json"), Format::TauBench);
    let t = &ts[0];
    assert_eq!(t.traj_id, "tau_bench_retail/12/0");
    assert_eq!(t.reward, Some(1.0));
    assert!(
        t.system
            .as_deref()
            .unwrap()
            .starts_with("# Retail agent policy")
    );
    assert_eq!(t.metadata["info"]["task"]["user_id"], "yusuf_rossi_9620");
    // The source reuses `call_1`; ids are made unique and each result still finds its call.
    let ids: Vec<String> = t
        .messages
        .iter()
        .flat_map(|m| m.tool_calls.iter().map(|c| c.id.clone().unwrap()))
        .collect();
    assert_eq!(ids, ["call_1", "call_1#2"]);
    assert_eq!(t.messages[2].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(t.messages[4].tool_call_id.as_deref(), Some("call_1#2"));
    assert_eq!(t.metadata["renamed_call_ids"]["call_1#2"], "call_1");
    assert_eq!(ts[1].traj_id, "tau_bench_retail/12/1");
}

#[tokio::test]
async fn bfcl_reference_calls_come_from_possible_answer() {
    let (_d, corpus) = temp_corpus();
    let s = ingest(&corpus, &[testdata("formats/BFCL_v4_demo_multiple.json")]).await;
    assert_eq!((s.ingested, s.rejected), (2, 0));
    let args = strings(&corpus, "SELECT arguments FROM tool_calls ORDER BY traj_id").await;
    // First accepted value of each option list; `""` means the argument may be omitted.
    assert_eq!(
        args,
        [
            r#"{"restaurant":"Luigi's","party_size":2,"time":"19:00"}"#,
            r#"{"cuisine":"Italian","max_price":30.0,"tags":[]}"#
        ]
    );
    let params = strings(
        &corpus,
        "SELECT tools[2]['parameters'] FROM trajectories WHERE traj_id LIKE '%_0'",
    )
    .await;
    let p: serde_json::Value = serde_json::from_str(&params[0]).unwrap();
    assert_eq!(
        p["properties"]["max_price"]["type"], "number",
        "float → number"
    );
    assert_eq!(p["properties"]["tags"]["type"], "array", "tuple → array");
    assert_eq!(p["type"], "object", "dict → object");
}

#[tokio::test]
async fn catalogs_land_in_tools_with_services() {
    let (_d, corpus) = temp_corpus();
    let opts = tdscale::ingest::IngestOptions {
        table: tdscale::ingest::TargetTable::Tools,
        ..Default::default()
    };
    let files: Vec<_> = [
        "catalogs/mcp_github_tools_list.json",
        "catalogs/openai_tools_calendar.json",
        "catalogs/bfcl_func_doc_banking.json",
    ]
    .iter()
    .map(|f| testdata(f))
    .collect();
    let s = tdscale::ingest::ingest(&corpus, &files, &opts)
        .await
        .unwrap();
    assert_eq!((s.ingested, s.rejected), (7, 0));
    let ids = strings(&corpus, "SELECT tool_id FROM tools ORDER BY tool_id").await;
    assert_eq!(
        ids,
        [
            "bfcl_func_doc_banking/get_account",
            "bfcl_func_doc_banking/transfer",
            "github/add_issue_comment",
            "github/get_issue",
            "github/list_issues",
            "openai_tools_calendar/create_event",
            "openai_tools_calendar/invite",
        ]
    );
    let out = strings(
        &corpus,
        "SELECT output_schema FROM tools WHERE name = 'get_account'",
    )
    .await;
    let o: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(o["properties"]["balance"]["type"], "number");
    let meta = strings(
        &corpus,
        "SELECT metadata FROM tools WHERE name = 'get_issue'",
    )
    .await;
    assert!(
        meta[0].contains("readOnlyHint"),
        "MCP annotations are kept: {}",
        meta[0]
    );
    for p in strings(&corpus, "SELECT parameters FROM tools").await {
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert!(jsonschema::meta::is_valid(&v), "not valid JSON Schema: {p}");
        assert_eq!(v["type"], "object");
    }
    // Again: nothing new.
    let s = tdscale::ingest::ingest(&corpus, &files, &opts)
        .await
        .unwrap();
    assert_eq!((s.ingested, s.duplicates), (0, 7));
}

#[tokio::test]
async fn compressed_inputs_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(testdata("formats/openai_chat.jsonl")).unwrap();
    let gz = dir.path().join("chat.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(&mut enc, &plain).unwrap();
    enc.finish().unwrap();
    let zst = dir.path().join("chat2.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(&plain[..], 3).unwrap()).unwrap();
    let (_d, corpus) = temp_corpus();
    let s = ingest(&corpus, &[gz, zst]).await;
    assert_eq!(s.read, 6);
    // Same content, different source names: the records with ids differ, the hashed one is shared.
    assert_eq!((s.ingested, s.duplicates), (5, 1));
    assert_eq!(s.files[0].format.as_deref(), Some("openai"));
}

#[test]
fn python_call_strings_parse() {
    use tdscale::formats::pylit;
    let c = pylit::call("diff(file_name1='a.txt',file_name2=\"b.txt\")").unwrap();
    assert_eq!(c.keywords.len(), 2);
    let c = pylit::call("sort('final_report.pdf')").unwrap();
    assert_eq!(c.positional, [serde_json::json!("final_report.pdf")]);
    let c = pylit::call("f(x=[1, -2.5, None], y={'k': (True, False)})").unwrap();
    assert_eq!(c.keywords[0].1, serde_json::json!([1, -2.5, null]));
    assert_eq!(c.keywords[1].1, serde_json::json!({"k": [true, false]}));
    assert!(pylit::call("f(x=").is_err());
    assert!(pylit::literal("'unterminated").is_err());
}

#[test]
fn repeated_tool_lists_parse_once_and_their_errors_come_back_each_time() {
    let ctx = ParseContext {
        source: "s".into(),
        ..Default::default()
    };
    let good = r#"[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "str"}}}}}]"#;
    let bad = r#"[{"type": "function", "function": {"description": "no name"}}]"#;
    let record = |id: &str, tools: &str| {
        format!(
            r#"{{"id": "{id}", "messages": [{{"role": "user", "content": "hi"}}], "tools": {tools}}}"#
        )
    };
    for id in ["a", "b"] {
        let Ok(Parsed::Trajectory(t)) =
            formats::parse_text(Format::Openai, &ctx, &record(id, good))
        else {
            panic!("record {id} should parse");
        };
        assert_eq!(t.traj_id, format!("s/{id}"));
        assert_eq!(t.tools.len(), 1);
        assert_eq!(t.tools[0].name, "lookup");
        // The dialect type is normalised and its source kept, on a cache hit as on a miss.
        let p: serde_json::Value =
            serde_json::from_str(t.tools[0].parameters.as_deref().unwrap()).unwrap();
        assert_eq!(p["properties"]["q"]["type"], "string");
        assert_eq!(p["properties"]["q"]["x-source-type"], "str");
    }
    for id in ["c", "d"] {
        let err = formats::parse_text(Format::Openai, &ctx, &record(id, bad)).unwrap_err();
        assert_eq!(
            err, "tools[0].function.name: required string is missing",
            "record {id}"
        );
    }
    // The same list as a string holding JSON (xLAM style) and as a value give the same tools.
    let as_string = record("e", &serde_json::to_string(good).unwrap());
    let Ok(Parsed::Trajectory(e)) = formats::parse_text(Format::Openai, &ctx, &as_string) else {
        panic!("a tools list given as JSON text should parse");
    };
    assert_eq!(e.tools[0].name, "lookup");
    // Malformed records keep the usual messages.
    let err =
        formats::parse_text(Format::Openai, &ctx, r#"{"id": "f", "tools": [1, "#).unwrap_err();
    assert!(
        err.starts_with("malformed JSON: EOF while parsing"),
        "{err}"
    );
    let err = formats::parse_text(Format::Openai, &ctx, "[1, 2]").unwrap_err();
    assert_eq!(err, "record: expected an object, found array");
    let err = formats::parse_text(Format::Openai, &ctx, &record("g", "7")).unwrap_err();
    assert_eq!(err, "tools: expected a list of tools, found number");
}

/// `finish` gives every call a unique id and pairs each result with its call: by the id the
/// source gave the call when the result names one, else the first call still waiting.
#[test]
fn finish_makes_call_ids_unique_and_pairs_results_by_their_source_ids() {
    use tdscale::model::{Message, ToolCall};
    let call = |id: Option<&str>, name: &str| ToolCall {
        id: id.map(str::to_string),
        name: name.into(),
        arguments: "{}".into(),
    };
    let assistant = |calls: Vec<ToolCall>| Message {
        role: "assistant".into(),
        tool_calls: calls,
        ..Default::default()
    };
    let result = |id: Option<&str>| Message {
        role: "tool".into(),
        content: Some("ok".into()),
        tool_call_id: id.map(str::to_string),
        ..Default::default()
    };
    let mut t = Trajectory {
        traj_id: "t".into(),
        messages: vec![
            // message 0: two calls, answered in the other order
            assistant(vec![call(Some("a"), "f"), call(Some("b"), "g")]),
            result(Some("b")),
            result(Some("a")),
            // message 3: two calls without an id (`call_3_0`, `call_3_1`), and `a` again (`a#2`)
            assistant(vec![call(None, "k"), call(None, "m"), call(Some("a"), "h")]),
            // a given id is not a source's: this result takes the first call waiting
            result(Some("call_3_1")),
            // the renamed call is found by the id its source gave it
            result(Some("a")),
            // a result naming no call takes the first one waiting
            result(None),
            // a user turn ends the waiting: this result pairs with nothing
            Message::text("user", "thanks"),
            result(Some("zzz")),
        ],
        ..Default::default()
    };
    formats::finish(&mut t);
    let ids: Vec<&str> = t
        .messages
        .iter()
        .flat_map(|m| m.tool_calls.iter().map(|c| c.id.as_deref().unwrap()))
        .collect();
    assert_eq!(ids, ["a", "b", "call_3_0", "call_3_1", "a#2"]);
    let paired: Vec<(Option<&str>, Option<&str>)> = t
        .messages
        .iter()
        .filter(|m| m.role == "tool")
        .map(|m| (m.tool_call_id.as_deref(), m.name.as_deref()))
        .collect();
    assert_eq!(
        paired,
        [
            (Some("b"), Some("g")),
            (Some("a"), Some("f")),
            (Some("call_3_0"), Some("k")),
            (Some("a#2"), Some("h")),
            (Some("call_3_1"), Some("m")),
            (Some("zzz"), None),
        ]
    );
    assert_eq!(
        t.metadata["renamed_call_ids"],
        serde_json::json!({"a#2": "a"})
    );
}

/// A repeated id is renamed past every name already given, within one message and across
/// messages, and only ids given before count: a later call's id does not rename an earlier one.
#[test]
fn finish_renames_a_repeated_id_past_the_names_already_given() {
    use tdscale::model::{Message, ToolCall};
    let assistant = |ids: &[Option<&str>]| Message {
        role: "assistant".into(),
        tool_calls: ids
            .iter()
            .map(|id| ToolCall {
                id: id.map(str::to_string),
                name: "f".into(),
                arguments: "{}".into(),
            })
            .collect(),
        ..Default::default()
    };
    let mut t = Trajectory {
        traj_id: "t".into(),
        messages: vec![
            assistant(&[Some("a"), Some("a"), Some("a#3")]),
            // A user's message with a call is not an assistant's: its id is not given out.
            Message {
                tool_calls: vec![ToolCall {
                    id: Some("u".into()),
                    name: "f".into(),
                    arguments: "{}".into(),
                }],
                ..Message::text("user", "x")
            },
            assistant(&[Some("a"), Some("u"), None, Some("call_2_2")]),
        ],
        ..Default::default()
    };
    formats::finish(&mut t);
    let ids: Vec<Vec<&str>> = t
        .messages
        .iter()
        .map(|m| {
            m.tool_calls
                .iter()
                .map(|c| c.id.as_deref().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        ids,
        [
            vec!["a", "a#2", "a#3"],
            vec!["u"],
            vec!["a#4", "u", "call_2_2", "call_2_2#2"]
        ]
    );
    assert_eq!(
        t.metadata["renamed_call_ids"],
        serde_json::json!({"a#2": "a", "a#4": "a", "call_2_2#2": "call_2_2"})
    );
}
