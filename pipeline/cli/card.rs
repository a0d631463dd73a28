//! `kiban card status|certificate|simulate` and `kiban login`: the identity module's commands.
//!
//! What they print names readers, the token, PIN tries and the auth certificate's subject,
//! serial and validity: the auth certificate names no person. PINs are read without echo (or
//! from `--pin-fd`) and never printed or logged.

use crate::identity::card::signer::{AnyJpki, CardSigningKey, card_client_config};
use crate::identity::card::{CardConnection, CardError, Jpki, Pin, PinStatus};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn fail(code: i32, e: &dyn std::fmt::Display) -> i32 {
    eprintln!("error: {e}");
    code
}

/// The first card (or the card in `reader`), its JPKI application selected.
fn open_card(reader: Option<&str>, wait: Duration) -> Result<AnyJpki, CardError> {
    #[cfg(feature = "pcsc")]
    {
        let readers = crate::identity::card::pcsc::PcscReaders::establish()?;
        let connection = readers.connect(reader, wait)?;
        Jpki::open(Box::new(connection) as Box<dyn CardConnection>)
    }
    #[cfg(not(feature = "pcsc"))]
    {
        let _ = (reader, wait, Jpki::<Box<dyn CardConnection>>::open);
        Err(CardError::NoPcscSupport)
    }
}

/// The auth certificate, as far as kiban shows it.
#[derive(Debug, serde::Serialize)]
pub struct CertificateSummary {
    pub subject: String,
    pub serial: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
}

fn summary(der: &[u8]) -> Result<CertificateSummary, String> {
    use x509_parser::prelude::*;
    let (_, c) = X509Certificate::from_der(der).map_err(|e| format!("the card's certificate does not parse: {e}"))?;
    let time = |t: &ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    };
    Ok(CertificateSummary {
        subject: c.subject().to_string(),
        serial: c.raw_serial_as_string(),
        issuer: c.issuer().to_string(),
        not_before: time(&c.validity().not_before),
        not_after: time(&c.validity().not_after),
    })
}

#[derive(Debug, serde::Serialize)]
struct Status {
    readers: Vec<ReaderStatus>,
    card: Option<CardStatus>,
}

