//! How a snapshot file keeps `row_hash` (行ハッシュ).
//!
//! A `row_hash` is XXH3-128 of a row's content (`map::rowset`). Everywhere a person or another
//! program meets it — in memory, in `_changes`, in `kiban query`, on the wire and on the
//! platform — it is text: 32 lowercase hex digits. A snapshot file (manifest format 2) keeps the
//! 16 bytes those digits spell, as `FIXED_LEN_BYTE_ARRAY(16)`, uncompressed and without
//! statistics: the bytes are random, so zstd saved nothing on them, and min/max of random values
//! prune nothing. Half the bytes, nothing to decompress and 16-byte comparisons took phase 1 of a
//! diff of 1M rows (every key and hash of both snapshots) from 90 to 65 ms and its CPU time from
//! 0.32 to 0.26 s, and the file is smaller, 42.0 → 40.6 MB (benches/e2e/README.md).
//!
//! ```text
//!  write   Utf8 hex ─► to_file ─► FixedSizeBinary(16) ─► snapshot file
//!  read    snapshot file ─► FixedSizeBinary(16), or Utf8 (format 1) ─┬─► to_text ─► Utf8 hex   (snapshot_batches, publish, query)
//!                                                                   └─► as_bytes ─► 16 bytes  (diff, phase 1)
//! ```
//!
//! Stores written before (format 1) keep the hex text; every reader takes both, so a store with
//! versions of both formats diffs, publishes and answers queries as one.

use crate::schema::ROW_HASH;
use arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use std::sync::Arc;

/// Bytes of a `row_hash`.
pub const BYTES: usize = 16;

/// The type of `row_hash` in a snapshot file of format 2.
pub fn stored_type() -> DataType {
    DataType::FixedSizeBinary(BYTES as i32)
}

/// The schema a file of `schema`'s rows is written with: `row_hash` as bytes; `None` when the
/// schema has no text `row_hash` (change rows, quarantine, warnings are written as they are).
pub fn file_schema(schema: &Schema) -> Option<(SchemaRef, usize)> {
    let (i, f) = schema.column_with_name(ROW_HASH)?;
    if f.data_type() != &DataType::Utf8 {
        return None;
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[i] = f.clone().with_data_type(stored_type());
    Some((Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())), i))
}

/// A batch of the set's rows as the file keeps them: column `index` (`row_hash`) as bytes.
pub fn to_file(batch: &RecordBatch, file_schema: &SchemaRef, index: usize) -> Result<RecordBatch, ArrowError> {
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(as_bytes(batch.column(index).as_ref())?);
    RecordBatch::try_new(file_schema.clone(), columns)
}

/// A batch read from a snapshot file with `row_hash` as text, whichever format the file has.
pub fn to_text(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let Some((i, f)) = batch.schema().column_with_name(ROW_HASH).map(|(i, f)| (i, f.clone())) else { return Ok(batch) };
    if f.data_type() != &stored_type() {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[i] = f.with_data_type(DataType::Utf8);
    let mut columns = batch.columns().to_vec();
    columns[i] = as_text(batch.column(i).as_ref())?;
    RecordBatch::try_new(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())), columns)
}

/// `row_hash` values as text: bytes become hex, text stays as it is.
pub fn as_text(column: &dyn Array) -> Result<ArrayRef, ArrowError> {
    match column.data_type() {
        DataType::Utf8 => Ok(arrow::array::make_array(column.to_data())),
        DataType::FixedSizeBinary(n) if *n as usize == BYTES => {
            let bytes = column.as_fixed_size_binary();
            let mut text = vec![0u8; bytes.len() * 2 * BYTES];
            for (i, out) in text.chunks_exact_mut(2 * BYTES).enumerate() {
                hex_into(bytes.value(i), out);
            }
            let offsets = arrow::buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(2 * BYTES, bytes.len()));
            Ok(Arc::new(StringArray::try_new(offsets, text.into(), bytes.nulls().cloned())?))
        }
        other => Err(ArrowError::SchemaError(format!("row_hash is {other}, neither text nor {BYTES} bytes"))),
    }
}

