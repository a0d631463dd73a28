//! Identity (SPEC §10): the terminal certificate a job publishes with, the platform's TLS
//! configuration, and throwaway certificates for the demo and tests. Depends on no stage.
//!
//! ```text
//!  PEM files ─► tls::TerminalIdentity ─► rustls ClientConfig (client certificate, platform CA)
//!  PEM files ─► tls::server_config    ─► rustls ServerConfig (WebPkiClientVerifier on the CA)
//!  certs::DemoCa (rcgen) ─► ca.pem, server.pem/key, terminal-<insurer>.pem/key
//! ```
//! A terminal certificate names the insurer it may publish for with a SAN URI
//! `urn:kiban:insurer:<保険者番号>` (`protocol::certificate_identity` reads it). Keys are ECDSA
//! P-256 (ring), written PKCS#8 PEM with mode 0600.

pub mod card;
pub mod certs;
pub mod tls;
