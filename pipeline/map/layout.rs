//! Mapping files (`mappings/*.toml`): a source layout and which record-set columns it fills.
//!
//! ```toml
//! name = "kokuhoren_5311"          # what jobs call it
//! format = "csv"                   # csv | fixed
//! encoding = "cp932"               # cp932 | utf8
//! mode = "incremental"             # snapshot (the file is the whole set) | incremental (upserts)
//! primary_record_set = "recipient" # where records with a record error are quarantined
//! [csv]                            # csv only
//! quoting = true                   # whether `"` encloses fields
//! fields = 80                      # field count of a data record
//! header = ["保険者番号", …]         # optional: record 1 is a row of these column names (checked)
//! [fixed]                          # fixed only
//! record_len = 400                 # bytes per record
//! terminator = "crlf"              # crlf | none | auto
//! [envelope]                       # optional: header/control, data and trailer/end records
//! kind = { field = 1 }             # where the record kind is ({ bytes = [first, len] } for fixed)
//! data_kind = "2"
//! data_insurer = "insurer_no"      # a data record's insurer must equal the header's
//! [envelope.header]                # kind, fields (csv), count, insurer, expect, order
//! [envelope.trailer]               # kind, fields (csv), count, insurer
//! [apply_order]
//! date_field = "change_date"       # rows for one key are applied by (this date, file, record)
//! [[fields]]                       # every field of a data record
//! name = "insured_no"
//! field = 8                        # csv: 1-based field number; fixed: bytes = [first byte, length]
//! type = "text"                    # text | int | decimal | date
//! date = "yyyymmdd"                # date style: yyyymmdd | yyyymm | iso | wareki7 | wareki_letter | wareki_kanji | wareki
//! pad = "space"                    # none | space | zenkaku: trailing padding trimmed
//! normalize = "insurer_no"         # 8-digit `00`+6 form to 6 digits
//! code_table = "sex"               # the code table of a coded field (mappings/codes/<name>.tsv)
//! ends_period = true               # 99999999 means "no end" (SPEC §4.7)
//! [[outputs]]                      # one row of a record set per data record
//! record_set = "copayment_ratio"
//! when_present = ["copay_from"]    # only when all of these fields are present
//! when_any_present = ["item_01"]   # only when one of these is present
//! [outputs.columns]                # column = "field" | { field, normalize = "nfkc" } | { value }
//! ratio = "copay_ratio"            #   | { field, lookup = "table" } | { first_match = [...] }
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutFile {
    pub name: String,
    #[serde(default)]
    pub label: String,
    pub format: FormatName,
    pub encoding: EncodingName,
    pub mode: ModeName,
    pub primary_record_set: String,
    #[serde(default)]
    pub csv: Option<CsvSection>,
    #[serde(default)]
    pub fixed: Option<FixedSection>,
    #[serde(default)]
    pub envelope: Option<EnvelopeSection>,
    #[serde(default)]
    pub apply_order: Option<ApplyOrderSection>,
    pub fields: Vec<FieldSection>,
    pub outputs: Vec<OutputSection>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Csv,
    Fixed,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingName {
    Cp932,
    Utf8,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    Snapshot,
    Incremental,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSection {
    /// Whether `"` encloses fields.
    pub quoting: bool,
    /// Number of fields of a data record.
    pub fields: usize,
    /// Column names of a header row: when given, record 1 must be exactly these names (a UTF-8
    /// byte order mark before the first is allowed); it counts as a record but not as data.
    #[serde(default)]
    pub header: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedSection {
    /// Bytes per record, without the terminator.
    pub record_len: usize,
    /// `crlf`, `none`, or `auto` (CRLF when the first record is followed by one).
    pub terminator: String,
}

/// A place in a record: a CSV field number (1-based) or a byte range `[first, len]` (1-based).
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct LocSection {
    #[serde(default)]
    pub field: Option<usize>,
    #[serde(default)]
    pub bytes: Option<[usize; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSection {
    /// Where the record kind is.
    pub kind: LocSection,
    /// The kind of a data record.
    pub data_kind: String,
    /// The field of a data record that holds its insurer; it must equal the header's.
    #[serde(default)]
    pub data_insurer: Option<String>,
    #[serde(default)]
    pub header: Option<EnvelopeRecordSection>,
    #[serde(default)]
    pub trailer: Option<EnvelopeRecordSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeRecordSection {
    pub kind: String,
    /// CSV: the number of fields of this record.
    #[serde(default)]
    pub fields: Option<usize>,
    /// Where the count of data records is.
    #[serde(default)]
    pub count: Option<LocSection>,
    /// Where the insurer number is; it must equal the job's.
    #[serde(default)]
    pub insurer: Option<LocSection>,
    /// Fields that must hold a fixed value.
    #[serde(default)]
    pub expect: Vec<ExpectSection>,
    /// Header fields that order the files of one load.
    #[serde(default)]
    pub order: Vec<LocSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSection {
    #[serde(default)]
    pub field: Option<usize>,
    #[serde(default)]
    pub bytes: Option<[usize; 2]>,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyOrderSection {
    pub date_field: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSection {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub field: Option<usize>,
    #[serde(default)]
    pub bytes: Option<[usize; 2]>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub pad: Option<String>,
    #[serde(default)]
    pub normalize: Option<String>,
    #[serde(default)]
    pub code_table: Option<String>,
    #[serde(default)]
    pub ends_period: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    pub record_set: String,
    #[serde(default)]
    pub when_present: Vec<String>,
    #[serde(default)]
    pub when_any_present: Vec<String>,
    pub columns: BTreeMap<String, ColumnSection>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ColumnSection {
    Field(String),
    Spec(ColumnSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub normalize: Option<String>,
    #[serde(default)]
    pub lookup: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub first_match: Option<Vec<MatchRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRule {
    #[serde(default)]
    pub when_present: Vec<String>,
    #[serde(default)]
    pub when_in: Option<WhenIn>,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenIn {
    pub field: String,
    pub values: Vec<String>,
}
