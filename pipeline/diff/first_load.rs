//! A first load's changes, copied from its snapshot file.
//!
//! ```text
//!  new snapshot file, row group by row group:
//!    key + row_hash (+ columns that cannot be copied) ─► decoded ─► key order checked
//!        op = insert, old_row_hash = null, new_row_hash = hex ─► encoded ──────────┐
//!    every other column chunk ─► its bytes, as they are ─────────────────────────────┴─► _changes row group
//! ```
//!
//! Against nothing, every row of a snapshot is an insert, and its change row is the snapshot row
//! with the change columns in front. The snapshot file was encoded and compressed moments before;
//! decoding and encoding it again was a fifth of a 1M-row CSV load (0.85 s of 3.5). So each
//! column chunk whose Parquet descriptor (type, repetition, path) is the change file's is copied
//! byte for byte, with its statistics and page index. The change schema makes every column
//! nullable (a delete carries only the key), so the set's required columns — the key and the
//! provenance columns — differ in repetition: they are decoded and encoded again, and they are
//! small. The rows are those [`super::all_inserts`] hands to a sink (the tests compare both).

use super::{ChangeCounts, DiffError, Snapshot, change_schema, check_order, in_order};
use crate::schema::{ROW_HASH, RecordSetSchema};
use crate::store::row_hash;
use crate::store::{PartWriter, RowGroupColumn};
use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::schema::types::SchemaDescriptor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writes the changes of a first load of `set` (every row of `files` an insert) to `writer`,
/// whose schema is [`change_schema`] of the set.
pub(super) fn copy_inserts(set: &RecordSetSchema, files: &[PathBuf], writer: &mut PartWriter<'_>) -> Result<ChangeCounts, DiffError> {
    let snapshot = Snapshot { set, files: files.to_vec(), batch: super::BATCH };
    let out_schema = change_schema(set);
    // The set's columns in the change file, after op and the two hashes.
    let names: Vec<&str> = out_schema.fields().iter().skip(3).map(|f| f.name().as_str()).collect();
    let key_names: Vec<&str> = set.key.iter().map(|&k| set.columns[k].name.as_str()).collect();
    let mut counts = ChangeCounts::default();
    let mut last: Option<Vec<ArrayRef>> = None;
    for path in files {
        let pq = |source| DiffError::Parquet { path: path.clone(), source };
        let layout =
            |e: arrow::error::ArrowError| DiffError::Layout { path: path.clone(), record_set: set.name.clone(), reason: e.to_string() };
        let file = std::fs::File::open(path).map_err(|source| DiffError::Io { path: path.clone(), source })?;
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&file, options).map_err(pq)?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(clone(&file, path)?, meta.clone());
        let mut all = names.clone();
        all.push(ROW_HASH);
        let roots = snapshot.columns(path, &builder, &all)?;
        let source_roots = &roots[..names.len()];
        let copied: Vec<Option<Vec<usize>>> =
            source_roots.iter().enumerate().map(|(i, &s)| copyable(builder.parquet_schema(), s, writer.parquet_schema(), i + 3)).collect();
        // Decoded: the key (its order is checked), row_hash, and what cannot be copied.
        let mut decoded: Vec<&str> =
            names.iter().zip(&copied).filter(|(n, c)| c.is_none() || key_names.contains(n)).map(|(n, _)| *n).collect();
        decoded.push(ROW_HASH);
        let decoded_roots: Vec<usize> = decoded.iter().filter_map(|d| all.iter().position(|n| n == d)).map(|i| roots[i]).collect();
        let metadata: &ParquetMetaData = meta.metadata();
        let mask = ProjectionMask::roots(builder.parquet_schema(), decoded_roots.iter().copied());
        for (gi, group) in metadata.row_groups().iter().enumerate() {
            let rows = usize::try_from(group.num_rows()).unwrap_or(0);
            if rows == 0 {
                continue;
            }
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(clone(&file, path)?, meta.clone())
                .with_projection(mask.clone())
                .with_row_groups(vec![gi])
                .with_batch_size(rows)
                .build()
                .map_err(pq)?;
            let batches = reader.map(|b| b.and_then(|b| in_order(b, &decoded))).collect::<Result<Vec<_>, _>>().map_err(layout)?;
            let Some(first) = batches.first() else { continue };
            let batch = arrow::compute::concat_batches(&first.schema(), &batches).map_err(layout)?;
            let n = batch.num_rows();
            let column = |name: &str| decoded.iter().position(|d| *d == name).map(|i| batch.column(i).clone());
            let keys: Vec<ArrayRef> = key_names.iter().filter_map(|k| column(k)).collect();
            check_order(set, path, &keys, &mut last, counts.inserts)?;
            let hashes = column(ROW_HASH).ok_or_else(|| layout(arrow::error::ArrowError::SchemaError("no row_hash".into())))?;
            let mut columns = vec![
                RowGroupColumn::Values(Arc::new(StringArray::from_iter_values(std::iter::repeat_n("insert", n)))),
                RowGroupColumn::Values(arrow::array::new_null_array(&DataType::Utf8, n)),
                RowGroupColumn::Values(row_hash::as_text(hashes.as_ref()).map_err(layout)?),
            ];
            for ((name, copy), &root) in names.iter().zip(&copied).zip(source_roots) {
                columns.push(match copy {
                    Some(leaves) => RowGroupColumn::Copied(leaves.iter().map(|&l| chunk(metadata, gi, l)).collect()),
                    None => RowGroupColumn::Values(
                        column(name).ok_or_else(|| layout(arrow::error::ArrowError::SchemaError(format!("column {root} not read"))))?,
                    ),
                });
            }
            writer.write_row_group(columns, &file)?;
            counts.inserts += n as u64;
        }
    }
    Ok(counts)
}

fn clone(file: &std::fs::File, path: &Path) -> Result<std::fs::File, DiffError> {
    file.try_clone().map_err(|source| DiffError::Io { path: path.to_path_buf(), source })
}

/// The leaves of root column `source_root` in the snapshot file, when they are exactly the leaves
/// of root `target_root` in the change file: then the column's chunks can be copied.
fn copyable(source: &SchemaDescriptor, source_root: usize, target: &SchemaDescriptor, target_root: usize) -> Option<Vec<usize>> {
    let leaves =
        |d: &SchemaDescriptor, root: usize| -> Vec<usize> { (0..d.num_columns()).filter(|&l| d.get_column_root_idx(l) == root).collect() };
    let (from, to) = (leaves(source, source_root), leaves(target, target_root));
    let same = from.len() == to.len() && from.iter().zip(&to).all(|(&f, &t)| source.column(f) == target.column(t));
    same.then_some(from)
}

/// Leaf `leaf` of row group `group`, as its writer would have closed it.
fn chunk(metadata: &ParquetMetaData, group: usize, leaf: usize) -> ColumnCloseResult {
    let rg = metadata.row_group(group);
    let column = rg.column(leaf);
    ColumnCloseResult {
        bytes_written: u64::try_from(column.compressed_size()).unwrap_or(0),
        rows_written: u64::try_from(rg.num_rows()).unwrap_or(0),
        metadata: column.clone(),
        bloom_filter: None,
        column_index: metadata.column_index().and_then(|c| c.get(group)).and_then(|g| g.get(leaf)).cloned(),
        offset_index: metadata.offset_index().and_then(|o| o.get(group)).and_then(|g| g.get(leaf)).cloned(),
    }
}
