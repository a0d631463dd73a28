//! One source file through read → decode → map, with the envelope checks of SPEC §4.1 and §4.3.
//!
//! ```text
//!  file ─► splitter ─► record 1: header/control? ─► data records ─► Mapper ─► SetBuilders
//!                                                      │ record error
//!                                                      └──────────────► QuarantineBuilder
//!          end: trailer/end present? counts agree? ── no ─► FileError: nothing of the file is kept
//! ```
//!
//! Everything a file yields is held until the file has been read to its end, because some file
//! errors (a count mismatch, a missing end record) are only known there; the caller adds the
//! outcome to the load only when the file is whole.

use super::builder::{SetBuilder, SetRows};
use super::compile::{FixedTerminator, Layout, Loc, SourceFormat};
use super::engine::{Mapper, RecordError, RecordErrorKind};
use super::layout::EncodingName;
use super::quarantine::{QuarantineBuilder, QuarantineEntry, WarningBuilder, WarningEntry};
use crate::codec::gaiji::GaijiTable;
use crate::codec::wareki::EraTable;
use crate::read::csv::CsvSplitter;
use crate::read::fixed::{FixedSplitter, Terminator};
use crate::read::xml::{XmlError, XmlReadError, XmlStreamError};
use crate::read::{RecordSplitter, RecordView, SplitError, SplitStreamError, split_stream, split_stream_ahead};
use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// A reason to reject a whole file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Split(#[from] SplitError),
    #[error("missing header/control record (record 1 is not of kind `{expected}`)")]
    MissingHeader { expected: String },
    #[error("record {record_no}: malformed header/control record: {reason}")]
    MalformedHeader { record_no: u64, reason: String },
    #[error("record {record_no}: the header names insurer {found}, the job is for {expected}")]
    HeaderInsurer { record_no: u64, found: String, expected: String },
    #[error("record {record_no}: a second header/control record")]
    UnexpectedHeader { record_no: u64 },
    #[error("record {record_no}: data record of insurer {found}, the file is for {expected} (a file belongs to one insurer)")]
    DataInsurer { record_no: u64, found: String, expected: String },
    #[error("record {record_no}: malformed trailer/end record: {reason}")]
    MalformedTrailer { record_no: u64, reason: String },
    #[error("missing trailer/end record")]
    MissingTrailer,
    #[error("record {record_no}: data after the trailer/end record")]
    DataAfterTrailer { record_no: u64 },
    #[error("the {which} record declares {declared} data records, the file has {actual}")]
    CountMismatch { which: &'static str, declared: u64, actual: u64 },
    #[error("{0}")]
    Xml(#[from] XmlError),
    #[error("the root element's `{attribute}` names insurer {}, the job is for {expected}", found.as_deref().unwrap_or("none"))]
    RootInsurer { attribute: String, found: Option<String>, expected: String },
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Where the rows go failed (the load's staging): not the file's fault, so the load fails.
    #[error("keeping the file's rows: {0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
}

impl FileError {
    /// A stable id of the file-level check that failed, shown with the message and stored with a
    /// rejected input (`file.record_count` is SPEC §6's check of counts against control and
    /// trailer records).
    pub fn code(&self) -> &'static str {
        match self {
            FileError::Io(_) => "file.io",
            FileError::Split(SplitError::TruncatedRecord { .. }) => "file.truncated_record",
            FileError::Split(SplitError::MissingTerminator { .. }) => "file.record_terminator",
            FileError::MissingHeader { .. } => "file.missing_header",
            FileError::MalformedHeader { .. } => "file.malformed_header",
            FileError::HeaderInsurer { .. } | FileError::DataInsurer { .. } => "file.other_insurer",
            FileError::UnexpectedHeader { .. } => "file.second_header",
            FileError::MalformedTrailer { .. } => "file.malformed_trailer",
            FileError::MissingTrailer => "file.missing_trailer",
            FileError::DataAfterTrailer { .. } => "file.data_after_trailer",
            FileError::CountMismatch { .. } => "file.record_count",
            FileError::Xml(e) => e.code(),
            FileError::RootInsurer { .. } => "file.other_insurer",
            FileError::Arrow(_) | FileError::Sink(_) => "file.internal",
        }
    }
}

/// Counts of one file: read = accepted + quarantined.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FileStats {
    pub read: u64,
    pub accepted: u64,
    pub quarantined: u64,
    pub warnings: u64,
    pub envelope_records: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// What a whole file yields.
pub struct FileOutcome {
    pub stats: FileStats,
    /// Rows per output of the layout (same order as `layout.outputs`); empty from
    /// [`ingest_parts`], which hands them on as it goes.
    pub rows: Vec<SetRows>,
    pub quarantine: RecordBatch,
    pub warnings: RecordBatch,
    /// Header values that order the files of a load.
    pub order_key: Vec<String>,
    /// Primary-set keys of quarantined records (see `Mapper::primary_key`), and how many
    /// quarantined records had a key that could not be read: a snapshot keeps the published rows
    /// of these keys (SPEC §8).
    pub quarantined_keys: Vec<String>,
    pub unreadable_keys: u64,
}

pub struct FileContext<'a> {
    pub layout: &'a Layout,
    pub eras: &'a EraTable,
    pub gaiji: &'a GaijiTable,
    pub insurer_no: &'a str,
    /// The file's name as recorded in `source_file`.
    pub file_name: &'a str,
    pub file_seq: u32,
}

