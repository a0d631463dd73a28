//! The platform's durable state through sqlx (`Any`: SQLite by default, PostgreSQL by URL), and
//! the commit that applies a load's batches in one transaction.
//!
//! Commits are serialised per insurer without locks that only one backend has: the transaction
//! moves the insurer's version with `UPDATE … WHERE version = <base>`, so of two commits on the
//! same base only one can succeed; the other rolls back and answers 409.

use super::ApiError;
use crate::diff::{NEW_ROW_HASH, OLD_ROW_HASH, OP};
use crate::protocol::{BatchAck, OpenLoad, OpenedLoad, Receipt, SetState, State};
use crate::schema::RecordSetSchema;
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use sqlx::any::Any;
use sqlx::{AssertSqlSafe, Row};
use std::borrow::Cow;
use std::collections::BTreeMap;

type AnyPool = sqlx::Pool<Any>;

/// (version, name, SQL for SQLite, SQL for PostgreSQL): one text where both backends take it.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (1, "platform", include_str!("migrations/0001_platform.sql"), include_str!("migrations/0001_platform.sql")),
    (2, "sessions", include_str!("migrations/0002_sessions.sql"), include_str!("migrations/0002_sessions.sql")),
    (3, "rows in batches", include_str!("migrations/0003_rows_in_batches.sql"), include_str!("migrations/0003_rows_in_batches.sql")),
    (
        4,
        "keys as bytes",
        include_str!("migrations/0004_keys_as_bytes.sqlite.sql"),
        include_str!("migrations/0004_keys_as_bytes.postgres.sql"),
    ),
];
/// Rows per multi-row INSERT (4 parameters each, 5 shared: under SQLite's and PostgreSQL's limits).
const INSERT_CHUNK: usize = 2048;

pub struct PlatformDb {
    pool: AnyPool,
    pub location: String,
    /// SQLite: large statements use anonymous `?` parameters, because sqlx binds `$n` ones by
    /// looking each name up, which is quadratic in a statement's parameters (75% of a commit's
    /// time with 3,584 of them). PostgreSQL takes `$n` only.
    sqlite: bool,
    /// SQLite: wakes the task that checkpoints the WAL (see [`PlatformDb::open`]).
    checkpoint: Option<tokio::sync::mpsc::Sender<()>>,
}

/// An opened load as stored.
#[derive(Debug, Clone)]
pub struct LoadRow {
    pub load_id: String,
    pub insurer_no: String,
    pub base_version: u64,
    pub record_sets: Vec<String>,
    pub status: String,
}

/// Who commits: the client certificate's subject and serial, and the person logged in with a
/// card, when the commit carried a login token.
#[derive(Debug, Clone)]
pub struct Committer {
    pub subject: String,
    pub serial: String,
    pub person: Option<String>,
}

fn db_err(action: &'static str) -> impl FnOnce(sqlx::Error) -> ApiError {
    move |e| ApiError::database(action, e)
}

/// The task that checkpoints SQLite's WAL when asked (requests while one runs make one more),
/// and once at the start for what a stopped platform left in it; it ends with its
/// [`PlatformDb`]. PASSIVE: it copies what no reader still needs and never blocks a reader or
/// the writer.
fn checkpointer(pool: AnyPool) -> tokio::sync::mpsc::Sender<()> {
    let (ask, mut asked) = tokio::sync::mpsc::channel(1);
    let _ = ask.try_send(());
    tokio::spawn(async move {
        while asked.recv().await.is_some() {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::warn!(error = %e, "checkpointing the platform's WAL failed; the next commit asks again");
            }
        }
    });
    ask
}

/// The first `upto` migrations, in the backend's SQL.
fn migrator(sqlite: bool, upto: usize) -> sqlx::migrate::Migrator {
    let migrations = MIGRATIONS
        .iter()
        .take(upto)
        .map(|&(v, name, for_sqlite, for_postgres)| {
            let sql = if sqlite { for_sqlite } else { for_postgres };
            sqlx::migrate::Migration::new(
                v,
                Cow::Borrowed(name),
                sqlx::migrate::MigrationType::Simple,
                sqlx::SqlStr::from_static(sql),
                false,
            )
        })
        .collect();
    let mut migrator = sqlx::migrate::Migrator::DEFAULT;
    migrator.migrations = Cow::Owned(migrations);
    migrator
}

/// A column of a row: a value of another type than the schema's is an error, never a panic.
fn col<'r, T: sqlx::Decode<'r, Any> + sqlx::Type<Any>>(r: &'r sqlx::any::AnyRow, i: usize) -> Result<T, ApiError> {
    r.try_get::<T, _>(i).map_err(|e| ApiError::internal(format!("the platform's database holds an unexpected value: {e}")))
}

