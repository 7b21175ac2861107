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

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};

use super::args::{code_tools_arg, variadic_signature};
use super::calls::{CallFacts, CallScan, CodeTools};
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

/// A move's name: the set is fixed, so no move allocates.
type Move = &'static str;

/// The move of a run of `n` single calls: `C<n>` when one of them consumed an earlier result.
fn run_move(dep: bool, n: usize) -> Move {
    match (dep, n) {
        (false, 1) => "S1",
        (false, 2) => "S2",
        (false, 3) => "S3",
        (false, _) => "S4+",
        (true, 1) => "C1",
        (true, 2) => "C2",
        (true, 3) => "C3",
        (true, _) => "C4+",
    }
}

/// The move of an assistant message with `k` ≥ 2 calls.
fn parallel_move(k: usize) -> Move {
    match k {
        2 => "P2",
        3 => "P3",
        _ => "P4+",
    }
}

/// The walk over a row's messages: every move it emits goes to `emit` with the first and last
/// (global) message index it covers, in order, repeats included. `facts` are the row's calls
/// in order ([`CallScan::facts`]): whether a call runs code or consumes an earlier result is
/// read from them, so a caller that has them does not walk the arguments twice.
fn walk(
    v: &MessagesView,
    row: usize,
    facts: &[CallFacts],
    mut emit: impl FnMut(Move, usize, usize),
) {
    // The run of single calls in progress: (first message, last message, length, whether any
    // call of the run consumed an earlier result).
    let mut run: Option<(usize, usize, usize, bool)> = None;
    let end_run = |run: &mut Option<(usize, usize, usize, bool)>,
                   emit: &mut dyn FnMut(Move, usize, usize)| {
        if let Some((first, last, n, dep)) = run.take() {
            emit(run_move(dep, n), first, last);
        }
    };
    // The last tool message, if any: whether it is an error is needed only before a single
    // call, so it is looked at only then.
    let mut last_tool: Option<usize> = None;
    let mut next_call = 0;
    for m in v.messages(row) {
        match v.role(m) {
            "assistant" => {
                let k = v.calls(m).len();
                let call = facts.get(next_call);
                next_call += k;
                let mv = match (k, call) {
                    (0, _) if v.content(m).unwrap_or("").trim_end().ends_with('?') => "Q",
                    (0, _) => "A",
                    (1, Some(f)) if f.code => "X",
                    (1, _) if last_tool.is_some_and(|t| v.is_error(t)) => "R",
                    (1, f) => {
                        let r = run.get_or_insert((m, m, 0, false));
                        r.1 = m;
                        r.2 += 1;
                        r.3 |= f.is_some_and(|f| f.dep);
                        continue;
                    }
                    (k, _) => parallel_move(k),
                };
                end_run(&mut run, &mut emit);
                emit(mv, m, m);
            }
            "tool" => {
                end_run(&mut run, &mut emit);
                last_tool = Some(m);
            }
            _ => end_run(&mut run, &mut emit),
        }
    }
    end_run(&mut run, &mut emit);
}

/// The reasoning mode of row `row`.
pub fn mode_of(v: &MessagesView, row: usize, code: &CodeTools) -> String {
    mode_of_calls(v, row, CallScan::default().facts(v, row, code))
}

/// [`mode_of`] from the row's call facts ([`CallScan::facts`] of the same row), for a caller that
/// computed them for CAC as well.
pub fn mode_of_calls(v: &MessagesView, row: usize, facts: &[CallFacts]) -> String {
    let mut out = String::new();
    mode_of_calls_into(v, row, facts, &mut out);
    out
}

/// [`mode_of_calls`] written into `out` (cleared first), for a caller that computes it row
/// after row (ingest stores it for every trajectory).
pub fn mode_of_calls_into(v: &MessagesView, row: usize, facts: &[CallFacts], out: &mut String) {
    out.clear();
    // Room for every move there is (15): the moves seen so far, without an allocation.
    let mut seen: [Move; 16] = [""; 16];
    let mut n = 0;
    walk(v, row, facts, |mv, _, _| {
        if !seen[..n].contains(&mv) {
            if n > 0 {
                out.push('>');
            }
            out.push_str(mv);
            seen[n] = mv;
            n += 1;
        }
    });
}

/// The moves of row `row` in order of first appearance (the parts of [`mode_of`]'s string),
/// each with the indexes, relative to the row's first message, of every message that made it;
/// `facts` are the row's call facts ([`CallScan::facts`]).
///
/// ```
/// use tdscale::metrics::messages::MessagesView;
/// use tdscale::metrics::calls::call_facts;
/// use tdscale::metrics::reasoning_mode::{mode_moves, mode_of};
/// use tdscale::model::{Message, ToolCall};
/// use tdscale::store::convert::messages_array;
/// let call = |n: &str| Message::calls(vec![ToolCall { id: None, name: n.into(), arguments: "{}".into() }]);
/// let msgs = vec![
///     Message::text("user", "hi"),
///     Message::text("assistant", "Which date?"),
///     Message::text("user", "Friday"),
///     call("get_user"),
///     Message::tool_result("{}"),
///     Message::text("assistant", "Done."),
/// ];
/// let a = messages_array(std::iter::once(msgs.as_slice()));
/// let v = MessagesView::try_new(&a).unwrap();
/// assert_eq!(mode_of(&v, 0, &Default::default()), "Q>S1>A");
/// let moves = mode_moves(&v, 0, &call_facts(&v, 0, &Default::default()));
/// assert_eq!(moves, vec![("Q".into(), vec![1]), ("S1".into(), vec![3]), ("A".into(), vec![5])]);
/// ```
pub fn mode_moves(v: &MessagesView, row: usize, facts: &[CallFacts]) -> Vec<(String, Vec<usize>)> {
    let base = v.messages(row).start;
    let mut out: Vec<(String, Vec<usize>)> = vec![];
    walk(v, row, facts, |mv, first, last| {
        let at = match out.iter().position(|(m, _)| m == mv) {
            Some(i) => i,
            None => {
                out.push((mv.to_string(), vec![]));
                out.len() - 1
            }
        };
        out[at].1.extend((first..=last).map(|m| m - base));
    });
    out
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
        let mut scan = CallScan::default();
        Ok(v.text_per_row(|r| mode_of_calls(&v, r, scan.facts(&v, r, &code))))
    }
}
