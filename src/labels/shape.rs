//! A JSON Schema learnt from observed values: every value seen at a position widens the shape
//! there (its types, the fields of objects, the items of lists, what its strings look like), and
//! the shape renders as a schema that every observed value validates against.
//!
//! What a rendered schema says, for the values seen at one position:
//! - `type`: every JSON type seen (`integer` when every number was whole, else `number`);
//! - objects: `properties` (sorted by name) and `required` (the fields present in every object);
//!   lists: `items`, the shape of all their elements together;
//! - strings, with [`Learn::formats`]: `format` when every value is a `date`, a `date-time`
//!   (RFC 3339), an `email`, a `uuid` or a `uri`;
//! - other strings, with [`Learn::enums`]: `enum` when they form a small closed set (a cabin
//!   class, a yes/no): at least [`ENUM_MIN_SEEN`] values seen, at most [`ENUM_MAX`] distinct and
//!   no more than the square root of the number seen (values that repeat because a benchmark
//!   runs each task several times are not a closed set), and they are not identifiers;
//! - otherwise, with [`Learn::patterns`], a `pattern` when every value is an identifier of one
//!   shape (`ZFA04Y`, `HAT001`, `mia_li_3668`: runs of letters and digits between the same
//!   separators, with a digit somewhere, or upper-case codes like `JFK`), e.g. `^[A-Z0-9]{6}$`.
//!
//! ```
//! use tdscale::labels::shape::{Learn, Shape};
//! use serde_json::json;
//! let mut s = Shape::default();
//! for id in ["ZFA04Y", "4WQ150", "HATHAT"] {
//!     s.observe(&json!({"reservation_id": id, "when": "2024-05-15"}));
//! }
//! s.observe(&json!({"reservation_id": "Q0ZF0J", "when": "2024-06-01", "note": null}));
//! let schema = s.render(Learn::ARGUMENTS);
//! assert_eq!(schema["required"], json!(["reservation_id", "when"]));
//! assert_eq!(schema["properties"]["reservation_id"]["pattern"], "^[A-Z0-9]{6}$");
//! assert_eq!(schema["properties"]["when"]["format"], "date");
//! assert_eq!(schema["properties"]["note"]["type"], "null");
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// At most this many distinct values make an `enum`.
pub const ENUM_MAX: usize = 10;
/// An `enum` needs at least this many observed values (fewer say too little about the set).
pub const ENUM_MIN_SEEN: usize = 10;
/// Longest string that can be an identifier.
const ID_MAX_LEN: usize = 64;

/// What to learn besides types and structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learn {
    pub enums: bool,
    pub formats: bool,
    pub patterns: bool,
}

impl Learn {
    /// For a tool's arguments: everything.
    pub const ARGUMENTS: Learn = Learn {
        enums: true,
        formats: true,
        patterns: true,
    };
    /// For a tool's results: types, structure and formats.
    pub const RESULTS: Learn = Learn {
        enums: false,
        formats: true,
        patterns: false,
    };
}

/// One run of a token shape: letters and digits (with which kinds seen and the length range),
/// or one separator character.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Run {
        upper: bool,
        lower: bool,
        digit: bool,
        min: usize,
        max: usize,
    },
    Sep(char),
}

