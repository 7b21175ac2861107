//! The per-call facts that `reasoning_mode`, `action_complexity` and `step_complexity` share:
//! argument leaves, whether a call consumes an earlier result, first use of a tool, parallel
//! calls and code execution (DESIGN.md, "Metrics").

use super::json_leaves::{Leaf, leaves, leaves_into};
use super::messages::{MessagesView, is_code_tool};

/// Which tools execute code: the built-in names plus any the caller adds (tools flagged as code
/// in a catalog).
#[derive(Debug, Clone, Default)]
pub struct CodeTools {
    pub extra: Vec<String>,
}

impl CodeTools {
    pub fn contains(&self, name: &str) -> bool {
        is_code_tool(name) || self.extra.iter().any(|e| e == name)
    }
}

/// Facts about one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFacts {
    /// Index of the assistant message that made it (global).
    pub message: usize,
    /// L_t: scalar leaves of the arguments (0 when they are not JSON).
    pub leaves: usize,
    /// dep_t: a string leaf of ≥ 3 characters, or a number other than 0 and 1, occurs verbatim in
    /// the content of a tool message before the call's assistant message.
    pub dep: bool,
    /// new_t: first call of this tool name in the trajectory.
    pub new: bool,
    /// par_t: its assistant message has ≥ 2 calls.
    pub par: bool,
    /// code_t: a code-execution tool.
    pub code: bool,
}

/// The text an argument leaf carries from one call to another, if it can carry one: a string of
/// at least 3 characters, or a number other than 0 and 1 as written. Booleans, null, short
/// strings and 0/1 occur everywhere by chance.
///
/// ```
/// use tdscale::metrics::{calls::carried_value, json_leaves::leaves};
/// let ls = leaves(r#"["mia_li_3668", "ab", 250, 1, true, 1.0, -0, 0.0, 10, 0.5, -1]"#).unwrap();
/// let carried: Vec<_> = ls.iter().filter_map(carried_value).collect();
/// assert_eq!(carried, ["mia_li_3668", "250", "10", "0.5", "-1"]);
/// ```
pub fn carried_value<'a>(leaf: &'a Leaf) -> Option<&'a str> {
    match leaf {
        Leaf::Str(s) if s.chars().nth(2).is_some() => Some(s),
        // An integer written without a leading zero is 0 or 1 only as "1" ("0" starts with one).
        Leaf::Num(n)
            if n.bytes().all(|b| b.is_ascii_digit())
                && n.bytes().next().is_some_and(|b| b != b'0') =>
        {
            (*n != "1").then_some(n)
        }
        Leaf::Num(n) => match n.parse::<f64>() {
            Ok(x) if x != 0.0 && x != 1.0 => Some(n),
            _ => None,
        },
        _ => None,
    }
}

/// Where a call's consumed values come from: an earlier tool message and the value found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSource {
    /// Index of the tool message, relative to the row's first message.
    pub message: usize,
    /// The argument value found verbatim in that message's content.
    pub value: String,
}

/// For every call of row `row`, in order, the earlier results its arguments consume under the
/// rule of `dep_t` (see [`CallFacts::dep`]): for each qualifying leaf, the latest tool message
/// before the call that contains it. A call has `dep_t` exactly when its list is not empty.
///
/// ```
/// use tdscale::metrics::calls::value_sources;
/// use tdscale::metrics::messages::MessagesView;
/// use tdscale::model::{Message, ToolCall};
/// use tdscale::store::convert::messages_array;
/// let call = |n: &str, a: &str| Message::calls(vec![ToolCall { id: None, name: n.into(), arguments: a.into() }]);
/// let msgs = vec![
///     Message::text("user", "my order?"),
///     call("get_user", r#"{"name": "mia"}"#),
///     Message::tool_result(r#"{"order_id": "ord_987"}"#),
///     call("get_order", r#"{"order_id": "ord_987", "verbose": 1}"#),
///     Message::tool_result("shipped"),
/// ];
/// let a = messages_array(std::iter::once(msgs.as_slice()));
/// let s = value_sources(&MessagesView::try_new(&a).unwrap(), 0);
/// assert!(s[0].is_empty());
/// assert_eq!(s[1].len(), 1);
/// assert_eq!((s[1][0].message, s[1][0].value.as_str()), (2, "ord_987"));
/// ```
pub fn value_sources(v: &MessagesView, row: usize) -> Vec<Vec<ValueSource>> {
    let base = v.messages(row).start;
    let mut out = vec![];
    let mut earlier: Vec<(usize, &str)> = vec![];
    for m in v.messages(row) {
        match v.role(m) {
            "tool" => earlier.push((m - base, v.content(m).unwrap_or(""))),
            "assistant" => {
                for c in v.calls(m) {
                    let mut found: Vec<ValueSource> = vec![];
                    for l in leaves(v.call_args(c)).unwrap_or_default() {
                        let Some(n) = carried_value(&l) else { continue };
                        if let Some((at, _)) = earlier.iter().rev().find(|(_, t)| t.contains(n))
                            && !found.iter().any(|f| f.message == *at && f.value == n)
                        {
                            found.push(ValueSource {
                                message: *at,
                                value: n.to_string(),
                            });
                        }
                    }
                    out.push(found);
                }
            }
            _ => {}
        }
    }
    out
}

/// The facts of every call of row `row`, in order.
pub fn call_facts(v: &MessagesView, row: usize, code: &CodeTools) -> Vec<CallFacts> {
    CallScan::default().facts(v, row, code).to_vec()
}

