//! Running a load: read → decode → map → validate → store → diff, recorded in the ledger.
//!
//! ```text
//!  job ─► plan (rules, layouts, inputs; exit 2 on errors) ─► lock the insurer ─► open the ledger
//!      ─► finish or roll back interrupted loads ─► hash the inputs → load id
//!      ─► "already loaded"? ─► begin_load ─► read/validate ─► storing ─► commit ─► stored
//!      ─► diffing ─► _changes ─► diffed ─► published
//! ```
//! Memory does not grow with the load: each file's rows pass the row rules and go to sorted runs
//! in the store's staging directory a part at a time (`map::spill`); later-wins merges the runs,
//! and the previous snapshot where the mode asks for it, straight into the new version's snapshot
//! files (`map::merge`); the set rules read those files (and the published ones) through
//! DataFusion, and a set whose rows they withhold is merged once more without them; the commit
//! then names the files in the manifest.
//!
//! ```text
//!  files ─► parts ─► row rules ─► runs (staging) ─► merge ◄─ previous snapshot
//!                                                     │
//!                      set rules (DataFusion) ◄── version=<v>/part-0.parquet ─► manifest ─► diff
//! ```
//!
//! The load id is derived from the job, the insurer and the inputs' SHA-256: rerunning the same
//! inputs finds the load again (a no-op once it is published, a new attempt when it failed or
//! was interrupted). The state machine is documented in `ledger`.

use super::catalog::{Catalog, CatalogError};
use super::config::{FileErrorPolicy, Job, JobConfigError};
use super::warnings::WarningSink;
use crate::codec::gaiji::GaijiTable;
use crate::diff::{ChangeCounts, DiffError};
use crate::ledger::{FileRecord, Ledger, LedgerError, LoadRecord, LoadStatus, NewFile, NewLoad, SetRecord, VersionRecord};
use crate::map::compile::Layout;
use crate::map::ingest::{FileContext, FileError, FileStats, ingest_parts};
use crate::map::layout::ModeName;
use crate::map::merge::{MergeSpec, Merged, Previous, merge};
use crate::map::quarantine::WarningEntry;
use crate::map::quarantine::quarantine_schema;
use crate::map::rowset::KeepPrevious;
use crate::map::spill::{Run, RunWriter, SpillError};
use crate::schema::RecordSetSchema;
use crate::store::{InputEntry, LoadOutput, Manifest, SetOutput, Store, StoreError};
use crate::validate::apply::Findings;
use crate::validate::apply::{apply_row_rules, apply_set_rules_to_files};
use crate::validate::rules::parse_rule_file;
use crate::validate::{SetTables, ValidateError, Validator};
use arrow::record_batch::RecordBatch;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] JobConfigError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{job}: {reason}")]
    Invalid { job: String, reason: String },
    #[error("{file}: file rejected ({}): {source}", source.code())]
    File { file: String, source: FileError },
    #[error(
        "{file}: {quarantined} of {read} records quarantined, over the job's threshold of {threshold}; the load is aborted and nothing is stored"
    )]
    Threshold { file: String, quarantined: u64, read: u64, threshold: f64 },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("every input file was rejected; nothing is stored ({first})")]
    AllRejected { first: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Diff(#[from] DiffError),
    #[error("{file}: the file changed while it was being loaded (SHA-256 {before} before reading, {after} after); nothing is stored")]
    InputChanged { file: String, before: String, after: String },
    #[error("store {store}: {reason}")]
    Inconsistent { store: String, reason: String },
    #[error(transparent)]
    Validate(#[from] ValidateError),
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("publishing: {0}; the load stays stored, and the next run of the job (or `kiban publish`) resumes it")]
    Publish(Box<crate::publish::PublishError>),
    #[error("starting the job's reference platform: {0}")]
    Platform(Box<crate::platform::PlatformError>),
    #[error("no load {0} in the ledger")]
    NoSuchLoad(String),
    #[error(transparent)]
    Spill(#[from] SpillError),
}

impl From<crate::publish::PublishError> for RunError {
    fn from(e: crate::publish::PublishError) -> Self {
        RunError::Publish(Box::new(e))
    }
}

impl From<crate::platform::PlatformError> for RunError {
    fn from(e: crate::platform::PlatformError) -> Self {
        RunError::Platform(Box::new(e))
    }
}

impl RunError {
    /// Exit status of SPEC §11: 2 for usage or configuration errors, 1 for failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_)
            | RunError::Catalog(_)
            | RunError::Invalid { .. }
            | RunError::NoSuchLoad(_)
            | RunError::Validate(ValidateError::Rule { .. })
            | RunError::Ledger(
                LedgerError::Open { .. } | LedgerError::Newer { .. } | LedgerError::Invalid { .. } | LedgerError::Migrate { .. },
            ) => 2,
            RunError::Platform(p)
                if matches!(**p, crate::platform::PlatformError::Config(_) | crate::platform::PlatformError::Identity(_)) =>
            {
                2
            }
            _ => 1,
        }
    }
}

/// Counts of one input file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileSummary {
    pub file: String,
    pub layout: String,
    pub stats: FileStats,
    /// Set when the file was rejected (and skipped under `on_file_error = "skip_file"`).
    pub rejected: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SetSummary {
    pub record_set: String,
    pub mode: ModeName,
    /// Rows this load contributed, after later-wins per key.
    pub load_rows: u64,
    /// Rows of the new snapshot.
    pub snapshot_rows: u64,
    pub key_conflicts: u64,
    /// Rows of this load withheld by error rules of the validate stage.
    pub quarantined_rows: u64,
    /// Snapshot sets: published rows kept because their records were quarantined (SPEC §8).
    pub kept_for_quarantined: u64,
    /// Snapshot sets: a quarantined record's key could not be read, so this load deleted nothing.
    pub deletes_suppressed: bool,
    /// Inserts, updates and deletes against the last published version (SPEC §8).
    pub changes: ChangeCounts,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadSummary {
    pub job: String,
    pub insurer_no: String,
    pub load_id: String,
    pub version: u64,
    /// The published version this load was diffed from.
    pub base_version: Option<u64>,
    pub store: PathBuf,
    pub files: Vec<FileSummary>,
    pub record_sets: Vec<SetSummary>,
    /// The platform's receipt, when the job names a platform.
    pub published: Option<Box<crate::publish::Published>>,
}

/// A rerun of inputs that are already loaded: nothing was done.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlreadyLoaded {
    pub job: String,
    pub insurer_no: String,
    pub load_id: String,
    pub version: Option<u64>,
    pub finished_at: Option<String>,
}

/// What `run_job` did; printed as JSON with a `status` of `loaded` or `already_loaded`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunOutcome {
    Loaded(LoadSummary),
    AlreadyLoaded(AlreadyLoaded),
}

