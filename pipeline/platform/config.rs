//! The reference platform's configuration file (`kiban platform serve --config <file>`).
//! Unknown keys are errors; paths are relative to the file.
//!
//! ```toml
//! listen = "127.0.0.1:8443"            # address and port (port 0: any free port, printed at start)
//! database = "platform.sqlite"         # durable state: a SQLite file (created on first use) or a
//!                                      # postgres:// URL
//! certificate = "certs/server.pem"     # the platform's server certificate (PEM chain)
//! key = "certs/server.key"             # its private key (PEM)
//! client_ca = "certs/ca.pem"           # client certificates must chain to one of these
//! max_batch_bytes = 67108864           # a batch body above this is refused with 413
//!
//! [login]                              # card login (SPEC §10); leave out to offer none
//! jpki_ca = "certs/jpki-ca.pem"        # CAs that cards' auth certificates must chain to
//! require_for = ["records", "replays"] # what needs a logged-in person (default: nothing)
//! token_minutes = 60                   # how long a login token lives
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// The platform's state: a SQLite file path, a `sqlite:` URL or a `postgres://` URL.
    pub database: String,
    /// The server certificate chain (PEM).
    pub certificate: PathBuf,
    /// The server certificate's private key (PEM).
    pub key: PathBuf,
    /// CA certificates (PEM) that terminal certificates must chain to.
    pub client_ca: PathBuf,
    /// Largest batch body accepted, in bytes (default 64 MiB).
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: u64,
    /// Card login; `None`: the platform offers none and requires none.
    #[serde(default)]
    pub login: Option<LoginConfig>,
}

/// `[login]`: a person logs in with the マイナンバーカード's auth certificate (challenge and
/// response through a terminal's connection, or TLS 1.2 client authentication with the card).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// CA certificates (PEM) of the JPKI auth certificates (利用者証明用電子証明書) accepted.
    pub jpki_ca: PathBuf,
    /// What needs `Authorization: Bearer <token>` of a logged-in person.
    #[serde(default)]
    pub require_for: Vec<LoginRequiredFor>,
    /// Minutes a token is valid (default 60, as the platform's portal).
    #[serde(default = "default_token_minutes")]
    pub token_minutes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginRequiredFor {
    /// `GET /v1/insurers/{no}/records/…`: a person's data, as a care manager sees it.
    Records,
    /// Loads opened by `kiban loads replay` (`"replay": true`).
    Replays,
}

fn default_token_minutes() -> u32 {
    60
}

fn default_max_batch_bytes() -> u64 {
    crate::protocol::DEFAULT_MAX_BATCH_BYTES
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformConfigError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl PlatformConfig {
    /// Reads a configuration file; its relative paths are made relative to its directory.
    pub fn load(path: &Path) -> Result<PlatformConfig, PlatformConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlatformConfigError::Io { path: path.to_path_buf(), source })?;
        let mut c: PlatformConfig =
            toml::from_str(&text).map_err(|source| PlatformConfigError::Toml { path: path.to_path_buf(), source })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for p in [&mut c.certificate, &mut c.key, &mut c.client_ca].into_iter().chain(c.login.as_mut().map(|l| &mut l.jpki_ca)) {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        if c.login.as_ref().is_some_and(|l| l.token_minutes == 0 || l.token_minutes > 24 * 60) {
            return Err(PlatformConfigError::Invalid { path: path.to_path_buf(), reason: "login.token_minutes is 1 to 1440".into() });
        }
        if c.max_batch_bytes == 0 {
            return Err(PlatformConfigError::Invalid { path: path.to_path_buf(), reason: "max_batch_bytes must be above 0".into() });
        }
        if !c.database.contains("://") && !c.database.starts_with("sqlite:") && Path::new(&c.database).is_relative() {
            c.database = dir.join(&c.database).to_string_lossy().to_string();
        }
        Ok(c)
    }
}
