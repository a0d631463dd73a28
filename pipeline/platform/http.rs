//! One TLS connection: the handshake, the peer's identity, HTTP/1.1, routing and the handlers.

use super::config::LoginRequiredFor;
use super::db::{Committer, LoadRow};
use super::{ApiError, Platform};
use crate::protocol::{self, BatchAck, Commit, ErrorBody, OpenLoad, Records};
use arrow::array::Array;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest JSON request body.
const MAX_JSON_BYTES: usize = 1 << 20;

/// The client certificate of a connection.
struct Peer {
    addr: SocketAddr,
    identity: protocol::CertificateIdentity,
    /// Set when the certificate is a card's (a JPKI auth certificate, TLS 1.2 with the card's
    /// key): the person's certificate serial. Such a connection may only log in.
    card_person: Option<String>,
}

pub(super) async fn connection(platform: Arc<Platform>, acceptor: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream, addr: SocketAddr) {
    let tls = match acceptor.accept(tcp).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            // A port probe (`kiban run` checking whether its platform is up) or a client gone.
            tracing::debug!(peer = %addr, "connection closed before the TLS handshake: {e}");
            return;
        }
        Err(e) => {
            // No certificate, another CA, expired: rustls has already sent the alert.
            tracing::warn!(peer = %addr, "TLS handshake refused: {e}");
            return;
        }
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| protocol::certificate_identity(c.as_ref()))
        .unwrap_or_else(|| Err("no client certificate".into()));
    let identity = match identity {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(peer = %addr, "client certificate unreadable: {e}");
            return;
        }
    };
    let chain = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec).unwrap_or_default();
    // With [login], the TLS layer accepts terminals' and cards' certificates: tell them apart,
    // failing closed.
    let card_person = match platform.login.as_ref().map(|l| l.classify(&chain)) {
        None | Some(super::login::PeerKind::Terminal) => None,
        Some(super::login::PeerKind::Card) => Some(identity.serial.clone()),
        Some(super::login::PeerKind::Unknown) => {
            tracing::warn!(peer = %addr, "client certificate of neither the terminals' nor the cards' CAs: connection closed");
            return;
        }
    };
    tracing::debug!(peer = %addr, subject = %identity.subject, card = card_person.is_some(), "connection");
    let peer = Arc::new(Peer { addr, identity, card_person });
    let service = hyper::service::service_fn(move |req| {
        let platform = platform.clone();
        let peer = peer.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&platform, &peer, req).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service).await {
        tracing::debug!(peer = %addr, "connection ended: {e}");
    }
}

fn json_response<T: serde::Serialize>(status: u16, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut r = json_response(e.status, &ErrorBody { code: e.code.to_string(), message: e.message.clone() });
    if let Some(s) = e.retry_after
        && let Ok(v) = hyper::header::HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    if e.status == 401 {
        r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, hyper::header::HeaderValue::from_static("Bearer"));
    }
    r
}

