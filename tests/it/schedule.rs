//! `kiban schedule <jobs-dir>` through the binary: jobs on their cron schedules, each run a child
//! `kiban run`, logged with its load id and exit status; failures and broken job files do not stop
//! the others.
use super::fixtures::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `jobs/demo.toml` adapted: sample-data paths absolute, its own name, store and schedule.
fn demo_job(name: &str, store: &Path, schedule: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(Path::new(root).join("jobs/demo.toml")).expect("jobs/demo.toml");
    let text = text.replace("\"../", &format!("\"{root}/"));
    let mut job: toml::Table = toml::from_str(&text).expect("demo.toml parses");
    job.insert("name".into(), name.into());
    job.insert("store".into(), store.to_str().expect("utf-8 path").into());
    job.insert("schedule".into(), schedule.into());
    // The ledger defaults to the job's own store, never the demo's; no platform (the demo's
    // certificates and port belong to the demo).
    job.remove("ledger");
    job.remove("platform");
    let text = toml::to_string(&job).expect("job serializes");
    assert!(!text.contains("demo-out"), "a test job must not write into the demo's output:\n{text}");
    text
}

/// Runs `kiban <args>`, killing it after `limit`.
fn kiban_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiban"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kiban");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).expect("read stdout");
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).expect("read stderr");
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill");
            let stderr = err.join().expect("stderr");
            panic!("kiban {args:?} still running after {limit:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { code: status.code().unwrap_or(-1), stdout: out.join().expect("stdout"), stderr: err.join().expect("stderr") }
}

/// The JSON log events on stderr (`--log-format json`) whose message is `message`.
fn events<'a>(stderr: &'a str, message: &'a str) -> impl Iterator<Item = Value> + 'a {
    stderr.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(move |v| v["fields"]["message"].as_str() == Some(message))
}

/// The text of a human log line without its colours.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

fn field<'a>(event: &'a Value, name: &str) -> &'a str {
    event["fields"][name].as_str().unwrap_or_default()
}

#[test]
fn runs_each_job_on_its_schedule_and_keeps_going_after_failures() {
    let ws = Workspace::new();
    let jobs = ws.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    let every_second = "* * * * * *";
    std::fs::write(jobs.join("good.toml"), demo_job("good", &ws.path().join("store-good"), every_second)).unwrap();
    // Its store is a regular file: every run fails (exit 1). Every other second, so that the good
    // job gets its share of the runs even when a run of it takes more than a second.
    let not_a_dir = ws.write("not-a-dir", b"");
    std::fs::write(jobs.join("failing.toml"), demo_job("failing", &not_a_dir, "*/2 * * * * *")).unwrap();
    std::fs::write(jobs.join("broken.toml"), "name = \"broken\nschedule = \"* * * * * *\"\n").unwrap();
    std::fs::write(jobs.join("badcron.toml"), demo_job("badcron", &ws.path().join("store-badcron"), "every night at two")).unwrap();
    let mut manual: toml::Table = toml::from_str(&demo_job("manual", &ws.path().join("store-manual"), every_second)).unwrap();
    manual.remove("schedule");
    std::fs::write(jobs.join("manual.toml"), toml::to_string(&manual).unwrap()).unwrap();
    std::fs::write(jobs.join("README.txt"), "not a job").unwrap();

    let started = Instant::now();
    let out = kiban_within(&["--log-format", "json", "schedule", jobs.to_str().unwrap(), "--max-runs", "6"], Duration::from_secs(30));
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());

    // Broken job files are named and left out; the job without a schedule is listed as unscheduled.
    assert!(out.stderr.contains("broken.toml"), "{}", out.stderr);
    assert!(out.stderr.contains("badcron.toml") && out.stderr.contains("every night at two"), "{}", out.stderr);
    let unscheduled: Vec<_> = out.stderr.lines().filter(|l| l.contains("unscheduled") && l.contains("manual.toml")).collect();
    assert_eq!(unscheduled.len(), 1, "{}", out.stderr);
    let scheduled: Vec<String> = events(&out.stderr, "scheduled").map(|e| field(&e, "job").to_string()).collect();
    assert_eq!(scheduled, ["failing", "good"], "name order");

    let finished: Vec<Value> = events(&out.stderr, "run finished").collect();
    let failed: Vec<Value> = events(&out.stderr, "run failed").collect();
    assert_eq!(finished.len() + failed.len(), 6, "--max-runs 6\n{}", out.stderr);
    // The good job ran more than once, each run logged with its load id and exit status 0.
    let good: Vec<_> = finished.iter().filter(|e| field(e, "job") == "good").collect();
    assert!(good.len() >= 2, "{}", out.stderr);
    for e in &good {
        assert_eq!(e["level"], "INFO");
        assert_eq!(field(e, "exit_status"), "0", "{e}");
        let id = field(e, "load_id");
        assert!(!id.is_empty() && id != "none", "{e}");
        assert!(e["fields"]["seconds"].as_f64().is_some(), "{e}");
    }
    assert!(ws.path().join("store-good").is_dir());
    // The failing job's runs are errors with a non-zero status and no load id; it ran again.
    assert!(failed.len() >= 2, "{}", out.stderr);
    for e in &failed {
        assert_eq!(field(e, "job"), "failing", "{e}");
        assert_eq!(e["level"], "ERROR");
        assert_eq!(field(e, "exit_status"), "1", "{e}");
        assert_eq!(field(e, "load_id"), "none", "{e}");
    }
    // The failing run's own error reaches the scheduler's stderr.
    assert!(out.stderr.contains("not-a-dir"), "{}", out.stderr);
    let stopped: Vec<_> = events(&out.stderr, "scheduler stopped").collect();
    assert_eq!(stopped.len(), 1, "{}", out.stderr);
    assert_eq!(stopped[0]["fields"]["runs"], 6);
    assert!(out.stdout.is_empty(), "the runs' JSON summaries are read by the scheduler: {}", out.stdout);
}

