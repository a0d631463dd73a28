//! Finalising a record set: `row_hash`, one row per key, merge with the previous snapshot, sort.
//!
//! ```text
//!  rows of every file ─► concat ─► row_hash ─► sort by (key, apply date, file rank, record)
//!      ─► later_wins: the last row per key (warn when an earlier one differs)
//!      ─► (set rules of the validate stage withhold offending rows here)
//!      ─► merge_previous: incremental: previous snapshot ∪ these, this load winning per key
//!      ─► sorted by key, ready for the store
//! ```
//!
//! A job does this without holding the load ([`super::spill`] and [`super::merge`]); `later_wins`
//! and `merge_previous` do it in memory, and are what the streaming merge is tested against.
//!
//! ## `row_hash`
//! A stable hash of a row's content: the same on every machine and every version of kiban.
//! It is XXH3-128 (seed 0) of the canonical encoding below, written as 32 lowercase hex digits of
//! the 128-bit value (big-endian). The canonical encoding is the concatenation, for every column of
//! the set except the provenance columns, in schema order, **skipping nulls**, of:
//! `u32-LE(len(name)) ‖ name ‖ tag ‖ value`, where by type
//! - utf8 (`S`): `u32-LE(len) ‖ UTF-8 bytes`;
//! - int32/int64 (`I`): the value as `i64-LE`;
//! - date32 (`D`): days since 1970-01-01 as `i32-LE`;
//! - decimal128 (`N`): the unscaled value as `i128-LE` ‖ scale as `u8`;
//! - boolean (`B`): one byte 0 or 1;
//! - list (`L`): `u32-LE(count)` ‖ each element as `tag ‖ value` (a null element as tag `0`);
//! - struct (`T`): its fields encoded like columns (name, tag, value; nulls skipped), then `0xFF`.
//!
//! Skipping nulls by name means that adding a new nullable column to a set does not change the
//! hash of existing rows.
//!
//! ## Set digest
//! An order-independent digest of a snapshot over (key, row_hash): the wrapping sum modulo 2^128
//! of XXH3-128 of `canonical key encoding ‖ row_hash` per row (the key encoded as above, with the
//! key columns only), as 32 hex digits. Two snapshots with the same rows have the same digest
//! whatever their order; the platform's state endpoint computes the same.

use super::builder::SetRows;
use crate::schema::{ROW_HASH, RecordSetSchema, SOURCE_FILE, SOURCE_RECORD};
use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, Int64Array, ListArray, StringArray, StructArray, UInt32Array,
};
use arrow::compute::{concat, take};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_128;

