//! Zero-copy access to a `messages` column (`List<Struct{role, content, tool_calls, ..}>`) for
//! the scalar functions, and the shared rules every metric uses: what a tool error is, which
//! tools execute code, and how calls pair with their results.

use std::ops::Range;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, StringArray, StructArray,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::ColumnarValue;

/// A string column of any Arrow string type.
#[derive(Clone, Copy)]
pub enum StrCol<'a> {
    Utf8(&'a datafusion::arrow::array::StringArray),
    Large(&'a datafusion::arrow::array::LargeStringArray),
    View(&'a datafusion::arrow::array::StringViewArray),
    /// A NULL literal: every value is NULL.
    Null,
}

impl<'a> StrCol<'a> {
    /// Views `a` as strings, or says what it is.
    pub fn try_new(a: &'a ArrayRef, what: &str) -> Result<Self> {
        Ok(match a.data_type() {
            DataType::Utf8 => StrCol::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => StrCol::Large(a.as_string::<i64>()),
            DataType::Utf8View => StrCol::View(a.as_string_view()),
            DataType::Null => StrCol::Null,
            other => {
                return Err(DataFusionError::Execution(format!(
                    "{what} must be a string, found {other}"
                )));
            }
        })
    }

    /// The value at `i`, `None` when null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            StrCol::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::Null => None,
        }
    }
}

/// A `messages` array, downcast once per batch.
pub struct MessagesView<'a> {
    list: &'a ListArray,
    role: StrCol<'a>,
    content: Option<StrCol<'a>>,
    reasoning: Option<StrCol<'a>>,
    error: Option<&'a BooleanArray>,
    tool_call_id: Option<StrCol<'a>>,
    calls: Option<&'a ListArray>,
    call_id: Option<StrCol<'a>>,
    call_name: Option<StrCol<'a>>,
    call_args: Option<StrCol<'a>>,
}

fn field<'a>(s: &'a StructArray, name: &str) -> Option<&'a ArrayRef> {
    s.column_by_name(name)
}

const SHAPE: &str = "expected messages as List<Struct{role, content, tool_calls: List<Struct{id, name, arguments}>, ..}>";

impl<'a> MessagesView<'a> {
    /// A text per row, computed by `f` from the row number: the result of the scalar functions
    /// that turn a conversation into a string (null where the messages are null).
    pub fn text_per_row(&self, mut f: impl FnMut(usize) -> String) -> ColumnarValue {
        let out: StringArray = (0..self.len())
            .map(|r| (!self.is_null(r)).then(|| f(r)))
            .collect();
        ColumnarValue::Array(std::sync::Arc::new(out))
    }

    /// Checks the shape of `a` and downcasts its parts. A wrong type is a clear SQL error.
    pub fn try_new(a: &'a ArrayRef) -> Result<Self> {
        let DataType::List(item) = a.data_type() else {
            return Err(DataFusionError::Execution(format!(
                "{SHAPE}, found {}",
                a.data_type()
            )));
        };
        if !matches!(item.data_type(), DataType::Struct(_)) {
            return Err(DataFusionError::Execution(format!(
                "{SHAPE}, found {}",
                a.data_type()
            )));
        }
        let list = a.as_list::<i32>();
        let s = list.values().as_struct();
        let role = field(s, "role")
            .ok_or_else(|| DataFusionError::Execution(format!("{SHAPE}: no `role` field")))?;
        let role = StrCol::try_new(role, "messages.role")?;
        let content = field(s, "content")
            .map(|c| StrCol::try_new(c, "messages.content"))
            .transpose()?;
        let reasoning = field(s, "reasoning")
            .map(|c| StrCol::try_new(c, "messages.reasoning"))
            .transpose()?;
        let error = field(s, "error").and_then(|e| e.as_boolean_opt());
        let tool_call_id = field(s, "tool_call_id")
            .map(|c| StrCol::try_new(c, "messages.tool_call_id"))
            .transpose()?;
        let (mut calls, mut call_id, mut call_name, mut call_args) = (None, None, None, None);
        if let Some(tc) = field(s, "tool_calls") {
            let DataType::List(_) = tc.data_type() else {
                return Err(DataFusionError::Execution(format!(
                    "{SHAPE}: tool_calls is {}",
                    tc.data_type()
                )));
            };
            let tl = tc.as_list::<i32>();
            let cs = tl.values().as_struct_opt().ok_or_else(|| {
                DataFusionError::Execution(format!("{SHAPE}: tool_calls items are not structs"))
            })?;
            call_id = field(cs, "id")
                .map(|c| StrCol::try_new(c, "tool_calls.id"))
                .transpose()?;
            call_name = field(cs, "name")
                .map(|c| StrCol::try_new(c, "tool_calls.name"))
                .transpose()?;
            call_args = field(cs, "arguments")
                .map(|c| StrCol::try_new(c, "tool_calls.arguments"))
                .transpose()?;
            calls = Some(tl);
        }
        Ok(Self {
            list,
            role,
            content,
            reasoning,
            error,
            tool_call_id,
            calls,
            call_id,
            call_name,
            call_args,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// True when row `row` is NULL.
    pub fn is_null(&self, row: usize) -> bool {
        self.list.is_null(row)
    }

    /// The message indexes of row `row`.
    pub fn messages(&self, row: usize) -> Range<usize> {
        let o = self.list.value_offsets();
        o[row] as usize..o[row + 1] as usize
    }

    #[inline]
    pub fn role(&self, m: usize) -> &'a str {
        self.role.get(m).unwrap_or("")
    }

    #[inline]
    pub fn content(&self, m: usize) -> Option<&'a str> {
        self.content.and_then(|c| c.get(m))
    }

    #[inline]
    pub fn reasoning(&self, m: usize) -> Option<&'a str> {
        self.reasoning.and_then(|c| c.get(m))
    }

