//! Publish protocol v1 (SPEC §9): what the client (`publish/`) and the reference platform
//! (`platform/`) say to each other. The two meet only here.
//!
//! ```text
//!  client                                              platform
//!  POST /v1/loads {insurer_no, load_id, base_version, record_sets}
//!        ─────────────────────────────────────────────► open (same load_id → same answer;
//!                                                        base behind the platform → 409)
//!  PUT /v1/loads/{id}/batches/{set}/{seq}   Arrow IPC stream (zstd), Content-Digest
//!        ─────────────────────────────────────────────► stored, not applied (same digest → 200,
//!                                                        another digest → 409)
//!  POST /v1/loads/{id}/commit {batches, rows, digests}
//!        ─────────────────────────────────────────────► every batch applied in one transaction
//!        ◄───────────────────────────────────────────── receipt {version, applied, committed_at,
//!                                                        receipt_id} (again → the same receipt)
//!  GET /v1/insurers/{no}/state                         version, rows and digest per record set
//!  GET /v1/insurers/{no}/records/{set}?insured_no=…    one person's current rows, as JSON
//!
//!  card login (SPEC §10), over the terminal certificate's connection:
//!  POST /v1/auth/challenge {}                          ◄─ {nonce, expires_at} (single use, 5 min)
//!  POST /v1/auth/login {nonce, certificate, signature} ◄─ {token, expires_at, person}
//!        signature = the card's RSA PKCS#1 v1.5 SHA-256 over `login_message(nonce)`, by the key
//!        of `certificate` (利用者証明用電子証明書, DER), which must chain to the platform's JPKI CAs
//!  or over a TLS 1.2 connection authenticated by the card's key itself:
//!  POST /v1/auth/login {}                              ◄─ {token, expires_at, person}
//!  then `Authorization: Bearer <token>` (60 minutes) where the platform requires a login
//! ```
//!
//! A batch body is an Arrow IPC stream of change rows (`diff::change_schema` of its record set)
//! with zstd buffer compression. Its digest is SHA-256 over the body bytes: in the
//! `Content-Digest` header as RFC 9530 `sha-256=:<base64>:`, in JSON (the commit, the ledger) as
//! 64 lowercase hex digits. The state digest is `map::rowset::set_digest`'s: order-independent
//! over (key, row_hash), so the client computes the same from its store snapshot.
//!
//! Errors are JSON `{code, message}`; messages name loads, record sets and batch numbers, never
//! a person's data.

use arrow::datatypes::SchemaRef;
use arrow::ipc::CompressionType;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::record_batch::RecordBatch;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;

/// The media type of a batch body.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// The SAN URI prefix naming the insurer a terminal certificate may publish for.
pub const INSURER_URI: &str = "urn:kiban:insurer:";
/// Change rows per batch the client sends (a batch stays well under the platform's byte limit).
pub const DEFAULT_BATCH_ROWS: usize = 32 * 1024;
/// The platform's default limit on a batch body.
pub const DEFAULT_MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// `POST /v1/loads`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenLoad {
    /// 保険者番号 the load is for; must be the insurer of the client certificate.
    pub insurer_no: String,
    pub load_id: String,
    /// The platform version the load's changes were computed against (0: the empty state).
    pub base_version: u64,
    /// The record sets the load may send batches for.
    pub record_sets: Vec<String>,
    /// Sent by `kiban loads replay`: a platform may require a person's card login for replays
    /// (`Authorization: Bearer`, see `/v1/auth/login`). Left out of the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

/// The answer to `POST /v1/loads`: the same for the same load id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpenedLoad {
    pub load_id: String,
    pub insurer_no: String,
    pub base_version: u64,
    pub record_sets: Vec<String>,
    /// `open`, or `committed` (then `receipt` is set).
    pub status: String,
    #[serde(default)]
    pub receipt: Option<Receipt>,
}

/// The answer to a batch `PUT`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BatchAck {
    pub record_set: String,
    pub seq: u64,
    pub rows: u64,
    /// SHA-256 of the body, hex.
    pub digest: String,
}

/// `POST /v1/loads/{id}/commit`: what the client sent, so that the platform applies exactly that.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// Number of batches, over all record sets.
    pub batches: u64,
    /// Number of change rows, over all batches.
    pub rows: u64,
    /// Per record set, the digest (hex SHA-256) of each batch in `seq` order from 0.
    pub digests: BTreeMap<String, Vec<String>>,
}

/// The platform's receipt of a commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receipt {
    pub receipt_id: String,
    pub load_id: String,
    pub insurer_no: String,
    /// The insurer's platform version this commit made.
    pub version: u64,
    /// Change rows applied.
    pub applied: u64,
    /// RFC 3339, UTC.
    pub committed_at: String,
}

