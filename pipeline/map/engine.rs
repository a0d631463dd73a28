//! The mapping engine: one data record to rows of record sets.
//!
//! ```text
//!  record ─► for each declared field: cut ─► decode (strict) ─► 外字 ─► trim padding
//!                                         ─► null conventions ─► text | int | decimal | date
//!         ─► which outputs apply (when_present / when_any_present)
//!         ─► key checks (present, shape, insurer)      any failure: RecordError, no row at all
//!         ─► append to each output's SetBuilder
//! ```
//!
//! Every field is converted before anything is appended, so a record with an error yields no row
//! in any record set (SPEC §5.2) and the builders never need to be rolled back.

use super::builder::{SetBuilder, Value};
use super::compile::{ColumnSource, Condition, FieldKind, Layout, Loc, Pad, Scalar};
use super::layout::EncodingName;
use crate::codec::gaiji::{GaijiTable, UnmappedGaiji};
use crate::codec::wareki::{EraTable, parse_date};
use crate::codec::{cp932, kana};
use crate::read::RecordView;

use arrow::datatypes::DataType;

/// Why a record is quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordErrorKind {
    FieldCount,
    Decode,
    Date,
    Number,
    Key,
    Insurer,
    RecordKind,
    /// XML: an element the layout does not know or in the wrong place.
    Structure,
    /// XML: a numbered entry whose number is not valid (an item number outside 1–113).
    ItemNumber,
}

impl RecordErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordErrorKind::FieldCount => "field_count",
            RecordErrorKind::Decode => "decode",
            RecordErrorKind::Date => "invalid_date",
            RecordErrorKind::Number => "invalid_number",
            RecordErrorKind::Key => "malformed_key",
            RecordErrorKind::Insurer => "other_insurer",
            RecordErrorKind::RecordKind => "record_kind",
            RecordErrorKind::Structure => "misplaced_element",
            RecordErrorKind::ItemNumber => "unknown_item",
        }
    }
}

