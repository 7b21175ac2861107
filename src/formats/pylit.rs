//! A small parser for Python literals and call expressions, as they appear in BFCL ground
//! truth (`mv(source='a.pdf', destination='temp')`) and in Hermes tool calls written as Python
//! dicts (`{'name': 'f', 'arguments': {'x': True}}`). Produces JSON values.

use serde_json::{Map, Number, Value};

/// A parsed call: `name(positional..., keyword=...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub positional: Vec<Value>,
    pub keywords: Vec<(String, Value)>,
}

/// The deepest nesting of lists, dicts and calls read: deeper input is an error, not a stack
/// overflow (serde_json stops at the same depth).
pub const MAX_DEPTH: usize = 128;

struct P<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> P<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at offset {}", self.i))
    }
    fn ident(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'.'))
        {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn string(&mut self) -> Result<String, String> {
        let q = self.s[self.i];
        // Triple-quoted strings.
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.err("unterminated string");
            };
            if triple && self.s[self.i..].starts_with(&[q, q, q]) {
                self.i += 3;
                break;
            }
            if !triple && c == q {
                self.i += 1;
                break;
            }
            if c == b'\\' {
                self.i += 1;
                let Some(&e) = self.s.get(self.i) else {
                    return self.err("unterminated escape");
                };
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'0' => out.push(0),
                    // `\xHH`: a code point below 256 (what py_literal writes for control characters).
                    b'x' if self.i + 2 < self.s.len() => {
                        let hex =
                            std::str::from_utf8(&self.s[self.i + 1..self.i + 3]).unwrap_or("");
                        if let Some(ch) = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                        {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            self.i += 2;
                        } else {
                            out.extend_from_slice(b"\\x");
                        }
                    }
                    b'u' if self.i + 4 < self.s.len() => {
                        let hex =
                            std::str::from_utf8(&self.s[self.i + 1..self.i + 5]).unwrap_or("");
                        if let Some(ch) = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                        {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            self.i += 4;
                        } else {
                            out.extend_from_slice(b"\\u");
                        }
                    }
                    other => out.push(other),
                }
                self.i += 1;
                continue;
            }
            out.push(c);
            self.i += 1;
        }
        String::from_utf8(out).map_err(|_| "invalid UTF-8 in string".to_string())
    }
    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'_'
            )
        {
            self.i += 1;
        }
        let text: String = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => self.err(&format!("bad number `{text}`")),
        }
    }
    fn seq(&mut self, close: u8) -> Result<Vec<Value>, String> {
        let mut items = vec![];
        loop {
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                if self.eat(close) {
                    return Ok(items);
                }
                return self.err("expected `,` or a closing bracket");
            }
        }
    }
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(&format!("nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, String> {
        self.enter()?;
        let v = self.value_inner();
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(Value::String),
            Some(b'[') => {
                self.i += 1;
                self.seq(b']').map(Value::Array)
            }
            Some(b'(') => {
                self.i += 1;
                self.seq(b')').map(Value::Array)
            }
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                loop {
                    if self.eat(b'}') {
                        return Ok(Value::Object(m));
                    }
                    let k = match self.value()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if !self.eat(b':') {
                        return self.err("expected `:` in a dict");
                    }
                    let v = self.value()?;
                    m.insert(k, v);
                    if !self.eat(b',') && self.peek() != Some(b'}') {
                        return self.err("expected `,` or `}`");
                    }
                }
            }
            Some(b'0'..=b'9' | b'-' | b'+' | b'.') => self.number(),
            Some(_) => {
                let start = self.i;
                let Some(word) = self.ident() else {
                    return self.err("unexpected character");
                };
                match word.as_str() {
                    "True" | "true" => Ok(Value::Bool(true)),
                    "False" | "false" => Ok(Value::Bool(false)),
                    "None" | "null" => Ok(Value::Null),
                    _ if self.peek() == Some(b'(') => {
                        // A nested call (rare in ground truth): keep its source text.
                        self.i = start;
                        let c = self.call()?;
                        Ok(Value::String(format!("{}(...)", c.name)))
                    }
                    _ => Ok(Value::String(word)),
                }
            }
            None => self.err("unexpected end of input"),
        }
    }
    fn call(&mut self) -> Result<Call, String> {
        self.enter()?;
        let c = self.call_inner();
        self.depth -= 1;
        c
    }

    fn call_inner(&mut self) -> Result<Call, String> {
        let Some(name) = self.ident() else {
            return self.err("expected a function name");
        };
        if !self.eat(b'(') {
            return self.err("expected `(`");
        }
        let mut call = Call {
            name,
            positional: vec![],
            keywords: vec![],
        };
        loop {
            if self.eat(b')') {
                return Ok(call);
            }
            // `**{'from': 'USD'}`: keyword arguments whose names Python cannot spell.
            if self.peek() == Some(b'*') && self.s[self.i..].starts_with(b"**") {
                self.i += 2;
                match self.value()? {
                    Value::Object(m) => call.keywords.extend(m),
                    _ => return self.err("expected a dict after `**`"),
                }
                if !self.eat(b',') && self.peek() != Some(b')') {
                    return self.err("expected `,` or `)`");
                }
                continue;
            }
            let save = self.i;
            match self.ident() {
                Some(kw) if self.eat(b'=') => {
                    let v = self.value()?;
                    call.keywords.push((kw, v));
                }
                _ => {
                    self.i = save;
                    call.positional.push(self.value()?);
                }
            }
            if !self.eat(b',') && self.peek() != Some(b')') {
                return self.err("expected `,` or `)`");
            }
        }
    }
}

/// Parses a Python literal (dict, list, tuple, string, number, True/False/None) to JSON.
///
/// ```
/// let v = tdscale::formats::pylit::literal("{'a': [1, 2.5, True, None], \"b\": 'x'}").unwrap();
/// assert_eq!(v, serde_json::json!({"a": [1, 2.5, true, null], "b": "x"}));
/// ```
pub fn literal(text: &str) -> Result<Value, String> {
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    if p.peek().is_some() {
        return p.err("trailing text");
    }
    Ok(v)
}

/// Parses a call expression `name(args)`.
///
/// ```
/// let c = tdscale::formats::pylit::call("mv(source='a.pdf', destination='temp')").unwrap();
/// assert_eq!(c.name, "mv");
/// assert_eq!(c.keywords[1].1, serde_json::json!("temp"));
/// ```
pub fn call(text: &str) -> Result<Call, String> {
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let c = p.call()?;
    if p.peek().is_some() {
        return p.err("trailing text");
    }
    Ok(c)
}

/// JSON first, then a Python literal: how tool calls written by models are read leniently.
pub fn lenient_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text.trim()).or_else(|e| {
        literal(text.trim()).map_err(|e2| format!("not JSON ({e}) nor a Python literal ({e2})"))
    })
}