/// `row_hash` values as bytes: hex text (format 1, or in memory) is decoded and checked, bytes
/// pass. Nulls are kept; a text value that is not 32 lowercase hex digits is an error.
pub fn as_bytes(column: &dyn Array) -> Result<FixedSizeBinaryArray, ArrowError> {
    let bad = |i: usize| ArrowError::InvalidArgumentError(format!("row {i}: a row_hash that is not {} lowercase hex digits", 2 * BYTES));
    let decode = |values: &mut dyn Iterator<Item = Option<&str>>| -> Result<FixedSizeBinaryArray, ArrowError> {
        let (len, _) = values.size_hint();
        let mut out = Vec::with_capacity(len * BYTES);
        let mut nulls = arrow::array::BooleanBufferBuilder::new(len);
        for (i, v) in values.enumerate() {
            let mut bytes = [0u8; BYTES];
            match v {
                Some(v) => {
                    decode_hex(v.as_bytes(), &mut bytes).ok_or_else(|| bad(i))?;
                    nulls.append(true);
                }
                None => nulls.append(false),
            }
            out.extend_from_slice(&bytes);
        }
        let nulls = arrow::buffer::NullBuffer::new(nulls.finish());
        FixedSizeBinaryArray::try_new(BYTES as i32, out.into(), (nulls.null_count() > 0).then_some(nulls))
    };
    match column.data_type() {
        DataType::FixedSizeBinary(n) if *n as usize == BYTES => Ok(column.as_fixed_size_binary().clone()),
        DataType::Utf8 => match hashes_in_one_run(column.as_string::<i32>()) {
            Some(bytes) => Ok(bytes),
            // Nulls, another length or a wrong digit: value by value, so an error names its row.
            None => decode(&mut column.as_string::<i32>().iter()),
        },
        DataType::Utf8View => decode(&mut column.as_string_view().iter()),
        other => Err(ArrowError::SchemaError(format!("row_hash is {other}, neither text nor {BYTES} bytes"))),
    }
}

/// Whether the snapshot file at `path` keeps `row_hash` as bytes (format 2), from its footer.
pub fn file_keeps_bytes(path: &std::path::Path) -> Result<bool, super::StoreError> {
    let file = std::fs::File::open(path).map_err(|source| super::StoreError::Io { path: path.to_path_buf(), source })?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|source| super::StoreError::Parquet { path: path.to_path_buf(), source })?;
    Ok(builder.schema().field_with_name(ROW_HASH).is_ok_and(|f| f.data_type() == &stored_type()))
}

/// The hex digits of `bytes` into `out` (twice as long).
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[(b >> 4) as usize];
        pair[1] = DIGITS[(b & 0xF) as usize];
    }
}

/// The value of each lowercase hex digit; 0xFF for every other byte, so OR-ing the values of a
/// run of digits shows in its high bits whether any was not one.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Hex digits (twice as many as `out` has bytes) into `out`; false if any is not a lowercase hex
/// digit. No branch per digit: a snapshot's million hashes are converted in one pass.
fn decode_hex_run(text: &[u8], out: &mut [u8]) -> bool {
    let mut seen = 0u8;
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (HEX_VALUE[pair[0] as usize], HEX_VALUE[pair[1] as usize]);
        seen |= hi | lo;
        *o = (hi << 4) | (lo & 0x0F);
    }
    text.len() == 2 * out.len() && seen & 0xF0 == 0
}

/// Lowercase hex digits into bytes; `None` for anything else or another length.
fn decode_hex(text: &[u8], out: &mut [u8; BYTES]) -> Option<()> {
    decode_hex_run(text, out).then_some(())
}

