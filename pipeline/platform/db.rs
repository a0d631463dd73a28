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

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "platform", include_str!("migrations/0001_platform.sql")),
    (2, "sessions", include_str!("migrations/0002_sessions.sql")),
    (3, "rows in batches", include_str!("migrations/0003_rows_in_batches.sql")),
];
/// Rows per multi-row INSERT (10 parameters each: under SQLite's and PostgreSQL's limits).
const INSERT_CHUNK: usize = 512;

pub struct PlatformDb {
    pool: AnyPool,
    pub location: String,
    /// SQLite: large statements use anonymous `?` parameters, because sqlx binds `$n` ones by
    /// looking each name up, which is quadratic in a statement's parameters (75% of a commit's
    /// time with 3,584 of them). PostgreSQL takes `$n` only.
    sqlite: bool,
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
        let mut options = sqlx::pool::PoolOptions::<Any>::new().max_connections(4).acquire_timeout(std::time::Duration::from_secs(10));
        if sqlite {
            // A commit of a large load is one transaction: with SQLite's default 2 MB page cache
            // its pages spill to the WAL and are looked up there again; up to 1 GiB keeps them
            // (taken as pages are used). A new database gets 16 KiB pages: the batches it keeps
            // are large blobs, and a commit writes fewer, fuller pages.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, "PRAGMA page_size = 16384").await?;
                    sqlx::Executor::execute(conn, "PRAGMA cache_size = -1048576").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&location.url()).await?;
        let migrations: Vec<sqlx::migrate::Migration> = MIGRATIONS
            .iter()
            .map(|&(v, name, sql)| {
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
        migrator.run(&pool).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        if matches!(location, crate::ledger::LedgerLocation::Sqlite(_)) {
            // Readers (state, records) and the writer (a commit) do not block each other.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        Ok(PlatformDb { pool, location: location.to_string(), sqlite })
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
    /// version moves from the load's base to base + 1, or nothing happens.
    pub async fn commit(
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
        let mut applied = 0u64;
        for (set, seq) in order {
            let schema = schemas.get(set).ok_or_else(|| ApiError::unknown_set(set))?;
            let row = sqlx::query("SELECT body FROM platform_batches WHERE load_id = $1 AND record_set = $2 AND seq = $3")
                .bind(&load.load_id)
                .bind(set)
                .bind(i(*seq))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err("reading a batch to apply"))?;
            let body: Vec<u8> = col(&row, 0)?;
            let (_, batches) = crate::protocol::decode_batches(&body)
                .map_err(|e| ApiError::internal(format!("load {}: {set} batch {seq}: {e}", load.load_id)))?;
            // Rows are numbered across the record batches of the body, as `records` reads them.
            let mut first_row = 0u64;
            for b in &batches {
                applied += apply_batch(&mut tx, load, schema, set, (*seq, first_row), b, version, self.sqlite).await?;
                first_row += b.num_rows() as u64;
            }
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
        let mut key = Vec::new();
        while let Some(r) = rows.try_next().await.map_err(db_err("reading the state"))? {
            let set: String = col(&r, 0)?;
            let record_key: String = col(&r, 1)?;
            let row_hash: String = col(&r, 2)?;
            key.clear();
            key.extend(hex::decode(&record_key).map_err(|_| ApiError::internal(format!("a {set} record key is not hex")))?);
            let e = sums.entry(set).or_default();
            e.0 += 1;
            e.1 = e.1.wrapping_add(crate::map::rowset::digest_term(&key, &row_hash));
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

/// Applies one decoded batch inside the commit's transaction; returns the rows applied.
#[allow(clippy::too_many_arguments)]
async fn apply_batch(
    tx: &mut sqlx::Transaction<'_, Any>,
    load: &LoadRow,
    schema: &RecordSetSchema,
    set: &str,
    (seq, first_row): (u64, u64),
    b: &RecordBatch,
    version: u64,
    anonymous_parameters: bool,
) -> Result<u64, ApiError> {
    let conflict = |row: usize, what: &str| {
        ApiError::conflict(
            "change_conflict",
            format!("load {}: {set} batch {seq} row {row}: {what}; nothing of the load was applied", load.load_id),
        )
    };
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
    let mut hex_key = Vec::with_capacity(128);
    // The rows stay in the stored batch: a record points at its row (see migration 3).
    let mut inserts: Vec<(String, Option<&str>, &str, i64)> = Vec::new();
    for row in 0..b.num_rows() {
        key.clear();
        crate::map::rowset::encode_key(&key_names, &key_cols, row, &mut key);
        hex_key.resize(key.len() * 2, 0);
        hex::encode_to_slice(&key, &mut hex_key).map_err(|e| ApiError::internal(e.to_string()))?;
        let record_key = String::from_utf8_lossy(&hex_key).into_owned();
        let batch_row = i(first_row + row as u64);
        let person = insured.filter(|a| a.is_valid(row)).map(|a| a.value(row));
        match ops.value(row) {
            "insert" if new.is_valid(row) => inserts.push((record_key, person, new.value(row), batch_row)),
            "update" if new.is_valid(row) && old.is_valid(row) => {
                let r = sqlx::query(
                    "UPDATE platform_records SET row_hash = $1, row_json = '', insured_no = $2, version = $3, batch_load = $4, batch_seq = $5, batch_row = $6 WHERE insurer_no = $7 AND record_set = $8 AND record_key = $9 AND row_hash = $10",
                )
                .bind(new.value(row))
                .bind(person)
                .bind(i(version))
                .bind(&load.load_id)
                .bind(i(seq))
                .bind(batch_row)
                .bind(&load.insurer_no)
                .bind(set)
                .bind(&record_key)
                .bind(old.value(row))
                .execute(&mut **tx)
                .await
                .map_err(db_err("applying an update"))?;
                if r.rows_affected() != 1 {
                    return Err(conflict(row, "an update of a row the platform does not hold in its old version"));
                }
            }
            "delete" if old.is_valid(row) => {
                let r = sqlx::query(
                    "DELETE FROM platform_records WHERE insurer_no = $1 AND record_set = $2 AND record_key = $3 AND row_hash = $4",
                )
                .bind(&load.insurer_no)
                .bind(set)
                .bind(&record_key)
                .bind(old.value(row))
                .execute(&mut **tx)
                .await
                .map_err(db_err("applying a delete"))?;
                if r.rows_affected() != 1 {
                    return Err(conflict(row, "a delete of a row the platform does not hold"));
                }
            }
            other => return Err(conflict(row, &format!("op `{other}` without the row hashes it needs"))),
        }
    }
    for chunk in inserts.chunks(INSERT_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO platform_records (insurer_no, record_set, record_key, insured_no, row_hash, row_json, version, batch_load, batch_seq, batch_row) VALUES ",
        );
        for n in 0..chunk.len() {
            let p = n * 9;
            if n > 0 {
                sql.push(',');
            }
            if anonymous_parameters {
                sql.push_str("(?,?,?,?,?,'',?,?,?,?)");
            } else {
                let ps: Vec<String> = (1..=9).map(|k| format!("${}", p + k)).collect();
                sql.push_str(&format!("({},{},{},{},{},'',{},{},{},{})", ps[0], ps[1], ps[2], ps[3], ps[4], ps[5], ps[6], ps[7], ps[8]));
            }
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (record_key, person, hash, row) in chunk {
            q = q
                .bind(&load.insurer_no)
                .bind(set)
                .bind(record_key)
                .bind(*person)
                .bind(*hash)
                .bind(i(version))
                .bind(&load.load_id)
                .bind(i(seq))
                .bind(*row);
        }
        match q.execute(&mut **tx).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(ApiError::conflict(
                    "change_conflict",
                    format!(
                        "load {}: {set} batch {seq}: an insert of a key the platform already holds; nothing of the load was applied",
                        load.load_id
                    ),
                ));
            }
            Err(e) => return Err(ApiError::database("applying inserts", e)),
        }
    }
    Ok(b.num_rows() as u64)
}