fn encode_value(a: &dyn Array, i: usize, out: &mut Vec<u8>) {
    let any = a.as_any();
    match a.data_type() {
        DataType::Utf8 => {
            if let Some(s) = any.downcast_ref::<StringArray>() {
                let v = s.value(i).as_bytes();
                out.push(b'S');
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
        }
        DataType::Int32 => {
            if let Some(s) = any.downcast_ref::<Int32Array>() {
                out.push(b'I');
                out.extend_from_slice(&(s.value(i) as i64).to_le_bytes());
            }
        }
        DataType::Int64 => {
            if let Some(s) = any.downcast_ref::<Int64Array>() {
                out.push(b'I');
                out.extend_from_slice(&s.value(i).to_le_bytes());
            }
        }
        DataType::Date32 => {
            if let Some(s) = any.downcast_ref::<Date32Array>() {
                out.push(b'D');
                out.extend_from_slice(&s.value(i).to_le_bytes());
            }
        }
        DataType::Decimal128(_, scale) => {
            if let Some(s) = any.downcast_ref::<Decimal128Array>() {
                out.push(b'N');
                out.extend_from_slice(&s.value(i).to_le_bytes());
                out.push(*scale as u8);
            }
        }
        DataType::Boolean => {
            if let Some(s) = any.downcast_ref::<BooleanArray>() {
                out.push(b'B');
                out.push(s.value(i) as u8);
            }
        }
        DataType::List(_) => {
            if let Some(l) = any.downcast_ref::<ListArray>() {
                let v = l.value(i);
                out.push(b'L');
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                for j in 0..v.len() {
                    if v.is_null(j) {
                        out.push(0);
                    } else {
                        encode_value(v.as_ref(), j, out);
                    }
                }
            }
        }
        DataType::Struct(fields) => {
            if let Some(s) = any.downcast_ref::<StructArray>() {
                out.push(b'T');
                for (f, c) in fields.iter().zip(s.columns()) {
                    if c.is_null(i) {
                        continue;
                    }
                    out.extend_from_slice(&(f.name().len() as u32).to_le_bytes());
                    out.extend_from_slice(f.name().as_bytes());
                    encode_value(c.as_ref(), i, out);
                }
                out.push(0xFF);
            }
        }
        _ => {}
    }
}

fn encode_columns(names: &[&str], cols: &[&ArrayRef], i: usize, out: &mut Vec<u8>) {
    for (name, c) in names.iter().zip(cols) {
        if c.is_null(i) {
            continue;
        }
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        encode_value(c.as_ref(), i, out);
    }
}

fn hex128(v: u128) -> String {
    let mut buf = [0u8; 32];
    hex128_into(v, &mut buf).to_string()
}

/// The 32 lowercase hex digits of `v` (big-endian), written into `buf`: no allocation per row.
fn hex128_into(v: u128, buf: &mut [u8; 32]) -> &str {
    crate::store::row_hash::hex_into(&v.to_be_bytes(), buf);
    std::str::from_utf8(buf).unwrap_or_default()
}

/// Rows per piece when hashing on every core.
const HASH_PIECE: usize = 64 * 1024;

/// `row_hash` of each row, from the set's content columns (in schema order). Every hash is 32
/// bytes, so the text is laid out before hashing and pieces of it are filled on every core; the
/// hash of a row depends on that row alone.
pub fn row_hashes(schema: &RecordSetSchema, content: &[ArrayRef]) -> StringArray {
    let names: Vec<&str> = schema.columns[..schema.content_len()].iter().map(|c| c.name.as_str()).collect();
    let cols: Vec<&ArrayRef> = content.iter().take(names.len()).collect();
    let rows = cols.first().map_or(0, |c| c.len());
    let mut text = vec![0u8; rows * 32];
    let pieces: Vec<(usize, &mut [u8])> = text.chunks_mut(HASH_PIECE * 32).enumerate().map(|(i, c)| (i * HASH_PIECE, c)).collect();
    crate::parallel::par_map(pieces, |(first, piece)| {
        let mut buf = Vec::with_capacity(256);
        for (i, hex) in piece.chunks_exact_mut(32).enumerate() {
            buf.clear();
            encode_columns(&names, &cols, first + i, &mut buf);
            if let Ok(hex) = <&mut [u8; 32]>::try_from(hex) {
                hex128_into(xxh3_128(&buf), hex);
            }
        }
    });
    let offsets = arrow::buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(32, rows));
    // Hex digits are ASCII: the check cannot fail, and an empty column is the fallback anyway.
    StringArray::try_new(offsets, text.into(), None).unwrap_or_else(|_| StringArray::from(Vec::<&str>::new()))
}

/// The order-independent digest of a snapshot (see the module doc).
pub fn set_digest(schema: &RecordSetSchema, batch: &RecordBatch) -> String {
    hex128(digest_sum(schema, batch))
}

/// The wrapping sum of the digest's terms over `batch`'s rows: digests of a snapshot written a
/// batch at a time are the sums of these.
pub fn digest_sum(schema: &RecordSetSchema, batch: &RecordBatch) -> u128 {
    let names: Vec<&str> = schema.key.iter().map(|&k| schema.columns[k].name.as_str()).collect();
    let cols: Vec<&ArrayRef> = schema.key.iter().map(|&k| batch.column(k)).collect();
    let Some(hashes) = batch.column_by_name(ROW_HASH).and_then(|c| c.as_any().downcast_ref::<StringArray>()) else {
        return 0;
    };
    // The sum does not depend on the order of its terms: pieces of rows are summed on every core.
    let rows = batch.num_rows();
    let pieces: Vec<std::ops::Range<usize>> = (0..rows).step_by(HASH_PIECE).map(|s| s..(s + HASH_PIECE).min(rows)).collect();
    let sums = crate::parallel::par_map(pieces, |piece| {
        let mut sum: u128 = 0;
        let mut buf = Vec::with_capacity(128);
        for i in piece {
            buf.clear();
            encode_columns(&names, &cols, i, &mut buf);
            sum = sum.wrapping_add(digest_term(&buf, hashes.value(i)));
        }
        sum
    });
    sums.into_iter().fold(0u128, u128::wrapping_add)
}

