//! Reading input files as a stream of raw JSON records, whatever their layout: JSON Lines, one
//! JSON array (split element by element without loading the array), or one JSON document.
//! `.gz` and `.zst` inputs are decompressed on the fly.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One raw record and where it starts.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// 1-based line of the record's first byte.
    pub line: usize,
    pub text: String,
}

/// A record that could not even be split out of the file.
#[derive(Debug, Clone)]
pub struct SplitError {
    pub line: usize,
    pub reason: String,
    /// The bytes that were read for it (possibly partial), kept for the rejects file.
    pub text: String,
}

/// Counts compressed bytes as they are read, for the progress bar and the summary.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file, decompressing by extension, and counts the bytes read into `count`.
pub fn open(path: &Path, count: Arc<AtomicU64>) -> std::io::Result<Box<dyn BufRead + Send>> {
    let file = Counting {
        inner: File::open(path)?,
        count,
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    Ok(if name.ends_with(".gz") {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else if name.ends_with(".zst") || name.ends_with(".zstd") {
        Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::new(file)?,
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    })
}

/// The file name without compression and JSON extensions: the default `source`.
pub fn stem(path: &Path) -> String {
    let mut name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("input")
        .to_string();
    for ext in [".gz", ".zst", ".zstd", ".jsonl", ".ndjson", ".json"] {
        if let Some(s) = name.strip_suffix(ext) {
            name = s.to_string();
        }
    }
    name
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    Lines,
    Array,
    Document,
}

/// Splits a byte stream into records.
pub struct Records {
    reader: Box<dyn BufRead + Send>,
    layout: Option<Layout>,
    line: usize,
    done: bool,
    /// A first line read while detecting the layout, to be returned first.
    pending: Option<(usize, Vec<u8>)>,
}

impl Records {
    pub fn new(reader: Box<dyn BufRead + Send>) -> Self {
        Self {
            reader,
            layout: None,
            line: 1,
            done: false,
            pending: None,
        }
    }

    fn skip_ws(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let mut n = 0;
            // A UTF-8 byte order mark counts as white space here.
            while n < buf.len()
                && (buf[n].is_ascii_whitespace()
                    || buf[n] == 0xEF
                    || buf[n] == 0xBB
                    || buf[n] == 0xBF)
            {
                if buf[n] == b'\n' {
                    self.line += 1;
                }
                n += 1;
            }
            if n < buf.len() {
                let c = buf[n];
                self.reader.consume(n);
                return Ok(Some(c));
            }
            self.reader.consume(n);
        }
    }

    fn detect(&mut self) -> std::io::Result<()> {
        match self.skip_ws()? {
            None => {
                self.done = true;
                self.layout = Some(Layout::Lines);
            }
            Some(b'[') => {
                self.reader.consume(1);
                self.layout = Some(Layout::Array);
            }
            Some(_) => {
                let start = self.line;
                let mut first = Vec::new();
                self.reader.read_until(b'\n', &mut first)?;
                self.line += 1;
                let complete = serde_json::from_slice::<serde::de::IgnoredAny>(&first).is_ok();
                let trimmed = String::from_utf8_lossy(&first).trim().to_string();
                // A lone `{` (or an object that opens and runs on) is a pretty-printed document.
                if !complete
                    && (trimmed == "{"
                        || trimmed.ends_with('{')
                        || trimmed.ends_with('[')
                        || trimmed.ends_with(','))
                {
                    self.layout = Some(Layout::Document);
                } else {
                    self.layout = Some(Layout::Lines);
                }
                self.pending = Some((start, first));
            }
        }
        Ok(())
    }

    fn to_text(line: usize, bytes: Vec<u8>) -> Result<RawRecord, SplitError> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(RawRecord { line, text }),
            Err(e) => Err(SplitError {
                line,
                reason: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
                text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }

    fn next_line(&mut self) -> Option<Result<RawRecord, SplitError>> {
        loop {
            let (line, bytes) = match self.pending.take() {
                Some(p) => p,
                None => {
                    let mut buf = Vec::new();
                    match self.reader.read_until(b'\n', &mut buf) {
                        Ok(0) => {
                            self.done = true;
                            return None;
                        }
                        Ok(_) => {}
                        Err(e) => return Some(Err(self.read_error(e, buf))),
                    }
                    let l = self.line;
                    self.line += 1;
                    (l, buf)
                }
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Self::to_text(line, bytes));
        }
    }

    fn read_error(&mut self, e: std::io::Error, partial: Vec<u8>) -> SplitError {
        self.done = true;
        SplitError {
            line: self.line,
            reason: format!(
                "input ends early or is corrupt after line {}: {e}",
                self.line
            ),
            text: String::from_utf8_lossy(&partial).into_owned(),
        }
    }

    /// Scans one array element: tracks strings and nesting so commas inside values are kept.
    fn next_element(&mut self) -> Option<Result<RawRecord, SplitError>> {
        let first = match self.skip_ws() {
            Ok(c) => c,
            Err(e) => return Some(Err(self.read_error(e, vec![]))),
        };
        let first = match first {
            None => {
                self.done = true;
                return Some(Err(SplitError {
                    line: self.line,
                    reason: "truncated JSON array: no closing `]`".into(),
                    text: String::new(),
                }));
            }
            Some(b',') => {
                self.reader.consume(1);
                return self.next_element();
            }
            Some(b']') => {
                self.reader.consume(1);
                self.done = true;
                return None;
            }
            Some(c) => c,
        };
        let start = self.line;
        let mut out = Vec::new();
        let (mut depth, mut in_str, mut esc) = (0i32, false, false);
        let scalar = !matches!(first, b'{' | b'[');
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => return Some(Err(self.read_error(e, out))),
            };
            if buf.is_empty() {
                self.done = true;
                return Some(Err(SplitError {
                    line: start,
                    reason: format!(
                        "truncated JSON: the array element starting at line {start} never ends"
                    ),
                    text: String::from_utf8_lossy(&out).into_owned(),
                }));
            }
            let mut n = 0;
            let mut end = false;
            while n < buf.len() {
                let c = buf[n];
                if c == b'\n' {
                    self.line += 1;
                }
                if in_str {
                    if esc {
                        esc = false;
                    } else if c == b'\\' {
                        esc = true;
                    } else if c == b'"' {
                        in_str = false;
                    }
                } else if scalar && (c == b',' || c == b']') {
                    end = true;
                    break; // leave the delimiter for the next call
                } else {
                    match c {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                n += 1;
                                end = true;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                n += 1;
            }
            out.extend_from_slice(&buf[..n]);
            self.reader.consume(n);
            if end {
                return Some(Self::to_text(start, out));
            }
        }
    }

    fn whole_document(&mut self) -> Option<Result<RawRecord, SplitError>> {
        let (line, mut bytes) = self.pending.take().unwrap_or((self.line, vec![]));
        self.done = true;
        if let Err(e) = self.reader.read_to_end(&mut bytes) {
            return Some(Err(self.read_error(e, bytes)));
        }
        Some(Self::to_text(line, bytes))
    }
}

impl Iterator for Records {
    type Item = Result<RawRecord, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.layout.is_none()
            && let Err(e) = self.detect()
        {
            return Some(Err(self.read_error(e, vec![])));
        }
        if self.done {
            return None;
        }
        match self.layout.expect("detected above") {
            Layout::Lines => self.next_line(),
            Layout::Array => self.next_element(),
            Layout::Document => self.whole_document(),
        }
    }
}
