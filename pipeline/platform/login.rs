//! Card login (SPEC §10) on the platform: challenges, the check of a card's signature and
//! certificate chain, and bearer tokens.
//!
//! ```text
//!  terminal connection: POST /v1/auth/challenge ─► nonce (32 random bytes, single use, 5 min)
//!                       POST /v1/auth/login {nonce, certificate, signature}
//!                         certificate ─► webpki: chains to [login] jpki_ca, valid now,
//!                                        client-auth usage
//!                         signature   ─► RSA PKCS#1 v1.5 SHA-256 over login_message(nonce)
//!  card connection (TLS 1.2 client auth by the card; rustls checked chain and signature):
//!                       POST /v1/auth/login {}
//!  ─► token (32 random bytes, base64url), kept as SHA-256 in platform_sessions with the person
//!     (the auth certificate's serial number) and expiry
//! ```

use super::config::LoginConfig;
use super::{ApiError, PlatformError};
use base64::Engine;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A challenge's lifetime.
const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Open challenges kept at most (older ones are forgotten first).
const MAX_CHALLENGES: usize = 10_000;

pub(super) struct CardLogin {
    pub config: LoginConfig,
    /// The JPKI CAs: a chain to one of them is a card's.
    jpki: Anchors,
    /// The terminals' CAs (`client_ca`): with `[login]` the TLS layer accepts both kinds, so each
    /// connection is classified by which CAs its chain reaches.
    terminals: Anchors,
    /// Open challenges: when issued, and to which terminal certificate (serial).
    challenges: std::sync::Mutex<HashMap<[u8; 32], (Instant, String)>>,
    rng: ring::rand::SystemRandom,
}

/// Trust anchors of a PEM bundle, for webpki checks outside the TLS handshake.
struct Anchors(Vec<rustls::pki_types::TrustAnchor<'static>>);

impl Anchors {
    fn load(path: &std::path::Path) -> Result<Anchors, PlatformError> {
        let certs = crate::identity::tls::load_certificates(path)?;
        let anchors =
            certs.iter().map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned())).collect::<Result<Vec<_>, _>>().map_err(
                |e| {
                    PlatformError::Identity(crate::identity::tls::IdentityError::Verifier {
                        path: path.to_path_buf(),
                        reason: format!("{e:?}"),
                    })
                },
            )?;
        Ok(Anchors(anchors))
    }

    /// Whether `chain` (end entity first) chains to these anchors for client authentication.
    fn verify(&self, chain: &[CertificateDer<'_>]) -> Result<(), String> {
        let Some(ee) = chain.first() else { return Err("no certificate".into()) };
        let cert = webpki::EndEntityCert::try_from(ee).map_err(|e| format!("the certificate does not parse: {e:?}"))?;
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.0,
            &chain[1..],
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(drop)
        .map_err(|e| format!("{e:?}"))
    }
}

/// What a client certificate is, on a platform with `[login]`.
pub(super) enum PeerKind {
    /// A terminal certificate (chains to `client_ca`).
    Terminal,
    /// A card's auth certificate (chains to `jpki_ca`): may only log in.
    Card,
    /// Neither (cannot pass the TLS layer; refused should it ever).
    Unknown,
}

fn random<const N: usize>(rng: &ring::rand::SystemRandom) -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(rng, &mut b).map_err(|_| ApiError::internal("no system randomness"))?;
    Ok(b)
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(401, code, message)
}

