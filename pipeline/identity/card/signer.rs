//! TLS client authentication with the card's auth key: a rustls `SigningKey` whose signatures
//! the card computes.
//!
//! The card signs PKCS#1 v1.5 only. TLS 1.3 allows RSA client signatures only as PSS, so a
//! card key can authenticate over TLS 1.2 alone (`rsa_pkcs1_sha256`): [`card_client_config`]
//! offers TLS 1.2 only, and a platform that speaks only TLS 1.3 gets a clear error instead of a
//! handshake without a client certificate. rustls hands the signer the message unhashed; the
//! card receives the SHA-256 `DigestInfo`. VERIFY and SIGN run in one PC/SC transaction.

use super::{CardConnection, CardError, Jpki, Pin};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use std::sync::{Arc, Mutex};

/// Any card connection, boxed: what the commands hold.
pub type AnyJpki = Jpki<Box<dyn CardConnection>>;

impl super::CardChannel for Box<dyn CardConnection> {
    fn transmit(&mut self, command: &super::apdu::Command) -> Result<super::apdu::Response, CardError> {
        (**self).transmit(command)
    }
}

impl CardConnection for Box<dyn CardConnection> {
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn super::CardChannel) -> Result<(), CardError>) -> Result<(), CardError> {
        (**self).transaction(f)
    }
    fn reader(&self) -> &str {
        (**self).reader()
    }
}

/// The card's auth key, with the PIN that unlocks it (zeroed when the key is dropped).
pub struct CardSigningKey {
    card: Arc<Mutex<AnyJpki>>,
    pin: Arc<Pin>,
}

impl std::fmt::Debug for CardSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardSigningKey(JPKI auth key)")
    }
}

impl CardSigningKey {
    pub fn new(card: Arc<Mutex<AnyJpki>>, pin: Pin) -> CardSigningKey {
        CardSigningKey { card, pin: Arc::new(pin) }
    }
}

impl SigningKey for CardSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        if offered.contains(&SignatureScheme::RSA_PKCS1_SHA256) {
            Some(Box::new(CardSigner { card: self.card.clone(), pin: self.pin.clone() }))
        } else {
            tracing::warn!("the peer offered no signature scheme the card can make (rsa_pkcs1_sha256 only)");
            None
        }
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

struct CardSigner {
    card: Arc<Mutex<AnyJpki>>,
    pin: Arc<Pin>,
}

impl std::fmt::Debug for CardSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardSigner")
    }
}

impl Signer for CardSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let mut card = self.card.lock().map_err(|_| rustls::Error::General("the card's lock is poisoned".into()))?;
        card.sign_sha256(Some(&self.pin), message).map_err(|e| rustls::Error::General(format!("the card could not sign: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RSA_PKCS1_SHA256
    }
}

/// Presents the card's certificate when the server asks for one the card can sign for.
#[derive(Debug)]
struct CardCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for CardCertificate {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        sigschemes.contains(&SignatureScheme::RSA_PKCS1_SHA256).then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS 1.2 client configuration that authenticates with the card: the platform's server
/// certificate must chain to `roots`.
pub fn card_client_config(
    roots: rustls::RootCertStore,
    certificate: CertificateDer<'static>,
    key: CardSigningKey,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = Arc::new(CertifiedKey::new(vec![certificate], Arc::new(key)));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(CardCertificate(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_key_signs_only_pkcs1_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let (jpki, _) = super::super::sim::tests::card(dir.path());
        let boxed: AnyJpki =
            Jpki::open(Box::new(super::super::sim::InProcess { card: super::super::sim::SimulatedCard::open(dir.path()).unwrap() })
                as Box<dyn CardConnection>)
            .unwrap();
        drop(jpki);
        let pin = Pin::new(zeroize::Zeroizing::new("1234".into())).unwrap();
        let key = CardSigningKey::new(Arc::new(Mutex::new(boxed)), pin);
        // What a TLS 1.3 server offers for RSA: PSS only.
        assert!(key.choose_scheme(&[SignatureScheme::RSA_PSS_SHA256, SignatureScheme::ECDSA_NISTP256_SHA256]).is_none());
        let signer = key.choose_scheme(&[SignatureScheme::RSA_PSS_SHA256, SignatureScheme::RSA_PKCS1_SHA256]).unwrap();
        assert_eq!(signer.scheme(), SignatureScheme::RSA_PKCS1_SHA256);
        let signature = signer.sign(b"handshake transcript").unwrap();
        assert_eq!(signature.len(), 256);
        assert!(format!("{key:?}").contains("JPKI"), "Debug shows no PIN");
    }
}