/// Quarantined records logged at warning level per file.
const LOGGED_PER_FILE: u64 = 20;

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn value_at<'r>(rec: &RecordView<'r>, loc: Loc) -> Option<&'r [u8]> {
    match loc {
        Loc::Field(i) => rec.field(i).map(|x| x.0),
        Loc::Bytes(s, l) => rec.bytes(s, l).map(|x| x.0),
    }
}

fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

fn normalize_insurer(s: &str) -> &str {
    if s.len() == 8 && s.starts_with("00") { &s[2..] } else { s }
}

/// Envelope values compare after trimming, and as numbers when both are digits (`0000001` = `1`).
fn same_value(got: &str, want: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(got) && digits(want) { got.trim_start_matches('0') == want.trim_start_matches('0') } else { got == want }
}

fn parse_count(b: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(b).ok()?.trim();
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Takes the rows of one output of the layout (by index in `layout.outputs`), a part at a time.
pub type PartSink<'s> = &'s mut dyn FnMut(usize, SetRows) -> Result<(), FileError>;

struct State<'a, 'c> {
    ctx: &'c FileContext<'a>,
    parts: PartSink<'c>,
    mapper: Mapper<'a>,
    builders: Vec<SetBuilder>,
    quarantine: QuarantineBuilder,
    warnings: WarningBuilder,
    stats: FileStats,
    seen_header: bool,
    /// A `[csv] header` row of column names was read.
    seen_column_names: bool,
    header_insurer: Option<String>,
    header_count: Option<u64>,
    trailer_count: Option<u64>,
    seen_trailer: bool,
    order_key: Vec<String>,
    quarantined_keys: Vec<String>,
    unreadable_keys: u64,
}

impl<'a, 'c> State<'a, 'c> {
    fn record(&mut self, rec: RecordView<'_>) -> Result<(), FileError> {
        let layout = self.ctx.layout;
        if let SourceFormat::Csv { header, .. } = &layout.format
            && !header.is_empty()
            && !self.seen_column_names
        {
            return self.column_names(&rec, header);
        }
        if let Some(env) = &layout.envelope {
            let kind = value_at(&rec, env.kind).unwrap_or(&[]);
            if let Some(h) = &env.header {
                if !self.seen_header {
                    if kind != h.kind.as_bytes() {
                        return Err(FileError::MissingHeader { expected: h.kind.clone() });
                    }
                    return self.header(&rec);
                }
                if kind == h.kind.as_bytes() {
                    return Err(FileError::UnexpectedHeader { record_no: rec.record_no });
                }
            }
            if self.seen_trailer {
                return Err(FileError::DataAfterTrailer { record_no: rec.record_no });
            }
            if let Some(t) = &env.trailer
                && kind == t.kind.as_bytes()
            {
                return self.trailer(&rec);
            }
            if kind != env.data_kind.as_bytes() {
                self.stats.read += 1;
                let e = RecordError {
                    kind: RecordErrorKind::RecordKind,
                    field: None,
                    place: None,
                    offset: Some(rec.offset),
                    detail: format!("unknown record kind (expected `{}` for a data record)", env.data_kind),
                };
                self.quarantine_record(&rec, &e);
                return Ok(());
            }
        }
        self.data(&rec)
    }

    fn header(&mut self, rec: &RecordView<'_>) -> Result<(), FileError> {
        self.seen_header = true;
        self.stats.envelope_records += 1;
        let Some(h) = self.ctx.layout.envelope.as_ref().and_then(|e| e.header.as_ref()) else { return Ok(()) };
        let bad = |reason: String| FileError::MalformedHeader { record_no: rec.record_no, reason };
        if let Some(n) = h.fields
            && rec.field_count() != n
        {
            return Err(bad(format!("{} fields, expected {n}", rec.field_count())));
        }
        for (loc, want) in &h.expect {
            let got = ascii(value_at(rec, *loc).unwrap_or(&[]));
            if !same_value(&got, want) {
                return Err(bad(format!("{} is not `{want}`", describe_loc(*loc))));
            }
        }
        if let Some(loc) = h.insurer {
            let got = ascii(value_at(rec, loc).unwrap_or(&[]));
            let got = normalize_insurer(&got).to_string();
            if got != self.ctx.insurer_no {
                return Err(FileError::HeaderInsurer { record_no: rec.record_no, found: got, expected: self.ctx.insurer_no.to_string() });
            }
            self.header_insurer = Some(got);
        }
        if let Some(loc) = h.count {
            let c = value_at(rec, loc)
                .and_then(parse_count)
                .ok_or_else(|| bad(format!("{}: the record count is not a number", describe_loc(loc))))?;
            self.header_count = Some(c);
        }
        // Digits compare as numbers (ファイル管理番号 `9` before `10`): zero-pad them for sorting.
        self.order_key = h
            .order
            .iter()
            .map(|l| {
                let v = ascii(value_at(rec, *l).unwrap_or(&[]));
                if !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) { format!("{v:0>20}") } else { v }
            })
            .collect();
        Ok(())
    }

    /// The header row of a CSV with column names: the names must be the layout's, in order.
    fn column_names(&mut self, rec: &RecordView<'_>, want: &[String]) -> Result<(), FileError> {
        self.seen_column_names = true;
        self.stats.envelope_records += 1;
        let bad = |reason: String| FileError::MalformedHeader { record_no: rec.record_no, reason };
        if rec.field_count() != want.len() {
            return Err(bad(format!("the header row has {} columns, the layout {}", rec.field_count(), want.len())));
        }
        for (i, name) in want.iter().enumerate() {
            let raw = value_at(rec, Loc::Field(i)).unwrap_or(&[]);
            let raw = if i == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
            let mut got = String::new();
            let decoded = match self.ctx.layout.encoding {
                EncodingName::Utf8 | EncodingName::Declared => std::str::from_utf8(raw).map(|s| got.push_str(s)).is_ok(),
                EncodingName::Cp932 => crate::codec::cp932::decode_field(raw, &mut got).is_ok(),
            };
            if !decoded || got.trim() != name {
                return Err(bad(format!("column {} of the header row is not `{name}`", i + 1)));
            }
        }
        Ok(())
    }

    fn trailer(&mut self, rec: &RecordView<'_>) -> Result<(), FileError> {
        self.seen_trailer = true;
        self.stats.envelope_records += 1;
        let Some(t) = self.ctx.layout.envelope.as_ref().and_then(|e| e.trailer.as_ref()) else { return Ok(()) };
        let bad = |reason: String| FileError::MalformedTrailer { record_no: rec.record_no, reason };
        if let Some(n) = t.fields
            && rec.field_count() != n
        {
            return Err(bad(format!("{} fields, expected {n}", rec.field_count())));
        }
        if let Some(loc) = t.insurer {
            let got = ascii(value_at(rec, loc).unwrap_or(&[]));
            if normalize_insurer(&got) != self.ctx.insurer_no {
                return Err(bad(format!("names insurer {got}, the job is for {}", self.ctx.insurer_no)));
            }
        }
        if let Some(loc) = t.count {
            let c = value_at(rec, loc)
                .and_then(parse_count)
                .ok_or_else(|| bad(format!("{}: the record count is not a number", describe_loc(loc))))?;
            self.trailer_count = Some(c);
        }
        Ok(())
    }

    fn data(&mut self, rec: &RecordView<'_>) -> Result<(), FileError> {
        self.stats.read += 1;
        // A file belongs to one insurer: a data record of another is a file error, whatever else
        // is wrong with the record. The raw field is compared, so this holds for records that
        // fail to convert too; a malformed value is left to the key check.
        if let (Some(env), Some(hi)) = (&self.ctx.layout.envelope, &self.header_insurer)
            && let Some(f) = env.data_insurer
            && let Some(raw) = value_at(rec, self.ctx.layout.fields[f].loc)
        {
            let got = ascii(raw);
            let got = normalize_insurer(&got);
            if got.len() == 6 && got.bytes().all(|b| b.is_ascii_digit()) && got != hi {
                return Err(FileError::DataInsurer { record_no: rec.record_no, found: got.to_string(), expected: hi.clone() });
            }
        }
        if let Err(e) = self.mapper.convert(rec) {
            self.quarantine_record(rec, &e);
            return Ok(());
        }
        self.mapper.append(&mut self.builders, self.ctx.file_name, rec.record_no, rec.offset);
        self.stats.accepted += 1;
        for (i, b) in self.builders.iter_mut().enumerate() {
            if b.len() >= crate::map::spill::PART_ROWS {
                (self.parts)(i, b.finish(self.ctx.file_seq))?;
            }
        }
        for w in &self.mapper.warnings {
            self.stats.warnings += 1;
            self.warnings.push(WarningEntry {
                file: self.ctx.file_name,
                record_no: rec.record_no,
                record_set: None,
                kind: "unmapped_gaiji",
                field: Some(&w.field),
                rule_id: None,
                message: &w.message,
            });
        }
        Ok(())
    }

    fn quarantine_record(&mut self, rec: &RecordView<'_>, e: &RecordError) {
        self.stats.quarantined += 1;
        match self.mapper.primary_key(rec) {
            Some(k) => self.quarantined_keys.push(k),
            None => self.unreadable_keys += 1,
        }
        let message = format!("{}: record {}: {}", self.ctx.file_name, rec.record_no, e);
        // The first records are logged one by one; the rest are counted (all are in the quarantine
        // Parquet), so a broken file cannot flood the logs.
        if self.stats.quarantined <= LOGGED_PER_FILE {
            tracing::warn!(file = self.ctx.file_name, record = rec.record_no, kind = e.kind.as_str(), "quarantined: {message}");
        } else {
            tracing::debug!(file = self.ctx.file_name, record = rec.record_no, kind = e.kind.as_str(), "quarantined: {message}");
        }
        self.quarantine.push(QuarantineEntry {
            file: self.ctx.file_name,
            record_no: rec.record_no,
            offset: rec.offset,
            record_set: &self.ctx.layout.primary_record_set.name,
            kind: e.kind.as_str(),
            field_no: e.field.as_ref().map(|f| f.0 as u64),
            field_name: e.field.as_ref().map(|f| f.1.as_str()),
            byte_offset: e.offset,
            rule_ids: None,
            message: &message,
            raw: rec.raw,
        });
    }
}

