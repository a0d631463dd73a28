//! The ledger (SPEC §3): every load, input file, count, store version, publish batch, receipt and
//! event, in SQL — SQLite by default (a file the job names, created on first use), PostgreSQL by
//! URL for shared deployments. One portable schema serves both (`migrations/`, applied by sqlx's
//! migrator on open); the statements use `$n` parameters, which both backends accept through
//! sqlx's `Any` driver.
//!
//! ## A load's state machine
//! Each state is written **before** the step it names starts, so whatever a crash interrupts, the
//! ledger says which step it was and the next run of the job resumes or rolls it back:
//!
//! ```text
//!            begin_load                set_storing(v)          record_version
//!  (inputs   ─────────► reading ──────────────────► storing ───────────────► stored
//!   hashed)              │  read, decode, map,         │  write Parquet,          │
//!                        │  validate                   │  manifest v (commit)     │ set_status(diffing)
//!                        ▼                             ▼                          ▼
//!                      failed (exit 1; a rerun    crash: manifest v on disk?   diffing ── write _changes
//!                       of the same inputs         yes → stored (resume)          │
//!                       starts it again)           no  → rolled_back              ▼ record_changes
//!                                                                              diffed
//!                                                                                 │ set_status(publishing)
//!                                                                                 ▼  open, batches (each
//!                                                                            publishing  recorded, then acked),
//!                                                                                 │      commit
//!                                                                                 ▼ record_receipt
//!                                                                             published
//! ```
//! - `reading` interrupted: nothing was stored; the load is `rolled_back` and the rerun (same
//!   inputs → same `load_id`) starts it again as a new attempt.
//! - `storing` interrupted: the manifest is the store's commit point. If manifest `v` exists and
//!   names this load, the load is `stored`; otherwise what was written is swept and the load is
//!   `rolled_back`.
//! - `stored`/`diffing` interrupted: the diff is recomputed (it is deterministic and written
//!   atomically), then the load goes on.
//! - `diffed`/`publishing`: publishing resumes from the first batch without an acknowledgement
//!   (`publish/`); a commit the platform made before the crash is answered with its receipt.
//!   Without a platform, delivering means the changes are in the store: `published` at once.
//!
//! A version is the base of the next load only once `published`; at most one load per insurer is
//! between `storing` and `published`, and a run finishes it before starting a new one.

mod publishing;
mod records;

pub use publishing::*;
pub use records::*;

use sqlx::any::Any;
use sqlx::pool::PoolOptions;

type AnyPool = sqlx::Pool<Any>;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The schema this binary writes: the highest migration it knows.
pub const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "ledger", include_str!("migrations/0001_ledger.sql"))];

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    /// A SQLite file, created on first use.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://…`).
    Postgres(String),
}