/// `GET /v1/insurers/{no}/state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub insurer_no: String,
    /// 0 before the first commit.
    pub version: u64,
    pub record_sets: BTreeMap<String, SetState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetState {
    pub rows: u64,
    /// `map::rowset::set_digest` of the set's current rows.
    pub digest: String,
}

/// `GET /v1/insurers/{no}/records/{set}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Records {
    pub insurer_no: String,
    pub record_set: String,
    pub version: u64,
    pub rows: Vec<serde_json::Value>,
}

/// Every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("Arrow IPC: {0}")]
    Ipc(#[from] arrow::error::ArrowError),
    #[error("the batch holds no Arrow IPC stream")]
    Empty,
    #[error("the Arrow IPC stream is too large: {0}")]
    Limits(String),
    #[error("not an Arrow IPC stream: {0}")]
    Malformed(String),
}

/// Hex SHA-256 of a body.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(body))
}

/// The `Content-Digest` header value of a body (RFC 9530).
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body)))
}

/// The SHA-256 of a `Content-Digest` header, as hex; `None` when it carries no `sha-256` entry.
pub fn parse_content_digest(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let (alg, value) = entry.trim().split_once('=')?;
        if !alg.trim().eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let b64 = value.trim().strip_prefix(':')?.strip_suffix(':')?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        (bytes.len() == 32).then(|| hex::encode(bytes))
    })
}

/// One batch as an Arrow IPC stream with zstd-compressed buffers.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>, ProtocolError> {
    let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::ZSTD))?;
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 4 + 1024);
    let mut w = StreamWriter::try_new_with_options(&mut out, &batch.schema(), options)?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(out)
}

/// Walks the messages of an IPC stream without decoding them and checks what decoding would
/// allocate: each compressed buffer states its uncompressed length in its first 8 bytes, which
/// the zstd decoder would allocate at once. A body whose buffers declare more than `max_bytes` in
/// all is refused before anything is decompressed (a 2 KB batch could otherwise ask for 4 EiB).
pub fn check_stream_limits(body: &[u8], max_bytes: u64) -> Result<(), ProtocolError> {
    let bad = |reason: String| ProtocolError::Malformed(reason);
    let mut pos = 0usize;
    let mut declared: u64 = 0;
    let read_i32 = |at: usize| -> Option<i32> { body.get(at..at + 4).and_then(|b| b.try_into().ok()).map(i32::from_le_bytes) };
    while pos < body.len() {
        let mut len = read_i32(pos).ok_or_else(|| bad("a truncated message header".into()))?;
        pos += 4;
        if len == -1 {
            len = read_i32(pos).ok_or_else(|| bad("a truncated message header".into()))?;
            pos += 4;
        }
        if len == 0 {
            break; // end of stream
        }
        let meta_len = usize::try_from(len).map_err(|_| bad("a negative message length".into()))?;
        let meta = body.get(pos..pos + meta_len).ok_or_else(|| bad("a truncated message".into()))?;
        pos += meta_len;
        let message = arrow::ipc::root_as_message(meta).map_err(|e| bad(format!("a message that does not parse: {e}")))?;
        let body_len = usize::try_from(message.bodyLength()).map_err(|_| bad("a negative body length".into()))?;
        let msg_body = body.get(pos..pos + body_len).ok_or_else(|| bad("a truncated message body".into()))?;
        pos += body_len;
        let batch = message.header_as_record_batch().or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
        let Some(batch) = batch else { continue };
        let compressed = batch.compression().is_some();
        for b in batch.buffers().iter().flatten() {
            let (offset, length) = (usize::try_from(b.offset()), usize::try_from(b.length()));
            let (Ok(offset), Ok(length)) = (offset, length) else { return Err(bad("a buffer with a negative offset or length".into())) };
            let buf = msg_body.get(offset..offset.saturating_add(length)).ok_or_else(|| bad("a buffer outside its message".into()))?;
            let size = if compressed && buf.len() >= 8 {
                let stated = i64::from_le_bytes(buf[..8].try_into().map_err(|_| bad("a short buffer".into()))?);
                if stated == -1 {
                    buf.len() as u64 - 8
                } else {
                    u64::try_from(stated).map_err(|_| bad("a negative buffer length".into()))?
                }
            } else {
                buf.len() as u64
            };
            declared = declared.saturating_add(size);
            if declared > max_bytes {
                return Err(ProtocolError::Limits(format!("its buffers declare more than {max_bytes} bytes once decompressed")));
            }
        }
    }
    Ok(())
}

/// The batches of an IPC stream body, and its schema.
pub fn decode_batches(body: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), ProtocolError> {
    if body.is_empty() {
        return Err(ProtocolError::Empty);
    }
    let reader = StreamReader::try_new(std::io::Cursor::new(body), None)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// Domain separation of the signed login message: a card signature made for a kiban login is
/// never valid for anything else, and no other signature is valid for a login.
pub const LOGIN_CONTEXT: &[u8] = b"kiban-login-v1\0";

/// What the card signs to log in: the context and the platform's nonce.
pub fn login_message(nonce: &[u8]) -> Vec<u8> {
    let mut m = LOGIN_CONTEXT.to_vec();
    m.extend_from_slice(nonce);
    m
}

/// The answer to `POST /v1/auth/challenge`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Challenge {
    /// 32 random bytes, base64.
    pub nonce: String,
    pub expires_at: String,
}

