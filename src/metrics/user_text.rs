//! `user_text(messages)`: the user turns of a trajectory joined by newlines, then its tool
//! sequence: the text that near-duplicate checks (`minhash`) compare, so that two trajectories
//! asking the same thing the same way are similar whatever the assistant said.
//!
//! ```sql
//! SELECT minhash(user_text(messages)) FROM trajectories;
//! ```

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::metrics::messages::MessagesView;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UserText {
    signature: Signature,
}

impl Default for UserText {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

/// The text of row `row`.
pub fn user_text_of(v: &MessagesView, row: usize) -> String {
    let mut s = String::new();
    user_text_into(v, row, &mut s);
    s
}

/// [`user_text_of`] written into `out` (cleared first), for a caller that computes it row
/// after row (ingest hashes it for every trajectory).
pub fn user_text_into(v: &MessagesView, row: usize, out: &mut String) {
    out.clear();
    let mut first = true;
    for m in v.messages(row) {
        if v.role(m) == "user"
            && let Some(c) = v.content(m)
        {
            if !first {
                out.push('\n');
            }
            out.push_str(c);
            first = false;
        }
    }
    let mut calls = v
        .messages(row)
        .filter(|&m| v.role(m) == "assistant")
        .flat_map(|m| v.calls(m).map(|c| v.call_name(c)))
        .peekable();
    if calls.peek().is_some() {
        out.push_str("\ntools:");
        for t in calls {
            out.push(' ');
            out.push_str(t);
        }
    }
}

impl ScalarUDFImpl for UserText {
    fn name(&self) -> &str {
        "user_text"
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
        Ok(v.text_per_row(|r| user_text_of(&v, r)))
    }
}
