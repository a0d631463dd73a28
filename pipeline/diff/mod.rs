//! The diff (SPEC §8): what changed between two snapshots of a record set, by key.
//!
//! ```text
//!  old snapshot (Parquet, sorted by key) ─► key + row_hash columns ─┐
//!                                                                    ├─ merge by key ─► ops (I/U/D + row index)
//!  new snapshot (Parquet, sorted by key) ─► key + row_hash columns ─┘                        │
//!                                                                                            ▼
//!  new snapshot: only the inserted/updated rows (row selection) ─┐                    key order
//!  old snapshot: only the deleted keys (row selection)          ─┴─► interleave ─► change rows ─► _changes
//! ```
//!
//! Neither snapshot is held in memory: both are read in batches, first only their key and
//! `row_hash` columns (the store keeps `row_hash` as 16 bytes, see `map::rowset` and
//! `store::row_hash`; older stores' hex text is read too), then only the rows that changed; the
//! hashes of the changed rows are kept from the first pass, so no `row_hash` is decoded twice.
//! Memory grows with the number of changes (8 bytes per change, 16 per hash it carries: one for an
//! insert or delete, two for an update), not with the snapshots. The merge checks that each side
//! is strictly ordered by key, so a store file that is not sorted is an error, never a wrong diff.
//! Change rows carry their hashes as hex text, like everything outside a snapshot file.
//!
//! A change row holds `op` (`insert`, `update`, `delete`), `old_row_hash` and `new_row_hash`,
//! then the set's columns: the full new row for inserts and updates, only the key for deletes.
//! Rows are in key order, so the same two snapshots always give the same bytes of changes.
//! A row whose `row_hash` is unchanged is no change: provenance columns (file, record) are not
//! part of the hash, so a record re-sent in a new file changes nothing.
//!
//! Against nothing (a set's first load) every row is an insert: a store writes those changes by
//! copying the snapshot file's column chunks ([`first_load`]); a sink gets them decoded
//! (`all_inserts`). Both give the same rows.

mod first_load;

use crate::schema::{ROW_HASH, RecordSetSchema};
use crate::store::row_hash;
use arrow::array::{Array, ArrayRef, FixedSizeBinaryArray, RecordBatch, StringBuilder};
use arrow::array::{DynComparator, make_comparator};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const OP: &str = "op";
pub const OLD_ROW_HASH: &str = "old_row_hash";
pub const NEW_ROW_HASH: &str = "new_row_hash";

const BATCH: usize = 8 * 1024;
/// Change rows per output batch: small enough that a diff of a few percent writes its changes
/// while the changed rows are still being read, not all at the end.
const OUT_BATCH: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{path}: record set {record_set}: {reason}")]
    Layout { path: PathBuf, record_set: String, reason: String },
    #[error("{path}: record set {record_set}: rows are not in key order at row {row}; the store file is damaged")]
    Unsorted { path: PathBuf, record_set: String, row: u64 },
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Sink(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Counts of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChangeCounts {
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub unchanged: u64,
}

impl ChangeCounts {
    pub fn total(&self) -> u64 {
        self.inserts + self.updates + self.deletes
    }
}

/// The Arrow schema of a set's change rows: `op`, `old_row_hash`, `new_row_hash`, then the set's
/// columns except `row_hash`, all nullable (a delete carries only the key).
pub fn change_schema(schema: &RecordSetSchema) -> SchemaRef {
    let mut fields = vec![
        Field::new(OP, DataType::Utf8, false),
        Field::new(OLD_ROW_HASH, DataType::Utf8, true),
        Field::new(NEW_ROW_HASH, DataType::Utf8, true),
    ];
    for f in schema.arrow.fields().iter().filter(|f| f.name() != ROW_HASH) {
        fields.push(f.as_ref().clone().with_nullable(true));
    }
    Arc::new(Schema::new(fields))
}

/// The Parquet files of one snapshot, read in order as one sequence of rows.
struct Snapshot<'a> {
    set: &'a RecordSetSchema,
    files: Vec<PathBuf>,
    batch: usize,
}

impl<'a> Snapshot<'a> {
    fn parquet_err(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> DiffError + '_ {
        move |source| DiffError::Parquet { path: path.to_path_buf(), source }
    }

    fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, DiffError> {
        let file = std::fs::File::open(path).map_err(|source| DiffError::Io { path: path.to_path_buf(), source })?;
        ParquetRecordBatchReaderBuilder::try_new_with_options(
            file,
            ArrowReaderOptions::new().with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional),
        )
        .map_err(Self::parquet_err(path))
    }

    /// Root column indices of `names` in the file, checked against the set's types.
    fn columns(&self, path: &Path, b: &ParquetRecordBatchReaderBuilder<std::fs::File>, names: &[&str]) -> Result<Vec<usize>, DiffError> {
        let schema = b.schema();
        names
            .iter()
            .map(|n| {
                let idx = schema.index_of(n).map_err(|_| DiffError::Layout {
                    path: path.to_path_buf(),
                    record_set: self.set.name.clone(),
                    reason: format!("no column `{n}`"),
                })?;
                let want = self.set.arrow.field_with_name(n).map(|f| f.data_type().clone()).ok();
                let have = schema.field(idx).data_type();
                // A snapshot keeps `row_hash` as bytes (format 2) or as text (format 1).
                let stored = *n == ROW_HASH && have == &row_hash::stored_type();
                if want.as_ref() != Some(have) && !stored {
                    return Err(DiffError::Layout {
                        path: path.to_path_buf(),
                        record_set: self.set.name.clone(),
                        reason: format!("column `{n}` is {}, the record set says {:?}", schema.field(idx).data_type(), want),
                    });
                }
                Ok(idx)
            })
            .collect()
    }

    /// Batches of `names` over every file, in order (phase 1: every row).
    /// With `views`, text columns are read as views (`Utf8View`): the key and hash bytes stay in
    /// the decoded pages instead of being copied into a new buffer, value by value.
    fn readers(&self, names: &[&str], views: bool) -> Result<Vec<ParquetRecordBatchReader>, DiffError> {
        let mut out = Vec::new();
        for path in &self.files {
            let b = Self::builder(path)?;
            let idx = self.columns(path, &b, names)?;
            let viewed: Vec<Field> = b
                .schema()
                .fields()
                .iter()
                .map(|f| {
                    if views && f.data_type() == &DataType::Utf8 {
                        f.as_ref().clone().with_data_type(DataType::Utf8View)
                    } else {
                        f.as_ref().clone()
                    }
                })
                .collect();
            let file = std::fs::File::open(path).map_err(|source| DiffError::Io { path: path.to_path_buf(), source })?;
            let options = ArrowReaderOptions::new()
                .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional)
                .with_schema(Arc::new(Schema::new(viewed)));
            let b = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).map_err(Self::parquet_err(path))?;
            let mask = ProjectionMask::roots(b.parquet_schema(), idx.iter().copied());
            out.push(b.with_projection(mask).with_batch_size(self.batch).build().map_err(Self::parquet_err(path))?);
        }
        Ok(out)
    }

    /// The row groups of every file, with the global index of their first row.
    fn row_groups(&self) -> Result<Vec<RowGroup>, DiffError> {
        let mut out = Vec::new();
        let mut first = 0u64;
        for (fi, path) in self.files.iter().enumerate() {
            let b = Self::builder(path)?;
            for (gi, g) in b.metadata().row_groups().iter().enumerate() {
                let rows = u64::try_from(g.num_rows()).unwrap_or(0);
                out.push((fi, gi, first, rows));
                first += rows;
            }
        }
        Ok(out)
    }

    /// The selected rows (global indices, ascending) of one row group, as batches of `names`,
    /// handed to `send` until it returns false.
    fn read_selected(
        &self,
        names: &[&str],
        (fi, gi, first, rows): RowGroup,
        sel: &[u64],
        send: &mut dyn FnMut(Result<RecordBatch, DiffError>) -> bool,
    ) -> Result<(), DiffError> {
        let Some(path) = self.files.get(fi) else { return Ok(()) };
        let b = Self::builder(path)?;
        let idx = self.columns(path, &b, names)?;
        let mask = ProjectionMask::roots(b.parquet_schema(), idx.iter().copied());
        let mut selectors = Vec::new();
        let mut at = 0u64;
        for &g in sel {
            let local = g - first;
            if local > at {
                selectors.push(RowSelector::skip((local - at) as usize));
            }
            match selectors.last_mut() {
                Some(s) if !s.skip && local == at => s.row_count += 1,
                _ => selectors.push(RowSelector::select(1)),
            }
            at = local + 1;
        }
        if rows > at {
            selectors.push(RowSelector::skip((rows - at) as usize));
        }
        let reader = b
            .with_projection(mask)
            .with_row_groups(vec![gi])
            .with_row_selection(RowSelection::from(selectors))
            .with_batch_size(self.batch)
            .build()
            .map_err(Self::parquet_err(path))?;
        let layout = |e: arrow::error::ArrowError| DiffError::Layout {
            path: path.clone(),
            record_set: self.set.name.clone(),
            reason: e.to_string(),
        };
        for batch in reader {
            if !send(batch.and_then(|b| in_order(b, names)).map_err(layout)) {
                break;
            }
        }
        Ok(())
    }
}

/// The key columns (in key order) and hashes of one batch of a side, and the file it is from.
type KeyBatch = (Vec<ArrayRef>, FixedSizeBinaryArray, usize);

/// Compares rows of two batches of key columns, column by column in key order (the order the
/// store sorted them in: ascending, nulls first). Built once per pair of batches, so the merge
/// compares values where they are, without converting every key first.
struct KeyCmp(Vec<ColumnCmp>);

/// One key column of each batch. Phase 1 compares every key of both snapshots once or twice
/// (order check, merge), on the thread that merges: text keys without nulls (read as views) are
/// compared from their views, which hold a value of up to 12 bytes — every key code kiban
/// knows — in place; a dynamic comparator per value was half of that thread's time.
enum ColumnCmp {
    Views(arrow::array::StringViewArray, arrow::array::StringViewArray),
    /// Dates and 32-bit integers (a `history_no`): compared as the numbers they are stored as.
    I32(arrow::buffer::ScalarBuffer<i32>, arrow::buffer::ScalarBuffer<i32>),
    I64(arrow::buffer::ScalarBuffer<i64>, arrow::buffer::ScalarBuffer<i64>),
    Any(DynComparator),
}

impl KeyCmp {
    fn new(a: &[ArrayRef], b: &[ArrayRef]) -> Result<KeyCmp, arrow::error::ArrowError> {
        use arrow::array::AsArray;
        a.iter()
            .zip(b)
            .map(|(x, y)| {
                let plain = x.null_count() == 0 && y.null_count() == 0 && x.data_type() == y.data_type();
                Ok(match x.data_type() {
                    DataType::Utf8View if plain => ColumnCmp::Views(x.as_string_view().clone(), y.as_string_view().clone()),
                    DataType::Date32 if plain => ColumnCmp::I32(
                        x.as_primitive::<arrow::datatypes::Date32Type>().values().clone(),
                        y.as_primitive::<arrow::datatypes::Date32Type>().values().clone(),
                    ),
                    DataType::Int32 if plain => ColumnCmp::I32(
                        x.as_primitive::<arrow::datatypes::Int32Type>().values().clone(),
                        y.as_primitive::<arrow::datatypes::Int32Type>().values().clone(),
                    ),
                    DataType::Int64 if plain => ColumnCmp::I64(
                        x.as_primitive::<arrow::datatypes::Int64Type>().values().clone(),
                        y.as_primitive::<arrow::datatypes::Int64Type>().values().clone(),
                    ),
                    _ => ColumnCmp::Any(make_comparator(x.as_ref(), y.as_ref(), SortOptions::default())?),
                })
            })
            .collect::<Result<_, _>>()
            .map(KeyCmp)
    }

