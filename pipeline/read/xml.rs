//! The 主治医意見書 XML reader (SPEC §4.4): one `<Ikensho>` element per record, streamed.
//!
//! ```text
//!  bytes ─► XmlSource (BufRead) ─────────────► quick_xml::Reader ─► Machine ─► RawRecords
//!           · encoding from the declaration      events               one <Ikensho> per record:
//!             (Shift_JIS | Windows-31J | UTF-8)   (well-formedness,     fields, numbered entries,
//!           · strict decoding to UTF-8            end-tag names)        raw bytes, faults
//!           · UTF-8 offsets → file offsets
//!           · raw bytes of the current record
//! ```
//!
//! quick-xml 0.42 tokenises UTF-8 only, so [`XmlSource`] sits in front of it: it reads the
//! declaration itself, decodes the file strictly by it (CP932 with `codec::cp932`, UTF-8 checked),
//! and hands quick-xml UTF-8. Every position quick-xml reports is a UTF-8 offset; the source keeps
//! a map back to file offsets (a checkpoint per run of non-ASCII characters, dropped once a record
//! is done) and the raw bytes of the record being read, so provenance and the quarantine refer to
//! the file as sent.
//!
//! Memory stays flat: the source keeps at most one record (or one event outside records), and the
//! caller drains the batch every few hundred records. `max_record_bytes` bounds what a single
//! record or event may hold, so a file without markup cannot grow quick-xml's buffer.
//!
//! What is an error of the file and what of a record:
//! - file (nothing of the file is kept): not well-formed (a truncated file included), a DOCTYPE
//!   (refused before anything in it is read: entities are never expanded), an encoding other than
//!   the three or bytes that are not in the declared encoding (XML 1.0 §4.3.3 makes these fatal),
//!   a limit exceeded, a root other than the layout's, anything but a record inside the root;
//! - record (that `<Ikensho>` is quarantined): an element the layout does not know, an element
//!   inside a data element, a data element given twice, an entry without its number (found here,
//!   as [`RecordFault`]s); missing keys, invalid dates and unknown item numbers are found when the
//!   record is mapped.
//!
//! Text is what an XML processor reports: character and predefined entity references resolved,
//! CDATA kept, line ends normalised to LF (XML 1.0 §2.11), attribute values normalised (§3.3.3).
//! A Shift_JIS file whose non-ASCII bytes are all valid UTF-8 is taken for a UTF-8 file with a
//! wrong declaration (Japanese text in real Shift_JIS is practically never valid UTF-8).

use super::{FieldSpan, ListEntry, RawRecords, RecordFault, RecordMeta};
use crate::codec::cp932;
use quick_xml::events::{BytesStart, Event};
use std::collections::VecDeque;
use std::io::{BufRead, Read};

/// Where a scalar field of a record comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlFieldSource {
    /// The text of a child element of the record (`<InsuredNo>…</InsuredNo>`).
    Element(String),
    /// An attribute of the root element, the same for every record (`insurerNo="141309"`).
    RootAttribute(String),
}

/// Where the value of a numbered entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlValue {
    Text,
    Attribute(String),
}

/// A repeated, numbered child element of the record (`<Item no="1" value="1"/>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlList {
    pub element: String,
    pub number_attribute: String,
    pub value: XmlValue,
}

/// Limits that keep a hostile or broken file from exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    pub max_depth: usize,
    pub max_attributes: usize,
    pub max_text_bytes: usize,
    pub max_record_bytes: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        XmlLimits { max_depth: 16, max_attributes: 16, max_text_bytes: 1 << 20, max_record_bytes: 8 << 20 }
    }
}

/// What the reader looks for, compiled from a mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlPlan {
    pub root: String,
    pub record: String,
    /// Scalar fields; field `i` of a record is `fields[i]`.
    pub fields: Vec<XmlFieldSource>,
    pub lists: Vec<XmlList>,
    pub limits: XmlLimits,
}

/// The encoding a file declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlEncoding {
    /// `Shift_JIS` or `Windows-31J`, decoded as CP932.
    ShiftJis,
    Utf8,
}

/// What is wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlErrorKind {
    UnsupportedEncoding(String),
    EncodingMismatch { declared: String, detail: String },
    NotWellFormed(String),
    Truncated(String),
    Doctype,
    Limit { what: &'static str, limit: usize },
    Structure(String),
}

/// A file-level XML error, with the byte offset in the file and the record it lies in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct XmlError {
    pub kind: XmlErrorKind,
    pub offset: u64,
    /// Ordinal of the `<Ikensho>` being read, if any.
    pub record_no: Option<u64>,
}

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = self.record_no {
            write!(f, "record {r}: ")?;
        }
        match &self.kind {
            XmlErrorKind::UnsupportedEncoding(e) => {
                write!(f, "the XML declaration names encoding `{e}`; Shift_JIS, Windows-31J or UTF-8 is expected")?
            }
            XmlErrorKind::EncodingMismatch { declared, detail } => write!(f, "the file declares {declared} but {detail}")?,
            XmlErrorKind::NotWellFormed(d) => write!(f, "not well-formed XML: {d}")?,
            XmlErrorKind::Truncated(d) => write!(f, "truncated XML: {d}")?,
            XmlErrorKind::Doctype => write!(f, "a DOCTYPE: document type declarations are refused (entities are never expanded)")?,
            XmlErrorKind::Limit { what, limit } => write!(f, "{what} exceeds the limit of {limit}")?,
            XmlErrorKind::Structure(d) => write!(f, "{d}")?,
        }
        write!(f, " at byte offset {}", self.offset)
    }
}

impl XmlError {
    /// A stable id of the check that failed (`file.xml_*`).
    pub fn code(&self) -> &'static str {
        match self.kind {
            XmlErrorKind::UnsupportedEncoding(_) => "file.xml_encoding",
            XmlErrorKind::EncodingMismatch { .. } => "file.xml_encoding_mismatch",
            XmlErrorKind::NotWellFormed(_) => "file.xml_not_well_formed",
            XmlErrorKind::Truncated(_) => "file.xml_truncated",
            XmlErrorKind::Doctype => "file.xml_doctype",
            XmlErrorKind::Limit { .. } => "file.xml_limit",
            XmlErrorKind::Structure(_) => "file.xml_structure",
        }
    }
}

/// Reading failed: the file could not be read, or it is not an acceptable XML file.
#[derive(Debug, thiserror::Error)]
pub enum XmlReadError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Xml(#[from] XmlError),
}

/// A run of non-ASCII characters: where it lies in the UTF-8 stream and in the file.
#[derive(Debug, Clone, Copy)]
struct Run {
    utf8_start: u64,
    utf8_end: u64,
    file_start: u64,
    file_end: u64,
}

const READ_CHUNK: usize = 1 << 16;
/// The declaration must end within this many bytes.
const MAX_DECLARATION: usize = 1024;