#[test]
fn human_logs_name_job_load_id_and_exit_status() {
    let ws = Workspace::new();
    let jobs = ws.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(jobs.join("good.toml"), demo_job("good", &ws.path().join("store"), "* * * * * *")).unwrap();
    let out = kiban_within(&["schedule", jobs.to_str().unwrap(), "--max-runs", "1"], Duration::from_secs(20));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out.stderr.lines().find(|l| l.contains("run finished")).unwrap_or_else(|| panic!("{}", out.stderr));
    let line = strip_ansi(line);
    assert!(line.contains("job=good") && line.contains("exit_status=0"), "{line}");
    assert!(line.contains("load_id=") && !line.contains("load_id=none"), "{line}");
}

#[test]
fn a_bad_schedule_is_a_configuration_error() {
    let ws = Workspace::new();
    let job = ws.write("job.toml", demo_job("bad", &ws.path().join("store"), "61 * * * *").as_bytes());
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains(job.to_str().unwrap()) && out.stderr.contains("schedule"), "{}", out.stderr);
    assert!(!ws.path().join("store").exists(), "nothing read or written");
    // A good expression is accepted by `kiban run`, which ignores it.
    let job = ws.write("job.toml", demo_job("good", &ws.path().join("store"), "0 2 * * *").as_bytes());
    assert_eq!(kiban(&["run", job.to_str().unwrap()]).code, 0);
}

#[test]
fn a_missing_directory_or_one_without_schedulable_jobs_exits_2() {
    let ws = Workspace::new();
    let missing = ws.path().join("missing");
    let out = kiban(&["schedule", missing.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("missing"), "{}", out.stderr);

    let mut manual: toml::Table = toml::from_str(&demo_job("manual", &ws.path().join("store"), "* * * * *")).unwrap();
    manual.remove("schedule");
    ws.write("manual.toml", toml::to_string(&manual).unwrap().as_bytes());
    ws.write("broken.toml", b"name = ");
    let out = kiban_within(&["schedule", ws.path().to_str().unwrap()], Duration::from_secs(20));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no job can be scheduled") && out.stderr.contains("broken.toml"), "{}", out.stderr);
}

#[test]
fn sigterm_stops_the_scheduler_with_status_0() {
    let ws = Workspace::new();
    // Once a year: the scheduler only waits.
    ws.write("yearly.toml", demo_job("yearly", &ws.path().join("store"), "0 0 1 1 *").as_bytes());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiban"))
        .args(["--log-format", "json", "schedule", ws.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kiban");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = String::new();
    // Signal handlers are installed before the jobs are announced.
    while !log.contains("\"scheduled\"") {
        assert!(stderr.read_line(&mut log).expect("read stderr") > 0, "{log}");
    }
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after SIGTERM: {log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stderr.read_to_string(&mut log).expect("read stderr");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGTERM") && log.contains("scheduler stopped"), "{log}");
}
