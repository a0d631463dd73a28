//! Record sets of the platform (SPEC §5), declared as data in `schemas/*.toml`.
//!
//! A schema file names the set, its Japanese label, its key and its columns (name, Arrow type,
//! nullability, Japanese label, and for key columns the shape a value must have). The provenance
//! columns every set carries — `source_file`, `source_record`, `source_offset` and `row_hash` —
//! are added here, not written in each file, so they cannot drift apart.
//!
//! ```toml
//! name = "recipient"
//! label = "受給者"
//! key = ["insurer_no", "insured_no", "change_date"]
//! [[columns]]
//! name = "insurer_no"      # column name: part of the platform contract
//! type = "utf8"            # utf8 | int32 | int64 | date32 | decimal128(p,s) | boolean | list<struct<a:int32,b:utf8>>
//! label = "保険者番号"
//! nullable = false         # default true; key columns are never null
//! shape = "digits:6"       # digits:N (N ASCII digits) or chars:N (N characters): rule `<set>.<column>.shape`
//! code_table = "sex"       # a coded column: rule `<set>.<column>.code` (mappings/codes/<table>.tsv)
//! ends_period = false      # true for columns that end a period (`*_to`, `loss_date`): 99999999 means no end
//! ```
//! A set names the date its codes must be valid on with a top-level `code_date = "<column>"`.
//! Validation rules live next to the schema, in `schemas/<set>.rules.toml` (see `validate::rules`).

mod types;

pub use types::{TypeError, parse_type};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Names of the provenance columns, in the order they follow the set's own columns.
pub const SOURCE_FILE: &str = "source_file";
pub const SOURCE_RECORD: &str = "source_record";
pub const SOURCE_OFFSET: &str = "source_offset";
pub const ROW_HASH: &str = "row_hash";
pub const PROVENANCE: [&str; 4] = [SOURCE_FILE, SOURCE_RECORD, SOURCE_OFFSET, ROW_HASH];

/// The form a key value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Exactly N ASCII digits.
    Digits(usize),
    /// Exactly N characters.
    Chars(usize),
}

impl Shape {
    fn parse(s: &str) -> Option<Shape> {
        let (kind, n) = s.split_once(':')?;
        let n: usize = n.parse().ok()?;
        match kind {
            "digits" => Some(Shape::Digits(n)),
            "chars" => Some(Shape::Chars(n)),
            _ => None,
        }
    }

    pub fn accepts(self, value: &str) -> bool {
        match self {
            Shape::Digits(n) => value.len() == n && value.bytes().all(|b| b.is_ascii_digit()),
            Shape::Chars(n) => value.chars().count() == n,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Shape::Digits(n) => format!("{n} digits"),
            Shape::Chars(n) => format!("{n} characters"),
        }
    }
}

/// One column of a record set.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    pub nullable: bool,
    pub label: String,
    pub shape: Option<Shape>,
    pub ends_period: bool,
    /// The code table of a coded column (`mappings/codes/<name>.tsv`).
    pub code_table: Option<String>,
}

/// A record set: its columns (provenance last) and key.
#[derive(Debug, Clone)]
pub struct RecordSetSchema {
    pub name: String,
    pub label: String,
    pub description: String,
    /// The set's own columns followed by the four provenance columns.
    pub columns: Vec<Column>,
    /// Indices of the key columns in `columns`, in key order.
    pub key: Vec<usize>,
    /// The column whose date a code must be valid on (code tables carry effective dates).
    pub code_date: Option<String>,
    pub arrow: SchemaRef,
}