impl RunOutcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunOutcome::Loaded(s) => s.exit_code(),
            RunOutcome::AlreadyLoaded(_) => 0,
        }
    }
}

impl LoadSummary {
    pub fn quarantined(&self) -> u64 {
        self.files.iter().map(|f| f.stats.quarantined).sum()
    }

    /// 0 success, 3 stored with quarantined records or skipped files.
    pub fn exit_code(&self) -> i32 {
        if self.quarantined() > 0 || self.files.iter().any(|f| f.rejected.is_some()) { 3 } else { 0 }
    }
}

/// Hooks for progress reporting; called from the ingestion threads.
pub trait Progress: Sync {
    fn start_file(&self, _name: &str, _bytes: u64) {}
    fn bytes(&self, _n: usize) {}
    fn finish(&self) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

struct Planned {
    path: PathBuf,
    name: String,
    layout: usize,
    mode: ModeName,
}

/// Runs a job: loads every source file and commits a new version of the insurer's store.
pub fn run_job(job: &Job, progress: &dyn Progress) -> Result<RunOutcome, RunError> {
    let catalog = Catalog::embedded()?;
    let insurer = job.file.insurer_no.as_str();
    let invalid = |reason: String| RunError::Invalid { job: job.path.display().to_string(), reason };

    // Configuration first: every rule and every layout compiles before any data is read.
    let mut rules = catalog.rules.clone();
    for p in &job.file.rules {
        let path = job.resolve(p);
        let shown = path.display().to_string();
        let set = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".rules.toml")).unwrap_or("");
        if catalog.schemas.get(set).is_none() {
            return Err(invalid(format!("rule file {shown}: name it <record_set>.rules.toml, with a record set of `kiban schema list`")));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io { path: shown.clone(), source })?;
        rules.extend(parse_rule_file(&shown, set, &text).map_err(CatalogError::from)?);
    }
    let validator = Validator::compile(&catalog.schemas.sets, &rules, &catalog.codes, crate::validate::functions::today_in_japan())?;
    let mut layouts: Vec<Layout> = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    for src in &job.file.sources {
        let layout = catalog.layout(&src.mapping, &job.dir)?;
        let mode = src.mode.unwrap_or(layout.mode);
        let pattern = job.resolve(std::path::Path::new(&src.path));
        let pattern_s = pattern.to_string_lossy().to_string();
        let mut paths: Vec<PathBuf> = glob::glob(&pattern_s)
            .map_err(|e| invalid(format!("source path `{}`: {e}", src.path)))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        if paths.is_empty() {
            tracing::warn!(source = %src.path, "no file matches this source");
        }
        let li = layouts.len();
        layouts.push(layout);
        for p in paths {
            let name = p.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            if planned.iter().any(|x| x.path == p) {
                return Err(invalid(format!("{} matches two sources", p.display())));
            }
            // Rows name their file by name (source_file): two inputs of one name would be ambiguous.
            if let Some(other) = planned.iter().find(|x| x.name == name) {
                return Err(invalid(format!("{} and {} have the same file name; rename one", other.path.display(), p.display())));
            }
            planned.push(Planned { path: p, name, layout: li, mode });
        }
    }
    if planned.is_empty() {
        return Err(invalid("no input files: no source path matches a file".into()));
    }
    // One mode per record set.
    let mut set_modes: BTreeMap<String, ModeName> = BTreeMap::new();
    for p in &planned {
        for s in layouts[p.layout].record_sets() {
            if let Some(m) = set_modes.insert(s.to_string(), p.mode)
                && m != p.mode
            {
                return Err(invalid(format!("record set {s} is fed in both snapshot and incremental mode")));
            }
        }
    }
    let gaiji = match &job.file.gaiji {
        Some(p) => {
            let path = job.resolve(p);
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io { path: path.display().to_string(), source })?;
            GaijiTable::from_tsv(&text).map_err(|source| CatalogError::Gaiji { file: path.display().to_string(), source })?
        }
        None => catalog.shipped_gaiji(insurer)?.unwrap_or_default(),
    };
    let store = Store::open(job.resolve(&job.file.store))?;
    // One run per insurer and store; the ledger is opened (and migrated) under the lock.
    let _lock = store.lock(insurer, &format!("job {} ({})", job.file.name, job.path.display()))?;
    let target = job.publish_target()?;
    let _platform = serve_if_needed(job)?;
    let ledger = Ledger::open(&job.ledger_location())?;
    let base = reconcile(&ledger, &store, &catalog.schemas, insurer, target.as_ref())?;
    let base_version = base.as_ref().map(|m| m.version);

    let inputs = hash_inputs(&planned, &layouts);
    let load_id = load_id_for(&job.file.name, insurer, &inputs);
    if let Some(done) = ledger.load(&load_id)?
        && done.status == LoadStatus::Published
    {
        tracing::info!(load = %load_id, version = ?done.version, "these input files are already loaded; nothing to do");
        return Ok(RunOutcome::AlreadyLoaded(AlreadyLoaded {
            job: job.file.name.clone(),
            insurer_no: insurer.to_string(),
            load_id,
            version: done.version,
            finished_at: done.finished_at,
        }));
    }
    let inputs_sha256 = inputs_fingerprint(&inputs);
    ledger.begin_load(&NewLoad {
        load_id: &load_id,
        job: &job.file.name,
        insurer_no: insurer,
        inputs_sha256: &inputs_sha256,
        base_version,
        files: &inputs,
    })?;
    tracing::info!(load = %load_id, base_version = ?base_version, files = inputs.len(), "load started");
    crate::fault::point("reading");
    let mut stage = std::time::Instant::now();
    let version = base_version.map_or(1, |v| v + 1);
    let staging = store.staging_dir(insurer, &load_id);
    let result = (|| -> Result<LoadSummary, RunError> {
        // A crash may have left a staging directory: this run starts from none.
        store.clear_staging(insurer)?;
        let runs_dir = staging.join("runs");
        // Read, decode and map every file; each file's rows go through the row rules and into
        // sorted runs in staging a part at a time (`map::spill`), so no stage holds the load.
        let mut files = Vec::new();
        let mut set_runs: BTreeMap<String, Vec<Run>> = BTreeMap::new();
        let mut findings = Findings::default();
        let mut quarantine: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
        let mut warnings = WarningSink::new(&store, insurer, &load_id);
        let mut order_keys: Vec<(Vec<String>, String, u32)> = Vec::new();
        let mut keep: BTreeMap<String, crate::map::rowset::KeepPrevious> = BTreeMap::new();
        // Files are independent until their rows are combined: read them on every core, then apply
        // the outcomes in file order, so results do not depend on scheduling. Files are handed out in
        // order, so when a failing load stops starting new files, every file before the failure has
        // been read.
        let abort = std::sync::atomic::AtomicBool::new(false);
        let outcomes = crate::parallel::par_map((0..planned.len()).collect(), |seq| {
            if abort.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let p = &planned[seq];
            let layout = &layouts[p.layout];
            progress.start_file(&p.name, std::fs::metadata(&p.path).map(|m| m.len()).unwrap_or(0));
            let ctx =
                FileContext { layout, eras: &catalog.eras, gaiji: &gaiji, insurer_no: insurer, file_name: &p.name, file_seq: seq as u32 };
            let started = std::time::Instant::now();
            let res = read_file(&ctx, &p.path, &validator, &runs_dir, progress);
            match &res {
                Ok(f) => {
                    tracing::info!(file = %p.name, layout = %layout.name, read = f.outcome.stats.read, accepted = f.outcome.stats.accepted,
                quarantined = f.outcome.stats.quarantined, seconds = started.elapsed().as_secs_f64(), "file read")
                }
                Err(ReadFailure::Load(_)) => abort.store(true, std::sync::atomic::Ordering::Relaxed),
                Err(_) if job.file.on_file_error == FileErrorPolicy::FailLoad => abort.store(true, std::sync::atomic::Ordering::Relaxed),
                Err(_) => {}
            }
            Some(res)
        });
        for (seq, (p, res)) in planned.iter().zip(outcomes).enumerate() {
            let layout = &layouts[p.layout];
            // A failing load returns at its first error below, before any file it did not start.
            let Some(res) = res else {
                return Err(RunError::Internal(format!("{}: the file was not read", p.name)));
            };
            match res {
                Ok(read) => {
                    let out = read.outcome;
                    // Record errors alone may already exceed the threshold: stop before validating.
                    check_threshold(job, &p.name, &out.stats)?;
                    for (o, runs) in layout.outputs.iter().zip(read.runs) {
                        set_runs.entry(o.set.name.clone()).or_default().extend(runs);
                    }
                    findings.extend(read.findings);
                    let keep = keep.entry(layout.primary_record_set.name.clone()).or_default();
                    keep.keys.extend(out.quarantined_keys);
                    keep.all |= out.unreadable_keys > 0;
                    quarantine.entry(layout.primary_record_set.name.clone()).or_default().push(out.quarantine);
                    warnings.push_batch(&out.warnings)?;
                    order_keys.push((out.order_key, p.name.clone(), seq as u32));
                    files.push(FileSummary { file: p.name.clone(), layout: layout.name.clone(), stats: out.stats, rejected: None });
                }
                // Not the file's fault (a rule failed to run, staging could not be written): the load
                // fails whatever the policy.
                Err(ReadFailure::Load(e)) => return Err(e),
                Err(ReadFailure::File(e)) => match job.file.on_file_error {
                    FileErrorPolicy::FailLoad => return Err(RunError::File { file: p.name.clone(), source: e }),
                    FileErrorPolicy::SkipFile => {
                        tracing::error!(file = %p.name, "file rejected and skipped: {e}");
                        files.push(FileSummary {
                            file: p.name.clone(),
                            layout: layout.name.clone(),
                            stats: FileStats::default(),
                            rejected: Some(format!("{}: {e}", e.code())),
                        });
                    }
                },
            }
        }
        progress.finish();
        // What was read must be what was hashed when the load was recorded.
        for (f, before) in files.iter().zip(&inputs) {
            if f.rejected.is_none() && !f.stats.sha256.is_empty() && f.stats.sha256 != before.sha256 {
                return Err(RunError::InputChanged { file: f.file.clone(), before: before.sha256.clone(), after: f.stats.sha256.clone() });
            }
        }
        if files.iter().all(|f| f.rejected.is_some()) {
            let first =
                files.iter().find_map(|f| f.rejected.as_ref().map(|r| format!("{}: file rejected: {r}", f.file))).unwrap_or_default();
            return Err(RunError::AllRejected { first });
        }
        // Findings by record set, each set's in file order (files were applied in order), then as
        // each file's parts came.
        findings.quarantined.sort_by(|a, b| a.record_set.cmp(&b.record_set));
        findings.warned.sort_by(|a, b| a.record_set.cmp(&b.record_set));
        let mut message = String::new();
        for f in std::mem::take(&mut findings.warned) {
            warn_finding(&validator, &f, &mut warnings, &mut message)?;
        }
        stage_done("read", &mut stage);
        keep_quarantined(&mut keep, &set_modes, &findings);

        // Files of a load are applied by their header's order fields, then by name (SPEC §5.2).
        order_keys.sort();
        let mut rank = vec![0u32; planned.len()];
        for (r, (_, _, seq)) in order_keys.iter().enumerate() {
            rank[*seq as usize] = r as u32;
        }
        let writing = SetWriting {
            store: &store,
            insurer,
            version,
            base: base.as_ref(),
            modes: &set_modes,
            validator: &validator,
            rank: &rank,
            load_dir: staging.join("load"),
        };
        // One row per key for every set, merged into the previous snapshot where the mode says so
        // and written as the new snapshot: the sets on every core, the largest first.
        let mut work: Vec<(String, Vec<Run>)> = set_runs.into_iter().collect();
        work.sort_by_key(|(_, runs)| std::cmp::Reverse(runs.iter().map(|r| r.rows).sum::<u64>()));
        let none = crate::map::spill::KeySet::new();
        let written = crate::parallel::par_map(work, |(name, runs)| -> Result<_, RunError> {
            let Some(schema) = catalog.schemas.get(&name).cloned() else { return Ok(None) };
            let set = writing.write(&schema, &runs, &keep, &none)?;
            Ok(Some((name, (schema, runs, set))))
        });
        let mut sets: BTreeMap<String, (Arc<RecordSetSchema>, Vec<Run>, WrittenSet)> =
            written.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect();
        stage_done("later_wins", &mut stage);

        // Validation, part 2: set rules over this load's rows, the published and the new
        // snapshots, read from their files.
        use crate::validate::engine::{PUBLISHED, SNAPSHOT};
        let mut tables = SetTables::default();
        if validator.has_set_rules() {
            for (name, (_, _, set)) in &sets {
                if set.merged.load_rows > 0 {
                    tables.files.insert((String::new(), name.clone()), vec![set.load_path.clone()]);
                }
                if set.merged.snapshot_rows > 0 && validator.reads(SNAPSHOT, name) {
                    tables.files.insert((SNAPSHOT.into(), name.clone()), vec![store.root().join(&set.file.path)]);
                }
            }
            if let Some(m) = &base {
                for (name, entry) in &m.record_sets {
                    let paths: Vec<PathBuf> = entry.files.iter().map(|f| store.root().join(&f.path)).collect();
                    if entry.rows == 0 || paths.is_empty() {
                        continue;
                    }
                    if validator.reads(PUBLISHED, name) {
                        tables.files.insert((PUBLISHED.into(), name.clone()), paths.clone());
                    }
                    // A set this load did not touch keeps its snapshot.
                    if !sets.contains_key(name) && validator.reads(SNAPSHOT, name) {
                        tables.files.insert((SNAPSHOT.into(), name.clone()), paths);
                    }
                }
            }
        }
        let (set_findings, withheld) =
            apply_set_rules_to_files(&validator, &tables, |f| warn_finding(&validator, &f, &mut warnings, &mut message))?;
        drop(tables);
        keep_quarantined(&mut keep, &set_modes, &set_findings);
        findings.extend(set_findings);
        // A set whose rows a rule withheld is written again without them (and, for a snapshot set,
        // with the published rows of their keys).
        for (name, keys) in &withheld {
            if let Some((schema, runs, set)) = sets.get_mut(name) {
                *set = writing.write(schema, runs, &keep, keys)?;
            }
        }
        stage_done("set_rules", &mut stage);
        let validation = record_findings(&validator, &findings, &planned, &layouts, &mut files, &warnings)?;
        for f in &files {
            check_threshold(job, &f.file, &f.stats)?;
        }
        for (set, batch) in validation.quarantine {
            quarantine.entry(set).or_default().push(batch);
        }

        let mut sets_out = Vec::new();
        let mut summaries = Vec::new();
        for (name, (_, _, set)) in sets {
            let mode = set_modes.get(&name).copied().unwrap_or(ModeName::Incremental);
            let deletes_suppressed = set.had_previous && keep_for(&keep, &set_modes, &name).is_some_and(|k| k.all);
            if deletes_suppressed {
                tracing::warn!(record_set = %name, "a quarantined record's key could not be read: this load deletes no {name} rows");
            }
            for c in &set.merged.conflicts {
                let msg = format!(
                    "{} record {} and {} record {} have the same {} key with different content; the later ({} record {}) wins",
                    c.earlier.0, c.earlier.1, c.later.0, c.later.1, name, c.later.0, c.later.1
                );
                tracing::warn!(record_set = %name, "{msg}");
                warnings.push(WarningEntry {
                    file: &c.later.0,
                    record_no: c.later.1 as u64,
                    record_set: Some(&name),
                    kind: "key_conflict",
                    field: None,
                    rule_id: None,
                    message: &msg,
                })?;
            }
            summaries.push(SetSummary {
                record_set: name.clone(),
                mode,
                load_rows: set.merged.load_rows,
                snapshot_rows: set.merged.snapshot_rows,
                key_conflicts: set.merged.conflicts.len() as u64,
                quarantined_rows: validation.withheld.get(&name).copied().unwrap_or(0),
                kept_for_quarantined: if mode == ModeName::Snapshot { set.merged.kept_previous } else { 0 },
                deletes_suppressed,
                changes: ChangeCounts::default(),
            });
            sets_out.push(SetOutput::Written {
                record_set: name,
                file: set.file,
                rows: set.merged.snapshot_rows,
                digest: crate::map::rowset::digest_hex(set.merged.digest),
            });
        }
        let quarantine = quarantine
            .into_iter()
            .map(|(k, v)| Ok((k, arrow::compute::concat_batches(&quarantine_schema(), &v)?)))
            .collect::<Result<Vec<_>, arrow::error::ArrowError>>()?;
        // Rejected files are recorded too (with their reason and no counts), so the store tells an
        // auditor what was left out of the load.
        let input_entries = files
            .iter()
            .map(|f| InputEntry {
                rejected: f.rejected.clone(),
                file: f.file.clone(),
                layout: f.layout.clone(),
                bytes: f.stats.bytes,
                sha256: f.stats.sha256.clone(),
                read: f.stats.read,
                accepted: f.stats.accepted,
                quarantined: f.stats.quarantined,
                warnings: f.stats.warnings,
            })
            .collect();
        // The ledger learns the version and the counts before the store is written.
        ledger.set_storing(&load_id, version, &file_records(&files), &set_records(&summaries))?;
        crate::fault::point("storing");
        let warnings = warnings.finish()?;
        let manifest = store.commit(LoadOutput {
            insurer_no: insurer,
            load_id: &load_id,
            parent_version: base_version,
            sets: sets_out,
            quarantine,
            warnings,
            inputs: input_entries,
            load_rows: summaries.iter().map(|s| (s.record_set.clone(), s.load_rows)).collect(),
        })?;
        stage_done("store", &mut stage);
        crate::fault::point("committed");
        ledger.record_version(&version_record(&store, &manifest, None)?)?;
        crate::fault::point("stored");
        let exit_code = exit_code_of(&files);
        let (changes, published) =
            complete(&ledger, &store, &catalog.schemas, &load_id, base.as_ref(), &manifest, exit_code, target.as_ref())?;
        stage_done("diff_publish", &mut stage);
        for s in summaries.iter_mut() {
            if let Some(c) = changes.get(&s.record_set) {
                s.changes = *c;
            }
        }
        Ok(LoadSummary {
            job: job.file.name.clone(),
            insurer_no: insurer.to_string(),
            load_id: load_id.clone(),
            version: manifest.version,
            base_version,
            store: store.root().to_path_buf(),
            files,
            record_sets: summaries,
            published: published.map(Box::new),
        })
    })();
    if let Err(e) = store.clear_staging(insurer) {
        tracing::warn!(load = %load_id, "removing the load's staging directory: {e}");
    }
    match result {
        Ok(summary) => Ok(RunOutcome::Loaded(summary)),
        Err(e) => {
            if let Err(le) = record_failure(&ledger, &store, insurer, &load_id, &e) {
                tracing::error!(load = %load_id, "recording the failure in the ledger: {le}");
            }
            Err(e)
        }
    }
}