fn num(r: &sqlx::any::AnyRow, i: usize) -> Result<u64, ApiError> {
    col::<i64>(r, i).map(u)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PlatformDb {
    pub async fn open(location: &crate::ledger::LedgerLocation) -> Result<PlatformDb, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let sqlite = matches!(location, crate::ledger::LedgerLocation::Sqlite(_));
        let mut options = sqlx::pool::PoolOptions::<Any>::new().max_connections(8).acquire_timeout(std::time::Duration::from_secs(10));
        if sqlite {
            // A commit of a large load is one transaction whose rows arrive in key order, so what
            // it writes is mostly full leaf pages that are never touched again: a 16 MiB page
            // cache holds the pages still being filled and lets full ones spill to the WAL early.
            // (A 1 GiB cache that kept the whole transaction was slower: a 1M-person first load
            // committed in 5.6–6.1 s with 16 MiB, 8.5–9 s with 1 GiB, whose fresh memory the
            // kernel must first clear. SQLite's default 2 MiB makes pages still being filled
            // spill and be read back.) A new database gets 16 KiB pages: the batches it keeps
            // are large blobs, and a commit writes fewer, fuller pages. The WAL is checkpointed
            // by a task of its own at the start and after each commit (whatever its outcome),
            // not by the writing connection as part of its commit: a commit is durable once its
            // WAL frames are synced, and copying a large load's frames into the database
            // (seconds) need not delay its receipt. Batches are copied after the commit that
            // applies them, not while their load uploads; SQLite's own checkpoint stays as a
            // bound (4 GiB of 16 KiB pages) for a platform that takes batches and never a
            // commit. Statement journals (a multi-row insert's undo) stay in memory. Eight
            // connections: a commit holds one and reads its batches through another, the
            // checkpoint may hold a third, and uploads and reads go on beside them.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, "PRAGMA page_size = 16384").await?;
                    sqlx::Executor::execute(&mut *conn, "PRAGMA cache_size = -16384").await?;
                    sqlx::Executor::execute(&mut *conn, "PRAGMA wal_autocheckpoint = 262144").await?;
                    sqlx::Executor::execute(conn, "PRAGMA temp_store = MEMORY").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&location.url()).await?;
        migrator(sqlite, MIGRATIONS.len()).run(&pool).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        if matches!(location, crate::ledger::LedgerLocation::Sqlite(_)) {
            // Readers (state, records) and the writer (a commit) do not block each other.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let checkpoint = sqlite.then(|| checkpointer(pool.clone()));
        Ok(PlatformDb { pool, location: location.to_string(), sqlite, checkpoint })
    }

    /// Asks for a checkpoint, after a commit (see [`PlatformDb::open`]).
    fn wal_grew(&self) {
        if let Some(ask) = &self.checkpoint {
            // Full: a checkpoint is asked for already, and it will take this write too.
            let _ = ask.try_send(());
        }
    }

    pub async fn version(&self, insurer_no: &str) -> Result<u64, ApiError> {
        let row = sqlx::query("SELECT version FROM platform_insurers WHERE insurer_no = $1")
            .bind(insurer_no)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading the insurer's version"))?;
        row.map_or(Ok(0), |r| num(&r, 0))
    }

    pub async fn load(&self, load_id: &str) -> Result<Option<LoadRow>, ApiError> {
        let row = sqlx::query("SELECT load_id, insurer_no, base_version, record_sets, status FROM platform_loads WHERE load_id = $1")
            .bind(load_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading a load"))?;
        row.map(|r| {
            let sets: String = r.get(3);
            Ok(LoadRow {
                load_id: r.get(0),
                insurer_no: r.get(1),
                base_version: u(r.get::<i64, _>(2)),
                record_sets: serde_json::from_str(&sets)
                    .map_err(|e| ApiError::internal(format!("load {}: record_sets: {e}", r.get::<String, _>(0))))?,
                status: r.get(4),
            })
        })
        .transpose()
    }

    pub async fn receipt(&self, load_id: &str) -> Result<Option<Receipt>, ApiError> {
        let row =
            sqlx::query("SELECT receipt_id, load_id, insurer_no, version, applied, committed_at FROM platform_receipts WHERE load_id = $1")
                .bind(load_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err("reading a receipt"))?;
        row.map(|r| {
            Ok(Receipt {
                receipt_id: col(&r, 0)?,
                load_id: col(&r, 1)?,
                insurer_no: col(&r, 2)?,
                version: num(&r, 3)?,
                applied: num(&r, 4)?,
                committed_at: col(&r, 5)?,
            })
        })
        .transpose()
    }

    /// Records a new load (the caller checked the base version); a concurrent open of the same
    /// id is resolved by the primary key.
    pub async fn insert_load(&self, open: &OpenLoad, opened_by: &str) -> Result<(), ApiError> {
        let sets = serde_json::to_string(&open.record_sets).map_err(|e| ApiError::internal(e.to_string()))?;
        let res = sqlx::query(
            "INSERT INTO platform_loads (load_id, insurer_no, base_version, record_sets, status, opened_by, opened_at) VALUES ($1, $2, $3, $4, 'open', $5, $6)",
        )
        .bind(&open.load_id)
        .bind(&open.insurer_no)
        .bind(i(open.base_version))
        .bind(sets)
        .bind(opened_by)
        .bind(crate::ledger::now())
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(()),
            Err(e) => Err(ApiError::database("recording a load", e)),
        }
    }

    pub async fn opened(&self, load: &LoadRow) -> Result<OpenedLoad, ApiError> {
        Ok(OpenedLoad {
            load_id: load.load_id.clone(),
            insurer_no: load.insurer_no.clone(),
            base_version: load.base_version,
            record_sets: load.record_sets.clone(),
            status: load.status.clone(),
            receipt: self.receipt(&load.load_id).await?,
        })
    }

    /// The digest and row count of a stored batch.
    pub async fn batch(&self, load_id: &str, set: &str, seq: u64) -> Result<Option<(String, u64)>, ApiError> {
        let row = sqlx::query("SELECT digest, row_count FROM platform_batches WHERE load_id = $1 AND record_set = $2 AND seq = $3")
            .bind(load_id)
            .bind(set)
            .bind(i(seq))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("reading a batch"))?;
        row.map(|r| Ok((col(&r, 0)?, num(&r, 1)?))).transpose()
    }

    /// Stores a batch; `false` when another request stored this (load, set, seq) first.
    pub async fn insert_batch(&self, load_id: &str, ack: &BatchAck, body: &[u8]) -> Result<bool, ApiError> {
        let res = sqlx::query(
            "INSERT INTO platform_batches (load_id, record_set, seq, digest, row_count, body, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(load_id)
        .bind(&ack.record_set)
        .bind(i(ack.seq))
        .bind(&ack.digest)
        .bind(i(ack.rows))
        .bind(body.to_vec())
        .bind(crate::ledger::now())
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
            Err(e) => Err(ApiError::database("storing a batch", e)),
        }
    }

    /// Every batch of a load: (record set, seq) → (digest, rows).
    pub async fn batches(&self, load_id: &str) -> Result<BTreeMap<(String, u64), (String, u64)>, ApiError> {
        let rows = sqlx::query("SELECT record_set, seq, digest, row_count FROM platform_batches WHERE load_id = $1")
            .bind(load_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("reading a load's batches"))?;
        rows.iter().map(|r| Ok(((col(r, 0)?, num(r, 1)?), (col(r, 2)?, num(r, 3)?)))).collect()
    }

    /// Applies a load's batches, in record-set and seq order, as one transaction: the insurer's
    /// version moves from the load's base to base + 1, or nothing happens. Either way the WAL
    /// is checkpointed afterwards (a rolled-back commit may have spilled pages into it).
    pub async fn commit(
        &self,
        load: &LoadRow,
        order: &[(String, u64)],
        schemas: &crate::schema::SchemaRegistry,
        committer: &Committer,
    ) -> Result<Receipt, ApiError> {
        let committed = self.apply(load, order, schemas, committer).await;
        self.wal_grew();
        committed
    }

    async fn apply(
        &self,
        load: &LoadRow,
        order: &[(String, u64)],
        schemas: &crate::schema::SchemaRegistry,
        committer: &Committer,
    ) -> Result<Receipt, ApiError> {
        let mut tx = self.pool.begin().await.map_err(db_err("starting a commit"))?;
        let version = load.base_version + 1;
        let now = crate::ledger::now();
        let moved = if load.base_version == 0 {
            sqlx::query("INSERT INTO platform_insurers (insurer_no, version, updated_at) VALUES ($1, 1, $2)")
                .bind(&load.insurer_no)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
                .or_else(|e| match e {
                    sqlx::Error::Database(d) if d.is_unique_violation() => Ok(0),
                    e => Err(e),
                })
        } else {
            sqlx::query("UPDATE platform_insurers SET version = $2, updated_at = $3 WHERE insurer_no = $1 AND version = $4")
                .bind(&load.insurer_no)
                .bind(i(version))
                .bind(&now)
                .bind(i(load.base_version))
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
        }
        .map_err(db_err("moving the insurer's version"))?;
        if moved != 1 {
            return Err(ApiError::conflict(
                "base_version_behind",
                format!(
                    "load {} was computed against version {} of insurer {}, which is no longer the platform's version: diff again",
                    load.load_id, load.base_version, load.insurer_no
                ),
            ));
        }
        // The batches are read, decoded and turned into statements ahead, on a task (and a
        // blocking thread) of their own, while this transaction executes the statements of the
        // batch before: the commit's time is the database's own work rather than the sum of both.
        let mut planned = self.plan(load, order, schemas, version);
        let (mut applied, mut batches) = (0u64, 0usize);
        while let Some(batch) = planned.recv().await {
            let batch = batch?;
            for step in batch.steps {
                step.execute(&mut tx, &load.load_id).await?;
            }
            applied += batch.rows;
            batches += 1;
        }
        if batches != order.len() {
            return Err(ApiError::internal(format!(
                "load {}: {batches} of its {} batches were prepared for the commit; nothing was applied",
                load.load_id,
                order.len()
            )));
        }
        use sha2::Digest;
        let receipt_id = format!("r-{}", &hex::encode(sha2::Sha256::digest(format!("{}\0{version}\0{now}", load.load_id)))[..24]);
        let receipt = Receipt {
            receipt_id,
            load_id: load.load_id.clone(),
            insurer_no: load.insurer_no.clone(),
            version,
            applied,
            committed_at: now.clone(),
        };
        let steps: [(&'static str, sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>); 3] = [
            (
                "recording the receipt",
                sqlx::query(
                    "INSERT INTO platform_receipts (load_id, receipt_id, insurer_no, version, applied, committed_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&receipt.load_id)
                .bind(&receipt.receipt_id)
                .bind(&receipt.insurer_no)
                .bind(i(version))
                .bind(i(applied))
                .bind(&now),
            ),
            (
                "recording the audit entry",
                sqlx::query(
                    "INSERT INTO platform_audit (load_id, insurer_no, version, applied, subject, serial, person, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&receipt.load_id)
                .bind(&receipt.insurer_no)
                .bind(i(version))
                .bind(i(applied))
                .bind(&committer.subject)
                .bind(&committer.serial)
                .bind(committer.person.clone())
                .bind(&now),
            ),
            ("closing the load", sqlx::query("UPDATE platform_loads SET status = 'committed' WHERE load_id = $1").bind(&load.load_id)),
        ];
        for (action, q) in steps {
            q.execute(&mut *tx).await.map_err(db_err(action))?;
        }
        tx.commit().await.map_err(db_err("committing"))?;
        Ok(receipt)
    }

    /// Version, rows and digest per record set, computed from the stored rows.
    /// A read-only transaction whose statements all see one committed version (SQLite's WAL
    /// gives a transaction one snapshot; PostgreSQL needs REPEATABLE READ for that).
    async fn snapshot(&self) -> Result<sqlx::Transaction<'_, Any>, ApiError> {
        let mut tx = self.pool.begin().await.map_err(db_err("starting a read"))?;
        if !self.sqlite {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await.map_err(db_err("starting a read"))?;
        }
        Ok(tx)
    }

    async fn version_in(tx: &mut sqlx::Transaction<'_, Any>, insurer_no: &str) -> Result<u64, ApiError> {
        let row = sqlx::query("SELECT version FROM platform_insurers WHERE insurer_no = $1")
            .bind(insurer_no)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err("reading the insurer's version"))?;
        row.map_or(Ok(0), |r| num(&r, 0))
    }

    /// Records a login: the token's SHA-256, the person, the terminal it came through (subject,
    /// serial) if any.
    pub async fn insert_session(
        &self,
        token_sha256: &str,
        person: &str,
        terminal: Option<(&str, &str)>,
        expires_at: &str,
    ) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO platform_sessions (token_sha256, person, subject, terminal_serial, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_sha256)
        .bind(person)
        .bind(terminal.map(|t| t.0.to_string()))
        .bind(terminal.map(|t| t.1.to_string()))
        .bind(crate::ledger::now())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err("recording a login"))?;
        Ok(())
    }

    /// The person, expiry and bound terminal serial of a token, by its SHA-256.
    pub async fn session(&self, token_sha256: &str) -> Result<Option<(String, String, Option<String>)>, ApiError> {
        let row = sqlx::query("SELECT person, expires_at, terminal_serial FROM platform_sessions WHERE token_sha256 = $1")
            .bind(token_sha256)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("looking up a login"))?;
        row.map(|r| Ok((col::<String>(&r, 0)?, col::<String>(&r, 1)?, col::<Option<String>>(&r, 2)?))).transpose()
    }

    pub async fn state(&self, insurer_no: &str) -> Result<State, ApiError> {
        use futures::TryStreamExt;
        let mut tx = self.snapshot().await?;
        let version = Self::version_in(&mut tx, insurer_no).await?;
        let mut sums: BTreeMap<String, (u64, u128)> = BTreeMap::new();
        let mut rows = sqlx::query("SELECT record_set, record_key, row_hash FROM platform_records WHERE insurer_no = $1")
            .bind(insurer_no)
            .fetch(&mut *tx);
        while let Some(r) = rows.try_next().await.map_err(db_err("reading the state"))? {
            let set: String = col(&r, 0)?;
            let record_key: Vec<u8> = col(&r, 1)?;
            let row_hash: String = col(&r, 2)?;
            let e = sums.entry(set).or_default();
            e.0 += 1;
            e.1 = e.1.wrapping_add(crate::map::rowset::digest_term(&record_key, &row_hash));
        }
        drop(rows);
        tx.rollback().await.map_err(db_err("ending a read"))?;
        Ok(State {
            insurer_no: insurer_no.to_string(),
            version,
            record_sets: sums
                .into_iter()
                .map(|(k, (rows, sum))| (k, SetState { rows, digest: crate::map::rowset::digest_hex(sum) }))
                .collect(),
        })
    }

    /// The platform version and the current rows of one person in one record set.
    pub async fn records(&self, insurer_no: &str, set: &str, insured_no: &str) -> Result<(u64, Vec<serde_json::Value>), ApiError> {
        let mut tx = self.snapshot().await?;
        let version = Self::version_in(&mut tx, insurer_no).await?;
        let rows = sqlx::query(
            "SELECT row_json, batch_load, batch_seq, batch_row FROM platform_records WHERE insurer_no = $1 AND record_set = $2 AND insured_no = $3 ORDER BY record_key",
        )
        .bind(insurer_no)
        .bind(set)
        .bind(insured_no)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err("reading records"))?;
        // The batches the rows point into, each read and decoded once.
        let mut bodies: BTreeMap<(String, i64), RecordBatch> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let json: String = col(r, 0)?;
            let stored = |e: String| ApiError::internal(format!("a stored {set} row: {e}"));
            let place = (col::<Option<String>>(r, 1)?, col::<Option<i64>>(r, 2)?, col::<Option<i64>>(r, 3)?);
            let (Some(load_id), Some(seq), Some(row)) = place else {
                // A row committed before rows pointed into batches.
                out.push(serde_json::from_str(&json).map_err(|e| stored(e.to_string()))?);
                continue;
            };
            let key = (load_id, seq);
            if !bodies.contains_key(&key) {
                let b = sqlx::query("SELECT body FROM platform_batches WHERE load_id = $1 AND record_set = $2 AND seq = $3")
                    .bind(&key.0)
                    .bind(set)
                    .bind(seq)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err("reading a batch a record is in"))?;
                let body: Vec<u8> = col(&b, 0)?;
                let (schema, batches) = crate::protocol::decode_batches(&body).map_err(|e| stored(e.to_string()))?;
                let all = arrow::compute::concat_batches(&schema, &batches).map_err(|e| stored(e.to_string()))?;
                bodies.insert(key.clone(), data_columns(&all).map_err(|e| stored(e.to_string()))?);
            }
            let Some(data) = bodies.get(&key) else { continue };
            let row =
                usize::try_from(row).ok().filter(|&i| i < data.num_rows()).ok_or_else(|| stored(format!("no row {row} in its batch")))?;
            let line = json_lines(&data.slice(row, 1)).map_err(|e| stored(e.to_string()))?;
            out.push(serde_json::from_slice(&line).map_err(|e| stored(e.to_string()))?);
        }
        tx.rollback().await.map_err(db_err("ending a read"))?;
        Ok((version, out))
    }
}

