//! Publishing (SPEC §9): a stored, diffed load's change rows go to the platform in batches, then
//! a commit; the receipt is recorded in the ledger and the load becomes `published`.
//!
//! ```text
//!  _changes/<set>/…/version=<v>/*.parquet ─► encoder thread: slices of `batch_rows` rows
//!       (or the whole snapshot as inserts)      → Arrow IPC (zstd) + SHA-256
//!                                                   │ bounded channel (encoding overlaps sending)
//!                                                   ▼
//!  ledger: publishing ─► POST /v1/loads ─► for each batch: acked before? skip
//!                                           else ledger `sending` ─► PUT ─► ledger `acked`
//!                     ─► POST commit ─► receipt ─► ledger: receipt + published (one transaction)
//! ```
//! Exactly once: every step is idempotent at the platform (same load id → same load; same batch
//! and digest → 200; same commit → same receipt), and the ledger records each batch before it is
//! sent and its acknowledgement after, so a rerun after any crash resumes from the first batch
//! without an acknowledgement and never applies anything twice. The batches of a load are
//! deterministic (same files, same slicing, same bytes), which a resumed run checks against the
//! digests the ledger recorded.
//!
//! The platform version a load is diffed from: the one in the receipt of the load that made the
//! base store version. A base version that was never sent to a platform (a store older than its
//! platform configuration) makes the load send its whole snapshot as inserts against the empty
//! platform state (version 0).

pub mod client;
mod operators;

pub use operators::{SetComparison, Verification, deliver, replay, verify};

pub use client::{ClientError, PlatformClient, RetryPolicy};

use crate::ledger::{BatchRecord, Ledger, LedgerError, LoadRecord};
use crate::protocol::{Commit, OpenLoad, Receipt};
use crate::schema::{ROW_HASH, SchemaRegistry};
use crate::store::{Manifest, Store};
use arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Client(Box<ClientError>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("encoding a batch: {0}")]
    Encode(String),
    #[error("load {load_id}: {reason}")]
    Inconsistent { load_id: String, reason: String },
}

impl From<ClientError> for PublishError {
    fn from(e: ClientError) -> Self {
        PublishError::Client(Box::new(e))
    }
}

/// Where and how a job publishes.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub retry: RetryPolicy,
    /// Change rows per batch.
    pub batch_rows: usize,
    /// A person's login token (`kiban login`), for platforms that require one (replays).
    pub bearer: Option<String>,
}

impl Target {
    /// A target with the job's optional settings, defaults filled in: retry for 120 s, batches of
    /// `protocol::DEFAULT_BATCH_ROWS` rows.
    pub fn new(url: &str, tls: rustls::ClientConfig, retry_seconds: Option<u64>, batch_rows: Option<usize>) -> Target {
        Target {
            url: url.to_string(),
            tls: Arc::new(tls),
            retry: RetryPolicy { give_up_after: std::time::Duration::from_secs(retry_seconds.unwrap_or(120)), ..Default::default() },
            batch_rows: batch_rows.unwrap_or(crate::protocol::DEFAULT_BATCH_ROWS),
            bearer: None,
        }
    }

    pub fn client(&self) -> Result<PlatformClient, ClientError> {
        let mut c = PlatformClient::new(&self.url, (*self.tls).clone(), self.retry)?;
        c.set_bearer(self.bearer.clone());
        Ok(c)
    }
}

/// What a publication did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub receipt: Receipt,
    pub platform_base_version: u64,
    /// Batches and change rows of the load.
    pub batches: u64,
    pub rows: u64,
    /// Batches this run sent (the others were acknowledged before a crash).
    pub sent: u64,
    pub bytes_sent: u64,
    /// True when the whole snapshot was sent (the base was never sent to a platform).
    pub full_snapshot: bool,
    pub seconds: f64,
    /// Of `seconds`, the commit: the platform applying every row in one transaction.
    pub commit_seconds: f64,
}

impl Published {
    fn start(plan: &Plan) -> Published {
        Published {
            receipt: Receipt {
                receipt_id: String::new(),
                load_id: plan.load_id.clone(),
                insurer_no: plan.insurer_no.clone(),
                version: 0,
                applied: 0,
                committed_at: String::new(),
            },
            platform_base_version: plan.platform_base_version,
            batches: 0,
            rows: 0,
            sent: 0,
            bytes_sent: 0,
            full_snapshot: plan.full_snapshot,
            seconds: 0.0,
            commit_seconds: 0.0,
        }
    }
}

/// What a load sends, and against which platform version.
pub struct Plan {
    pub load_id: String,
    pub insurer_no: String,
    pub platform_base_version: u64,
    pub full_snapshot: bool,
    /// Record set → its files, in order.
    pub sets: BTreeMap<String, Vec<PathBuf>>,
}