/// The pieces of an identifier-like string, or `None` when it is not one.
fn pieces(s: &str) -> Option<Vec<Piece>> {
    if s.is_empty() || s.len() > ID_MAX_LEN {
        return None;
    }
    let has_digit = s.bytes().any(|b| b.is_ascii_digit());
    let all_upper = s.bytes().all(|b| !b.is_ascii_lowercase());
    let letters = s.bytes().filter(|b| b.is_ascii_alphabetic()).count();
    // Words are not identifiers: an id has a digit, or is an upper-case code (JFK).
    if !(has_digit || (all_upper && letters >= 2)) {
        return None;
    }
    let mut out: Vec<Piece> = vec![];
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            let (u, l, d) = (
                c.is_ascii_uppercase(),
                c.is_ascii_lowercase(),
                c.is_ascii_digit(),
            );
            match out.last_mut() {
                Some(Piece::Run {
                    upper,
                    lower,
                    digit,
                    min,
                    max,
                }) => {
                    *upper |= u;
                    *lower |= l;
                    *digit |= d;
                    *min += 1;
                    *max += 1;
                }
                _ => out.push(Piece::Run {
                    upper: u,
                    lower: l,
                    digit: d,
                    min: 1,
                    max: 1,
                }),
            }
        } else if matches!(c, '_' | '-' | '.' | ':' | '/') {
            out.push(Piece::Sep(c));
        } else {
            return None;
        }
    }
    Some(out)
}

/// Merges two shapes of the same pieces, or `None` when they differ.
fn merge_pieces(a: &[Piece], b: &[Piece]) -> Option<Vec<Piece>> {
    if a.len() != b.len() {
        return None;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Piece::Sep(p), Piece::Sep(q)) if p == q => Some(Piece::Sep(*p)),
            (
                Piece::Run {
                    upper: u1,
                    lower: l1,
                    digit: d1,
                    min: n1,
                    max: m1,
                },
                Piece::Run {
                    upper: u2,
                    lower: l2,
                    digit: d2,
                    min: n2,
                    max: m2,
                },
            ) => Some(Piece::Run {
                upper: *u1 || *u2,
                lower: *l1 || *l2,
                digit: *d1 || *d2,
                min: (*n1).min(*n2),
                max: (*m1).max(*m2),
            }),
            _ => None,
        })
        .collect()
}

/// The regular expression of a token shape, anchored.
fn pattern_of(pieces: &[Piece]) -> String {
    let mut out = String::from("^");
    for p in pieces {
        match p {
            Piece::Sep(c) => {
                if matches!(c, '.' | '-' | '/') {
                    out.push('\\');
                }
                out.push(*c);
            }
            Piece::Run {
                upper,
                lower,
                digit,
                min,
                max,
            } => {
                out.push('[');
                if *upper {
                    out.push_str("A-Z");
                }
                if *lower {
                    out.push_str("a-z");
                }
                if *digit {
                    out.push_str("0-9");
                }
                out.push(']');
                if min == max {
                    out.push_str(&format!("{{{min}}}"));
                } else {
                    out.push_str(&format!("{{{min},{max}}}"));
                }
            }
        }
    }
    out.push('$');
    out
}

fn digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

fn two_digit_in(s: &[u8], lo: u32, hi: u32) -> bool {
    digits(s) && {
        let v = (s[0] - b'0') as u32 * 10 + (s[1] - b'0') as u32;
        (lo..=hi).contains(&v)
    }
}

/// `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && digits(&b[0..4])
        && b[4] == b'-'
        && two_digit_in(&b[5..7], 1, 12)
        && b[7] == b'-'
        && two_digit_in(&b[8..10], 1, 31)
}

/// RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !is_date(&s[..10]) || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let t = &b[11..];
    if t.len() < 9
        || !two_digit_in(&t[0..2], 0, 23)
        || t[2] != b':'
        || !two_digit_in(&t[3..5], 0, 59)
        || t[5] != b':'
        || !two_digit_in(&t[6..8], 0, 60)
    {
        return false;
    }
    let mut rest = &t[8..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &rest[1 + n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            two_digit_in(&[*h1, *h2], 0, 23) && two_digit_in(&[*m1, *m2], 0, 59)
        }
        _ => false,
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.chars().all(|c| c.is_ascii_graphic())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_uri(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() > 8
        && s.chars().all(|c| c.is_ascii_graphic())
}

/// Whether a string is of a format.
type FormatCheck = fn(&str) -> bool;

/// The formats a string can be checked for, in order of preference.
const FORMATS: &[(&str, FormatCheck)] = &[
    ("date", is_date),
    ("date-time", is_date_time),
    ("email", is_email),
    ("uuid", is_uuid),
    ("uri", is_uri),
];

/// What the strings at one position look like.
#[derive(Debug, Clone)]
struct Strings {
    seen: usize,
    /// Distinct values and their counts, up to `ENUM_MAX + 1` of them.
    distinct: BTreeMap<String, usize>,
    /// More than `ENUM_MAX` distinct values were seen.
    many: bool,
    /// Which of [`FORMATS`] every value so far has.
    formats: [bool; 5],
    /// The common token shape of every value so far (`None` once one is not an identifier or
    /// the shapes differ).
    shape: Option<Vec<Piece>>,
    /// Some value has a digit.
    digits: bool,
}

impl Default for Strings {
    fn default() -> Self {
        Self {
            seen: 0,
            distinct: BTreeMap::new(),
            many: false,
            formats: [true; 5],
            shape: None,
            digits: false,
        }
    }
}

impl Strings {
    fn observe(&mut self, s: &str) {
        self.shape = if self.seen == 0 {
            pieces(s)
        } else {
            self.shape
                .as_deref()
                .and_then(|a| pieces(s).and_then(|b| merge_pieces(a, &b)))
        };
        self.seen += 1;
        self.digits |= s.bytes().any(|b| b.is_ascii_digit());
        for (k, (_, check)) in FORMATS.iter().enumerate() {
            self.formats[k] &= check(s);
        }
        if !self.many {
            *self.distinct.entry(s.to_string()).or_default() += 1;
            if self.distinct.len() > ENUM_MAX {
                self.many = true;
                self.distinct.clear();
            }
        }
    }
}

/// The values observed at one position of a document.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Values seen here (a field that is present counts, whatever its value).
    seen: usize,
    nulls: usize,
    booleans: usize,
    integers: usize,
    numbers: usize,
    arrays: usize,
    objects: usize,
    strings: Strings,
    fields: BTreeMap<String, Shape>,
    items: Option<Box<Shape>>,
}

impl Shape {
    /// How many values were observed here.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Widens the shape with one value.
    pub fn observe(&mut self, v: &Value) {
        self.seen += 1;
        match v {
            Value::Null => self.nulls += 1,
            Value::Bool(_) => self.booleans += 1,
            Value::Number(n) if n.is_i64() || n.is_u64() => self.integers += 1,
            Value::Number(_) => self.numbers += 1,
            Value::String(s) => self.strings.observe(s),
            Value::Array(a) => {
                self.arrays += 1;
                let items = self.items.get_or_insert_with(Default::default);
                for x in a {
                    items.observe(x);
                }
            }
            Value::Object(m) => {
                self.objects += 1;
                for (k, x) in m {
                    self.fields.entry(k.clone()).or_default().observe(x);
                }
            }
        }
    }

