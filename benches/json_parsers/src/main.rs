//! How fast could the ingest read its JSON? Reads the records of a JSONL file (the tools list of
//! each replaced by a short string, as the ingest cuts out a list it has read before) six ways,
//! each over every record, and prints the median of seven rounds:
//!
//! - `serde_json` and `sonic-rs` skipping every value (the floor of scanning the text);
//! - both reading the messages into owned `String`s, through one serde visitor shaped like
//!   tdscale's `formats::openai_typed` (the ingest's path for OpenAI records);
//! - `serde_json` reading them with strings borrowed from the text where they have no escape
//!   (what parsing straight into Arrow builders could save: a `String` per field);
//! - `serde_json` into a `serde_json::Value` (the general path).
//!
//! usage: cargo run --release -- RECORDS.jsonl   (e.g. `tdscale gen g --trajectories 20000 --seed 1 --jsonl d20k.jsonl`)

use std::borrow::Cow;
use std::time::{Duration, Instant};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A text field: borrowed from the input when it has no escape (only if `OWNED` is false).
#[derive(Default)]
struct Text<'de, const OWNED: bool>(Cow<'de, str>);

impl<'de, const OWNED: bool> Deserialize<'de> for Text<'de, OWNED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const O: bool>;
        impl<'de, const O: bool> Visitor<'de> for V<O> {
            type Value = Text<'de, O>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(if O {
                    Cow::Owned(v.to_owned())
                } else {
                    Cow::Borrowed(v)
                }))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V::<OWNED>)
    }
}

/// tdscale's `Message` and `ToolCall`, with its text fields as [`Text`].
#[derive(Default)]
struct Message<'de, const O: bool> {
    role: Option<Text<'de, O>>,
    content: Option<Text<'de, O>>,
    reasoning: Option<Text<'de, O>>,
    tool_calls: Vec<Call<'de, O>>,
    tool_call_id: Option<Text<'de, O>>,
    name: Option<Text<'de, O>>,
    error: Option<bool>,
}

#[derive(Default)]
struct Call<'de, const O: bool> {
    id: Option<Text<'de, O>>,
    name: Text<'de, O>,
    arguments: Text<'de, O>,
}

/// A record: its other fields as `Value`s, its messages typed.
struct Record<'de, const O: bool> {
    fields: serde_json::Map<String, Value>,
    messages: Vec<Message<'de, O>>,
}

fn unexpected<E: de::Error>() -> E {
    E::custom("not a record of the usual shape")
}

struct RecordVisitor<const O: bool>;

impl<'de, const O: bool> Visitor<'de> for RecordVisitor<O> {
    type Value = Record<'de, O>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        let mut messages = None;
        while let Some(key) = a.next_key::<String>()? {
            if key == "messages" {
                messages = Some(a.next_value::<Messages<'de, O>>()?.0);
            } else {
                fields.insert(key, a.next_value()?);
            }
        }
        Ok(Record {
            fields,
            messages: messages.ok_or_else(unexpected)?,
        })
    }
}

struct Messages<'de, const O: bool>(Vec<Message<'de, O>>);

impl<'de, const O: bool> Deserialize<'de> for Messages<'de, O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const O: bool>;
        impl<'de, const O: bool> Visitor<'de> for V<O> {
            type Value = Vec<Message<'de, O>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of messages")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Self::Value, S::Error> {
                let mut out = Vec::with_capacity(s.size_hint().unwrap_or(8));
                while let Some(m) = s.next_element()? {
                    out.push(m);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V::<O>).map(Messages)
    }
}

impl<'de, const O: bool> Deserialize<'de> for Message<'de, O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const O: bool>;
        impl<'de, const O: bool> Visitor<'de> for V<O> {
            type Value = Message<'de, O>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut m = Message::default();
                while let Some(key) = a.next_key::<&'de str>()? {
                    match key {
                        "role" => m.role = a.next_value()?,
                        "content" => m.content = a.next_value()?,
                        "reasoning_content" => m.reasoning = a.next_value()?,
                        "tool_calls" => {
                            m.tool_calls = a.next_value::<Option<Vec<_>>>()?.unwrap_or_default()
                        }
                        "tool_call_id" => m.tool_call_id = a.next_value()?,
                        "name" => m.name = a.next_value()?,
                        "error" => m.error = a.next_value()?,
                        _ => return Err(unexpected()),
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(V::<O>)
    }
}