/// Decodes the file by its declaration and hands quick-xml UTF-8 (see the module doc).
pub struct XmlSource<R> {
    inner: R,
    encoding: Option<XmlEncoding>,
    declared: String,
    /// Read but not yet decoded (the declaration while sniffing, a lead byte cut by a chunk).
    pending: Vec<u8>,
    read_buf: Vec<u8>,
    eof: bool,
    out: Vec<u8>,
    out_pos: usize,
    /// File offset of `pending[0]`.
    file_done: u64,
    /// UTF-8 bytes produced (consumed or waiting in `out`).
    utf8_done: u64,
    /// UTF-8 bytes consumed by the parser.
    consumed: u64,
    /// Before the first run: file = base.1 + (utf8 - base.0).
    base: (u64, u64),
    runs: VecDeque<Run>,
    /// Raw file bytes from `raw_base` on.
    raw: Vec<u8>,
    raw_base: u64,
    /// UTF-8 offset from which bytes are still needed (the record being read).
    keep_from: u64,
    max_held: usize,
    /// Non-ASCII runs of a Shift_JIS file that are valid UTF-8, and those that are not.
    runs_utf8_bytes: u64,
    runs_not_utf8: u64,
    error: Option<XmlError>,
}

impl<R: Read> XmlSource<R> {
    /// The reader underneath (for a wrapper that counts what is read).
    fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn new(inner: R, max_held: usize) -> Self {
        XmlSource {
            inner,
            encoding: None,
            declared: String::new(),
            pending: Vec::new(),
            read_buf: vec![0; READ_CHUNK],
            eof: false,
            out: Vec::with_capacity(READ_CHUNK * 2),
            out_pos: 0,
            file_done: 0,
            utf8_done: 0,
            consumed: 0,
            base: (0, 0),
            runs: VecDeque::new(),
            raw: Vec::new(),
            raw_base: 0,
            keep_from: 0,
            max_held,
            runs_utf8_bytes: 0,
            runs_not_utf8: 0,
            error: None,
        }
    }

    pub fn encoding(&self) -> Option<XmlEncoding> {
        self.encoding
    }

    /// The file offset of a UTF-8 offset (exact at markup and at the start of text; inside a run
    /// of non-ASCII characters, the run's start).
    pub fn file_offset(&self, utf8: u64) -> u64 {
        let i = self.runs.partition_point(|r| r.utf8_start <= utf8);
        if i == 0 {
            return self.base.1 + utf8.saturating_sub(self.base.0);
        }
        let r = self.runs[i - 1];
        if utf8 < r.utf8_end { r.file_start } else { r.file_end + (utf8 - r.utf8_end) }
    }

    /// Nothing before `utf8` is needed any more.
    pub fn release(&mut self, utf8: u64) {
        while let Some(r) = self.runs.front().copied() {
            if r.utf8_end > utf8 {
                break;
            }
            self.base = (r.utf8_end, r.file_end);
            self.runs.pop_front();
        }
        let f = self.file_offset(utf8);
        if f > self.raw_base {
            let n = ((f - self.raw_base) as usize).min(self.raw.len());
            self.raw.drain(..n);
            self.raw_base += n as u64;
        }
        self.keep_from = utf8;
    }

    /// Bytes held for positions and raw records (what must stay flat however long the file is).
    pub fn held_bytes(&self) -> usize {
        self.raw.len() + self.pending.len() + self.runs.len() * std::mem::size_of::<Run>()
    }

    /// The raw bytes of the file between two file offsets (within what is kept).
    pub fn raw(&self, from: u64, to: u64) -> &[u8] {
        let s = from.saturating_sub(self.raw_base) as usize;
        let e = to.saturating_sub(self.raw_base) as usize;
        self.raw.get(s.min(e)..e.min(self.raw.len())).unwrap_or_default()
    }

    /// Stops the source: the parser still gets what was decoded before the fault, so the error
    /// surfaces in the record it lies in.
    fn fail(&mut self, kind: XmlErrorKind, offset: u64) {
        if self.error.is_none() {
            self.error = Some(XmlError { kind, offset, record_no: None });
        }
    }

    /// The error that stopped the source, if one did (quick-xml reports it as I/O).
    pub fn take_error(&mut self) -> Option<XmlError> {
        self.error.take()
    }

    fn mismatch(&self, detail: String) -> XmlErrorKind {
        XmlErrorKind::EncodingMismatch { declared: self.declared.clone(), detail }
    }

    /// Reads the declaration (and a byte order mark) to settle the encoding. Returns false while
    /// more bytes are needed.
    fn sniff(&mut self) -> bool {
        let p = &self.pending;
        if p.starts_with(&[0xFE, 0xFF]) || p.starts_with(&[0xFF, 0xFE]) {
            self.fail(XmlErrorKind::UnsupportedEncoding("UTF-16 (byte order mark)".into()), 0);
            return false;
        }
        if p.len() < 3 && !self.eof && b"\xEF\xBB\xBF".starts_with(p) {
            return false;
        }
        let bom = if p.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
        let body = &p[bom..];
        if body.len() < 6 && !self.eof && b"<?xml ".starts_with(body) {
            return false;
        }
        let (encoding, declared) = if body.starts_with(b"<?xml") && body.get(5).is_some_and(|b| b" \t\r\n?".contains(b)) {
            let Some(end) = body.windows(2).position(|w| w == b"?>") else {
                if body.len() > MAX_DECLARATION || self.eof {
                    self.fail(XmlErrorKind::NotWellFormed("the XML declaration is not closed".into()), bom as u64);
                    return false;
                }
                return false;
            };
            match declared_encoding(&body[..end]) {
                None => (XmlEncoding::Utf8, "UTF-8 (no encoding declared)".to_string()),
                Some(name) if name.eq_ignore_ascii_case("shift_jis") || name.eq_ignore_ascii_case("windows-31j") => {
                    (XmlEncoding::ShiftJis, name)
                }
                Some(name) if name.eq_ignore_ascii_case("utf-8") => (XmlEncoding::Utf8, name),
                Some(name) => {
                    self.fail(XmlErrorKind::UnsupportedEncoding(name), bom as u64);
                    return false;
                }
            }
        } else {
            (XmlEncoding::Utf8, "UTF-8 (no XML declaration)".to_string())
        };
        self.declared = declared;
        if bom == 3 && encoding == XmlEncoding::ShiftJis {
            let kind = self.mismatch("starts with a UTF-8 byte order mark".into());
            self.fail(kind, 0);
            return false;
        }
        self.encoding = Some(encoding);
        self.pending.drain(..bom);
        self.file_done = bom as u64;
        self.base = (0, bom as u64);
        true
    }

