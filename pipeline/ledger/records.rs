//! What the ledger records, and the statements that record it.

use super::{Ledger, LedgerError, now};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Where a load is in its state machine (see the module doc of `ledger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadStatus {
    Reading,
    Storing,
    Stored,
    Diffing,
    Diffed,
    Publishing,
    Published,
    Failed,
    RolledBack,
}

impl LoadStatus {
    pub const ALL: [LoadStatus; 9] = [
        LoadStatus::Reading,
        LoadStatus::Storing,
        LoadStatus::Stored,
        LoadStatus::Diffing,
        LoadStatus::Diffed,
        LoadStatus::Publishing,
        LoadStatus::Published,
        LoadStatus::Failed,
        LoadStatus::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoadStatus::Reading => "reading",
            LoadStatus::Storing => "storing",
            LoadStatus::Stored => "stored",
            LoadStatus::Diffing => "diffing",
            LoadStatus::Diffed => "diffed",
            LoadStatus::Publishing => "publishing",
            LoadStatus::Published => "published",
            LoadStatus::Failed => "failed",
            LoadStatus::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<LoadStatus> {
        LoadStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A load in this state was interrupted unless a run is working on it.
    pub fn is_pending(self) -> bool {
        !matches!(self, LoadStatus::Published | LoadStatus::Failed | LoadStatus::RolledBack)
    }
}

impl std::fmt::Display for LoadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An input file as recorded before it is read.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: String,
    pub file_name: String,
    pub layout: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A load as `begin_load` records it.
#[derive(Debug, Clone)]
pub struct NewLoad<'a> {
    pub load_id: &'a str,
    pub job: &'a str,
    pub insurer_no: &'a str,
    pub inputs_sha256: &'a str,
    pub base_version: Option<u64>,
    pub files: &'a [NewFile],
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadRecord {
    pub load_id: String,
    pub job: String,
    pub insurer_no: String,
    pub inputs_sha256: String,
    pub status: LoadStatus,
    pub base_version: Option<u64>,
    pub version: Option<u64>,
    pub attempts: u64,
    pub exit_code: Option<i64>,
    pub message: Option<String>,
    pub host: String,
    pub pid: u64,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

/// Counts of an input file after reading and validation.
#[derive(Debug, Clone, Serialize)]
pub struct FileRecord {
    pub seq: u64,
    pub path: String,
    pub file_name: String,
    pub layout: String,
    pub bytes: u64,
    pub sha256: String,
    pub records_read: Option<u64>,
    pub accepted: Option<u64>,
    pub quarantined: Option<u64>,
    pub warnings: Option<u64>,
    pub rejected: Option<String>,
}

/// Counts of a record set in a load; the change counts once the diff is written.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SetRecord {
    pub record_set: String,
    pub mode: String,
    pub load_rows: u64,
    pub snapshot_rows: u64,
    pub quarantined_rows: u64,
    pub key_conflicts: u64,
    pub deletes_suppressed: bool,
    pub inserts: Option<u64>,
    pub updates: Option<u64>,
    pub deletes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub seq: u64,
    pub at: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionRecord {
    pub insurer_no: String,
    pub version: u64,
    pub load_id: String,
    pub parent_version: Option<u64>,
    pub manifest_path: String,
    pub manifest_sha256: String,
    pub committed_at: String,
    pub published_at: Option<String>,
}

pub(super) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Typed column access that names the column when the database holds something else.
pub(super) struct Cols<'r>(pub(super) &'r AnyRow);

impl Cols<'_> {
    pub(super) fn text(&self, c: &str) -> Result<String, sqlx::Error> {
        self.0.try_get::<String, _>(c)
    }
    pub(super) fn opt_text(&self, c: &str) -> Result<Option<String>, sqlx::Error> {
        self.0.try_get::<Option<String>, _>(c)
    }
    pub(super) fn num(&self, c: &str) -> Result<u64, sqlx::Error> {
        self.0.try_get::<i64, _>(c).map(u)
    }
    pub(super) fn opt_num(&self, c: &str) -> Result<Option<u64>, sqlx::Error> {
        Ok(self.0.try_get::<Option<i64>, _>(c)?.map(u))
    }
}

fn load_record(row: &AnyRow) -> Result<LoadRecord, sqlx::Error> {
    let c = Cols(row);
    let status = c.text("status")?;
    Ok(LoadRecord {
        load_id: c.text("load_id")?,
        job: c.text("job")?,
        insurer_no: c.text("insurer_no")?,
        inputs_sha256: c.text("inputs_sha256")?,
        status: LoadStatus::parse(&status).ok_or_else(|| sqlx::Error::Decode(format!("unknown load status `{status}`").into()))?,
        base_version: c.opt_num("base_version")?,
        version: c.opt_num("version")?,
        attempts: c.num("attempts")?,
        exit_code: row.try_get::<Option<i64>, _>("exit_code")?,
        message: c.opt_text("message")?,
        host: c.text("host")?,
        pid: c.num("pid")?,
        started_at: c.text("started_at")?,
        updated_at: c.text("updated_at")?,
        finished_at: c.opt_text("finished_at")?,
    })
}

fn version_record(row: &AnyRow) -> Result<VersionRecord, sqlx::Error> {
    let c = Cols(row);
    Ok(VersionRecord {
        insurer_no: c.text("insurer_no")?,
        version: c.num("version")?,
        load_id: c.text("load_id")?,
        parent_version: c.opt_num("parent_version")?,
        manifest_path: c.text("manifest_path")?,
        manifest_sha256: c.text("manifest_sha256")?,
        committed_at: c.text("committed_at")?,
        published_at: c.opt_text("published_at")?,
    })
}

const LOAD_COLUMNS: &str = "load_id, job, insurer_no, inputs_sha256, status, base_version, version, attempts, exit_code, message, host, pid, started_at, updated_at, finished_at";

pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (load_id, seq, at, kind, detail) SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM events WHERE load_id = $1";

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

async fn insert_version(conn: &mut sqlx::AnyConnection, v: &VersionRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO store_versions (insurer_no, version, load_id, parent_version, manifest_path, manifest_sha256, committed_at, published_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&v.insurer_no)
    .bind(i(v.version))
    .bind(&v.load_id)
    .bind(v.parent_version.map(i))
    .bind(&v.manifest_path)
    .bind(&v.manifest_sha256)
    .bind(&v.committed_at)
    .bind(v.published_at.as_deref())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Filters of `loads`.
#[derive(Debug, Default, Clone)]
pub struct LoadFilter {
    pub job: Option<String>,
    pub insurer_no: Option<String>,
    pub limit: Option<u64>,
}

impl Ledger {
    /// Records a load and its input files before anything is read. A load id seen before (the
    /// same job and inputs) starts a new attempt: its earlier counts are replaced.
    pub fn begin_load(&self, new: &NewLoad<'_>) -> Result<LoadRecord, LedgerError> {
        let at = now();
        let host = host_name();
        let pid = i64::from(std::process::id());
        let res: Result<(), sqlx::Error> = self.block(async {
            let mut tx = self.pool.begin().await?;
            let existing = sqlx::query("SELECT attempts FROM loads WHERE load_id = $1").bind(new.load_id).fetch_optional(&mut *tx).await?;
            match existing {
                Some(row) => {
                    let attempts: i64 = row.try_get("attempts")?;
                    sqlx::query(
                        "UPDATE loads SET status = $2, base_version = $3, version = NULL, attempts = $4, exit_code = NULL, message = NULL,
                         host = $5, pid = $6, updated_at = $7, finished_at = NULL WHERE load_id = $1",
                    )
                    .bind(new.load_id)
                    .bind(LoadStatus::Reading.as_str())
                    .bind(new.base_version.map(i))
                    .bind(attempts + 1)
                    .bind(&host)
                    .bind(pid)
                    .bind(&at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM load_files WHERE load_id = $1").bind(new.load_id).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM load_sets WHERE load_id = $1").bind(new.load_id).execute(&mut *tx).await?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO loads (load_id, job, insurer_no, inputs_sha256, status, base_version, version, attempts, host, pid, started_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, NULL, 1, $7, $8, $9, $9)",
                    )
                    .bind(new.load_id)
                    .bind(new.job)
                    .bind(new.insurer_no)
                    .bind(new.inputs_sha256)
                    .bind(LoadStatus::Reading.as_str())
                    .bind(new.base_version.map(i))
                    .bind(&host)
                    .bind(pid)
                    .bind(&at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for (seq, f) in new.files.iter().enumerate() {
                sqlx::query("INSERT INTO load_files (load_id, seq, path, file_name, layout, bytes, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(new.load_id)
                    .bind(seq as i64 + 1)
                    .bind(&f.path)
                    .bind(&f.file_name)
                    .bind(&f.layout)
                    .bind(i(f.bytes))
                    .bind(&f.sha256)
                    .execute(&mut *tx)
                    .await?;
            }
            let detail = format!("{} input files; base version {}", new.files.len(), new.base_version.map_or("none".into(), |v| v.to_string()));
            sqlx::query(INSERT_EVENT).bind(new.load_id).bind(&at).bind("reading").bind(detail).execute(&mut *tx).await?;
            tx.commit().await
        });
        res.map_err(self.query_error("recording a new load"))?;
        self.load(new.load_id)?.ok_or_else(|| LedgerError::Invalid {
            location: self.location.to_string(),
            reason: format!("load {} vanished after it was recorded", new.load_id),
        })
    }

    /// Moves a load to `status` and records why in its events.
    pub fn set_status(&self, load_id: &str, status: LoadStatus, detail: &str) -> Result<(), LedgerError> {
        let at = now();
        let res: Result<(), sqlx::Error> = self.block(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE loads SET status = $2, updated_at = $3 WHERE load_id = $1")
                .bind(load_id)
                .bind(status.as_str())
                .bind(&at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_EVENT).bind(load_id).bind(&at).bind(status.as_str()).bind(detail).execute(&mut *tx).await?;
            tx.commit().await
        });
        res.map_err(self.query_error("recording a load's state"))
    }

    /// Ends a load that will not be stored (`failed` or `rolled_back`), with its exit status; its
    /// planned version is cleared (events keep it).
    pub fn finish(&self, load_id: &str, status: LoadStatus, exit_code: Option<i32>, message: &str) -> Result<(), LedgerError> {
        let at = now();
        let res: Result<(), sqlx::Error> = self.block(async {
            let mut tx = self.pool.begin().await?;
            // A load that ends here created no version: the number goes to the next load.
            sqlx::query(
                "UPDATE loads SET status = $2, version = NULL, exit_code = $3, message = $4, updated_at = $5, finished_at = $5 WHERE load_id = $1",
            )
                .bind(load_id)
                .bind(status.as_str())
                .bind(exit_code.map(i64::from))
                .bind(message)
                .bind(&at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_EVENT).bind(load_id).bind(&at).bind(status.as_str()).bind(message).execute(&mut *tx).await?;
            tx.commit().await
        });
        res.map_err(self.query_error("recording the end of a load"))
    }

    /// Before the store is written: the version the load will create and its counts.
    pub fn set_storing(&self, load_id: &str, version: u64, files: &[FileRecord], sets: &[SetRecord]) -> Result<(), LedgerError> {
        let at = now();
        let res: Result<(), sqlx::Error> = self.block(async {
            let mut tx = self.pool.begin().await?;
            for f in files {
                sqlx::query(
                    "UPDATE load_files SET records_read = $3, accepted = $4, quarantined = $5, warnings = $6, rejected = $7 WHERE load_id = $1 AND seq = $2",
                )
                .bind(load_id)
                .bind(i(f.seq))
                .bind(f.records_read.map(i))
                .bind(f.accepted.map(i))
                .bind(f.quarantined.map(i))
                .bind(f.warnings.map(i))
                .bind(f.rejected.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM load_sets WHERE load_id = $1").bind(load_id).execute(&mut *tx).await?;
            for s in sets {
                sqlx::query(
                    "INSERT INTO load_sets (load_id, record_set, mode, load_rows, snapshot_rows, quarantined_rows, key_conflicts, deletes_suppressed)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(load_id)
                .bind(&s.record_set)
                .bind(&s.mode)
                .bind(i(s.load_rows))
                .bind(i(s.snapshot_rows))
                .bind(i(s.quarantined_rows))
                .bind(i(s.key_conflicts))
                .bind(i64::from(s.deletes_suppressed))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE loads SET status = $2, version = $3, updated_at = $4 WHERE load_id = $1")
                .bind(load_id)
                .bind(LoadStatus::Storing.as_str())
                .bind(i(version))
                .bind(&at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_EVENT)
                .bind(load_id)
                .bind(&at)
                .bind(LoadStatus::Storing.as_str())
                .bind(format!("writing store version {version}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        });
        res.map_err(self.query_error("recording the counts of a load"))
    }

    /// After the manifest is on disk: the version exists, and the load is `stored`.
    pub fn record_version(&self, v: &VersionRecord) -> Result<(), LedgerError> {
        let at = now();
        let res: Result<(), sqlx::Error> = self.block(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM store_versions WHERE insurer_no = $1 AND version = $2")
                .bind(&v.insurer_no)
                .bind(i(v.version))
                .execute(&mut *tx)
                .await?;
            insert_version(&mut tx, v).await?;
            sqlx::query("UPDATE loads SET status = $2, updated_at = $3 WHERE load_id = $1 AND status = $4")
                .bind(&v.load_id)
                .bind(LoadStatus::Stored.as_str())
                .bind(&at)
                .bind(LoadStatus::Storing.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_EVENT)
                .bind(&v.load_id)
                .bind(&at)
                .bind(LoadStatus::Stored.as_str())
                .bind(format!("store version {} committed", v.version))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        });
        res.map_err(self.query_error("recording a store version"))
    }

    /// The change counts of one record set, once its `_changes` are written.
    pub fn record_changes(&self, load_id: &str, record_set: &str, inserts: u64, updates: u64, deletes: u64) -> Result<(), LedgerError> {
        let res: Result<_, sqlx::Error> = self.block(
            sqlx::query("UPDATE load_sets SET inserts = $3, updates = $4, deletes = $5 WHERE load_id = $1 AND record_set = $2")
                .bind(load_id)
                .bind(record_set)
                .bind(i(inserts))
                .bind(i(updates))
                .bind(i(deletes))
                .execute(&self.pool),
        );
        res.map(|_| ()).map_err(self.query_error("recording change counts"))
    }

    /// The load's version is delivered: it becomes the base of the next load.
    pub fn mark_published(&self, load_id: &str, insurer_no: &str, version: u64, exit_code: i32, detail: &str) -> Result<(), LedgerError> {
        self.publish_version(load_id, insurer_no, version, exit_code, detail, None)
    }

    /// `mark_published`, with the platform's receipt recorded in the same transaction when there
    /// is one: a crash leaves both or neither.
    pub(super) fn publish_version(
        &self,
        load_id: &str,
        insurer_no: &str,
        version: u64,
        exit_code: i32,
        detail: &str,
        receipt: Option<&crate::protocol::Receipt>,
    ) -> Result<(), LedgerError> {
        let at = now();
        let res: Result<(), sqlx::Error> = self.block(async {
            let mut tx = self.pool.begin().await?;
            if let Some(r) = receipt {
                sqlx::query(
                    "INSERT INTO receipts (load_id, receipt_id, platform_version, applied, committed_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (load_id) DO NOTHING",
                )
                .bind(load_id)
                .bind(&r.receipt_id)
                .bind(i(r.version))
                .bind(i(r.applied))
                .bind(&r.committed_at)
                .bind(&at)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE store_versions SET published_at = $3 WHERE insurer_no = $1 AND version = $2")
                .bind(insurer_no)
                .bind(i(version))
                .bind(&at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE loads SET status = $2, exit_code = $3, updated_at = $4, finished_at = $4 WHERE load_id = $1")
                .bind(load_id)
                .bind(LoadStatus::Published.as_str())
                .bind(i64::from(exit_code))
                .bind(&at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_EVENT).bind(load_id).bind(&at).bind(LoadStatus::Published.as_str()).bind(detail).execute(&mut *tx).await?;
            tx.commit().await
        });
        res.map_err(self.query_error("recording a publication"))
    }

    /// Versions of a store made before it had a ledger: recorded as published, so the next load
    /// builds on the latest of them.
    pub fn adopt_versions(&self, versions: &[VersionRecord]) -> Result<(), LedgerError> {
        let res: Result<(), sqlx::Error> = self.block(async {
            let mut tx = self.pool.begin().await?;
            for v in versions {
                insert_version(&mut tx, v).await?;
            }
            tx.commit().await
        });
        res.map_err(self.query_error("adopting store versions"))
    }

    pub fn load(&self, load_id: &str) -> Result<Option<LoadRecord>, LedgerError> {
        let sql = format!("SELECT {LOAD_COLUMNS} FROM loads WHERE load_id = $1");
        let res: Result<Option<LoadRecord>, sqlx::Error> = self.block(async {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(load_id).fetch_optional(&self.pool).await?;
            row.as_ref().map(load_record).transpose()
        });
        res.map_err(self.query_error("reading a load"))
    }

    /// Loads, newest first.
    pub fn loads(&self, filter: &LoadFilter) -> Result<Vec<LoadRecord>, LedgerError> {
        let sql = format!(
            "SELECT {LOAD_COLUMNS} FROM loads WHERE ($1 IS NULL OR job = $1) AND ($2 IS NULL OR insurer_no = $2)
             ORDER BY started_at DESC, load_id DESC LIMIT $3"
        );
        let limit = filter.limit.map_or(i64::MAX, i);
        let res: Result<Vec<LoadRecord>, sqlx::Error> = self.block(async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(filter.job.as_deref())
                .bind(filter.insurer_no.as_deref())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(load_record).collect()
        });
        res.map_err(self.query_error("listing loads"))
    }

    /// Loads of an insurer that were interrupted (or are running under the lock holder).
    pub fn pending(&self, insurer_no: &str) -> Result<Vec<LoadRecord>, LedgerError> {
        let all = self.loads(&LoadFilter { insurer_no: Some(insurer_no.to_string()), ..LoadFilter::default() })?;
        let mut pending: Vec<LoadRecord> = all.into_iter().filter(|l| l.status.is_pending()).collect();
        pending.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        Ok(pending)
    }

    /// Rows of one statement with one text parameter, each turned into a `T`.
    fn fetch<T>(
        &self,
        sql: &'static str,
        param: &str,
        action: &'static str,
        row: fn(&Cols<'_>) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, LedgerError> {
        let res: Result<Vec<T>, sqlx::Error> = self.block(async {
            let rows = sqlx::query(sql).bind(param).fetch_all(&self.pool).await?;
            rows.iter().map(|r| row(&Cols(r))).collect()
        });
        res.map_err(self.query_error(action))
    }

    pub fn files(&self, load_id: &str) -> Result<Vec<FileRecord>, LedgerError> {
        self.fetch(
            "SELECT seq, path, file_name, layout, bytes, sha256, records_read, accepted, quarantined, warnings, rejected
             FROM load_files WHERE load_id = $1 ORDER BY seq",
            load_id,
            "reading a load's files",
            |c| {
                Ok(FileRecord {
                    seq: c.num("seq")?,
                    path: c.text("path")?,
                    file_name: c.text("file_name")?,
                    layout: c.text("layout")?,
                    bytes: c.num("bytes")?,
                    sha256: c.text("sha256")?,
                    records_read: c.opt_num("records_read")?,
                    accepted: c.opt_num("accepted")?,
                    quarantined: c.opt_num("quarantined")?,
                    warnings: c.opt_num("warnings")?,
                    rejected: c.opt_text("rejected")?,
                })
            },
        )
    }

    pub fn sets(&self, load_id: &str) -> Result<Vec<SetRecord>, LedgerError> {
        self.fetch(
            "SELECT record_set, mode, load_rows, snapshot_rows, quarantined_rows, key_conflicts, deletes_suppressed, inserts, updates, deletes
             FROM load_sets WHERE load_id = $1 ORDER BY record_set",
            load_id,
            "reading a load's record sets",
            |c| {
                Ok(SetRecord {
                    record_set: c.text("record_set")?,
                    mode: c.text("mode")?,
                    load_rows: c.num("load_rows")?,
                    snapshot_rows: c.num("snapshot_rows")?,
                    quarantined_rows: c.num("quarantined_rows")?,
                    key_conflicts: c.num("key_conflicts")?,
                    deletes_suppressed: c.num("deletes_suppressed")? != 0,
                    inserts: c.opt_num("inserts")?,
                    updates: c.opt_num("updates")?,
                    deletes: c.opt_num("deletes")?,
                })
            },
        )
    }

    pub fn events(&self, load_id: &str) -> Result<Vec<EventRecord>, LedgerError> {
        self.fetch("SELECT seq, at, kind, detail FROM events WHERE load_id = $1 ORDER BY seq", load_id, "reading a load's events", |c| {
            Ok(EventRecord { seq: c.num("seq")?, at: c.text("at")?, kind: c.text("kind")?, detail: c.text("detail")? })
        })
    }

    /// Store versions of an insurer, ascending.
    pub fn versions(&self, insurer_no: &str) -> Result<Vec<VersionRecord>, LedgerError> {
        self.fetch(
            "SELECT insurer_no, version, load_id, parent_version, manifest_path, manifest_sha256, committed_at, published_at
             FROM store_versions WHERE insurer_no = $1 ORDER BY version",
            insurer_no,
            "reading store versions",
            |c| version_record(c.0),
        )
    }

    /// The last published version of an insurer: the base of its next load.
    pub fn published_version(&self, insurer_no: &str) -> Result<Option<VersionRecord>, LedgerError> {
        Ok(self.versions(insurer_no)?.into_iter().rev().find(|v| v.published_at.is_some()))
    }
}
