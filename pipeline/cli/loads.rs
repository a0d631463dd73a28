//! `kiban loads list|show`: the ledger's account of loads, for operators and auditors.

use crate::job::config::Job;
use crate::ledger::{Ledger, LedgerLocation, LoadFilter, LoadRecord};
use crate::store::Store;
use std::path::{Path, PathBuf};

/// Where `loads` finds the ledger (and the store, to check versions are on disk).
pub struct LedgerArgs {
    pub job: Option<PathBuf>,
    pub ledger: Option<String>,
    pub store: Option<PathBuf>,
}

pub(super) fn open(args: &LedgerArgs) -> Result<(Ledger, Option<Store>, Option<String>), i32> {
    let (location, store, job_name) = match (&args.ledger, &args.job) {
        (Some(l), _) => (LedgerLocation::parse(l, Path::new(".")), args.store.clone(), None),
        (None, Some(j)) => match Job::load(j) {
            Ok(job) => {
                (job.ledger_location(), Some(args.store.clone().unwrap_or_else(|| job.resolve(&job.file.store))), Some(job.file.name))
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Err(2);
            }
        },
        (None, None) => {
            eprintln!("error: give --job <job.toml> or --ledger <file or postgres:// URL> (or KIBAN_LEDGER)");
            return Err(2);
        }
    };
    let ledger = Ledger::open(&location).map_err(|e| {
        eprintln!("error: {e}");
        2
    })?;
    let store = match store {
        Some(s) if s.is_dir() => Store::open(s).ok(),
        _ => None,
    };
    Ok((ledger, store, job_name))
}

