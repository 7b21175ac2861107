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
    let mut parts: Vec<&str> = vec![];
    let mut tools: Vec<&str> = vec![];
    for m in v.messages(row) {
        match v.role(m) {
            "user" => parts.extend(v.content(m)),
            "assistant" => tools.extend(v.calls(m).map(|c| v.call_name(c))),
            _ => {}
        }
    }
    // Sized once: this runs for every trajectory at ingest.
    let size = |l: &[&str]| l.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut s = String::with_capacity(size(&parts) + "\ntools:".len() + size(&tools));
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(p);
    }
    if !tools.is_empty() {
        s.push_str("\ntools:");
        for t in tools {
            s.push(' ');
            s.push_str(t);
        }
    }
    s
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