impl RecordSetSchema {
    /// Number of the set's own columns (without provenance).
    pub fn content_len(&self) -> usize {
        self.columns.len() - PROVENANCE.len()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn key_names(&self) -> Vec<&str> {
        self.key.iter().map(|&i| self.columns[i].name.as_str()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{file}: {source}")]
    Toml { file: String, source: toml::de::Error },
    #[error("{file}: column `{column}`: {reason}")]
    Column { file: String, column: String, reason: String },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    /// Record set name, as the platform knows it.
    name: String,
    /// Japanese name.
    label: String,
    #[serde(default)]
    description: String,
    /// Key columns, in order.
    key: Vec<String>,
    columns: Vec<ColumnFile>,
    /// The column whose date codes must be valid on.
    #[serde(default)]
    code_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnFile {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    label: String,
    #[serde(default)]
    nullable: Option<bool>,
    #[serde(default)]
    shape: Option<String>,
    #[serde(default)]
    ends_period: bool,
    #[serde(default)]
    code_table: Option<String>,
}

/// Parses one schema file.
pub fn parse_schema(file: &str, text: &str) -> Result<RecordSetSchema, SchemaError> {
    let f: SchemaFile = toml::from_str(text).map_err(|source| SchemaError::Toml { file: file.to_string(), source })?;
    let invalid = |reason: String| SchemaError::Invalid { file: file.to_string(), reason };
    let mut columns = Vec::with_capacity(f.columns.len() + PROVENANCE.len());
    for c in f.columns {
        let col_err = |reason: String| SchemaError::Column { file: file.to_string(), column: c.name.clone(), reason };
        if PROVENANCE.contains(&c.name.as_str()) {
            return Err(col_err("is a provenance column, added to every set: do not declare it".into()));
        }
        if columns.iter().any(|x: &Column| x.name == c.name) {
            return Err(col_err("declared twice".into()));
        }
        let data_type = parse_type(&c.data_type).map_err(|e| col_err(e.to_string()))?;
        let shape = match &c.shape {
            None => None,
            Some(s) => Some(Shape::parse(s).ok_or_else(|| col_err(format!("shape `{s}` is not digits:N or chars:N")))?),
        };
        let is_key = f.key.contains(&c.name);
        if c.ends_period && data_type != DataType::Date32 {
            return Err(col_err("ends_period is only for date32 columns".into()));
        }
        columns.push(Column {
            nullable: if is_key { false } else { c.nullable.unwrap_or(true) },
            name: c.name,
            data_type,
            label: c.label,
            shape,
            ends_period: c.ends_period,
            code_table: c.code_table,
        });
    }
    for (name, ty, label) in [
        (SOURCE_FILE, DataType::Utf8, "取込ファイル"),
        (SOURCE_RECORD, DataType::Int64, "レコード番号"),
        (SOURCE_OFFSET, DataType::Int64, "バイト位置"),
        (ROW_HASH, DataType::Utf8, "行ハッシュ"),
    ] {
        columns.push(Column {
            name: name.into(),
            data_type: ty,
            nullable: false,
            label: label.into(),
            shape: None,
            ends_period: false,
            code_table: None,
        });
    }
    let mut key = Vec::new();
    for k in &f.key {
        let i = columns.iter().position(|c| &c.name == k).ok_or_else(|| invalid(format!("key column `{k}` is not a column")))?;
        key.push(i);
    }
    if let Some(d) = &f.code_date
        && !columns.iter().any(|c| &c.name == d && c.data_type == DataType::Date32)
    {
        return Err(invalid(format!("code_date `{d}` is not a date32 column")));
    }
    if key.is_empty() {
        return Err(invalid("the key is empty".into()));
    }
    for required in ["insurer_no", "insured_no"] {
        if !columns.iter().any(|c| c.name == required) {
            return Err(invalid(format!("every record set carries `{required}`")));
        }
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let mut meta = std::collections::HashMap::new();
            meta.insert("label".to_string(), c.label.clone());
            Field::new(&c.name, c.data_type.clone(), c.nullable).with_metadata(meta)
        })
        .collect();
    let mut meta = std::collections::HashMap::new();
    meta.insert("kiban.record_set".to_string(), f.name.clone());
    meta.insert("kiban.key".to_string(), f.key.join(","));
    let arrow = Arc::new(Schema::new_with_metadata(fields, meta));
    Ok(RecordSetSchema { name: f.name, label: f.label, description: f.description, columns, key, code_date: f.code_date, arrow })
}

/// All record sets, by name.
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    pub sets: BTreeMap<String, Arc<RecordSetSchema>>,
}

impl SchemaRegistry {
    pub fn get(&self, name: &str) -> Option<&Arc<RecordSetSchema>> {
        self.sets.get(name)
    }

    pub fn insert(&mut self, file: &str, s: RecordSetSchema) -> Result<(), SchemaError> {
        let expected = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if expected != s.name {
            return Err(SchemaError::Invalid {
                file: file.into(),
                reason: format!("declares `{}`; the file must be named after its set", s.name),
            });
        }
        self.sets.insert(s.name.clone(), Arc::new(s));
        Ok(())
    }
}
