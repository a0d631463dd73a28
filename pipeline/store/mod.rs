//! The Parquet store (SPEC §7): snapshot versions per record set and insurer.
//!
//! ```text
//!  <store>/<record_set>/insurer_no=<n>/version=<v>/part-0.parquet     snapshots
//!  <store>/_quarantine/<record_set>/insurer_no=<n>/load=<id>/part-0.parquet
//!  <store>/_warnings/insurer_no=<n>/load=<id>/part-0.parquet
//!  <store>/_changes/<record_set>/insurer_no=<n>/version=<v>/part-0.parquet   (written by `diff`)
//!  <store>/_manifests/<insurer_no>/<v>.json                            the commit point
//!  <store>/_locks/<insurer_no>.lock                                    one run per insurer
//! ```
//!
//! A version is an insurer's whole state after a load. Each record set the load wrote gets a
//! `version=<v>` directory; a set the load did not touch keeps the entry of the previous manifest.
//! Files are written under a temporary name, fsynced, and renamed into place; the manifest is
//! written last, the same way, so a version exists exactly when its manifest does. Directories of
//! a version without a manifest are what a crash left behind, and the next commit removes them.
//! Parquet files are zstd-compressed, sorted by key (recorded as sorting columns), with
//! statistics, readable by DuckDB, pyarrow and Spark as hive-partitioned datasets.
//!
//! A file is written a row group (256 Ki rows) at a time, its columns encoded and compressed on
//! every core ([`PartWriter`]); zstd level 1, Arrow C++'s (pyarrow's) default, since the store is
//! written at every load (with both changes, writing 1M rows of insured_person went from 1.03 s
//! to 0.60 s; benches/e2e/README.md). Columns unique per row get no dictionary (`row_hash`),
//! record numbers and byte offsets are delta-encoded: a 1M-row file went from 46 to 42 MB.
//!
//! ```text
//!  batches ─► buffer to 256 Ki rows ─► column 1 ─► encode + zstd ─┐ (on every core)
//!                                      column 2 ─► encode + zstd ─┼─► row group, in column order ─► file
//!                                      …                           ┘
//! ```

pub mod row_hash;

use crate::schema::RecordSetSchema;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("store {path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("store manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("store {path}: referenced by manifest version {version} but missing on disk")]
    Missing { path: PathBuf, version: u64 },
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("store {path}: another run holds the lock of insurer {insurer} ({holder}); it fails at once instead of waiting")]
    Locked { path: PathBuf, insurer: String, holder: String },
    #[error("store {path}: expected version {expected:?} to be the latest of insurer {insurer}, found {found:?}")]
    Moved { path: PathBuf, insurer: String, expected: Option<u64>, found: Option<u64> },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// One file of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredFile {
    /// Path relative to the store root, with `/`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// A record set's snapshot in a version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetEntry {
    /// The version whose directory holds the snapshot (earlier when this load did not touch it).
    pub version: u64,
    pub rows: u64,
    /// Rows this version's load contributed (0 when the load did not touch the set).
    #[serde(default)]
    pub load_rows: u64,
    /// Order-independent digest over (key, row_hash); see `map::rowset`.
    pub digest: String,
    pub files: Vec<StoredFile>,
}

/// An input file of the load and its counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputEntry {
    pub file: String,
    pub layout: String,
    pub bytes: u64,
    pub sha256: String,
    pub read: u64,
    pub accepted: u64,
    pub quarantined: u64,
    pub warnings: u64,
    /// Set when the file was rejected as a whole (`<code>: <reason>`): nothing of it is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// The commit record of a version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The store format the version was written in ([`FORMAT`]).
    pub format: u32,
    pub insurer_no: String,
    pub version: u64,
    pub parent_version: Option<u64>,
    pub load_id: String,
    pub created_at: String,
    pub record_sets: BTreeMap<String, SetEntry>,
    pub inputs: Vec<InputEntry>,
    /// Quarantine and warning files of this load.
    pub quarantine: Vec<StoredFile>,
    pub warnings: Vec<StoredFile>,
}

pub struct Store {
    root: PathBuf,
}

/// Held while a run works on an insurer; dropping it (or the process ending) releases it.
pub struct StoreLock {
    _file: std::fs::File,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "this host".into())
}