/// A change batch's row data as the records view shows it: every column but the change
/// bookkeeping.
fn data_columns(b: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    let idx: Vec<usize> = b
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| ![OP, OLD_ROW_HASH, NEW_ROW_HASH].contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    b.project(&idx)
}

/// Rows as JSON lines (nulls left out), as the records view returns them.
fn json_lines(b: &RecordBatch) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut json = Vec::new();
    let mut w = arrow::json::LineDelimitedWriter::new(&mut json);
    w.write(b)?;
    w.finish()?;
    Ok(json)
}

fn strings<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray, ApiError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| ApiError::internal(format!("a change batch without a `{name}` text column")))
}

/// A statement of a commit and the outcome the commit needs from it.
struct Step {
    query: sqlx::query::Query<'static, Any, sqlx::any::AnyArguments>,
    set: String,
    seq: u64,
    must: Outcome,
}

enum Outcome {
    /// Inserts: none of their keys may be held already.
    NewKeys,
    /// An update or a delete of the row at this place in its batch: exactly one row, in its old
    /// version, must be hit.
    OneRow { row: usize, what: &'static str },
}

impl Step {
    async fn execute(self, tx: &mut sqlx::Transaction<'_, Any>, load_id: &str) -> Result<(), ApiError> {
        let conflict = |what: String| {
            ApiError::conflict(
                "change_conflict",
                format!("load {load_id}: {} batch {}{what}; nothing of the load was applied", self.set, self.seq),
            )
        };
        let failed = |action: &'static str, e: sqlx::Error| {
            tracing::error!(load = %load_id, set = %self.set, batch = self.seq, "{action} failed");
            ApiError::database(action, e)
        };
        match (self.query.execute(&mut **tx).await, self.must) {
            (Ok(done), Outcome::OneRow { row, what }) if done.rows_affected() != 1 => Err(conflict(format!(" row {row}: {what}"))),
            (Ok(_), _) => Ok(()),
            (Err(sqlx::Error::Database(d)), Outcome::NewKeys) if d.is_unique_violation() => {
                Err(conflict(": an insert of a key the platform already holds".into()))
            }
            (Err(e), Outcome::NewKeys) => Err(failed("applying inserts", e)),
            (Err(e), Outcome::OneRow { .. }) => Err(failed("applying an update or a delete", e)),
        }
    }
}

