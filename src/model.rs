//! The canonical trajectory model: what every input format is parsed into and what the
//! `trajectories` table stores (see `store::schema` for the Arrow side).

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// One function call made by the assistant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: Option<String>,
    pub name: String,
    /// The arguments as JSON text, exactly as the source gave them when it gave text.
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Message {
    /// `user`, `assistant`, `tool` or `system` (a system message that is not the first one).
    pub role: Cow<'static, str>,
    pub content: Option<String>,
    /// Reasoning / thinking text the source kept apart from the content.
    pub reasoning: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// For `tool` messages: the id of the call this message answers.
    pub tool_call_id: Option<String>,
    /// For `tool` messages: the tool's name.
    pub name: Option<String>,
    /// For `tool` messages: the source flagged this result as an error (MCP `isError`, tau² `error`).
    pub error: Option<bool>,
}

/// A role's name as [`Message::role`] holds it: the usual roles without an allocation of their
/// own (a record has several messages, each with its role).
///
/// ```
/// use std::borrow::Cow;
/// assert!(matches!(tdscale::model::role_name("assistant"), Cow::Borrowed("assistant")));
/// assert_eq!(tdscale::model::role_name("critic"), "critic");
/// ```
pub fn role_name(name: &str) -> Cow<'static, str> {
    match name {
        "user" => Cow::Borrowed("user"),
        "assistant" => Cow::Borrowed("assistant"),
        "tool" => Cow::Borrowed("tool"),
        "system" => Cow::Borrowed("system"),
        other => Cow::Owned(other.to_string()),
    }
}

impl Message {
    /// A message with text only.
    pub fn text(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role_name(role),
            content: Some(content.into()),
            ..Default::default()
        }
    }

    /// An assistant message making these calls.
    pub fn calls(tool_calls: Vec<ToolCall>) -> Self {
        Self {
            role: "assistant".into(),
            tool_calls,
            ..Default::default()
        }
    }

    /// A tool result.
    pub fn tool_result(content: impl Into<String>) -> Self {
        Self::text("tool", content)
    }
}

/// A tool definition: name, description and a JSON Schema of its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema text of the parameters (always an object schema after normalisation).
    pub parameters: Option<String>,
}

/// The tools a trajectory offered. The records of a dataset repeat one catalog, often most of
/// their bytes, so trajectories that offered the same list share one copy (and its token count,
/// counted once); changing a shared list through `DerefMut` changes a copy of it.
///
/// ```
/// use tdscale::model::{ToolDef, ToolList};
/// let a = ToolList::from(vec![ToolDef { name: "f".into(), ..Default::default() }]);
/// assert_eq!(a.tokens(), 1);
/// let mut b = a.clone(); // the same list
/// b.push(ToolDef { name: "abcdefgh".into(), ..Default::default() }); // now a copy
/// assert_eq!((a.len(), a.tokens()), (1, 1));
/// assert_eq!((b.len(), b.tokens()), (2, 3));
/// ```
#[derive(Clone, Default)]
pub struct ToolList(Arc<SharedTools>);

#[derive(Clone, Default)]
struct SharedTools {
    defs: Vec<ToolDef>,
    tokens: OnceLock<i64>,
}

impl ToolList {
    /// The token estimate of the definitions (see [`Trajectory::num_tokens`]), counted once per
    /// shared list.
    pub fn tokens(&self) -> i64 {
        *self.0.tokens.get_or_init(|| {
            self.0
                .defs
                .iter()
                .map(|t| {
                    token_estimate(&t.name)
                        + t.description.as_deref().map_or(0, token_estimate)
                        + t.parameters.as_deref().map_or(0, token_estimate)
                })
                .sum()
        })
    }
}

impl Deref for ToolList {
    type Target = Vec<ToolDef>;
    fn deref(&self) -> &Vec<ToolDef> {
        &self.0.defs
    }
}

impl DerefMut for ToolList {
    fn deref_mut(&mut self) -> &mut Vec<ToolDef> {
        let shared = Arc::make_mut(&mut self.0);
        shared.tokens = OnceLock::new();
        &mut shared.defs
    }
}

impl From<Vec<ToolDef>> for ToolList {
    fn from(defs: Vec<ToolDef>) -> Self {
        Self(Arc::new(SharedTools {
            defs,
            tokens: OnceLock::new(),
        }))
    }
}

impl FromIterator<ToolDef> for ToolList {
    fn from_iter<I: IntoIterator<Item = ToolDef>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a ToolList {
    type Item = &'a ToolDef;
    type IntoIter = std::slice::Iter<'a, ToolDef>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.defs.iter()
    }
}

impl PartialEq for ToolList {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.defs == other.0.defs
    }
}

impl std::fmt::Debug for ToolList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.defs.fmt(f)
    }
}

impl Serialize for ToolList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.defs.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ToolList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<ToolDef>::deserialize(d).map(Self::from)
    }
}