/// A Parquet file being streamed into the store (see [`Store::part_writer`]).
pub struct PartWriter<'a> {
    store: &'a Store,
    final_dir: PathBuf,
    parent: PathBuf,
    tmp: PathBuf,
    file_path: PathBuf,
    writer: SerializedFileWriter<HashingWriter<std::io::BufWriter<std::fs::File>>>,
    columns: ArrowRowGroupWriterFactory,
    /// The file's schema: the rows' own, but `row_hash` as bytes ([`row_hash`]).
    schema: arrow::datatypes::SchemaRef,
    /// Where the rows' text `row_hash` is, when it is kept as bytes.
    row_hash: Option<usize>,
    /// Rows waiting to be encoded into the row group being written.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// The row group being written: its column writers (one per leaf, holding the pages encoded
    /// so far) and its rows.
    group: Option<(Vec<ArrowColumnWriter>, usize)>,
    row_groups: usize,
    rows: u64,
}

/// One column of a row group given to [`PartWriter::write_row_group`].
pub enum RowGroupColumn {
    /// Values to encode.
    Values(arrow::array::ArrayRef),
    /// The column's chunks (one per Parquet leaf) in another file, to copy as they are. Each
    /// must have the column's descriptor in this file (type, repetition, path), or the write
    /// fails.
    Copied(Vec<parquet::column::writer::ColumnCloseResult>),
}

/// A leaf of a row group being written: encoded (the next of the encoded chunks, which are in
/// leaf order), or copied.
enum Leaf {
    Encoded,
    Copied(Box<parquet::column::writer::ColumnCloseResult>),
}

/// The store format this kiban writes. 1: the first; 2: a snapshot's `row_hash` kept as 16
/// bytes ([`row_hash`]). Every format up to this one is read; a newer one is refused.
pub const FORMAT: u32 = 2;

/// Rows per row group of the store's files.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Rows encoded into the open row group at once: a row group is held as encoded, compressed
/// pages, not as the rows of a quarter million records.
const ENCODE_ROWS: usize = 32 * 1024;

