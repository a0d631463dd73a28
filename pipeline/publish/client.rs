//! The HTTP client of the publish protocol: HTTP/1.1 over rustls with the terminal certificate,
//! one kept-alive connection, and retries.
//!
//! Every call of the protocol is idempotent (SPEC §9), so any call may be retried: a 5xx answer
//! (503's `Retry-After` honoured) or a connection that fails or breaks is retried with exponential
//! backoff and full jitter until `RetryPolicy::give_up_after`. A TLS refusal (no certificate,
//! unknown CA, expired) and a 4xx answer are final: retrying cannot change them.

use crate::protocol::{self, BatchAck, Commit, ErrorBody, OpenLoad, OpenedLoad, Receipt, State};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connecting and the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One request and its answer (a batch of a few MB over a slow line included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// A commit: the platform applies the whole load before it answers.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(900);

/// How long and how often to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first delay's upper bound; it doubles per attempt.
    pub initial: Duration,
    /// The largest delay.
    pub max_delay: Duration,
    /// No new attempt starts after this much time since the first.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { initial: Duration::from_millis(200), max_delay: Duration::from_secs(10), give_up_after: Duration::from_secs(120) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("platform URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: the TLS handshake failed: {reason}")]
    Tls { url: String, reason: String },
    /// `call` is the method and URL, e.g. `PUT https://host:8443/v1/loads/…/batches/recipient/3`.
    #[error("{call}: no answer after {attempts} attempts in {seconds:.0} s; last: {last}")]
    Unreachable { call: String, attempts: u32, seconds: f64, last: String },
    #[error("{call}: the platform answered {status} {code}: {message}")]
    Rejected { call: String, status: u16, code: String, message: String },
    #[error("{call}: an answer that is not the protocol's: {reason}")]
    Protocol { call: String, reason: String },
    #[error("cannot start the client's runtime: {0}")]
    Runtime(std::io::Error),
}

impl ClientError {
    /// The platform's error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// One attempt's failure: worth retrying or not.
enum Failure {
    Retry { reason: String, after: Option<Duration> },
    Final(ClientError),
}

/// A client of one platform. Its calls block (it owns a small runtime): the publisher around it
/// is synchronous, like the ledger.
pub struct PlatformClient {
    rt: tokio::runtime::Runtime,
    url: String,
    host: String,
    port: u16,
    server_name: rustls::pki_types::ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
    sender: Option<SendRequest<Full<Bytes>>>,
    retry: RetryPolicy,
    rng: u64,
    /// A person's login token (`kiban login`), sent as `Authorization: Bearer`.
    bearer: Option<zeroize::Zeroizing<String>>,
}

impl PlatformClient {
    /// `url` is `https://host[:port]`.
    pub fn new(url: &str, tls: rustls::ClientConfig, retry: RetryPolicy) -> Result<PlatformClient, ClientError> {
        let bad = |reason: &str| ClientError::Url { url: url.to_string(), reason: reason.to_string() };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("the platform is reached over https://"));
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(bad("give the platform's origin only (https://host:port)"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        let server_name =
            rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| bad("the host is not a DNS name or an IP address"))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ClientError::Runtime)?;
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Ok(PlatformClient {
            rt,
            url: url.trim_end_matches('/').to_string(),
            host,
            port,
            server_name,
            connector: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            sender: None,
            retry,
            rng: seed | 1,
            bearer: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends a person's login token with every call from now on.
    pub fn set_bearer(&mut self, token: Option<String>) {
        self.bearer = token.map(zeroize::Zeroizing::new);
    }

    /// `POST /v1/auth/challenge`.
    pub fn challenge(&mut self) -> Result<protocol::Challenge, ClientError> {
        self.json("POST", "/v1/auth/challenge", &serde_json::json!({}))
    }

    /// `POST /v1/auth/login`.
    pub fn login(&mut self, login: &protocol::Login) -> Result<protocol::Session, ClientError> {
        self.json("POST", "/v1/auth/login", login)
    }

    /// `GET /v1/insurers/{no}/records/{set}?insured_no=…`.
    pub fn records(&mut self, insurer_no: &str, set: &str, insured_no: &str) -> Result<protocol::Records, ClientError> {
        self.get(&format!("/v1/insurers/{insurer_no}/records/{set}?insured_no={insured_no}"))
    }

    pub fn open(&mut self, open: &OpenLoad) -> Result<OpenedLoad, ClientError> {
        self.json("POST", "/v1/loads", open)
    }

    pub fn put_batch(&mut self, load_id: &str, set: &str, seq: u64, body: Bytes) -> Result<BatchAck, ClientError> {
        let path = format!("/v1/loads/{load_id}/batches/{set}/{seq}");
        let digest = protocol::content_digest(&body);
        let (status, bytes) = self.call("PUT", &path, protocol::ARROW_STREAM, Some(&digest), body)?;
        self.parse("PUT", &path, status, &bytes)
    }

    pub fn commit(&mut self, load_id: &str, commit: &Commit) -> Result<Receipt, ClientError> {
        self.json("POST", &format!("/v1/loads/{load_id}/commit"), commit)
    }

    pub fn state(&mut self, insurer_no: &str) -> Result<State, ClientError> {
        self.get(&format!("/v1/insurers/{insurer_no}/state"))
    }

    /// Any call, for operators' tools and tests: the status and the body.
    pub fn raw(&mut self, method: &str, path: &str, content_type: &str, body: Bytes) -> Result<(u16, Bytes), ClientError> {
        self.call(method, path, content_type, None, body)
    }

    fn get<Resp: serde::de::DeserializeOwned>(&mut self, path: &str) -> Result<Resp, ClientError> {
        let (status, bytes) = self.call("GET", path, "application/json", None, Bytes::new())?;
        self.parse("GET", path, status, &bytes)
    }

    fn json<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| self.protocol_error(method, path, e.to_string()))?;
        let (status, bytes) = self.call(method, path, "application/json", None, Bytes::from(body))?;
        self.parse(method, path, status, &bytes)
    }

