//! Sorted runs: how a load keeps its rows out of memory until later-wins (the streaming load).
//!
//! ```text
//!  ingest ─► part of 128 Ki rows (one file, one set) ─► row rules ─► row_hash
//!        ─► in key order already? ─ yes ─► append to the file's current run, if it goes on after it
//!                                 └ no ──► sort by (key, apply date, record) ─► a new run
//!        ─► run = Arrow IPC file in the load's staging directory, in batches of 4 Ki rows
//! ```
//!
//! A run is a sequence of rows sorted by key, from one file. Exports usually arrive sorted by key
//! (被保険者番号), so a file of any size is one run and later-wins reads it straight through;
//! a file in another order is as many runs as parts, and [`super::merge`] merges them a batch of
//! each at a time. Either way memory is bounded by the part size and the number of runs, never
//! by the rows of the load. A run's batches carry the set's columns with `row_hash` (text) and
//! the rows' apply-order date ([`ORDER_DATE`]), which later-wins needs across files.

use super::builder::SetRows;
use super::rowset::row_hashes;
use crate::schema::{RecordSetSchema, SOURCE_RECORD};
use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::FileWriter;
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows a file's set builder holds before they are handed on as a part: what bounds the memory
/// of reading (a part of the generic 21-column register is ≈ 45 MB).
pub const PART_ROWS: usize = 128 * 1024;
/// Rows per batch of a run file: what the merge holds of each run (a few in unit tests, so they
/// cross batch boundaries).
#[cfg(not(test))]
pub const RUN_BATCH: usize = 4 * 1024;
#[cfg(test)]
pub const RUN_BATCH: usize = 3;
/// The extra column of a run: the row's apply-order date (Date32 days, `i32::MIN` when none).
pub const ORDER_DATE: &str = "_order_date";

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("staging {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("staging {path}: {source}")]
    Ipc { path: PathBuf, source: ArrowError },
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    #[error("{what}: record set {record_set}: rows are not in key order at row {row}; the file is damaged")]
    Unsorted { what: String, record_set: String, row: u64 },
    #[error(transparent)]
    Sink(Box<dyn std::error::Error + Send + Sync>),
}

/// One sorted run of one file's rows of a set.
#[derive(Debug, Clone)]
pub struct Run {
    pub path: PathBuf,
    pub rows: u64,
    /// The file of the load the rows come from (its rank decides ties in later-wins).
    pub file_seq: u32,
    /// No key occurs twice in the run.
    pub unique: bool,
    /// The set digest's terms summed over the run's rows ([`super::rowset::digest_sum`]): the
    /// snapshot's digest when the run is the whole snapshot, summed while the file was read.
    pub digest: u128,
}

/// The schema of a run's batches: the set's columns, then [`ORDER_DATE`].
pub fn run_schema(schema: &RecordSetSchema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.arrow.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(ORDER_DATE, DataType::Int32, false));
    Arc::new(Schema::new(fields))
}

/// The converter whose rows order keys as every stage of the load does.
pub fn key_converter(schema: &RecordSetSchema) -> Result<RowConverter, ArrowError> {
    RowConverter::new(schema.key.iter().map(|&k| SortField::new(schema.columns[k].data_type.clone())).collect())
}

/// Keys as rows of [`key_converter`]: how later stages name the keys to leave out.
pub type KeySet = hashbrown::HashSet<Vec<u8>>;

/// The key columns of a batch of the set (or of a run) as comparable rows.
pub fn key_rows(schema: &RecordSetSchema, converter: &RowConverter, batch: &RecordBatch) -> Result<Rows, ArrowError> {
    let cols: Vec<ArrayRef> = schema.key.iter().map(|&k| batch.column(k).clone()).collect();
    converter.convert_columns(&cols)
}

struct Open {
    writer: FileWriter<BufWriter<std::fs::File>>,
    run: Run,
}

/// Writes one file's rows of one set as sorted runs in `dir`.
pub struct RunWriter {
    schema: Arc<RecordSetSchema>,
    run_schema: SchemaRef,
    dir: PathBuf,
    file_seq: u32,
    /// Which output of the file's layout (two outputs may fill one set).
    output: usize,
    converter: RowConverter,
    runs: Vec<Run>,
    open: Option<Open>,
    last_key: Option<OwnedRow>,
}

impl RunWriter {
    /// Runs of output `output` of file `file_seq`, written to `dir`.
    pub fn new(schema: Arc<RecordSetSchema>, dir: &Path, file_seq: u32, output: usize) -> Result<RunWriter, SpillError> {
        std::fs::create_dir_all(dir).map_err(|source| SpillError::Io { path: dir.to_path_buf(), source })?;
        Ok(RunWriter {
            run_schema: run_schema(&schema),
            converter: key_converter(&schema)?,
            schema,
            dir: dir.to_path_buf(),
            file_seq,
            output,
            runs: Vec::new(),
            open: None,
            last_key: None,
        })
    }