fn dash(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

pub fn list(args: &LedgerArgs, insurer: Option<String>, limit: u64, json: bool) -> i32 {
    let (ledger, _, job) = match open(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let loads = match ledger.loads(&LoadFilter { job, insurer_no: insurer, limit: Some(limit) }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let mut rows = Vec::new();
    for l in &loads {
        let (files, sets) = match (ledger.files(&l.load_id), ledger.sets(&l.load_id)) {
            (Ok(f), Ok(s)) => (f, s),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: {e}");
                return 1;
            }
        };
        rows.push((l, files, sets));
    }
    if json {
        let out: Vec<serde_json::Value> =
            rows.iter().map(|(l, f, s)| serde_json::json!({ "load": l, "files": f, "record_sets": s })).collect();
        return print_json(&out);
    }
    println!(
        "{:<24} {:<12} {:<8} {:<12} {:>7} {:>7} {:<24} {:>5} {:>10} {:>11} {:>9} {:>9} {:>9}",
        "load", "job", "insurer", "status", "base", "version", "started", "files", "read", "quarantined", "inserts", "updates", "deletes"
    );
    for (l, files, sets) in &rows {
        let read: u64 = files.iter().filter_map(|f| f.records_read).sum();
        let quarantined: u64 = files.iter().filter_map(|f| f.quarantined).sum();
        let sum = |g: fn(&crate::ledger::SetRecord) -> Option<u64>| -> String {
            if sets.iter().all(|s| g(s).is_none()) { "-".into() } else { sets.iter().filter_map(g).sum::<u64>().to_string() }
        };
        println!(
            "{:<24} {:<12} {:<8} {:<12} {:>7} {:>7} {:<24} {:>5} {:>10} {:>11} {:>9} {:>9} {:>9}",
            l.load_id,
            l.job,
            l.insurer_no,
            l.status.as_str(),
            dash(l.base_version),
            dash(l.version),
            l.started_at,
            files.len(),
            read,
            quarantined,
            sum(|s| s.inserts),
            sum(|s| s.updates),
            sum(|s| s.deletes)
        );
    }
    0
}

pub(super) fn print_json<T: serde::Serialize>(v: &T) -> i32 {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            println!("{s}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Whether the store still holds the load's version: its manifest and every file it names.
fn check_on_disk(store: &Store, l: &LoadRecord) -> Option<String> {
    let v = l.version?;
    let path = store.manifest_path(&l.insurer_no, v);
    if !path.exists() {
        return Some(format!("version {v} is referenced by the ledger but missing on disk: {}", path.display()));
    }
    let m = match store.manifest(&l.insurer_no, v) {
        Ok(m) => m,
        Err(e) => return Some(format!("version {v}: {e}")),
    };
    let missing: Vec<String> = store.missing_files(&m).into_iter().map(|(p, _)| p.display().to_string()).collect();
    (!missing.is_empty()).then(|| format!("version {v} is referenced by the ledger but files are missing on disk: {}", missing.join(", ")))
}

pub fn show(args: &LedgerArgs, load_id: &str, json: bool) -> i32 {
    let (ledger, store, _) = match open(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let l = match ledger.load(load_id) {
        Ok(Some(l)) => l,
        Ok(None) => {
            eprintln!("error: no load `{load_id}` in the ledger {} (see `kiban loads list`)", ledger.location());
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let (files, sets, events) = match (ledger.files(load_id), ledger.sets(load_id), ledger.events(load_id)) {
        (Ok(f), Ok(s), Ok(e)) => (f, s, e),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let (batches, receipt) = match (ledger.batches(load_id), ledger.receipt(load_id)) {
        (Ok(b), Ok(r)) => (b, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let problem = store.as_ref().and_then(|s| check_on_disk(s, &l));
    if json {
        let code = print_json(&serde_json::json!({
            "load": l, "files": files, "record_sets": sets, "events": events, "store_problem": problem,
            "batches": batches, "receipt": receipt,
        }));
        return if problem.is_some() { 1 } else { code };
    }
    println!("load        {}", l.load_id);
    println!("job         {} (insurer {})", l.job, l.insurer_no);
    println!("status      {}{}", l.status, l.exit_code.map_or(String::new(), |c| format!(" (exit {c})")));
    println!("versions    {} → {}", l.base_version.map_or("nothing".into(), |v| v.to_string()), dash(l.version));
    println!("started     {} (attempt {}, pid {} on {})", l.started_at, l.attempts, l.pid, l.host);
    println!("finished    {}", l.finished_at.as_deref().unwrap_or("-"));
    println!("inputs      SHA-256 {}", l.inputs_sha256);
    if let Some(m) = &l.message {
        println!("message     {m}");
    }
    println!();
    println!(
        "{:<4} {:<40} {:<24} {:>12} {:>10} {:>10} {:>11} {:>8}  sha256",
        "#", "file", "layout", "bytes", "read", "accepted", "quarantined", "warnings"
    );
    for f in &files {
        println!(
            "{:<4} {:<40} {:<24} {:>12} {:>10} {:>10} {:>11} {:>8}  {}{}",
            f.seq,
            f.file_name,
            f.layout,
            f.bytes,
            dash(f.records_read),
            dash(f.accepted),
            dash(f.quarantined),
            dash(f.warnings),
            f.sha256,
            f.rejected.as_ref().map_or(String::new(), |r| format!("  rejected: {r}"))
        );
    }
    println!();
    println!(
        "{:<26} {:<12} {:>10} {:>13} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "record set", "mode", "this load", "snapshot rows", "quarantined", "conflicts", "inserts", "updates", "deletes"
    );
    for s in &sets {
        println!(
            "{:<26} {:<12} {:>10} {:>13} {:>11} {:>9} {:>9} {:>9} {:>9}{}",
            s.record_set,
            s.mode,
            s.load_rows,
            s.snapshot_rows,
            s.quarantined_rows,
            s.key_conflicts,
            dash(s.inserts),
            dash(s.updates),
            dash(s.deletes),
            if s.deletes_suppressed { "  (no deletes: a quarantined record's key was unreadable)" } else { "" }
        );
    }
    if !batches.is_empty() || receipt.is_some() {
        println!();
        let acked = batches.iter().filter(|b| b.status == "acked").count();
        let rows: u64 = batches.iter().map(|b| b.row_count).sum();
        let bytes: u64 = batches.iter().map(|b| b.bytes).sum();
        println!("batches     {} ({acked} acknowledged), {rows} change rows, {bytes} bytes", batches.len());
        match &receipt {
            Some(r) => println!(
                "receipt     {}: platform version {}, {} rows applied, committed {}",
                r.receipt_id, r.platform_version, r.applied, r.committed_at
            ),
            None => println!("receipt     none yet"),
        }
    }
    println!();
    for e in &events {
        println!("{:>3} {}  {:<12} {}", e.seq, e.at, e.kind, e.detail);
    }
    if let Some(p) = problem {
        eprintln!("error: {p}");
        return 1;
    }
    0
}
