//! rustls configurations of the publish protocol, from PEM files, on the ring provider (no
//! aws-lc in the build, see reference/build.md).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: no PEM certificate in the file")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file")]
    NoKey { path: PathBuf },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS configuration: the CA bundle {path}: {reason}")]
    Verifier { path: PathBuf, reason: String },
    #[error("{0}")]
    Certificate(String),
    #[error("{path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: wrong password for the PKCS#12 file")]
    WrongPassword { path: PathBuf },
    #[error("{path}: not a usable PKCS#12 file: {reason}")]
    Pkcs12 { path: PathBuf, reason: String },
    #[error("{path}: no password for the PKCS#12 file: {reason}")]
    NoPassword { path: PathBuf, reason: String },
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Read { path: path.to_path_buf(), source })
}

/// Every certificate of a PEM file, in order.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdentityError::Pem { path: path.to_path_buf(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(IdentityError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, IdentityError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => IdentityError::NoKey { path: path.to_path_buf() },
        other => IdentityError::Pem { path: path.to_path_buf(), reason: other.to_string() },
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA certificates of a PEM bundle, as rustls roots.
pub fn platform_roots(ca: &Path) -> Result<rustls::RootCertStore, IdentityError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certificates(ca)? {
        roots.add(c).map_err(|e| IdentityError::Verifier { path: ca.to_path_buf(), reason: e.to_string() })?;
    }
    Ok(roots)
}

/// A terminal's certificate chain and key, and what its certificate says.
pub struct TerminalIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub identity: crate::protocol::CertificateIdentity,
}

impl TerminalIdentity {
    /// From PEM files: the certificate (chain) and its private key.
    pub fn from_pem(certificate: &Path, key: &Path) -> Result<TerminalIdentity, IdentityError> {
        let chain = load_certificates(certificate)?;
        let key = load_private_key(key)?;
        let identity = crate::protocol::certificate_identity(&chain[0])
            .map_err(|reason| IdentityError::Pem { path: certificate.to_path_buf(), reason })?;
        Ok(TerminalIdentity { chain, key, identity })
    }
}

impl TerminalIdentity {
    /// From a PKCS#12 file (OpenSSL 3's AES/PBKDF2 and legacy RC2/3DES files): its first
    /// private key and that key's certificate chain. A wrong password is
    /// [`IdentityError::WrongPassword`].
    pub fn from_pkcs12(path: &Path, password: &str) -> Result<TerminalIdentity, IdentityError> {
        let bytes = read(path)?;
        let bad = |reason: String| IdentityError::Pkcs12 { path: path.to_path_buf(), reason };
        let store =
            p12_keystore::KeyStore::from_pkcs12(&bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed).map_err(|e| match e {
                p12_keystore::error::Error::MacError(_) => IdentityError::WrongPassword { path: path.to_path_buf() },
                other => bad(other.to_string()),
            })?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| bad("it holds no private key".into()))?;
        let certs: Vec<CertificateDer<'static>> = chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
        let first = certs.first().ok_or_else(|| bad("its private key has no certificate".into()))?;
        let identity = crate::protocol::certificate_identity(first).map_err(bad)?;
        let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
        Ok(TerminalIdentity { chain: certs, key, identity })
    }

    /// From what a job or the command line names: PEM files, or a PKCS#12 file whose password
    /// comes from an environment variable, a file, or (on a terminal) a prompt.
    pub fn load(source: &TerminalSource) -> Result<TerminalIdentity, IdentityError> {
        match source {
            TerminalSource::Pem { certificate, key } => TerminalIdentity::from_pem(certificate, key),
            TerminalSource::Pkcs12 { path, password } => {
                let no = |reason: String| IdentityError::NoPassword { path: path.clone(), reason };
                let secret = zeroize::Zeroizing::new(match password {
                    PasswordSource::Env(var) => std::env::var(var).map_err(|_| no(format!("the environment variable {var} is not set")))?,
                    PasswordSource::File(f) => std::fs::read_to_string(f)
                        .map_err(|e| no(format!("{}: {e}", f.display())))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                    PasswordSource::Prompt => {
                        if std::fs::File::open("/dev/tty").is_err() {
                            return Err(no("no terminal to ask on: name a password_env or password_file".into()));
                        }
                        rpassword::prompt_password(format!("password for {}: ", path.display())).map_err(|e| no(e.to_string()))?
                    }
                });
                TerminalIdentity::from_pkcs12(path, &secret)
            }
        }
    }
}

/// Where a terminal identity is kept.
#[derive(Debug, Clone)]
pub enum TerminalSource {
    Pem { certificate: PathBuf, key: PathBuf },
    Pkcs12 { path: PathBuf, password: PasswordSource },
}