/// Below this many bytes of earlier results a carried value is searched for with `str::contains`,
/// above it with `memchr::memmem` (at 50–1,000 bytes the first took 0.2–0.6 times as long per
/// search, at 10 KB the second took 0.4 times as long).
const SHORT_TEXT: usize = 1024;

/// [`call_facts`] with its buffers kept from row to row, for the functions that scan a batch.
///
/// ```
/// use tdscale::metrics::calls::{CallScan, CodeTools, call_facts};
/// use tdscale::metrics::messages::MessagesView;
/// use tdscale::model::{Message, ToolCall};
/// use tdscale::store::convert::messages_array;
/// let call = |n: &str, a: &str| Message::calls(vec![ToolCall { id: None, name: n.into(), arguments: a.into() }]);
/// let rows = [
///     vec![call("find", r#"{"q": "mia"}"#), Message::tool_result("ord_987"), call("get", r#"{"id": "ord_987"}"#)],
///     vec![call("get", r#"{"id": "ord_987"}"#)],
/// ];
/// let a = messages_array(rows.iter().map(|r| r.as_slice()));
/// let v = MessagesView::try_new(&a).unwrap();
/// let mut scan = CallScan::default();
/// let deps: Vec<bool> = scan.facts(&v, 0, &CodeTools::default()).iter().map(|f| f.dep).collect();
/// assert_eq!(deps, [false, true]);
/// // Nothing of the first row is left over for the second.
/// assert!(!scan.facts(&v, 1, &CodeTools::default())[0].dep);
/// assert_eq!(scan.facts(&v, 0, &CodeTools::default()), call_facts(&v, 0, &CodeTools::default()));
/// ```
#[derive(Debug, Default)]
pub struct CallScan<'a> {
    facts: Vec<CallFacts>,
    leaves: Vec<Leaf<'a>>,
    seen: Vec<&'a str>,
    /// The contents of the row's tool messages so far.
    earlier: Vec<&'a str>,
    /// The same contents, each followed by a NUL byte: a carried value without NUL is found in
    /// one of them exactly when it is found here, so one search replaces one per result.
    joined: String,
}

impl<'a> CallScan<'a> {
    /// The facts of every call of row `row`, in order.
    pub fn facts(&mut self, v: &MessagesView<'a>, row: usize, code: &CodeTools) -> &[CallFacts] {
        self.facts.clear();
        self.seen.clear();
        self.earlier.clear();
        self.joined.clear();
        for m in v.messages(row) {
            match v.role(m) {
                "tool" => {
                    let c = v.content(m).unwrap_or("");
                    self.earlier.push(c);
                    self.joined.push_str(c);
                    self.joined.push('\0');
                }
                "assistant" => {
                    let calls = v.calls(m);
                    let par = calls.len() >= 2;
                    for c in calls {
                        let name = v.call_name(c);
                        let new = !self.seen.contains(&name);
                        if new {
                            self.seen.push(name);
                        }
                        // One walk of the arguments serves both facts.
                        leaves_into(v.call_args(c), &mut self.leaves);
                        let dep = !self.earlier.is_empty()
                            && self
                                .leaves
                                .iter()
                                .filter_map(carried_value)
                                .any(|needle| self.found_earlier(needle));
                        self.facts.push(CallFacts {
                            message: m,
                            leaves: self.leaves.len(),
                            dep,
                            new,
                            par,
                            code: code.contains(name),
                        });
                    }
                }
                _ => {}
            }
        }
        &self.facts
    }

    /// Whether `needle` occurs in the content of an earlier tool message.
    fn found_earlier(&self, needle: &str) -> bool {
        if needle.as_bytes().contains(&0) {
            self.earlier.iter().any(|c| c.contains(needle))
        } else if self.joined.len() < SHORT_TEXT {
            // Most rows' results are short: the standard search needs no set-up, where a
            // `memmem` searcher built for each value costs more than the search itself.
            self.joined.contains(needle)
        } else {
            memchr::memmem::find(self.joined.as_bytes(), needle.as_bytes()).is_some()
        }
    }
}

/// The weights of the step complexity c(a_t) (DESIGN.md defaults: 1, 0.5, 1, 1, 0.5, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub base: f64,
    pub leaves: f64,
    pub dep: f64,
    pub new: f64,
    pub par: f64,
    pub code: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            base: 1.0,
            leaves: 0.5,
            dep: 1.0,
            new: 1.0,
            par: 0.5,
            code: 1.0,
        }
    }
}

impl Weights {
    /// From a list of six numbers, in the order base, leaves, dep, new, par, code.
    pub fn from_slice(w: &[f64]) -> Option<Self> {
        let [base, leaves, dep, new, par, code] = <[f64; 6]>::try_from(w).ok()?;
        Some(Self {
            base,
            leaves,
            dep,
            new,
            par,
            code,
        })
    }

    /// CAC: the sum of c(a_t) over the calls, in order.
    pub fn total(&self, facts: &[CallFacts]) -> f64 {
        facts.iter().map(|f| self.step(f)).sum()
    }

    /// c(a_t) = base + leaves·ln(1 + L_t) + dep·dep_t + new·new_t + par·par_t + code·code_t.
    pub fn step(&self, f: &CallFacts) -> f64 {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        self.base
            + self.leaves * (1.0 + f.leaves as f64).ln()
            + self.dep * b(f.dep)
            + self.new * b(f.new)
            + self.par * b(f.par)
            + self.code * b(f.code)
    }
}
