//! The publish protocol (SPEC §9) against a real `kiban platform serve` process over mutual TLS:
//! handshakes that must be refused, bad input answered with its status and code (and the
//! platform's state untouched), and a happy path through `PlatformClient` whose state digest is
//! checked against one computed independently from a snapshot.

use super::platform_fixture::{Pki, PlatformProcess};
use arrow::array::{ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use kiban::protocol::{self, Commit, ErrorBody, OpenLoad, State};
use kiban::publish::{ClientError, PlatformClient};
use kiban::schema::RecordSetSchema;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const INSURER: &str = "141309";
/// A record set with few columns: key (insurer_no, insured_no, kind, valid_from), valid_to.
const SET: &str = "benefit_restriction";
/// 2024-04-01 as days since 1970-01-01.
const APRIL_2024: i32 = 19_814;

// ---------------------------------------------------------------------------------------------
// Helpers

fn schema(set: &str) -> Arc<RecordSetSchema> {
    kiban::job::catalog::Catalog::embedded().unwrap().schemas.get(set).unwrap_or_else(|| panic!("no record set {set}")).clone()
}

/// A platform with a fresh state in `dir`.
fn platform(dir: &Path, pki: &Pki, extra: &str) -> PlatformProcess {
    PlatformProcess::start(dir, pki, &format!("{}/platform.sqlite", dir.display()), 0, extra)
}

/// A client that does not retry (4xx and TLS refusals are final anyway).
fn client(pki: &Pki, p: &PlatformProcess, stem: &str) -> PlatformClient {
    pki.client(&p.url, Some(stem), 1)
}

fn open_request(load_id: &str, base_version: u64, sets: &[&str]) -> OpenLoad {
    OpenLoad {
        insurer_no: INSURER.to_string(),
        load_id: load_id.to_string(),
        base_version,
        record_sets: sets.iter().map(|s| s.to_string()).collect(),
        replay: false,
    }
}

/// The status and code of a refused call, with the message for failure output.
#[track_caller]
fn rejected<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Rejected { status, code, message, .. }) => (status, code, message),
        other => panic!("expected the platform to refuse the call, got {other:?}"),
    }
}

/// The status and error body of a raw answer.
#[track_caller]
fn raw_error((status, body): (u16, Bytes)) -> (u16, String) {
    let e: ErrorBody = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("status {status}: not an error body ({e}): {}", String::from_utf8_lossy(&body)));
    assert!(!e.message.is_empty(), "an error without a message: {e:?}");
    (status, e.code)
}

/// The state of an insurer the tests have not committed anything for yet.
#[track_caller]
fn assert_empty_state(c: &mut PlatformClient) {
    let s = c.state(INSURER).unwrap();
    assert_eq!(s, State { insurer_no: INSURER.to_string(), version: 0, record_sets: BTreeMap::new() });
}

/// One row of `benefit_restriction`.
#[derive(Debug, Clone)]
struct Row {
    insured_no: String,
    kind: &'static str,
    valid_from: i32,
    valid_to: Option<i32>,
    record: i64,
}

fn person(i: usize) -> String {
    format!("{:010}", 1_234_500_000 + i)
}

fn rows(range: std::ops::Range<usize>) -> Vec<Row> {
    range
        .map(|i| Row {
            insured_no: person(i),
            kind: if i % 2 == 0 { "reimbursement" } else { "reduced_benefit" },
            valid_from: APRIL_2024 + i as i32,
            valid_to: (i % 3 != 0).then_some(APRIL_2024 + 365 + i as i32),
            record: i as i64 + 1,
        })
        .collect()
}

/// The set's content columns in schema order.
fn content(rows: &[Row]) -> Vec<ArrayRef> {
    vec![
        Arc::new(StringArray::from(vec![INSURER; rows.len()])),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.insured_no.as_str()))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.kind))),
        Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.valid_from))),
        Arc::new(Date32Array::from_iter(rows.iter().map(|r| r.valid_to))),
    ]
}

/// Each row's `row_hash`, as kiban's mapper computes it.
fn hashes(schema: &RecordSetSchema, rows: &[Row]) -> Vec<String> {
    kiban::map::rowset::row_hashes(schema, &content(rows)).iter().map(|h| h.unwrap().to_string()).collect()
}

