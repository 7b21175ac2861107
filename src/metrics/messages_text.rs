//! `messages_text(messages)`: all the text of a conversation — every message's content and
//! reasoning, every call's tool name and arguments — one line per part, in order. What a
//! free-text search over trajectories looks through (the viewer's browser uses it).
//!
//! Worked example: a user asking "Where is ord_9?", an assistant calling
//! `get_order({"id": "ord_9"})` and a tool answering "shipped" give
//! `Where is ord_9?\nget_order\n{"id": "ord_9"}\nshipped`. NULL messages give NULL.
//!
//! ```sql
//! SELECT traj_id FROM trajectories WHERE strpos(lower(messages_text(messages)), 'refund') > 0;
//! ```

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::metrics::messages::MessagesView;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MessagesText {
    signature: Signature,
}

impl Default for MessagesText {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

/// Appends the text of row `row` to `out`.
///
/// ```
/// use tdscale::metrics::messages::MessagesView;
/// use tdscale::metrics::messages_text::text_of;
/// use tdscale::model::{Message, ToolCall};
/// use tdscale::store::convert::messages_array;
/// let msgs = vec![
///     Message::text("user", "Where is ord_9?"),
///     Message::calls(vec![ToolCall { id: Some("c1".into()), name: "get_order".into(), arguments: r#"{"id": "ord_9"}"#.into() }]),
///     Message::tool_result("shipped"),
/// ];
/// let a = messages_array(std::iter::once(msgs.as_slice()));
/// let mut s = String::new();
/// text_of(&MessagesView::try_new(&a).unwrap(), 0, &mut s);
/// assert_eq!(s, "Where is ord_9?\nget_order\n{\"id\": \"ord_9\"}\nshipped");
/// ```
pub fn text_of(v: &MessagesView, row: usize, out: &mut String) {
    let mut push = |s: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    };
    for m in v.messages(row) {
        if let Some(r) = v.reasoning(m) {
            push(r);
        }
        if let Some(c) = v.content(m) {
            push(c);
        }
        for c in v.calls(m) {
            push(v.call_name(c));
            push(v.call_args(c));
        }
    }
}

impl ScalarUDFImpl for MessagesText {
    fn name(&self) -> &str {
        "messages_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let v = MessagesView::try_new(&arrays[0])?;
        Ok(v.text_per_row(|r| {
            let mut text = String::new();
            text_of(&v, r, &mut text);
            text
        }))
    }
}