#[derive(Debug, serde::Serialize)]
struct ReaderStatus {
    name: String,
    card_present: bool,
    atr: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct CardStatus {
    reader: String,
    token: String,
    pin: PinStatus,
    certificate: CertificateSummary,
}

fn readers() -> Result<Vec<ReaderStatus>, CardError> {
    #[cfg(feature = "pcsc")]
    {
        let r = crate::identity::card::pcsc::PcscReaders::establish()?;
        Ok(r.list()?.into_iter().map(|r| ReaderStatus { name: r.name, card_present: r.card_present, atr: r.atr }).collect())
    }
    #[cfg(not(feature = "pcsc"))]
    Err(CardError::NoPcscSupport)
}

fn card_status(reader: Option<&str>) -> Result<CardStatus, CardError> {
    let mut jpki = open_card(reader, Duration::ZERO)?;
    let token = jpki.token_label()?;
    let pin = jpki.pin_status()?;
    let der = jpki.auth_certificate()?;
    let certificate = summary(&der).map_err(|reason| CardError::Malformed { what: "certificate", reason })?;
    Ok(CardStatus { reader: jpki.reader().to_string(), token, pin, certificate })
}

/// `kiban card status`: exit 0 with a card, 1 without one or on a reader error.
pub fn status(reader: Option<&str>, json: bool) -> i32 {
    let readers = match readers() {
        Ok(r) => r,
        Err(e) => return fail(1, &e),
    };
    let card = if readers.iter().any(|r| r.card_present) { Some(card_status(reader)) } else { None };
    let (card, error) = match card {
        Some(Ok(c)) => (Some(c), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let missing = card.is_none();
    let names = readers.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
    if json {
        super::loads::print_json(&Status { readers, card });
    } else {
        if readers.is_empty() {
            println!("no card reader");
        }
        for r in &readers {
            let what = match (&r.card_present, &r.atr) {
                (true, Some(atr)) => format!("card present (ATR {atr})"),
                (true, None) => "card present".to_string(),
                (false, _) => "empty".to_string(),
            };
            println!("reader       {}: {what}", r.name);
        }
        if let Some(c) = &card {
            println!("card         JPKI in {}", c.reader);
            println!("token        {}", c.token);
            println!(
                "auth PIN     {}",
                match c.pin {
                    PinStatus::TriesLeft(n) => format!("{n} tries left"),
                    PinStatus::Verified => "verified in this session".into(),
                    PinStatus::Blocked => "BLOCKED (the municipality's counter resets it)".into(),
                }
            );
            println!("certificate  利用者証明用電子証明書, subject {}, serial {}", c.certificate.subject, c.certificate.serial);
            println!("             issued by {}", c.certificate.issuer);
            println!("             valid {} – {}", c.certificate.not_before, c.certificate.not_after);
        }
    }
    match (error, missing) {
        (Some(e), _) => fail(1, &e),
        (None, true) if names.is_empty() => fail(1, &CardError::NoReader),
        (None, true) => fail(1, &CardError::NoCard(names)),
        _ => 0,
    }
}

/// `kiban card certificate --out`: the auth certificate as PEM (or DER for a `.der`/`.cer` name).
pub fn certificate(reader: Option<&str>, out: &Path) -> i32 {
    let der = match open_card(reader, Duration::ZERO).and_then(|mut j| j.auth_certificate()) {
        Ok(d) => d,
        Err(e) => return fail(1, &e),
    };
    let bytes = match out.extension().and_then(|e| e.to_str()) {
        Some("der" | "cer") => der.clone(),
        _ => pem("CERTIFICATE", &der).into_bytes(),
    };
    if let Err(e) = crate::identity::certs::write_file(out, &bytes, 0o644) {
        return fail(1, &e);
    }
    match summary(&der) {
        Ok(s) => {
            println!("{}\t利用者証明用電子証明書, subject {}, serial {}, valid until {}", out.display(), s.subject, s.serial, s.not_after)
        }
        Err(e) => return fail(1, &e),
    }
    0
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(line));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn read_pin(fd: Option<i32>) -> Result<Pin, crate::identity::card::PinError> {
    match fd {
        Some(fd) => Pin::from_fd(fd),
        None => Pin::prompt("auth PIN (利用者証明用パスワード, 4 digits): "),
    }
}

/// `kiban card simulate create`: a simulated card whose certificate the test JPKI CA in
/// `issuer_dir` (`jpki-ca.pem`, `jpki-ca.key`: `kiban certs demo`) issues.
pub fn simulate_create(dir: &Path, issuer_dir: &Path, pin_fd: Option<i32>) -> i32 {
    let pin = match pin_fd {
        Some(fd) => match Pin::from_fd(fd) {
            Ok(p) => String::from_utf8_lossy(p.ascii()).to_string(),
            Err(e) => return fail(2, &e),
        },
        None => "1234".to_string(),
    };
    let ca = match crate::identity::certs::DemoCa::load(&issuer_dir.join("jpki-ca.pem"), &issuer_dir.join("jpki-ca.key")) {
        Ok(c) => c,
        Err(e) => return fail(2, &format!("{e} (`kiban certs demo --out {}` writes the test JPKI CA)", issuer_dir.display())),
    };
    let validity = crate::identity::certs::Validity::days(5 * 365);
    if let Err(e) = crate::identity::card::sim::SimulatedCard::create(dir, &ca, &pin, validity) {
        return fail(1, &e);
    }
    println!(
        "{}\tsimulated マイナンバーカード: token JPKIAPICCTOKEN2, auth PIN {}, 3 tries; serve it with `kiban card simulate serve --dir {}`",
        dir.display(),
        if pin_fd.is_some() { "as given" } else { "1234 (a test card's)" },
        dir.display()
    );
    0
}

/// `kiban card simulate serve`: the card in the virtual reader, until stopped.
pub fn simulate_serve(dir: &Path, vpcd: &str) -> i32 {
    if let Err(e) = crate::identity::card::sim::SimulatedCard::open(dir) {
        return fail(2, &e);
    }
    eprintln!("serving the simulated card in {} to the vpcd reader driver at {vpcd} (stop with Ctrl-C)", dir.display());
    match crate::identity::card::vpcd::serve(vpcd, dir) {
        Ok(()) => 0,
        Err(e) => fail(1, &e),
    }
}

/// What `kiban login` keeps: readable by its owner only.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedLogin {
    platform: String,
    token: String,
    expires_at: String,
    person: String,
}

/// Where the login token for `url` is kept: `$KIBAN_LOGIN_DIR`, else
/// `$XDG_STATE_HOME/kiban/logins`, else `~/.local/state/kiban/logins`; one file per platform.
pub fn token_path(url: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("KIBAN_LOGIN_DIR").map(PathBuf::from).or_else(|| {
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .map(|d| d.join("kiban/logins"))
    })?;
    let name: String = url
        .trim_end_matches('/')
        .trim_start_matches("https://")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' })
        .collect();
    Some(dir.join(format!("{name}.json")))
}

/// The saved, unexpired login token for `url`.
pub fn saved_token(url: &str) -> Option<String> {
    let path = token_path(url)?;
    let saved: SavedLogin = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let expires = chrono::DateTime::parse_from_rfc3339(&saved.expires_at).ok()?;
    if expires <= chrono::Utc::now() {
        tracing::info!(file = %path.display(), "the saved login has expired: run kiban login again");
        return None;
    }
    Some(saved.token)
}

/// Makes sure the token can be kept at `path` before the card is used: kiban's own login
/// directory is created (and kept) mode 0700; a `--token-file` must be in an existing directory,
/// whose mode is the user's business.
fn prepare_token_place(path: &Path, own_dir: bool) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if own_dir {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("{}: {e}", dir.display()))?;
    } else if !dir.is_dir() {
        return Err(format!("{}: no such directory for --token-file", dir.display()));
    }
    Ok(())
}