async fn handle(platform: &Platform, peer: &Peer, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let res = route(platform, peer, req).await;
    let status = res.as_ref().map_or_else(|e| e.status, |r| r.status().as_u16());
    tracing::info!(peer = %peer.addr, subject = %peer.identity.subject, %method, %path, status, ms = started.elapsed().as_millis() as u64, "request");
    match res {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn route(platform: &Platform, peer: &Peer, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    if peer.card_person.is_some() && segments != ["v1", "auth", "login"] {
        return Err(ApiError::new(
            403,
            "terminal_certificate_required",
            "a connection authenticated by a card may only log in (POST /v1/auth/login); everything else needs a terminal certificate",
        ));
    }
    match (segments.as_slice(), &method) {
        (["v1", "auth", "challenge"], &Method::POST) => {
            let login = platform.login.as_ref().ok_or_else(no_login)?;
            Ok(json_response(200, &login.challenge(&peer.identity.serial)?))
        }
        (["v1", "auth", "login"], &Method::POST) => login(platform, peer, req).await,
        (["v1", "loads"], &Method::POST) => open_load(platform, peer, req).await,
        (["v1", "loads", load, "batches", set, seq], &Method::PUT) => {
            let seq = seq
                .parse::<u64>()
                .ok()
                .filter(|&n| i64::try_from(n).is_ok())
                .ok_or_else(|| ApiError::bad_request("bad_path", format!("batch number `{seq}` is not a number from 0 to 2^63 − 1")))?;
            let (load, set) = (load.to_string(), set.to_string());
            put_batch(platform, peer, &load, &set, seq, req).await
        }
        (["v1", "loads", load, "commit"], &Method::POST) => {
            let load = load.to_string();
            commit(platform, peer, &load, req).await
        }
        (["v1", "insurers", insurer, "state"], &Method::GET) => {
            authorize(peer, insurer)?;
            Ok(json_response(200, &platform.db.state(insurer).await?))
        }
        (["v1", "insurers", insurer, "records", set], &Method::GET) => {
            authorize(peer, insurer)?;
            require_person(platform, peer, req.headers(), LoginRequiredFor::Records).await?;
            if platform.schemas.get(set).is_none() {
                return Err(ApiError::unknown_set(set));
            }
            let insured_no = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("insured_no=")))
                .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
                .ok_or_else(|| ApiError::bad_request("missing_parameter", "give ?insured_no=<被保険者番号> (10 characters at most)"))?;
            let (version, rows) = platform.db.records(insurer, set, insured_no).await?;
            Ok(json_response(200, &Records { insurer_no: insurer.to_string(), record_set: set.to_string(), version, rows }))
        }
        (
            ["v1", "loads"]
            | ["v1", "loads", _, "batches", _, _]
            | ["v1", "loads", _, "commit"]
            | ["v1", "insurers", _, "state"]
            | ["v1", "auth", "challenge" | "login"],
            _,
        )
        | (["v1", "insurers", _, "records", _], _) => {
            Err(ApiError::new(405, "method_not_allowed", format!("{method} is not allowed on {path}")))
        }
        _ => Err(ApiError::not_found("not_found", format!("no endpoint {path}"))),
    }
}

fn no_login() -> ApiError {
    ApiError::not_found("login_not_configured", "this platform offers no card login (no [login] in its configuration)")
}

/// `POST /v1/auth/login`: a challenge answered by the card, or a card connection itself.
async fn login(platform: &Platform, peer: &Peer, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let login_config = platform.login.as_ref().ok_or_else(no_login)?;
    let body: protocol::Login = json_body(req, 64 * 1024).await?;
    // A token from a challenge is bound to the terminal certificate that asked for it; one from
    // the card's own TLS authentication came through no terminal, and any terminal may use it.
    let (person, terminal) = match &peer.card_person {
        Some(p) if body == protocol::Login::default() => (p.clone(), None),
        _ => (
            login_config.check_answer(&body, &peer.identity.serial)?,
            Some((peer.identity.subject.as_str(), peer.identity.serial.as_str())),
        ),
    };
    let subject = terminal.map(|t| t.0);
    let (token, hash, expires_at) = login_config.token()?;
    platform.db.insert_session(&hash, &person, terminal, &expires_at).await?;
    tracing::info!(peer = %peer.addr, person = %person, subject = subject.unwrap_or("-"), card_tls = subject.is_none(), %expires_at, "login");
    Ok(json_response(200, &protocol::Session { token, expires_at, person }))
}

