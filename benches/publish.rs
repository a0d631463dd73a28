//! Publish throughput over loopback mutual TLS (SPEC §9): the change rows of `recipient` (20
//! columns) go from the store's `_changes` Parquet through Arrow IPC + zstd batches, SHA-256
//! digests and HTTP/1.1 over rustls to a reference platform (its own thread and runtime, SQLite
//! state in a temporary directory), which checks and stores every batch, then applies them all in
//! one commit. Target: at least 1M change rows per second on this 2-core machine.
//!
//! `cargo bench --bench publish` prints, besides criterion's figures, one line per size with the
//! split between sending the batches and the platform's commit.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiban::identity::certs::{DemoCa, Validity};
use kiban::job::catalog::Catalog;
use kiban::platform::{PlatformConfig, RunningPlatform};
use kiban::publish::{Plan, PlatformClient, RetryPolicy, deliver};
use kiban::store::Store;
use std::collections::BTreeMap;

fn publish(c: &mut Criterion) {
    let catalog = Catalog::embedded().expect("catalog");
    let set = catalog.schemas.get("recipient").expect("recipient").clone();
    let scale = if std::env::args().any(|a| a == "--bench") { 1 } else { 100 };
    let rows = 1_000_000u64 / scale;
    let dir = tempfile::tempdir().expect("tempdir");
    // Change rows: a first version diffed against nothing (all inserts) — the heaviest load.
    let store = Store::open(dir.path().join("store")).expect("store");
    let v = kiban::sample::store::write_versions(&store, &set, "141309", rows, 0).expect("versions");
    let written = kiban::diff::write_changes(&store, &catalog.schemas, None, &v.old).expect("changes");
    let changes: Vec<std::path::PathBuf> = written.iter().map(|(_, _, f)| store.root().join(&f.path)).collect();
    // Certificates and a platform on loopback.
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).expect("pki");
    let ca = DemoCa::new("bench CA").expect("ca");
    std::fs::write(pki.join("ca.pem"), ca.certificate_pem()).expect("ca.pem");
    let (server_cert, server_key) = ca.server(&["localhost"], Validity::days(2)).expect("server").write(&pki, "server").expect("write");
    let (cert, key) = ca.terminal("141309", Validity::days(2)).expect("terminal").write(&pki, "terminal").expect("write");
    let identity = || kiban::identity::tls::TerminalIdentity::from_pem(&cert, &key).expect("identity");
    let tls = kiban::identity::tls::client_config(&pki.join("ca.pem"), Some(identity())).expect("client tls");

    let mut group = c.benchmark_group("publish");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    let mut n = 0u32;
    group.bench_function(format!("{}k inserts of recipient", rows / 1000), |b| {
        b.iter(|| {
            // A fresh platform database per iteration: every load starts from version 0.
            n += 1;
            let platform = RunningPlatform::start(PlatformConfig {
                listen: "127.0.0.1:0".into(),
                database: dir.path().join(format!("platform-{n}.sqlite")).display().to_string(),
                certificate: server_cert.clone(),
                key: server_key.clone(),
                client_ca: pki.join("ca.pem"),
                max_batch_bytes: kiban::protocol::DEFAULT_MAX_BATCH_BYTES,
                login: None,
            })
            .expect("platform");
            let mut client =
                PlatformClient::new(&format!("https://localhost:{}", platform.addr.port()), tls.clone(), RetryPolicy::default())
                    .expect("client");
            let plan = Plan {
                load_id: format!("141309-bench{n}"),
                insurer_no: "141309".into(),
                platform_base_version: 0,
                full_snapshot: false,
                sets: BTreeMap::from([("recipient".to_string(), changes.clone())]),
            };
            let p = deliver(&mut client, &plan, &catalog.schemas, kiban::protocol::DEFAULT_BATCH_ROWS, false).expect("deliver");
            assert_eq!(p.receipt.applied, rows);
            eprintln!(
                "  {} rows in {:.3} s = {:.0} rows/s: batches sent in {:.3} s ({:.0} rows/s, {} batches, {:.1} MB), commit {:.3} s",
                p.rows,
                p.seconds,
                p.rows as f64 / p.seconds,
                p.seconds - p.commit_seconds,
                p.rows as f64 / (p.seconds - p.commit_seconds),
                p.batches,
                p.bytes_sent as f64 / 1e6,
                p.commit_seconds
            );
        })
    });
    group.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
