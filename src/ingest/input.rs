//! Reading input files as a stream of raw JSON records, whatever their layout: JSON Lines, one
//! JSON array (split element by element without loading the array), or one JSON document.
//! `.gz` and `.zst` inputs are decompressed on the fly.
//!
//! Memory is bounded per record: a record longer than the limit ([`MAX_RECORD_BYTES`] unless
//! set) is skipped without being held in memory and reported with its first bytes. A read that
//! fails ends the file with one error, whatever the point it failed at. An array element that is
//! not valid JSON (a string left open, a bracket missing) does not take the elements after it
//! down with it: the splitter resynchronises on the next element that parses.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::local_file::{FileReader, FileReads};

/// The largest record read by default: 256 MiB. One record is parsed whole, so its memory is a
/// few times its size; anything larger is rejected with its first bytes instead.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// How much of an over-long or broken record is kept for the rejects file.
const KEPT_BYTES: usize = 64 << 10;

/// One raw record and where it starts.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// 1-based line of the record's first byte (for Parquet inputs: the 1-based row).
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
pub struct Counting<R> {
    pub inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Wraps a byte stream named `name` in the decompressor its extension says (`.gz`, `.zst`); a
/// stream that is not compressed is split straight out of its own buffer.
pub fn decompress(
    name: &str,
    raw: Box<dyn BufRead + Send>,
) -> std::io::Result<Box<dyn BufRead + Send>> {
    Ok(if name.ends_with(".gz") {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(raw),
        ))
    } else if name.ends_with(".zst") || name.ends_with(".zstd") {
        Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::with_buffer(raw)?,
        ))
    } else {
        raw
    })
}

/// Opens a local file, decompressing by extension, and counts the bytes read into `count`.
pub fn open(path: &Path, count: Arc<AtomicU64>) -> std::io::Result<Box<dyn BufRead + Send>> {
    let file = FileReader::open(path, FileReads::Auto, count)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    decompress(name, Box::new(file))
}

/// The file name without compression and data extensions: the default `source`.
///
/// ```
/// use tdscale::ingest::input::stem;
/// assert_eq!(stem(std::path::Path::new("runs/chat.jsonl.zst")), "chat");
/// assert_eq!(stem(std::path::Path::new("s3://b/x/train-00000-of-00002.parquet")), "train-00000-of-00002");
/// ```
pub fn stem(path: &Path) -> String {
    stem_of_name(path.file_name().and_then(|n| n.to_str()).unwrap_or("input"))
}