/// ⌈characters / 4⌉, the token estimate of one text.
pub(crate) fn token_estimate(s: &str) -> i64 {
    // Most text is ASCII, whose check is much faster than counting characters.
    let chars = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    tokens_of_chars(chars)
}

/// The token estimate of a text of `chars` characters.
pub(crate) fn tokens_of_chars(chars: usize) -> i64 {
    (chars as i64 + 3) / 4
}

/// The tokens [`Trajectory::num_tokens`] counts for each message besides its texts.
pub(crate) const MESSAGE_TOKENS: i64 = 4;

/// One trajectory in canonical form; one row of `trajectories`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectory {
    pub traj_id: String,
    pub source: String,
    pub format: String,
    pub round: i32,
    pub parent_id: Option<String>,
    pub batch_id: Option<String>,
    pub cluster_id: Option<String>,
    pub domain: Option<String>,
    /// Where `domain` comes from: `source` (the data, or `--domain` at ingest), `synthesis` (the
    /// blueprint's), `catalog` or `cluster` (the tools it calls, `tdscale label --domains
    /// clusters`), `llm` (a model, `--domains llm`). Written as `source` when a domain is set
    /// and this is not.
    pub domain_source: Option<String>,
    pub reasoning_mode: Option<String>,
    pub system: Option<String>,
    pub tools: ToolList,
    pub messages: Vec<Message>,
    pub reward: Option<f64>,
    /// Everything the source carried that has no column.
    pub metadata: Map<String, Value>,
}

/// One row of the `tools` table: a tool of a catalog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogTool {
    pub tool_id: String,
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the input, as text.
    pub parameters: Option<String>,
    /// JSON Schema of the output when the catalog has one (MCP `outputSchema`, BFCL `response`).
    pub output_schema: Option<String>,
    /// The service the tool belongs to: MCP server, BFCL API class, catalog file.
    pub service: String,
    pub source: String,
    pub format: String,
    pub metadata: Map<String, Value>,
    /// The domain label the catalog gives the tool or its server, if any.
    pub domain: Option<String>,
    /// Where the definition comes from: `catalog` (a tool catalog), `trajectory` (the tools a
    /// trajectory offered) or `inferred` (learnt from the calls in the corpus).
    pub provenance: Option<String>,
    /// For an inferred definition: how many calls it was learnt from.
    pub learned_from_calls: Option<i64>,
}

impl CatalogTool {
    /// The stable id of a catalog tool: its service and name, so the same catalog ingested
    /// twice yields the same ids.
    pub fn make_id(service: &str, name: &str) -> String {
        format!("{service}/{name}")
    }
}

impl Trajectory {
    /// Number of user turns: messages with role `user`.
    pub fn num_turns(&self) -> i32 {
        self.messages.iter().filter(|m| m.role == "user").count() as i32
    }

    /// Number of tool calls over all assistant messages.
    pub fn num_tool_calls(&self) -> i32 {
        self.messages
            .iter()
            .map(|m| m.tool_calls.len())
            .sum::<usize>() as i32
    }

    /// Token estimate. The estimator is documented in the README: ⌈chars / 4⌉ for every text
    /// (system prompt, each message's content and reasoning, each call's name and arguments,
    /// each tool's name, description and parameters) plus 4 tokens of framing per message.
    ///
    /// ```
    /// use tdscale::model::{Message, Trajectory};
    /// let t = Trajectory {
    ///     messages: vec![Message { role: "user".into(), content: Some("abcdefgh".into()), ..Default::default() }],
    ///     ..Default::default()
    /// };
    /// assert_eq!(t.num_tokens(), 2 + 4);
    /// ```
    pub fn num_tokens(&self) -> i64 {
        let opt = |s: &Option<String>| s.as_deref().map_or(0, token_estimate);
        let mut n = opt(&self.system) + self.tools.tokens();
        for m in &self.messages {
            n += MESSAGE_TOKENS + opt(&m.content) + opt(&m.reasoning);
            for c in &m.tool_calls {
                n += token_estimate(&c.name) + token_estimate(&c.arguments);
            }
        }
        n
    }

    /// A content hash used as `traj_id` when the source has no id of its own: SHA-256 over the
    /// canonical JSON of the system prompt, the tools and the messages, and — when the source
    /// had any — the parts and fields of its messages kept in `metadata.message_fields` (two
    /// records that differ only in an image are two records).
    pub fn content_hash(&self) -> String {
        let mut canonical = serde_json::json!({
            "system": self.system,
            "tools": self.tools,
            "messages": self.messages,
        });
        if let Some(fields) = self.metadata.get("message_fields") {
            canonical["message_fields"] = fields.clone();
        }
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        format!("h:{}", hex::encode(&digest[..16]))
    }

    /// Sets `traj_id` from the source's own id when there is one (`<source>/<id>`), else from
    /// the content hash.
    pub fn assign_id(&mut self, source_id: Option<String>) {
        self.traj_id = match source_id {
            Some(id) => format!("{}/{}", self.source, id),
            None => self.content_hash(),
        };
    }
}

/// Renders a JSON value as the text of a source id (strings without quotes).
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
