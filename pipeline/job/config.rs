//! Job files (`jobs/*.toml`, SPEC §12). Unknown keys are errors; paths are relative to the job
//! file.
//!
//! ```toml
//! name = "demo"                  # the job's name, in logs and the summary
//! schedule = "0 2 * * *"         # optional: when `kiban schedule` runs the job (cron, local time)
//! insurer_no = "141309"          # 保険者番号 the job loads for (6 digits)
//! store = "../demo-out/store"    # the Parquet store directory
//! ledger = "../demo-out/ledger.sqlite"   # the ledger: a SQLite file (created on first use) or a
//!                                # postgres:// URL; default: <store>/_ledger.sqlite
//! gaiji = "../sample-data/gaiji/141309.tsv"   # 外字 table; default: the shipped mappings/gaiji/<insurer_no>.tsv
//! on_file_error = "skip_file"    # skip_file (default): nothing of a rejected file is loaded, the others
//!                                # are, exit 3; fail_load: a rejected file fails the load, nothing is stored
//! [[sources]]
//! path = "../sample-data/5311_*.csv"  # a file or a glob; matches are loaded in name order
//! mapping = "kokuhoren_5311"          # a shipped mapping, or a path to a mapping .toml
//! mode = "incremental"                # optional: overrides the mapping's snapshot|incremental
//! [thresholds]
//! max_quarantined_ratio = 0.01        # abort the load when a file quarantines more than this share
//! [platform]                          # optional: publish each load (SPEC §9); without it a load
//!                                     # is published once its changes are in the store
//! url = "https://127.0.0.1:8443"      # the platform's origin
//! ca = "../demo-out/certs/ca.pem"     # CA certificates the platform's server certificate chains to
//! certificate = "../demo-out/certs/terminal-141309.pem"  # the terminal certificate (PEM), whose
//! key = "../demo-out/certs/terminal-141309.key"          # SAN URI names the insurer, and its key
//! batch_rows = 32768                  # change rows per batch
//! retry_seconds = 120                 # retry 5xx and broken connections this long, then fail
//! serve = "demo-platform.toml"        # demo only: start this reference platform in the run when
//!                                     # nothing answers at `url`
//! ```

use crate::map::layout::ModeName;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// The job's name.
    pub name: String,
    /// When `kiban schedule <jobs-dir>` runs this job: a cron expression, evaluated in the machine's
    /// local time zone (set `TZ=Asia/Tokyo` in the service's environment if the machine runs on UTC).
    /// Five fields `minute hour day-of-month month day-of-week` (`0 2 * * *`: every night at 02:00;
    /// `30 1 5 * *`: 01:30 on the 5th of each month; `0 3 * * MON-FRI`), or six with seconds first
    /// (`*/30 * * * * *`). Ranges, lists and steps (`1-5`, `1,15`, `*/10`), month and weekday
    /// names, `L` (last day of the month), `W`, `#` (nth weekday) and the nicknames `@daily`,
    /// `@weekly`, `@monthly` are accepted (the `croner` crate's syntax). Jobs without a schedule
    /// are left to `kiban run` (cron, systemd timers). An expression that does not parse is a
    /// configuration error (exit 2).
    #[serde(default)]
    pub schedule: Option<String>,
    /// 保険者番号 (6 digits).
    pub insurer_no: String,
    /// The store directory.
    pub store: PathBuf,
    /// The ledger: a SQLite file path (relative to the job file, created on first use), a
    /// `sqlite:` URL, or a `postgres://user@host/db` URL (give the password in `PGPASSWORD` or
    /// `~/.pgpass` rather than here). Default: `_ledger.sqlite` in the store directory.
    #[serde(default)]
    pub ledger: Option<String>,
    /// The 外字 table (SPEC §4.6).
    #[serde(default)]
    pub gaiji: Option<PathBuf>,
    /// What a file error does to the load.
    #[serde(default)]
    pub on_file_error: FileErrorPolicy,
    /// The exports to load.
    pub sources: Vec<SourceConfig>,
    /// Rule files of this municipality, added to the shipped rules: paths relative to the job file,
    /// each named `<record_set>.rules.toml` (format: `pipeline/validate/rules.rs`).
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Where loads are published (SPEC §9). Without it, a load counts as published once its
    /// changes are in the store's `_changes`.
    #[serde(default)]
    pub platform: Option<PlatformTarget>,
}