    fn cmp(&self, i: usize, j: usize) -> std::cmp::Ordering {
        for c in &self.0 {
            let o = match c {
                ColumnCmp::Views(a, b) => cmp_views(a, i, b, j),
                ColumnCmp::I32(a, b) => a[i].cmp(&b[j]),
                ColumnCmp::I64(a, b) => a[i].cmp(&b[j]),
                ColumnCmp::Any(f) => f(i, j),
            };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    }
}

/// Byte-wise order of two text values. A view is the length (low 32 bits) and, for up to 12
/// bytes, the bytes themselves (the 12 bytes above, zero-padded): reversed, the bytes compare as
/// one number, and equal padded bytes leave the shorter value first, as byte-wise order does.
fn cmp_views(a: &arrow::array::StringViewArray, i: usize, b: &arrow::array::StringViewArray, j: usize) -> std::cmp::Ordering {
    let (va, vb) = (a.views()[i], b.views()[j]);
    let (la, lb) = (va as u32, vb as u32);
    if la <= 12 && lb <= 12 {
        return (va >> 32).swap_bytes().cmp(&(vb >> 32).swap_bytes()).then(la.cmp(&lb));
    }
    a.value(i).as_bytes().cmp(b.value(j).as_bytes())
}

fn key_rows(keys: &[ArrayRef]) -> usize {
    keys.first().map_or(0, |k| k.len())
}

/// The batch's columns in the order of `names` (a projection keeps the file's column order).
fn in_order(batch: RecordBatch, names: &[&str]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let schema = batch.schema();
    let idx: Vec<usize> = names.iter().map(|n| schema.index_of(n)).collect::<Result<_, _>>()?;
    if idx.iter().enumerate().all(|(i, &j)| i == j) { Ok(batch) } else { batch.project(&idx) }
}

/// A row group: (file, group in the file, global index of its first row, rows).
type RowGroup = (usize, usize, u64, u64);

/// What the merge of phase 1 finds: ops in key order (op | row index), the old hashes (of
/// deletes and updates) and the new hashes (of inserts and updates) in the same order, and the
/// counts. Phase 2 then reads no `row_hash` column again: it is the largest column of a store
/// file (16 random bytes a row, see `store::row_hash`), and decoding it twice was a third of a
/// diff's time.
type Merged = (Vec<u64>, Vec<Hash>, Vec<Hash>, ChangeCounts, Vec<Vec<ArrayRef>>);

/// A `row_hash` as its 16 bytes (`store::row_hash`).
type Hash = [u8; row_hash::BYTES];

/// A value of a `FixedSizeBinary(16)` hash column (`row_hash::as_bytes` made it one).
fn hash_bytes(b: &[u8]) -> Hash {
    b.try_into().unwrap_or_default()
}

/// Reads one side's key and row_hash columns and checks the keys' order within each batch; runs
/// on its own thread, ahead of the merge by a few batches.
fn produce(snapshot: &Snapshot<'_>, names: &[&str], tx: std::sync::mpsc::SyncSender<Result<KeyBatch, DiffError>>) {
    let nkey = names.len() - 1;
    let readers = match snapshot.readers(names, true) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    let mut index = 0u64;
    for (fi, reader) in readers.into_iter().enumerate() {
        let path = snapshot.files.get(fi).cloned().unwrap_or_default();
        let layout = |reason: String| DiffError::Layout { path: path.clone(), record_set: snapshot.set.name.clone(), reason };
        for batch in reader {
            let item = batch.map_err(|e| layout(e.to_string())).and_then(|batch| {
                let batch = in_order(batch, names).map_err(|e| layout(e.to_string()))?;
                let keys = batch.columns()[..nkey].to_vec();
                // Bytes (format 2) pass; hex text (format 1) is decoded and checked.
                let hashes = row_hash::as_bytes(batch.column(nkey).as_ref()).map_err(|e| layout(e.to_string()))?;
                if hashes.null_count() > 0 {
                    return Err(layout("a row without a row_hash".into()));
                }
                let within = KeyCmp::new(&keys, &keys).map_err(|e| layout(e.to_string()))?;
                let n = key_rows(&keys);
                if let Some(i) = (1..n).find(|&i| within.cmp(i - 1, i).is_ge()) {
                    return Err(DiffError::Unsorted { path: path.clone(), record_set: snapshot.set.name.clone(), row: index + i as u64 });
                }
                index += n as u64;
                Ok((keys, hashes, fi))
            });
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                return;
            }
        }
    }
}

/// One side of the merge: the current batch of keys and hashes.
struct Cursor<'a> {
    set: &'a RecordSetSchema,
    files: &'a [PathBuf],
    rx: std::sync::mpsc::Receiver<Result<KeyBatch, DiffError>>,
    /// The file the current batch came from.
    file: usize,
    keys: Vec<ArrayRef>,
    hashes: FixedSizeBinaryArray,
    /// Rows of the current batch.
    len: usize,
    pos: usize,
    /// Global index of the row at `pos`.
    index: u64,
    /// The key of the previous batch's last row (one-row arrays).
    last: Option<Vec<ArrayRef>>,
    /// Counts batches taken, so the merge knows when to compare against a new one.
    batches: u64,
    /// Rows of the current batch the merge found deleted; their keys are taken out of the batch
    /// before it goes ([`Cursor::keep_deleted`]), so phase 2 need not read the old side again.
    deleted: Vec<u32>,
    /// The keys of deleted rows, in order, a few arrays per batch that had any.
    kept: Vec<Vec<ArrayRef>>,
}

impl<'a> Cursor<'a> {
    fn new(snapshot: &'a Snapshot<'a>, rx: std::sync::mpsc::Receiver<Result<KeyBatch, DiffError>>) -> Cursor<'a> {
        Cursor {
            set: snapshot.set,
            files: &snapshot.files,
            rx,
            file: 0,
            keys: Vec::new(),
            hashes: FixedSizeBinaryArray::new_null(row_hash::BYTES as i32, 0),
            len: 0,
            pos: 0,
            index: 0,
            last: None,
            batches: 0,
            deleted: Vec::new(),
            kept: Vec::new(),
        }
    }

    /// Marks the current row deleted (the old side's).
    fn delete(&mut self) {
        self.deleted.push(self.pos as u32);
    }

    /// Takes the keys of the current batch's deleted rows, as the set's types (text keys were
    /// read as views), out of the batch.
    fn keep_deleted(&mut self) -> Result<(), DiffError> {
        if self.deleted.is_empty() {
            return Ok(());
        }
        let rows = arrow::array::UInt32Array::from(std::mem::take(&mut self.deleted));
        let mut keys = Vec::with_capacity(self.keys.len());
        for (k, &c) in self.keys.iter().zip(&self.set.key) {
            let taken = arrow::compute::take(k.as_ref(), &rows, None)?;
            keys.push(arrow::compute::cast(&taken, self.set.arrow.field(c).data_type())?);
        }
        self.kept.push(keys);
        Ok(())
    }

    /// Makes `pos` point at a row, taking batches as needed; false at the end.
    fn fill(&mut self) -> Result<bool, DiffError> {
        loop {
            let n = self.len;
            if self.pos < n {
                return Ok(true);
            }
            if n > 0 {
                self.last = Some(self.keys.iter().map(|k| k.slice(n - 1, 1)).collect());
            }
            self.keep_deleted()?;
            let Ok(next) = self.rx.recv() else { return Ok(false) };
            let (keys, hashes, file) = next?;
            self.file = file;
            // Strict key order across batches (the producer checked within each).
            if let Some(l) = &self.last
                && key_rows(&keys) > 0
                && KeyCmp::new(l, &keys)?.cmp(0, 0).is_ge()
            {
                let path = self.files.get(self.file).cloned().unwrap_or_default();
                return Err(DiffError::Unsorted { path, record_set: self.set.name.clone(), row: self.index });
            }
            self.len = key_rows(&keys);
            self.keys = keys;
            self.hashes = hashes;
            self.pos = 0;
            self.batches += 1;
        }
    }

    fn advance(&mut self) {
        self.pos += 1;
        self.index += 1;
    }
}