fn describe_loc(l: Loc) -> String {
    match l {
        Loc::Field(i) => format!("field {}", i + 1),
        Loc::Bytes(s, n) => format!("bytes {}–{}", s + 1, s + n),
    }
}

/// Detects whether fixed-width records are followed by CRLF: the bytes after the first record.
fn detect_terminator(path: &Path, record_len: usize) -> std::io::Result<Terminator> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; record_len + 2];
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(if got == record_len + 2 && &buf[record_len..] == b"\r\n" { Terminator::Crlf } else { Terminator::None })
}

fn splitter_for(layout: &Layout, path: &Path) -> Result<Box<dyn RecordSplitter + Send>, FileError> {
    Ok(match layout.format {
        SourceFormat::Xml { .. } => {
            return Err(FileError::Io(std::io::Error::other("internal: an XML layout has no record splitter")));
        }
        SourceFormat::Csv { quoting, .. } => Box::new(CsvSplitter::new(quoting)),
        SourceFormat::Fixed { record_len, terminator } => {
            let t = match terminator {
                FixedTerminator::Crlf => Terminator::Crlf,
                FixedTerminator::None => Terminator::None,
                FixedTerminator::Auto => detect_terminator(path, record_len)?,
            };
            Box::new(FixedSplitter::new(record_len, t))
        }
    })
}

