//! The ledger, idempotent and exclusive runs, the diff into `_changes`, and recovery from a run
//! killed at any point: through the `kiban` binary, on SQLite and on a real PostgreSQL server.

use super::fixtures::{INSURER, kiban, read_parquet};
use super::pg;
use arrow::array::{Array, StringArray};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Two months of one municipality's exports (`kiban sample generate`, deterministic), made once
/// per test process under the target's temporary directory.
pub fn months() -> &'static (PathBuf, PathBuf) {
    static MONTHS: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    MONTHS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledger-months");
        let _ = std::fs::remove_dir_all(&dir);
        let mut out = Vec::new();
        for month in ["202610", "202611"] {
            let d = dir.join(month);
            let o =
                kiban(&["sample", "generate", "--insurer", INSURER, "--persons", "300", "--out", d.to_str().unwrap(), "--month", month]);
            assert_eq!(o.code, 0, "{}", o.stderr);
            out.push(d);
        }
        let b = out.pop().unwrap();
        let a = out.pop().unwrap();
        (a, b)
    })
}

/// A job over one month's exports, writing to `work/store` with the given ledger.
fn job(work: &Path, month: &Path, ledger: &str) -> PathBuf {
    let text = format!(
        "name = \"monthly\"\ninsurer_no = \"{INSURER}\"\nstore = \"{store}\"\nledger = \"{ledger}\"\ngaiji = \"{m}/gaiji/{INSURER}.tsv\"\n\
         [[sources]]\npath = \"{m}/hihokensha_{INSURER}.dat\"\nmapping = \"insured_register_fixed\"\n\
         [[sources]]\npath = \"{m}/5311_{INSURER}_*.csv\"\nmapping = \"kokuhoren_5311\"\n\
         [[sources]]\npath = \"{m}/nintei_09B_{INSURER}_*.csv\"\nmapping = \"nintei_09b\"\n",
        store = work.join("store").display(),
        m = month.display(),
    );
    let name = format!("job-{}.toml", month.file_name().unwrap().to_string_lossy());
    let p = work.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn sqlite(work: &Path) -> String {
    work.join("ledger.sqlite").display().to_string()
}

fn run_json(job: &Path, env: &[(&str, &str)]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiban"))
        .args(["run", job.to_str().unwrap(), "--json"])
        .envs(env.iter().copied())
        .output()
        .expect("run kiban");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, String::from_utf8_lossy(&out.stderr).to_string())
}

fn loads(job: &Path) -> Vec<Value> {
    let o = kiban(&["loads", "list", "--job", job.to_str().unwrap(), "--json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    serde_json::from_str::<Vec<Value>>(&o.stdout).expect("json")
}

/// What must be the same after any interruption: per set of the latest version its rows and
/// digest, the bytes of its `_changes`, and per load its status and change counts.
type State = (BTreeMap<String, (u64, String, String)>, Vec<(String, String, Value)>, Vec<String>);

/// Every path in the store but the lock: no temporary or orphaned file may be left.
fn files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().to_string_lossy().to_string();
        if rel.starts_with("_locks") {
            continue;
        }
        if p.is_dir() {
            files(&p, base, out);
        } else {
            out.push(rel);
        }
    }
}

fn state(work: &Path, job: &Path) -> State {
    let store = work.join("store");
    let mdir = store.join("_manifests").join(INSURER);
    let mut versions: Vec<u64> = std::fs::read_dir(&mdir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".json").and_then(|v| v.parse().ok()))
        .collect();
    versions.sort();
    let latest = *versions.last().expect("a version");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(mdir.join(format!("{latest}.json"))).unwrap()).unwrap();
    let mut sets = BTreeMap::new();
    for (name, e) in m["record_sets"].as_object().unwrap() {
        let v = e["version"].as_u64().unwrap();
        let changes =
            store.join("_changes").join(name).join(format!("insurer_no={INSURER}")).join(format!("version={v}")).join("part-0.parquet");
        let sha =
            std::fs::read(&changes).map(|b| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b))).unwrap_or_else(|_| "none".into());
        sets.insert(name.clone(), (e["rows"].as_u64().unwrap(), e["digest"].as_str().unwrap().to_string(), sha));
    }
    let ls = loads(job)
        .into_iter()
        .map(|l| {
            let changes: Value = l["record_sets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| serde_json::json!([s["record_set"], s["inserts"], s["updates"], s["deletes"]]))
                .collect();
            (l["load"]["load_id"].as_str().unwrap().to_string(), l["load"]["status"].as_str().unwrap().to_string(), changes)
        })
        .collect();
    let mut paths = Vec::new();
    files(&store, &store, &mut paths);
    paths.sort();
    (sets, ls, paths)
}

