//! Running a load: read → decode → map → store.

use super::catalog::{Catalog, CatalogError};
use super::config::{FileErrorPolicy, Job, JobConfigError};
use crate::codec::gaiji::GaijiTable;
use crate::map::compile::Layout;
use crate::map::ingest::{FileContext, FileError, FileStats, ingest_file};
use crate::map::layout::ModeName;
use crate::map::quarantine::{WarningBuilder, quarantine_schema, warning_schema};
use crate::map::rowset::finalize;
use crate::store::{InputEntry, LoadOutput, Manifest, Store, StoreError};
use arrow::record_batch::RecordBatch;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] JobConfigError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{job}: {reason}")]
    Invalid { job: String, reason: String },
    #[error("{file}: file rejected: {source}")]
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
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl RunError {
    /// Exit status of SPEC §11: 2 for usage or configuration errors, 1 for failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Config(_) | RunError::Catalog(_) | RunError::Invalid { .. } => 2,
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
    /// Snapshot sets: published rows kept because their records were quarantined (SPEC §8).
    pub kept_for_quarantined: u64,
    /// Snapshot sets: a quarantined record's key could not be read, so this load deleted nothing.
    pub deletes_suppressed: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadSummary {
    pub job: String,
    pub insurer_no: String,
    pub load_id: String,
    pub version: u64,
    pub store: PathBuf,
    pub files: Vec<FileSummary>,
    pub record_sets: Vec<SetSummary>,
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

fn new_load_id() -> String {
    let now = chrono::Utc::now();
    let salt = (now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xFFFF;
    format!("{}-{salt:04x}", now.format("%Y%m%dT%H%M%SZ"))
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
pub fn run_job(job: &Job, progress: &dyn Progress) -> Result<LoadSummary, RunError> {
    let catalog = Catalog::embedded()?;
    let insurer = job.file.insurer_no.as_str();
    let invalid = |reason: String| RunError::Invalid { job: job.path.display().to_string(), reason };

    // Configuration first: every layout compiles before any data is read.
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

    // Read, decode and map every file.
    let mut files = Vec::new();
    let mut set_rows: BTreeMap<String, Vec<crate::map::builder::SetRows>> = BTreeMap::new();
    let mut quarantine: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    let mut warnings: Vec<RecordBatch> = Vec::new();
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
        let ctx = FileContext { layout, eras: &catalog.eras, gaiji: &gaiji, insurer_no: insurer, file_name: &p.name, file_seq: seq as u32 };
        let started = std::time::Instant::now();
        let res = ingest_file(&ctx, &p.path, &mut |n| progress.bytes(n));
        match &res {
            Ok(out) => tracing::info!(file = %p.name, layout = %layout.name, read = out.stats.read, accepted = out.stats.accepted,
                quarantined = out.stats.quarantined, seconds = started.elapsed().as_secs_f64(), "file read"),
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
            Ok(out) => {
                if let Some(max) = job.file.thresholds.max_quarantined_ratio
                    && out.stats.read > 0
                    && out.stats.quarantined as f64 / out.stats.read as f64 > max
                {
                    return Err(RunError::Threshold {
                        file: p.name.clone(),
                        quarantined: out.stats.quarantined,
                        read: out.stats.read,
                        threshold: max,
                    });
                }
                for (o, rows) in layout.outputs.iter().zip(out.rows) {
                    set_rows.entry(o.set.name.clone()).or_default().push(rows);
                }
                let keep = keep.entry(layout.primary_record_set.name.clone()).or_default();
                keep.keys.extend(out.quarantined_keys);
                keep.all |= out.unreadable_keys > 0;
                quarantine.entry(layout.primary_record_set.name.clone()).or_default().push(out.quarantine);
                warnings.push(out.warnings);
                order_keys.push((out.order_key, p.name.clone(), seq as u32));
                files.push(FileSummary { file: p.name.clone(), layout: layout.name.clone(), stats: out.stats, rejected: None });
            }
            Err(e) => match job.file.on_file_error {
                FileErrorPolicy::FailLoad => return Err(RunError::File { file: p.name.clone(), source: e }),
                FileErrorPolicy::SkipFile => {
                    tracing::error!(file = %p.name, "file rejected and skipped: {e}");
                    files.push(FileSummary {
                        file: p.name.clone(),
                        layout: layout.name.clone(),
                        stats: FileStats::default(),
                        rejected: Some(e.to_string()),
                    });
                }
            },
        }
    }
    progress.finish();
    if files.iter().all(|f| f.rejected.is_some()) {
        let first = files.iter().find_map(|f| f.rejected.as_ref().map(|r| format!("{}: file rejected: {r}", f.file))).unwrap_or_default();
        return Err(RunError::AllRejected { first });
    }

    // Files of a load are applied by their header's order fields, then by name (SPEC §5.2).
    order_keys.sort();
    let mut rank = vec![0u32; planned.len()];
    for (r, (_, _, seq)) in order_keys.iter().enumerate() {
        rank[*seq as usize] = r as u32;
    }
    let previous: Option<Manifest> = store.latest(insurer)?;
    let mut sets_out = Vec::new();
    let mut summaries = Vec::new();
    let mut conflict_warnings = WarningBuilder::default();
    // Finalise the record sets on every core, the largest first.
    let mut work: Vec<(String, Vec<crate::map::builder::SetRows>)> = set_rows.into_iter().collect();
    work.sort_by_key(|(_, parts)| std::cmp::Reverse(parts.iter().map(|p| p.order_date.len()).sum::<usize>()));
    let finished = crate::parallel::par_map(work, |(name, parts)| -> Result<_, RunError> {
        let Some(schema) = catalog.schemas.get(&name).cloned() else { return Ok(None) };
        let mode = set_modes.get(&name).copied().unwrap_or(ModeName::Incremental);
        // A snapshot set needs its previous rows only to keep those of quarantined records.
        let keep_previous = keep.get(&name).filter(|k| mode == ModeName::Snapshot && (k.all || !k.keys.is_empty()));
        let prev = match (mode, previous.as_ref().and_then(|m| m.record_sets.get(&name))) {
            (ModeName::Incremental, Some(entry)) => Some(store.read_snapshot(&schema, entry)?),
            (ModeName::Snapshot, Some(entry)) if keep_previous.is_some() => Some(store.read_snapshot(&schema, entry)?),
            _ => None,
        };
        let had_previous = prev.is_some();
        let fin = finalize(&schema, parts, &|seq| rank.get(seq as usize).copied().unwrap_or(0), prev, keep_previous)?;
        let deletes_suppressed = had_previous && keep_previous.is_some_and(|k| k.all);
        if deletes_suppressed {
            tracing::warn!(record_set = %name, "a quarantined record's key could not be read: this load deletes no {name} rows");
        }
        Ok(Some((name, schema, mode, fin, deletes_suppressed)))
    });
    let mut finished: Vec<_> = finished.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect();
    finished.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, schema, mode, fin, deletes_suppressed) in finished {
        for c in &fin.conflicts {
            let msg = format!(
                "{} record {} and {} record {} have the same {} key with different content; the later ({} record {}) wins",
                c.earlier.0, c.earlier.1, c.later.0, c.later.1, name, c.later.0, c.later.1
            );
            tracing::warn!(record_set = %name, "{msg}");
            conflict_warnings.push(&c.later.0, c.later.1 as u64, Some(&name), "key_conflict", None, &msg);
        }
        summaries.push(SetSummary {
            record_set: name.clone(),
            mode,
            load_rows: fin.load_rows as u64,
            snapshot_rows: fin.batch.num_rows() as u64,
            key_conflicts: fin.conflicts.len() as u64,
            kept_for_quarantined: if mode == ModeName::Snapshot { fin.kept_previous as u64 } else { 0 },
            deletes_suppressed,
        });
        sets_out.push((schema, fin.batch));
    }
    warnings.push(conflict_warnings.finish()?);
    let warnings = arrow::compute::concat_batches(&warning_schema(), &warnings)?;
    let quarantine = quarantine
        .into_iter()
        .map(|(k, v)| Ok((k, arrow::compute::concat_batches(&quarantine_schema(), &v)?)))
        .collect::<Result<Vec<_>, arrow::error::ArrowError>>()?;
    let load_id = new_load_id();
    let inputs = files
        .iter()
        .filter(|f| f.rejected.is_none())
        .map(|f| InputEntry {
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
    let manifest = store.commit(LoadOutput {
        insurer_no: insurer,
        load_id: &load_id,
        sets: sets_out.iter().map(|(s, b)| (s.as_ref(), b.clone())).collect(),
        quarantine,
        warnings: Some(warnings),
        inputs,
    })?;
    Ok(LoadSummary {
        job: job.file.name.clone(),
        insurer_no: insurer.to_string(),
        load_id,
        version: manifest.version,
        store: store.root().to_path_buf(),
        files,
        record_sets: summaries,
    })
}