/// Above this many records, reading the file once beats seeking to each.
const SEEKS_BEFORE_A_PASS: usize = 256;

/// The raw bytes of the records that start at `offsets` (their `source_offset`), read back for
/// rows the validate stage quarantines, so the quarantine keeps each record exactly as sent.
pub fn raw_records_at(layout: &Layout, path: &Path, offsets: &[u64]) -> Result<std::collections::HashMap<u64, Vec<u8>>, FileError> {
    use std::io::{Seek, SeekFrom};
    let wanted: std::collections::BTreeSet<u64> = offsets.iter().copied().collect();
    let mut out = std::collections::HashMap::with_capacity(wanted.len());
    if wanted.is_empty() {
        return Ok(out);
    }
    if let SourceFormat::Xml { plan, .. } = &layout.format {
        // XML records are found by parsing from the start: one pass.
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        crate::read::xml::read_stream(plan, file, |batch, _| {
            for r in batch.iter().filter(|r| wanted.contains(&r.offset)) {
                out.insert(r.offset, r.raw.to_vec());
            }
            Ok::<(), FileError>(())
        })
        .map_err(xml_file_error)?;
        return Ok(out);
    }
    if wanted.len() > SEEKS_BEFORE_A_PASS {
        let mut splitter = splitter_for(layout, path)?;
        let res = split_stream(
            std::fs::File::open(path)?,
            splitter.as_mut(),
            |_| {},
            |batch| {
                for r in batch.iter().filter(|r| wanted.contains(&r.offset)) {
                    out.insert(r.offset, r.raw.to_vec());
                }
                Ok::<(), FileError>(())
            },
        );
        return match res {
            Ok(()) => Ok(out),
            Err(SplitStreamError::Io(e)) => Err(FileError::Io(e)),
            Err(SplitStreamError::Split(e)) => Err(FileError::Split(e)),
            Err(SplitStreamError::Sink(e)) => Err(e),
        };
    }
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    for &off in &wanted {
        file.seek(SeekFrom::Start(off))?;
        let mut splitter = splitter_for(layout, path)?;
        let mut batch = crate::read::RawRecords::default();
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                splitter.finish(&mut batch)?;
                break;
            }
            splitter.feed(&buf[..n], &mut batch)?;
            if !batch.is_empty() {
                break;
            }
        }
        if let Some(r) = batch.get(0) {
            out.insert(off, r.raw.to_vec());
        }
    }
    Ok(out)
}

