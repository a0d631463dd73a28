//! Arrow builders for one record set: rows are appended column by column straight from the
//! decoded fields, with no intermediate row objects.

use crate::schema::RecordSetSchema;
use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder,
    StructBuilder, new_null_array,
};
use arrow::datatypes::DataType;
use std::sync::Arc;

/// A typed value ready to append.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Decimal(i128),
    Date(i32),
}

pub enum ColumnBuilder {
    Utf8(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Date32(Date32Builder),
    Decimal(Decimal128Builder),
    Boolean(BooleanBuilder),
    /// `list<struct<no:int32, value:utf8>>`: the numbered entries of an XML record (意見書 items).
    NumberedList(ListBuilder<StructBuilder>),
    /// A column of another type, which no layout fills: only nulls.
    Nulls(DataType, usize),
}

impl ColumnBuilder {
    pub fn new(dt: &DataType) -> Self {
        match dt {
            DataType::Utf8 => ColumnBuilder::Utf8(StringBuilder::new()),
            DataType::Int32 => ColumnBuilder::Int32(Int32Builder::new()),
            DataType::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
            DataType::Date32 => ColumnBuilder::Date32(Date32Builder::new()),
            DataType::Decimal128(p, s) => ColumnBuilder::Decimal(
                Decimal128Builder::new().with_precision_and_scale(*p, *s).unwrap_or_else(|_| Decimal128Builder::new()),
            ),
            DataType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::new()),
            DataType::List(item) => match item.data_type() {
                DataType::Struct(fs) if fs.len() == 2 && fs[0].data_type() == &DataType::Int32 && fs[1].data_type() == &DataType::Utf8 => {
                    let values = StructBuilder::new(
                        fs.clone(),
                        vec![Box::new(Int32Builder::new()) as Box<dyn ArrayBuilder>, Box::new(StringBuilder::new())],
                    );
                    ColumnBuilder::NumberedList(ListBuilder::new(values).with_field(item.clone()))
                }
                _ => ColumnBuilder::Nulls(dt.clone(), 0),
            },
            other => ColumnBuilder::Nulls(other.clone(), 0),
        }
    }

    /// Appends a value. The compiler has checked types, so a mismatch can only come from a
    /// lookup or constant; it is stored as null rather than panicking. Returns false when the
    /// value did not fit (an integer outside Int32, a decimal beyond its precision).
    pub fn append(&mut self, v: Value<'_>) -> bool {
        match (self, v) {
            (ColumnBuilder::Utf8(b), Value::Str(s)) => b.append_value(s),
            (ColumnBuilder::Int32(b), Value::Int(i)) => match i32::try_from(i) {
                Ok(i) => b.append_value(i),
                Err(_) => {
                    b.append_null();
                    return false;
                }
            },
            (ColumnBuilder::Int64(b), Value::Int(i)) => b.append_value(i),
            (ColumnBuilder::Date32(b), Value::Date(d)) => b.append_value(d),
            (ColumnBuilder::Decimal(b), Value::Decimal(d)) => b.append_value(d),
            (ColumnBuilder::Nulls(_, n), _) => *n += 1,
            (c, _) => c.append_null(),
        }
        true
    }

    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Date32(b) => b.append_null(),
            ColumnBuilder::Decimal(b) => b.append_null(),
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::NumberedList(b) => b.append_null(),
            ColumnBuilder::Nulls(_, n) => *n += 1,
        }
    }

    /// Appends one list of numbered entries (a non-list column gets null).
    pub fn append_numbered<'v>(&mut self, entries: impl Iterator<Item = (i32, Option<&'v str>)>) {
        let ColumnBuilder::NumberedList(b) = self else {
            self.append_null();
            return;
        };
        let values = b.values();
        for (no, value) in entries {
            if let Some(n) = values.field_builder::<Int32Builder>(0) {
                n.append_value(no);
            }
            if let Some(v) = values.field_builder::<StringBuilder>(1) {
                v.append_option(value);
            }
            values.append(true);
        }
        b.append(true);
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Date32(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::NumberedList(b) => Arc::new(b.finish()),
            ColumnBuilder::Nulls(dt, n) => {
                let a = new_null_array(dt, *n);
                *n = 0;
                a
            }
        }
    }
}

/// Rows of one record set from one file, with their provenance and apply order.
pub struct SetBuilder {
    pub schema: Arc<RecordSetSchema>,
    columns: Vec<ColumnBuilder>,
    source_file: StringBuilder,
    source_record: Int64Builder,
    source_offset: Int64Builder,
    /// Date32 of the row's apply-order date (i32::MIN when the layout has none).
    pub order_date: Vec<i32>,
}

/// Finished rows of a record set: content and provenance columns except `row_hash`, which is
/// computed when the set is finalised, plus the apply-order date of each row.
pub struct SetRows {
    pub columns: Vec<ArrayRef>,
    pub order_date: Vec<i32>,
    /// Index of the file in the load, for ordering.
    pub file_seq: u32,
}

impl SetRows {
    /// Parts of one file's rows as one (there is at least one part per output).
    pub fn concat(parts: Vec<SetRows>, file_seq: u32) -> Result<SetRows, arrow::error::ArrowError> {
        let Some(first) = parts.first() else {
            return Err(arrow::error::ArrowError::InvalidArgumentError("no part of the rows".into()));
        };
        let columns = (0..first.columns.len())
            .map(|c| {
                let arrays: Vec<&dyn arrow::array::Array> = parts.iter().map(|p| p.columns[c].as_ref()).collect();
                arrow::compute::concat(&arrays)
            })
            .collect::<Result<_, _>>()?;
        let order_date = parts.iter().flat_map(|p| p.order_date.iter().copied()).collect();
        Ok(SetRows { columns, order_date, file_seq })
    }
}

impl SetBuilder {
    pub fn new(schema: Arc<RecordSetSchema>) -> Self {
        let columns = schema.columns[..schema.content_len()].iter().map(|c| ColumnBuilder::new(&c.data_type)).collect();
        SetBuilder {
            schema,
            columns,
            source_file: StringBuilder::new(),
            source_record: Int64Builder::new(),
            source_offset: Int64Builder::new(),
            order_date: Vec::new(),
        }
    }

    pub fn column(&mut self, i: usize) -> &mut ColumnBuilder {
        &mut self.columns[i]
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.order_date.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order_date.is_empty()
    }

    pub fn end_row(&mut self, file: &str, record_no: u64, offset: u64, order_date: Option<i32>) {
        self.source_file.append_value(file);
        self.source_record.append_value(record_no as i64);
        self.source_offset.append_value(offset as i64);
        self.order_date.push(order_date.unwrap_or(i32::MIN));
    }

    pub fn finish(&mut self, file_seq: u32) -> SetRows {
        let mut columns: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish()).collect();
        columns.push(Arc::new(self.source_file.finish()));
        columns.push(Arc::new(self.source_record.finish()));
        columns.push(Arc::new(self.source_offset.finish()));
        SetRows { columns, order_date: std::mem::take(&mut self.order_date), file_seq }
    }
}