/// The canonical encoding of a row's key (the key columns by name, as in the module doc): what
/// the set digest hashes, and what the platform keeps as a record's identity.
pub fn encode_key(names: &[&str], cols: &[&ArrayRef], row: usize, out: &mut Vec<u8>) {
    encode_columns(names, cols, row, out);
}

/// One row's term of the set digest: XXH3-128 of `key encoding ‖ row_hash`. The digest is the
/// wrapping sum of the terms, so it can be computed over rows in any order.
pub fn digest_term(key_encoding: &[u8], row_hash: &str) -> u128 {
    let mut buf = Vec::with_capacity(key_encoding.len() + row_hash.len());
    buf.extend_from_slice(key_encoding);
    buf.extend_from_slice(row_hash.as_bytes());
    xxh3_128(&buf)
}

/// A digest sum as the 32 hex digits of `set_digest`.
pub fn digest_hex(sum: u128) -> String {
    hex128(sum)
}

/// Two rows of one load with the same key and different content: the later one won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConflict {
    pub earlier: (String, i64),
    pub later: (String, i64),
}

/// Published rows a snapshot load keeps although its file no longer holds them (SPEC §8): the
/// keys of quarantined records, or every previous row when a quarantined record's key could not
/// be read (the load then derives no deletes for the set).
#[derive(Debug, Clone, Default)]
pub struct KeepPrevious {
    /// Keys as `Mapper::primary_key` writes them.
    pub keys: std::collections::HashSet<String>,
    pub all: bool,
}

/// This load's rows of a set, one per key (later wins), sorted by key, with `row_hash`.
pub struct LoadRows {
    pub batch: RecordBatch,
    pub conflicts: Vec<KeyConflict>,
}

/// Key parts of each row as `Mapper::primary_key` writes them.
pub(crate) fn key_strings(schema: &RecordSetSchema, batch: &RecordBatch) -> Result<Vec<String>, ArrowError> {
    let cols: Vec<ArrayRef> =
        schema.key.iter().map(|&k| arrow::compute::cast(batch.column(k), &DataType::Utf8)).collect::<Result<_, _>>()?;
    let cols: Vec<&StringArray> = cols.iter().filter_map(|c| c.as_any().downcast_ref::<StringArray>()).collect();
    Ok((0..batch.num_rows())
        .map(|i| cols.iter().map(|c| if c.is_null(i) { "" } else { c.value(i) }).collect::<Vec<_>>().join("\u{1F}"))
        .collect())
}