/// A store snapshot of the set: `schema.arrow`'s own column order, provenance and row_hash last.
fn snapshot(schema: &RecordSetSchema, rows: &[Row]) -> RecordBatch {
    let names: Vec<&str> = schema.arrow.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["insurer_no", "insured_no", "kind", "valid_from", "valid_to", "source_file", "source_record", "source_offset", "row_hash"],
        "the test's rows follow the {SET} schema"
    );
    let mut cols = content(rows);
    cols.push(Arc::new(StringArray::from(vec!["test.csv"; rows.len()])));
    cols.push(Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.record))));
    cols.push(Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.record * 100))));
    cols.push(Arc::new(StringArray::from(hashes(schema, rows))));
    RecordBatch::try_new(schema.arrow.clone(), cols).unwrap()
}

/// A change row.
enum Change {
    Insert(Row),
    /// The platform's current hash of the row, and its new content.
    Update(String, Row),
    /// The platform's current hash of the row, and the row (only its key is sent).
    Delete(String, Row),
}

/// Change rows in `diff::change_schema` order.
fn changes(schema: &RecordSetSchema, changes: &[Change]) -> RecordBatch {
    let change_schema = kiban::diff::change_schema(schema);
    let names: Vec<&str> = change_schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "op",
            "old_row_hash",
            "new_row_hash",
            "insurer_no",
            "insured_no",
            "kind",
            "valid_from",
            "valid_to",
            "source_file",
            "source_record",
            "source_offset"
        ]
    );
    let row_of = |c: &Change| match c {
        Change::Insert(r) | Change::Update(_, r) | Change::Delete(_, r) => r.clone(),
    };
    let all: Vec<Row> = changes.iter().map(row_of).collect();
    let new_hashes = hashes(schema, &all);
    let full = |c: &Change| !matches!(c, Change::Delete(..));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(changes.iter().map(|c| match c {
            Change::Insert(_) => "insert",
            Change::Update(..) => "update",
            Change::Delete(..) => "delete",
        }))),
        Arc::new(StringArray::from_iter(changes.iter().map(|c| match c {
            Change::Insert(_) => None,
            Change::Update(h, _) | Change::Delete(h, _) => Some(h.clone()),
        }))),
        Arc::new(StringArray::from_iter(changes.iter().zip(&new_hashes).map(|(c, h)| full(c).then(|| h.clone())))),
        Arc::new(StringArray::from(vec![INSURER; changes.len()])),
        Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.insured_no.as_str()))),
        Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.kind))),
        Arc::new(Date32Array::from_iter_values(all.iter().map(|r| r.valid_from))),
        Arc::new(Date32Array::from_iter(changes.iter().zip(&all).map(|(c, r)| if full(c) { r.valid_to } else { None }))),
        Arc::new(StringArray::from_iter(changes.iter().map(|c| full(c).then_some("test.csv")))),
        Arc::new(Int64Array::from_iter(changes.iter().zip(&all).map(|(c, r)| full(c).then_some(r.record)))),
        Arc::new(Int64Array::from_iter(changes.iter().zip(&all).map(|(c, r)| full(c).then_some(r.record * 100)))),
    ];
    RecordBatch::try_new(change_schema, cols).unwrap()
}

fn inserts(schema: &RecordSetSchema, rows: &[Row]) -> Bytes {
    Bytes::from(protocol::encode_batch(&changes(schema, &rows.iter().cloned().map(Change::Insert).collect::<Vec<_>>())).unwrap())
}

/// Opens a load, sends `bodies` as batches 0, 1, … of SET and commits them.
fn publish(c: &mut PlatformClient, load_id: &str, base_version: u64, bodies: &[Bytes]) -> protocol::Receipt {
    c.open(&open_request(load_id, base_version, &[SET])).unwrap();
    let mut digests = Vec::new();
    let mut rows = 0;
    for (seq, body) in bodies.iter().enumerate() {
        let ack = c.put_batch(load_id, SET, seq as u64, body.clone()).unwrap();
        rows += ack.rows;
        digests.push(ack.digest);
    }
    c.commit(load_id, &Commit { batches: bodies.len() as u64, rows, digests: BTreeMap::from([(SET.to_string(), digests)]) }).unwrap()
}

/// A PUT of a batch with a Content-Digest header of the caller's choice, over its own mutual-TLS
/// connection (`PlatformClient` always sends the body's true digest).
fn put_with_digest(pki: &Pki, p: &PlatformProcess, path: &str, digest: &str, body: Bytes) -> (u16, Bytes) {
    use http_body_util::{BodyExt, Full};
    let (cert, key) = pki.pair("terminal-141309");
    let identity = kiban::identity::tls::TerminalIdentity::from_pem(&cert, &key).unwrap();
    let tls = kiban::identity::tls::client_config(&pki.ca, Some(identity)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", p.port)).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, tcp).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = hyper::Request::builder()
            .method("PUT")
            .uri(path)
            .header(hyper::header::HOST, format!("localhost:{}", p.port))
            .header(hyper::header::CONTENT_TYPE, protocol::ARROW_STREAM)
            .header("content-digest", digest)
            .body(Full::new(body))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    })
}