/// Works out what a stored load sends: its `_changes` against the platform version of its base,
/// or its whole snapshot when the base never reached a platform.
pub fn plan(ledger: &Ledger, store: &Store, load: &LoadRecord, manifest: &Manifest) -> Result<Plan, PublishError> {
    let base_receipt = match load.base_version {
        None => None,
        Some(b) => {
            let base_load = ledger.versions(&load.insurer_no)?.into_iter().find(|v| v.version == b).map(|v| v.load_id);
            match base_load {
                Some(id) => ledger.receipt(&id)?,
                None => None,
            }
        }
    };
    let full_snapshot = load.base_version.is_some() && base_receipt.is_none();
    let mut sets = BTreeMap::new();
    for (name, entry) in &manifest.record_sets {
        let files: Vec<PathBuf> = if full_snapshot {
            entry.files.iter().map(|f| store.root().join(&f.path)).collect()
        } else if entry.version == manifest.version {
            let dir = store.changes_dir(name, &manifest.insurer_no, manifest.version);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| PublishError::Read { path: dir.clone(), reason: format!("the load's changes are missing: {e}") })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            files.sort();
            files
        } else {
            continue;
        };
        sets.insert(name.clone(), files);
    }
    Ok(Plan {
        load_id: load.load_id.clone(),
        insurer_no: load.insurer_no.clone(),
        platform_base_version: base_receipt.map_or(0, |r| r.platform_version),
        full_snapshot,
        sets,
    })
}

/// One encoded batch.
struct Encoded {
    set: String,
    seq: u64,
    rows: u64,
    body: Bytes,
    digest: String,
}

/// Reads a plan's files in slices of `batch_rows` change rows and encodes each, in order.
fn encode_all(
    plan: &Plan,
    schemas: &SchemaRegistry,
    batch_rows: usize,
    send: &std::sync::mpsc::SyncSender<Result<Encoded, PublishError>>,
) -> Result<(), PublishError> {
    for (set, files) in &plan.sets {
        let schema = schemas.get(set).ok_or_else(|| PublishError::Inconsistent {
            load_id: plan.load_id.clone(),
            reason: format!("record set {set} is not one this kiban knows"),
        })?;
        let change_schema = crate::diff::change_schema(schema);
        let mut seq = 0u64;
        for path in files {
            let read_err = |reason: String| PublishError::Read { path: path.clone(), reason };
            let file = std::fs::File::open(path).map_err(|e| read_err(e.to_string()))?;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(batch_rows).build())
                .map_err(|e| read_err(e.to_string()))?;
            for batch in reader {
                let batch = batch.map_err(|e| read_err(e.to_string()))?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let batch = if plan.full_snapshot { as_inserts(&change_schema, &batch) } else { by_name(&change_schema, &batch) }
                    .map_err(|e| read_err(e.to_string()))?;
                let body = crate::protocol::encode_batch(&batch).map_err(|e| PublishError::Encode(e.to_string()))?;
                let digest = crate::protocol::sha256_hex(&body);
                let item = Encoded { set: set.clone(), seq, rows: batch.num_rows() as u64, body: Bytes::from(body), digest };
                if send.send(Ok(item)).is_err() {
                    return Ok(());
                }
                seq += 1;
            }
        }
    }
    Ok(())
}

/// A `_changes` batch in the change schema's column order.
fn by_name(schema: &arrow::datatypes::SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column `{}`", f.name())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), cols)
}

/// Snapshot rows as inserts: `op` = insert, `new_row_hash` = the row's `row_hash`.
fn as_inserts(schema: &arrow::datatypes::SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n = batch.num_rows();
    let row_hash =
        batch.column_by_name(ROW_HASH).ok_or_else(|| arrow::error::ArrowError::SchemaError("a snapshot without row_hash".into()))?;
    let row_hash = crate::store::row_hash::as_text(row_hash.as_ref())?;
    let mut cols: Vec<ArrayRef> =
        vec![Arc::new(StringArray::from(vec!["insert"; n])), new_null_array(&arrow::datatypes::DataType::Utf8, n), row_hash];
    for f in schema.fields().iter().skip(3) {
        cols.push(
            batch
                .column_by_name(f.name())
                .cloned()
                .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column `{}`", f.name())))?,
        );
    }
    RecordBatch::try_new(schema.clone(), cols)
}