/// Row groups holding selected rows, with their selected global indices.
type Selection = Vec<(RowGroup, Vec<u64>)>;

enum GroupMsg {
    Batch(Box<Result<RecordBatch, DiffError>>),
    Done,
}

/// The selected rows of one side, in order. Reader threads decode its row groups (worker `w` of
/// `n` takes groups w, w + n, …) while the merge gathers and writes change rows; each sends a
/// few batches ahead, so memory holds a few batches per thread.
struct Selected<'a> {
    snapshot: &'a Snapshot<'a>,
    rxs: Vec<std::sync::mpsc::Receiver<GroupMsg>>,
    /// The group (in order) the next batch comes from, and how many there are.
    group: usize,
    groups: usize,
    batch: Option<RecordBatch>,
    row: usize,
    /// The batch's index in the chunk being gathered, once it has given a row to it.
    slot: Option<usize>,
}

impl<'a> Selected<'a> {
    /// The row groups that hold the selected rows (global indices, ascending) of `snapshot`.
    fn groups(snapshot: &Snapshot<'_>, sel: &[u64]) -> Result<Selection, DiffError> {
        let mut groups = Vec::new();
        if !sel.is_empty() {
            let mut it = sel.iter().copied().peekable();
            for g in snapshot.row_groups()? {
                let mut mine = Vec::new();
                while let Some(&i) = it.peek() {
                    if i >= g.2 + g.3 {
                        break;
                    }
                    mine.push(i);
                    it.next();
                }
                if !mine.is_empty() {
                    groups.push((g, mine));
                }
            }
        }
        Ok(groups)
    }

    fn spawn<'scope>(
        scope: &'scope std::thread::Scope<'scope, 'a>,
        snapshot: &'a Snapshot<'a>,
        names: &'a [&'a str],
        groups: &'a Selection,
        workers: usize,
    ) -> Selected<'a> {
        let workers = workers.clamp(1, groups.len().max(1));
        let mut rxs = Vec::new();
        for worker in 0..workers {
            let (tx, rx) = std::sync::mpsc::sync_channel(2);
            scope.spawn(move || {
                for (g, sel) in groups.iter().skip(worker).step_by(workers) {
                    let mut open = true;
                    let read = snapshot.read_selected(names, *g, sel, &mut |b| {
                        let failed = b.is_err();
                        open = tx.send(GroupMsg::Batch(Box::new(b))).is_ok() && !failed;
                        open
                    });
                    if let Err(e) = read {
                        let _ = tx.send(GroupMsg::Batch(Box::new(Err(e))));
                        return;
                    }
                    if !open || tx.send(GroupMsg::Done).is_err() {
                        return;
                    }
                }
            });
            rxs.push(rx);
        }
        Selected { snapshot, rxs, group: 0, groups: groups.len(), batch: None, row: 0, slot: None }
    }

    fn short(&self) -> DiffError {
        DiffError::Layout {
            path: self.snapshot.files.first().cloned().unwrap_or_default(),
            record_set: self.snapshot.set.name.clone(),
            reason: "fewer rows than its metadata says (did the file change during the diff?)".into(),
        }
    }

    /// The next selected row, as (batch index in `chunk`, row).
    fn next_row(&mut self, chunk: &mut Chunk) -> Result<(usize, usize), DiffError> {
        loop {
            if let Some(b) = &self.batch
                && self.row < b.num_rows()
            {
                let slot = match self.slot {
                    Some(s) => s,
                    None => {
                        chunk.batches.push(b.clone());
                        let s = chunk.batches.len() - 1;
                        self.slot = Some(s);
                        s
                    }
                };
                self.row += 1;
                return Ok((slot, self.row - 1));
            }
            if self.group >= self.groups {
                return Err(self.short());
            }
            let rx = self.rxs.get(self.group % self.rxs.len().max(1)).ok_or_else(|| self.short())?;
            match rx.recv() {
                Ok(GroupMsg::Batch(b)) => {
                    self.batch = Some((*b)?);
                    self.row = 0;
                    self.slot = None;
                }
                Ok(GroupMsg::Done) => self.group += 1,
                // A reader that stopped without an error: never a silently short diff.
                Err(_) => return Err(self.short()),
            }
        }
    }
}

const INSERT: u64 = 1 << 62;
const UPDATE: u64 = 2 << 62;
const DELETE: u64 = 3 << 62;
const INDEX: u64 = (1 << 62) - 1;

/// The merge of phase 1: ops in key order (op | row index), the old hashes of updates, counts.
fn merge_keys(mut a: Cursor<'_>, mut b: Cursor<'_>) -> Result<Merged, DiffError> {
    let mut ops: Vec<u64> = Vec::new();
    let (mut old_hashes, mut new_hashes): (Vec<Hash>, Vec<Hash>) = (Vec::new(), Vec::new());
    let mut counts = ChangeCounts::default();
    // The comparator of the current pair of batches, with the batch counts it was built for.
    let mut cmp: Option<(u64, u64, KeyCmp)> = None;
    loop {
        let (ha, hb) = (a.fill()?, b.fill()?);
        let ord = match (ha, hb) {
            (false, false) => break,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (true, true) => {
                if !matches!(&cmp, Some((x, y, _)) if *x == a.batches && *y == b.batches) {
                    cmp = Some((a.batches, b.batches, KeyCmp::new(&a.keys, &b.keys)?));
                }
                match &cmp {
                    Some((_, _, c)) => c.cmp(a.pos, b.pos),
                    None => break,
                }
            }
        };
        match ord {
            std::cmp::Ordering::Less => {
                ops.push(DELETE | a.index);
                old_hashes.push(hash_bytes(a.hashes.value(a.pos)));
                counts.deletes += 1;
                a.delete();
                a.advance();
            }
            std::cmp::Ordering::Greater => {
                ops.push(INSERT | b.index);
                new_hashes.push(hash_bytes(b.hashes.value(b.pos)));
                counts.inserts += 1;
                b.advance();
            }
            std::cmp::Ordering::Equal => {
                let (oh, nh) = (a.hashes.value(a.pos), b.hashes.value(b.pos));
                if oh == nh {
                    counts.unchanged += 1;
                } else {
                    ops.push(UPDATE | b.index);
                    old_hashes.push(hash_bytes(oh));
                    new_hashes.push(hash_bytes(nh));
                    counts.updates += 1;
                }
                a.advance();
                b.advance();
            }
        }
    }
    a.keep_deleted()?;
    Ok((ops, old_hashes, new_hashes, counts, a.kept))
}

