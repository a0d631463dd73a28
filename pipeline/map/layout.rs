//! Mapping files (`mappings/*.toml`): a source layout and which record-set columns it fills.
//!
//! ```toml
//! name = "kokuhoren_5311"          # what jobs call it
//! format = "csv"                   # csv | fixed | xml
//! encoding = "cp932"               # cp932 | utf8 | declared (xml: from the XML declaration)
//! mode = "incremental"             # snapshot (the file is the whole set) | incremental (upserts)
//! primary_record_set = "recipient" # where records with a record error are quarantined
//! [csv]                            # csv only
//! quoting = true                   # whether `"` encloses fields
//! fields = 80                      # field count of a data record
//! header = ["保険者番号", …]         # optional: record 1 is a row of these column names (checked)
//! [fixed]                          # fixed only
//! record_len = 400                 # bytes per record
//! terminator = "crlf"              # crlf | none | auto
//! [xml]                            # xml only
//! root = "IkenshoList"             # the root element
//! record = "Ikensho"               # one record per child element of this name
//! insurer_attribute = "insurerNo"  # optional: a root attribute that must equal the job's insurer
//! max_depth = 16                   # optional limits (file error when exceeded)
//! max_attributes = 16
//! max_text_bytes = 1048576
//! max_record_bytes = 8388608
//! [[lists]]                        # xml only: a repeated, numbered element → list<struct<no, value>>
//! name = "items"
//! element = "Item"
//! number = "no"                    # the attribute holding the number
//! value_attribute = "value"        # the attribute holding the value (none: the element's text)
//! numbers = [1, 113]               # valid numbers; another is a record error
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
//! field = 8                        # csv: 1-based field number; fixed: bytes = [first byte, length];
//!                                  # xml: element = "InsuredNo" | root_attribute = "insurerNo"
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
    pub xml: Option<XmlSection>,
    #[serde(default)]
    pub envelope: Option<EnvelopeSection>,
    #[serde(default)]
    pub apply_order: Option<ApplyOrderSection>,
    pub fields: Vec<FieldSection>,
    #[serde(default)]
    pub lists: Vec<ListSection>,
    pub outputs: Vec<OutputSection>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Csv,
    Fixed,
    Xml,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingName {
    Cp932,
    Utf8,
    /// XML: the encoding its declaration names (the reader decodes to UTF-8).
    Declared,
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
pub struct XmlSection {
    /// Name of the root element.
    pub root: String,
    /// Name of the child element of the root that is one record.
    pub record: String,
    /// An attribute of the root that names the insurer; it must equal the job's.
    #[serde(default)]
    pub insurer_attribute: Option<String>,
    /// Deepest element nesting allowed (the root is depth 1).
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Most attributes one element may have.
    #[serde(default)]
    pub max_attributes: Option<usize>,
    /// Longest text of one element, in UTF-8 bytes.
    #[serde(default)]
    pub max_text_bytes: Option<usize>,
    /// Largest record (or markup between records), in bytes.
    #[serde(default)]
    pub max_record_bytes: Option<usize>,
}

/// A repeated, numbered element of an XML record, filling a `list<struct<no:int32, …:utf8>>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSection {
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// The element's name.
    pub element: String,
    /// The attribute holding the entry's number.
    pub number: String,
    /// The attribute holding the value; without it, the element's text is the value.
    #[serde(default)]
    pub value_attribute: Option<String>,
    /// The valid numbers, inclusive; another is a record error.
    pub numbers: [i64; 2],
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
    /// XML: the child element of the record holding the value.
    #[serde(default)]
    pub element: Option<String>,
    /// XML: the attribute of the root element holding the value.
    #[serde(default)]
    pub root_attribute: Option<String>,
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