/// Publishes a stored, diffed load and records the receipt (the load becomes `published`).
pub fn publish(
    ledger: &Ledger,
    store: &Store,
    schemas: &SchemaRegistry,
    target: &Target,
    load: &LoadRecord,
    manifest: &Manifest,
    exit_code: i32,
) -> Result<Published, PublishError> {
    let started = std::time::Instant::now();
    let plan = plan(ledger, store, load, manifest)?;
    let mut client = target.client()?;
    let sets: Vec<String> = plan.sets.keys().cloned().collect();
    ledger.set_status(
        &load.load_id,
        crate::ledger::LoadStatus::Publishing,
        &format!(
            "publishing version {} to {} against platform version {}{}",
            manifest.version,
            target.url,
            plan.platform_base_version,
            if plan.full_snapshot { " (the whole snapshot: its base never reached a platform)" } else { "" }
        ),
    )?;
    let opened = client.open(&OpenLoad {
        insurer_no: load.insurer_no.clone(),
        load_id: load.load_id.clone(),
        base_version: plan.platform_base_version,
        record_sets: sets,
        replay: false,
    })?;
    crate::fault::point("publish-opened");
    let acked: BTreeMap<(String, u64), BatchRecord> =
        ledger.batches(&load.load_id)?.into_iter().filter(|b| b.status == "acked").map(|b| ((b.record_set.clone(), b.seq), b)).collect();
    let mut published = Published::start(&plan);
    let receipt = match opened.receipt {
        // Committed before a crash took the receipt with it: the platform has it.
        Some(r) => r,
        None => {
            let mut commit = Commit::default();
            send_batches(Some(ledger), &mut client, &plan, schemas, target.batch_rows, &acked, &mut commit, &mut published)?;
            crate::fault::point("publish-before-commit");
            let committing = std::time::Instant::now();
            let r = client.commit(&load.load_id, &commit)?;
            published.commit_seconds = committing.elapsed().as_secs_f64();
            crate::fault::point("publish-committed");
            r
        }
    };
    ledger.record_receipt(&load.load_id, &load.insurer_no, manifest.version, exit_code, &receipt)?;
    published.receipt = receipt;
    published.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        load = %load.load_id,
        receipt = %published.receipt.receipt_id,
        platform_version = published.receipt.version,
        batches = published.batches,
        sent = published.sent,
        rows = published.rows,
        seconds = published.seconds,
        "published"
    );
    Ok(published)
}

/// Encodes on a thread of its own while this one records (with a ledger) and sends.
#[allow(clippy::too_many_arguments)]
fn send_batches(
    ledger: Option<&Ledger>,
    client: &mut PlatformClient,
    plan: &Plan,
    schemas: &SchemaRegistry,
    batch_rows: usize,
    acked: &BTreeMap<(String, u64), BatchRecord>,
    commit: &mut Commit,
    published: &mut Published,
) -> Result<(), PublishError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Encoded, PublishError>>(2);
    std::thread::scope(|scope| -> Result<(), PublishError> {
        let encoder = scope.spawn(move || {
            if let Err(e) = encode_all(plan, schemas, batch_rows.max(1), &tx) {
                let _ = tx.send(Err(e));
            }
        });
        let mut result = Ok(());
        for item in rx.iter() {
            let step = item.and_then(|b| send_one(ledger, client, plan, acked, b, commit, published));
            if let Err(e) = step {
                result = Err(e);
                break;
            }
        }
        drop(rx);
        // An encoder that panicked ended the stream early: committing what was sent would lose
        // the rest, so it is an error, never a shorter load.
        if encoder.join().is_err() && result.is_ok() {
            result = Err(PublishError::Encode("the batch encoder stopped unexpectedly; nothing was committed".into()));
        }
        result
    })
}

fn send_one(
    ledger: Option<&Ledger>,
    client: &mut PlatformClient,
    plan: &Plan,
    acked: &BTreeMap<(String, u64), BatchRecord>,
    b: Encoded,
    commit: &mut Commit,
    published: &mut Published,
) -> Result<(), PublishError> {
    commit.batches += 1;
    commit.rows += b.rows;
    commit.digests.entry(b.set.clone()).or_default().push(b.digest.clone());
    published.batches += 1;
    published.rows += b.rows;
    if let Some(prev) = acked.get(&(b.set.clone(), b.seq)) {
        if prev.digest != b.digest {
            return Err(PublishError::Inconsistent {
                load_id: plan.load_id.clone(),
                reason: format!(
                    "{} batch {} was acknowledged with digest {}, it now encodes to {} (were the changes or the batch size changed?)",
                    b.set, b.seq, prev.digest, b.digest
                ),
            });
        }
        return Ok(());
    }
    let record = BatchRecord {
        record_set: b.set.clone(),
        seq: b.seq,
        row_count: b.rows,
        bytes: b.body.len() as u64,
        digest: b.digest.clone(),
        status: String::new(),
        sent_at: None,
        acked_at: None,
    };
    if let Some(ledger) = ledger {
        ledger.record_batch(&plan.load_id, &record)?;
    }
    let bytes = b.body.len() as u64;
    let ack = client.put_batch(&plan.load_id, &b.set, b.seq, b.body)?;
    if ack.digest != b.digest || ack.rows != b.rows {
        return Err(PublishError::Inconsistent {
            load_id: plan.load_id.clone(),
            reason: format!("{} batch {}: the platform acknowledged {} rows with digest {}", b.set, b.seq, ack.rows, ack.digest),
        });
    }
    if let Some(ledger) = ledger {
        ledger.ack_batch(&plan.load_id, &b.set, b.seq)?;
    }
    published.sent += 1;
    published.bytes_sent += bytes;
    crate::fault::point(&format!("publish-batch-{}", published.sent));
    Ok(())
}