/// Where a PKCS#12 password comes from.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// An environment variable's name.
    Env(String),
    /// A file whose first line is the password.
    File(PathBuf),
    /// Asked on the terminal, without echo.
    Prompt,
}

/// The client side: the platform's server certificate must chain to `ca`; the terminal identity,
/// when given, is the client certificate.
pub fn client_config(ca: &Path, identity: Option<TerminalIdentity>) -> Result<rustls::ClientConfig, IdentityError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(platform_roots(ca)?);
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain, id.key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The platform side: its certificate and key; every client must present a certificate that
/// chains to one of the `client_cas` bundles (rustls' `WebPkiClientVerifier`: chain, validity
/// period, key usage).
pub fn server_config(certificate: &Path, key: &Path, client_cas: &[&Path]) -> Result<rustls::ServerConfig, IdentityError> {
    let mut all = rustls::RootCertStore::empty();
    for ca in client_cas {
        all.roots.extend(platform_roots(ca)?.roots);
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(all), provider()).build().map_err(|e| {
        IdentityError::Verifier { path: client_cas.first().map(|p| p.to_path_buf()).unwrap_or_default(), reason: e.to_string() }
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certificates(certificate)?, load_private_key(key)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkcs12_of(dir: &Path, password: &str) -> (PathBuf, String) {
        let ca = crate::identity::certs::DemoCa::new("p12 test CA").unwrap();
        let t = ca.terminal("141309", crate::identity::certs::Validity::days(10)).unwrap();
        let key = PrivateKeyDer::from_pem_slice(t.key_pem.as_bytes()).unwrap();
        let cert = CertificateDer::from_pem_slice(t.certificate_pem.as_bytes()).unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(
            b"1".to_vec(),
            p12_keystore::PrivateKey::from_der(key.secret_der()).unwrap(),
            vec![p12_keystore::Certificate::from_der(&cert).unwrap()],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("terminal", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let path = dir.join("terminal.p12");
        std::fs::write(&path, store.writer(password).write().unwrap()).unwrap();
        (path, t.certificate_pem)
    }

    #[test]
    fn a_pkcs12_terminal_identity_opens_with_its_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = pkcs12_of(dir.path(), "correct horse");
        let id = TerminalIdentity::from_pkcs12(&path, "correct horse").unwrap();
        assert_eq!(id.identity.insurers, ["141309"]);
        assert!(client_config_with(&id).is_ok());
        let e = TerminalIdentity::from_pkcs12(&path, "wrong").err().unwrap();
        assert!(matches!(e, IdentityError::WrongPassword { .. }), "{e}");
        assert!(e.to_string().contains("wrong password") && !e.to_string().contains("correct horse"), "{e}");
        std::fs::write(dir.path().join("pw"), "correct horse\n").unwrap();
        let source = TerminalSource::Pkcs12 { path: path.clone(), password: PasswordSource::File(dir.path().join("pw")) };
        assert_eq!(TerminalIdentity::load(&source).unwrap().identity.insurers, ["141309"]);
        let unset = TerminalSource::Pkcs12 { path, password: PasswordSource::Env("KIBAN_TEST_SURELY_UNSET_VARIABLE".into()) };
        assert!(matches!(TerminalIdentity::load(&unset), Err(IdentityError::NoPassword { .. })));
    }

    /// An OpenSSL 3 file (AES-256-CBC, PBKDF2, SHA-256 MAC), when the openssl tool is there.
    #[test]
    fn an_openssl_pkcs12_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::identity::certs::DemoCa::new("p12 test CA").unwrap();
        let t = ca.terminal("131011", crate::identity::certs::Validity::days(10)).unwrap();
        let (cert, key) = t.write(dir.path(), "t").unwrap();
        let out = dir.path().join("t.p12");
        let status = std::process::Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:s3cret", "-in"])
            .arg(&cert)
            .arg("-inkey")
            .arg(&key)
            .arg("-out")
            .arg(&out)
            .status();
        let Ok(status) = status else {
            eprintln!("openssl is not installed: the p12-keystore written file is tested above");
            return;
        };
        assert!(status.success());
        assert_eq!(TerminalIdentity::from_pkcs12(&out, "s3cret").unwrap().identity.insurers, ["131011"]);
        assert!(matches!(TerminalIdentity::from_pkcs12(&out, "nope"), Err(IdentityError::WrongPassword { .. })));
    }

    fn client_config_with(id: &TerminalIdentity) -> Result<rustls::ClientConfig, rustls::Error> {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
    }
}