/// A job's platform: endpoint, trust and terminal identity.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct PlatformTarget {
    /// The platform's origin, `https://host[:port]`.
    pub url: String,
    /// CA certificates (PEM) the platform's server certificate must chain to.
    pub ca: PathBuf,
    /// The terminal certificate (PEM chain); its SAN URI `urn:kiban:insurer:<no>` must name the
    /// job's insurer. Give `certificate` and `key`, or `pkcs12`.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// The terminal certificate's private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The terminal certificate and key as one PKCS#12 file (as 電子請求受付システム issues them).
    #[serde(default)]
    pub pkcs12: Option<PathBuf>,
    /// The environment variable holding the PKCS#12 password (for scheduled jobs).
    #[serde(default)]
    pub pkcs12_password_env: Option<String>,
    /// A file (mode 0600) whose first line is the PKCS#12 password. Without either, the password
    /// is asked on the terminal.
    #[serde(default)]
    pub pkcs12_password_file: Option<PathBuf>,
    /// Change rows per batch (default 32768).
    #[serde(default)]
    pub batch_rows: Option<usize>,
    /// How long to retry a platform that answers 5xx or cannot be reached before the run fails
    /// (default 120 s). The load stays stored; the next run resumes publishing it.
    #[serde(default)]
    pub retry_seconds: Option<u64>,
    /// A reference platform configuration (`kiban platform serve --config`) that the run starts
    /// in its own process when nothing answers at `url`, and stops when it ends: the demo's
    /// self-contained setup. Leave it out for a real platform.
    #[serde(default)]
    pub serve: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileErrorPolicy {
    /// A rejected file fails the whole load: nothing is stored, exit 1.
    FailLoad,
    /// A rejected file is left out (nothing of it is loaded, SPEC §4.1); the other files load and
    /// the run exits 3. When every file is rejected, nothing is stored and the run exits 1.
    #[default]
    SkipFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A path or glob, relative to the job file.
    pub path: String,
    /// A shipped mapping name or a path to a mapping file.
    pub mapping: String,
    /// Overrides the mapping's mode.
    #[serde(default)]
    pub mode: Option<ModeName>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Abort the load when a file quarantines more than this share of its records (0.01 = 1%).
    #[serde(default)]
    pub max_quarantined_ratio: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobConfigError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

pub struct Job {
    pub file: JobFile,
    /// The directory of the job file, which relative paths start from.
    pub dir: PathBuf,
    pub path: PathBuf,
}

/// Parses a job's `schedule` (see [`JobFile::schedule`]): five cron fields, or six with seconds
/// first; no year field.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    use croner::parser::{CronParser, Seconds, Year};
    CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build().parse(expr)
}