/// Diffs two snapshots of `set` (the old one may be absent: everything is an insert) and hands
/// the change rows, in key order and in batches, to `sink`.
pub fn diff_snapshots(
    set: &RecordSetSchema,
    old: &[PathBuf],
    new: &[PathBuf],
    sink: &mut dyn FnMut(RecordBatch) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<ChangeCounts, DiffError> {
    diff_with(set, old, new, BATCH, OUT_BATCH, sink)
}

/// [`diff_snapshots`] with the read and output batch sizes given (tests vary them).
fn diff_with(
    set: &RecordSetSchema,
    old: &[PathBuf],
    new: &[PathBuf],
    batch: usize,
    out_batch: usize,
    sink: &mut dyn FnMut(RecordBatch) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<ChangeCounts, DiffError> {
    let old = Snapshot { set, files: old.to_vec(), batch };
    let new = Snapshot { set, files: new.to_vec(), batch };
    let key_names: Vec<&str> = set.key.iter().map(|&k| set.columns[k].name.as_str()).collect();
    if old.files.is_empty() {
        return all_inserts(&new, &key_names, sink);
    }
    let mut names = key_names.clone();
    names.push(ROW_HASH);

    // Phase 1: merge the key and row_hash columns of both sides, each decoded on its own thread.
    let started = std::time::Instant::now();
    let (ops, old_hashes, new_hashes, counts, deleted_keys) = std::thread::scope(|scope| {
        let (old_tx, old_rx) = std::sync::mpsc::sync_channel(2);
        let (new_tx, new_rx) = std::sync::mpsc::sync_channel(2);
        let names = &names;
        let (old, new) = (&old, &new);
        scope.spawn(move || produce(old, names, old_tx));
        scope.spawn(move || produce(new, names, new_tx));
        merge_keys(Cursor::new(old, old_rx), Cursor::new(new, new_rx))
    })?;
    tracing::debug!(record_set = %set.name, seconds = started.elapsed().as_secs_f64(), changes = ops.len(), "diff: keys and hashes merged");
    if ops.is_empty() {
        return Ok(counts);
    }
    let started = std::time::Instant::now();

    // Phase 2: read only the changed rows and interleave them in key order.
    let out_schema = change_schema(set);
    let row_names: Vec<&str> = set.arrow.fields().iter().map(|f| f.name().as_str()).filter(|n| *n != ROW_HASH).collect();
    let new_sel: Vec<u64> = ops.iter().filter(|&&o| o & DELETE != DELETE).map(|&o| o & INDEX).collect();
    let new_groups = Selected::groups(&new, &new_sel)?;
    let key_pos: Vec<Option<usize>> = row_names.iter().map(|n| key_names.iter().position(|k| k == n)).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let key_fields: Vec<Field> = set.key.iter().map(|&k| set.arrow.field(k).clone()).collect();
    let mut old_keys = Kept::new(Arc::new(Schema::new(key_fields)), deleted_keys)?;
    let (new, row_names, new_groups) = (&new, &row_names, &new_groups);
    std::thread::scope(|scope| {
        // The new side's rows are read on every core; the old side's deleted keys came from phase 1.
        let mut new_rows = Selected::spawn(scope, new, row_names, new_groups, cores);
        let (mut old_hashes, mut new_hashes) = (old_hashes.iter(), new_hashes.iter());
        let mut chunk = Chunk::default();
        for &op in &ops {
            let kind = op & DELETE;
            if kind == DELETE {
                let (src, row) = old_keys.next_row(&mut chunk)?;
                chunk.push("delete", old_hashes.next(), None, src, row);
            } else {
                let (src, row) = new_rows.next_row(&mut chunk)?;
                let (name, old) = if kind == UPDATE { ("update", old_hashes.next()) } else { ("insert", None) };
                chunk.push(name, old, new_hashes.next(), src, row);
            }
            if chunk.len() >= out_batch {
                sink(chunk.finish(&out_schema, &key_pos, key_names.len())?).map_err(DiffError::Sink)?;
                new_rows.slot = None;
                old_keys.slot = None;
            }
        }
        if chunk.len() > 0 {
            sink(chunk.finish(&out_schema, &key_pos, key_names.len())?).map_err(DiffError::Sink)?;
        }
        tracing::debug!(record_set = %set.name, seconds = started.elapsed().as_secs_f64(), "diff: changed rows written");
        Ok(counts)
    })
}

/// A first load (no old snapshot): every row is an insert, so the new snapshot is read once, every
/// column, and passed on with the change columns in front, its keys checked to ascend.
fn all_inserts(
    new: &Snapshot<'_>,
    key_names: &[&str],
    sink: &mut dyn FnMut(RecordBatch) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> Result<ChangeCounts, DiffError> {
    let set = new.set;
    let out_schema = change_schema(set);
    let mut names: Vec<&str> = set.arrow.fields().iter().map(|f| f.name().as_str()).filter(|n| *n != ROW_HASH).collect();
    names.push(ROW_HASH);
    let key_idx: Vec<usize> = key_names.iter().filter_map(|k| names.iter().position(|n| n == k)).collect();
    let mut counts = ChangeCounts::default();
    let mut last: Option<Vec<ArrayRef>> = None;
    for (fi, reader) in new.readers(&names, false)?.into_iter().enumerate() {
        let path = new.files.get(fi).cloned().unwrap_or_default();
        let layout =
            |e: arrow::error::ArrowError| DiffError::Layout { path: path.clone(), record_set: set.name.clone(), reason: e.to_string() };
        for batch in reader {
            let batch = batch.and_then(|b| in_order(b, &names)).map_err(layout)?;
            let n = batch.num_rows();
            if n == 0 {
                continue;
            }
            let keys: Vec<ArrayRef> = key_idx.iter().map(|&i| batch.column(i).clone()).collect();
            check_order(set, &path, &keys, &mut last, counts.inserts)?;
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(arrow::array::StringArray::from(vec!["insert"; n])),
                arrow::array::new_null_array(&DataType::Utf8, n),
                row_hash::as_text(batch.column(names.len() - 1).as_ref()).map_err(layout)?,
            ];
            columns.extend(batch.columns()[..names.len() - 1].iter().cloned());
            sink(RecordBatch::try_new(out_schema.clone(), columns)?).map_err(DiffError::Sink)?;
            counts.inserts += n as u64;
        }
    }
    Ok(counts)
}

/// Keys must ascend strictly, within a row group and from the last key of the one before.
fn check_order(
    set: &RecordSetSchema,
    path: &Path,
    keys: &[ArrayRef],
    last: &mut Option<Vec<ArrayRef>>,
    before: u64,
) -> Result<(), DiffError> {
    let layout =
        |e: arrow::error::ArrowError| DiffError::Layout { path: path.to_path_buf(), record_set: set.name.clone(), reason: e.to_string() };
    let unsorted = |row: u64| DiffError::Unsorted { path: path.to_path_buf(), record_set: set.name.clone(), row };
    let n = key_rows(keys);
    if n == 0 {
        return Ok(());
    }
    if let Some(l) = last.as_ref()
        && KeyCmp::new(l, keys).map_err(layout)?.cmp(0, 0).is_ge()
    {
        return Err(unsorted(before));
    }
    let within = KeyCmp::new(keys, keys).map_err(layout)?;
    if let Some(i) = (1..n).find(|&i| within.cmp(i - 1, i).is_ge()) {
        return Err(unsorted(before + i as u64));
    }
    *last = Some(keys.iter().map(|k| k.slice(n - 1, 1)).collect());
    Ok(())
}

/// The deleted keys phase 1 kept, as one batch of the key columns, handed out in order.
struct Kept {
    batch: RecordBatch,
    row: usize,
    /// The batch's index in the chunk being gathered, once it has given a row to it.
    slot: Option<usize>,
}

impl Kept {
    fn new(schema: SchemaRef, parts: Vec<Vec<ArrayRef>>) -> Result<Kept, DiffError> {
        let batches = parts.into_iter().map(|keys| RecordBatch::try_new(schema.clone(), keys)).collect::<Result<Vec<_>, _>>()?;
        Ok(Kept { batch: arrow::compute::concat_batches(&schema, &batches)?, row: 0, slot: None })
    }

    /// The next deleted key, as (batch index in `chunk`, row).
    fn next_row(&mut self, chunk: &mut Chunk) -> Result<(usize, usize), DiffError> {
        if self.row >= self.batch.num_rows() {
            return Err(DiffError::Arrow(arrow::error::ArrowError::ComputeError("more deletes than deleted keys".into())));
        }
        let slot = *self.slot.get_or_insert_with(|| {
            chunk.batches.push(self.batch.clone());
            chunk.batches.len() - 1
        });
        self.row += 1;
        Ok((slot, self.row - 1))
    }
}

/// Change rows being gathered: where each row comes from, and its op and hashes.
#[derive(Default)]
struct Chunk {
    /// Batches rows come from: new rows (all row columns but row_hash) or deleted keys (the key
    /// columns).
    batches: Vec<RecordBatch>,
    from: Vec<(usize, usize)>,
    op: StringBuilder,
    old: StringBuilder,
    new: StringBuilder,
}

impl Chunk {
    fn len(&self) -> usize {
        self.from.len()
    }

    fn push(&mut self, op: &str, old: Option<&Hash>, new: Option<&Hash>, src: usize, row: usize) {
        // Change rows carry hashes as text, as everything outside a snapshot file does.
        fn append(to: &mut StringBuilder, hash: Option<&Hash>) {
            let mut hex = [0u8; 2 * row_hash::BYTES];
            match hash {
                Some(h) => {
                    row_hash::hex_into(h, &mut hex);
                    to.append_value(std::str::from_utf8(&hex).unwrap_or_default());
                }
                None => to.append_null(),
            }
        }
        self.op.append_value(op);
        append(&mut self.old, old);
        append(&mut self.new, new);
        self.from.push((src, row));
    }

    /// The gathered change rows; the chunk is empty afterwards (sources must `reset`).
    fn finish(&mut self, schema: &SchemaRef, key_pos: &[Option<usize>], nkey: usize) -> Result<RecordBatch, DiffError> {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(self.op.finish()) as ArrayRef, Arc::new(self.old.finish()), Arc::new(self.new.finish())];
        for (c, field) in schema.fields().iter().skip(3).enumerate() {
            let arrays: Vec<ArrayRef> = self
                .batches
                .iter()
                .map(|b| {
                    // Row batches have every row column; a deleted-key batch only the key.
                    if b.num_columns() == nkey {
                        match key_pos[c] {
                            Some(k) => b.column(k).clone(),
                            None => arrow::array::new_null_array(field.data_type(), b.num_rows()),
                        }
                    } else {
                        b.column(c).clone()
                    }
                })
                .collect();
            let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            columns.push(arrow::compute::interleave(&refs, &self.from)?);
        }
        self.batches.clear();
        self.from.clear();
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Writes the changes of every record set that version `new` wrote, against `base` (the last
/// published version), to `_changes/<set>/insurer_no=<n>/version=<v>/`. Sets are diffed on every
/// core, the largest first; each file is atomic, so a rerun after a crash writes the same bytes.
pub fn write_changes(
    store: &crate::store::Store,
    sets: &crate::schema::SchemaRegistry,
    base: Option<&crate::store::Manifest>,
    new: &crate::store::Manifest,
) -> Result<Vec<(String, ChangeCounts, crate::store::StoredFile)>, DiffError> {
    let mut work: Vec<(&String, &crate::store::SetEntry)> = new.record_sets.iter().filter(|(_, e)| e.version == new.version).collect();
    work.sort_by_key(|(_, e)| std::cmp::Reverse(e.rows));
    let results =
        crate::parallel::par_map(work, |(name, entry)| -> Result<Option<(String, ChangeCounts, crate::store::StoredFile)>, DiffError> {
            let Some(set) = sets.get(name) else { return Ok(None) };
            let files = |e: &crate::store::SetEntry| -> Vec<PathBuf> { e.files.iter().map(|f| store.root().join(&f.path)).collect() };
            let base_entry = base.and_then(|m| m.record_sets.get(name.as_str()));
            let old = base_entry.map(files).unwrap_or_default();
            let sides = [(old.clone(), base_entry.map_or(0, |e| e.version)), (files(entry), entry.version)];
            for (paths, version) in &sides {
                if let Some(f) = paths.iter().find(|f| !f.exists()) {
                    return Err(DiffError::Store(crate::store::StoreError::Missing { path: f.clone(), version: *version }));
                }
            }
            let schema = change_schema(set);
            let sorting = set
                .key
                .iter()
                .map(|&k| parquet::file::metadata::SortingColumn { column_idx: (k + 3) as i32, descending: false, nulls_first: false })
                .collect();
            let dir = store.changes_dir(name, &new.insurer_no, new.version);
            let mut writer = store.part_writer(&dir, schema, Some(sorting))?;
            let counts = if old.is_empty() {
                first_load::copy_inserts(set, &files(entry), &mut writer)?
            } else {
                diff_snapshots(set, &old, &files(entry), &mut |batch| writer.write(&batch).map_err(|e| Box::new(e) as _))?
            };
            let file = writer.finish()?;
            Ok(Some((name.to_string(), counts, file)))
        });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::RecordSetSchema;
    use arrow::array::{Date32Array, Int32Array, Int64Array, StringArray};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn copayment() -> Arc<RecordSetSchema> {
        let catalog = crate::job::catalog::Catalog::embedded().expect("catalog");
        catalog.schemas.get("copayment_ratio").expect("set").clone()
    }

    /// Rows (insured_no, valid_from, ratio), written sorted by key as a store file of format 2
    /// would be (`row_hash` as bytes).
    fn write(set: &RecordSetSchema, rows: &BTreeMap<(String, i32), i32>, path: &Path) {
        write_format(set, rows, path, 2)
    }

    /// [`write`] in a store format: 1 keeps `row_hash` as hex text, 2 as bytes.
    fn write_format(set: &RecordSetSchema, rows: &BTreeMap<(String, i32), i32>, path: &Path, format: u32) {
        let n = rows.len();
        let content: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["141309"; n])),
            Arc::new(StringArray::from(rows.keys().map(|k| k.0.clone()).collect::<Vec<_>>())),
            Arc::new(Date32Array::from(rows.keys().map(|k| k.1).collect::<Vec<_>>())),
            Arc::new(Date32Array::from(vec![None::<i32>; n])),
            Arc::new(Int32Array::from(rows.values().copied().collect::<Vec<_>>())),
            Arc::new(Int32Array::from(vec![Some(90); n])),
        ];
        let hashes = crate::map::rowset::row_hashes(set, &content);
        let mut cols = content;
        cols.push(Arc::new(StringArray::from(vec!["f.csv"; n])));
        cols.push(Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())));
        cols.push(Arc::new(Int64Array::from(vec![0i64; n])));
        cols.push(Arc::new(hashes));
        let mut batch = RecordBatch::try_new(set.arrow.clone(), cols).expect("batch");
        if format == 2 {
            let (schema, i) = row_hash::file_schema(&set.arrow).expect("a text row_hash");
            batch = row_hash::to_file(&batch, &schema, i).expect("bytes");
        }
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(7))
            .set_data_page_row_count_limit(3)
            .build();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).expect("file"), batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }

    fn key(i: u8, d: u8) -> (String, i32) {
        (format!("{:010}", i), 19000 + d as i32)
    }

    /// Applies change rows to the old rows.
    fn apply(old: &BTreeMap<(String, i32), i32>, changes: &[RecordBatch]) -> BTreeMap<(String, i32), i32> {
        let mut out = old.clone();
        for b in changes {
            let op = b.column_by_name(OP).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            let no = b.column_by_name("insured_no").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            let from = b.column_by_name("valid_from").unwrap().as_any().downcast_ref::<Date32Array>().unwrap();
            let ratio = b.column_by_name("ratio").unwrap().as_any().downcast_ref::<Int32Array>().unwrap();
            for i in 0..b.num_rows() {
                let k = (no.value(i).to_string(), from.value(i));
                match op.value(i) {
                    "delete" => {
                        assert!(ratio.is_null(i), "a delete carries only the key");
                        assert!(out.remove(&k).is_some(), "delete of a key that was not there");
                    }
                    "insert" => assert!(out.insert(k, ratio.value(i)).is_none(), "insert of a key that was there"),
                    _ => assert!(out.insert(k, ratio.value(i)).is_some(), "update of a key that was not there"),
                }
            }
        }
        out
    }

    fn run(
        old: &BTreeMap<(String, i32), i32>,
        new: &BTreeMap<(String, i32), i32>,
        batch: usize,
        out_batch: usize,
    ) -> (ChangeCounts, Vec<RecordBatch>) {
        run_formats(old, new, batch, out_batch, (2, 2))
    }

    /// [`run`] over files of the given store formats (old, new).
    fn run_formats(
        old: &BTreeMap<(String, i32), i32>,
        new: &BTreeMap<(String, i32), i32>,
        batch: usize,
        out_batch: usize,
        formats: (u32, u32),
    ) -> (ChangeCounts, Vec<RecordBatch>) {
        let set = copayment();
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("old.parquet"), dir.path().join("new.parquet"));
        write_format(&set, old, &a, formats.0);
        write_format(&set, new, &b, formats.1);
        let mut got = Vec::new();
        let counts = diff_with(&set, &[a], &[b], batch, out_batch, &mut |x| {
            got.push(x);
            Ok(())
        })
        .expect("diff");
        (counts, got)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Applying the changes to the old snapshot gives the new one, in key order, for any
        /// read and output batch sizes.
        #[test]
        fn changes_turn_old_into_new(
            old in proptest::collection::btree_map((0u8..40, 0u8..3), 1i32..4, 0..60),
            new in proptest::collection::btree_map((0u8..40, 0u8..3), 1i32..4, 0..60),
            batch in 1usize..20, out_batch in 1usize..20,
        ) {
            let old: BTreeMap<_, _> = old.into_iter().map(|((i, d), r)| (key(i, d), r)).collect();
            let new: BTreeMap<_, _> = new.into_iter().map(|((i, d), r)| (key(i, d), r)).collect();
            let (counts, changes) = run(&old, &new, batch, out_batch);
            prop_assert_eq!(apply(&old, &changes), new.clone());
            // A store written before (row_hash as text) diffs to the same change rows, as either side.
            for formats in [(1, 1), (1, 2), (2, 1)] {
                let (c, other) = run_formats(&old, &new, batch, out_batch, formats);
                prop_assert_eq!(c, counts);
                prop_assert_eq!(&other, &changes);
            }
            let rows: usize = changes.iter().map(|b| b.num_rows()).sum();
            prop_assert_eq!(rows as u64, counts.total());
            let same = old.iter().filter(|(k, v)| new.get(*k) == Some(*v)).count() as u64;
            prop_assert_eq!(counts.unchanged, same);
            // Key order across the whole output.
            let keys: Vec<(String, i32)> = changes.iter().flat_map(|b| {
                let no = b.column_by_name("insured_no").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
                let from = b.column_by_name("valid_from").unwrap().as_any().downcast_ref::<Date32Array>().unwrap().clone();
                (0..b.num_rows()).map(move |i| (no.value(i).to_string(), from.value(i)))
            }).collect();
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// A first load (no old snapshot) reads the new one once; its changes are those of a
        /// diff against an empty snapshot, byte for byte, and so are the change rows a store
        /// writes by copying the snapshot's column chunks (`first_load`), from either format.
        #[test]
        fn a_first_load_is_a_diff_against_nothing(
            new in proptest::collection::btree_map((0u8..40, 0u8..3), 1i32..4, 0..60),
            batch in 1usize..20,
            format in 1u32..=2,
        ) {
            let new: BTreeMap<_, _> = new.into_iter().map(|((i, d), r)| (key(i, d), r)).collect();
            let set = copayment();
            let dir = tempfile::tempdir().expect("tmp");
            let (a, b) = (dir.path().join("old.parquet"), dir.path().join("new.parquet"));
            write(&set, &BTreeMap::new(), &a);
            write_format(&set, &new, &b, format);
            let run = |old: &[PathBuf]| {
                let mut got = Vec::new();
                let counts = diff_with(&set, old, std::slice::from_ref(&b), batch, 7, &mut |x| {
                    got.push(x);
                    Ok(())
                })
                .expect("diff");
                let all = arrow::compute::concat_batches(&change_schema(&set), &got).expect("concat");
                (counts, all)
            };
            let (first, against_empty) = (run(&[]), run(std::slice::from_ref(&a)));
            prop_assert_eq!(first.0, against_empty.0);
            prop_assert_eq!(first.0.inserts, new.len() as u64);
            prop_assert_eq!(&first.1, &against_empty.1);
            let (copied, counts) = copied_inserts(&set, &b);
            prop_assert_eq!(counts, first.0);
            prop_assert_eq!(copied, first.1);
        }
    }

    /// A first load's changes of `snapshot` as a store writes them (column chunks copied), read back.
    fn copied_inserts(set: &RecordSetSchema, snapshot: &Path) -> (RecordBatch, ChangeCounts) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = crate::store::Store::open(dir.path()).expect("store");
        let mut writer = store.part_writer(&dir.path().join("changes"), change_schema(set), None).expect("writer");
        let counts = first_load::copy_inserts(set, &[snapshot.to_path_buf()], &mut writer).expect("copy");
        let file = writer.finish().expect("finish");
        assert_eq!(file.rows, counts.inserts);
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(dir.path().join(&file.path)).expect("open")).expect("reader");
        // The snapshot's nullable columns were copied: their chunks keep the snapshot's
        // compression (none, in these files), where the store's own encoding is zstd.
        for group in reader.metadata().row_groups() {
            let codec =
                |name: &str| group.columns().iter().find(|c| c.column_path().string() == name).map(|c| c.compression()).expect("column");
            assert_eq!(codec("ratio"), parquet::basic::Compression::UNCOMPRESSED);
            assert!(matches!(codec("new_row_hash"), parquet::basic::Compression::ZSTD(_)));
        }
        let reader = reader.build().expect("build");
        let batches = reader.map(|b| b.expect("batch")).collect::<Vec<_>>();
        let columns = match batches.first() {
            Some(b) => arrow::compute::concat_batches(&b.schema(), &batches).expect("concat").columns().to_vec(),
            None => change_schema(set).fields().iter().map(|f| arrow::array::new_empty_array(f.data_type())).collect(),
        };
        (RecordBatch::try_new(change_schema(set), columns).expect("changes"), counts)
    }

    #[test]
    fn hashes_are_carried() {
        let old: BTreeMap<_, _> = [(key(1, 0), 1), (key(2, 0), 1), (key(3, 0), 1)].into_iter().collect();
        let new: BTreeMap<_, _> = [(key(1, 0), 1), (key(2, 0), 2), (key(4, 0), 1)].into_iter().collect();
        let (counts, changes) = run(&old, &new, 2, 2);
        assert_eq!(counts, ChangeCounts { inserts: 1, updates: 1, deletes: 1, unchanged: 1 });
        let all = arrow::compute::concat_batches(&changes[0].schema(), &changes).unwrap();
        let col = |n: &str| all.column_by_name(n).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let (op, old_h, new_h) = (col(OP), col(OLD_ROW_HASH), col(NEW_ROW_HASH));
        assert_eq!((op.value(0), op.value(1), op.value(2)), ("update", "delete", "insert"));
        assert!(old_h.value(0).len() == 32 && new_h.value(0).len() == 32 && old_h.value(0) != new_h.value(0));
        // The hashes are the rows' own, as hex text.
        let set = copayment();
        let content = |ratio: i32| -> Vec<ArrayRef> {
            vec![
                Arc::new(StringArray::from(vec!["141309"])),
                Arc::new(StringArray::from(vec![key(2, 0).0])),
                Arc::new(Date32Array::from(vec![key(2, 0).1])),
                Arc::new(Date32Array::from(vec![None::<i32>])),
                Arc::new(Int32Array::from(vec![ratio])),
                Arc::new(Int32Array::from(vec![Some(90)])),
            ]
        };
        let hash = |ratio| crate::map::rowset::row_hashes(&set, &content(ratio)).value(0).to_string();
        assert_eq!((old_h.value(0), new_h.value(0)), (hash(1).as_str(), hash(2).as_str()));
        assert!(!old_h.is_null(1) && new_h.is_null(1));
        assert!(old_h.is_null(2) && !new_h.is_null(2));
    }

    #[test]
    fn a_file_out_of_key_order_is_an_error() {
        let set = copayment();
        let dir = tempfile::tempdir().unwrap();
        let good: BTreeMap<_, _> = [(key(1, 0), 1), (key(2, 0), 1)].into_iter().collect();
        let a = dir.path().join("a.parquet");
        write(&set, &good, &a);
        // Two files whose concatenation goes backwards.
        let err = diff_with(&set, &[], &[a.clone(), a.clone()], 64, 64, &mut |_| Ok(())).unwrap_err();
        assert!(matches!(err, DiffError::Unsorted { row: 2, .. }), "{err}");
        // The same when a store copies a first load's changes.
        let store = crate::store::Store::open(dir.path()).unwrap();
        let mut writer = store.part_writer(&dir.path().join("changes"), change_schema(&set), None).unwrap();
        let err = first_load::copy_inserts(&set, &[a.clone(), a], &mut writer).unwrap_err();
        assert!(matches!(err, DiffError::Unsorted { row: 2, .. }), "{err}");
    }
}