    /// Decodes what `pending` holds into `out`.
    fn decode(&mut self) -> Result<(), std::io::Error> {
        match self.encoding {
            Some(XmlEncoding::Utf8) | None => self.decode_utf8(),
            Some(XmlEncoding::ShiftJis) => self.decode_sjis(),
        }
    }

    fn decode_utf8(&mut self) -> Result<(), std::io::Error> {
        let (n, bad) = match std::str::from_utf8(&self.pending) {
            Ok(_) => (self.pending.len(), false),
            Err(e) => (e.valid_up_to(), e.error_len().is_some() || self.eof),
        };
        self.out.extend_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.file_done += n as u64;
        self.utf8_done += n as u64;
        if bad {
            let kind = self.mismatch("its bytes are not UTF-8".into());
            self.fail(kind, self.file_done);
        }
        Ok(())
    }

    fn push_ascii(&mut self, ascii: &[u8]) {
        self.out.extend_from_slice(ascii);
        self.utf8_done += ascii.len() as u64;
    }

    fn decode_sjis(&mut self) -> Result<(), std::io::Error> {
        let p = std::mem::take(&mut self.pending);
        let mut i = 0;
        // Bytes of `p` already written to `out`.
        let mut emitted = 0;
        let mut text = String::new();
        let mut cut = false;
        while i < p.len() {
            if p[i] < 0x80 {
                i += 1;
                continue;
            }
            self.push_ascii(&p[emitted..i]);
            emitted = i;
            let run_start = i;
            // A run of non-ASCII characters; a trail byte may lie in the ASCII range.
            while i < p.len() && p[i] >= 0x80 {
                let b = p[i];
                if (0xA1..=0xDF).contains(&b) {
                    i += 1;
                } else if cp932::is_lead_byte(b) {
                    if i + 1 >= p.len() {
                        if self.eof {
                            let kind = XmlErrorKind::Truncated("the file ends inside a double-byte character".into());
                            self.fail(kind, self.file_done + i as u64);
                            return Ok(());
                        }
                        cut = true;
                        break;
                    }
                    i += 2;
                } else {
                    let kind = self.mismatch(format!("byte 0x{b:02X} is not Shift_JIS"));
                    self.fail(kind, self.file_done + i as u64);
                    return Ok(());
                }
            }
            if i > run_start {
                text.clear();
                if let Err(e) = cp932::decode_field(&p[run_start..i], &mut text) {
                    let kind = self.mismatch(format!("its bytes are not Shift_JIS ({})", e.fault.describe()));
                    self.fail(kind, self.file_done + (run_start + e.offset) as u64);
                    return Ok(());
                }
                if std::str::from_utf8(&p[run_start..i]).is_ok() {
                    self.runs_utf8_bytes += (i - run_start) as u64;
                } else {
                    self.runs_not_utf8 += 1;
                }
                let run = Run {
                    utf8_start: self.utf8_done,
                    utf8_end: self.utf8_done + text.len() as u64,
                    file_start: self.file_done + run_start as u64,
                    file_end: self.file_done + i as u64,
                };
                self.runs.push_back(run);
                self.out.extend_from_slice(text.as_bytes());
                self.utf8_done = run.utf8_end;
                emitted = i;
            }
            if cut {
                break;
            }
        }
        if !cut {
            self.push_ascii(&p[emitted..]);
            emitted = p.len();
        }
        self.file_done += emitted as u64;
        self.pending = p[emitted..].to_vec();
        // Japanese text in UTF-8 is mostly valid double-byte Shift_JIS too: only the whole file
        // tells a UTF-8 file declared as Shift_JIS.
        if self.eof && self.runs_utf8_bytes >= 6 && self.runs_not_utf8 == 0 {
            let kind = self.mismatch("its text is UTF-8".into());
            self.fail(kind, 0);
            return Ok(());
        }
        Ok(())
    }