/// A record error, named by field and byte offset; never carries the field's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub kind: RecordErrorKind,
    /// 1-based field number (CSV) or first byte (fixed), and the field's name.
    pub field: Option<(usize, String)>,
    /// XML: where in the record (`element <InsuredNo>`), shown instead of the field number.
    pub place: Option<String>,
    /// Byte offset in the file.
    pub offset: Option<u64>,
    pub detail: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.field, &self.place) {
            (Some((_, name)), Some(place)) => write!(f, "{place} ({name}): ")?,
            (Some((no, name)), None) => write!(f, "field {no} ({name}): ")?,
            (None, Some(place)) => write!(f, "{place}: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.detail)?;
        if let Some(o) = self.offset {
            write!(f, " at byte offset {o}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Val {
    Null,
    Text,
    Int(i64),
    Dec(i128),
    Date(i32),
}

/// A warning raised while mapping a record that is still accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldWarning {
    pub field: String,
    pub message: String,
}

/// A converted numbered entry of an XML record: its list, number, and value span in the scratch text.
#[derive(Debug, Clone, Copy)]
struct Entry {
    list: usize,
    number: i32,
    value: Option<(usize, usize)>,
}

/// Per-layout limits each field must respect to fit every column it fills.
struct FieldLimits {
    int_max: i64,
    int_min: i64,
    decimal_precision: Option<u8>,
}

pub struct Mapper<'a> {
    layout: &'a Layout,
    eras: &'a EraTable,
    gaiji: &'a GaijiTable,
    insurer_no: &'a str,
    limits: Vec<FieldLimits>,
    vals: Vec<Val>,
    spans: Vec<(usize, usize)>,
    text: String,
    kana: String,
    unmapped: Vec<UnmappedGaiji>,
    emit: Vec<bool>,
    /// Numbered entries of the record.
    entries: Vec<Entry>,
    pub warnings: Vec<FieldWarning>,
}

impl<'a> Mapper<'a> {
    pub fn new(layout: &'a Layout, eras: &'a EraTable, gaiji: &'a GaijiTable, insurer_no: &'a str) -> Self {
        let mut limits: Vec<FieldLimits> =
            layout.fields.iter().map(|_| FieldLimits { int_max: i64::MAX, int_min: i64::MIN, decimal_precision: None }).collect();
        for o in &layout.outputs {
            for (ci, src) in o.columns.iter().enumerate() {
                if let ColumnSource::Field { field, .. } = src {
                    match o.set.columns[ci].data_type {
                        DataType::Int32 => {
                            limits[*field].int_max = limits[*field].int_max.min(i32::MAX as i64);
                            limits[*field].int_min = limits[*field].int_min.max(i32::MIN as i64);
                        }
                        DataType::Decimal128(p, _) => {
                            let l = &mut limits[*field];
                            l.decimal_precision = Some(l.decimal_precision.map_or(p, |q| q.min(p)));
                        }
                        _ => {}
                    }
                }
            }
        }
        Mapper {
            layout,
            eras,
            gaiji,
            insurer_no,
            limits,
            vals: Vec::with_capacity(layout.fields.len()),
            spans: Vec::with_capacity(layout.fields.len()),
            text: String::with_capacity(4096),
            kana: String::new(),
            unmapped: Vec::new(),
            emit: vec![false; layout.outputs.len()],
            entries: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn text_of(&self, field: usize) -> &str {
        let (s, e) = self.spans[field];
        &self.text[s..e]
    }

    fn present(&self, field: usize) -> bool {
        !matches!(self.vals[field], Val::Null)
    }

    /// Applies the 外字 table to the scratch text from `start` on; a PUA character without a
    /// mapping stays and is reported as a warning on `field`, named in the message by `place`.
    fn map_gaiji(&mut self, start: usize, field: &str, place: &dyn std::fmt::Display) {
        self.unmapped.clear();
        self.gaiji.apply(&mut self.text, start, &mut self.unmapped);
        for u in &self.unmapped {
            self.warnings.push(FieldWarning {
                field: field.to_string(),
                message: format!("{place} ({field}): 外字 U+{:04X} has no mapping in the 外字 table; kept as is", u.code_point as u32),
            });
        }
    }

    /// Cuts, decodes and converts field `fi` of `rec`, appending its text to the scratch buffer.
    fn convert_field(&mut self, rec: &RecordView<'_>, fi: usize) -> Result<(Val, usize, usize), RecordError> {
        let layout = self.layout;
        let f = &layout.fields[fi];
        let err = |kind, offset: Option<u64>, detail: String| RecordError {
            kind,
            field: Some((f.number, f.name.clone())),
            place: f.place.clone(),
            offset,
            detail,
        };
        let (bytes, off) = match f.loc {
            Loc::Field(i) => rec.field(i),
            Loc::Bytes(s, l) => rec.bytes(s, l),
        }
        .ok_or_else(|| err(RecordErrorKind::FieldCount, Some(rec.offset), "the record is too short for this field".into()))?;
        let start = self.text.len();
        // ASCII is the same in CP932 and UTF-8 and holds no 外字: most fields take this path.
        let ascii = bytes.is_ascii();
        if ascii {
            // SAFETY: every byte is ASCII (checked just above), and ASCII text is UTF-8. Checking
            // it again through `from_utf8` cost a call per field: 0.15 s of a 1M-record file.
            self.text.push_str(unsafe { std::str::from_utf8_unchecked(bytes) });
        } else {
            match layout.encoding {
                EncodingName::Cp932 => cp932::decode_field(bytes, &mut self.text).map_err(|e| {
                    self.text.truncate(start);
                    err(RecordErrorKind::Decode, Some(off + e.offset as u64), e.fault.describe().to_string())
                })?,
                // XML text arrives decoded (the reader decodes by the declaration).
                EncodingName::Utf8 | EncodingName::Declared => match std::str::from_utf8(bytes) {
                    Ok(s) => self.text.push_str(s),
                    Err(e) => return Err(err(RecordErrorKind::Decode, Some(off + e.valid_up_to() as u64), "invalid UTF-8".into())),
                },
            }
        }
        if !ascii {
            match &f.place {
                Some(place) => self.map_gaiji(start, &f.name, place),
                None => self.map_gaiji(start, &f.name, &format_args!("field {}", f.number)),
            }
        }
        // Trim padding where the layout says the field is padded.
        let mut end = self.text.len();
        match f.pad {
            Pad::None => {}
            Pad::Space => end = start + self.text[start..end].trim_end_matches(' ').len(),
            Pad::Zenkaku => end = start + self.text[start..end].trim_end_matches([' ', '\u{3000}']).len(),
        }
        self.text.truncate(end);
        let s = &self.text[start..end];
        // A field that is empty or only padding is null, whatever its type (SPEC §5.1).
        if s.chars().all(|c| c == ' ' || c == '\u{3000}') {
            self.text.truncate(start);
            return Ok((Val::Null, start, start));
        }
        if f.normalize_insurer && s.len() == 8 && s.starts_with("00") && s.bytes().all(|b| b.is_ascii_digit()) {
            self.text.replace_range(start..start + 2, "");
        }
        let end = self.text.len();
        let s = &self.text[start..end];
        let lim = &self.limits[fi];
        let v = match f.kind {
            FieldKind::Text => Val::Text,
            FieldKind::Int => {
                let t = s.trim_matches(' ');
                match parse_int(t) {
                    Some(i) if i >= lim.int_min && i <= lim.int_max => Val::Int(i),
                    Some(_) => return Err(err(RecordErrorKind::Number, Some(off), "integer out of range".into())),
                    None => return Err(err(RecordErrorKind::Number, Some(off), "not an integer".into())),
                }
            }
            FieldKind::Decimal(scale) => match parse_decimal(s.trim_matches(' '), scale, lim.decimal_precision) {
                Some(d) => Val::Dec(d),
                None => {
                    return Err(err(
                        RecordErrorKind::Number,
                        Some(off),
                        format!("not a decimal with at most {scale} decimal places that fits its column"),
                    ));
                }
            },
            FieldKind::Date(style) => match parse_date(s, style, f.ends_period, self.eras) {
                Ok(Some(d)) => Val::Date(d),
                Ok(None) => Val::Null,
                Err(e) => return Err(err(RecordErrorKind::Date, Some(off), format!("invalid date ({})", e.describe()))),
            },
        };
        Ok((v, start, end))
    }

    /// The key of the primary record set's row of a record that failed to convert, as key parts
    /// joined by U+001F (text as is, integers in decimal, dates as YYYY-MM-DD), when every key
    /// field can be read on its own; `None` when the key itself cannot be read.
    pub fn primary_key(&mut self, rec: &RecordView<'_>) -> Option<String> {
        let layout = self.layout;
        if let super::compile::SourceFormat::Csv { fields, .. } = layout.format
            && rec.field_count() != fields
        {
            return None;
        }
        let out = layout.outputs.iter().find(|o| o.set.name == layout.primary_record_set.name)?;
        self.text.clear();
        self.warnings.clear();
        let mut key = String::new();
        for (n, &k) in out.set.key.iter().enumerate() {
            if n > 0 {
                key.push('\u{1F}');
            }
            match &out.columns[k] {
                ColumnSource::Const(Scalar::Utf8(v)) => key.push_str(v),
                ColumnSource::Const(Scalar::Int(i)) => key.push_str(&i.to_string()),
                ColumnSource::Field { field, .. } => {
                    let (v, s, e) = self.convert_field(rec, *field).ok()?;
                    match v {
                        Val::Text => {
                            let t = &self.text[s..e];
                            if out.set.columns[k].shape.is_some_and(|sh| !sh.accepts(t)) {
                                return None;
                            }
                            key.push_str(t);
                        }
                        Val::Int(i) => key.push_str(&i.to_string()),
                        Val::Date(d) => key.push_str(&crate::codec::wareki::from_date32(d)?.format("%Y-%m-%d").to_string()),
                        Val::Null | Val::Dec(_) => return None,
                    }
                }
                _ => return None,
            }
        }
        Some(key)
    }

    /// Converts every field of `rec`. On success the values wait in the mapper for `append`.
    pub fn convert(&mut self, rec: &RecordView<'_>) -> Result<(), RecordError> {
        let layout = self.layout;
        self.vals.clear();
        self.spans.clear();
        self.text.clear();
        self.warnings.clear();
        if let super::compile::SourceFormat::Csv { fields, .. } = layout.format
            && rec.field_count() != fields
        {
            return Err(RecordError {
                kind: RecordErrorKind::FieldCount,
                field: None,
                place: None,
                offset: Some(rec.offset),
                detail: format!("{} fields, expected {fields}", rec.field_count()),
            });
        }
        if let Some(fault) = rec.fault() {
            return Err(RecordError {
                kind: RecordErrorKind::Structure,
                field: None,
                place: Some(format!("element <{}>", fault.element)),
                offset: Some(fault.offset),
                detail: fault.detail.clone(),
            });
        }
        for fi in 0..layout.fields.len() {
            let (v, start, end) = self.convert_field(rec, fi)?;
            self.vals.push(v);
            self.spans.push((start, end));
        }
        self.convert_entries(rec)?;
        // Which outputs apply, and their keys.
        for (oi, o) in layout.outputs.iter().enumerate() {
            let emit = o.when_present.iter().all(|&f| self.present(f))
                && (o.when_any_present.is_empty() || o.when_any_present.iter().any(|&f| self.present(f)));
            self.emit[oi] = emit;
            if !emit {
                continue;
            }
            for &k in &o.set.key {
                let col = &o.set.columns[k];
                if let ColumnSource::Field { field, .. } = &o.columns[k] {
                    let f = &layout.fields[*field];
                    let err = |detail: String| RecordError {
                        kind: RecordErrorKind::Key,
                        field: Some((f.number, f.name.clone())),
                        place: f.place.clone(),
                        offset: Some(rec.offset),
                        detail,
                    };
                    if !self.present(*field) {
                        return Err(err(format!("key {} is missing", col.name)));
                    }
                    // A malformed key is left to the shape rule of the validate stage
                    // (`<set>.<column>.shape`), which quarantines it with its rule id.
                    let well_formed = col.shape.is_none_or(|sh| sh.accepts(self.text_of(*field)));
                    if col.name == "insurer_no"
                        && well_formed
                        && layout.envelope.as_ref().and_then(|e| e.data_insurer).is_none()
                        && self.text_of(*field) != self.insurer_no
                    {
                        return Err(RecordError {
                            kind: RecordErrorKind::Insurer,
                            field: Some((f.number, f.name.clone())),
                            place: f.place.clone(),
                            offset: Some(rec.offset),
                            detail: format!("insurer_no is not the job's insurer {}", self.insurer_no),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Numbered entries of an XML record: numbers checked against the list's range, given once
    /// each; values through the 外字 table; ordered by number.
    fn convert_entries(&mut self, rec: &RecordView<'_>) -> Result<(), RecordError> {
        self.entries.clear();
        for e in rec.entries() {
            let Some(list) = self.layout.lists.get(e.list) else { continue };
            let err = |detail: String| RecordError {
                kind: RecordErrorKind::ItemNumber,
                field: Some((e.list + 1, list.name.clone())),
                place: Some(format!("element <{}>", list.element)),
                offset: Some(e.offset),
                detail,
            };
            let text = std::str::from_utf8(rec.text(e.number)).unwrap_or_default();
            let (lo, hi) = list.numbers;
            let n = match parse_int(text.trim_matches([' ', '\t', '\n', '\r'])) {
                Some(n) if (lo..=hi).contains(&n) => n as i32,
                Some(n) => return Err(err(format!("number {n} is outside {lo}–{hi}"))),
                None => return Err(err("the number is not an integer".into())),
            };
            let value = match e.value {
                None => None,
                Some(span) => {
                    let start = self.text.len();
                    self.text.push_str(std::str::from_utf8(rec.text(span)).unwrap_or_default());
                    self.map_gaiji(start, &list.name, &format_args!("element <{}> no {n}", list.element));
                    if self.text[start..].chars().all(|c| matches!(c, ' ' | '\u{3000}' | '\t' | '\n' | '\r')) {
                        self.text.truncate(start);
                        None
                    } else {
                        Some((start, self.text.len()))
                    }
                }
            };
            self.entries.push(Entry { list: e.list, number: n, value });
        }
        self.entries.sort_by_key(|e| (e.list, e.number));
        if let Some(w) = self.entries.windows(2).find(|w| w[0].list == w[1].list && w[0].number == w[1].number) {
            let (li, n) = (w[1].list, w[1].number);
            let list = &self.layout.lists[li];
            let offset = rec.entries().iter().filter(|e| e.list == li).nth(1).map(|e| e.offset);
            return Err(RecordError {
                kind: RecordErrorKind::ItemNumber,
                field: Some((li + 1, list.name.clone())),
                place: Some(format!("element <{}>", list.element)),
                offset: offset.or(Some(rec.offset)),
                detail: format!("number {n} is given twice"),
            });
        }
        Ok(())
    }

    /// The apply-order date of the converted record.
    pub fn order_date(&self) -> Option<i32> {
        match self.layout.apply_order_field.map(|f| self.vals[f]) {
            Some(Val::Date(d)) => Some(d),
            _ => None,
        }
    }

    /// Appends the converted record to the builders of the outputs that apply. `builders` is
    /// indexed like `layout.outputs`.
    pub fn append(&mut self, builders: &mut [SetBuilder], file: &str, record_no: u64, offset: u64) {
        let order = self.order_date();
        for (oi, o) in self.layout.outputs.iter().enumerate() {
            if !self.emit[oi] {
                continue;
            }
            let b = &mut builders[oi];
            for (ci, src) in o.columns.iter().enumerate() {
                let col = b.column(ci);
                match src {
                    ColumnSource::Null => col.append_null(),
                    ColumnSource::Const(s) => {
                        col.append(scalar_value(s));
                    }
                    ColumnSource::Field { field, nfkc } => {
                        let v = match self.vals[*field] {
                            Val::Null => Value::Null,
                            Val::Text if *nfkc => {
                                self.kana.clear();
                                let (s, e) = self.spans[*field];
                                kana::nfkc_into(&self.text[s..e], &mut self.kana);
                                Value::Str(&self.kana)
                            }
                            Val::Text => {
                                let (s, e) = self.spans[*field];
                                Value::Str(&self.text[s..e])
                            }
                            Val::Int(i) => Value::Int(i),
                            Val::Dec(d) => Value::Decimal(d),
                            Val::Date(d) => Value::Date(d),
                        };
                        col.append(v);
                    }
                    ColumnSource::Lookup { field, values } => {
                        // An integer field is looked up by its value (` 1` and `01` are 1).
                        let v = match self.vals[*field] {
                            Val::Null => None,
                            Val::Int(i) => values.get(i.to_string().as_str()),
                            _ => values.get(self.text_of(*field)),
                        };
                        match v {
                            Some(s) => {
                                col.append(scalar_value(s));
                            }
                            None => col.append_null(),
                        }
                    }
                    ColumnSource::List(li) => {
                        let text = &self.text;
                        col.append_numbered(
                            self.entries.iter().filter(|e| e.list == *li).map(|e| (e.number, e.value.map(|(s, e)| &text[s..e]))),
                        );
                    }
                    ColumnSource::FirstMatch(rules) => {
                        let hit = rules.iter().find(|(c, _)| match c {
                            Condition::Always => true,
                            Condition::AllPresent(fs) => fs.iter().all(|&f| self.present(f)),
                            Condition::In { field, values } => self.present(*field) && values.iter().any(|v| v == self.text_of(*field)),
                        });
                        match hit {
                            Some((_, s)) => {
                                col.append(scalar_value(s));
                            }
                            None => col.append_null(),
                        }
                    }
                }
            }
            b.end_row(file, record_no, offset, order);
        }
    }
}

fn scalar_value(s: &Scalar) -> Value<'_> {
    match s {
        Scalar::Utf8(v) => Value::Str(v),
        Scalar::Int(i) => Value::Int(*i),
    }
}

/// ASCII digits with an optional leading sign.
fn parse_int(t: &str) -> Option<i64> {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// `52.3` with `scale` 1 → 523. More decimal places than the scale, or more digits than the
/// precision, is not a value of the column.
fn parse_decimal(t: &str, scale: i8, precision: Option<u8>) -> Option<i128> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > scale.max(0) as usize {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    for _ in frac.len()..scale.max(0) as usize {
        v = v.checked_mul(10)?;
    }
    if let Some(p) = precision
        && v >= 10i128.checked_pow(p as u32)?
    {
        return None;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_ints() {
        assert_eq!(parse_decimal("52.3", 1, Some(6)), Some(523));
        assert_eq!(parse_decimal("52", 1, Some(6)), Some(520));
        assert_eq!(parse_decimal("52.34", 1, Some(6)), None);
        assert_eq!(parse_decimal("123456.7", 1, Some(6)), None);
        assert_eq!(parse_decimal("x", 1, None), None);
        assert_eq!(parse_int("090"), Some(90));
        assert_eq!(parse_int("9 0"), None);
        assert_eq!(parse_int(""), None);
    }
}