/// `kiban publish <load>`: publishes a stored load of the job that is not yet published (and,
/// first, any load before it), then returns its receipt.
pub fn publish_load(job: &Job, load_id: &str) -> Result<crate::ledger::ReceiptRecord, RunError> {
    let catalog = Catalog::embedded()?;
    let insurer = job.file.insurer_no.as_str();
    let invalid = |reason: String| RunError::Invalid { job: job.path.display().to_string(), reason };
    let Some(target) = job.publish_target()? else { return Err(invalid("the job names no [platform] to publish to".into())) };
    let store = Store::open(job.resolve(&job.file.store))?;
    let _lock = store.lock(insurer, &format!("kiban publish {load_id} (job {})", job.file.name))?;
    let _platform = serve_if_needed(job)?;
    let ledger = Ledger::open(&job.ledger_location())?;
    let load = ledger.load(load_id)?.ok_or_else(|| RunError::NoSuchLoad(load_id.to_string()))?;
    if load.insurer_no != insurer {
        return Err(invalid(format!("load {load_id} is of insurer {}, the job's is {insurer}", load.insurer_no)));
    }
    reconcile(&ledger, &store, &catalog.schemas, insurer, Some(&target))?;
    if let Some(r) = ledger.receipt(load_id)? {
        return Ok(r);
    }
    let load = ledger.load(load_id)?.ok_or_else(|| RunError::NoSuchLoad(load_id.to_string()))?;
    Err(invalid(match load.status {
        LoadStatus::Published => {
            format!("load {load_id} was published before the job had a platform; the next load sends the whole snapshot")
        }
        other => format!("load {load_id} is {other}: nothing of it was stored, so there is nothing to publish"),
    }))
}