    /// Adds a part of the file's rows (those that passed the row rules), in file order.
    pub fn push(&mut self, part: SetRows) -> Result<(), SpillError> {
        let n = part.order_date.len();
        if n == 0 {
            return Ok(());
        }
        let mut columns = part.columns;
        let hashes = row_hashes(&self.schema, &columns[..self.schema.content_len()]);
        columns.push(Arc::new(hashes));
        columns.push(Arc::new(Int32Array::from(part.order_date)));
        let batch = RecordBatch::try_new(self.run_schema.clone(), columns)?;
        let keys = key_rows(&self.schema, &self.converter, &batch)?;
        let ascending = (1..n).all(|i| keys.row(i - 1) < keys.row(i));
        let (batch, keys) = if ascending { (batch, keys) } else { self.sorted(&batch, &keys)? };
        let goes_on = self.last_key.as_ref().is_some_and(|last| last.row() < keys.row(0));
        if !goes_on {
            self.close_run()?;
        }
        let open = match &mut self.open {
            Some(open) => open,
            None => {
                let path = self.dir.join(format!("{}-{}-{}-{}.arrow", self.schema.name, self.file_seq, self.output, self.runs.len()));
                let file = std::fs::File::create(&path).map_err(|source| SpillError::Io { path: path.clone(), source })?;
                let writer = FileWriter::try_new(BufWriter::with_capacity(1 << 20, file), &self.run_schema)
                    .map_err(|source| SpillError::Ipc { path: path.clone(), source })?;
                self.open.insert(Open { writer, run: Run { path, rows: 0, file_seq: self.file_seq, unique: true, digest: 0 } })
            }
        };
        open.run.unique &= ascending;
        open.run.rows += n as u64;
        open.run.digest = open.run.digest.wrapping_add(super::rowset::digest_sum(&self.schema, &batch));
        let mut start = 0;
        while start < n {
            let len = RUN_BATCH.min(n - start);
            open.writer.write(&batch.slice(start, len)).map_err(|source| SpillError::Ipc { path: open.run.path.clone(), source })?;
            start += len;
        }
        self.last_key = Some(keys.row(n - 1).owned());
        Ok(())
    }

    /// The part's rows sorted by (key, apply date, record number): the order later-wins applies.
    fn sorted(&self, batch: &RecordBatch, keys: &Rows) -> Result<(RecordBatch, Rows), SpillError> {
        let order = batch.column(batch.num_columns() - 1).as_any().downcast_ref::<Int32Array>().map(|a| a.values().clone());
        let record = self
            .schema
            .index_of(SOURCE_RECORD)
            .and_then(|i| batch.column(i).as_any().downcast_ref::<Int64Array>())
            .map(|a| a.values().clone());
        let (Some(order), Some(record)) = (order, record) else {
            return Err(ArrowError::SchemaError(format!("{}: a part without its order columns", self.schema.name)).into());
        };
        let mut idx: Vec<u32> = (0..batch.num_rows() as u32).collect();
        idx.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            keys.row(a).cmp(&keys.row(b)).then(order[a].cmp(&order[b])).then(record[a].cmp(&record[b]))
        });
        let idx = UInt32Array::from(idx);
        let cols: Vec<ArrayRef> = batch.columns().iter().map(|c| arrow::compute::take(c.as_ref(), &idx, None)).collect::<Result<_, _>>()?;
        let sorted = RecordBatch::try_new(self.run_schema.clone(), cols)?;
        let keys = key_rows(&self.schema, &self.converter, &sorted)?;
        Ok((sorted, keys))
    }

    fn close_run(&mut self) -> Result<(), SpillError> {
        if let Some(mut open) = self.open.take() {
            let ipc = |source| SpillError::Ipc { path: open.run.path.clone(), source };
            open.writer.finish().map_err(ipc)?;
            // Staging files are rebuilt by a rerun, so they are not fsynced.
            self.runs.push(open.run);
        }
        Ok(())
    }

    /// The file's runs, in the order they were written.
    pub fn finish(mut self) -> Result<Vec<Run>, SpillError> {
        self.close_run()?;
        Ok(self.runs)
    }
}

/// Reads a run's batches back, in order.
pub fn read_run(run: &Run) -> Result<impl Iterator<Item = Result<RecordBatch, SpillError>> + use<>, SpillError> {
    let path = run.path.clone();
    let file = std::fs::File::open(&path).map_err(|source| SpillError::Io { path: path.clone(), source })?;
    let reader = arrow::ipc::reader::FileReader::try_new(std::io::BufReader::with_capacity(64 * 1024, file), None)
        .map_err(|source| SpillError::Ipc { path: path.clone(), source })?;
    Ok(reader.map(move |b| b.map_err(|source| SpillError::Ipc { path: path.clone(), source })))
}