/// `POST /v1/auth/login`: all three fields for a challenge's answer, none over a connection
/// authenticated by the card.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The card's auth certificate, DER in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A logged-in person's bearer token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub expires_at: String,
    /// The person, as the serial number of their auth certificate (no name: the certificate has
    /// none).
    pub person: String,
}

/// What a certificate says about its holder: the subject, and the insurers named by SAN URIs
/// `urn:kiban:insurer:<no>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    pub subject: String,
    pub serial: String,
    pub insurers: Vec<String>,
}

/// Reads the subject and the insurer URIs of a DER certificate.
pub fn certificate_identity(der: &[u8]) -> Result<CertificateIdentity, String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut insurers = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && let Some(no) = uri.strip_prefix(INSURER_URI)
            {
                insurers.push(no.to_string());
            }
        }
    }
    Ok(CertificateIdentity { subject: cert.subject().to_string(), serial: cert.raw_serial_as_string(), insurers })
}

/// A 保険者番号: six ASCII digits. Paths and bodies are checked with it before use.
pub fn is_insurer_no(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A load id as kiban makes them (`<insurer>-<16 hex>`), or any other short token of
/// `[A-Za-z0-9._-]`: load ids appear in paths and logs.
pub fn is_load_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn content_digest_round_trips_and_rejects_others() {
        let body = b"change rows";
        let h = content_digest(body);
        assert!(h.starts_with("sha-256=:") && h.ends_with(':'));
        assert_eq!(parse_content_digest(&h), Some(sha256_hex(body)));
        assert_eq!(parse_content_digest(&format!("sha-512=:AAAA:, {h}")), Some(sha256_hex(body)));
        assert_eq!(parse_content_digest("sha-512=:AAAA:"), None);
        assert_eq!(parse_content_digest("sha-256=:not base64:"), None);
        assert_eq!(parse_content_digest("sha-256=:AAAA:"), None);
    }

    #[test]
    fn batches_round_trip_through_ipc_with_zstd() {
        let schema = Arc::new(Schema::new(vec![Field::new("op", DataType::Utf8, false), Field::new("n", DataType::Int64, true)]));
        let ops: Vec<&str> = (0..10_000).map(|i| if i % 3 == 0 { "insert" } else { "update" }).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(ops)), Arc::new(Int64Array::from_iter((0..10_000).map(|i| (i % 7 != 0).then_some(i))))],
        )
        .unwrap();
        let body = encode_batch(&batch).unwrap();
        assert!(body.len() < batch.get_array_memory_size() / 4, "compressed: {} bytes", body.len());
        let (got_schema, got) = decode_batches(&body).unwrap();
        assert_eq!(got_schema, schema);
        assert_eq!(got, vec![batch]);
        assert!(decode_batches(&body[..body.len() / 2]).is_err());
        check_stream_limits(&body, 1 << 20).unwrap();
        assert!(matches!(check_stream_limits(&body, 1000), Err(ProtocolError::Limits(_))));
        assert!(check_stream_limits(&body[..body.len() / 2], 1 << 20).is_err());
        // A compressed buffer that claims 4 EiB once decompressed is refused before decoding.
        let mut bomb = body.clone();
        let at = find_compressed_length(&bomb);
        bomb[at..at + 8].copy_from_slice(&(1i64 << 62).to_le_bytes());
        assert!(matches!(check_stream_limits(&bomb, 1 << 30), Err(ProtocolError::Limits(_))));
        assert!(matches!(decode_batches(b""), Err(ProtocolError::Empty)));
    }

    /// The offset in an encoded stream of the first compressed buffer's stated length.
    fn find_compressed_length(body: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            let len = i32::from_le_bytes(body[pos + 4..pos + 8].try_into().unwrap()) as usize;
            let meta = &body[pos + 8..pos + 8 + len];
            let m = arrow::ipc::root_as_message(meta).unwrap();
            let start = pos + 8 + len;
            if let Some(b) = m.header_as_record_batch() {
                let buf = b.buffers().unwrap().iter().find(|x| x.length() >= 8).unwrap();
                return start + buf.offset() as usize;
            }
            pos = start + m.bodyLength() as usize;
        }
    }

    #[test]
    fn ids_are_checked() {
        assert!(is_insurer_no("141309"));
        assert!(!is_insurer_no("14130a") && !is_insurer_no("1413090"));
        assert!(is_load_id("141309-0123456789abcdef"));
        assert!(!is_load_id("../x") && !is_load_id("a b") && !is_load_id(""));
    }
}