/// Why a file was not read: the file (a policy decides), or the load itself.
enum ReadFailure {
    File(FileError),
    Load(RunError),
}

/// One file read: what ingest counted, the runs of each output of its layout (in
/// `layout.outputs` order) and what the row rules found.
struct FileRead {
    outcome: crate::map::ingest::FileOutcome,
    runs: Vec<Vec<Run>>,
    findings: Findings,
}

/// Reads a file, its rows checked by the row rules (before later-wins, so a failing row never
/// replaces a good one) and spilled as sorted runs to `runs_dir` a part at a time.
fn read_file(
    ctx: &FileContext<'_>,
    path: &std::path::Path,
    validator: &Validator,
    runs_dir: &std::path::Path,
    progress: &dyn Progress,
) -> Result<FileRead, ReadFailure> {
    // Parts are checked, hashed and spilled on a thread of their own while the next part is
    // mapped: reading keeps a core only half busy, so the spilling fits beside it.
    std::thread::scope(|scope| {
        let (parts_tx, parts_rx) = std::sync::mpsc::sync_channel::<(usize, crate::map::builder::SetRows)>(1);
        let spiller = scope.spawn(move || -> Result<(Vec<Option<RunWriter>>, Findings), RunError> {
            let mut writers: Vec<Option<RunWriter>> = ctx.layout.outputs.iter().map(|_| None).collect();
            let mut findings = Findings::default();
            for (i, part) in parts_rx {
                let Some(output) = ctx.layout.outputs.get(i) else { continue };
                let set = &output.set;
                let mut parts = BTreeMap::from([(set.name.clone(), vec![part])]);
                findings.extend(apply_row_rules(validator, &mut parts)?);
                let Some(part) = parts.into_values().next().and_then(|mut v| v.pop()) else { continue };
                let writer = match &mut writers[i] {
                    Some(w) => w,
                    None => writers[i].insert(RunWriter::new(set.clone(), runs_dir, ctx.file_seq, i)?),
                };
                writer.push(part)?;
            }
            Ok((writers, findings))
        });
        let outcome = ingest_parts(ctx, path, &mut |n| progress.bytes(n), &mut |i, part| {
            // A send fails only when the spiller stopped; its error is what the load reports.
            parts_tx.send((i, part)).map_err(|_| FileError::Sink("the load stopped keeping the file's rows".into()))
        });
        drop(parts_tx);
        let (writers, findings) = match spiller.join() {
            Ok(spilled) => spilled.map_err(ReadFailure::Load)?,
            Err(_) => return Err(ReadFailure::Load(RunError::Internal(format!("{}: spilling the rows panicked", ctx.file_name)))),
        };
        let outcome = outcome.map_err(ReadFailure::File)?;
        let runs = writers
            .into_iter()
            .map(|w| w.map_or(Ok(Vec::new()), RunWriter::finish))
            .collect::<Result<_, _>>()
            .map_err(|e| ReadFailure::Load(e.into()))?;
        Ok(FileRead { outcome, runs, findings })
    })
}

