//! The scalar leaves of a call's JSON arguments, read straight from the JSON text so that
//! numbers keep the spelling they have in the text (DESIGN.md: "written as in its JSON text").

/// One scalar leaf.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf<'a> {
    /// A string, unescaped.
    Str(std::borrow::Cow<'a, str>),
    /// A number, as written.
    Num(&'a str),
    Bool,
    Null,
}

/// The leaves of `text`, or `None` when it is not valid JSON (such arguments count 0 leaves).
///
/// ```
/// use tdscale::metrics::json_leaves::{leaves, Leaf};
/// let l = leaves(r#"{"a": [1.50, "x"], "b": {"c": null, "d": true}}"#).unwrap();
/// assert_eq!(l.len(), 4);
/// assert_eq!(l[0], Leaf::Num("1.50"));
/// assert!(leaves("{not json").is_none());
/// ```
pub fn leaves(text: &str) -> Option<Vec<Leaf<'_>>> {
    let mut out = vec![];
    leaves_into(text, &mut out).then_some(out)
}

/// [`leaves`] into a buffer the caller reuses: false (and `out` empty) when `text` is not
/// valid JSON.
pub fn leaves_into<'a>(text: &'a str, out: &mut Vec<Leaf<'a>>) -> bool {
    out.clear();
    let mut p = Walker {
        s: text.as_bytes(),
        text,
        i: 0,
        out: std::mem::take(out),
    };
    let valid = p.value(0).is_some() && {
        p.ws();
        p.i == p.s.len()
    };
    *out = p.out;
    if !valid {
        out.clear();
    }
    valid
}

/// The leaves of `text` with the top-level key each sits under (`{"flights": [{"date": "…"}]}`
/// gives the date under `flights`); the leaves of text that is not an object sit under `""`.
/// `None` when it is not valid JSON.
///
/// ```
/// use tdscale::metrics::json_leaves::{keyed_leaves, Leaf};
/// let l = keyed_leaves(r#"{"id": "r1", "flights": [{"n": 7}, {"n": 8}]}"#).unwrap();
/// assert_eq!(l.iter().map(|(k, _)| k.as_ref()).collect::<Vec<_>>(), ["id", "flights", "flights"]);
/// assert_eq!(l[2].1, Leaf::Num("8"));
/// assert!(keyed_leaves("{\"a\": ").is_none());
/// ```
pub fn keyed_leaves(text: &str) -> Option<Vec<(std::borrow::Cow<'_, str>, Leaf<'_>)>> {
    let mut p = Walker {
        s: text.as_bytes(),
        text,
        i: 0,
        out: vec![],
    };
    p.ws();
    if p.s.get(p.i) != Some(&b'{') {
        return leaves(text).map(|ls| {
            ls.into_iter()
                .map(|l| (std::borrow::Cow::Borrowed(""), l))
                .collect()
        });
    }
    let mut keyed = vec![];
    p.i += 1;
    p.ws();
    if p.s.get(p.i) == Some(&b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            if p.s.get(p.i) != Some(&b':') {
                return None;
            }
            p.i += 1;
            p.value(1)?;
            keyed.extend(p.out.drain(..).map(|l| (key.clone(), l)));
            p.ws();
            match p.s.get(p.i)? {
                b',' => p.i += 1,
                b'}' => {
                    p.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    p.ws();
    (p.i == p.s.len()).then_some(keyed)
}

struct Walker<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    out: Vec<Leaf<'a>>,
}

const MAX_DEPTH: usize = 512;

impl<'a> Walker<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string()?; // key: not a leaf
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    self.value(depth + 1)?;
                    self.ws();
                    match self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.s.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                let s = self.string()?;
                self.out.push(Leaf::Str(s));
                Some(())
            }
            b't' => self.word("true", Leaf::Bool),
            b'f' => self.word("false", Leaf::Bool),
            b'n' => self.word("null", Leaf::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
                    )
                {
                    self.i += 1;
                }
                let num = &self.text[start..self.i];
                num.parse::<f64>().ok()?;
                self.out.push(Leaf::Num(num));
                Some(())
            }
            _ => None,
        }
    }

    fn word(&mut self, w: &str, leaf: Leaf<'a>) -> Option<()> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            self.out.push(leaf);
            Some(())
        } else {
            None
        }
    }

    fn string(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        // Jump between quotes and backslashes: argument strings are mostly plain text.
        while let Some(k) = quote_or_backslash(&self.s[j..]) {
            j += k;
            match self.s[j] {
                b'"' => {
                    let raw = &self.text[start..j];
                    self.i = j + 1;
                    return if escaped {
                        // Let serde_json do the unescaping of the rare escaped string.
                        serde_json::from_str::<String>(&self.text[start - 1..j + 1])
                            .ok()
                            .map(std::borrow::Cow::Owned)
                    } else {
                        Some(std::borrow::Cow::Borrowed(raw))
                    };
                }
                _ => {
                    escaped = true;
                    j += 2;
                    if j > self.s.len() {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// The position of the first `"` or `\` in `s`. Most strings of arguments are a few bytes
/// long: a byte loop finds their end before a vector search would have started.
fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    const SHORT: usize = 24;
    let head = &s[..s.len().min(SHORT)];
    match head.iter().position(|&b| b == b'"' || b == b'\\') {
        Some(k) => Some(k),
        None if s.len() > SHORT => memchr::memchr2(b'"', b'\\', &s[SHORT..]).map(|k| k + SHORT),
        None => None,
    }
}
