//! The typed reader of OpenAI records (`formats::openai_typed`) gives, record for record, what
//! the general reader gives from a `serde_json::Value`: the same trajectory or the same reason.

use serde_json::{Value, json};
use tdscale::formats::{self, Format, ParseContext, openai, openai_typed};
use tdscale::generate::{GenOptions, Generator};

use crate::common::testdata;

fn ctx() -> ParseContext {
    ParseContext {
        source: "typed".into(),
        file_stem: "typed".into(),
        ..Default::default()
    }
}

/// What ingest stores for `text` (the typed reader where it applies) and what the general reader
/// gives, each as its debug text.
fn both(text: &str) -> (String, String) {
    let ctx = ctx();
    let stored = formats::parse_text(Format::Openai, &ctx, text);
    let general = serde_json::from_str::<Value>(text)
        .map_err(|e| format!("malformed JSON: {e}"))
        .and_then(|v| formats::parse(Format::Openai, &ctx, v));
    (format!("{stored:?}"), format!("{general:?}"))
}

fn assert_same(text: &str) {
    let (stored, general) = both(text);
    assert_eq!(stored, general, "the two readers differ on {text}");
}

fn record() -> Value {
    json!({
        "id": "r1",
        "domain": "travel",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in \"Paris\"?\n\u{e9}t\u{e9} \u{1f600}"},
            {"role": "assistant", "content": null, "reasoning_content": "look it up",
             "tool_calls": [{"id": "c1", "type": "function",
                             "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "name": "weather", "content": "sunny", "error": false},
            {"role": "assistant", "content": "Sunny."}
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "d",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    })
}

/// Sets the value at JSON pointer `path` (adding the key when it is new).
fn set(path: String, x: Value) -> impl FnOnce(&mut Value) {
    move |v| {
        let (parent, key) = path.rsplit_once('/').unwrap();
        match v.pointer_mut(parent).unwrap() {
            Value::Object(o) => {
                o.insert(key.into(), x);
            }
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = x,
            other => panic!("{parent} is {other}"),
        }
    }
}

/// Removes the key at JSON pointer `path`.
fn remove(path: String) -> impl FnOnce(&mut Value) {
    move |v| {
        let (parent, key) = path.rsplit_once('/').unwrap();
        v.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
    }
}

/// `record()` with `f` applied to it.
fn variant(f: impl FnOnce(&mut Value)) -> String {
    let mut v = record();
    f(&mut v);
    v.to_string()
}

#[test]
fn the_typed_reader_takes_the_usual_records_and_gives_what_the_general_reader_gives() {
    let usual = record().to_string();
    assert!(
        openai_typed::read(&usual).is_some(),
        "the usual record takes the typed path"
    );
    assert_same(&usual);
    // Every generated record (the benchmark's) takes the typed path.
    let g = Generator::new(GenOptions {
        seed: 3,
        ..Default::default()
    });
    for i in 0..300 {
        let line = serde_json::to_string(&openai::to_openai_json(&g.trajectory(i))).unwrap();
        assert!(
            openai_typed::read(&line).is_some(),
            "generated record {i} declined"
        );
        assert_same(&line);
    }
}

#[test]
fn the_typed_reader_declines_what_it_does_not_know_and_the_general_reader_words_it() {
    let m = |i: usize| format!("/messages/{i}");
    let variants: Vec<String> = vec![
        // Message fields of other types or spellings.
        variant(set(
            m(1) + "/content",
            json!([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]),
        )),
        variant(set(m(1) + "/content", json!(5))),
        variant(set(m(1) + "/content", json!(""))),
        variant(set(m(1) + "/role", json!("function"))),
        variant(set(m(1) + "/role", json!(null))),
        variant(set(m(1) + "/role", json!(7))),
        variant(remove(m(1) + "/role")),
        variant(set(m(1) + "/weight", json!(0.5))),
        variant(set(m(1) + "/reasoning", json!("r"))),
        variant(set(m(1) + "/thinking", json!("t"))),
        variant(set(m(2) + "/reasoning", json!("second spelling"))),
        variant(set(m(2) + "/reasoning_content", json!(null))),
        variant(set(m(3) + "/error", json!("boom"))),
        variant(set(m(3) + "/error", json!(null))),
        variant(set(m(3) + "/error", json!(1))),
        variant(set(m(3) + "/is_error", json!(true))),
        variant(set(m(3) + "/tool_call_id", json!(null))),
        variant(set(m(3) + "/tool_call_id", json!(12))),
        variant(set(m(3) + "/name", json!(["n"]))),
        variant(set(m(2) + "/tool_calls", json!(null))),
        variant(set(m(2) + "/tool_calls", json!([]))),
        variant(set(m(2) + "/tool_calls", json!({"id": "c1"}))),
        variant(set(
            m(2) + "/function_call",
            json!({"name": "weather", "arguments": "{}"}),
        )),
        // Calls of other shapes.
        variant(set(m(2) + "/tool_calls/0/type", json!("custom"))),
        variant(set(m(2) + "/tool_calls/0/type", json!(null))),
        variant(set(m(2) + "/tool_calls/0/id", json!(null))),
        variant(set(m(2) + "/tool_calls/0/id", json!(3))),
        variant(set(m(2) + "/tool_calls/0/index", json!(0))),
        variant(set(m(2) + "/tool_calls/0/function", json!(null))),
        variant(remove(m(2) + "/tool_calls/0/function")),
        variant(set(
            m(2) + "/tool_calls/0/function/arguments",
            json!({"city": "Paris"}),
        )),
        variant(set(m(2) + "/tool_calls/0/function/arguments", json!(null))),
        variant(set(m(2) + "/tool_calls/0/function/arguments", json!(""))),
        variant(remove(m(2) + "/tool_calls/0/function/arguments")),
        variant(set(m(2) + "/tool_calls/0/function/parameters", json!("{}"))),
        variant(set(m(2) + "/tool_calls/0/function/name", json!(1))),
        variant(remove(m(2) + "/tool_calls/0/function/name")),
        // Leading and later system prompts.
        variant(set(m(0) + "/role", json!("developer"))),
        variant(set(m(1) + "/role", json!("system"))),
        variant(set(m(4) + "/role", json!("system"))),
        // The record's own fields.
        variant(set("/system".into(), json!("Top-level prompt."))),
        variant(set(
            "/system".into(),
            json!([{"type": "text", "text": "blocks"}]),
        )),
        variant(set(
            "/tools/0/input_schema".into(),
            json!({"type": "object"}),
        )),
        variant(set("/tools".into(), json!("not a list"))),
        variant(set("/tools".into(), json!(null))),
        variant(set("/tools".into(), json!([]))),
        variant(set(
            "/tools".into(),
            json!({"name": "one", "parameters": {"type": "object"}}),
        )),
        variant(set("/tools/0".into(), json!(5))),
        variant(set("/tools/0/function/name".into(), json!(null))),
        variant(set("/tools/0/function/strict".into(), json!(true))),
        variant(set(
            "/tools/0/cache_control".into(),
            json!({"type": "ephemeral"}),
        )),
        variant(set("/metadata".into(), json!({"split": "train"}))),
        variant(set("/metadata".into(), json!("free text"))),
        variant(set("/format".into(), json!("openai"))),
        variant(set("/round".into(), json!(2))),
        variant(set("/id".into(), json!(17))),
        variant(set("/traj_id".into(), json!("mine/1"))),
        variant(set("/domain".into(), json!(5))),
        variant(set("/domain".into(), json!(null))),
        variant(set("/traj_id".into(), json!(7))),
        variant(|v| {
            for (k, x) in [
                ("source", "s"),
                ("domain_source", "llm"),
                ("reasoning_mode", "react"),
                ("cluster_id", "c3"),
                ("parent_id", "p"),
                ("batch_id", "b"),
                ("traj_id", "own/1"),
            ] {
                v[k] = json!(x);
            }
            v["reward"] = json!(0.5);
        }),
        variant(set("/reward".into(), json!("high"))),
        variant(set("/reward".into(), json!(true))),
        variant(set("/extra".into(), json!({"nested": [1, 2.5, null]}))),
        variant(set("/messages".into(), json!(null))),
        variant(set("/messages".into(), json!({"role": "user"}))),
        variant(set("/messages".into(), json!([]))),
        variant(set("/messages".into(), json!(["hi"]))),
        variant(remove("/messages".into())),
    ];
    let usual = record().to_string();
    let texts: Vec<String> = variants
        .into_iter()
        .chain([
            // Repeated keys, escaped keys, escapes in values, broken text.
            usual.replacen(
                "\"role\":\"user\"",
                "\"role\":\"user\",\"role\":\"assistant\"",
                1,
            ),
            usual.replacen("\"messages\":", "\"messages\":[],\"messages\":", 1),
            usual.replacen("\"tools\":", "\"tools\":[],\"tools\":", 1),
            usual.replacen("\"tools\":", "\"tools\":null,\"tools\":", 1),
            usual.replacen("\"tools\":[", "\"tools\": \t[", 1),
            usual.replacen(
                "\"domain\":\"travel\"",
                "\"domain\":\"travel\",\"domain\":\"air\"",
                1,
            ),
            usual.replacen(
                "\"domain\":\"travel\"",
                "\"source\":\"a\",\"domain\":\"travel\",\"source\":null,\"source\":\"b\"",
                1,
            ),
            usual.replacen("\"role\":\"user\"", "\"rol\\u0065\":\"user\"", 1),
            // Roles and top-level keys spelled with escapes, a role of no usual name.
            usual.replacen("\"role\":\"user\"", "\"role\":\"\\u0075ser\"", 1),
            usual.replacen("\"role\":\"user\"", "\"role\":\"critic\"", 1),
            usual.replacen("\"messages\":", "\"m\\u0065ssages\":", 1),
            usual.replacen("\"tools\":", "\"\\u0074ools\":", 1),
            usual.replacen("\"domain\":", "\"d\\u006fmain\":", 1),
            usual.replacen(
                "\"content\":\"Sunny.\"",
                "\"content\":\"Sun\\u006ey\\t\\\\ \\/\"",
                1,
            ),
            usual.replacen("\"content\":\"Sunny.\"", "\"content\":\"\\ud800\"", 1),
            usual[..usual.len() / 2].to_string(),
            format!("{usual} trailing"),
            format!("[{usual}]"),
            "{}".into(),
            "null".into(),
            String::new(),
        ])
        .collect();
    for text in &texts {
        assert_same(text);
    }
    // Most of them leave the typed path; a few stay on it.
    let typed = texts
        .iter()
        .filter(|t| openai_typed::read(t).is_some())
        .count();
    assert!(
        typed > 5 && typed < texts.len(),
        "{typed} of {} variants read typed",
        texts.len()
    );
}

/// A tool list read before is matched byte for byte and cut out of the record's text; only the
/// record's own `tools` may take it, never a nested key, a look-alike key or the stand-in text.
#[test]
fn a_tool_list_read_before_is_matched_not_scanned_and_only_as_the_records_own() {
    let long = "d".repeat(200);
    let tools = json!([{"type": "function", "function": {"name": "weather", "description": long,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let other = json!([{"type": "function", "function": {"name": "other", "description": long}}]);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = record();
        v["tools"] = tools.clone();
        f(&mut v);
        v.to_string()
    };
    let first = with(&|_| {});
    // A fresh thread: nothing is known yet.
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(openai_typed::read_with_known_tools(&first).is_none());
            assert_same(&first);
            let again = openai_typed::read_with_known_tools(&first).expect("the list is known now");
            assert_eq!(
                format!("{again:?}"),
                format!("{:?}", openai_typed::read(&first).unwrap())
            );
            assert_same(&first);
            // Spaced out, and with fields after the list.
            let spaced = first.replacen("\"tools\":", "\"tools\" :\n  ", 1);
            assert!(openai_typed::read_with_known_tools(&spaced).is_some());
            assert_same(&spaced);
        });
    });
    let cases = [
        // The known list nested under another field, the record's own list another one.
        with(&|v| {
            v["meta"] = json!({"tools": tools.clone()});
            v["tools"] = other.clone();
        }),
        // Nested first, then the same list as the record's own.
        with(&|v| {
            let own = v.as_object_mut().unwrap().remove("tools").unwrap();
            v["meta"] = json!({"tools": tools.clone()});
            v["tools"] = own;
        }),
        // A key that ends in `"tools` (an escaped quote before it).
        with(&|v| {
            v["say \"tools"] = tools.clone();
            v["tools"] = other.clone();
        }),
        // The stand-in's text in the record itself.
        with(&|v| v["note"] = json!("\u{0}tdscale: a known tool list")),
        with(&|v| v["tools"] = json!("\u{0}tdscale: a known tool list")),
        // No list of its own.
        with(&|v| {
            v.as_object_mut().unwrap().remove("tools");
            v["meta"] = json!({"tools": tools.clone()});
        }),
    ];
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_same(&with(&|_| {}));
            for text in &cases {
                assert_same(text);
            }
        });
    });
    // A list spelled Anthropic's way, parsed by another reader on this thread, is never offered
    // as known: the record goes to the general path, which reads that dialect. A plain list is
    // known once parsed, under its own path only.
    let anthropic = json!([{"name": "weather", "description": long,
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let text = with(&|v| v["tools"] = anthropic.clone());
    std::thread::scope(|s| {
        s.spawn(|| {
            let list = anthropic.to_string();
            formats::tool_schema::tool_defs_of_text(&list, "tools").unwrap();
            assert!(formats::tool_schema::known_tool_list_at(&list, "tools").is_none());
            let plain = tools.to_string();
            assert!(formats::tool_schema::known_tool_list_at(&plain, "tools").is_none());
            formats::tool_schema::tool_defs_of_text(&plain, "tools").unwrap();
            let (len, defs) = formats::tool_schema::known_tool_list_at(&plain, "tools").unwrap();
            assert_eq!((len, defs.0[0].name.as_str()), (plain.len(), "weather"));
            assert!(formats::tool_schema::known_tool_list_at(&plain, "tools[0]").is_none());
            assert!(openai_typed::read_with_known_tools(&text).is_none());
            assert!(openai_typed::read(&text).is_none());
        });
    });
}

#[test]
fn the_typed_reader_gives_what_the_general_reader_gives_on_every_openai_fixture() {
    let bad = std::fs::read_dir(testdata("bad/openai_parts"))
        .unwrap()
        .map(|e| e.unwrap().path());
    let files = [
        testdata("formats/openai_chat.jsonl"),
        testdata("formats/openai_parts/chat_parts.jsonl"),
    ]
    .into_iter()
    .chain(bad);
    let mut lines = 0;
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            assert_same(line);
            lines += 1;
        }
    }
    assert!(lines > 5, "{lines} lines");
}