/// [`stem`] of a bare file name.
pub fn stem_of_name(name: &str) -> String {
    let mut name = name.to_string();
    for ext in [
        ".gz", ".zst", ".zstd", ".jsonl", ".ndjson", ".json", ".traj", ".parquet",
    ] {
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

/// A reader with bytes pushed back in front of it: the splitter re-reads the part of a broken
/// array element that holds the next good elements.
struct Pushback {
    inner: Box<dyn BufRead + Send>,
    front: Vec<u8>,
    pos: usize,
}

/// `Read` of a reader whose own buffer is the source: copies out what `fill_buf` holds.
pub(super) fn read_out_of_buffer(r: &mut impl BufRead, out: &mut [u8]) -> std::io::Result<usize> {
    let avail = r.fill_buf()?;
    let n = avail.len().min(out.len());
    out[..n].copy_from_slice(&avail[..n]);
    r.consume(n);
    Ok(n)
}

impl Read for Pushback {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        read_out_of_buffer(self, buf)
    }
}

impl BufRead for Pushback {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos < self.front.len() {
            return Ok(&self.front[self.pos..]);
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if self.pos < self.front.len() {
            self.pos += amt;
            if self.pos >= self.front.len() {
                self.front.clear();
                self.pos = 0;
            }
        } else {
            self.inner.consume(amt);
        }
    }
}

impl Pushback {
    fn push_front(&mut self, bytes: &[u8]) {
        let mut v = bytes.to_vec();
        v.extend_from_slice(&self.front[self.pos..]);
        self.front = v;
        self.pos = 0;
    }
}

/// Splits a byte stream into records.
pub struct Records {
    reader: Pushback,
    layout: Option<Layout>,
    line: usize,
    done: bool,
    max_record: usize,
    /// A first line read while detecting the layout, to be returned first.
    pending: Option<(usize, Vec<u8>)>,
    /// An over-long first line found while detecting the layout.
    pending_error: Option<SplitError>,
}

/// What reading one line gave.
enum Line {
    Eof,
    Bytes(Vec<u8>),
    /// Longer than the limit: its length and its first bytes.
    TooLong(usize, Vec<u8>),
}

impl Records {
    /// Splits `reader` with the default record limit.
    pub fn new(reader: Box<dyn BufRead + Send>) -> Self {
        Self::with_limit(reader, MAX_RECORD_BYTES)
    }

    /// Splits `reader`, rejecting records longer than `max_record` bytes.
    pub fn with_limit(reader: Box<dyn BufRead + Send>, max_record: usize) -> Self {
        Self {
            reader: Pushback {
                inner: reader,
                front: vec![],
                pos: 0,
            },
            layout: None,
            line: 1,
            done: false,
            max_record: max_record.max(1),
            pending: None,
            pending_error: None,
        }
    }

    /// The layout found so far, in words (once the first record was read).
    pub fn layout_name(&self) -> &'static str {
        match self.layout {
            None => "not read yet",
            Some(Layout::Lines) => "JSON lines",
            Some(Layout::Array) => "a JSON array",
            Some(Layout::Document) => "one JSON document",
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

    /// Reads one line (with its newline), holding at most the limit in memory.
    fn read_line(&mut self) -> std::io::Result<Line> {
        let mut out = Vec::new();
        let mut total = 0usize;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (take, end) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if total + take <= self.max_record {
                out.extend_from_slice(&buf[..take]);
            } else if out.len() < KEPT_BYTES {
                let room = KEPT_BYTES - out.len().min(KEPT_BYTES);
                out.extend_from_slice(&buf[..take.min(room)]);
            }
            total += take;
            self.reader.consume(take);
            if end {
                break;
            }
        }
        Ok(if total == 0 {
            Line::Eof
        } else if total > self.max_record {
            out.truncate(KEPT_BYTES);
            Line::TooLong(total, out)
        } else {
            Line::Bytes(out)
        })
    }

    fn too_long(&self, line: usize, len: usize, kept: Vec<u8>) -> SplitError {
        SplitError {
            line,
            reason: format!(
                "record of {len} bytes is over the limit of {} bytes (--max-record-mb); its first {} bytes are kept here",
                self.max_record,
                kept.len().min(KEPT_BYTES)
            ),
            text: String::from_utf8_lossy(&kept).into_owned(),
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
                let first = self.read_line()?;
                self.line += 1;
                let first = match first {
                    Line::Eof => {
                        self.done = true;
                        self.layout = Some(Layout::Lines);
                        return Ok(());
                    }
                    Line::TooLong(len, kept) => {
                        self.pending_error = Some(self.too_long(start, len, kept));
                        self.layout = Some(Layout::Lines);
                        return Ok(());
                    }
                    Line::Bytes(b) => b,
                };
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
        // Every byte of the input passes here: the SIMD check is several times faster than the
        // standard one, which still words the error of a line that fails it.
        if simdutf8::basic::from_utf8(&bytes).is_ok() {
            // SAFETY: the bytes were just checked to be UTF-8.
            let text = unsafe { String::from_utf8_unchecked(bytes) };
            return Ok(RawRecord { line, text });
        }
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
        if let Some(e) = self.pending_error.take() {
            return Some(Err(e));
        }
        loop {
            let (line, bytes) = match self.pending.take() {
                Some(p) => p,
                None => {
                    let l = self.line;
                    let read = self.read_line();
                    self.line += 1;
                    match read {
                        Ok(Line::Eof) => {
                            self.done = true;
                            return None;
                        }
                        Ok(Line::Bytes(b)) => (l, b),
                        Ok(Line::TooLong(len, kept)) => {
                            return Some(Err(self.too_long(l, len, kept)));
                        }
                        Err(e) => return Some(Err(self.read_error(e, vec![]))),
                    }
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
        loop {
            let first = match self.skip_ws() {
                Ok(c) => c,
                Err(e) => return Some(Err(self.read_error(e, vec![]))),
            };
            match first {
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
                    continue;
                }
                Some(b']') => {
                    self.reader.consume(1);
                    self.done = true;
                    return None;
                }
                Some(c) => return Some(self.scan_element(c)),
            }
        }
    }

    fn scan_element(&mut self, first: u8) -> Result<RawRecord, SplitError> {
        let start = self.line;
        let mut out = Vec::new();
        let mut total = 0usize;
        let (mut depth, mut in_str, mut esc) = (0i32, false, false);
        let scalar = !matches!(first, b'{' | b'[');
        let ended = loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(self.read_error(e, out)),
            };
            if buf.is_empty() {
                self.done = true;
                break false;
            }
            let mut n = 0;
            let mut end = false;
            while n < buf.len() {
                let c = buf[n];
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
            if total + n <= self.max_record {
                out.extend_from_slice(&buf[..n]);
            } else if out.len() < KEPT_BYTES {
                let room = KEPT_BYTES - out.len();
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            total += n;
            self.reader.consume(n);
            if end {
                break true;
            }
        };
        if total > self.max_record {
            out.truncate(KEPT_BYTES);
            self.line += memchr::memchr_iter(b'\n', &out).count();
            return Err(self.too_long(start, total, out));
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&out).is_ok() {
            self.line += memchr::memchr_iter(b'\n', &out).count();
            return Self::to_text(start, out);
        }
        // Not valid JSON: the scan may have run past the element's real end (a string left
        // open swallows what follows). Keep the broken part as the reject and read again from
        // the next place where a whole element parses.
        if let Some(at) = resync_point(&out) {
            let (bad, rest) = out.split_at(at);
            let bad_end = bad.iter().rposition(|&b| b == b',').unwrap_or(bad.len());
            let bad = bad[..bad_end].to_vec();
            self.line += memchr::memchr_iter(b'\n', &out[..at]).count();
            self.reader.push_front(rest);
            self.done = false;
            return Err(SplitError {
                line: start,
                reason: format!(
                    "malformed JSON: the array element starting at line {start} is not valid JSON ({})",
                    json_error(&bad)
                ),
                text: String::from_utf8_lossy(&bad).into_owned(),
            });
        }
        self.line += memchr::memchr_iter(b'\n', &out).count();
        if !ended {
            return Err(SplitError {
                line: start,
                reason: format!(
                    "truncated JSON: the array element starting at line {start} never ends"
                ),
                text: String::from_utf8_lossy(&out).into_owned(),
            });
        }
        // A complete but invalid element: the parser words the reason.
        Self::to_text(start, out)
    }

    fn whole_document(&mut self) -> Option<Result<RawRecord, SplitError>> {
        let (line, mut bytes) = self.pending.take().unwrap_or((self.line, vec![]));
        self.done = true;
        let room = (self.max_record + 1).saturating_sub(bytes.len()) as u64;
        if let Err(e) = (&mut self.reader).take(room).read_to_end(&mut bytes) {
            return Some(Err(self.read_error(e, bytes)));
        }
        if bytes.len() > self.max_record {
            // Count the rest without keeping it.
            let rest = std::io::copy(&mut self.reader, &mut std::io::sink()).unwrap_or(0);
            let len = bytes.len() + rest as usize;
            bytes.truncate(KEPT_BYTES);
            return Some(Err(self.too_long(line, len, bytes)));
        }
        Some(Self::to_text(line, bytes))
    }
}

/// The first place after the start of `bytes` where a complete JSON value of the same kind
/// begins right after a `,` and is itself followed by `,`, `]` or the end: where the next array
/// element most likely starts.
fn resync_point(bytes: &[u8]) -> Option<usize> {
    let open = *bytes.first()?;
    if !matches!(open, b'{' | b'[') {
        return None;
    }
    let mut from = 1;
    while let Some(off) = memchr::memchr(open, &bytes[from..]) {
        let at = from + off;
        from = at + 1;
        let before = bytes[..at].iter().rev().find(|b| !b.is_ascii_whitespace());
        if before != Some(&b',') {
            continue;
        }
        let mut stream =
            serde_json::Deserializer::from_slice(&bytes[at..]).into_iter::<serde::de::IgnoredAny>();
        if let Some(Ok(_)) = stream.next() {
            let after = at + stream.byte_offset();
            let next = bytes[after..].iter().find(|b| !b.is_ascii_whitespace());
            if matches!(next, None | Some(b',') | Some(b']')) {
                return Some(at);
            }
        }
    }
    None
}

fn json_error(bytes: &[u8]) -> String {
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Ok(_) => "valid".into(),
        Err(e) => e.to_string(),
    }
}

impl Iterator for Records {
    type Item = Result<RawRecord, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.layout.is_none()
            && let Err(e) = self.detect()
        {
            // The first read failed (a folder, a corrupt archive): one error, then the end.
            self.layout = Some(Layout::Lines);
            return Some(Err(self.read_error(e, vec![])));
        }
        if self.done && self.pending_error.is_none() && self.pending.is_none() {
            return None;
        }
        match self.layout.expect("detected above") {
            Layout::Lines => self.next_line(),
            Layout::Array => self.next_element(),
            Layout::Document => self.whole_document(),
        }
    }
}