    fn protocol_error(&self, method: &str, path: &str, reason: String) -> ClientError {
        ClientError::Protocol { call: format!("{method} {}{path}", self.url), reason }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, method: &str, path: &str, status: u16, bytes: &[u8]) -> Result<T, ClientError> {
        if status == 200 {
            return serde_json::from_slice(bytes).map_err(|e| self.protocol_error(method, path, e.to_string()));
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(e) => (e.code, e.message),
            Err(_) => ("-".to_string(), String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()),
        };
        Err(ClientError::Rejected { call: format!("{method} {}{path}", self.url), status, code, message })
    }

    /// One call with retries; 2xx and 4xx answers are returned, 5xx and broken connections retried.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        digest: Option<&str>,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let failure = match self.attempt(method, path, content_type, digest, body.clone()) {
                Ok((status, after, bytes)) if status >= 500 => {
                    Failure::Retry { reason: format!("{status} {}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)])), after }
                }
                Ok((status, _, bytes)) => return Ok((status, bytes)),
                Err(f) => f,
            };
            match failure {
                Failure::Final(e) => return Err(e),
                Failure::Retry { reason, after } => {
                    self.sender = None;
                    let exp = self.retry.initial.saturating_mul(1u32 << attempts.min(16)).min(self.retry.max_delay);
                    let jitter = Duration::from_nanos(self.next_random() % (exp.as_nanos() as u64).max(1));
                    let delay = after.map_or(jitter, |a| a.max(jitter)).min(self.retry.max_delay.max(after.unwrap_or_default()));
                    if started.elapsed() + delay > self.retry.give_up_after {
                        return Err(ClientError::Unreachable {
                            call: format!("{method} {}{path}", self.url),
                            attempts,
                            seconds: started.elapsed().as_secs_f64(),
                            last: reason,
                        });
                    }
                    tracing::warn!(method, path, attempt = attempts, delay_ms = delay.as_millis() as u64, "retrying: {reason}");
                    std::thread::sleep(delay);
                }
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: jitter needs spread, not secrecy.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn attempt(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        digest: Option<&str>,
        body: Bytes,
    ) -> Result<(u16, Option<Duration>, Bytes), Failure> {
        let url = self.url.clone();
        let host_header = if self.port == 443 { self.host.clone() } else { format!("{}:{}", self.host, self.port) };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host_header)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(d) = digest {
            builder = builder.header("content-digest", d);
        }
        if let Some(t) = &self.bearer {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {}", t.as_str()));
        }
        let req =
            builder.body(Full::new(body)).map_err(|e| Failure::Final(ClientError::Url { url: url.clone(), reason: e.to_string() }))?;
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.rt.block_on(connect(&self.connector, &self.host, self.port, self.server_name.clone(), &url))?,
        };
        // A platform that accepts and then stalls (or a connection silently dropped) must not
        // hang the run, which holds the store's lock: no answer in time is a failed attempt.
        // A commit applies a whole load, so it gets longer.
        let limit = if path.ends_with("/commit") { COMMIT_TIMEOUT } else { REQUEST_TIMEOUT };
        let res = self.rt.block_on(async {
            tokio::time::timeout(limit, async {
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let status = resp.status().as_u16();
                let retry_after =
                    resp.headers().get(hyper::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, retry_after, bytes))
            })
            .await
        });
        let Ok(res) = res else {
            return Err(Failure::Retry { reason: format!("no answer within {} s", limit.as_secs()), after: None });
        };
        match res {
            Ok((status, retry_after, bytes)) => {
                self.sender = Some(sender);
                Ok((status, retry_after.map(Duration::from_secs), bytes))
            }
            Err(e) => Err(classify(&url, &e)),
        }
    }
}

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    host: &str,
    port: u16,
    name: rustls::pki_types::ServerName<'static>,
    url: &str,
) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| Failure::Retry { reason: "connecting timed out".into(), after: None })?
        .map_err(|e| Failure::Retry { reason: format!("connecting: {e}"), after: None })?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| Failure::Retry { reason: "the TLS handshake timed out".into(), after: None })?
        .map_err(|e| classify(url, &e))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| Failure::Retry { reason: format!("HTTP handshake: {e}"), after: None })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A TLS refusal is final (the certificates decide it); anything else on the wire is retried.