/// The person logged in on this request (its bearer token, checked), if any. A platform without
/// `[login]` ignores the header: it has no logins to check it against and requires none.
async fn person(platform: &Platform, peer: &Peer, headers: &hyper::HeaderMap) -> Result<Option<String>, ApiError> {
    if platform.login.is_none() {
        return Ok(None);
    }
    let Some(token) = super::login::bearer(headers)? else { return Ok(None) };
    let bad = || ApiError::new(401, "bad_token", "the login token is not known to the platform: log in again (kiban login)");
    let (person, expires_at, terminal) = platform.db.session(&protocol::sha256_hex(token.as_bytes())).await?.ok_or_else(bad)?;
    if terminal.is_some_and(|t| t != peer.identity.serial) {
        return Err(ApiError::new(
            401,
            "token_of_another_terminal",
            "this login token was issued through another terminal certificate: log in again from this terminal (kiban login)",
        ));
    }
    let expires = chrono::DateTime::parse_from_rfc3339(&expires_at).map_err(|_| bad())?;
    if expires <= chrono::Utc::now() {
        return Err(ApiError::new(401, "token_expired", format!("the login token expired at {expires_at}: log in again (kiban login)")));
    }
    Ok(Some(person))
}

/// As `person`, and a person is required when the platform's `[login] require_for` names `what`.
async fn require_person(
    platform: &Platform,
    peer: &Peer,
    headers: &hyper::HeaderMap,
    what: LoginRequiredFor,
) -> Result<Option<String>, ApiError> {
    let person = person(platform, peer, headers).await?;
    if person.is_none() && platform.login.as_ref().is_some_and(|l| l.config.require_for.contains(&what)) {
        let thing = match what {
            LoginRequiredFor::Records => "the records view",
            LoginRequiredFor::Replays => "a replay",
        };
        return Err(ApiError::new(
            401,
            "login_required",
            format!("{thing} needs a person logged in with a マイナンバーカード: run `kiban login --platform <url>`, then send its token"),
        ));
    }
    Ok(person)
}

/// The certificate must name the insurer (SAN URI `urn:kiban:insurer:<no>`).
fn authorize(peer: &Peer, insurer: &str) -> Result<(), ApiError> {
    if !protocol::is_insurer_no(insurer) {
        return Err(ApiError::bad_request("bad_insurer", "an insurer number is 6 digits"));
    }
    if peer.identity.insurers.iter().any(|i| i == insurer) {
        return Ok(());
    }
    let named = if peer.identity.insurers.is_empty() { "no insurer".to_string() } else { peer.identity.insurers.join(", ") };
    Err(ApiError::new(
        403,
        "wrong_insurer",
        format!("the client certificate ({}) is for {named}, not insurer {insurer}", peer.identity.subject),
    ))
}

async fn body_bytes(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(413, "too_large", format!("the request body is over the platform's limit of {limit} bytes"));
    if let Some(len) = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request("bad_body", format!("reading the request body: {e}"))),
    }
}

async fn json_body<T: serde::de::DeserializeOwned>(req: Request<Incoming>, limit: usize) -> Result<T, ApiError> {
    let body = body_bytes(req, limit).await?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("the request body is not the expected JSON: {e}")))
}

async fn load_of(platform: &Platform, peer: &Peer, load_id: &str) -> Result<LoadRow, ApiError> {
    if !protocol::is_load_id(load_id) {
        return Err(ApiError::bad_request("bad_load_id", "a load id is 1–128 characters of A–Z a–z 0–9 . _ -"));
    }
    let load = platform.db.load(load_id).await?.ok_or_else(|| ApiError::not_found("unknown_load", format!("no load {load_id}")))?;
    authorize(peer, &load.insurer_no)?;
    Ok(load)
}