/// What writing a set's snapshot needs besides the set: the store, the version being written,
/// the base it merges into.
struct SetWriting<'a> {
    store: &'a Store,
    insurer: &'a str,
    version: u64,
    base: Option<&'a Manifest>,
    modes: &'a BTreeMap<String, ModeName>,
    validator: &'a Validator,
    rank: &'a [u32],
    /// Where this load's rows of a set go when the set rules need them apart from the snapshot.
    load_dir: PathBuf,
}

/// A set's new snapshot, written to the version being committed.
struct WrittenSet {
    merged: Merged,
    file: crate::store::StoredFile,
    /// This load's rows of the set, for the set rules: the snapshot itself unless the set merged
    /// into the previous snapshot.
    load_path: PathBuf,
    had_previous: bool,
}

impl SetWriting<'_> {
    /// Later-wins over the set's runs, merged into the previous snapshot where the mode says so
    /// (incremental sets always, snapshot sets to keep the rows of quarantined records), without
    /// the rows of `withheld` keys; streamed into the set's snapshot file.
    fn write(
        &self,
        schema: &RecordSetSchema,
        runs: &[Run],
        keep: &BTreeMap<String, KeepPrevious>,
        withheld: &crate::map::spill::KeySet,
    ) -> Result<WrittenSet, RunError> {
        let name = schema.name.as_str();
        let keep_previous = keep_for(keep, self.modes, name);
        let incremental = self.modes.get(name).copied().unwrap_or(ModeName::Incremental) == ModeName::Incremental;
        let entry = self.base.and_then(|m| m.record_sets.get(name)).filter(|_| incremental || keep_previous.is_some());
        let had_previous = entry.is_some();
        let previous = match (entry.filter(|e| e.rows > 0), keep_previous) {
            (None, _) => Previous::None,
            (Some(e), k) => {
                let batches = self.store.snapshot_batches(schema, e)?.map(|b| b.map_err(|e| SpillError::Sink(Box::new(e))));
                match k {
                    Some(k) if !incremental => Previous::Keep(Box::new(batches), k),
                    _ => Previous::Upsert(Box::new(batches)),
                }
            }
        };
        let store_err = |e: crate::store::StoreError| SpillError::Sink(Box::new(e));
        let mut snapshot = self.store.snapshot_writer(schema, self.insurer, self.version)?;
        // The set rules read this load's rows apart only when they differ from the snapshot.
        let mut load = match had_previous && self.validator.reads_load(name) {
            true => Some(self.store.part_writer(&self.load_dir.join(name), schema.arrow.clone(), None)?),
            false => None,
        };
        let rank = |seq: u32| self.rank.get(seq as usize).copied().unwrap_or(0);
        let spec = MergeSpec { schema, runs, file_rank: &rank, previous, withheld };
        let merged = {
            let mut to_snapshot = |b: RecordBatch| snapshot.write(&b).map_err(store_err);
            let mut to_load = load.as_mut().map(|w| move |b: RecordBatch| w.write(&b).map_err(store_err));
            let to_load: Option<crate::map::merge::Sink<'_>> = to_load.as_mut().map(|f| f as crate::map::merge::Sink<'_>);
            merge(spec, &mut to_snapshot, to_load)?
        };
        let file = snapshot.finish()?;
        let load_path = match load {
            Some(w) => self.store.root().join(w.finish()?.path),
            None => self.store.root().join(&file.path),
        };
        Ok(WrittenSet { merged, file, load_path, had_previous })
    }
}