    fn types(&self) -> Vec<&'static str> {
        let mut t = vec![];
        if self.objects > 0 {
            t.push("object");
        }
        if self.arrays > 0 {
            t.push("array");
        }
        if self.strings.seen > 0 {
            t.push("string");
        }
        if self.numbers > 0 {
            t.push("number");
        } else if self.integers > 0 {
            t.push("integer");
        }
        if self.booleans > 0 {
            t.push("boolean");
        }
        if self.nulls > 0 {
            t.push("null");
        }
        t
    }

    /// The schema every observed value validates against.
    pub fn render(&self, learn: Learn) -> Value {
        let mut out = Map::new();
        let types = self.types();
        match types.as_slice() {
            [] => {}
            [one] => {
                out.insert("type".into(), json!(one));
            }
            many => {
                out.insert("type".into(), json!(many));
            }
        }
        if self.objects > 0 {
            let props: Map<String, Value> = self
                .fields
                .iter()
                .map(|(k, s)| (k.clone(), s.render(learn)))
                .collect();
            let required: Vec<&String> = self
                .fields
                .iter()
                .filter(|(_, s)| s.seen == self.objects)
                .map(|(k, _)| k)
                .collect();
            out.insert("properties".into(), Value::Object(props));
            if !required.is_empty() {
                out.insert("required".into(), json!(required));
            }
        }
        if let Some(items) = self.items.as_ref().filter(|i| i.seen > 0) {
            out.insert("items".into(), items.render(learn));
        }
        let s = &self.strings;
        if s.seen > 0 {
            let only_strings = types.iter().all(|t| matches!(*t, "string" | "null"));
            let format = (0..FORMATS.len()).find(|&k| s.formats[k]);
            let identifiers = s.shape.is_some() && s.digits;
            let closed_set = !s.many
                && s.seen >= ENUM_MIN_SEEN
                && (s.distinct.len() * s.distinct.len()) <= s.seen;
            if let Some(k) = format.filter(|_| learn.formats) {
                out.insert("format".into(), json!(FORMATS[k].0));
            } else if learn.enums && only_strings && format.is_none() && !identifiers && closed_set
            {
                let mut values: Vec<Value> = s.distinct.keys().map(|k| json!(k)).collect();
                if self.nulls > 0 {
                    values.push(Value::Null);
                }
                out.insert("enum".into(), Value::Array(values));
            } else if let Some(p) = s.shape.as_ref().filter(|_| learn.patterns) {
                out.insert("pattern".into(), json!(pattern_of(p)));
            }
        }
        Value::Object(out)
    }
}

/// A string that matches `pattern` when the pattern is one of the shapes [`Shape`] writes
/// (anchored runs of `[A-Za-z0-9]` classes with `{n}` or `{m,n}` and escaped separators), so
/// that values can be generated for learnt schemas. `pick(n)` returns a number below `n`.
///
/// ```
/// use tdscale::labels::shape::sample_pattern;
/// let mut k = 0;
/// let s = sample_pattern("^[A-Z0-9]{6}$", &mut |n| { k += 7; k % n }).unwrap();
/// assert_eq!(s.len(), 6);
/// assert!(s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
/// assert!(sample_pattern("^(a|b)+$", &mut |_| 0).is_none());
/// ```
pub fn sample_pattern(pattern: &str, pick: &mut dyn FnMut(usize) -> usize) -> Option<String> {
    let p = pattern.strip_prefix('^')?.strip_suffix('$')?;
    let b = p.as_bytes();
    let mut i = 0;
    let mut out = String::new();
    while i < b.len() {
        match b[i] {
            b'[' => {
                let end = i + p[i..].find(']')?;
                let class = &p[i + 1..end];
                let mut alphabet = String::new();
                for (range, chars) in [
                    ("A-Z", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                    ("a-z", "abcdefghijklmnopqrstuvwxyz"),
                    ("0-9", "0123456789"),
                ] {
                    if class.contains(range) {
                        alphabet.push_str(chars);
                    }
                }
                if alphabet.is_empty()
                    || !class
                        .replace(['A', 'Z', 'a', 'z', '0', '9', '-'], "")
                        .is_empty()
                {
                    return None;
                }
                i = end + 1;
                let (min, max) = if b.get(i) == Some(&b'{') {
                    let close = i + p[i..].find('}')?;
                    let q = &p[i + 1..close];
                    i = close + 1;
                    match q.split_once(',') {
                        Some((m, n)) => (m.parse().ok()?, n.parse().ok()?),
                        None => {
                            let n: usize = q.parse().ok()?;
                            (n, n)
                        }
                    }
                } else {
                    (1, 1)
                };
                if max < min {
                    return None;
                }
                let len = min + pick(max - min + 1);
                let chars: Vec<char> = alphabet.chars().collect();
                for _ in 0..len {
                    out.push(chars[pick(chars.len())]);
                }
            }
            b'\\' => {
                out.push(*b.get(i + 1)? as char);
                i += 2;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'_' | b':') => {
                out.push(c as char);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}