impl PartWriter<'_> {
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        let converted;
        let batch = match self.row_hash {
            Some(i) => {
                converted = row_hash::to_file(batch, &self.schema, i)?;
                &converted
            }
            None => batch,
        };
        self.rows += batch.num_rows() as u64;
        let mut off = 0;
        while off < batch.num_rows() {
            let in_group = self.group.as_ref().map_or(0, |g| g.1);
            let len = (ROW_GROUP_ROWS - in_group - self.pending_rows).min(batch.num_rows() - off);
            self.pending.push(batch.slice(off, len));
            self.pending_rows += len;
            off += len;
            if in_group + self.pending_rows == ROW_GROUP_ROWS {
                self.flush_row_group()?;
            } else if self.pending_rows >= ENCODE_ROWS {
                self.encode_pending()?;
            }
        }
        Ok(())
    }

    /// The file's Parquet schema: what a column chunk copied into it must match.
    pub fn parquet_schema(&self) -> &parquet::schema::types::SchemaDescriptor {
        self.writer.schema_descr()
    }

    /// Encodes the pending rows into the open row group (opening one if none is), its columns on
    /// every core; the pending pieces go to the column writers one after another, not
    /// concatenated first.
    fn encode_pending(&mut self) -> Result<(), StoreError> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let pq = |source| StoreError::Parquet { path: self.file_path.clone(), source };
        let general = |reason: &str| pq(parquet::errors::ParquetError::General(reason.into()));
        let (writers, rows) = match self.group.take() {
            Some(g) => g,
            None => (self.columns.create_column_writers(self.row_groups).map_err(pq)?, 0),
        };
        let pending = std::mem::take(&mut self.pending);
        let mut writers = writers.into_iter();
        let mut work = Vec::new();
        for (i, field) in self.schema.fields().iter().enumerate() {
            // Leaf j of the field, piece after piece.
            let mut by_leaf: Vec<Vec<ArrowLeafColumn>> = Vec::new();
            for piece in &pending {
                for (j, leaf) in compute_leaves(field, piece.column(i)).map_err(pq)?.into_iter().enumerate() {
                    match by_leaf.get_mut(j) {
                        Some(l) => l.push(leaf),
                        None => by_leaf.push(vec![leaf]),
                    }
                }
            }
            for leaves in by_leaf {
                work.push((writers.next().ok_or_else(|| general("a leaf without a writer"))?, leaves));
            }
        }
        let encoded = crate::parallel::par_map(work, |(mut writer, leaves)| -> Result<ArrowColumnWriter, parquet::errors::ParquetError> {
            for leaf in &leaves {
                writer.write(leaf)?;
            }
            Ok(writer)
        });
        let writers = encoded.into_iter().collect::<Result<Vec<_>, _>>().map_err(pq)?;
        self.group = Some((writers, rows + self.pending_rows));
        self.pending_rows = 0;
        Ok(())
    }

    /// Ends the open row group: the pending rows are encoded, the column chunks closed (on every
    /// core) and appended to the file.
    fn flush_row_group(&mut self) -> Result<(), StoreError> {
        self.encode_pending()?;
        let Some((writers, _)) = self.group.take() else { return Ok(()) };
        let pq = |source| StoreError::Parquet { path: self.file_path.clone(), source };
        let chunks = crate::parallel::par_map(writers, |w| w.close());
        let mut group = self.writer.next_row_group().map_err(pq)?;
        for chunk in chunks {
            chunk.and_then(|c| c.append_to_row_group(&mut group)).map_err(pq)?;
        }
        group.close().map_err(pq)?;
        self.row_groups += 1;
        Ok(())
    }

    /// Writes one row group of `columns` (one per field of the file's schema, in order): values
    /// are encoded on every core as [`PartWriter::write`] does, column chunks of `source` are
    /// copied as they are. Rows written before are flushed as a row group of their own first.
    ///
    /// Copying is how a first load's changes avoid decoding and encoding again what the
    /// snapshot file just encoded: the bytes, encodings, statistics and page index of a copied
    /// chunk stay what they were. A `row_hash` column given as values is stored as the file keeps
    /// it, as in [`PartWriter::write`].
    pub fn write_row_group(&mut self, mut columns: Vec<RowGroupColumn>, source: &std::fs::File) -> Result<(), StoreError> {
        self.flush_row_group()?;
        let rows = columns.iter().find_map(|c| match c {
            RowGroupColumn::Values(v) => Some(v.len() as u64),
            RowGroupColumn::Copied(chunks) => chunks.first().map(|c| c.rows_written),
        });
        if let (Some(i), Some(RowGroupColumn::Values(v))) = (self.row_hash, self.row_hash.and_then(|i| columns.get(i))) {
            columns[i] = RowGroupColumn::Values(Arc::new(row_hash::as_bytes(v.as_ref())?));
        }
        self.encode_row_group(columns, Some(source))?;
        self.rows += rows.unwrap_or(0);
        Ok(())
    }

    fn encode_row_group(&mut self, columns: Vec<RowGroupColumn>, source: Option<&std::fs::File>) -> Result<(), StoreError> {
        let pq = |source| StoreError::Parquet { path: self.file_path.clone(), source };
        let general = |reason: &str| pq(parquet::errors::ParquetError::General(reason.into()));
        if columns.len() != self.schema.fields().len() {
            return Err(general("a row group without one column per field of the file"));
        }
        let mut writers = self.columns.create_column_writers(self.row_groups).map_err(pq)?.into_iter();
        // Leaves in file order: encoded ones in `work`, in the same order; copied ones as they are.
        let mut work = Vec::new();
        let mut leaves = Vec::new();
        for (field, column) in self.schema.fields().iter().zip(columns) {
            match column {
                RowGroupColumn::Values(values) => {
                    for leaf in compute_leaves(field, &values).map_err(pq)? {
                        let writer = writers.next().ok_or_else(|| general("a leaf without a writer"))?;
                        leaves.push(Leaf::Encoded);
                        work.push((writer, leaf));
                    }
                }
                RowGroupColumn::Copied(chunks) => {
                    for chunk in chunks {
                        writers.next().ok_or_else(|| general("a leaf without a writer"))?;
                        leaves.push(Leaf::Copied(Box::new(chunk)));
                    }
                }
            }
        }
        let chunks = crate::parallel::par_map(work, |(mut writer, leaf)| -> Result<ArrowColumnChunk, parquet::errors::ParquetError> {
            writer.write(&leaf)?;
            writer.close()
        });
        let mut chunks = chunks.into_iter();
        let mut group = self.writer.next_row_group().map_err(pq)?;
        for leaf in leaves {
            match leaf {
                Leaf::Encoded => {
                    let chunk = chunks.next().ok_or_else(|| general("a leaf without its encoded chunk"))?;
                    chunk.and_then(|c| c.append_to_row_group(&mut group)).map_err(pq)?;
                }
                Leaf::Copied(chunk) => {
                    let source = source.ok_or_else(|| general("a copied column chunk without its file"))?;
                    group.append_column(source, *chunk).map_err(pq)?;
                }
            }
        }
        group.close().map_err(pq)?;
        self.row_groups += 1;
        Ok(())
    }

    /// Closes the file, fsyncs it and renames its directory into place.
    pub fn finish(mut self) -> Result<StoredFile, StoreError> {
        self.flush_row_group()?;
        let pq = |source| StoreError::Parquet { path: self.file_path.clone(), source };
        // Writes the footer and hands back the file.
        let mut hashed = self.writer.into_inner().map_err(pq)?;
        hashed.flush().map_err(io(&self.file_path))?;
        let (bytes, sha256) = (hashed.bytes, hex::encode(sha2::Digest::finalize(hashed.hasher)));
        let file = hashed.inner.into_inner().map_err(|e| StoreError::Io { path: self.file_path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io(&self.file_path))?;
        drop(file);
        fsync_dir(&self.tmp)?;
        if self.final_dir.exists() {
            std::fs::remove_dir_all(&self.final_dir).map_err(io(&self.final_dir))?;
        }
        std::fs::rename(&self.tmp, &self.final_dir).map_err(io(&self.final_dir))?;
        fsync_dir(&self.parent)?;
        let final_file = self.final_dir.join("part-0.parquet");
        let rel = final_file.strip_prefix(&self.store.root).unwrap_or(&final_file).to_string_lossy().replace('\\', "/");
        Ok(StoredFile { path: rel, rows: self.rows, bytes, sha256 })
    }
}

