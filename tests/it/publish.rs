//! Publishing as the last stage of `kiban run`, against a real `kiban platform serve` process
//! over mutual TLS: exactly once whatever is killed when, `loads verify` and `loads replay`.

use super::fixtures::INSURER;
use super::ledger::months;
use super::pg;
use super::platform_fixture::{Pki, PlatformProcess};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A job over one month's exports publishing to `url`.
fn job(work: &Path, month: &Path, pki: &Pki, url: &str, extra: &str) -> PathBuf {
    let text = format!(
        "name = \"monthly\"\ninsurer_no = \"{INSURER}\"\nstore = \"{store}\"\nledger = \"{ledger}\"\ngaiji = \"{m}/gaiji/{INSURER}.tsv\"\n\
         [[sources]]\npath = \"{m}/hihokensha_{INSURER}.dat\"\nmapping = \"insured_register_fixed\"\n\
         [[sources]]\npath = \"{m}/5311_{INSURER}_*.csv\"\nmapping = \"kokuhoren_5311\"\n\
         [[sources]]\npath = \"{m}/nintei_09B_{INSURER}_*.csv\"\nmapping = \"nintei_09b\"\n{platform}",
        store = work.join("store").display(),
        ledger = work.join("ledger.sqlite").display(),
        m = month.display(),
        platform = pki.job_table(url, "terminal-141309", extra),
    );
    let p = work.join(format!("job-{}.toml", month.file_name().unwrap().to_string_lossy()));
    std::fs::write(&p, text).unwrap();
    p
}