// ---------------------------------------------------------------------------------------------
// Handshakes

#[track_caller]
fn assert_tls_refused<T: std::fmt::Debug>(what: &str, alert: &str, r: Result<T, ClientError>) {
    match r {
        Err(ClientError::Tls { reason, .. }) => {
            assert!(reason.contains("refused"), "{what}: the reason does not say the platform refused the certificate: {reason}");
            assert!(reason.contains(alert), "{what}: the platform's alert should be {alert}: {reason}");
        }
        other => panic!("{what}: expected a TLS refusal, got {other:?}"),
    }
}

#[test]
fn handshakes_without_a_valid_certificate_are_refused_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let p = platform(dir.path(), &pki, "");
    let cases = [
        ("no client certificate", None, "CertificateRequired"),
        ("another CA", Some("other-ca-141309"), "UnknownCA"),
        ("expired", Some("expired-141309"), "CertificateExpired"),
    ];
    for (what, stem, alert) in cases {
        // A retry policy of 10 s: a refusal that were retried would take that long and end
        // `Unreachable`, not `Tls`.
        let mut c = pki.client(&p.url, stem, 10);
        let started = std::time::Instant::now();
        let r = c.state(INSURER);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{what}: retried ({:?})", started.elapsed());
        assert_tls_refused(what, alert, r);
        let started = std::time::Instant::now();
        let r = c.open(&open_request("141309-tls", 0, &[SET]));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{what}: retried ({:?})", started.elapsed());
        assert_tls_refused(what, alert, r);
    }
    // The platform is still serving, and nothing was opened.
    let mut good = client(&pki, &p, "terminal-141309");
    assert_empty_state(&mut good);
    let opened = good.open(&open_request("141309-tls", 0, &[SET])).unwrap();
    assert_eq!(opened.status, "open", "the refused opens must not have recorded the load");
}