/// What a load hands to the store.
pub struct LoadOutput<'a> {
    pub insurer_no: &'a str,
    pub load_id: &'a str,
    /// The version this load builds on: the commit fails when the store's latest is another.
    pub parent_version: Option<u64>,
    pub sets: Vec<SetOutput<'a>>,
    /// Quarantined records per record set.
    pub quarantine: Vec<(String, RecordBatch)>,
    /// The load's warnings file, written while the load ran ([`Store::warnings_writer`]).
    pub warnings: Option<StoredFile>,
    pub inputs: Vec<InputEntry>,
    /// Rows the load contributed per record set (after validation and later-wins).
    pub load_rows: BTreeMap<String, u64>,
}

/// A record set's new snapshot, as a load hands it to [`Store::commit`].
pub enum SetOutput<'a> {
    /// Rows to write.
    Rows(&'a RecordSetSchema, RecordBatch),
    /// A snapshot the load streamed into [`Store::snapshot_writer`] of the version being
    /// committed, with its row count and digest.
    Written { record_set: String, file: StoredFile, rows: u64, digest: String },
}

/// A snapshot's sorting columns: its key, ascending.
fn sorting(schema: &RecordSetSchema) -> Vec<SortingColumn> {
    schema.key.iter().map(|&k| SortingColumn { column_idx: k as i32, descending: false, nulls_first: false }).collect()
}

/// Counts and hashes what is written, so a file's SHA-256 needs no second read.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

impl Store {
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn manifest_dir(&self, insurer: &str) -> PathBuf {
        self.root.join("_manifests").join(insurer)
    }

    /// The manifest file of a version (it exists exactly when the version does).
    pub fn manifest_path(&self, insurer: &str, version: u64) -> PathBuf {
        self.manifest_dir(insurer).join(format!("{version}.json"))
    }

    /// Where the changes of a version of a record set go (SPEC §7).
    pub fn changes_dir(&self, record_set: &str, insurer: &str, version: u64) -> PathBuf {
        self.root.join("_changes").join(record_set).join(format!("insurer_no={insurer}")).join(format!("version={version}"))
    }