impl Job {
    pub fn load(path: &Path) -> Result<Job, JobConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobConfigError::Io { path: path.to_path_buf(), source })?;
        let file: JobFile = toml::from_str(&text).map_err(|source| JobConfigError::Toml { path: path.to_path_buf(), source })?;
        let invalid = |reason: String| JobConfigError::Invalid { path: path.to_path_buf(), reason };
        if file.insurer_no.len() != 6 || !file.insurer_no.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("insurer_no `{}` is not 6 digits", file.insurer_no)));
        }
        if let Some(expr) = &file.schedule
            && let Err(e) = parse_schedule(expr)
        {
            return Err(invalid(format!("schedule `{expr}`: {e}")));
        }
        if file.sources.is_empty() {
            return Err(invalid("a job needs at least one [[sources]]".into()));
        }
        if let Some(r) = file.thresholds.max_quarantined_ratio
            && !(0.0..=1.0).contains(&r)
        {
            return Err(invalid("thresholds.max_quarantined_ratio must be between 0 and 1".into()));
        }
        if let Some(p) = &file.platform {
            if !p.url.starts_with("https://") {
                return Err(invalid(format!("platform.url `{}` must start with https://", p.url)));
            }
            if p.batch_rows == Some(0) {
                return Err(invalid("platform.batch_rows must be above 0".into()));
            }
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        Ok(Job { file, dir, path: path.to_path_buf() })
    }

    /// Where this job's ledger lives (see [`JobFile::ledger`]).
    pub fn ledger_location(&self) -> crate::ledger::LedgerLocation {
        match &self.file.ledger {
            Some(v) => crate::ledger::LedgerLocation::parse(v, &self.dir),
            None => crate::ledger::LedgerLocation::Sqlite(self.resolve(&self.file.store).join("_ledger.sqlite")),
        }
    }

    /// The job's publish target: TLS configuration from its certificate files. `None` without
    /// a `[platform]`.
    pub fn publish_target(&self) -> Result<Option<crate::publish::Target>, JobConfigError> {
        let Some(p) = &self.file.platform else { return Ok(None) };
        let invalid = |reason: String| JobConfigError::Invalid { path: self.path.clone(), reason };
        let source = self.terminal_source()?.ok_or_else(|| invalid("platform: give certificate and key, or pkcs12".into()))?;
        let identity = crate::identity::tls::TerminalIdentity::load(&source).map_err(|e| {
            let hint = match &e {
                crate::identity::tls::IdentityError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    " (for a test or demo setup, `kiban certs demo --out <dir>` makes throwaway certificates)"
                }
                _ => "",
            };
            invalid(format!("platform terminal certificate: {e}{hint}"))
        })?;
        if !identity.identity.insurers.contains(&self.file.insurer_no) {
            return Err(invalid(format!(
                "the terminal certificate {} names insurer(s) [{}], not this job's {}",
                match &source {
                    crate::identity::tls::TerminalSource::Pem { certificate, .. } => certificate.display(),
                    crate::identity::tls::TerminalSource::Pkcs12 { path, .. } => path.display(),
                },
                identity.identity.insurers.join(", "),
                self.file.insurer_no
            )));
        }
        let tls =
            crate::identity::tls::client_config(&self.resolve(&p.ca), Some(identity)).map_err(|e| invalid(format!("platform: {e}")))?;
        Ok(Some(crate::publish::Target::new(&p.url, tls, p.retry_seconds, p.batch_rows)))
    }

    /// Where the job's terminal identity is kept (`None` without a `[platform]`).
    pub fn terminal_source(&self) -> Result<Option<crate::identity::tls::TerminalSource>, JobConfigError> {
        use crate::identity::tls::{PasswordSource, TerminalSource};
        let Some(p) = &self.file.platform else { return Ok(None) };
        let invalid = |reason: &str| JobConfigError::Invalid { path: self.path.clone(), reason: format!("platform: {reason}") };
        match (&p.certificate, &p.key, &p.pkcs12) {
            (Some(c), Some(k), None) => Ok(Some(TerminalSource::Pem { certificate: self.resolve(c), key: self.resolve(k) })),
            (None, None, Some(f)) => {
                let password = match (&p.pkcs12_password_env, &p.pkcs12_password_file) {
                    (Some(v), None) => PasswordSource::Env(v.clone()),
                    (None, Some(f)) => PasswordSource::File(self.resolve(f)),
                    (None, None) => PasswordSource::Prompt,
                    (Some(_), Some(_)) => return Err(invalid("give pkcs12_password_env or pkcs12_password_file, not both")),
                };
                Ok(Some(TerminalSource::Pkcs12 { path: self.resolve(f), password }))
            }
            _ => Err(invalid("give certificate and key (PEM), or pkcs12, not both")),
        }
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) }
    }
}
