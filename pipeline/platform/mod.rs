//! The reference platform (`kiban platform serve`, SPEC §9): a receiver of the publish protocol
//! that enforces all of it, for vendor tests, the demo and kiban's own tests.
//!
//! ```text
//!  TCP ─► rustls (client certificate required, WebPkiClientVerifier on `client_ca`)
//!      ─► the certificate's SAN URI urn:kiban:insurer:<no> = the insurers it may act for
//!      ─► hyper HTTP/1.1 ─► route ─► handler ─► PlatformDb (sqlx: SQLite file or PostgreSQL)
//!                                       │
//!   POST /v1/loads ─────────────────────┤ platform_loads (same id → same answer)
//!   PUT  …/batches/{set}/{seq} ─────────┤ platform_batches (digest checked, schema checked)
//!   POST …/commit ──────────────────────┤ one transaction: platform_records, version + 1,
//!                                       │ platform_receipts, platform_audit
//!   GET  /v1/insurers/{no}/state ───────┤ digest computed from platform_records
//!   POST /v1/auth/challenge|login ──────┘ platform_sessions (card login, `login.rs`)
//! ```
//! With `[login]`, the TLS layer also accepts client certificates of the JPKI CAs: such a
//! connection is a person's (TLS 1.2 with the card's key) and may only log in.
//! Batches are stored as they arrive and applied only by the commit, in one database
//! transaction: a crash (or `kill -9`) mid-commit leaves the previous version or the new one.
//! A committed row is not copied out of its batch: `platform_records` holds its key, hash,
//! person and place in the stored batch (migration 3), and the records view decodes the batch
//! to answer. Copying every row as JSON made a 1M-person first load write 6.6 GB and take 53 s
//! to commit; pointing into the batch, 16.5 s. The commit now plans the next batches (decode, key
//! encoding, binds) on another task while the database executes the current one, binds what a
//! multi-row insert's rows share once, stores keys as bytes (migration 4: they were hex, twice
//! the size, in the table and its primary key), lets full pages spill early from a small page
//! cache and leaves the WAL checkpoint to a task after the receipt: 5.6–6.1 s
//! (benches/e2e/README.md).
//! Nothing the platform logs names a person: loads, record sets, batch numbers, certificate
//! subjects, and for a card login the person as the serial number of their auth certificate
//! (which names no one; SPEC §9 asks for the person who logged in to be in the commit's log).

pub mod config;
pub mod db;
mod http;
mod login;

pub use config::{PlatformConfig, PlatformConfigError};
use db::PlatformDb;
use std::net::SocketAddr;
use std::sync::Arc;

/// An error answer: status, a stable code and a message (`{code, message}` on the wire).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(409, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(404, code, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal", message)
    }
    pub fn unknown_set(set: &str) -> ApiError {
        ApiError::not_found("unknown_record_set", format!("no record set `{set}`"))
    }
    /// A database error: 503 with Retry-After when the database is busy or unreachable (the
    /// client retries), 500 otherwise. The detail goes to the platform's log only.
    pub fn database(action: &'static str, e: sqlx::Error) -> ApiError {
        tracing::error!("database: {action}: {e}");
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => ApiError {
                retry_after: Some(1),
                ..ApiError::new(503, "unavailable", format!("the platform's database is unavailable ({action}); try again"))
            },
            sqlx::Error::Database(d) if d.message().contains("locked") || d.message().contains("busy") => ApiError {
                retry_after: Some(1),
                ..ApiError::new(503, "busy", format!("the platform's database is busy ({action}); try again"))
            },
            _ => ApiError::internal(format!("database error while {action}")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(transparent)]
    Config(#[from] PlatformConfigError),
    #[error(transparent)]
    Identity(#[from] crate::identity::tls::IdentityError),
    #[error("platform database {location}: {source}")]
    Database { location: String, source: sqlx::Error },
    #[error("listening on {listen}: {source}")]
    Listen { listen: String, source: std::io::Error },
    #[error("{0}")]
    Schemas(String),
    #[error("cannot start the platform's runtime: {0}")]
    Runtime(std::io::Error),
}

/// The platform's shared state.
pub struct Platform {
    db: PlatformDb,
    schemas: crate::schema::SchemaRegistry,
    config: PlatformConfig,
    /// Commits of this process one at a time (SQLite has one writer; PostgreSQL is protected by
    /// the version check in the transaction as well).
    commits: tokio::sync::Mutex<()>,
    /// Card login, when configured.
    login: Option<login::CardLogin>,
}

/// A bound, not yet serving platform.
pub struct Bound {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    platform: Arc<Platform>,
    pub addr: SocketAddr,
}

/// Opens the database, loads the certificates and binds the address.
pub async fn bind(config: PlatformConfig) -> Result<Bound, PlatformError> {
    let mut client_cas = vec![config.client_ca.as_path()];
    client_cas.extend(config.login.as_ref().map(|l| l.jpki_ca.as_path()));
    let tls = crate::identity::tls::server_config(&config.certificate, &config.key, &client_cas)?;
    let login = config.login.as_ref().map(|l| login::CardLogin::new(l, &config.client_ca)).transpose()?;
    let location = crate::ledger::LedgerLocation::parse(&config.database, std::path::Path::new("."));
    let db = PlatformDb::open(&location).await.map_err(|source| PlatformError::Database { location: location.to_string(), source })?;
    let catalog = crate::job::catalog::Catalog::embedded().map_err(|e| PlatformError::Schemas(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| PlatformError::Listen { listen: config.listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| PlatformError::Listen { listen: config.listen.clone(), source })?;
    let platform = Arc::new(Platform { db, schemas: catalog.schemas, config, commits: tokio::sync::Mutex::new(()), login });
    Ok(Bound { listener, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)), platform, addr })
}

impl Bound {
    /// Serves until `shutdown` completes; then stops accepting and gives open requests up to
    /// five seconds (a commit cut short rolls back).
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!(addr = %self.addr, database = %self.platform.db.location, "platform listening");
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = &mut shutdown => break,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let platform = self.platform.clone();
            tokio::spawn(async move { http::connection(platform, acceptor, tcp, peer).await });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while Arc::strong_count(&self.platform) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tracing::info!("platform stopped");
    }
}

/// A platform serving on its own thread and runtime, for the length of a `kiban run` whose job
/// asks for one (the demo). Dropping it stops it.
pub struct RunningPlatform {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningPlatform {
    pub fn start(config: PlatformConfig) -> Result<RunningPlatform, PlatformError> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(PlatformError::Runtime)?;
        let bound = rt.block_on(bind(config))?;
        let addr = bound.addr;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kiban-platform".into())
            .spawn(move || {
                rt.block_on(bound.serve(async {
                    let _ = rx.await;
                }))
            })
            .map_err(PlatformError::Runtime)?;
        Ok(RunningPlatform { addr, stop: Some(tx), thread: Some(thread) })
    }
}

impl Drop for RunningPlatform {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