async fn open_load(platform: &Platform, peer: &Peer, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = req.headers().clone();
    let open: OpenLoad = json_body(req, MAX_JSON_BYTES).await?;
    authorize(peer, &open.insurer_no)?;
    // A replay is what `kiban loads replay` declares. The platform cannot tell a first delivery
    // from a replay to a new platform, and re-opening a committed load is also how a scheduled
    // job resumes after a crash past the commit; a terminal certificate alone may publish (SPEC
    // §9), so the requirement makes operators' replays accountable to a person, nothing more.
    let replay = open.replay;
    if replay {
        require_person(platform, peer, &headers, LoginRequiredFor::Replays).await?;
    }
    if !protocol::is_load_id(&open.load_id) {
        return Err(ApiError::bad_request("bad_load_id", "a load id is 1–128 characters of A–Z a–z 0–9 . _ -"));
    }
    // Load ids live in one namespace: each insurer owns the ids that start with its number, so
    // no insurer can take (or learn of) another's.
    if !open.load_id.strip_prefix(open.insurer_no.as_str()).is_some_and(|rest| rest.starts_with('-')) {
        return Err(ApiError::bad_request(
            "bad_load_id",
            format!("a load id of insurer {} starts with `{}-`", open.insurer_no, open.insurer_no),
        ));
    }
    let sets: BTreeSet<&String> = open.record_sets.iter().collect();
    if sets.len() != open.record_sets.len() {
        return Err(ApiError::new(422, "duplicate_record_set", "a record set is named twice"));
    }
    if let Some(s) = open.record_sets.iter().find(|s| platform.schemas.get(s).is_none()) {
        return Err(ApiError::new(422, "unknown_record_set", format!("no record set `{s}`")));
    }
    if let Some(existing) = platform.db.load(&open.load_id).await? {
        if existing.insurer_no != open.insurer_no || existing.base_version != open.base_version || existing.record_sets != open.record_sets
        {
            return Err(ApiError::conflict(
                "load_exists",
                format!(
                    "load {} is already open for insurer {} against version {} with other parameters",
                    existing.load_id, existing.insurer_no, existing.base_version
                ),
            ));
        }
        return Ok(json_response(200, &platform.db.opened(&existing).await?));
    }
    let current = platform.db.version(&open.insurer_no).await?;
    if open.base_version != current {
        return Err(ApiError::conflict(
            "base_version_behind",
            format!(
                "load {} was computed against version {} of insurer {}, the platform holds version {current}: diff again against the platform's state",
                open.load_id, open.base_version, open.insurer_no
            ),
        ));
    }
    platform.db.insert_load(&open, &peer.identity.subject).await?;
    let load = platform.db.load(&open.load_id).await?.ok_or_else(|| ApiError::internal("the load vanished after it was recorded"))?;
    tracing::info!(load = %load.load_id, insurer = %load.insurer_no, base_version = load.base_version, subject = %peer.identity.subject, "load opened");
    Ok(json_response(200, &platform.db.opened(&load).await?))
}