#[test]
fn another_insurers_certificate_is_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let p = platform(dir.path(), &pki, "");
    let schema = schema(SET);
    let mut other = client(&pki, &p, "terminal-131011");
    let mut own = client(&pki, &p, "terminal-141309");

    let (status, code, message) = rejected(other.open(&open_request("141309-forbidden", 0, &[SET])));
    assert_eq!((status, code.as_str()), (403, "wrong_insurer"), "{message}");
    assert!(message.contains("131011") && message.contains(INSURER), "{message}");
    let (status, code, message) = rejected(other.state(INSURER));
    assert_eq!((status, code.as_str()), (403, "wrong_insurer"), "{message}");
    let (status, body) = other
        .raw("GET", &format!("/v1/insurers/{INSURER}/records/{SET}?insured_no={}", person(0)), "application/json", Bytes::new())
        .unwrap();
    assert_eq!(raw_error((status, body)), (403, "wrong_insurer".to_string()));
    // Its own insurer is fine.
    assert_eq!(other.state("131011").unwrap().version, 0);

    // A load of 141309 takes no batch and no commit from 131011's terminal.
    own.open(&open_request("141309-owned", 0, &[SET])).unwrap();
    let body = inserts(&schema, &rows(0..2));
    let (status, code, _) = rejected(other.put_batch("141309-owned", SET, 0, body.clone()));
    assert_eq!((status, code.as_str()), (403, "wrong_insurer"));
    let ack = own.put_batch("141309-owned", SET, 0, body).unwrap();
    let commit = Commit { batches: 1, rows: 2, digests: BTreeMap::from([(SET.to_string(), vec![ack.digest])]) };
    let (status, code, _) = rejected(other.commit("141309-owned", &commit));
    assert_eq!((status, code.as_str()), (403, "wrong_insurer"));
    assert_empty_state(&mut own);
    assert_eq!(own.commit("141309-owned", &commit).unwrap().version, 1);
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn malformed_requests_and_unknown_record_sets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let p = platform(dir.path(), &pki, "");
    let schema = schema(SET);
    let mut c = client(&pki, &p, "terminal-141309");

    // Not JSON, and JSON of another shape.
    for body in [&b"{\"insurer_no\": \"141309\", "[..], b"not json at all", b"{\"insurer_no\": \"141309\", \"load_id\": \"x\"}"] {
        let answer = c.raw("POST", "/v1/loads", "application/json", Bytes::from_static(body)).unwrap();
        assert_eq!(raw_error(answer), (400, "malformed_json".to_string()), "{}", String::from_utf8_lossy(body));
    }
    let extra = serde_json::json!({"insurer_no": INSURER, "load_id": "141309-x", "base_version": 0, "record_sets": [SET], "force": true});
    let answer = c.raw("POST", "/v1/loads", "application/json", Bytes::from(extra.to_string())).unwrap();
    assert_eq!(raw_error(answer), (400, "malformed_json".to_string()), "unknown fields are refused");

    // An unknown record set when opening: 422, and nothing is opened.
    let (status, code, message) = rejected(c.open(&open_request("141309-sets", 0, &[SET, "no_such_set"])));
    assert_eq!((status, code.as_str()), (422, "unknown_record_set"), "{message}");
    assert!(message.contains("no_such_set"), "{message}");

    let opened = c.open(&open_request("141309-sets", 0, &[SET])).unwrap();
    assert_eq!((opened.status.as_str(), opened.receipt), ("open", None));
    let body = inserts(&schema, &rows(0..2));

    // An unknown record set in a batch path: 404.
    let (status, code, message) = rejected(c.put_batch("141309-sets", "no_such_set", 0, body.clone()));
    assert_eq!((status, code.as_str()), (404, "unknown_record_set"), "{message}");
    // A known set the load was not opened with: 422.
    let (status, code, _) = rejected(c.put_batch("141309-sets", "cost_limit", 0, body.clone()));
    assert_eq!((status, code.as_str()), (422, "record_set_not_in_load"));
    // An unknown load: 404.
    let (status, code, _) = rejected(c.put_batch("141309-never-opened", SET, 0, body.clone()));
    assert_eq!((status, code.as_str()), (404, "unknown_load"));

    // A batch without Content-Digest: 400.
    let answer = c.raw("PUT", &format!("/v1/loads/141309-sets/batches/{SET}/0"), protocol::ARROW_STREAM, body.clone()).unwrap();
    assert_eq!(raw_error(answer), (400, "missing_digest".to_string()));
    // A batch whose Content-Digest is not its body's: 400.
    let path = format!("/v1/loads/141309-sets/batches/{SET}/0");
    let wrong = protocol::content_digest(b"another body");
    let answer = put_with_digest(&pki, &p, &path, &wrong, body.clone());
    assert_eq!(raw_error(answer), (400, "digest_mismatch".to_string()));
    // The same request with the body's digest passes: the harness itself is sound.
    let (status, ack) = put_with_digest(&pki, &p, &path, &protocol::content_digest(&body), body.clone());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&ack));
    let ack: protocol::BatchAck = serde_json::from_slice(&ack).unwrap();
    assert_eq!((ack.rows, ack.digest.as_str()), (2, protocol::sha256_hex(&body).as_str()));

    // Not an Arrow stream: 400.
    let (status, code, _) = rejected(c.put_batch("141309-sets", SET, 1, Bytes::from_static(b"PAR1 not arrow")));
    assert_eq!((status, code.as_str()), (400, "malformed_batch"));

    // Arrow, but not the set's change schema: 422.
    let cost_limit = schema_of_changes_for("cost_limit");
    let (status, code, message) = rejected(c.put_batch("141309-sets", SET, 1, cost_limit));
    assert_eq!((status, code.as_str()), (422, "schema_mismatch"), "{message}");
    let mut fields: Vec<Field> = kiban::diff::change_schema(&schema).fields().iter().map(|f| f.as_ref().clone()).collect();
    let at = fields.iter().position(|f| f.name() == "valid_from").unwrap();
    fields[at] = Field::new("valid_from", DataType::Utf8, true);
    let good = changes(&schema, &rows(0..1).into_iter().map(Change::Insert).collect::<Vec<_>>());
    let mut cols = good.columns().to_vec();
    cols[at] = Arc::new(StringArray::from(vec!["2024-04-01"]));
    let wrong_type = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let (status, code, message) = rejected(c.put_batch("141309-sets", SET, 1, Bytes::from(protocol::encode_batch(&wrong_type).unwrap())));
    assert_eq!((status, code.as_str()), (422, "schema_mismatch"), "{message}");
    assert!(message.contains("valid_from"), "{message}");
    // The right schema with an op that is none of insert, update, delete: 422.
    let mut cols = good.columns().to_vec();
    cols[0] = Arc::new(StringArray::from(vec!["upsert"]));
    let bad_op = RecordBatch::try_new(good.schema(), cols).unwrap();
    let (status, code, _) = rejected(c.put_batch("141309-sets", SET, 1, Bytes::from(protocol::encode_batch(&bad_op).unwrap())));
    assert_eq!((status, code.as_str()), (422, "bad_op"));

    // A commit that is not JSON: 400.
    let answer = c.raw("POST", "/v1/loads/141309-sets/commit", "application/json", Bytes::from_static(b"[1, 2")).unwrap();
    assert_eq!(raw_error(answer), (400, "malformed_json".to_string()));

    // None of it changed the platform's state, and only the well-formed batch 0 was kept: batch 1
    // is still free for a valid body.
    assert_empty_state(&mut c);
    let ack1 = c.put_batch("141309-sets", SET, 1, inserts(&schema, &rows(2..3))).unwrap();
    assert_eq!(ack1.rows, 1);
    let receipt = c
        .commit("141309-sets", &Commit { batches: 2, rows: 3, digests: BTreeMap::from([(SET.to_string(), vec![ack.digest, ack1.digest])]) })
        .unwrap();
    assert_eq!((receipt.version, receipt.applied), (1, 3));
    let state = c.state(INSURER).unwrap();
    assert_eq!(state.record_sets[SET].rows, 3);
    assert_eq!(state.record_sets[SET].digest, kiban::map::rowset::set_digest(&schema, &snapshot(&schema, &rows(0..3))));
}