fn classify(url: &str, e: &(dyn std::error::Error + 'static)) -> Failure {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(t) = tls {
            let reason = match t {
                rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) | rustls::Error::PeerIncompatible(_) => format!(
                    "no TLS version in common with the platform ({t}); client authentication with a マイナンバーカード needs TLS 1.2, \
                     because the card signs PKCS#1 v1.5 only and TLS 1.3 does not allow that"
                ),
                rustls::Error::AlertReceived(a) => format!("the platform refused this client's certificate (alert {a:?})"),
                rustls::Error::InvalidCertificate(c) => format!("the platform's certificate is not trusted: {c:?}"),
                other => other.to_string(),
            };
            return Failure::Final(ClientError::Tls { url: url.to_string(), reason });
        }
        cur = err.source();
    }
    Failure::Retry { reason: e.to_string(), after: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::card::signer::{AnyJpki, CardSigningKey, card_client_config};
    use crate::identity::card::{CardConnection, Jpki, Pin};

    /// A platform that speaks TLS 1.3 only, against a card key: refused before any request, and
    /// the error says why (the card signs PKCS#1 v1.5, which TLS 1.3 forbids).
    #[test]
    fn a_card_key_against_a_tls13_only_platform_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        crate::identity::certs::write_demo(&certs, &["141309".to_string()], false).unwrap();
        let card_dir = dir.path().join("card");
        drop(crate::identity::card::sim::tests::card(&card_dir));
        let jpki: AnyJpki = Jpki::open(Box::new(crate::identity::card::sim::InProcess {
            card: crate::identity::card::sim::SimulatedCard::open(&card_dir).unwrap(),
        }) as Box<dyn CardConnection>)
        .unwrap();
        let certificate = crate::identity::tls::load_certificates(&card_dir.join("auth.pem")).unwrap().remove(0);

        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                crate::identity::tls::load_certificates(&certs.join("server.pem")).unwrap(),
                crate::identity::tls::load_private_key(&certs.join("server.key")).unwrap(),
            )
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server_thread = std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut conn = rustls::ServerConnection::new(Arc::new(server)).unwrap();
            // Runs the handshake until the client gives up.
            while conn.complete_io(&mut tcp).is_ok() && conn.is_handshaking() {}
        });

        let roots = crate::identity::tls::platform_roots(&certs.join("ca.pem")).unwrap();
        let pin = Pin::new(zeroize::Zeroizing::new("1234".into())).unwrap();
        let config = card_client_config(roots, certificate, CardSigningKey::new(Arc::new(std::sync::Mutex::new(jpki)), pin)).unwrap();
        let retry = RetryPolicy { give_up_after: Duration::from_secs(5), ..Default::default() };
        let mut client = PlatformClient::new(&format!("https://127.0.0.1:{port}"), config, retry).unwrap();
        let e = client.challenge().unwrap_err();
        assert!(matches!(e, ClientError::Tls { .. }), "a TLS refusal is final, not retried: {e}");
        assert!(e.to_string().contains("needs TLS 1.2") && e.to_string().contains("TLS 1.3"), "{e}");
        server_thread.join().unwrap();
    }
}