/// The statements of one stored batch and the rows they apply.
struct PlannedBatch {
    steps: Vec<Step>,
    rows: u64,
}

impl PlatformDb {
    /// Reads, decodes and plans the load's batches in commit order, up to two batches ahead of
    /// the consumer (one planned and waiting, one being planned). Bodies are read outside the commit's transaction: a batch never changes once
    /// stored, and the commit lock keeps new ones out. A batch that cannot be planned ends the
    /// stream with its error; the consumer also counts the batches, so a stream that ends early
    /// for any other reason is never taken for a whole load.
    fn plan(
        &self,
        load: &LoadRow,
        order: &[(String, u64)],
        schemas: &crate::schema::SchemaRegistry,
        version: u64,
    ) -> tokio::sync::mpsc::Receiver<Result<PlannedBatch, ApiError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let pool = self.pool.clone();
        let (load, order, sqlite) = (load.clone(), order.to_vec(), self.sqlite);
        let schemas: Vec<Option<std::sync::Arc<RecordSetSchema>>> = order.iter().map(|(set, _)| schemas.get(set).cloned()).collect();
        tokio::spawn(async move {
            for ((set, seq), schema) in order.into_iter().zip(schemas) {
                let planned = async {
                    let schema = schema.ok_or_else(|| ApiError::unknown_set(&set))?;
                    let row = sqlx::query("SELECT body FROM platform_batches WHERE load_id = $1 AND record_set = $2 AND seq = $3")
                        .bind(&load.load_id)
                        .bind(&set)
                        .bind(i(seq))
                        .fetch_one(&pool)
                        .await
                        .map_err(|e| {
                            tracing::error!(load = %load.load_id, set = %set, batch = seq, "reading a batch to apply failed");
                            ApiError::database("reading a batch to apply", e)
                        })?;
                    let body: Vec<u8> = col(&row, 0)?;
                    let at = Place { load: load.clone(), set: set.clone(), seq, version, anonymous_parameters: sqlite };
                    tokio::task::spawn_blocking(move || plan_batch(&at, &schema, &body))
                        .await
                        .map_err(|e| ApiError::internal(format!("load {}: planning {set} batch {seq}: {e}", load.load_id)))?
                }
                .await;
                let failed = planned.is_err();
                if tx.send(planned).await.is_err() || failed {
                    return;
                }
            }
        });
        rx
    }
}