/// A valid change batch of another record set.
fn schema_of_changes_for(set: &str) -> Bytes {
    let s = schema(set);
    let cs = kiban::diff::change_schema(&s);
    let cols: Vec<ArrayRef> = cs
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "op" => Arc::new(StringArray::from(vec!["insert"])) as ArrayRef,
            _ => arrow::array::new_null_array(f.data_type(), 1),
        })
        .collect();
    Bytes::from(protocol::encode_batch(&RecordBatch::try_new(cs, cols).unwrap()).unwrap())
}

#[test]
fn a_batch_over_the_platforms_limit_is_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    // Not 1000: the IPC schema message alone makes even a one-row batch of this set about 3 KB.
    let p = platform(dir.path(), &pki, "max_batch_bytes = 5000");
    let schema = schema(SET);
    let mut c = client(&pki, &p, "terminal-141309");
    c.open(&open_request("141309-big", 0, &[SET])).unwrap();

    let big = inserts(&schema, &rows(0..300));
    assert!(big.len() > 5000, "the batch must be over the limit: {} bytes", big.len());
    let (status, code, message) = rejected(c.put_batch("141309-big", SET, 0, big));
    assert_eq!((status, code.as_str()), (413, "too_large"), "{message}");
    assert!(message.contains("5000"), "{message}");

    // The connection and the load are still usable, and seq 0 was not taken by the refused body.
    let small = inserts(&schema, &rows(0..1));
    assert!(small.len() <= 5000, "{} bytes", small.len());
    let ack = c.put_batch("141309-big", SET, 0, small).unwrap();
    assert_eq!(ack.rows, 1);
    assert_empty_state(&mut c);
}