/// The key of one row, in the format of [`key_strings`].
pub fn key_string(keys: &[&ArrayRef], row: usize) -> String {
    keys.iter()
        .map(|c| {
            if c.is_null(row) {
                return String::new();
            }
            arrow::compute::cast(&c.slice(row, 1), &DataType::Utf8)
                .ok()
                .and_then(|a| a.as_any().downcast_ref::<StringArray>().map(|s| s.value(0).to_string()))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\u{1F}")
}

fn key_rows(schema: &RecordSetSchema, batch: &RecordBatch) -> Result<arrow::row::Rows, ArrowError> {
    let fields: Vec<SortField> = schema.key.iter().map(|&k| SortField::new(schema.columns[k].data_type.clone())).collect();
    let conv = RowConverter::new(fields)?;
    let cols: Vec<ArrayRef> = schema.key.iter().map(|&k| batch.column(k).clone()).collect();
    conv.convert_columns(&cols)
}

/// Whether the keys of `batch` ascend strictly, in the order `key_rows` sorts them.
fn strictly_ascending(schema: &RecordSetSchema, batch: &RecordBatch) -> Result<bool, ArrowError> {
    let cmp: Vec<arrow::array::DynComparator> = schema
        .key
        .iter()
        .map(|&k| arrow::array::make_comparator(batch.column(k).as_ref(), batch.column(k).as_ref(), Default::default()))
        .collect::<Result<_, _>>()?;
    let key_order = |a: usize, b: usize| cmp.iter().map(|c| c(a, b)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal);
    Ok((1..batch.num_rows()).all(|i| key_order(i - 1, i).is_lt()))
}

/// This load's rows of a set (`parts`, one per file): `row_hash`, then one row per key, the
/// later winning by (apply date, file rank, record number). `file_rank` orders files (SPEC §5.2).
pub fn later_wins(schema: &RecordSetSchema, parts: Vec<SetRows>, file_rank: &dyn Fn(u32) -> u32) -> Result<LoadRows, ArrowError> {
    let ncols = schema.columns.len() - 1; // all but row_hash
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(ncols + 1);
    let mut order_date = Vec::new();
    let mut rank = Vec::new();
    for c in 0..ncols {
        let arrays: Vec<&dyn Array> = parts.iter().map(|p| p.columns[c].as_ref()).collect();
        columns.push(if arrays.is_empty() { arrow::array::new_empty_array(&schema.columns[c].data_type) } else { concat(&arrays)? });
    }
    for p in &parts {
        order_date.extend_from_slice(&p.order_date);
        let r = file_rank(p.file_seq);
        rank.extend(std::iter::repeat_n(r, p.order_date.len()));
    }
    let hashes = row_hashes(schema, &columns[..schema.content_len()]);
    columns.push(Arc::new(hashes));
    let new = RecordBatch::try_new(schema.arrow.clone(), columns)?;
    let n = new.num_rows();

    // Exports usually come sorted by key (被保険者番号): then every row wins as it is, and the
    // sort and the copy of every column are skipped. The check compares the key columns where
    // they are; only a sort needs the keys converted to rows.
    if strictly_ascending(schema, &new)? {
        return Ok(LoadRows { batch: new, conflicts: Vec::new() });
    }
    // Later wins per key: sort by (key, apply date, file rank, record number).
    let rows = key_rows(schema, &new)?;
    let records = new
        .column_by_name(SOURCE_RECORD)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .map(|a| a.values().to_vec())
        .unwrap_or_else(|| vec![0; n]);
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        rows.row(a).cmp(&rows.row(b)).then(order_date[a].cmp(&order_date[b])).then(rank[a].cmp(&rank[b])).then(records[a].cmp(&records[b]))
    });
    let hash_col = new.column(schema.columns.len() - 1).as_any().downcast_ref::<StringArray>().cloned();
    let files = new.column_by_name(SOURCE_FILE).and_then(|c| c.as_any().downcast_ref::<StringArray>()).cloned();
    let mut winners = Vec::with_capacity(n);
    let mut conflicts = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && rows.row(idx[j] as usize) == rows.row(idx[i] as usize) {
            j += 1;
        }
        let winner = idx[j - 1] as usize;
        if let (Some(h), Some(f)) = (&hash_col, &files) {
            for &e in &idx[i..j - 1] {
                let e = e as usize;
                if h.value(e) != h.value(winner) {
                    conflicts.push(KeyConflict {
                        earlier: (f.value(e).to_string(), records[e]),
                        later: (f.value(winner).to_string(), records[winner]),
                    });
                }
            }
        }
        winners.push(winner as u32);
        i = j;
    }
    let winners = UInt32Array::from(winners);
    let cols: Vec<ArrayRef> = new.columns().iter().map(|c| take(c.as_ref(), &winners, None)).collect::<Result<_, _>>()?;
    Ok(LoadRows { batch: RecordBatch::try_new(schema.arrow.clone(), cols)?, conflicts })
}

/// The new snapshot of a set: this load's rows (one per key, sorted) upserted into the previous
/// snapshot for incremental sets, or, for snapshot sets, with the previous rows that `keep`
/// names. Returns the snapshot and how many previous rows were kept for quarantined records.
pub fn merge_previous(
    schema: &RecordSetSchema,
    load: &RecordBatch,
    previous: Option<&RecordBatch>,
    keep: Option<&KeepPrevious>,
) -> Result<(RecordBatch, usize), ArrowError> {
    Ok(match (previous, keep) {
        (None, _) => (load.clone(), 0),
        (Some(prev), _) if prev.num_rows() == 0 => (load.clone(), 0),
        // Incremental, or a snapshot that may delete nothing: upsert into the previous rows.
        (Some(prev), None) => (merge_by_key(schema, prev, load)?, 0),
        (Some(prev), Some(k)) if k.all => (merge_by_key(schema, prev, load)?, prev.num_rows()),
        (Some(prev), Some(k)) => {
            let keys = key_strings(schema, prev)?;
            let mask = arrow::array::BooleanArray::from(keys.iter().map(|key| k.keys.contains(key)).collect::<Vec<bool>>());
            let kept = arrow::compute::filter_record_batch(prev, &mask)?;
            (merge_by_key(schema, &kept, load)?, kept.num_rows())
        }
    })
}