/// The common case of [`as_bytes`] — hashes this process made: no nulls, each value 32 digits,
/// so the values are one run of digits — decoded in one pass; `None` when it is not that case
/// or a digit is wrong (the caller then finds the row).
fn hashes_in_one_run(text: &StringArray) -> Option<FixedSizeBinaryArray> {
    if text.null_count() > 0 {
        return None;
    }
    let offsets = text.value_offsets();
    if !offsets.windows(2).all(|w| w[1] - w[0] == 2 * BYTES as i32) {
        return None;
    }
    let start = usize::try_from(*offsets.first()?).ok()?;
    let digits = text.values().get(start..start + text.len() * 2 * BYTES)?;
    let mut out = vec![0u8; text.len() * BYTES];
    if !decode_hex_run(digits, &mut out) {
        return None;
    }
    FixedSizeBinaryArray::try_new(BYTES as i32, out.into(), None).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Text → bytes → text is the same text, nulls where they were.
        #[test]
        fn text_and_bytes_round_trip(values in proptest::collection::vec(proptest::option::of(any::<u128>()), 0..40)) {
            let text: StringArray = values.iter().map(|v| v.map(|v| format!("{v:032x}"))).collect();
            let bytes = as_bytes(&text).expect("bytes");
            prop_assert_eq!(bytes.len(), values.len());
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(bytes.is_null(i), v.is_none());
                if let Some(v) = v {
                    prop_assert_eq!(bytes.value(i), &v.to_be_bytes()[..]);
                }
            }
            let back = as_text(&bytes).expect("text");
            prop_assert_eq!(back.as_string::<i32>(), &text);
            // Views (how the diff reads text) decode the same.
            let views = arrow::compute::cast(&text, &DataType::Utf8View).expect("views");
            prop_assert_eq!(as_bytes(&views).expect("bytes"), bytes);
            // Without nulls the values are one run of digits (decoded in one pass), also when
            // the array is a slice of a longer one.
            let present: Vec<u128> = values.iter().flatten().copied().collect();
            let text: StringArray = present.iter().map(|v| Some(format!("{v:032x}"))).collect();
            let bytes = as_bytes(&text).expect("bytes");
            for (i, v) in present.iter().enumerate() {
                prop_assert_eq!(bytes.value(i), &v.to_be_bytes()[..]);
            }
            if present.len() > 2 {
                let n = present.len() - 2;
                prop_assert_eq!(as_bytes(&text.slice(1, n)).expect("bytes"), bytes.slice(1, n));
            }
        }
    }

    #[test]
    fn what_is_not_a_row_hash_is_an_error() {
        let upper = "A".repeat(32);
        // A wrong digit in a run of 32-digit values is found by the one-pass decoding, then named.
        for bad in ["", "0123", upper.as_str(), &"0".repeat(33), &format!("{}g", "0".repeat(31)), &format!("{}/", "0".repeat(31))] {
            let err = as_bytes(&StringArray::from(vec![format!("{:032x}", 7u8), bad.to_string()])).unwrap_err();
            assert!(err.to_string().contains("row 1"), "{bad}: {err}");
        }
        assert!(as_bytes(&arrow::array::Int32Array::from(vec![1])).is_err());
        assert!(as_text(&FixedSizeBinaryArray::try_from_iter([[0u8; 8]].iter()).unwrap()).is_err());
    }

    #[test]
    fn only_a_text_row_hash_is_converted() {
        let set = Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new(ROW_HASH, DataType::Utf8, false)]);
        let (file, i) = file_schema(&set).expect("converted");
        assert_eq!((i, file.field(1).data_type()), (1, &stored_type()));
        assert!(file_schema(&file).is_none(), "a file schema stays");
        let changes = Schema::new(vec![Field::new("old_row_hash", DataType::Utf8, true)]);
        assert!(file_schema(&changes).is_none());

        let batch = RecordBatch::try_new(
            Arc::new(set),
            vec![Arc::new(StringArray::from(vec!["a"])), Arc::new(StringArray::from(vec![format!("{:032x}", u128::MAX - 5)]))],
        )
        .unwrap();
        let stored = to_file(&batch, &file, i).unwrap();
        assert_eq!(stored.column(1).data_type(), &stored_type());
        assert_eq!(to_text(stored).unwrap(), batch);
        assert_eq!(to_text(batch.clone()).unwrap(), batch, "format 1 is read as it is");
    }
}