#[test]
fn commits_and_batches_that_disagree_are_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let p = platform(dir.path(), &pki, "");
    let schema = schema(SET);
    let mut c = client(&pki, &p, "terminal-141309");
    let load = "141309-conflicts";
    c.open(&open_request(load, 0, &[SET])).unwrap();
    let body0 = inserts(&schema, &rows(0..3));
    let ack0 = c.put_batch(load, SET, 0, body0.clone()).unwrap();
    assert_eq!((ack0.record_set.as_str(), ack0.seq, ack0.rows), (SET, 0, 3));
    assert_eq!(ack0.digest, protocol::sha256_hex(&body0));

    // The same seq with the same body: acknowledged again, identically.
    assert_eq!(c.put_batch(load, SET, 0, body0.clone()).unwrap(), ack0);
    // With another body: 409, and the stored batch is unchanged.
    let other = inserts(&schema, &rows(10..12));
    let (status, code, message) = rejected(c.put_batch(load, SET, 0, other));
    assert_eq!((status, code.as_str()), (409, "batch_conflict"), "{message}");
    assert!(message.contains(&ack0.digest), "{message}");
    assert_eq!(c.put_batch(load, SET, 0, body0.clone()).unwrap(), ack0);

    let commit =
        |digests: Vec<String>, batches: u64, rows: u64| Commit { batches, rows, digests: BTreeMap::from([(SET.to_string(), digests)]) };
    // A commit naming a batch that was never sent.
    let (status, code, message) = rejected(c.commit(load, &commit(vec![ack0.digest.clone(), protocol::sha256_hex(b"batch 1")], 2, 5)));
    assert_eq!((status, code.as_str()), (409, "missing_batches"), "{message}");
    // A commit whose digest is not the stored batch's.
    let (status, code, message) = rejected(c.commit(load, &commit(vec![protocol::sha256_hex(b"something else")], 1, 3)));
    assert_eq!((status, code.as_str()), (409, "digest_mismatch"), "{message}");
    // A commit that leaves out a received batch.
    let ack1 = c.put_batch(load, SET, 1, inserts(&schema, &rows(3..5))).unwrap();
    let (status, code, _) = rejected(c.commit(load, &commit(vec![ack0.digest.clone()], 1, 3)));
    assert_eq!((status, code.as_str()), (409, "unexpected_batches"));
    // A commit whose counts are not what was received.
    let (status, code, _) = rejected(c.commit(load, &commit(vec![ack0.digest.clone(), ack1.digest.clone()], 2, 6)));
    assert_eq!((status, code.as_str()), (409, "count_mismatch"));
    // A commit naming a record set the load was not opened with.
    let mut foreign = commit(vec![ack0.digest.clone(), ack1.digest.clone()], 2, 5);
    foreign.digests.insert("cost_limit".into(), vec![]);
    let (status, code, _) = rejected(c.commit(load, &foreign));
    assert_eq!((status, code.as_str()), (422, "record_set_not_in_load"));
    assert_empty_state(&mut c);

    // A second load opened on the same base before the first commits.
    let rival = "141309-rival";
    c.open(&open_request(rival, 0, &[SET])).unwrap();
    let rival_ack = c.put_batch(rival, SET, 0, inserts(&schema, &rows(20..22))).unwrap();

    let receipt = c.commit(load, &commit(vec![ack0.digest.clone(), ack1.digest.clone()], 2, 5)).unwrap();
    assert_eq!((receipt.version, receipt.applied), (1, 5));
    let after = c.state(INSURER).unwrap();
    assert_eq!((after.version, after.record_sets[SET].rows), (1, 5));

    // Opening a load against version 0 now: 409, the client must diff again.
    let (status, code, message) = rejected(c.open(&open_request("141309-late", 0, &[SET])));
    assert_eq!((status, code.as_str()), (409, "base_version_behind"), "{message}");
    // The rival, opened in time, cannot commit on the old base either; nothing of it is applied.
    let (status, code, message) = rejected(c.commit(rival, &commit(vec![rival_ack.digest.clone()], 1, 2)));
    assert_eq!((status, code.as_str()), (409, "base_version_behind"), "{message}");
    assert_eq!(c.state(INSURER).unwrap(), after);
    // A load may not be reopened with other parameters.
    let (status, code, _) = rejected(c.open(&open_request(load, 1, &[SET])));
    assert_eq!((status, code.as_str()), (409, "load_exists"));
    // A committed load takes no new batch, but recognises its own.
    let (status, code, _) = rejected(c.put_batch(load, SET, 2, inserts(&schema, &rows(30..31))));
    assert_eq!((status, code.as_str()), (409, "load_committed"));
    assert_eq!(c.put_batch(load, SET, 0, body0).unwrap(), ack0);
    assert_eq!(c.state(INSURER).unwrap(), after);
}

// ---------------------------------------------------------------------------------------------
// Happy path