#[test]
fn the_fields_of_a_call_that_no_column_holds_are_kept_in_metadata() {
    let text = variant(|v| {
        let call = v.pointer_mut("/messages/2/tool_calls/0").unwrap();
        call["index"] = json!(0);
        call["type"] = json!("custom");
        call["function"]["strict"] = json!(true);
        call["function"]["parameters"] = json!("{\"unused\": 1}");
    });
    assert!(
        openai_typed::read(&text).is_none(),
        "extra call fields take the general path"
    );
    assert_same(&text);
    let ctx = ctx();
    let Ok(formats::Parsed::Trajectory(t)) = formats::parse_text(Format::Openai, &ctx, &text)
    else {
        panic!("not read")
    };
    // The system prompt is split off: the assistant message is the second stored one.
    assert_eq!(
        t.messages[1].tool_calls[0].arguments,
        "{\"city\": \"Paris\"}"
    );
    assert_eq!(
        t.metadata["message_fields"]["1"]["call_fields"]["0"],
        json!({"index": 0, "function": {"strict": true, "parameters": "{\"unused\": 1}"}, "type": "custom"})
    );
    // The usual call keeps nothing apart: `type` "function" is what every call is.
    let Ok(formats::Parsed::Trajectory(t)) = formats::parse(Format::Openai, &ctx, record()) else {
        panic!("not read")
    };
    assert!(
        !t.metadata.contains_key("message_fields"),
        "{:?}",
        t.metadata
    );
}