/// Previous snapshot with `newer` upserted by key; both are sorted by key, and so is the result.
fn merge_by_key(schema: &RecordSetSchema, prev: &RecordBatch, newer: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let prev =
        prev.clone().with_schema(schema.arrow.clone()).or_else(|_| RecordBatch::try_new(schema.arrow.clone(), prev.columns().to_vec()))?;
    let a = key_rows(schema, &prev)?;
    let b = key_rows(schema, newer)?;
    // Merge two sorted runs; indices into the concatenation [prev, newer].
    let (na, nb) = (prev.num_rows(), newer.num_rows());
    let mut out: Vec<u32> = Vec::with_capacity(na + nb);
    let (mut i, mut j) = (0, 0);
    while i < na || j < nb {
        if j == nb {
            out.push(i as u32);
            i += 1;
        } else if i == na {
            out.push((na + j) as u32);
            j += 1;
        } else {
            match a.row(i).cmp(&b.row(j)) {
                std::cmp::Ordering::Less => {
                    out.push(i as u32);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push((na + j) as u32);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push((na + j) as u32);
                    i += 1;
                    j += 1;
                }
            }
        }
    }
    let both = arrow::compute::concat_batches(&schema.arrow, [&prev, newer])?;
    let keep = UInt32Array::from(out);
    let cols: Vec<ArrayRef> = both.columns().iter().map(|c| take(c.as_ref(), &keep, None)).collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.arrow.clone(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::builder::{SetBuilder, Value};
    use proptest::prelude::*;

    proptest! {
        /// The hex of a hash is what `format!` writes: 32 lowercase digits, big-endian.
        #[test]
        fn hex_is_formats(hi in any::<u64>(), lo in any::<u64>()) {
            let v = (u128::from(hi) << 64) | u128::from(lo);
            prop_assert_eq!(hex128(v), format!("{v:032x}"));
        }
    }

    /// Hashing in pieces on every core gives each row the hash of hashing it alone.
    #[test]
    fn hashes_in_pieces_are_hashes_of_rows() {
        let catalog = crate::job::catalog::Catalog::embedded().expect("catalog");
        let schema = catalog.schemas.get("copayment_ratio").expect("set").clone();
        let n = HASH_PIECE * 2 + 17;
        let content: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["141309"; n])),
            Arc::new(StringArray::from((0..n).map(|i| format!("{i:010}")).collect::<Vec<_>>())),
            Arc::new(Date32Array::from((0..n as i32).collect::<Vec<_>>())),
            Arc::new(Date32Array::from(vec![None::<i32>; n])),
            Arc::new(Int32Array::from((0..n as i32).map(|i| i % 3 + 1).collect::<Vec<_>>())),
            Arc::new(Int32Array::from(vec![Some(90); n])),
        ];
        let all = row_hashes(&schema, &content);
        assert_eq!(all.len(), n);
        for i in [0, 1, HASH_PIECE - 1, HASH_PIECE, HASH_PIECE + 1, n - 1] {
            let one: Vec<ArrayRef> = content.iter().map(|c| c.slice(i, 1)).collect();
            assert_eq!(all.value(i), row_hashes(&schema, &one).value(0), "row {i}");
        }
        assert_ne!(all.value(0), all.value(1));
    }

    /// The digest summed in pieces on every core is the row-by-row sum: the same whatever the
    /// order of the rows, and another when one row changes.
    #[test]
    fn digest_in_pieces_is_the_sum_of_its_rows() {
        let n = HASH_PIECE * 2 + 5;
        let keys: Vec<String> = (0..n).map(|i| format!("{i:010}")).collect();
        let batch = |ratio_of_last: i64, reversed: bool| {
            let content: Vec<(&str, i32, i64, i32)> =
                keys.iter().enumerate().map(|(i, k)| (k.as_str(), 1, if i == n - 1 { ratio_of_last } else { 1 }, 0)).collect();
            let b = later_wins(&copayment(), vec![rows(&content)], &|_| 0).expect("rows").batch;
            if !reversed {
                return b;
            }
            let idx = UInt32Array::from((0..n as u32).rev().collect::<Vec<_>>());
            let cols: Vec<ArrayRef> = b.columns().iter().map(|c| take(c.as_ref(), &idx, None).expect("take")).collect();
            RecordBatch::try_new(b.schema(), cols).expect("batch")
        };
        let schema = copayment();
        let one_by_one = |b: &RecordBatch| {
            let names: Vec<&str> = schema.key.iter().map(|&k| schema.columns[k].name.as_str()).collect();
            let cols: Vec<&ArrayRef> = schema.key.iter().map(|&k| b.column(k)).collect();
            let hashes = b.column_by_name(ROW_HASH).and_then(|c| c.as_any().downcast_ref::<StringArray>()).expect("hashes");
            let mut sum = 0u128;
            for i in 0..b.num_rows() {
                let mut buf = Vec::new();
                encode_columns(&names, &cols, i, &mut buf);
                sum = sum.wrapping_add(digest_term(&buf, hashes.value(i)));
            }
            digest_hex(sum)
        };
        let digest = set_digest(&schema, &batch(1, false));
        assert_eq!(digest, one_by_one(&batch(1, false)));
        assert_eq!(digest, set_digest(&schema, &batch(1, true)));
        assert_ne!(digest, set_digest(&schema, &batch(2, false)));
    }

    fn copayment() -> Arc<RecordSetSchema> {
        let catalog = crate::job::catalog::Catalog::embedded().expect("catalog");
        catalog.schemas.get("copayment_ratio").expect("set").clone()
    }

    /// copayment_ratio rows (insurer, insured_no, valid_from, valid_to, ratio) in the given order.
    fn rows(rows: &[(&str, i32, i64, i32)]) -> SetRows {
        let catalog = crate::job::catalog::Catalog::embedded().expect("catalog");
        let schema = catalog.schemas.get("copayment_ratio").expect("set").clone();
        let mut b = SetBuilder::new(schema.clone());
        for (i, &(insured, from, ratio, order)) in rows.iter().enumerate() {
            for (c, col) in schema.columns[..schema.content_len()].iter().enumerate() {
                let v = match col.name.as_str() {
                    "insurer_no" => Value::Str("141309"),
                    "insured_no" => Value::Str(insured),
                    "valid_from" => Value::Date(from),
                    "ratio" => Value::Int(ratio),
                    _ => Value::Null,
                };
                b.column(c).append(v);
            }
            b.end_row("f.csv", i as u64 + 2, 0, Some(order));
        }
        b.finish(0)
    }

    fn content(batch: &RecordBatch) -> Vec<String> {
        let insured = batch.column_by_name("insured_no").expect("col").as_any().downcast_ref::<StringArray>().expect("utf8").clone();
        let records = batch.column_by_name(SOURCE_RECORD).expect("col").as_any().downcast_ref::<Int64Array>().expect("i64").clone();
        (0..batch.num_rows()).map(|i| format!("{}@{}", insured.value(i), records.value(i))).collect()
    }

    #[test]
    fn sorted_input_is_kept_as_it_is_and_unsorted_input_is_sorted_with_the_later_row_winning() {
        let catalog = crate::job::catalog::Catalog::embedded().expect("catalog");
        let schema = catalog.schemas.get("copayment_ratio").expect("set").clone();
        let sorted = later_wins(&schema, vec![rows(&[("0001", 1, 1, 0), ("0002", 1, 2, 0), ("0002", 2, 1, 0)])], &|_| 0).expect("ok");
        assert_eq!(content(&sorted.batch), ["0001@2", "0002@3", "0002@4"]);
        assert!(sorted.conflicts.is_empty());
        // Out of order, and key 0002/1 twice: the row with the later apply date wins, whatever
        // its place in the file, and the earlier one is reported as a conflict.
        let shuffled =
            later_wins(&schema, vec![rows(&[("0002", 2, 1, 0), ("0002", 1, 3, 9), ("0001", 1, 1, 0), ("0002", 1, 2, 5)])], &|_| 0)
                .expect("ok");
        assert_eq!(content(&shuffled.batch), ["0001@4", "0002@3", "0002@2"]);
        assert_eq!(shuffled.conflicts.len(), 1);
        assert_eq!(shuffled.conflicts[0].later.1, 3);
        // Equal keys in key order still go through the tie-break: the later record wins.
        let dup = later_wins(&schema, vec![rows(&[("0001", 1, 1, 0), ("0001", 1, 2, 0)])], &|_| 0).expect("ok");
        assert_eq!(content(&dup.batch), ["0001@3"]);
        assert_eq!(dup.batch.num_rows(), 1);
    }
}