impl CardLogin {
    pub fn new(config: &LoginConfig, client_ca: &std::path::Path) -> Result<CardLogin, PlatformError> {
        Ok(CardLogin {
            config: config.clone(),
            jpki: Anchors::load(&config.jpki_ca)?,
            terminals: Anchors::load(client_ca)?,
            challenges: std::sync::Mutex::new(HashMap::new()),
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// Classifies a connection's client certificate chain (end entity first). Fails closed: a
    /// chain that reaches neither CA set is `Unknown`, and one that reaches both is a terminal's
    /// only if it is not a card's.
    pub fn classify(&self, chain: &[CertificateDer<'_>]) -> PeerKind {
        if self.jpki.verify(chain).is_ok() {
            PeerKind::Card
        } else if self.terminals.verify(chain).is_ok() {
            PeerKind::Terminal
        } else {
            PeerKind::Unknown
        }
    }

    /// A new single-use nonce, to be answered through the terminal certificate `terminal_serial`.
    pub fn challenge(&self, terminal_serial: &str) -> Result<crate::protocol::Challenge, ApiError> {
        let nonce = random::<32>(&self.rng)?;
        let now = Instant::now();
        let mut open = self.challenges.lock().map_err(|_| ApiError::internal("challenge store poisoned"))?;
        open.retain(|_, (issued, _)| now.duration_since(*issued) < CHALLENGE_TTL);
        if open.len() >= MAX_CHALLENGES
            && let Some(oldest) = open.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(nonce, (now, terminal_serial.to_string()));
        let expires = chrono::Utc::now() + chrono::Duration::from_std(CHALLENGE_TTL).unwrap_or_default();
        Ok(crate::protocol::Challenge {
            nonce: base64::engine::general_purpose::STANDARD.encode(nonce),
            expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }

    /// Checks an answer to a challenge: the nonce (used up, whatever the outcome, and answered
    /// through the terminal it was issued to), the certificate chain and the signature. Returns
    /// the person (certificate serial).
    pub fn check_answer(&self, login: &crate::protocol::Login, terminal_serial: &str) -> Result<String, ApiError> {
        let b64 = |field: &'static str, v: &Option<String>| -> Result<Vec<u8>, ApiError> {
            let v = v.as_deref().ok_or_else(|| ApiError::bad_request("malformed_login", format!("`{field}` is missing")))?;
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|_| ApiError::bad_request("malformed_login", format!("`{field}` is not base64")))
        };
        let nonce: [u8; 32] =
            b64("nonce", &login.nonce)?.try_into().map_err(|_| ApiError::bad_request("malformed_login", "`nonce` is 32 bytes"))?;
        let certificate = CertificateDer::from(b64("certificate", &login.certificate)?);
        let signature = b64("signature", &login.signature)?;
        let issued = self.challenges.lock().map_err(|_| ApiError::internal("challenge store poisoned"))?.remove(&nonce);
        match issued {
            None => return Err(unauthorized("unknown_challenge", "this nonce was not issued by the platform, or was used already")),
            Some((t, _)) if t.elapsed() >= CHALLENGE_TTL => {
                return Err(unauthorized("challenge_expired", "the challenge expired; ask for another"));
            }
            Some((_, to)) if to != terminal_serial => {
                return Err(unauthorized("unknown_challenge", "this nonce was issued to another terminal certificate"));
            }
            Some(_) => {}
        }
        self.jpki
            .verify(std::slice::from_ref(&certificate))
            .map_err(|e| unauthorized("bad_certificate", format!("the card's certificate is not accepted: {e}")))?;
        let cert = webpki::EndEntityCert::try_from(&certificate)
            .map_err(|e| unauthorized("bad_certificate", format!("the card's certificate does not parse: {e:?}")))?;
        cert.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, &crate::protocol::login_message(&nonce), &signature)
            .map_err(|_| unauthorized("bad_signature", "the signature does not verify with the card's certificate"))?;
        person_of(&certificate)
    }

    /// A new token for `person`: the token, its SHA-256 (what is stored) and its expiry.
    pub fn token(&self) -> Result<(String, String, String), ApiError> {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>(&self.rng)?);
        let hash = crate::protocol::sha256_hex(token.as_bytes());
        let expires = chrono::Utc::now() + chrono::Duration::minutes(i64::from(self.config.token_minutes));
        Ok((token, hash, expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
    }
}

/// The person a card certificate stands for: its serial number.
pub fn person_of(certificate: &CertificateDer<'_>) -> Result<String, ApiError> {
    crate::protocol::certificate_identity(certificate)
        .map(|i| i.serial)
        .map_err(|e| unauthorized("bad_certificate", format!("the card's certificate does not parse: {e}")))
}

/// The bearer token of a request, if it has an `Authorization` header.
pub fn bearer(headers: &hyper::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(v) = headers.get(hyper::header::AUTHORIZATION) else { return Ok(None) };
    v.to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .map(Some)
        .ok_or_else(|| unauthorized("bad_token", "the Authorization header is not `Bearer <token>`"))
}