/// Where a batch's rows go: its load, set and number, the version they make.
struct Place {
    load: LoadRow,
    set: String,
    seq: u64,
    version: u64,
    /// SQLite: `?` parameters (see [`PlatformDb::sqlite`]).
    anonymous_parameters: bool,
}

/// Decodes a stored batch and turns its rows into statements: updates and deletes one by one
/// (each must hit its row in its old version), inserts many rows to a statement.
fn plan_batch(at: &Place, schema: &RecordSetSchema, body: &[u8]) -> Result<PlannedBatch, ApiError> {
    let (set, seq) = (at.set.as_str(), at.seq);
    let (_, batches) = crate::protocol::decode_batches(body)
        .map_err(|e| ApiError::internal(format!("load {}: {set} batch {seq}: {e}", at.load.load_id)))?;
    let mut steps = Vec::new();
    // Rows are numbered across the record batches of the body, as `records` reads them.
    let mut first_row = 0u64;
    for b in &batches {
        plan_record_batch(at, schema, first_row, b, &mut steps)?;
        first_row += b.num_rows() as u64;
    }
    Ok(PlannedBatch { steps, rows: first_row })
}

fn plan_record_batch(at: &Place, schema: &RecordSetSchema, first_row: u64, b: &RecordBatch, steps: &mut Vec<Step>) -> Result<(), ApiError> {
    let (load, set, seq) = (&at.load, at.set.as_str(), at.seq);
    let step = |query, must| Step { query, set: set.to_string(), seq, must };
    let ops = strings(b, OP)?;
    let old = strings(b, OLD_ROW_HASH)?;
    let new = strings(b, NEW_ROW_HASH)?;
    let key_names: Vec<&str> = schema.key.iter().map(|&k| schema.columns[k].name.as_str()).collect();
    let key_cols: Vec<&ArrayRef> = key_names.iter().filter_map(|n| b.column_by_name(n)).collect();
    if key_cols.len() != key_names.len() {
        return Err(ApiError::internal(format!("{set} batch {seq}: key columns missing")));
    }
    let insured = b.column_by_name("insured_no").and_then(|c| c.as_any().downcast_ref::<StringArray>());
    let mut key = Vec::with_capacity(64);
    // The rows stay in the stored batch: a record points at its row (see migration 3).
    let mut inserts: Vec<(Vec<u8>, Option<String>, String, i64)> = Vec::new();
    for row in 0..b.num_rows() {
        key.clear();
        crate::map::rowset::encode_key(&key_names, &key_cols, row, &mut key);
        let record_key = key.clone();
        let batch_row = i(first_row + row as u64);
        let person = || insured.filter(|a| a.is_valid(row)).map(|a| a.value(row).to_string());
        match ops.value(row) {
            "insert" if new.is_valid(row) => inserts.push((record_key, person(), new.value(row).to_string(), batch_row)),
            "update" if new.is_valid(row) && old.is_valid(row) => {
                let query = sqlx::query(
                    "UPDATE platform_records SET row_hash = $1, row_json = '', insured_no = $2, version = $3, batch_load = $4, batch_seq = $5, batch_row = $6 WHERE insurer_no = $7 AND record_set = $8 AND record_key = $9 AND row_hash = $10",
                )
                .bind(new.value(row).to_string())
                .bind(person())
                .bind(i(at.version))
                .bind(load.load_id.clone())
                .bind(i(seq))
                .bind(batch_row)
                .bind(load.insurer_no.clone())
                .bind(set.to_string())
                .bind(record_key)
                .bind(old.value(row).to_string());
                steps.push(step(query, Outcome::OneRow { row, what: "an update of a row the platform does not hold in its old version" }));
            }
            "delete" if old.is_valid(row) => {
                let query = sqlx::query(
                    "DELETE FROM platform_records WHERE insurer_no = $1 AND record_set = $2 AND record_key = $3 AND row_hash = $4",
                )
                .bind(load.insurer_no.clone())
                .bind(set.to_string())
                .bind(record_key)
                .bind(old.value(row).to_string());
                steps.push(step(query, Outcome::OneRow { row, what: "a delete of a row the platform does not hold" }));
            }
            other => {
                return Err(ApiError::conflict(
                    "change_conflict",
                    format!(
                        "load {}: {set} batch {seq} row {row}: op `{other}` without the row hashes it needs; nothing of the load was applied",
                        load.load_id
                    ),
                ));
            }
        }
    }
    let mut inserts = inserts.into_iter().peekable();
    while inserts.peek().is_some() {
        let chunk: Vec<_> = inserts.by_ref().take(INSERT_CHUNK).collect();
        let mut query = sqlx::query(AssertSqlSafe(insert_sql_for(chunk.len(), at.anonymous_parameters)))
            .bind(load.insurer_no.clone())
            .bind(set.to_string())
            .bind(i(at.version))
            .bind(load.load_id.clone())
            .bind(i(seq));
        for (record_key, person, hash, row) in chunk {
            query = query.bind(record_key).bind(person).bind(hash).bind(row);
        }
        steps.push(step(query, Outcome::NewKeys));
    }
    Ok(())
}