fn save_token(path: &Path, saved: &SavedLogin) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(saved).map_err(|e| e.to_string())?;
    crate::identity::certs::write_file(path, &bytes, 0o600).map_err(|e| e.to_string())
}

/// `kiban login`'s arguments.
pub struct LoginArgs<'a> {
    pub platform: &'a str,
    pub job: Option<&'a Path>,
    pub tls: &'a super::publish::TlsArgs,
    pub reader: Option<&'a str>,
    pub pin_fd: Option<i32>,
    pub card_tls: bool,
    pub token_file: Option<PathBuf>,
    pub wait: Duration,
}

/// `kiban login --platform <url>`: the card signs the platform's challenge (through the
/// terminal's connection), or authenticates the TLS connection itself (`--card-tls`); the
/// token is kept in a file only the user can read.
pub fn login(args: LoginArgs<'_>) -> i32 {
    let job = match args.job.map(crate::job::config::Job::load).transpose() {
        Ok(j) => j,
        Err(e) => return fail(2, &e),
    };
    let Some(path) = args.token_file.clone().or_else(|| token_path(args.platform)) else {
        return fail(2, &"no place for the login token: set HOME, XDG_STATE_HOME or KIBAN_LOGIN_DIR, or give --token-file");
    };
    if let Err(e) = prepare_token_place(&path, args.token_file.is_none()) {
        return fail(2, &format!("keeping the login token: {e}"));
    }
    // The network side first: a missing certificate should not cost a PIN entry.
    let terminal = if args.card_tls {
        None
    } else {
        match super::publish::terminal(job.as_ref(), args.tls) {
            Ok(t) => Some(t),
            Err(code) => return code,
        }
    };
    let ca = match terminal.as_ref().map(|(ca, _)| ca.clone()).or_else(|| super::publish::platform_ca(job.as_ref(), args.tls)) {
        Some(ca) => ca,
        None => return fail(2, &"give --ca (the platform's CA) or a --job whose [platform] names it"),
    };
    let mut jpki = match open_card(args.reader, args.wait) {
        Ok(j) => j,
        Err(e) => return fail(1, &e),
    };
    let certificate = match jpki.auth_certificate() {
        Ok(c) => c,
        Err(e) => return fail(1, &e),
    };
    if let Ok(PinStatus::Blocked) = jpki.pin_status() {
        return fail(1, &CardError::PinBlocked);
    }
    let pin = match read_pin(args.pin_fd) {
        Ok(p) => p,
        Err(e) => return fail(2, &e),
    };
    // A wrong PIN is told before anything goes to the platform.
    if let Err(e) = jpki.verify_pin(&pin) {
        return fail(1, &e);
    }
    let retry = crate::publish::RetryPolicy { give_up_after: Duration::from_secs(30), ..Default::default() };
    let session = if let Some((_, identity)) = terminal {
        let result = crate::identity::tls::client_config(&ca, Some(identity))
            .map_err(|e| e.to_string())
            .and_then(|config| crate::publish::PlatformClient::new(args.platform, config, retry).map_err(|e| e.to_string()))
            .and_then(|mut client| {
                let challenge = client.challenge().map_err(|e| e.to_string())?;
                let nonce = base64::engine::general_purpose::STANDARD
                    .decode(&challenge.nonce)
                    .map_err(|_| "the platform's nonce is not base64".to_string())?;
                let signature = jpki.sign_sha256(Some(&pin), &crate::protocol::login_message(&nonce)).map_err(|e| e.to_string())?;
                let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
                client
                    .login(&crate::protocol::Login {
                        nonce: Some(challenge.nonce),
                        certificate: Some(b64(&certificate)),
                        signature: Some(b64(&signature)),
                    })
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(s) => s,
            Err(e) => return fail(1, &e),
        }
    } else {
        let roots = match crate::identity::tls::platform_roots(&ca) {
            Ok(r) => r,
            Err(e) => return fail(2, &e),
        };
        let key = CardSigningKey::new(Arc::new(Mutex::new(jpki)), pin);
        let result = card_client_config(roots, certificate.into(), key)
            .map_err(|e| e.to_string())
            .and_then(|config| crate::publish::PlatformClient::new(args.platform, config, retry).map_err(|e| e.to_string()))
            .and_then(|mut client| client.login(&crate::protocol::Login::default()).map_err(|e| e.to_string()));
        match result {
            Ok(s) => s,
            Err(e) => return fail(1, &e),
        }
    };
    let saved =
        SavedLogin { platform: args.platform.to_string(), token: session.token, expires_at: session.expires_at, person: session.person };
    if let Err(e) = save_token(&path, &saved) {
        return fail(1, &format!("keeping the login token: {e}"));
    }
    println!(
        "logged in to {} as the holder of certificate {} until {}; token kept in {} (mode 0600)",
        args.platform,
        saved.person,
        saved.expires_at,
        path.display()
    );
    0
}