impl LedgerLocation {
    /// Reads a job's `ledger` value: a `postgres://` or `postgresql://` URL, a `sqlite:` URL or a
    /// path (relative paths start from `base`).
    pub fn parse(value: &str, base: &Path) -> LedgerLocation {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return LedgerLocation::Postgres(value.to_string());
        }
        let path = value.strip_prefix("sqlite://").or_else(|| value.strip_prefix("sqlite:")).unwrap_or(value);
        let path = Path::new(path);
        LedgerLocation::Sqlite(if path.is_absolute() { path.to_path_buf() } else { base.join(path) })
    }

    pub(crate) fn url(&self) -> String {
        match self {
            LedgerLocation::Postgres(u) => u.clone(),
            LedgerLocation::Sqlite(p) => {
                // sqlx reads the URL as host + path, so a relative path would lose its first
                // component: give it an absolute, lexically normalised one.
                let p = normalise(&std::path::absolute(p).unwrap_or_else(|_| p.clone()));
                // sqlx percent-decodes the file name: escape what would otherwise end it.
                let mut s = String::from("sqlite://");
                for ch in p.to_string_lossy().chars() {
                    match ch {
                        '%' => s.push_str("%25"),
                        '?' => s.push_str("%3F"),
                        '#' => s.push_str("%23"),
                        c => s.push(c),
                    }
                }
                s.push_str("?mode=rwc");
                s
            }
        }
    }
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl std::fmt::Display for LedgerLocation {
    /// The location without a password, for messages and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerLocation::Sqlite(p) => write!(f, "{}", p.display()),
            LedgerLocation::Postgres(u) if u.contains("password=") => {
                // A password in the query string: show none of the parameters.
                write!(f, "{}?…", u.split('?').next().unwrap_or(""))
            }
            LedgerLocation::Postgres(u) => {
                // postgres://user:secret@host/db → postgres://user:***@host/db
                match (u.find("://"), u.rfind('@')) {
                    (Some(s), Some(at)) if at > s => {
                        let cred = &u[s + 3..at];
                        match cred.find(':') {
                            Some(c) => write!(f, "{}{}:***{}", &u[..s + 3], &cred[..c], &u[at..]),
                            None => write!(f, "{u}"),
                        }
                    }
                    _ => write!(f, "{u}"),
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {location}: cannot open: {source}")]
    Open { location: String, source: sqlx::Error },
    #[error("ledger {location}: cannot start its runtime: {source}")]
    Runtime { location: String, source: std::io::Error },
    #[error(
        "ledger {location}: its schema version {found} is newer than this kiban knows ({known}); use the kiban that wrote it, or a newer one"
    )]
    Newer { location: String, found: i64, known: i64 },
    #[error("ledger {location}: migrating the schema: {source}")]
    Migrate { location: String, source: sqlx::migrate::MigrateError },
    #[error("ledger {location}: {action}: {source}")]
    Query { location: String, action: &'static str, source: sqlx::Error },
    #[error("ledger {location}: {reason}")]
    Invalid { location: String, reason: String },
}

/// An open ledger. Its methods block: the pipeline is synchronous, and each call runs on the
/// ledger's own small runtime (never call them from inside an async task).
pub struct Ledger {
    rt: tokio::runtime::Runtime,
    pool: AnyPool,
    location: LedgerLocation,
}

impl Ledger {
    /// Connects (creating a SQLite file on first use) and brings the schema up to date. A ledger
    /// whose schema is newer than this binary is refused before anything is written.
    pub fn open(location: &LedgerLocation) -> Result<Ledger, LedgerError> {
        let shown = location.to_string();
        sqlx::any::install_default_drivers();
        if let LedgerLocation::Sqlite(p) = location
            && let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(LedgerError::Invalid { location: shown, reason: format!("directory {} does not exist", dir.display()) });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| LedgerError::Runtime { location: shown.clone(), source })?;
        let url = location.url();
        let pool = rt
            .block_on(PoolOptions::<Any>::new().max_connections(2).acquire_timeout(std::time::Duration::from_secs(10)).connect(&url))
            .map_err(|source| LedgerError::Open { location: shown.clone(), source })?;
        let ledger = Ledger { rt, pool, location: location.clone() };
        ledger.migrate()?;
        Ok(ledger)
    }

    pub fn location(&self) -> &LedgerLocation {
        &self.location
    }

    fn migrate(&self) -> Result<(), LedgerError> {
        let shown = self.location.to_string();
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|&(v, name, sql)| Migration::new(v, Cow::Borrowed(name), MigrationType::Simple, sqlx::SqlStr::from_static(sql), false))
            .collect();
        let mut migrator = Migrator::DEFAULT;
        migrator.migrations = Cow::Owned(migrations);
        match self.rt.block_on(migrator.run(&self.pool)) {
            Ok(()) => Ok(()),
            Err(sqlx::migrate::MigrateError::VersionMissing(found)) if found > SCHEMA_VERSION => {
                Err(LedgerError::Newer { location: shown, found, known: SCHEMA_VERSION })
            }
            Err(source) => Err(LedgerError::Migrate { location: shown, source }),
        }
    }

    pub(crate) fn query_error(&self, action: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError + '_ {
        move |source| LedgerError::Query { location: self.location.to_string(), action, source }
    }

    pub(crate) fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// Now, as the ledger writes timestamps.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        let l = LedgerLocation::parse("postgres://kiban:s3cret@db.example/kiban", Path::new("."));
        assert_eq!(l.to_string(), "postgres://kiban:***@db.example/kiban");
        let l = LedgerLocation::parse("postgresql://db.example/kiban", Path::new("."));
        assert_eq!(l.to_string(), "postgresql://db.example/kiban");
    }

    #[test]
    fn relative_sqlite_paths_start_from_the_job() {
        assert_eq!(LedgerLocation::parse("x/ledger.sqlite", Path::new("/jobs")), LedgerLocation::Sqlite("/jobs/x/ledger.sqlite".into()));
        assert_eq!(LedgerLocation::parse("sqlite:/var/k.db", Path::new("/jobs")), LedgerLocation::Sqlite("/var/k.db".into()));
        assert_eq!(LedgerLocation::Sqlite("/a b/c?d#e%f".into()).url(), "sqlite:///a b/c%3Fd%23e%25f?mode=rwc");
        assert_eq!(LedgerLocation::Sqlite("/x/jobs/../out/./l.db".into()).url(), "sqlite:///x/out/l.db?mode=rwc");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(LedgerLocation::Sqlite("jobs/../l.db".into()).url(), format!("sqlite://{}/l.db?mode=rwc", cwd.display()));
    }
}