#[test]
fn rerunning_a_job_is_a_noop() {
    let (m1, _) = months();
    let work = tempfile::tempdir().unwrap();
    let j = job(work.path(), m1, &sqlite(work.path()));
    let (code, first, err) = run_json(&j, &[]);
    assert!(code == 0 || code == 3, "{err}");
    assert_eq!(first["status"], "loaded");
    let before = state(work.path(), &j);
    let (code, again, err) = run_json(&j, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again["status"], "already_loaded");
    assert_eq!(again["load_id"], first["load_id"]);
    assert_eq!(state(work.path(), &j), before, "a rerun changes neither the store nor the ledger");
    let text = kiban(&["run", j.to_str().unwrap()]);
    assert!(text.stdout.contains("already loaded"), "{}", text.stdout);
    assert_eq!(std::fs::read_dir(work.path().join("store/_manifests").join(INSURER)).unwrap().count(), 1, "no new version");
}

/// Change counts of each set, as an independent SQL join of the two versions computes them.
fn joined_counts(store: &Path, set: &str, keys: &[String], old: u64, new: u64) -> (u64, u64, u64) {
    let on: Vec<String> = keys.iter().map(|k| format!("o.{k} = n.{k}")).collect();
    let sql = format!(
        "WITH o AS (SELECT * FROM {set}_versions WHERE version = {old}), n AS (SELECT * FROM {set}_versions WHERE version = {new})
         SELECT CAST(COALESCE(SUM(CASE WHEN o.row_hash IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS i,
                CAST(COALESCE(SUM(CASE WHEN o.row_hash IS NOT NULL AND n.row_hash IS NOT NULL AND o.row_hash <> n.row_hash THEN 1 ELSE 0 END), 0) AS BIGINT) AS u,
                CAST(COALESCE(SUM(CASE WHEN n.row_hash IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS d
         FROM o FULL OUTER JOIN n ON {}",
        on.join(" AND ")
    );
    let o = kiban(&["query", &sql, "--store", store.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.code, 0, "{sql}\n{}", o.stderr);
    let v: Value = serde_json::from_str(o.stdout.trim())
        .or_else(|_| serde_json::from_str(&format!("[{}]", o.stdout.trim().replace('\n', ","))))
        .expect("json");
    let row = if v.is_array() { v[0].clone() } else { v };
    (row["i"].as_u64().unwrap(), row["u"].as_u64().unwrap(), row["d"].as_u64().unwrap())
}

#[test]
fn changes_equal_a_join_of_the_two_versions() {
    let (m1, m2) = months();
    let work = tempfile::tempdir().unwrap();
    let ledger = sqlite(work.path());
    let (j1, j2) = (job(work.path(), m1, &ledger), job(work.path(), m2, &ledger));
    assert!(matches!(run_json(&j1, &[]).0, 0 | 3));
    let (code, second, err) = run_json(&j2, &[]);
    assert!(code == 0 || code == 3, "{err}");
    assert_eq!(second["base_version"], 1);
    let catalog = kiban::job::catalog::Catalog::embedded().unwrap();
    let store = work.path().join("store");
    let mut total = 0;
    for s in second["record_sets"].as_array().unwrap() {
        let name = s["record_set"].as_str().unwrap();
        let schema = catalog.schemas.get(name).unwrap();
        let (i, u, d) = joined_counts(&store, name, &schema.key_names().iter().map(|k| k.to_string()).collect::<Vec<_>>(), 1, 2);
        let c = &s["changes"];
        assert_eq!((c["inserts"].as_u64().unwrap(), c["updates"].as_u64().unwrap(), c["deletes"].as_u64().unwrap()), (i, u, d), "{name}");
        total += i + u + d;
        // The change rows: one per change, ops as counted, new rows equal to version 2's.
        let path = store.join("_changes").join(name).join(format!("insurer_no={INSURER}")).join("version=2").join("part-0.parquet");
        let b = read_parquet(&path).unwrap_or_else(|| panic!("{}", path.display()));
        assert_eq!(b.num_rows() as u64, i + u + d, "{name}");
        let ops = b.column_by_name("op").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let count = |op: &str| (0..ops.len()).filter(|&r| ops.value(r) == op).count() as u64;
        assert_eq!((count("insert"), count("update"), count("delete")), (i, u, d), "{name}");
    }
    assert!(total > 0, "the second month changes something");
    // Auditors see the same rows as `<set>_changes`.
    let recipient = second["record_sets"].as_array().unwrap().iter().find(|s| s["record_set"] == "recipient").unwrap()["changes"].clone();
    let want = ["inserts", "updates", "deletes"].iter().map(|k| recipient[k].as_u64().unwrap()).sum::<u64>();
    let o = kiban(&[
        "query",
        "SELECT count(*) AS n FROM recipient_changes WHERE version = 2",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.lines().nth(1).and_then(|l| l.trim().parse::<u64>().ok()), Some(want), "{}", o.stdout);
    // The ledger tells the same.
    let ls = loads(&j2);
    assert_eq!(ls.len(), 2);
    let show = kiban(&["loads", "show", second["load_id"].as_str().unwrap(), "--job", j2.to_str().unwrap()]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(show.stdout.contains("published") && show.stdout.contains("inserts"), "{}", show.stdout);
}

#[test]
fn a_run_interrupted_anywhere_is_finished_by_the_next() {
    let (m1, m2) = months();
    // The uninterrupted reference.
    let reference = tempfile::tempdir().unwrap();
    let ledger = sqlite(reference.path());
    let (r1, r2) = (job(reference.path(), m1, &ledger), job(reference.path(), m2, &ledger));
    run_json(&r1, &[]);
    run_json(&r2, &[]);
    let want = state(reference.path(), &r2);
    for point in ["reading", "storing", "store-sets", "committed", "stored", "changes-written", "diffed"] {
        let work = tempfile::tempdir().unwrap();
        let ledger = sqlite(work.path());
        let (j1, j2) = (job(work.path(), m1, &ledger), job(work.path(), m2, &ledger));
        run_json(&j1, &[]);
        let (code, _, err) = run_json(&j2, &[("KIBAN_FAULT", point)]);
        assert!(code != 0 && code != 3 && err.contains(point), "{point}: the fault did not stop the run: {code} {err}");
        let (code, _, err) = run_json(&j2, &[]);
        assert!(matches!(code, 0 | 3), "{point}: {err}");
        assert_eq!(state(work.path(), &j2), want, "{point}: after the rerun the store and ledger equal an uninterrupted run's");
        let (code, again, _) = run_json(&j2, &[]);
        assert_eq!((code, again["status"].as_str()), (0, Some("already_loaded")), "{point}");
    }
}

#[test]
fn a_killed_run_leaves_no_stuck_lock_and_the_rerun_finishes() {
    let (m1, m2) = months();
    let reference = tempfile::tempdir().unwrap();
    let ledger = sqlite(reference.path());
    let (r1, r2) = (job(reference.path(), m1, &ledger), job(reference.path(), m2, &ledger));
    run_json(&r1, &[]);
    let started = std::time::Instant::now();
    run_json(&r2, &[]);
    let took = started.elapsed();
    let want = state(reference.path(), &r2);
    for step in 1..=4u32 {
        let work = tempfile::tempdir().unwrap();
        let ledger = sqlite(work.path());
        let (j1, j2) = (job(work.path(), m1, &ledger), job(work.path(), m2, &ledger));
        run_json(&j1, &[]);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiban"))
            .args(["run", j2.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(took * step / 5);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let (code, _, err) = run_json(&j2, &[]);
        assert!(matches!(code, 0 | 3), "killed at {step}/5: {err}");
        assert_eq!(state(work.path(), &j2), want, "killed at {step}/5");
    }
}

#[test]
fn a_second_run_fails_at_once_while_one_holds_the_lock() {
    let (m1, _) = months();
    let work = tempfile::tempdir().unwrap();
    let j = job(work.path(), m1, &sqlite(work.path()));
    let store = kiban::store::Store::open(work.path().join("store")).unwrap();
    let lock = store.lock(INSURER, "job monthly (held by the test)").unwrap();
    let started = std::time::Instant::now();
    let (code, _, err) = run_json(&j, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another run holds the lock") && err.contains("held by the test"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "it does not wait");
    assert!(!work.path().join("store/_manifests").exists(), "nothing stored");
    drop(lock);
    let (code, _, err) = run_json(&j, &[]);
    assert!(matches!(code, 0 | 3), "{err}");
}

#[test]
fn ledger_problems_are_clear_errors_before_any_work() {
    let (m1, _) = months();
    // A ledger that cannot be opened.
    let work = tempfile::tempdir().unwrap();
    let j = job(work.path(), m1, &work.path().join("no/such/dir/ledger.sqlite").display().to_string());
    let (code, _, err) = run_json(&j, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ledger") && err.contains("no/such/dir"), "{err}");
    assert!(!work.path().join("store/_manifests").exists());

    // A ledger written by a newer kiban.
    let work = tempfile::tempdir().unwrap();
    let ledger = sqlite(work.path());
    let j = job(work.path(), m1, &ledger);
    assert!(matches!(run_json(&j, &[]).0, 0 | 3));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(&ledger).connect().await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (2, 'future', TRUE, X'00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
    });
    let (code, _, err) = run_json(&j, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("schema version 2 is newer"), "{err}");

    // A version the ledger references, missing on disk.
    let work = tempfile::tempdir().unwrap();
    let j = job(work.path(), m1, &sqlite(work.path()));
    let (_, first, _) = run_json(&j, &[]);
    let part = work.path().join("store/recipient").join(format!("insurer_no={INSURER}")).join("version=1/part-0.parquet");
    std::fs::remove_file(&part).unwrap();
    let (code, _, err) = run_json(&j, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing on disk") && err.contains("recipient"), "{err}");
    let show = kiban(&["loads", "show", first["load_id"].as_str().unwrap(), "--job", j.to_str().unwrap()]);
    assert_eq!(show.code, 1);
    assert!(show.stderr.contains("missing on disk"), "{}", show.stderr);
}

#[test]
fn postgres_ledger_records_what_sqlite_records() {
    let (m1, m2) = months();
    let url = pg::database("ledger_parity");
    let mut results = Vec::new();
    for ledger in [None, Some(url.clone())] {
        let work = tempfile::tempdir().unwrap();
        let l = ledger.clone().unwrap_or_else(|| sqlite(work.path()));
        let (j1, j2) = (job(work.path(), m1, &l), job(work.path(), m2, &l));
        assert!(matches!(run_json(&j1, &[]).0, 0 | 3));
        let (code, _, err) = run_json(&j2, &[]);
        assert!(matches!(code, 0 | 3), "{l}: {err}");
        let (code, again, _) = run_json(&j2, &[]);
        assert_eq!((code, again["status"].as_str()), (0, Some("already_loaded")), "{l}");
        results.push(state(work.path(), &j2));
    }
    assert_eq!(results[0], results[1], "the same loads, statuses and changes on SQLite and PostgreSQL");
}

#[test]
fn postgres_ledger_refuses_a_newer_schema() {
    let (m1, _) = months();
    let url = pg::database("ledger_newer");
    let work = tempfile::tempdir().unwrap();
    let j = job(work.path(), m1, &url);
    assert!(matches!(run_json(&j, &[]).0, 0 | 3));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut c = url.parse::<sqlx::postgres::PgConnectOptions>().unwrap().connect().await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (7, 'future', TRUE, '\\x00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
    });
    let (code, _, err) = run_json(&j, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("schema version 7 is newer") && !err.contains("secret"), "{err}");
}

/// The diff never holds two snapshots: 5M rows of `recipient` against 5M, under an address-space
/// limit far below what the two snapshots take in memory.
#[test]
fn a_5m_row_diff_runs_under_a_memory_limit() {
    const ROWS: u64 = 5_000_000;
    const LIMIT_MIB: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let catalog = kiban::job::catalog::Catalog::embedded().unwrap();
    let set = catalog.schemas.get("recipient").unwrap().clone();
    let store = kiban::store::Store::open(dir.path()).unwrap();
    let v = kiban::sample::store::write_versions(&store, &set, INSURER, ROWS, 2_000).unwrap();
    // What one snapshot takes as Arrow in memory, from its first 64k rows.
    let first = read_parquet(&store.root().join(&v.old.record_sets["recipient"].files[0].path)).unwrap();
    let per_row = first.get_array_memory_size() as f64 / first.num_rows() as f64;
    let both_mib = (2.0 * ROWS as f64 * per_row / (1024.0 * 1024.0)) as u64;
    assert!(both_mib > LIMIT_MIB, "the limit ({LIMIT_MIB} MiB) must be below two snapshots ({both_mib} MiB) for the test to mean anything");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {} && exec \"$0\" diff --store \"$1\" --insurer {INSURER} --from 1 --to 2 --set recipient --out \"$2\"",
            LIMIT_MIB * 1024
        ))
        .arg(env!("CARGO_BIN_EXE_kiban"))
        .arg(dir.path())
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "under {LIMIT_MIB} MiB: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("recipient")).unwrap_or_default().to_string();
    let nums: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let e = v.expected;
    assert_eq!(nums, vec![e.inserts, e.updates, e.deletes, e.unchanged], "{stdout}");
    let changes = read_parquet(&dir.path().join("out/recipient.parquet")).unwrap();
    assert_eq!(changes.num_rows() as u64, e.total());
}

/// SPEC §8: a record quarantined by a validation rule never causes a delete in a snapshot set.
#[test]
fn a_record_quarantined_by_a_rule_keeps_its_published_row() {
    use super::fixtures::{RegisterJob, register_person as person};
    let reg = RegisterJob::new();
    reg.run(&[person("0000000001", "3200101"), person("0000000002", "3200101"), person("0000000003", "3200101")]);
    // 2 is born in 令和20年 (after today): quarantined by the birth-date rule, its row is kept; 3 left.
    let (s, rows) = reg.run(&[person("0000000001", "3200101"), person("0000000002", "5200101")]);
    assert_eq!(s["quarantined_rows"], 1, "{s}");
    assert_eq!(s["changes"], serde_json::json!({"inserts": 0, "updates": 0, "deletes": 1, "unchanged": 2}), "{s}");
    assert_eq!(rows, vec![Some("0000000001".into()), Some("0000000002".into())]);
}
