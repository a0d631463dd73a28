//! Quarantined records and warnings, as Arrow batches.
//!
//! A quarantined record keeps its raw bytes (as in the file, undecoded), so nothing is lost and
//! an operator can fix and resend it; the message names file, record, field and byte offset but
//! never the content.

use arrow::array::{ArrayBuilder, ArrayRef, BinaryBuilder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use std::sync::{Arc, LazyLock};

static QUARANTINE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_record", DataType::Int64, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("record_set", DataType::Utf8, false),
        Field::new("error_kind", DataType::Utf8, false),
        Field::new("field_no", DataType::Int64, true),
        Field::new("field_name", DataType::Utf8, true),
        Field::new("byte_offset", DataType::Int64, true),
        Field::new("rule_ids", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, false),
        Field::new("raw_record", DataType::Binary, false),
    ]))
});

static WARNING_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_record", DataType::Int64, false),
        Field::new("record_set", DataType::Utf8, true),
        Field::new("warning_kind", DataType::Utf8, false),
        Field::new("field_name", DataType::Utf8, true),
        Field::new("rule_id", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, false),
    ]))
});

pub fn quarantine_schema() -> SchemaRef {
    QUARANTINE_SCHEMA.clone()
}

pub fn warning_schema() -> SchemaRef {
    WARNING_SCHEMA.clone()
}

/// What a quarantined record is withheld for.
pub struct QuarantineEntry<'a> {
    pub file: &'a str,
    pub record_no: u64,
    pub offset: u64,
    pub record_set: &'a str,
    pub kind: &'a str,
    pub field_no: Option<u64>,
    pub field_name: Option<&'a str>,
    pub byte_offset: Option<u64>,
    /// Validation rules the row failed, comma-separated (record errors have none).
    pub rule_ids: Option<&'a str>,
    pub message: &'a str,
    pub raw: &'a [u8],
}

#[derive(Default)]
pub struct QuarantineBuilder {
    file: StringBuilder,
    record: Int64Builder,
    offset: Int64Builder,
    set: StringBuilder,
    kind: StringBuilder,
    field_no: Int64Builder,
    field_name: StringBuilder,
    byte_offset: Int64Builder,
    rule_ids: StringBuilder,
    message: StringBuilder,
    raw: BinaryBuilder,
}

impl QuarantineBuilder {
    pub fn push(&mut self, e: QuarantineEntry<'_>) {
        self.file.append_value(e.file);
        self.record.append_value(e.record_no as i64);
        self.offset.append_value(e.offset as i64);
        self.set.append_value(e.record_set);
        self.kind.append_value(e.kind);
        self.field_no.append_option(e.field_no.map(|v| v as i64));
        self.field_name.append_option(e.field_name);
        self.byte_offset.append_option(e.byte_offset.map(|v| v as i64));
        self.rule_ids.append_option(e.rule_ids);
        self.message.append_value(e.message);
        self.raw.append_value(e.raw);
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.file.finish()),
            Arc::new(self.record.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.set.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.field_no.finish()),
            Arc::new(self.field_name.finish()),
            Arc::new(self.byte_offset.finish()),
            Arc::new(self.rule_ids.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.raw.finish()),
        ];
        RecordBatch::try_new(quarantine_schema(), cols)
    }
}

#[derive(Default)]
pub struct WarningBuilder {
    file: StringBuilder,
    record: Int64Builder,
    set: StringBuilder,
    kind: StringBuilder,
    field: StringBuilder,
    rule_id: StringBuilder,
    message: StringBuilder,
}

/// One warning: a record kept, with something worth a look.
pub struct WarningEntry<'a> {
    pub file: &'a str,
    pub record_no: u64,
    pub record_set: Option<&'a str>,
    /// `unmapped_gaiji`, `key_conflict`, or `rule` for a warning rule.
    pub kind: &'a str,
    pub field: Option<&'a str>,
    pub rule_id: Option<&'a str>,
    pub message: &'a str,
}

impl WarningBuilder {
    /// Warnings pushed since the last `finish`.
    pub fn len(&self) -> usize {
        self.record.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, w: WarningEntry<'_>) {
        self.file.append_value(w.file);
        self.record.append_value(w.record_no as i64);
        self.set.append_option(w.record_set);
        self.kind.append_value(w.kind);
        self.field.append_option(w.field);
        self.rule_id.append_option(w.rule_id);
        self.message.append_value(w.message);
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.file.finish()),
            Arc::new(self.record.finish()),
            Arc::new(self.set.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.field.finish()),
            Arc::new(self.rule_id.finish()),
            Arc::new(self.message.finish()),
        ];
        RecordBatch::try_new(warning_schema(), cols)
    }
}