async fn put_batch(
    platform: &Platform,
    peer: &Peer,
    load_id: &str,
    set: &str,
    seq: u64,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let load = load_of(platform, peer, load_id).await?;
    let Some(schema) = platform.schemas.get(set) else { return Err(ApiError::unknown_set(set)) };
    if !load.record_sets.iter().any(|s| s == set) {
        return Err(ApiError::new(422, "record_set_not_in_load", format!("load {load_id} was opened without record set {set}")));
    }
    let content_type = req.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with(protocol::ARROW_STREAM) {
        return Err(ApiError::bad_request("bad_content_type", format!("a batch is {}", protocol::ARROW_STREAM)));
    }
    let claimed = req
        .headers()
        .get("content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(protocol::parse_content_digest)
        .ok_or_else(|| ApiError::bad_request("missing_digest", "a batch needs a Content-Digest: sha-256=:<base64>: header"))?;
    let limit = usize::try_from(platform.config.max_batch_bytes).unwrap_or(usize::MAX);
    let body = body_bytes(req, limit).await?;
    let digest = protocol::sha256_hex(&body);
    if digest != claimed {
        return Err(ApiError::bad_request(
            "digest_mismatch",
            format!("{set} batch {seq} of load {load_id}: the body's SHA-256 is {digest}, its Content-Digest says {claimed}"),
        ));
    }
    if let Some((stored, rows)) = platform.db.batch(load_id, set, seq).await? {
        return same_batch(set, seq, load_id, &stored, rows, &digest);
    }
    let rows = check_batch(schema, set, seq, &body, platform.config.max_batch_bytes)?;
    let ack = BatchAck { record_set: set.to_string(), seq, rows, digest };
    // The load's status is read again under the commit lock, so no batch lands in a load
    // between its commit's check and its transaction.
    let _no_commit_meanwhile = platform.commits.lock().await;
    if platform.db.load(load_id).await?.is_none_or(|l| l.status != "open") {
        return Err(ApiError::conflict("load_committed", format!("load {load_id} is committed; it takes no new batches")));
    }
    if !platform.db.insert_batch(load_id, &ack, &body).await? {
        let (stored, rows) = platform.db.batch(load_id, set, seq).await?.ok_or_else(|| ApiError::internal("a batch vanished"))?;
        return same_batch(set, seq, load_id, &stored, rows, &ack.digest);
    }
    Ok(json_response(200, &ack))
}

/// A batch sent again: the same digest is acknowledged again, another is a conflict.
fn same_batch(set: &str, seq: u64, load_id: &str, stored: &str, rows: u64, digest: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    if stored == digest {
        return Ok(json_response(200, &BatchAck { record_set: set.to_string(), seq, rows, digest: digest.to_string() }));
    }
    Err(ApiError::conflict(
        "batch_conflict",
        format!("{set} batch {seq} of load {load_id} was received with digest {stored}; this one has {digest}"),
    ))
}

/// The body must be an Arrow IPC stream of the set's change schema with valid ops; returns its
/// row count.
fn check_batch(schema: &crate::schema::RecordSetSchema, set: &str, seq: u64, body: &[u8], max_bytes: u64) -> Result<u64, ApiError> {
    // Decompressed, a batch may be larger than its body, but not without bound.
    protocol::check_stream_limits(body, max_bytes.saturating_mul(16)).map_err(|e| match e {
        protocol::ProtocolError::Limits(_) => ApiError::new(413, "too_large", format!("{set} batch {seq}: {e}")),
        _ => ApiError::bad_request("malformed_batch", format!("{set} batch {seq}: {e}")),
    })?;
    let (got, batches) = protocol::decode_batches(body)
        .map_err(|e| ApiError::bad_request("malformed_batch", format!("{set} batch {seq}: not an Arrow IPC stream: {e}")))?;
    let want = crate::diff::change_schema(schema);
    let mismatch = |what: String| ApiError::new(422, "schema_mismatch", format!("{set} batch {seq}: {what}"));
    if got.fields().len() != want.fields().len() {
        return Err(mismatch(format!("{} columns, the record set's changes have {}", got.fields().len(), want.fields().len())));
    }
    for (g, w) in got.fields().iter().zip(want.fields()) {
        if g.name() != w.name() || g.data_type() != w.data_type() {
            return Err(mismatch(format!("column `{}` ({}) where `{}` ({}) belongs", g.name(), g.data_type(), w.name(), w.data_type())));
        }
    }
    let mut rows = 0u64;
    let key_names: Vec<&str> = schema.key.iter().map(|&k| schema.columns[k].name.as_str()).collect();
    for b in &batches {
        let text = |name: &str| b.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>());
        let (Some(ops), Some(old), Some(new)) = (text(crate::diff::OP), text(crate::diff::OLD_ROW_HASH), text(crate::diff::NEW_ROW_HASH))
        else {
            return Err(mismatch("op, old_row_hash and new_row_hash must be text".into()));
        };
        let keys: Vec<&arrow::array::ArrayRef> = key_names.iter().filter_map(|n| b.column_by_name(n)).collect();
        for i in 0..b.num_rows() {
            let row = rows + i as u64;
            let refuse = |what: &str| ApiError::new(422, "bad_change", format!("{set} batch {seq} row {row}: {what}"));
            let needs = match ops.is_valid(i).then(|| ops.value(i)) {
                Some("insert") => (false, true),
                Some("update") => (true, true),
                Some("delete") => (true, false),
                _ => return Err(ApiError::new(422, "bad_op", format!("{set} batch {seq} row {row}: op must be insert, update or delete"))),
            };
            if (needs.0 && !old.is_valid(i)) || (needs.1 && !new.is_valid(i)) {
                return Err(refuse("the row hashes its op needs are missing"));
            }
            if keys.iter().any(|k| k.is_null(i)) {
                return Err(refuse("a key column is null"));
            }
        }
        rows += b.num_rows() as u64;
    }
    Ok(rows)
}

