//! `reasoning_mode(messages[, code_tools])`: the pattern of reasoning of a trajectory, derived
//! from the shape of its actions (DESIGN.md, "Metrics").
//!
//! Walk the assistant messages in order and emit moves:
//! - no tool call: `Q` if the trimmed content ends with `?`, else `A`;
//! - k ≥ 2 calls: `P2`, `P3` or `P4+`;
//! - a single call to a code-execution tool (`python`, `code_interpreter`, `execute_code`,
//!   `run_code`, `run_python`, or a name in `code_tools`): `X`;
//! - a single call when the last tool message before it is an error: `R`;
//! - every other single call: consecutive messages of this kind form a run of length n, which
//!   emits `C<n>` if any of its calls consumes an earlier result, else `S<n>`, with n bucketed
//!   1, 2, 3, 4+.
//!
//! User and tool messages emit nothing but end a run. The mode is the sequence of distinct moves
//! in order of first appearance joined with `>`; no assistant message gives `''`; NULL messages
//! give NULL.
//!
//! Worked example: user, assistant "Which date?" (`Q`), user, assistant calls `get_user` (run of
//! one, nothing consumed: `S1`), tool, assistant "Here it is." (`A`), assistant calls `book` with an
//! id from the result (`C1`), tool "Error: …", assistant calls `book` again (`R`) gives
//! `Q>S1>A>C1>R`.
//!
//! ```sql
//! SELECT reasoning_mode(messages) AS mode, count(*) FROM trajectories GROUP BY mode ORDER BY 2 DESC;
//! ```

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};

use super::args::{code_tools_arg, variadic_signature};
use super::calls::{CodeTools, consumes_earlier};
use super::messages::MessagesView;

/// The UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ReasoningMode {
    signature: Signature,
}

impl Default for ReasoningMode {
    fn default() -> Self {
        Self {
            signature: variadic_signature(1, 2),
        }
    }
}

fn bucket(n: usize) -> String {
    if n >= 4 { "4+".into() } else { n.to_string() }
}

/// Distinct moves in order of first appearance, and the run of single calls in progress.
#[derive(Default)]
struct Moves {
    seen: Vec<String>,
    /// (length, whether any call of the run consumed an earlier result)
    run: (usize, bool),
}

impl Moves {
    fn push(&mut self, m: String) {
        if !self.seen.contains(&m) {
            self.seen.push(m);
        }
    }

    fn end_run(&mut self) {
        if self.run.0 > 0 {
            let m = format!(
                "{}{}",
                if self.run.1 { "C" } else { "S" },
                bucket(self.run.0)
            );
            self.run = (0, false);
            self.push(m);
        }
    }
}

/// The mode of row `row`.
pub fn mode_of(v: &MessagesView, row: usize, code: &CodeTools) -> String {
    let mut moves = Moves::default();
    let mut earlier: Vec<&str> = vec![];
    let mut last_tool_error = false;
    for m in v.messages(row) {
        match v.role(m) {
            "assistant" => {
                let calls = v.calls(m);
                let mv = match calls.len() {
                    0 if v.content(m).unwrap_or("").trim_end().ends_with('?') => "Q".to_string(),
                    0 => "A".to_string(),
                    1 if code.contains(v.call_name(calls.start)) => "X".to_string(),
                    1 if last_tool_error => "R".to_string(),
                    1 => {
                        moves.run.0 += 1;
                        // One dependency is enough to mark the run; later calls need no walk.
                        if !moves.run.1 {
                            moves.run.1 = consumes_earlier(v.call_args(calls.start), &earlier);
                        }
                        continue;
                    }
                    k => format!("P{}", bucket(k)),
                };
                moves.end_run();
                moves.push(mv);
            }
            "tool" => {
                moves.end_run();
                earlier.push(v.content(m).unwrap_or(""));
                last_tool_error = v.is_error(m);
            }
            _ => moves.end_run(),
        }
    }
    moves.end_run();
    moves.seen.join(">")
}

impl ScalarUDFImpl for ReasoningMode {
    fn name(&self) -> &str {
        "reasoning_mode"
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
        let code = code_tools_arg(arrays.get(1))?;
        let out: StringArray = (0..v.len())
            .map(|r| (!v.is_null(r)).then(|| mode_of(&v, r, &code)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