impl<'de, const O: bool> Deserialize<'de> for Call<'de, O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const O: bool>;
        impl<'de, const O: bool> Visitor<'de> for V<O> {
            type Value = Call<'de, O>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a tool call")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut c = Call::default();
                while let Some(key) = a.next_key::<&'de str>()? {
                    match key {
                        "id" => c.id = a.next_value()?,
                        "type" => {
                            if a.next_value::<&'de str>()? != "function" {
                                return Err(unexpected());
                            }
                        }
                        "function" => {
                            let f = a.next_value::<Function<'de, O>>()?;
                            (c.name, c.arguments) = (f.name, f.arguments);
                        }
                        _ => return Err(unexpected()),
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(V::<O>)
    }
}

#[derive(Default)]
struct Function<'de, const O: bool> {
    name: Text<'de, O>,
    arguments: Text<'de, O>,
}

impl<'de, const O: bool> Deserialize<'de> for Function<'de, O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const O: bool>;
        impl<'de, const O: bool> Visitor<'de> for V<O> {
            type Value = Function<'de, O>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a function call")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut f = Function::default();
                while let Some(key) = a.next_key::<&'de str>()? {
                    match key {
                        "name" => f.name = a.next_value()?,
                        "arguments" => f.arguments = a.next_value()?,
                        _ => return Err(unexpected()),
                    }
                }
                Ok(f)
            }
        }
        d.deserialize_map(V::<O>)
    }
}

/// What a typed read kept, so that no variant can be optimised away and all can be compared.
fn digest<const O: bool>(r: &Record<'_, O>) -> usize {
    let text = |t: &Option<Text<'_, O>>| t.as_ref().map_or(0, |t| t.0.len());
    r.fields.len()
        + r.messages
            .iter()
            .map(|m| {
                text(&m.role)
                    + text(&m.content)
                    + text(&m.reasoning)
                    + text(&m.tool_call_id)
                    + text(&m.name)
                    + usize::from(m.error.unwrap_or(false))
                    + m.tool_calls
                        .iter()
                        .map(|c| text(&c.id) + c.name.0.len() + c.arguments.0.len())
                        .sum::<usize>()
            })
            .sum::<usize>()
}

fn serde_json_typed<const O: bool>(line: &str) -> usize {
    let mut d = serde_json::Deserializer::from_str(line);
    let r = d.deserialize_map(RecordVisitor::<O>).expect("a record");
    d.end().expect("one value");
    digest(&r)
}

fn sonic_typed(line: &str) -> usize {
    let mut d = sonic_rs::Deserializer::from_str(line);
    let r = Deserializer::deserialize_map(&mut d, RecordVisitor::<true>).expect("a record");
    d.end().expect("one value");
    digest(&r)
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: json_parsers RECORDS.jsonl");
    let text = std::fs::read_to_string(&path).expect("a readable JSONL file");
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("a JSON record per line");
            if let Some(tools) = v.get_mut("tools") {
                *tools = Value::String("a known tool list".into());
            }
            v.to_string()
        })
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    println!(
        "{} records, {:.1} MB with their tool lists cut out; median of 7 rounds",
        lines.len(),
        bytes as f64 / 1e6
    );

    type Read = fn(&str) -> usize;
    let variants: [(&str, Read); 6] = [
        ("serde_json, values skipped", |l| {
            serde_json::from_str::<IgnoredAny>(l).expect("JSON");
            1
        }),
        ("sonic-rs, values skipped", |l| {
            sonic_rs::from_str::<IgnoredAny>(l).expect("JSON");
            1
        }),
        ("serde_json, typed, owned strings", serde_json_typed::<true>),
        ("sonic-rs, typed, owned strings", sonic_typed),
        (
            "serde_json, typed, borrowed strings",
            serde_json_typed::<false>,
        ),
        ("serde_json, Value", |l| {
            serde_json::from_str::<Value>(l)
                .expect("JSON")
                .as_object()
                .map_or(0, |m| m.len())
        }),
    ];
    let typed = lines
        .iter()
        .map(|l| serde_json_typed::<true>(l))
        .sum::<usize>();
    for (name, read) in variants {
        let mut times: Vec<Duration> = (0..7)
            .map(|_| {
                let start = Instant::now();
                let kept: usize = lines.iter().map(|l| read(l)).sum();
                std::hint::black_box(kept);
                start.elapsed()
            })
            .collect();
        times.sort();
        let median = times[3];
        println!(
            "{name:<38} {:>8.1} ms  {:>6.0} MB/s",
            median.as_secs_f64() * 1e3,
            bytes as f64 / 1e6 / median.as_secs_f64()
        );
    }
    // The typed reads must agree on what they read.
    let check = |read: Read| lines.iter().map(|l| read(l)).sum::<usize>();
    assert_eq!(check(sonic_typed), typed, "sonic-rs read other texts");
    assert_eq!(
        check(serde_json_typed::<false>),
        typed,
        "borrowed strings differ"
    );
}