    /// The call indexes of message `m`.
    pub fn calls(&self, m: usize) -> Range<usize> {
        match self.calls {
            Some(c) if !c.is_null(m) => {
                let o = c.value_offsets();
                o[m] as usize..o[m + 1] as usize
            }
            _ => 0..0,
        }
    }

    #[inline]
    pub fn call_id(&self, c: usize) -> Option<&'a str> {
        self.call_id.and_then(|a| a.get(c))
    }

    #[inline]
    pub fn call_name(&self, c: usize) -> &'a str {
        self.call_name.and_then(|a| a.get(c)).unwrap_or("")
    }

    #[inline]
    pub fn call_args(&self, c: usize) -> &'a str {
        self.call_args.and_then(|a| a.get(c)).unwrap_or("")
    }

    /// The tool call id a `tool` message answers.
    pub fn tool_call_id_of(&self, m: usize) -> Option<&'a str> {
        self.tool_call_id.and_then(|a| a.get(m))
    }

    /// Whether tool message `m` is an error result: its `error` flag, content starting with
    /// "error" (any case, after trimming), or a JSON object with a top-level `error` key.
    pub fn is_error(&self, m: usize) -> bool {
        if let Some(e) = self.error
            && !e.is_null(m)
            && e.value(m)
        {
            return true;
        }
        self.content(m).is_some_and(is_error_text)
    }
}

/// The text rule of [`MessagesView::is_error`].
///
/// ```
/// use tdscale::metrics::messages::is_error_text;
/// assert!(is_error_text("  Error: not enough seats"));
/// assert!(is_error_text(r#"{"error": "unknown user"}"#));
/// assert!(!is_error_text(r#"{"result": "ok"}"#));
/// ```
pub fn is_error_text(content: &str) -> bool {
    let t = content.trim();
    if t.len() >= 5 && t.as_bytes()[..5].eq_ignore_ascii_case(b"error") {
        return true;
    }
    if t.starts_with('{')
        && t.contains("\"error\"")
        && let Ok(m) =
            serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(t)
    {
        return m.contains_key("error");
    }
    false
}

/// Tool names that execute code (DESIGN.md): a single call to one of these is an `X` move.
pub const CODE_TOOLS: &[&str] = &[
    "python",
    "code_interpreter",
    "execute_code",
    "run_code",
    "run_python",
];

/// True for a code-execution tool name.
pub fn is_code_tool(name: &str) -> bool {
    CODE_TOOLS.contains(&name)
}

/// One call and the message that answered it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedCall {
    /// Index of the assistant message (global, into the message values).
    pub message: usize,
    /// Index of the call (global, into the call values).
    pub call: usize,
    /// Index of the tool message holding the result, if any.
    pub result: Option<usize>,
}

/// Pairs the calls of row `row` with their results, the same way ingest does: results follow
/// the assistant message that made the calls; a result names its call by id when it can,
/// else takes the first call still waiting.
pub fn pair_calls(v: &MessagesView, row: usize) -> Vec<PairedCall> {
    let mut out: Vec<PairedCall> = vec![];
    let mut pending: Vec<usize> = vec![]; // indexes into `out`
    for m in v.messages(row) {
        match v.role(m) {
            "assistant" => {
                pending.clear();
                for c in v.calls(m) {
                    pending.push(out.len());
                    out.push(PairedCall {
                        message: m,
                        call: c,
                        result: None,
                    });
                }
            }
            "tool" => {
                let by_id = v.tool_call_id_of(m).and_then(|tid| {
                    pending
                        .iter()
                        .position(|&p| v.call_id(out[p].call) == Some(tid))
                });
                let idx = by_id.or(if pending.is_empty() { None } else { Some(0) });
                if let Some(i) = idx {
                    let p = pending.remove(i);
                    out[p].result = Some(m);
                }
            }
            _ => pending.clear(),
        }
    }
    out
}