fn run(job: &Path, env: &[(&str, &str)]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiban"))
        .args(["run", job.to_str().unwrap(), "--json"])
        .envs(env.iter().copied())
        .output()
        .expect("run kiban");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn kiban_json(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiban")).args(args).output().expect("run kiban");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(code: i32) -> bool {
    code == 0 || code == 3
}

/// `kiban loads verify`: every record set the same on the platform as in the store.
fn assert_verified(job: &Path) -> Value {
    let (code, v, err) = kiban_json(&["loads", "verify", "--job", job.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "verify: {err}\n{v:#}");
    assert!(v["record_sets"].as_array().unwrap().iter().all(|s| s["equal"] == true), "{v:#}");
    v
}

/// The loads of the ledger with their batches and receipts.
fn load_details(job: &Path) -> Vec<Value> {
    let (code, list, err) = kiban_json(&["loads", "list", "--job", job.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let id = l["load"]["load_id"].as_str().unwrap();
            let (code, show, err) = kiban_json(&["loads", "show", id, "--job", job.to_str().unwrap(), "--json"]);
            assert_eq!(code, 0, "{err}");
            show
        })
        .collect()
}

fn total_changes(summary: &Value) -> u64 {
    summary["record_sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| ["inserts", "updates", "deletes"].iter().map(|k| s["changes"][k].as_u64().unwrap()).sum::<u64>())
        .sum()
}

#[test]
fn two_months_are_published_and_the_platform_matches_the_store() {
    let (m1, m2) = months();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let platform = PlatformProcess::start(dir.path(), &pki, &dir.path().join("platform.sqlite").display().to_string(), 0, "");
    let j1 = job(dir.path(), m1, &pki, &platform.url, "batch_rows = 100");
    let (code, s1, err) = run(&j1, &[]);
    assert!(ok(code), "{err}");
    let p1 = &s1["published"];
    assert_eq!(p1["receipt"]["version"], 1, "{s1:#}");
    assert_eq!(p1["receipt"]["applied"].as_u64().unwrap(), total_changes(&s1));
    assert!(p1["batches"].as_u64().unwrap() > 10, "{p1:#}");
    assert_verified(&j1);

    let j2 = job(dir.path(), m2, &pki, &platform.url, "batch_rows = 100");
    let (code, s2, err) = run(&j2, &[]);
    assert!(ok(code), "{err}");
    assert_eq!(s2["published"]["receipt"]["version"], 2);
    assert_eq!(s2["published"]["platform_base_version"], 1);
    assert!(s2["record_sets"].as_array().unwrap().iter().any(|s| s["changes"]["updates"].as_u64().unwrap() > 0));
    assert_eq!(s2["published"]["receipt"]["applied"].as_u64().unwrap(), total_changes(&s2));
    let v = assert_verified(&j2);
    assert_eq!(v["platform_version"], 2);

    // The same inputs again: nothing to send; replaying a published load gets its receipt back.
    let (code, again, _) = run(&j2, &[]);
    assert_eq!((code, again["status"].as_str()), (0, Some("already_loaded")));
    let id = s2["load_id"].as_str().unwrap();
    let (code, replayed, err) = kiban_json(&["loads", "replay", id, "--job", j2.to_str().unwrap(), "--to", &platform.url, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(replayed["receipt"], s2["published"]["receipt"]);
    assert_eq!(replayed["sent"], 0);

    // Replaying both loads in order to an empty platform rebuilds the same state.
    let fresh = PlatformProcess::start(dir.path(), &pki, &dir.path().join("fresh.sqlite").display().to_string(), 0, "");
    for s in [&s1, &s2] {
        let id = s["load_id"].as_str().unwrap();
        let (code, r, err) = kiban_json(&["loads", "replay", id, "--job", j2.to_str().unwrap(), "--to", &fresh.url, "--json"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(r["receipt"]["version"], s["published"]["receipt"]["version"]);
    }
    let (code, v, err) = kiban_json(&["loads", "verify", "--job", j2.to_str().unwrap(), "--platform", &fresh.url, "--json"]);
    assert_eq!(code, 0, "{err}\n{v:#}");

    // A platform whose state differs is reported, set by set, with exit 1.
    let (code, v, _) = kiban_json(&["loads", "verify", "--job", j1.to_str().unwrap(), "--platform", &fresh.url, "--json"]);
    assert_eq!(code, 0, "{v:#}");
    let empty = PlatformProcess::start(dir.path(), &pki, &dir.path().join("empty.sqlite").display().to_string(), 0, "");
    let (code, v, _) = kiban_json(&["loads", "verify", "--job", j1.to_str().unwrap(), "--platform", &empty.url, "--json"]);
    assert_eq!(code, 1, "{v:#}");
    assert!(v["record_sets"].as_array().unwrap().iter().any(|s| s["equal"] == false));
}

#[test]
fn a_client_killed_at_any_point_of_publishing_publishes_exactly_once() {
    let (m1, m2) = months();
    for point in ["publish-opened", "publish-batch-3", "publish-before-commit", "publish-committed"] {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(&dir.path().join("pki"));
        let platform = PlatformProcess::start(dir.path(), &pki, &dir.path().join("platform.sqlite").display().to_string(), 0, "");
        let j1 = job(dir.path(), m1, &pki, &platform.url, "batch_rows = 64");
        let (code, _, err) = run(&j1, &[]);
        assert!(ok(code), "{err}");
        // Month 2 has updates and deletes: applying any batch twice would be refused as a
        // conflict, and a lost batch would show in the digests.
        let j2 = job(dir.path(), m2, &pki, &platform.url, "batch_rows = 64");
        let (code, _, err) = run(&j2, &[("KIBAN_FAULT", point)]);
        assert!(!ok(code), "{point}: the run should have been killed: {err}");
        assert!(err.contains(&format!("KIBAN_FAULT={point}")), "{point}: {err}");
        // The rerun finds the interrupted load, finishes publishing it, and has nothing else to do.
        let (code, s, err) = run(&j2, &[]);
        assert!(ok(code), "{point}: rerun: {err}");
        assert_eq!(s["status"], "already_loaded", "{point}: {s:#}");
        assert!(err.contains("finishing a load that was interrupted while publishing"), "{point}: {err}");
        let month2 = load_details(&j2).into_iter().find(|d| d["load"]["version"] == 2).unwrap();
        assert_eq!(month2["receipt"]["platform_version"], 2, "{point}: {month2:#}");
        let changes: u64 = month2["record_sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| ["inserts", "updates", "deletes"].iter().map(|k| s[k].as_u64().unwrap()).sum::<u64>())
            .sum();
        assert!(changes > 0);
        assert_eq!(month2["receipt"]["applied"].as_u64().unwrap(), changes, "{point}: rows applied once each");
        let events: Vec<&str> = month2["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(events.iter().filter(|k| **k == "publishing").count(), 2, "{point}: {events:?}");
        assert_verified(&j2);
        let details = load_details(&j2);
        for d in &details {
            assert_eq!(d["load"]["status"], "published", "{point}: {d:#}");
            assert!(d["receipt"].is_object(), "{point}: {d:#}");
            assert!(d["batches"].as_array().unwrap().iter().all(|b| b["status"] == "acked"), "{point}: {d:#}");
        }
    }
}

#[test]
fn the_platform_restarted_during_a_load_the_client_resumes() {
    let (m1, _) = months();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let mut platform = PlatformProcess::start(dir.path(), &pki, &dir.path().join("platform.sqlite").display().to_string(), 0, "");
    let j1 = job(dir.path(), m1, &pki, &platform.url, "batch_rows = 2\nretry_seconds = 60");
    let child = Command::new(env!("CARGO_BIN_EXE_kiban"))
        .args(["run", j1.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the load is being published and some batches are acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(std::time::Instant::now() < deadline, "the load never started publishing");
        // Mid-load the store may hold a version the ledger names before its manifest is written:
        // `loads show` then exits 1, but its JSON still has the batches.
        let (_, list, _) = kiban_json(&["loads", "list", "--job", j1.to_str().unwrap(), "--json"]);
        let id = list.as_array().and_then(|l| l.first()).and_then(|l| l["load"]["load_id"].as_str().map(str::to_string));
        let acked = id.map_or(0, |id| {
            let (_, show, _) = kiban_json(&["loads", "show", &id, "--job", j1.to_str().unwrap(), "--json"]);
            show["batches"].as_array().map_or(0, |b| b.iter().filter(|b| b["status"] == "acked").count())
        });
        if acked >= 5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    platform.kill();
    std::thread::sleep(std::time::Duration::from_millis(700));
    platform.restart();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(ok(out.status.code().unwrap_or(-1)), "{stderr}");
    assert!(stderr.contains("retrying"), "the client should have met the restart: {stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["published"]["receipt"]["version"], 1);
    assert_eq!(s["published"]["receipt"]["applied"].as_u64().unwrap(), total_changes(&s));
    assert_verified(&j1);
}

#[test]
fn a_job_whose_certificate_names_another_insurer_is_a_configuration_error() {
    let (m1, _) = months();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let text = std::fs::read_to_string(job(dir.path(), m1, &pki, "https://localhost:1", "")).unwrap();
    let p = dir.path().join("other.toml");
    std::fs::write(&p, text.replace("terminal-141309", "terminal-131011")).unwrap();
    let (code, _, err) = run(&p, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not this job's 141309"), "{err}");
}

#[test]
fn an_unreachable_platform_fails_the_run_and_the_next_run_publishes() {
    let (m1, _) = months();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    // A port nothing listens on: found by binding and releasing it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("https://localhost:{port}");
    let j = job(dir.path(), m1, &pki, &url, "retry_seconds = 1");
    let (code, _, err) = run(&j, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no answer after") && err.contains("resumes"), "{err}");
    let details = load_details(&j);
    assert_eq!(details[0]["load"]["status"], "publishing", "{:#}", details[0]);
    let platform = PlatformProcess::start(dir.path(), &pki, &dir.path().join("platform.sqlite").display().to_string(), port, "");
    let (code, s, err) = kiban_json(&["publish", details[0]["load"]["load_id"].as_str().unwrap(), "--job", j.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["platform_version"], 1, "{s:#}");
    drop(platform);
}

#[test]
fn a_platform_on_postgresql_keeps_the_same_state() {
    let (m1, m2) = months();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let url = pg::database("platform_state");
    let mut platform = PlatformProcess::start(dir.path(), &pki, &url, 0, "");
    let j1 = job(dir.path(), m1, &pki, &platform.url, "batch_rows = 500");
    let (code, s1, err) = run(&j1, &[]);
    assert!(ok(code), "{err}");
    assert_eq!(s1["published"]["receipt"]["applied"].as_u64().unwrap(), total_changes(&s1));
    // Durable: a restarted platform answers from the database.
    platform.restart();
    assert_verified(&j1);
    let j2 = job(dir.path(), m2, &pki, &platform.url, "batch_rows = 500");
    let (code, s2, err) = run(&j2, &[]);
    assert!(ok(code), "{err}");
    assert_eq!(s2["published"]["receipt"]["version"], 2);
    assert_verified(&j2);
}

#[test]
fn a_job_with_serve_starts_its_reference_platform_for_the_run() {
    let (m1, _) = months();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("platform.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"platform.sqlite\"\ncertificate = \"pki/server.pem\"\nkey = \"pki/server.key\"\nclient_ca = \"pki/ca.pem\"\n"
        ),
    )
    .unwrap();
    let url = format!("https://localhost:{port}");
    let j = job(dir.path(), m1, &pki, &url, &format!("serve = \"{}\"", config.display()));
    let (code, s, err) = run(&j, &[]);
    assert!(ok(code), "{err}");
    assert_eq!(s["published"]["receipt"]["version"], 1, "{s:#}");
    assert!(dir.path().join("platform.sqlite").is_file(), "the platform's state is where its config says");
    // The run stopped its platform: nothing answers any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // Verify against the platform serving the same state from its own process.
    let platform = PlatformProcess::start(dir.path(), &pki, &dir.path().join("platform.sqlite").display().to_string(), port, "");
    assert_verified(&j);
    drop(platform);
}