/// Logs how long a stage of the load took (at debug level: `kiban -v run`), for profiling.
fn stage_done(name: &str, since: &mut std::time::Instant) {
    tracing::debug!(stage = name, seconds = since.elapsed().as_secs_f64(), "stage done");
    *since = std::time::Instant::now();
}

/// 3 when records were quarantined or files skipped, else 0 (SPEC §11).
fn exit_code_of(files: &[FileSummary]) -> i32 {
    if files.iter().any(|f| f.stats.quarantined > 0 || f.rejected.is_some()) { 3 } else { 0 }
}

/// Size and SHA-256 of every input, on every core, before anything is read: they name the load.
/// A file that cannot be read gets an empty hash here; reading it then reports the error.
fn hash_inputs(planned: &[Planned], layouts: &[Layout]) -> Vec<NewFile> {
    crate::parallel::par_map(planned.iter().collect(), |p| {
        let (bytes, sha256) = sha256_file(&p.path).unwrap_or((0, String::new()));
        NewFile { path: p.path.display().to_string(), file_name: p.name.clone(), layout: layouts[p.layout].name.clone(), bytes, sha256 }
    })
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

/// SHA-256 over the inputs' SHA-256, sorted: the same files give the same fingerprint whatever
/// their names or order.
fn inputs_fingerprint(inputs: &[NewFile]) -> String {
    use sha2::Digest;
    let mut hashes: Vec<&str> = inputs.iter().map(|f| f.sha256.as_str()).collect();
    hashes.sort_unstable();
    let mut h = sha2::Sha256::new();
    for x in hashes {
        h.update(x.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The load id: `<insurer>-<16 hex digits>` of SHA-256 over the job name, the insurer and the
/// inputs' fingerprint. The same inputs for the same job give the same id, so a rerun finds its
/// load (done: nothing to do; failed or interrupted: a new attempt of the same load).
pub fn load_id_for(job: &str, insurer: &str, inputs: &[NewFile]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in ["kiban-load-v1", job, insurer, &inputs_fingerprint(inputs)] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("{insurer}-{}", &hex::encode(h.finalize())[..16])
}

fn file_records(files: &[FileSummary]) -> Vec<FileRecord> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| FileRecord {
            seq: i as u64 + 1,
            path: String::new(),
            file_name: f.file.clone(),
            layout: f.layout.clone(),
            bytes: f.stats.bytes,
            sha256: f.stats.sha256.clone(),
            records_read: Some(f.stats.read),
            accepted: Some(f.stats.accepted),
            quarantined: Some(f.stats.quarantined),
            warnings: Some(f.stats.warnings),
            rejected: f.rejected.clone(),
        })
        .collect()
}

fn set_records(sets: &[SetSummary]) -> Vec<SetRecord> {
    sets.iter()
        .map(|s| SetRecord {
            record_set: s.record_set.clone(),
            mode: match s.mode {
                ModeName::Snapshot => "snapshot".into(),
                ModeName::Incremental => "incremental".into(),
            },
            load_rows: s.load_rows,
            snapshot_rows: s.snapshot_rows,
            quarantined_rows: s.quarantined_rows,
            key_conflicts: s.key_conflicts,
            deletes_suppressed: s.deletes_suppressed,
            inserts: None,
            updates: None,
            deletes: None,
        })
        .collect()
}

/// What the ledger records of a committed version: its manifest's path and SHA-256.
fn version_record(store: &Store, m: &Manifest, published_at: Option<String>) -> Result<VersionRecord, RunError> {
    let path = store.manifest_path(&m.insurer_no, m.version);
    let (_, sha) = sha256_file(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
    let rel = path.strip_prefix(store.root()).unwrap_or(&path).to_string_lossy().replace('\\', "/");
    Ok(VersionRecord {
        insurer_no: m.insurer_no.clone(),
        version: m.version,
        load_id: m.load_id.clone(),
        parent_version: m.parent_version,
        manifest_path: rel,
        manifest_sha256: sha,
        committed_at: m.created_at.clone(),
        published_at,
    })
}

/// From `stored` to `published`: the diff against the base, written to `_changes`, then the
/// delivery: to the job's platform (batches, commit, receipt) or, without one, nowhere (the
/// changes are in the store, and the version becomes the base of the next load at once).
#[allow(clippy::too_many_arguments)]
fn complete(
    ledger: &Ledger,
    store: &Store,
    schemas: &crate::schema::SchemaRegistry,
    load_id: &str,
    base: Option<&Manifest>,
    manifest: &Manifest,
    exit_code: i32,
    target: Option<&crate::publish::Target>,
) -> Result<(BTreeMap<String, ChangeCounts>, Option<crate::publish::Published>), RunError> {
    let mut changes = BTreeMap::new();
    let load = ledger.load(load_id)?.ok_or_else(|| RunError::NoSuchLoad(load_id.to_string()))?;
    if matches!(load.status, LoadStatus::Diffed | LoadStatus::Publishing) {
        // Resumed after the diff: its counts are in the ledger.
        for s in ledger.sets(load_id)? {
            let c = ChangeCounts {
                inserts: s.inserts.unwrap_or(0),
                updates: s.updates.unwrap_or(0),
                deletes: s.deletes.unwrap_or(0),
                unchanged: 0,
            };
            changes.insert(s.record_set, c);
        }
    } else {
        let base_shown = base.map_or("nothing".to_string(), |b| format!("version {}", b.version));
        ledger.set_status(load_id, LoadStatus::Diffing, &format!("diffing version {} against {base_shown}", manifest.version))?;
        let started = std::time::Instant::now();
        let written = crate::diff::write_changes(store, schemas, base, manifest)?;
        crate::fault::point("changes-written");
        for (set, c, _) in &written {
            ledger.record_changes(load_id, set, c.inserts, c.updates, c.deletes)?;
            tracing::info!(record_set = %set, inserts = c.inserts, updates = c.updates, deletes = c.deletes, "changes");
            changes.insert(set.clone(), *c);
        }
        let total: u64 = changes.values().map(ChangeCounts::total).sum();
        ledger.set_status(
            load_id,
            LoadStatus::Diffed,
            &format!("{total} changes in {} record sets ({:.2} s)", changes.len(), started.elapsed().as_secs_f64()),
        )?;
        crate::fault::point("diffed");
    }
    let Some(target) = target else {
        // A load that went out to a platform must finish there: marking it published here
        // would leave the platform and the ledger disagreeing about it.
        if load.status == LoadStatus::Publishing || !ledger.batches(load_id)?.is_empty() {
            return Err(RunError::Inconsistent {
                store: store.root().display().to_string(),
                reason: format!(
                    "load {load_id} was being published to a platform; the job needs its [platform] to finish it (then `kiban publish {load_id}`)"
                ),
            });
        }
        ledger.mark_published(
            load_id,
            &manifest.insurer_no,
            manifest.version,
            exit_code,
            "changes written to the store's _changes; this job names no platform to send them to",
        )?;
        return Ok((changes, None));
    };
    // `load` as read above: diffing changed its status only, which publishing does not read.
    let published = crate::publish::publish(ledger, store, schemas, target, &load, manifest, exit_code)?;
    Ok((changes, Some(published)))
}

/// The job's reference platform (`[platform] serve`), started when nothing answers at its URL.
fn serve_if_needed(job: &Job) -> Result<Option<crate::platform::RunningPlatform>, RunError> {
    use std::net::ToSocketAddrs;
    let Some(p) = &job.file.platform else { return Ok(None) };
    let Some(config) = &p.serve else { return Ok(None) };
    let invalid = |reason: String| RunError::Invalid { job: job.path.display().to_string(), reason };
    let uri: hyper::Uri = p.url.parse().map_err(|_| invalid(format!("platform.url `{}` is not a URL", p.url)))?;
    let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_string();
    let addrs: Vec<std::net::SocketAddr> =
        (host.as_str(), uri.port_u16().unwrap_or(443)).to_socket_addrs().map_err(|e| invalid(format!("platform.url: {e}")))?.collect();
    let answering = addrs.iter().any(|a| std::net::TcpStream::connect_timeout(a, std::time::Duration::from_millis(300)).is_ok());
    if answering {
        return Ok(None);
    }
    let config = crate::platform::PlatformConfig::load(&job.resolve(config)).map_err(crate::platform::PlatformError::from)?;
    let running = crate::platform::RunningPlatform::start(config)?;
    tracing::info!(addr = %running.addr, "started the job's reference platform for this run");
    Ok(Some(running))
}

/// Brings the ledger and the store of an insurer into agreement before a load: versions made
/// before the store had a ledger are adopted, interrupted loads are finished or rolled back, and
/// the last published version must be on disk whole. Returns its manifest: the new load's base.
fn reconcile(
    ledger: &Ledger,
    store: &Store,
    schemas: &crate::schema::SchemaRegistry,
    insurer: &str,
    target: Option<&crate::publish::Target>,
) -> Result<Option<Manifest>, RunError> {
    let inconsistent = |reason: String| RunError::Inconsistent { store: store.root().display().to_string(), reason };
    store.sweep_interrupted(insurer)?;
    let on_disk = store.versions(insurer)?;
    if ledger.versions(insurer)?.is_empty() && !on_disk.is_empty() && ledger.pending(insurer)?.is_empty() {
        let mut adopted = Vec::new();
        for &v in &on_disk {
            let m = store.manifest(insurer, v)?;
            let created = m.created_at.clone();
            adopted.push(version_record(store, &m, Some(created))?);
        }
        ledger.adopt_versions(&adopted)?;
        tracing::info!(insurer = %insurer, versions = adopted.len(), "adopted the store's versions, written before it had a ledger, as published");
    }
    for l in ledger.pending(insurer)? {
        resume(ledger, store, schemas, &l, target)?;
    }
    let published = ledger.published_version(insurer)?;
    let latest = store.versions(insurer)?.last().copied();
    let Some(p) = published else {
        return match latest {
            Some(v) => Err(inconsistent(format!(
                "holds version {v} of insurer {insurer}, which the ledger {} does not know (was it written with another ledger?)",
                ledger.location()
            ))),
            None => Ok(None),
        };
    };
    let path = store.manifest_path(insurer, p.version);
    if !path.exists() {
        return Err(StoreError::Missing { path, version: p.version }.into());
    }
    let (_, sha) = sha256_file(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
    if sha != p.manifest_sha256 {
        return Err(inconsistent(format!(
            "the manifest of version {} changed after the ledger recorded it ({})",
            p.version,
            path.display()
        )));
    }
    if let Some(v) = latest.filter(|&v| v > p.version) {
        return Err(inconsistent(format!(
            "holds version {v} of insurer {insurer} above the last published version {}, and no load in the ledger accounts for it",
            p.version
        )));
    }
    let m = store.manifest(insurer, p.version)?;
    if let Some((path, version)) = store.missing_files(&m).into_iter().next() {
        return Err(StoreError::Missing { path, version }.into());
    }
    Ok(Some(m))
}

/// Finishes or rolls back a load that an earlier run left between states (see `ledger`).
fn resume(
    ledger: &Ledger,
    store: &Store,
    schemas: &crate::schema::SchemaRegistry,
    l: &LoadRecord,
    target: Option<&crate::publish::Target>,
) -> Result<(), RunError> {
    let insurer = l.insurer_no.as_str();
    let who = format!("pid {} on {}", l.pid, l.host);
    let base_version = l.base_version.unwrap_or(0);
    let stored = match (l.status, l.version) {
        (LoadStatus::Reading, _) | (LoadStatus::Storing, None) => false,
        (LoadStatus::Storing, Some(v)) => {
            let committed = store.manifest_path(insurer, v).exists() && store.manifest(insurer, v).is_ok_and(|m| m.load_id == l.load_id);
            if committed {
                let m = store.manifest(insurer, v)?;
                ledger.record_version(&version_record(store, &m, None)?)?;
            }
            committed
        }
        _ => true,
    };
    if !stored {
        store.roll_back_above(insurer, base_version)?;
        store.remove_load_outputs(insurer, &l.load_id)?;
        let msg = format!("interrupted while {} ({who}); nothing of it was stored: rolled back", l.status);
        tracing::warn!(load = %l.load_id, "{msg}");
        ledger.finish(&l.load_id, LoadStatus::RolledBack, None, &msg)?;
        return Ok(());
    }
    let Some(version) = l.version else {
        return Err(RunError::Internal(format!("load {} is {} without a version", l.load_id, l.status)));
    };
    tracing::warn!(load = %l.load_id, version, "finishing a load that was interrupted while {} ({who})", l.status);
    let manifest = store.manifest(insurer, version)?;
    let base = match l.base_version {
        Some(b) => Some(store.manifest(insurer, b)?),
        None => None,
    };
    let files = ledger.files(&l.load_id)?;
    let exit_code = if files.iter().any(|f| f.quarantined.unwrap_or(0) > 0 || f.rejected.is_some()) { 3 } else { 0 };
    complete(ledger, store, schemas, &l.load_id, base.as_ref(), &manifest, exit_code, target)?;
    Ok(())
}

/// A load that failed: `failed` in the ledger, unless the store already holds its version, in
/// which case the next run finishes it.
fn record_failure(ledger: &Ledger, store: &Store, insurer: &str, load_id: &str, e: &RunError) -> Result<(), RunError> {
    let Some(l) = ledger.load(load_id)? else { return Ok(()) };
    let committed = l.version.is_some_and(|v| store.manifest(insurer, v).is_ok_and(|m| m.load_id == load_id));
    if committed || !matches!(l.status, LoadStatus::Reading | LoadStatus::Storing) {
        tracing::warn!(load = %load_id, status = %l.status, "the load's version is stored; the next run of the job finishes it");
        return Ok(());
    }
    // Snapshots are written while the load reads (`SetWriting`): their version directories go too.
    store.roll_back_above(insurer, l.base_version.unwrap_or(0))?;
    if l.status == LoadStatus::Storing {
        store.remove_load_outputs(insurer, load_id)?;
    }
    ledger.finish(load_id, LoadStatus::Failed, Some(e.exit_code()), &e.to_string())?;
    Ok(())
}

/// The job's `max_quarantined_ratio`, per file: over it, the load is aborted (exit 1).
fn check_threshold(job: &Job, file: &str, stats: &FileStats) -> Result<(), RunError> {
    match job.file.thresholds.max_quarantined_ratio {
        Some(max) if stats.read > 0 && stats.quarantined as f64 / stats.read as f64 > max => {
            Err(RunError::Threshold { file: file.to_string(), quarantined: stats.quarantined, read: stats.read, threshold: max })
        }
        _ => Ok(()),
    }
}

/// A record withheld by validation never causes a delete (SPEC §8): a snapshot set keeps the
/// published row of its key.
fn keep_quarantined(
    keep: &mut BTreeMap<String, KeepPrevious>,
    modes: &BTreeMap<String, ModeName>,
    findings: &crate::validate::apply::Findings,
) {
    for f in &findings.quarantined {
        if modes.get(&*f.record_set) == Some(&ModeName::Snapshot) {
            keep.entry(f.record_set.to_string()).or_default().keys.insert(f.key.clone());
        }
    }
}

/// The published rows a snapshot set keeps for its quarantined records, if any.
fn keep_for<'a>(keep: &'a BTreeMap<String, KeepPrevious>, modes: &BTreeMap<String, ModeName>, set: &str) -> Option<&'a KeepPrevious> {
    let snapshot = modes.get(set) == Some(&ModeName::Snapshot);
    keep.get(set).filter(|k| snapshot && (k.all || !k.keys.is_empty()))
}

/// What the validate stage adds to a load's output.
struct Validation {
    quarantine: BTreeMap<String, RecordBatch>,
    /// Rows withheld per record set.
    withheld: BTreeMap<String, u64>,
}

/// Turns validation findings into quarantine rows (with each record's raw bytes, read back from
/// its file) and per-file counts (the warnings went to `warnings` as they were found): a record
/// is quarantined when any row it yielded was withheld, so read = accepted + quarantined still
/// holds per file.
fn record_findings(
    v: &Validator,
    findings: &crate::validate::apply::Findings,
    planned: &[Planned],
    layouts: &[Layout],
    files: &mut [FileSummary],
    warnings: &WarningSink<'_>,
) -> Result<Validation, RunError> {
    use crate::map::quarantine::{QuarantineBuilder, QuarantineEntry};
    use std::collections::{BTreeSet, HashMap};
    let describe = |rules: &[usize]| -> (String, String) {
        let ids: Vec<&str> = rules.iter().map(|&r| v.rule(r).id.as_str()).collect();
        let msgs: Vec<String> = rules.iter().map(|&r| format!("{}: {}", v.rule(r).id, v.rule(r).message_en)).collect();
        (ids.join(","), msgs.join("; "))
    };
    // Raw records of the quarantined rows, per file.
    let mut offsets: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for f in &findings.quarantined {
        offsets.entry(&*f.file).or_default().push(f.offset as u64);
    }
    let mut raw: HashMap<&str, HashMap<u64, Vec<u8>>> = HashMap::new();
    for (file, offs) in &offsets {
        let Some(p) = planned.iter().find(|p| p.name == *file) else { continue };
        let got = crate::map::ingest::raw_records_at(&layouts[p.layout], &p.path, offs)
            .map_err(|source| RunError::File { file: file.to_string(), source })?;
        raw.insert(file, got);
    }
    let mut builders: BTreeMap<&str, QuarantineBuilder> = BTreeMap::new();
    let mut withheld: BTreeMap<String, u64> = BTreeMap::new();
    let mut records: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    let mut logged: HashMap<&str, u64> = HashMap::new();
    for f in &findings.quarantined {
        let (ids, msgs) = describe(&f.rules);
        let message = format!("{}: record {}: {}: {msgs}", f.file, f.record, f.record_set);
        let n = logged.entry(&*f.file).or_default();
        *n += 1;
        if *n <= 20 {
            tracing::warn!(file = %f.file, record = f.record, record_set = %f.record_set, rules = %ids, "quarantined by validation: {message}");
        }
        let bytes = raw.get(&*f.file).and_then(|m| m.get(&(f.offset as u64))).map(Vec::as_slice).unwrap_or(&[]);
        builders.entry(&*f.record_set).or_default().push(QuarantineEntry {
            file: &f.file,
            record_no: f.record as u64,
            offset: f.offset as u64,
            record_set: &f.record_set,
            kind: "rule",
            field_no: None,
            field_name: None,
            byte_offset: None,
            rule_ids: Some(&ids),
            message: &message,
            raw: bytes,
        });
        *withheld.entry(f.record_set.to_string()).or_default() += 1;
        records.entry(&*f.file).or_default().insert(f.record);
    }
    for fs in files.iter_mut() {
        let q = records.get(fs.file.as_str()).map_or(0, |r| r.len() as u64);
        fs.stats.quarantined += q;
        fs.stats.accepted = fs.stats.accepted.saturating_sub(q);
        fs.stats.warnings += warnings.rule_warnings(&fs.file);
    }
    let quarantine = builders.into_iter().map(|(k, mut b)| Ok((k.to_string(), b.finish()?))).collect::<Result<_, RunError>>()?;
    Ok(Validation { quarantine, withheld })
}

/// Writes the warnings of a row that failed warning rules, one per rule; `message` is a buffer.
fn warn_finding(
    v: &Validator,
    f: &crate::validate::apply::Finding,
    sink: &mut WarningSink<'_>,
    message: &mut String,
) -> Result<(), RunError> {
    use std::fmt::Write;
    for &r in &f.rules {
        let rule = v.rule(r);
        message.clear();
        let _ = write!(message, "{}: record {}: {}: {}: {}", f.file, f.record, f.record_set, rule.id, rule.message_en);
        // The log shows a file's first few, the warnings file has all: a rule may flag every row.
        if sink.rule_warnings(&f.file) < 20 {
            tracing::debug!(file = %f.file, record = f.record, rule = %rule.id, "warning: {message}");
        }
        sink.push(WarningEntry {
            file: &f.file,
            record_no: f.record as u64,
            record_set: Some(&f.record_set),
            kind: "rule",
            field: None,
            rule_id: Some(&rule.id),
            message,
        })?;
    }
    Ok(())
}