async fn commit(platform: &Platform, peer: &Peer, load_id: &str, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    // A commit lists one digest (~70 bytes) per batch: allow as much as a batch.
    let limit = usize::try_from(platform.config.max_batch_bytes).unwrap_or(usize::MAX).max(MAX_JSON_BYTES);
    let person = person(platform, peer, req.headers()).await?;
    let commit: Commit = json_body(req, limit).await?;
    let load = load_of(platform, peer, load_id).await?;
    if let Some(r) = platform.db.receipt(load_id).await? {
        return Ok(json_response(200, &r));
    }
    if let Some(s) = commit.digests.keys().find(|s| !load.record_sets.contains(s)) {
        return Err(ApiError::new(422, "record_set_not_in_load", format!("load {load_id} was opened without record set {s}")));
    }
    // Under the lock from here: a batch stored while this commit is checked and applied (by a
    // client that does not wait for its acknowledgements) would otherwise be left unapplied.
    let _one_at_a_time = platform.commits.lock().await;
    if let Some(r) = platform.db.receipt(load_id).await? {
        return Ok(json_response(200, &r));
    }
    let stored = platform.db.batches(load_id).await?;
    let mut order = Vec::new();
    let (mut batches, mut rows) = (0u64, 0u64);
    for (set, digests) in &commit.digests {
        for (seq, want) in digests.iter().enumerate() {
            let key = (set.clone(), seq as u64);
            match stored.get(&key) {
                None => {
                    return Err(ApiError::conflict(
                        "missing_batches",
                        format!("load {load_id}: {set} batch {seq} was never received; send it, then commit again"),
                    ));
                }
                Some((d, _)) if d != want => {
                    return Err(ApiError::conflict(
                        "digest_mismatch",
                        format!("load {load_id}: {set} batch {seq} was received with digest {d}, the commit names {want}"),
                    ));
                }
                Some((_, n)) => {
                    batches += 1;
                    rows += n;
                    order.push(key);
                }
            }
        }
    }
    if let Some((set, seq)) = stored.keys().find(|k| !order.contains(k)) {
        return Err(ApiError::conflict(
            "unexpected_batches",
            format!("load {load_id}: {set} batch {seq} was received but the commit does not name it"),
        ));
    }
    if batches != commit.batches || rows != commit.rows {
        return Err(ApiError::conflict(
            "count_mismatch",
            format!(
                "load {load_id}: the commit says {} batches and {} rows, the platform received {batches} and {rows}",
                commit.batches, commit.rows
            ),
        ));
    }
    let committer = Committer { subject: peer.identity.subject.clone(), serial: peer.identity.serial.clone(), person };
    let started = std::time::Instant::now();
    let receipt = platform.db.commit(&load, &order, &platform.schemas, &committer).await?;
    tracing::info!(
        load = %load_id,
        insurer = %receipt.insurer_no,
        version = receipt.version,
        applied = receipt.applied,
        subject = %committer.subject,
        serial = %committer.serial,
        person = committer.person.as_deref().unwrap_or("-"),
        seconds = started.elapsed().as_secs_f64(),
        "commit"
    );
    Ok(json_response(200, &receipt))
}