#[test]
fn a_load_is_published_through_the_client_and_the_platform_state_matches_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let p = platform(dir.path(), &pki, "");
    let schema = schema(SET);
    let mut c = client(&pki, &p, "terminal-141309");
    assert_empty_state(&mut c);

    let load = "141309-0123456789abcdef";
    let opened = c.open(&open_request(load, 0, &[SET])).unwrap();
    assert_eq!(
        (opened.load_id.as_str(), opened.insurer_no.as_str(), opened.base_version, opened.record_sets.clone()),
        (load, INSURER, 0, vec![SET.to_string()])
    );
    assert_eq!((opened.status.as_str(), &opened.receipt), ("open", &None));
    // Opening again answers the same.
    assert_eq!(c.open(&open_request(load, 0, &[SET])).unwrap(), opened);

    let first = rows(0..5);
    let body0 = inserts(&schema, &first[..3]);
    let body1 = inserts(&schema, &first[3..]);
    let ack0 = c.put_batch(load, SET, 0, body0.clone()).unwrap();
    let ack1 = c.put_batch(load, SET, 1, body1.clone()).unwrap();
    assert_eq!((ack0.rows, ack1.rows), (3, 2));
    assert_eq!((ack0.digest.clone(), ack1.digest.clone()), (protocol::sha256_hex(&body0), protocol::sha256_hex(&body1)));
    // Batches are stored, not applied.
    assert_empty_state(&mut c);

    let commit = Commit { batches: 2, rows: 5, digests: BTreeMap::from([(SET.to_string(), vec![ack0.digest, ack1.digest])]) };
    let receipt = c.commit(load, &commit).unwrap();
    assert_eq!((receipt.load_id.as_str(), receipt.insurer_no.as_str(), receipt.version, receipt.applied), (load, INSURER, 1, 5));
    assert!(!receipt.receipt_id.is_empty());
    assert!(chrono::DateTime::parse_from_rfc3339(&receipt.committed_at).is_ok(), "{}", receipt.committed_at);
    // Committing again answers the same receipt; opening again shows the load committed.
    assert_eq!(c.commit(load, &commit).unwrap(), receipt);
    let reopened = c.open(&open_request(load, 0, &[SET])).unwrap();
    assert_eq!((reopened.status.as_str(), reopened.receipt.as_ref()), ("committed", Some(&receipt)));

    let state = c.state(INSURER).unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(state.record_sets.keys().collect::<Vec<_>>(), [SET]);
    assert_eq!(state.record_sets[SET].rows, 5);
    let expected = kiban::map::rowset::set_digest(&schema, &snapshot(&schema, &first));
    assert_eq!(state.record_sets[SET].digest, expected);
    assert_ne!(expected, kiban::map::rowset::set_digest(&schema, &snapshot(&schema, &first[..4])), "the digest depends on the rows");

    // One person's rows, as JSON.
    let records = |c: &mut PlatformClient, insured_no: &str| -> protocol::Records {
        let (status, body) = c
            .raw("GET", &format!("/v1/insurers/{INSURER}/records/{SET}?insured_no={insured_no}"), "application/json", Bytes::new())
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    };
    let r = records(&mut c, &person(2));
    assert_eq!((r.insurer_no.as_str(), r.record_set.as_str(), r.version, r.rows.len()), (INSURER, SET, 1, 1), "{r:?}");
    let row = &r.rows[0];
    assert_eq!(row["insurer_no"], INSURER);
    assert_eq!(row["insured_no"], person(2).as_str());
    assert_eq!(row["kind"], "reimbursement");
    assert_eq!(row["valid_from"], "2024-04-03");
    assert_eq!(row["valid_to"], "2025-04-03");
    assert!(row.get("op").is_none() && row.get("new_row_hash").is_none(), "change bookkeeping is not a record's data: {row}");
    assert!(records(&mut c, &person(99)).rows.is_empty());
    let answer = c.raw("GET", &format!("/v1/insurers/{INSURER}/records/{SET}"), "application/json", Bytes::new()).unwrap();
    assert_eq!(raw_error(answer), (400, "missing_parameter".to_string()));
    let answer =
        c.raw("GET", &format!("/v1/insurers/{INSURER}/records/no_such_set?insured_no=1"), "application/json", Bytes::new()).unwrap();
    assert_eq!(raw_error(answer), (404, "unknown_record_set".to_string()));

    // A second load against version 1: an update, a delete and an insert.
    let hashes_now = hashes(&schema, &first);
    let mut updated = first[1].clone();
    updated.valid_to = Some(APRIL_2024 + 1000);
    let added = rows(5..6).remove(0);
    let body = Bytes::from(
        protocol::encode_batch(&changes(
            &schema,
            &[
                Change::Update(hashes_now[1].clone(), updated.clone()),
                Change::Delete(hashes_now[4].clone(), first[4].clone()),
                Change::Insert(added.clone()),
            ],
        ))
        .unwrap(),
    );
    let second = publish(&mut c, "141309-second", 1, &[body]);
    assert_eq!((second.version, second.applied), (2, 3));
    let now = vec![first[0].clone(), updated, first[2].clone(), first[3].clone(), added];
    let state = c.state(INSURER).unwrap();
    assert_eq!((state.version, state.record_sets[SET].rows), (2, 5));
    assert_eq!(state.record_sets[SET].digest, kiban::map::rowset::set_digest(&schema, &snapshot(&schema, &now)));
    assert_eq!(records(&mut c, &person(1)).rows[0]["valid_to"], "2026-12-27");
    assert!(records(&mut c, &person(4)).rows.is_empty());
    assert_eq!(records(&mut c, &person(5)).version, 2);
    // Rows are read from the batch they came in, by their place in it (the insert is its third).
    let inserted = records(&mut c, &person(5));
    assert_eq!((inserted.rows.len(), &inserted.rows[0]["insured_no"]), (1, &serde_json::json!(person(5))));
    assert_eq!(records(&mut c, &person(0)).rows[0]["insured_no"], person(0).as_str(), "a row of the first load");

    // An update of a row in a version the platform no longer holds: the whole load is refused.
    let stale = Bytes::from(
        protocol::encode_batch(&changes(
            &schema,
            &[Change::Insert(rows(7..8).remove(0)), Change::Update(hashes_now[1].clone(), first[1].clone())],
        ))
        .unwrap(),
    );
    c.open(&open_request("141309-stale", 2, &[SET])).unwrap();
    let ack = c.put_batch("141309-stale", SET, 0, stale).unwrap();
    let (status, code, _) =
        rejected(c.commit("141309-stale", &Commit { batches: 1, rows: 2, digests: BTreeMap::from([(SET.to_string(), vec![ack.digest])]) }));
    assert_eq!((status, code.as_str()), (409, "change_conflict"));
    assert_eq!(c.state(INSURER).unwrap(), state);

    // An insert of a key the platform holds, and a delete of a row it does not hold: each
    // refuses its whole load, named by batch (and row), and nothing changes.
    let held = Change::Insert(first[0].clone());
    let gone = Change::Delete(hashes_now[4].clone(), first[4].clone());
    for (n, (change, says)) in
        [(held, "an insert of a key the platform already holds"), (gone, "row 1: a delete of a row the platform does not hold")]
            .into_iter()
            .enumerate()
    {
        let load = format!("141309-conflict-{n}");
        let body = Bytes::from(protocol::encode_batch(&changes(&schema, &[Change::Insert(rows(8..9).remove(0)), change])).unwrap());
        c.open(&open_request(&load, 2, &[SET])).unwrap();
        let ack = c.put_batch(&load, SET, 0, body).unwrap();
        let (status, code, message) =
            rejected(c.commit(&load, &Commit { batches: 1, rows: 2, digests: BTreeMap::from([(SET.to_string(), vec![ack.digest])]) }));
        assert_eq!((status, code.as_str()), (409, "change_conflict"), "{message}");
        assert!(message.contains(&format!("{SET} batch 0")) && message.contains(says), "{message}");
        assert_eq!(c.state(INSURER).unwrap(), state);
    }
}