fn xml_file_error(e: XmlStreamError<FileError>) -> FileError {
    match e {
        XmlStreamError::Read(XmlReadError::Io(e)) => FileError::Io(e),
        XmlStreamError::Read(XmlReadError::Xml(e)) => FileError::Xml(e),
        XmlStreamError::Sink(e) => e,
    }
}

/// Reads, decodes and maps one file, its rows held in memory (one [`SetRows`] per output).
pub fn ingest_file(ctx: &FileContext<'_>, path: &Path, on_bytes: &mut dyn FnMut(usize)) -> Result<FileOutcome, FileError> {
    let mut parts: Vec<Vec<SetRows>> = ctx.layout.outputs.iter().map(|_| Vec::new()).collect();
    let mut out = ingest_parts(ctx, path, on_bytes, &mut |i, rows| {
        if let Some(p) = parts.get_mut(i) {
            p.push(rows);
        }
        Ok(())
    })?;
    out.rows = parts.into_iter().map(|p| SetRows::concat(p, ctx.file_seq)).collect::<Result<_, _>>()?;
    Ok(out)
}

/// Reads, decodes and maps one file, handing its rows to `on_part` in parts of at most
/// [`crate::map::spill::PART_ROWS`] rows, in file order; every output gets a last part, empty or
/// not, once the file is read.
pub fn ingest_parts(
    ctx: &FileContext<'_>,
    path: &Path,
    on_bytes: &mut dyn FnMut(usize),
    on_part: PartSink<'_>,
) -> Result<FileOutcome, FileError> {
    let layout = ctx.layout;
    let file = std::fs::File::open(path)?;
    let mut reader = HashingReader { inner: file, hasher: Sha256::new(), bytes: 0 };
    let mut state = State {
        ctx,
        parts: on_part,
        mapper: Mapper::new(layout, ctx.eras, ctx.gaiji, ctx.insurer_no),
        builders: layout.outputs.iter().map(|o| SetBuilder::new(o.set.clone())).collect(),
        quarantine: QuarantineBuilder::default(),
        warnings: WarningBuilder::default(),
        stats: FileStats::default(),
        seen_header: false,
        seen_column_names: false,
        header_insurer: None,
        header_count: None,
        trailer_count: None,
        seen_trailer: false,
        order_key: Vec::new(),
        quarantined_keys: Vec::new(),
        unreadable_keys: 0,
    };
    if let SourceFormat::Xml { plan, insurer_attribute } = &layout.format {
        let mut root_insurer: Option<Option<String>> = None;
        // Reading, hashing, decoding and parsing run a few batches ahead of the mapping, on the
        // other core (XML is the slowest of the formats to tokenise).
        crate::read::xml::read_stream_ahead(plan, &mut reader, on_bytes, |batch, root| {
            if root_insurer.is_none()
                && let Some(a) = insurer_attribute
            {
                root_insurer = Some(root.get(a).map(str::to_string));
            }
            for rec in batch.iter() {
                state.record(rec)?;
            }
            Ok::<(), FileError>(())
        })
        .map_err(xml_file_error)?;
        if let Some(attribute) = insurer_attribute {
            let found = root_insurer.flatten();
            if found.as_deref().map(normalize_insurer) != Some(ctx.insurer_no) {
                return Err(FileError::RootInsurer { attribute: attribute.clone(), found, expected: ctx.insurer_no.to_string() });
            }
        }
    } else {
        // Reading, hashing and splitting run a few batches ahead of the mapping, on another core.
        let mut splitter = splitter_for(layout, path)?;
        let res = split_stream_ahead(&mut reader, splitter.as_mut(), on_bytes, |batch| {
            for rec in batch.iter() {
                state.record(rec)?;
            }
            Ok::<(), FileError>(())
        });
        match res {
            Ok(()) => {}
            Err(SplitStreamError::Io(e)) => return Err(FileError::Io(e)),
            Err(SplitStreamError::Split(e)) => return Err(FileError::Split(e)),
            Err(SplitStreamError::Sink(e)) => return Err(e),
        }
    }
    if let Some(env) = &layout.envelope {
        if let Some(h) = &env.header
            && !state.seen_header
        {
            return Err(FileError::MissingHeader { expected: h.kind.clone() });
        }
        if env.trailer.is_some() && !state.seen_trailer {
            return Err(FileError::MissingTrailer);
        }
    }
    if let Some(d) = state.header_count
        && d != state.stats.read
    {
        return Err(FileError::CountMismatch { which: "header/control", declared: d, actual: state.stats.read });
    }
    if let Some(d) = state.trailer_count
        && d != state.stats.read
    {
        return Err(FileError::CountMismatch { which: "trailer/end", declared: d, actual: state.stats.read });
    }
    if state.stats.quarantined > LOGGED_PER_FILE {
        tracing::warn!(
            file = ctx.file_name,
            quarantined = state.stats.quarantined,
            "{} more records quarantined (see the quarantine Parquet of this load)",
            state.stats.quarantined - LOGGED_PER_FILE
        );
    }
    state.stats.bytes = reader.bytes;
    state.stats.sha256 = hex::encode(reader.hasher.finalize());
    for (i, b) in state.builders.iter_mut().enumerate() {
        (state.parts)(i, b.finish(ctx.file_seq))?;
    }
    Ok(FileOutcome {
        stats: state.stats,
        rows: Vec::new(),
        quarantine: state.quarantine.finish()?,
        warnings: state.warnings.finish()?,
        order_key: state.order_key,
        quarantined_keys: state.quarantined_keys,
        unreadable_keys: state.unreadable_keys,
    })
}
