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

fn roots(ca: &Path) -> Result<rustls::RootCertStore, IdentityError> {
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

/// The client side: the platform's server certificate must chain to `ca`; the terminal identity,
/// when given, is the client certificate.
pub fn client_config(ca: &Path, identity: Option<TerminalIdentity>) -> Result<rustls::ClientConfig, IdentityError> {
    let builder =
        rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?.with_root_certificates(roots(ca)?);
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain, id.key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The platform side: its certificate and key; every client must present a certificate that
/// chains to `client_ca` (rustls' `WebPkiClientVerifier`: chain, validity period, key usage).
pub fn server_config(certificate: &Path, key: &Path, client_ca: &Path) -> Result<rustls::ServerConfig, IdentityError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca)?), provider())
        .build()
        .map_err(|e| IdentityError::Verifier { path: client_ca.to_path_buf(), reason: e.to_string() })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certificates(certificate)?, load_private_key(key)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