#[test]
fn a_load_id_belongs_to_the_insurer_whose_number_starts_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let p = platform(dir.path(), &pki, "");
    let mut other = client(&pki, &p, "terminal-131011");
    // Insurer 131011 cannot take (or learn of) a load id of insurer 141309.
    let mut open = open_request("141309-0123456789abcdef", 0, &[SET]);
    open.insurer_no = "131011".into();
    let (status, code, message) = rejected(other.open(&open));
    assert_eq!((status, code.as_str()), (400, "bad_load_id"), "{message}");
    let mut owner = client(&pki, &p, "terminal-141309");
    let opened = owner.open(&open_request("141309-0123456789abcdef", 0, &[SET])).unwrap();
    assert_eq!((opened.insurer_no.as_str(), opened.status.as_str()), (INSURER, "open"));
}

/// The offset in an encoded stream of the first compressed buffer's stated (uncompressed) length.
fn first_compressed_length(body: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        let len = i32::from_le_bytes(body[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let message = arrow::ipc::root_as_message(&body[pos + 8..pos + 8 + len]).unwrap();
        let start = pos + 8 + len;
        if let Some(b) = message.header_as_record_batch() {
            return start + b.buffers().unwrap().iter().find(|x| x.length() >= 8).unwrap().offset() as usize;
        }
        pos = start + message.bodyLength() as usize;
    }
}

#[test]
fn a_batch_that_would_decompress_beyond_any_limit_is_refused_and_the_platform_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let p = platform(dir.path(), &pki, "");
    let mut c = client(&pki, &p, "terminal-141309");
    c.open(&open_request("141309-bomb", 0, &[SET])).unwrap();
    let schema = schema(SET);
    let mut body = inserts(&schema, &rows(0..50)).to_vec();
    let at = first_compressed_length(&body);
    body[at..at + 8].copy_from_slice(&(1i64 << 62).to_le_bytes());
    let (status, code, message) = rejected(c.put_batch("141309-bomb", SET, 0, Bytes::from(body)));
    assert_eq!((status, code.as_str()), (413, "too_large"), "{message}");
    // Still serving, nothing stored.
    assert_empty_state(&mut c);
    c.put_batch("141309-bomb", SET, 0, inserts(&schema, &rows(0..50))).unwrap();
}