/// [`insert_sql`], the text of a full statement ([`INSERT_CHUNK`] rows) made once per backend
/// and shared: most statements of a large load are full.
fn insert_sql_for(rows: usize, anonymous_parameters: bool) -> std::sync::Arc<str> {
    static FULL: [std::sync::OnceLock<std::sync::Arc<str>>; 2] = [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    if rows != INSERT_CHUNK {
        return insert_sql(rows, anonymous_parameters).into();
    }
    FULL[usize::from(anonymous_parameters)].get_or_init(|| insert_sql(INSERT_CHUNK, anonymous_parameters).into()).clone()
}

/// A multi-row insert of `rows` records. What every row of a statement shares (insurer, set,
/// version, batch) is bound once, the rest (key, person, hash, place in the batch) per row:
/// binding is most of a statement's cost.
fn insert_sql(rows: usize, anonymous_parameters: bool) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(256 + rows * 24);
    sql.push_str(
        "INSERT INTO platform_records (insurer_no, record_set, record_key, insured_no, row_hash, row_json, version, batch_load, batch_seq, batch_row) ",
    );
    if anonymous_parameters {
        sql.push_str("SELECT ?, ?, column1, column2, column3, '', ?, ?, ?, column4 FROM (VALUES ");
    } else {
        sql.push_str("SELECT $1, $2, column1, column2, column3, '', $3, $4, $5, column4 FROM (VALUES ");
    }
    for n in 0..rows {
        if n > 0 {
            sql.push(',');
        }
        if anonymous_parameters {
            sql.push_str("(?,?,?,?)");
        } else {
            let p = 6 + n * 4;
            let _ = write!(sql, "(${},${},${},${})", p, p + 1, p + 2, p + 3);
        }
    }
    sql.push_str(") AS v");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A platform database from before migration 4 (keys as hex) opens with its keys as bytes,
    /// the state's digest unchanged and the rows found by their key.
    #[tokio::test]
    async fn hex_keys_become_bytes_and_the_state_stays_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let location = crate::ledger::LedgerLocation::Sqlite(dir.path().join("platform.sqlite"));
        sqlx::any::install_default_drivers();
        let key = b"\x0a\x00\x00\x00insured_noS\x0a\x00\x00\x000000000017".to_vec();
        {
            let pool = sqlx::pool::PoolOptions::<Any>::new().max_connections(1).connect(&location.url()).await.unwrap();
            migrator(true, 3).run(&pool).await.unwrap();
            sqlx::query("INSERT INTO platform_insurers (insurer_no, version, updated_at) VALUES ('141309', 1, 'now')")
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO platform_records (insurer_no, record_set, record_key, insured_no, row_hash, row_json, version) VALUES ('141309', 'insured_person', $1, '0000000017', 'ab', '{}', 1)",
            )
            .bind(hex::encode(&key))
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let db = PlatformDb::open(&location).await.unwrap();
        let state = db.state("141309").await.unwrap();
        let set = &state.record_sets["insured_person"];
        assert_eq!(set.rows, 1);
        assert_eq!(set.digest, crate::map::rowset::digest_hex(crate::map::rowset::digest_term(&key, "ab")));
        let stored: Vec<u8> = sqlx::query("SELECT record_key FROM platform_records").fetch_one(&db.pool).await.unwrap().get(0);
        assert_eq!(stored, key);
        let (_, rows) = db.records("141309", "insured_person", "0000000017").await.unwrap();
        assert_eq!(rows, vec![serde_json::json!({})]);
    }

    #[test]
    fn inserts_bind_what_rows_share_once() {
        assert_eq!(
            insert_sql(2, true),
            "INSERT INTO platform_records (insurer_no, record_set, record_key, insured_no, row_hash, row_json, version, batch_load, batch_seq, batch_row) SELECT ?, ?, column1, column2, column3, '', ?, ?, ?, column4 FROM (VALUES (?,?,?,?),(?,?,?,?)) AS v"
        );
        assert!(insert_sql(2, false).ends_with("FROM (VALUES ($6,$7,$8,$9),($10,$11,$12,$13)) AS v"));
    }
}