    fn refill(&mut self) -> Result<(), std::io::Error> {
        let n = loop {
            match self.inner.read(&mut self.read_buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.pending.extend_from_slice(&self.read_buf[..n]);
        self.raw.extend_from_slice(&self.read_buf[..n]);
        if self.encoding.is_none() && !self.sniff() {
            return Ok(());
        }
        self.decode()
    }
}

/// The value of `encoding="…"` in an XML declaration (`<?xml` up to `?>`).
fn declared_encoding(decl: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(decl).ok()?;
    let at = s.find("encoding")?;
    let rest = s[at + "encoding".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    let end = rest.find(quote)?;
    Some(rest[..end].to_string())
}

impl<R: Read> Read for XmlSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for XmlSource<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.out_pos >= self.out.len() {
            if let Some(e) = &self.error {
                return Err(std::io::Error::other(e.clone()));
            }
            if self.eof && self.pending.is_empty() {
                return Ok(&[]);
            }
            self.out.clear();
            self.out_pos = 0;
            self.refill()?;
        }
        Ok(&self.out[self.out_pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.out_pos = (self.out_pos + amt).min(self.out.len());
        self.consumed += amt as u64;
        if self.consumed.saturating_sub(self.keep_from) > self.max_held as u64 && self.error.is_none() {
            let at = self.file_offset(self.keep_from);
            self.error = Some(XmlError {
                kind: XmlErrorKind::Limit { what: "a record (or markup outside records) in bytes", limit: self.max_held },
                offset: at,
                record_no: None,
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prolog,
    Root,
    Epilog,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Field(usize),
    EntryValue(usize),
}

#[derive(Debug, Clone, Copy)]
struct Capture {
    target: Target,
    start: usize,
    offset: u64,
    depth: usize,
}

struct Rec {
    record_no: u64,
    offset: u64,
    fields: Vec<Option<(usize, usize, u64)>>,
    entries_start: usize,
    fault: Option<RecordFault>,
    capture: Option<Capture>,
}

/// Reads the records of one XML file.
pub struct XmlRecordReader<'p, R: Read> {
    plan: &'p XmlPlan,
    reader: quick_xml::Reader<XmlSource<R>>,
    buf: Vec<u8>,
    phase: Phase,
    depth: usize,
    /// Names of the open elements, for messages.
    open: Vec<String>,
    events: u64,
    root_attributes: RootAttributes,
    record_no: u64,
    rec: Option<Rec>,
    done: bool,
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The first character XML 1.0 does not allow (§2.2), if any.
fn forbidden_char(s: &str) -> Option<char> {
    s.chars().find(|&c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}')
}

impl<'p, R: Read> XmlRecordReader<'p, R> {
    pub fn new(plan: &'p XmlPlan, inner: R) -> Self {
        let mut reader = quick_xml::Reader::from_reader(XmlSource::new(inner, plan.limits.max_record_bytes));
        let c = reader.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
        c.trim_text(false);
        c.expand_empty_elements = false;
        XmlRecordReader {
            plan,
            reader,
            buf: Vec::new(),
            phase: Phase::Prolog,
            depth: 0,
            open: Vec::new(),
            events: 0,
            root_attributes: RootAttributes::default(),
            record_no: 0,
            rec: None,
            done: false,
        }
    }

    /// An attribute of the root element (after it has been read).
    /// Bytes the source holds (see [`XmlSource::held_bytes`]).
    pub fn held_bytes(&self) -> usize {
        self.reader.get_ref().held_bytes()
    }

    /// The encoding the file declares (once read).
    pub fn encoding(&self) -> Option<XmlEncoding> {
        self.reader.get_ref().encoding()
    }

    fn file_offset(&self, utf8: u64) -> u64 {
        self.reader.get_ref().file_offset(utf8)
    }

    fn error(&self, kind: XmlErrorKind, utf8: u64) -> XmlError {
        XmlError { kind, offset: self.file_offset(utf8), record_no: self.rec.as_ref().map(|r| r.record_no) }
    }

    fn quick_error(&mut self, e: quick_xml::Error) -> XmlReadError {
        use quick_xml::errors::{IllFormedError, SyntaxError};
        if let Some(mut err) = self.reader.get_mut().take_error() {
            err.record_no = self.rec.as_ref().map(|r| r.record_no);
            return XmlReadError::Xml(err);
        }
        let at = self.reader.error_position();
        let kind = match &e {
            quick_xml::Error::Io(io) => {
                return XmlReadError::Io(std::io::Error::new(io.kind(), io.to_string()));
            }
            quick_xml::Error::Syntax(
                s @ (SyntaxError::UnclosedPI
                | SyntaxError::UnclosedXmlDecl
                | SyntaxError::UnclosedSingleQuotedAttributeValue
                | SyntaxError::UnclosedDoubleQuotedAttributeValue
                | SyntaxError::UnclosedComment
                | SyntaxError::UnclosedDoctype
                | SyntaxError::UnclosedCData
                | SyntaxError::UnclosedTag),
            ) => XmlErrorKind::Truncated(s.to_string()),
            quick_xml::Error::IllFormed(IllFormedError::MissingEndTag(name)) => {
                XmlErrorKind::Truncated(format!("the file ends inside <{name}>"))
            }
            other => XmlErrorKind::NotWellFormed(other.to_string()),
        };
        XmlReadError::Xml(self.error(kind, at))
    }

    /// Reads up to `max_records` records into `out`. Returns false once the file has ended.
    pub fn next_batch(&mut self, out: &mut RawRecords, max_records: usize) -> Result<bool, XmlReadError> {
        out.exact_offsets = true;
        let until = out.records.len() + max_records.max(1);
        while out.records.len() < until {
            if self.done {
                return Ok(false);
            }
            let before = self.reader.buffer_position();
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let ev = match self.reader.read_event_into(&mut buf) {
                Ok(ev) => ev,
                Err(e) => return Err(self.quick_error(e)),
            };
            let after = self.reader.buffer_position();
            let first = self.events == 0;
            self.events += 1;
            let res = self.event(ev, first, before, after, out);
            self.buf = buf;
            res?;
            if self.rec.is_none() {
                self.reader.get_mut().release(after);
            }
        }
        Ok(!self.done)
    }

    fn event(&mut self, ev: Event<'_>, first: bool, before: u64, after: u64, out: &mut RawRecords) -> Result<(), XmlReadError> {
        match ev {
            Event::Decl(d) => {
                if !first {
                    return Err(self.error(XmlErrorKind::NotWellFormed("an XML declaration after the start".into()), before).into());
                }
                match d.version() {
                    Ok(v) if v.as_ref() == "1.0" => {}
                    _ => return Err(self.error(XmlErrorKind::NotWellFormed("the XML version is not 1.0".into()), before).into()),
                }
            }
            Event::DocType(_) => return Err(self.error(XmlErrorKind::Doctype, before).into()),
            Event::PI(_) | Event::Comment(_) => {}
            Event::Start(e) => self.start(&e, before, after, out)?,
            Event::Empty(e) => {
                self.start(&e, before, after, out)?;
                self.end(after, out)?;
            }
            Event::End(_) => self.end(after, out)?,
            Event::Text(t) => self.text(&t.xml10_content(), before, out)?,
            Event::CData(c) => self.text(&c.xml10_content(), before, out)?,
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.chars().next().unwrap_or('&'),
                        None => {
                            let kind = XmlErrorKind::NotWellFormed(format!("undeclared entity &{};", AsRef::<str>::as_ref(&r)));
                            return Err(self.error(kind, before).into());
                        }
                    },
                    Err(e) => return Err(self.error(XmlErrorKind::NotWellFormed(e.to_string()), before).into()),
                };
                let mut b = [0u8; 4];
                self.text(c.encode_utf8(&mut b), before, out)?;
            }
            Event::Eof => {
                self.done = true;
                if let Some(mut err) = self.reader.get_mut().take_error() {
                    err.record_no = self.rec.as_ref().map(|r| r.record_no);
                    return Err(err.into());
                }
                if self.phase != Phase::Epilog {
                    let what = match self.open.last() {
                        Some(name) => format!("the file ends inside <{name}>"),
                        None => format!("no <{}> root element", self.plan.root),
                    };
                    let kind = if self.open.is_empty() { XmlErrorKind::Structure(what) } else { XmlErrorKind::Truncated(what) };
                    return Err(self.error(kind, after).into());
                }
            }
        }
        Ok(())
    }

    fn fault(&mut self, element: &str, utf8: u64, detail: String) {
        let offset = self.file_offset(utf8);
        if let Some(r) = self.rec.as_mut()
            && r.fault.is_none()
        {
            r.fault = Some(RecordFault { element: element.to_string(), offset, detail });
        }
    }

    fn start(&mut self, e: &BytesStart<'_>, before: u64, after: u64, out: &mut RawRecords) -> Result<(), XmlReadError> {
        let name = AsRef::<str>::as_ref(&e.name()).to_string();
        self.depth += 1;
        if self.depth > self.plan.limits.max_depth {
            return Err(self.error(XmlErrorKind::Limit { what: "element depth", limit: self.plan.limits.max_depth }, before).into());
        }
        self.open.push(name);
        let name = self.open.last().map(String::as_str).unwrap_or_default();
        let plan = self.plan;
        // Attributes are checked (well-formed, no duplicates, counted) on every element.
        let mut attrs: Vec<(String, String)> = Vec::new();
        let mut count = 0;
        for a in e.attributes() {
            let a = match a {
                Ok(a) => a,
                Err(err) => return Err(self.error(XmlErrorKind::NotWellFormed(err.to_string()), before).into()),
            };
            count += 1;
            if count > plan.limits.max_attributes {
                let kind = XmlErrorKind::Limit { what: "the number of attributes of an element", limit: plan.limits.max_attributes };
                return Err(self.error(kind, before).into());
            }
            let value = match a.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(v) => v,
                Err(err) => return Err(self.error(XmlErrorKind::NotWellFormed(err.to_string()), before).into()),
            };
            if let Some(c) = forbidden_char(&value) {
                let kind = XmlErrorKind::NotWellFormed(format!("character U+{:04X} is not allowed in XML", c as u32));
                return Err(self.error(kind, before).into());
            }
            attrs.push((AsRef::<str>::as_ref(&a.key).to_string(), value.into_owned()));
        }
        match self.phase {
            Phase::Prolog => {
                if name != plan.root {
                    let kind = XmlErrorKind::Structure(format!("the root element is <{name}>, the layout expects <{}>", plan.root));
                    return Err(self.error(kind, before).into());
                }
                self.root_attributes = RootAttributes(attrs);
                self.phase = Phase::Root;
                return Ok(());
            }
            Phase::Epilog => {
                return Err(self.error(XmlErrorKind::NotWellFormed("a second root element".into()), before).into());
            }
            Phase::Root => {}
        }
        let text_at = self.file_offset(after);
        let element_at = self.file_offset(before);
        let Some(rec) = self.rec.as_mut() else {
            if self.depth == 2 && name == plan.record {
                self.record_no += 1;
                self.reader.get_mut().release(before);
                let offset = self.file_offset(before);
                self.rec = Some(Rec {
                    record_no: self.record_no,
                    offset,
                    fields: vec![None; plan.fields.len()],
                    entries_start: out.entries.len(),
                    fault: None,
                    capture: None,
                });
                return Ok(());
            }
            let kind = XmlErrorKind::Structure(format!("element <{name}> is not allowed in <{}>; only <{}> is", plan.root, plan.record));
            return Err(self.error(kind, before).into());
        };
        if let Some(c) = rec.capture {
            let inside = match c.target {
                Target::Field(i) => match &plan.fields[i] {
                    XmlFieldSource::Element(n) => n.clone(),
                    XmlFieldSource::RootAttribute(n) => n.clone(),
                },
                Target::EntryValue(k) => {
                    out.entries.get(k).and_then(|e| plan.lists.get(e.list)).map(|l| l.element.clone()).unwrap_or_default()
                }
            };
            let name = name.to_string();
            self.fault(&name, before, format!("element <{name}> inside <{inside}>"));
            return Ok(());
        }
        if self.depth != 3 {
            // Inside an element already reported as misplaced.
            return Ok(());
        }
        if let Some(i) = plan.fields.iter().position(|f| matches!(f, XmlFieldSource::Element(n) if n == name)) {
            if rec.fields[i].is_some() {
                let name = name.to_string();
                self.fault(&name, before, format!("element <{name}> appears twice"));
                return Ok(());
            }
            rec.capture = Some(Capture { target: Target::Field(i), start: out.data.len(), offset: text_at, depth: self.depth });
            return Ok(());
        }
        if let Some(li) = plan.lists.iter().position(|l| l.element == name) {
            let list = &plan.lists[li];
            let Some((_, number)) = attrs.iter().find(|(k, _)| *k == list.number_attribute) else {
                let name = name.to_string();
                self.fault(&name, before, format!("element <{name}> without its `{}` attribute", list.number_attribute));
                return Ok(());
            };
            let offset = element_at;
            let ns = out.data.len();
            out.data.extend_from_slice(number.as_bytes());
            let number = (ns, out.data.len());
            let value = match &list.value {
                XmlValue::Attribute(a) => attrs.iter().find(|(k, _)| k == a).map(|(_, v)| {
                    let vs = out.data.len();
                    out.data.extend_from_slice(v.as_bytes());
                    (vs, out.data.len())
                }),
                XmlValue::Text => None,
            };
            out.entries.push(ListEntry { list: li, number, value, offset });
            if list.value == XmlValue::Text {
                rec.capture = Some(Capture {
                    target: Target::EntryValue(out.entries.len() - 1),
                    start: out.data.len(),
                    offset: text_at,
                    depth: self.depth,
                });
            }
            return Ok(());
        }
        let name = name.to_string();
        self.fault(&name, before, format!("element <{name}> is not part of <{}>", plan.record));
        Ok(())
    }

    fn end(&mut self, after: u64, out: &mut RawRecords) -> Result<(), XmlReadError> {
        let depth = self.depth;
        self.depth = self.depth.saturating_sub(1);
        self.open.pop();
        if self.depth == 0 {
            self.phase = Phase::Epilog;
        }
        let Some(rec) = self.rec.as_mut() else { return Ok(()) };
        if let Some(c) = rec.capture
            && c.depth == depth
        {
            rec.capture = None;
            let span = (c.start, out.data.len());
            match c.target {
                Target::Field(i) => rec.fields[i] = Some((span.0, span.1, c.offset)),
                Target::EntryValue(k) => {
                    if let Some(e) = out.entries.get_mut(k) {
                        e.value = Some(span);
                    }
                }
            }
            return Ok(());
        }
        if depth == 2 {
            let Some(rec) = self.rec.take() else { return Ok(()) };
            self.emit(rec, after, out);
        }
        Ok(())
    }

    fn emit(&mut self, rec: Rec, after: u64, out: &mut RawRecords) {
        let source = self.reader.get_ref();
        let end = source.file_offset(after);
        let raw_start = out.raw.len();
        out.raw.extend_from_slice(source.raw(rec.offset, end));
        let fields_start = out.fields.len();
        for (i, f) in self.plan.fields.iter().enumerate() {
            let (s, e, off) = match (f, rec.fields[i]) {
                (XmlFieldSource::Element(_), Some(span)) => span,
                (XmlFieldSource::Element(_), None) => (out.data.len(), out.data.len(), rec.offset),
                (XmlFieldSource::RootAttribute(a), _) => {
                    let s = out.data.len();
                    if let Some(v) = self.root_attributes.get(a) {
                        out.data.extend_from_slice(v.as_bytes());
                    }
                    (s, out.data.len(), rec.offset)
                }
            };
            out.fields.push(FieldSpan { start: s, end: e, raw_offset: off.saturating_sub(rec.offset) as usize });
        }
        let fault = rec.fault.map(|f| {
            out.faults.push(f);
            out.faults.len() - 1
        });
        out.records.push(RecordMeta {
            record_no: rec.record_no,
            offset: rec.offset,
            raw_start,
            raw_end: out.raw.len(),
            fields_start,
            fields_end: out.fields.len(),
            entries_start: rec.entries_start,
            entries_end: out.entries.len(),
            fault,
        });
        self.reader.get_mut().release(after);
    }

    fn text(&mut self, s: &str, at: u64, out: &mut RawRecords) -> Result<(), XmlReadError> {
        if let Some(c) = forbidden_char(s) {
            let kind = XmlErrorKind::NotWellFormed(format!("character U+{:04X} is not allowed in XML", c as u32));
            return Err(self.error(kind, at).into());
        }
        let blank = s.chars().all(is_xml_space);
        let limit = self.plan.limits.max_text_bytes;
        match (&self.phase, self.rec.as_mut()) {
            (_, Some(rec)) => {
                if let Some(c) = rec.capture {
                    out.data.extend_from_slice(s.as_bytes());
                    if out.data.len() - c.start > limit {
                        return Err(self.error(XmlErrorKind::Limit { what: "the text of an element in bytes", limit }, at).into());
                    }
                } else if !blank && self.depth == 2 {
                    let record = self.plan.record.clone();
                    self.fault(&record, at, format!("text directly inside <{record}>"));
                }
            }
            (Phase::Root, None) if !blank => {
                let kind = XmlErrorKind::Structure(format!("text directly inside <{}>", self.plan.root));
                return Err(self.error(kind, at).into());
            }
            (Phase::Prolog | Phase::Epilog, None) if !blank => {
                return Err(self.error(XmlErrorKind::NotWellFormed("text outside the root element".into()), at).into());
            }
            _ => {}
        }
        Ok(())
    }
}

/// The attributes of the root element (`insurerNo="141309"`), as a stream's sink sees them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RootAttributes(Vec<(String, String)>);

impl RootAttributes {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Records per batch handed to a stream's sink.
const RECORDS_PER_BATCH: usize = 256;

/// The loop of both streams: reads a whole file in batches and hands each to `emit` with the
/// reader, until `emit` says stop.
fn batches<R: Read, E>(
    plan: &XmlPlan,
    reader: R,
    mut emit: impl FnMut(&mut RawRecords, &mut XmlRecordReader<'_, R>) -> Result<bool, E>,
) -> Result<(), XmlStreamError<E>> {
    let mut r = XmlRecordReader::new(plan, reader);
    let mut batch = RawRecords::default();
    loop {
        batch.clear();
        let more = r.next_batch(&mut batch, RECORDS_PER_BATCH).map_err(XmlStreamError::Read)?;
        if (!batch.is_empty() || !more) && !emit(&mut batch, &mut r).map_err(XmlStreamError::Sink)? {
            return Ok(());
        }
        if !more {
            return Ok(());
        }
    }
}

/// Reads a whole file, calling `sink` with each batch of records; memory stays at one batch.
pub fn read_stream<R: Read, E>(
    plan: &XmlPlan,
    reader: R,
    mut sink: impl FnMut(&RawRecords, &RootAttributes) -> Result<(), E>,
) -> Result<(), XmlStreamError<E>> {
    batches(plan, reader, |batch, r| sink(batch, &r.root_attributes).map(|()| true))
}

/// [`read_stream`] on two cores: reading (and whatever `reader` does, such as hashing the file),
/// decoding and parsing run on a thread of their own ([`crate::read::run_ahead`]), while `sink`
/// takes the batches in file order on the calling thread. The sink sees what it would see in
/// line: the same batches, then the reader's error, if any, after every batch before it; a sink
/// error stops the reading. `on_bytes` is told the bytes read, on the calling thread, as the
/// batches they made arrive.
pub fn read_stream_ahead<R: Read + Send, E>(
    plan: &XmlPlan,
    reader: R,
    mut on_bytes: impl FnMut(usize),
    mut sink: impl FnMut(&RawRecords, &RootAttributes) -> Result<(), E>,
) -> Result<(), XmlStreamError<E>> {
    /// Counts what is read, for `on_bytes`.
    struct Counted<R> {
        inner: R,
        bytes: usize,
    }
    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.bytes += n;
            Ok(n)
        }
    }
    let mut root = RootAttributes::default();
    let produced = crate::read::run_ahead(
        move |hand| {
            let mut sent_root = RootAttributes::default();
            batches(plan, Counted { inner: reader, bytes: 0 }, |batch, r| {
                // The root's attributes go along once they are read (before the first record).
                let changed = (r.root_attributes != sent_root).then(|| r.root_attributes.clone());
                if let Some(changed) = &changed {
                    sent_root = changed.clone();
                }
                let bytes = std::mem::take(&mut r.reader.get_mut().inner_mut().bytes);
                // A closed channel means the sink failed; its error is the one to report.
                Ok::<bool, std::convert::Infallible>(hand(batch, (changed, bytes)))
            })
        },
        |batch, (changed, bytes)| {
            on_bytes(bytes);
            if let Some(changed) = changed {
                root = changed;
            }
            sink(batch, &root)
        },
    )
    .map_err(XmlStreamError::Sink)?;
    produced.map_err(|e| match e {
        XmlStreamError::Read(e) => XmlStreamError::Read(e),
        XmlStreamError::Sink(never) => match never {},
    })
}

#[derive(Debug)]
pub enum XmlStreamError<E> {
    Read(XmlReadError),
    Sink(E),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan() -> XmlPlan {
        XmlPlan {
            root: "IkenshoList".into(),
            record: "Ikensho".into(),
            fields: vec![
                XmlFieldSource::RootAttribute("insurerNo".into()),
                XmlFieldSource::Element("InsuredNo".into()),
                XmlFieldSource::Element("DoctorName".into()),
                XmlFieldSource::Element("Remarks".into()),
            ],
            lists: vec![
                XmlList { element: "Item".into(), number_attribute: "no".into(), value: XmlValue::Attribute("value".into()) },
                XmlList { element: "Entry".into(), number_attribute: "no".into(), value: XmlValue::Text },
            ],
            limits: XmlLimits::default(),
        }
    }

    use crate::read::Chunked;

    /// Everything the reader reports, as text: per record its number, offset, fields, entries,
    /// fault and raw bytes.
    fn read_all(data: &[u8], size: usize) -> Result<Vec<String>, XmlError> {
        read_all_with(data, size, false)
    }

    /// [`read_all`], in line or with the reading a few batches ahead on a thread of its own.
    fn read_all_with(data: &[u8], size: usize, ahead: bool) -> Result<Vec<String>, XmlError> {
        let p = plan();
        let mut out = Vec::new();
        let sink = |batch: &RawRecords, _: &RootAttributes| {
            for r in batch.iter() {
                let fields: Vec<String> = (0..r.field_count())
                    .map(|i| r.field(i).map(|(b, o)| format!("{}@{o}", String::from_utf8_lossy(b))).unwrap_or_default())
                    .collect();
                let entries: Vec<String> = r
                    .entries()
                    .iter()
                    .map(|e| {
                        format!(
                            "{}:{}={:?}@{}",
                            e.list,
                            String::from_utf8_lossy(r.text(e.number)),
                            e.value.map(|v| String::from_utf8_lossy(r.text(v)).to_string()),
                            e.offset
                        )
                    })
                    .collect();
                out.push(format!(
                    "#{} @{} {:?} {:?} {:?} raw={}",
                    r.record_no,
                    r.offset,
                    fields,
                    entries,
                    r.fault().map(|f| (&f.element, f.offset, &f.detail)),
                    hex::encode(r.raw)
                ));
            }
            Ok::<(), ()>(())
        };
        let res =
            if ahead { read_stream_ahead(&p, Chunked { data, size }, |_| {}, sink) } else { read_stream(&p, Chunked { data, size }, sink) };
        match res {
            Ok(()) => Ok(out),
            Err(XmlStreamError::Read(XmlReadError::Xml(e))) => Err(e),
            Err(e) => panic!("{e:?}"),
        }
    }

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\r\n<IkenshoList version=\"09B\" insurerNo=\"141309\">\r\n  <Ikensho>\r\n    <InsuredNo>0001234567</InsuredNo>\r\n    <DoctorName>山田 太郎</DoctorName>\r\n    <Item no=\"1\" value=\"1\"/>\r\n    <Item no=\"13\" value=\"A&amp;1\"/>\r\n    <Entry no=\"1\">162.5</Entry>\r\n    <Remarks>特記&lt;事項&gt;\r\n二行目&#x20B9F;<![CDATA[<ゾ]>&amp;]]>ｶﾅ</Remarks>\r\n  </Ikensho>\r\n  <!-- comment -->\r\n  <Ikensho><InsuredNo>H000000002</InsuredNo><Oops>x</Oops></Ikensho>\r\n</IkenshoList>\r\n";

    fn sjis(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        cp932::encode(s, &mut v).unwrap();
        v
    }

    #[test]
    fn reads_records_fields_entries_and_faults() {
        let recs = read_all(&sjis(DOC), 1 << 20).unwrap();
        assert_eq!(recs.len(), 2);
        assert!(recs[0].starts_with("#1 @"), "{}", recs[0]);
        assert!(recs[0].contains("\"141309@"), "{}", recs[0]);
        assert!(recs[0].contains("\"0001234567@"), "{}", recs[0]);
        assert!(recs[0].contains("山田 太郎@"), "{}", recs[0]);
        assert!(recs[0].contains("特記<事項>\\n二行目𠮟<ゾ]>&amp;ｶﾅ@"), "{}", recs[0]);
        assert!(recs[0].contains("\"0:1=Some(\\\"1\\\")@"), "{}", recs[0]);
        assert!(recs[0].contains("\"0:13=Some(\\\"A&1\\\")@"), "{}", recs[0]);
        assert!(recs[0].contains("\"1:1=Some(\\\"162.5\\\")@"), "{}", recs[0]);
        assert!(recs[0].contains(" None raw="), "{}", recs[0]);
        assert!(recs[1].contains("Some((\"Oops\""), "{}", recs[1]);
    }

    #[test]
    fn offsets_and_raw_bytes_are_those_of_the_file() {
        let bytes = sjis(DOC);
        let p = plan();
        let mut seen = Vec::new();
        read_stream(&p, &bytes[..], |batch, _| {
            for r in batch.iter() {
                assert!(bytes[r.offset as usize..].starts_with(b"<Ikensho>"));
                assert!(r.raw.starts_with(b"<Ikensho>") && r.raw.ends_with(b"</Ikensho>"));
                let (name, off) = r.field(2).unwrap();
                if !name.is_empty() {
                    assert!(bytes[off as usize..].starts_with(&sjis("山田")));
                }
                let (rem, off) = r.field(3).unwrap();
                if !rem.is_empty() {
                    assert!(bytes[off as usize..].starts_with(&sjis("特記")));
                }
                for e in r.entries() {
                    assert!(bytes[e.offset as usize..].starts_with(b"<Item") || bytes[e.offset as usize..].starts_with(b"<Entry"));
                }
                seen.push(r.record_no);
            }
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, [1, 2]);
    }

    #[test]
    fn utf8_and_shift_jis_read_the_same() {
        let utf8 = DOC.replace("Shift_JIS", "UTF-8");
        let a = read_all(&sjis(DOC), 7).unwrap();
        let b = read_all(utf8.as_bytes(), 7).unwrap();
        let strip = |v: Vec<String>| v.into_iter().map(|s| s.split('@').next().unwrap_or_default().to_string()).collect::<Vec<_>>();
        assert_eq!(strip(a), strip(b));
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), utf8.as_bytes()].concat();
        assert_eq!(read_all(&with_bom, 5).unwrap().len(), 2);
    }

    fn kind_of(data: &[u8]) -> XmlErrorKind {
        match read_all(data, 3) {
            Err(e) => e.kind,
            Ok(r) => panic!("accepted: {r:?}"),
        }
    }

    #[test]
    fn file_errors() {
        let utf8_declared_sjis = DOC.as_bytes(); // UTF-8 bytes, declared Shift_JIS
        assert!(matches!(kind_of(utf8_declared_sjis), XmlErrorKind::EncodingMismatch { .. }));
        let sjis_declared_utf8 = sjis(&DOC.replace("Shift_JIS", "UTF-8"));
        let e = read_all(&sjis_declared_utf8, 4096).unwrap_err();
        assert!(matches!(e.kind, XmlErrorKind::EncodingMismatch { .. }));
        assert_eq!(e.record_no, Some(1));
        assert!(sjis_declared_utf8[e.offset as usize] >= 0x80);
        assert!(matches!(kind_of(DOC.replace("Shift_JIS", "EUC-JP").as_bytes()), XmlErrorKind::UnsupportedEncoding(n) if n == "EUC-JP"));
        let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><IkenshoList>&lol2;</IkenshoList>";
        assert_eq!(kind_of(laughs.as_bytes()), XmlErrorKind::Doctype);
        let bytes = sjis(DOC);
        for cut in [60, 150, 300, bytes.len() - 5] {
            let k = kind_of(&bytes[..cut]);
            assert!(matches!(k, XmlErrorKind::Truncated(_)), "cut at {cut}: {k:?}");
        }
        let wrong_place = DOC.replace("<!-- comment -->", "<Item no=\"1\" value=\"2\"/>");
        assert!(matches!(kind_of(&sjis(&wrong_place)), XmlErrorKind::Structure(_)));
        let mismatched = DOC.replace("</DoctorName>", "</Doctor>");
        assert!(matches!(kind_of(&sjis(&mismatched)), XmlErrorKind::NotWellFormed(_)));
        let unknown_entity = DOC.replace("&amp;1", "&nbsp;1");
        assert!(matches!(kind_of(&sjis(&unknown_entity)), XmlErrorKind::NotWellFormed(_)));
        let control = DOC.replace("162.5", "16\u{1}2");
        assert!(matches!(kind_of(&sjis(&control)), XmlErrorKind::NotWellFormed(_)));
        let deep = format!("<IkenshoList><Ikensho><Remarks>{}</Remarks></Ikensho></IkenshoList>", "<a>".repeat(20) + &"</a>".repeat(20));
        assert!(matches!(kind_of(deep.as_bytes()), XmlErrorKind::Limit { what: "element depth", .. }));
        let attrs: String = (0..20).map(|i| format!(" a{i}=\"1\"")).collect();
        let many = format!("<IkenshoList><Ikensho{attrs}/></IkenshoList>");
        assert!(matches!(kind_of(many.as_bytes()), XmlErrorKind::Limit { .. }));
        assert!(matches!(kind_of(b""), XmlErrorKind::Structure(_)));
        assert!(matches!(kind_of(b"<Other/>"), XmlErrorKind::Structure(_)));
    }

    #[test]
    fn limits_bound_text_and_records() {
        let mut p = plan();
        p.limits.max_text_bytes = 100;
        p.limits.max_record_bytes = 1000;
        let long = format!("<IkenshoList><Ikensho><Remarks>{}</Remarks></Ikensho></IkenshoList>", "x".repeat(200));
        let mut r = XmlRecordReader::new(&p, long.as_bytes());
        let e = r.next_batch(&mut RawRecords::default(), 10).unwrap_err();
        assert!(matches!(e, XmlReadError::Xml(XmlError { kind: XmlErrorKind::Limit { limit: 100, .. }, .. })), "{e}");
        let huge = format!("<IkenshoList><Ikensho><Remarks>{}</Remarks></Ikensho></IkenshoList>", "y".repeat(5000));
        p.limits.max_text_bytes = 1 << 20;
        let mut r = XmlRecordReader::new(&p, huge.as_bytes());
        let e = r.next_batch(&mut RawRecords::default(), 10).unwrap_err();
        assert!(matches!(e, XmlReadError::Xml(XmlError { kind: XmlErrorKind::Limit { limit: 1000, .. }, .. })), "{e}");
    }

    /// Opinions made on the fly, in Shift_JIS: a file of any length without storing it.
    struct Opinions {
        left: u64,
        n: u64,
        buf: Vec<u8>,
        pos: usize,
    }

    impl Read for Opinions {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
                if self.n == 0 {
                    self.buf.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\r\n<IkenshoList insurerNo=\"141309\">\r\n");
                }
                if self.left == 0 {
                    if self.n == u64::MAX {
                        return Ok(0);
                    }
                    self.buf.extend_from_slice(b"</IkenshoList>\r\n");
                    self.n = u64::MAX;
                } else {
                    self.left -= 1;
                    self.n += 1;
                    let text = format!(
                        "<Ikensho><InsuredNo>{:010}</InsuredNo><DoctorName>山田 太郎</DoctorName><Item no=\"1\" value=\"1\"/><Item no=\"14\" value=\"Ⅱa\"/><Remarks>特記事項 &amp; 二行\r\n目</Remarks></Ikensho>\r\n",
                        self.n
                    );
                    self.buf.extend_from_slice(&sjis(&text));
                }
            }
            let n = out.len().min(self.buf.len() - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// Many batches through the reading thread (more than it may be ahead): every record in
    /// order, the bytes all reported, the root's attributes seen from the first batch on; a
    /// failing sink stops the reading and its error is the one reported.
    #[test]
    fn ahead_over_many_batches() {
        let p = plan();
        let opinions = || Opinions { left: 5_000, n: 0, buf: Vec::new(), pos: 0 };
        let total = std::io::copy(&mut opinions(), &mut std::io::sink()).unwrap() as usize;
        let (mut next, mut bytes, mut batches) = (1u64, 0usize, 0usize);
        read_stream_ahead(
            &p,
            opinions(),
            |n| bytes += n,
            |batch, root| {
                assert_eq!(root.get("insurerNo"), Some("141309"));
                for r in batch.iter() {
                    assert_eq!(r.record_no, next);
                    next += 1;
                }
                batches += 1;
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!((next - 1, bytes), (5_000, total));
        assert!(batches > crate::read::AHEAD * 2, "{batches} batches");
        let mut seen = 0;
        let res = read_stream_ahead(
            &p,
            opinions(),
            |_| {},
            |_, _| {
                seen += 1;
                if seen == 3 { Err("stop") } else { Ok(()) }
            },
        );
        assert!(matches!(res, Err(XmlStreamError::Sink("stop"))), "{res:?}");
        assert_eq!(seen, 3);
    }

    /// Memory stays flat: what the reader holds does not grow with the number of opinions.
    #[test]
    fn memory_is_flat_over_100000_opinions() {
        let p = plan();
        let mut r = XmlRecordReader::new(&p, Opinions { left: 100_000, n: 0, buf: Vec::new(), pos: 0 });
        let mut batch = RawRecords::default();
        let (mut records, mut most_held, mut most_batch) = (0u64, 0usize, 0usize);
        loop {
            batch.clear();
            let more = r.next_batch(&mut batch, 256).unwrap();
            records += batch.len() as u64;
            most_held = most_held.max(r.held_bytes());
            most_batch = most_batch.max(batch.raw.capacity() + batch.data.capacity());
            if !more {
                break;
            }
        }
        assert_eq!(records, 100_000);
        // One read chunk (64 KiB) of raw bytes and its runs at most, and one batch of records.
        assert!(most_held < 4 * READ_CHUNK, "the source held {most_held} bytes");
        assert!(most_batch < 256 * 1024, "a batch held {most_batch} bytes");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Reading in chunks of any size gives what reading at once gives, for both encodings.
        #[test]
        fn any_chunk_size(size in 1usize..300, utf8 in any::<bool>()) {
            let doc = if utf8 { DOC.replace("Shift_JIS", "UTF-8").into_bytes() } else { sjis(DOC) };
            prop_assert_eq!(read_all(&doc, size).unwrap(), read_all(&doc, 1 << 20).unwrap());
        }

        /// Reading ahead on a thread of its own gives the records and the error reading in line
        /// gives, whatever the chunk size and wherever the file breaks.
        #[test]
        fn ahead_is_the_same_as_in_line(size in 1usize..300, utf8 in any::<bool>(), cut in 0usize..2000, junk in proptest::collection::vec(any::<u8>(), 0..8)) {
            let doc = if utf8 { DOC.replace("Shift_JIS", "UTF-8").into_bytes() } else { sjis(DOC) };
            let mut broken = doc[..cut.min(doc.len())].to_vec();
            broken.extend_from_slice(&junk);
            for input in [&doc, &broken] {
                let in_line = format!("{:?}", read_all_with(input, size, false));
                prop_assert_eq!(format!("{:?}", read_all_with(input, size, true)), in_line);
            }
        }

        /// Any bytes give records or an error, never a panic.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..600) {
            let doc = sjis(DOC);
            let mut mixed = doc[..cut.min(doc.len())].to_vec();
            mixed.extend_from_slice(&bytes);
            let _ = read_all(&mixed, 13);
            let _ = read_all(&bytes, 13);
        }
    }
}