    /// The Parquet files a manifest names that are not on disk, with the version holding each.
    pub fn missing_files(&self, m: &Manifest) -> Vec<(PathBuf, u64)> {
        m.record_sets
            .values()
            .flat_map(|e| e.files.iter().map(move |f| (self.root.join(&f.path), e.version)))
            .filter(|(p, _)| !p.exists())
            .collect()
    }

    /// Takes the insurer's lock, without waiting: one run per insurer and store at a time. The
    /// lock is the operating system's lock on an open file, so a killed run cannot leave it
    /// stuck; the file's text only tells who holds it.
    pub fn lock(&self, insurer: &str, holder: &str) -> Result<StoreLock, StoreError> {
        let dir = self.root.join("_locks");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("{insurer}.lock"));
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
                let holder = if holder.is_empty() { "a run that is starting".to_string() } else { holder };
                return Err(StoreError::Locked { path, insurer: insurer.to_string(), holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io { path, source: e }),
        }
        let text = format!(
            "{holder}, pid {} on {}, since {}\n",
            std::process::id(),
            host(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).and_then(|_| file.write_all(text.as_bytes())).and_then(|_| file.flush()).map_err(io(&path))?;
        Ok(StoreLock { _file: file })
    }

    /// Removes what interrupted writes left: temporary names (of snapshots, changes, quarantine,
    /// warnings and manifests) and version directories above the latest manifest.
    pub fn sweep_interrupted(&self, insurer: &str) -> Result<(), StoreError> {
        let latest = self.versions(insurer)?.last().copied().unwrap_or(0);
        let dir = self.manifest_dir(insurer);
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && name.ends_with(".json.tmp") {
                std::fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
        self.sweep(insurer, latest)?;
        self.clear_staging(insurer)
    }

    /// Where a load keeps what it spills while it runs (sorted runs, this load's rows for the set
    /// rules): under the store, so it is on the same disk, and removed when the load ends.
    pub fn staging_dir(&self, insurer: &str, load_id: &str) -> PathBuf {
        self.root.join("_staging").join(format!("insurer_no={insurer}")).join(format!("load={load_id}"))
    }

    /// Removes every staging directory of the insurer (one run per insurer holds its lock).
    pub fn clear_staging(&self, insurer: &str) -> Result<(), StoreError> {
        let dir = self.root.join("_staging").join(format!("insurer_no={insurer}"));
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io { path: dir, source: e }),
            _ => Ok(()),
        }
    }

    /// The directory of a set's snapshot in a version.
    pub fn snapshot_dir(&self, record_set: &str, insurer: &str, version: u64) -> PathBuf {
        self.root.join(record_set).join(format!("insurer_no={insurer}")).join(format!("version={version}"))
    }

    /// A writer of a set's snapshot in the version a load is about to commit, sorted by key; the
    /// commit then names it as [`SetOutput::Written`]. Until the manifest is written, the version
    /// directory is what a crash leaves behind, and the next commit removes it.
    pub fn snapshot_writer(&self, schema: &RecordSetSchema, insurer: &str, version: u64) -> Result<PartWriter<'_>, StoreError> {
        self.part_writer(&self.snapshot_dir(&schema.name, insurer, version), schema.arrow.clone(), Some(sorting(schema)))
    }

    /// A writer of a load's warnings file (`_warnings/insurer_no=<n>/load=<id>`), streamed while
    /// the load runs; the commit then names it in the manifest.
    pub fn warnings_writer(&self, insurer: &str, load_id: &str) -> Result<PartWriter<'_>, StoreError> {
        let dir = self.root.join("_warnings").join(format!("insurer_no={insurer}")).join(format!("load={load_id}"));
        self.part_writer(&dir, crate::map::quarantine::warning_schema(), None)
    }

    /// Removes the quarantine and warning files of a load that was rolled back.
    pub fn remove_load_outputs(&self, insurer: &str, load_id: &str) -> Result<(), StoreError> {
        let load = format!("load={load_id}");
        let mut dirs = vec![self.root.join("_warnings").join(format!("insurer_no={insurer}")).join(&load)];
        for set in std::fs::read_dir(self.root.join("_quarantine")).into_iter().flatten().flatten() {
            dirs.push(set.path().join(format!("insurer_no={insurer}")).join(&load));
        }
        for d in dirs.into_iter().filter(|d| d.is_dir()) {
            std::fs::remove_dir_all(&d).map_err(io(&d))?;
        }
        Ok(())
    }

    /// Removes what an interrupted commit above `version` left (a rollback).
    pub fn roll_back_above(&self, insurer: &str, version: u64) -> Result<(), StoreError> {
        let path = self.manifest_path(insurer, version + 1);
        if path.exists() {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        self.sweep(insurer, version)
    }

    /// Versions with a manifest, ascending.
    pub fn versions(&self, insurer: &str) -> Result<Vec<u64>, StoreError> {
        let dir = self.manifest_dir(insurer);
        let mut v = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
            Err(e) => return Err(StoreError::Io { path: dir, source: e }),
        };
        for e in rd {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name.strip_suffix(".json").and_then(|s| s.parse::<u64>().ok()) {
                v.push(n);
            }
        }
        v.sort_unstable();
        Ok(v)
    }

    pub fn manifest(&self, insurer: &str, version: u64) -> Result<Manifest, StoreError> {
        let path = self.manifest_dir(insurer).join(format!("{version}.json"));
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| StoreError::Manifest { path: path.clone(), reason: e.to_string() })?;
        if manifest.format > FORMAT {
            let reason = format!("store format {} is newer than this kiban's ({FORMAT}): upgrade kiban to read it", manifest.format);
            return Err(StoreError::Manifest { path, reason });
        }
        Ok(manifest)
    }

    pub fn latest(&self, insurer: &str) -> Result<Option<Manifest>, StoreError> {
        match self.versions(insurer)?.last() {
            Some(&v) => self.manifest(insurer, v).map(Some),
            None => Ok(None),
        }
    }

    /// A set's snapshot a batch at a time, in file order (that is, by key), `row_hash` as text.
    pub fn snapshot_batches<'s>(
        &'s self,
        schema: &'s RecordSetSchema,
        entry: &'s SetEntry,
    ) -> Result<impl Iterator<Item = Result<RecordBatch, StoreError>> + 's, StoreError> {
        let mut readers = Vec::new();
        for f in &entry.files {
            let path = self.root.join(&f.path);
            let file = std::fs::File::open(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    StoreError::Missing { path: path.clone(), version: entry.version }
                } else {
                    StoreError::Io { path: path.clone(), source: e }
                }
            })?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(8 * 1024).build())
                .map_err(|source| StoreError::Parquet { path: path.clone(), source })?;
            readers.push(reader);
        }
        Ok(readers.into_iter().flatten().map(move |b| {
            let b = row_hash::to_text(b?)?;
            Ok(RecordBatch::try_new(schema.arrow.clone(), b.columns().to_vec())?)
        }))
    }

    /// Removes what a crashed commit left: version directories above the latest manifest and
    /// temporary names.
    fn sweep(&self, insurer: &str, latest: u64) -> Result<(), StoreError> {
        self.sweep_except(insurer, latest, &[])
    }

    /// [`Store::sweep`], leaving the directories in `keep` (what the committing load wrote).
    fn sweep_except(&self, insurer: &str, latest: u64, keep: &[PathBuf]) -> Result<(), StoreError> {
        let Ok(sets) = std::fs::read_dir(&self.root) else { return Ok(()) };
        let changes = std::fs::read_dir(self.root.join("_changes")).into_iter().flatten();
        let quarantine = std::fs::read_dir(self.root.join("_quarantine")).into_iter().flatten();
        for set in sets.flatten().chain(changes.flatten()).chain(quarantine.flatten()) {
            let dir = set.path().join(format!("insurer_no={insurer}"));
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let stale = name.starts_with(".tmp-")
                    || name.strip_prefix("version=").and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v > latest);
                let stale = stale && !keep.contains(&e.path());
                if stale {
                    tracing::info!(path = %e.path().display(), "removing what an interrupted run left");
                    std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
                }
            }
        }
        Ok(())
    }

    /// Writes `batch` as one Parquet file in a new directory `final_dir`, atomically.
    fn write_dir(&self, final_dir: &Path, batch: &RecordBatch, sorting: Option<Vec<SortingColumn>>) -> Result<StoredFile, StoreError> {
        let mut w = self.part_writer(final_dir, batch.schema(), sorting)?;
        w.write(batch)?;
        w.finish()
    }

    /// A Parquet file `part-0.parquet` that appears in the new directory `final_dir` only when
    /// `finish` has written, fsynced and renamed it: batches can be streamed into it.
    pub fn part_writer(
        &self,
        final_dir: &Path,
        schema: arrow::datatypes::SchemaRef,
        sorting: Option<Vec<SortingColumn>>,
    ) -> Result<PartWriter<'_>, StoreError> {
        let parent = final_dir.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let name = final_dir.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = parent.join(format!(".tmp-{name}-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let file_path = tmp.join("part-0.parquet");
        let file = std::fs::File::create(&file_path).map_err(io(&file_path))?;
        let file = HashingWriter { inner: std::io::BufWriter::with_capacity(1 << 20, file), hasher: sha2::Sha256::default(), bytes: 0 };
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_sorting_columns(sorting)
            .set_created_by(format!("kiban {}", env!("CARGO_PKG_VERSION")));
        // Hashes are random, unique per row: a dictionary is built, overflows and is thrown
        // away for every row group. A snapshot's `row_hash` is 16 random bytes: nothing for zstd or
        // for min/max statistics to gain (see [`row_hash`]).
        for hash in [crate::schema::ROW_HASH, crate::diff::OLD_ROW_HASH, crate::diff::NEW_ROW_HASH] {
            props = props.set_column_dictionary_enabled(ColumnPath::from(hash), false);
        }
        let (schema, row_hash) = match row_hash::file_schema(&schema) {
            Some((file_schema, i)) => {
                let path = ColumnPath::from(crate::schema::ROW_HASH);
                props = props
                    .set_column_compression(path.clone(), Compression::UNCOMPRESSED)
                    .set_column_statistics_enabled(path, EnabledStatistics::None);
                (file_schema, Some(i))
            }
            None => (schema, None),
        };
        props = props
            .set_column_compression(ColumnPath::from(crate::schema::ROW_HASH), Compression::UNCOMPRESSED)
            .set_column_statistics_enabled(ColumnPath::from(crate::schema::ROW_HASH), EnabledStatistics::None);
        // Record numbers and byte offsets are unique and mostly ascending: deltas, not a dictionary.
        for counter in [crate::schema::SOURCE_RECORD, crate::schema::SOURCE_OFFSET] {
            let path = ColumnPath::from(counter);
            props = props.set_column_dictionary_enabled(path.clone(), false).set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        }
        let props = props.build();
        // ArrowWriter sets the file up (Parquet schema, the Arrow schema in the metadata); its
        // lower half then takes row groups whose columns were encoded in parallel.
        let (writer, columns) = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|source| StoreError::Parquet { path: file_path.clone(), source })?;
        Ok(PartWriter {
            store: self,
            final_dir: final_dir.to_path_buf(),
            parent,
            tmp,
            file_path,
            writer,
            columns,
            schema,
            row_hash,
            pending: Vec::new(),
            pending_rows: 0,
            group: None,
            row_groups: 0,
            rows: 0,
        })
    }

    /// Commits a load as the next version of its insurer.
    pub fn commit(&self, out: LoadOutput<'_>) -> Result<Manifest, StoreError> {
        let previous = self.latest(out.insurer_no)?;
        let parent_version = previous.as_ref().map(|m| m.version);
        if parent_version != out.parent_version {
            return Err(StoreError::Moved {
                path: self.root.clone(),
                insurer: out.insurer_no.to_string(),
                expected: out.parent_version,
                found: parent_version,
            });
        }
        let version = parent_version.map_or(1, |v| v + 1);
        let written_dirs: Vec<PathBuf> = out
            .sets
            .iter()
            .filter_map(|s| match s {
                SetOutput::Written { record_set, .. } => Some(self.snapshot_dir(record_set, out.insurer_no, version)),
                SetOutput::Rows(..) => None,
            })
            .collect();
        self.sweep_except(out.insurer_no, parent_version.unwrap_or(0), &written_dirs)?;
        let mut record_sets = previous.as_ref().map(|m| m.record_sets.clone()).unwrap_or_default();
        for e in record_sets.values_mut() {
            e.load_rows = 0;
        }
        let load_rows = |name: &str| out.load_rows.get(name).copied().unwrap_or(0);
        // Sets are written on every core, the largest first; each is atomic on its own and the
        // manifest below commits them together.
        let mut sets: Vec<(&RecordSetSchema, &RecordBatch)> = Vec::new();
        for s in &out.sets {
            match s {
                SetOutput::Rows(schema, batch) => sets.push((schema, batch)),
                SetOutput::Written { record_set, file, rows, digest } => {
                    let entry = SetEntry {
                        version,
                        rows: *rows,
                        load_rows: load_rows(record_set),
                        digest: digest.clone(),
                        files: vec![file.clone()],
                    };
                    record_sets.insert(record_set.clone(), entry);
                }
            }
        }
        sets.sort_by_key(|(_, b)| std::cmp::Reverse(b.num_rows()));
        let written = crate::parallel::par_map(sets, |(schema, batch)| -> Result<(String, SetEntry), StoreError> {
            let dir = self.snapshot_dir(&schema.name, out.insurer_no, version);
            let f = self.write_dir(&dir, batch, Some(sorting(schema)))?;
            let digest = crate::map::rowset::set_digest(schema, batch);
            Ok((
                schema.name.clone(),
                SetEntry { version, rows: batch.num_rows() as u64, load_rows: load_rows(&schema.name), digest, files: vec![f] },
            ))
        });
        for w in written {
            let (name, entry) = w?;
            record_sets.insert(name, entry);
        }
        let mut quarantine = Vec::new();
        for (set, batch) in &out.quarantine {
            if batch.num_rows() == 0 {
                continue;
            }
            let dir = self
                .root
                .join("_quarantine")
                .join(set)
                .join(format!("insurer_no={}", out.insurer_no))
                .join(format!("load={}", out.load_id));
            quarantine.push(self.write_dir(&dir, batch, None)?);
        }
        let warnings = out.warnings.into_iter().collect();
        crate::fault::point("store-sets");
        let manifest = Manifest {
            format: FORMAT,
            insurer_no: out.insurer_no.to_string(),
            version,
            parent_version,
            load_id: out.load_id.to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            record_sets,
            inputs: out.inputs,
            quarantine,
            warnings,
        };
        self.write_manifest(&manifest)?;
        Ok(manifest)
    }

    /// Writes a version's manifest atomically: the commit point of the version.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let version = manifest.version;
        let dir = self.manifest_dir(&manifest.insurer_no);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let tmp = dir.join(format!(".{version}.json.tmp"));
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::Manifest { path: tmp.clone(), reason: e.to_string() })?;
        {
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&json).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        let final_path = dir.join(format!("{version}.json"));
        std::fs::rename(&tmp, &final_path).map_err(io(&final_path))?;
        fsync_dir(&dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn row_groups_are_whole_and_rows_in_order_however_the_batches_come() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        let total = ROW_GROUP_ROWS * 2 + 12_345;
        let mut w = store.part_writer(&dir.path().join("t"), schema.clone(), None).unwrap();
        // Batches of sizes that cross the encoding step and the row groups' ends at odd places.
        let sizes = [1usize, 4095, ENCODE_ROWS + 7, 100_000, 3, ROW_GROUP_ROWS];
        let (mut at, mut k) = (0, 0);
        while at < total {
            let n = sizes[k % sizes.len()].min(total - at);
            k += 1;
            let ns = Int64Array::from_iter_values(at as i64..(at + n) as i64);
            let ss = StringArray::from_iter((at..at + n).map(|i| if i % 7 == 0 { None } else { Some(format!("v{i}")) }));
            w.write(&RecordBatch::try_new(schema.clone(), vec![Arc::new(ns), Arc::new(ss)]).unwrap()).unwrap();
            at += n;
        }
        let f = w.finish().unwrap();
        assert_eq!(f.rows, total as u64);
        let file = std::fs::File::open(dir.path().join(&f.path)).unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let groups: Vec<i64> = b.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, vec![ROW_GROUP_ROWS as i64, ROW_GROUP_ROWS as i64, 12_345]);
        let mut next = 0i64;
        for batch in b.build().unwrap() {
            let batch = batch.unwrap();
            let ns = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let ss = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..batch.num_rows() {
                assert_eq!(ns.value(i), next);
                assert_eq!(ss.is_null(i), next % 7 == 0);
                if !ss.is_null(i) {
                    assert_eq!(ss.value(i), format!("v{next}"));
                }
                next += 1;
            }
        }
        assert_eq!(next, total as i64);
    }
}
