//! Throwaway certificates (`kiban certs demo`): a CA, a server certificate for localhost and
//! terminal certificates naming their insurer, so the demo and the tests run the publish
//! protocol over real mutual TLS. Never for production: the CA key is written next to them.

use super::tls::IdentityError;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

/// Validity of a certificate, in days relative to today (negative: in the past).
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub from_days: i64,
    pub to_days: i64,
}

impl Validity {
    /// From yesterday for `days` days.
    pub fn days(days: i64) -> Validity {
        Validity { from_days: -1, to_days: days }
    }
}

/// Midnight UTC, `offset` days from today (rcgen takes `time`'s date type, which kiban does
/// not otherwise use).
macro_rules! day {
    ($offset:expr) => {{
        use chrono::Datelike;
        let d = chrono::Utc::now().date_naive() + chrono::Duration::days($offset);
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    }};
}

/// A certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// Writes `<stem>.pem` and `<stem>.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), IdentityError> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        write_file(&cert, self.certificate_pem.as_bytes(), 0o644)?;
        write_file(&key, self.key_pem.as_bytes(), 0o600)?;
        Ok((cert, key))
    }
}

/// Writes a file atomically (temporary file, fsync, rename) with `mode`.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| IdentityError::Write { path: path.to_path_buf(), source };
    let tmp = path.with_extension("tmp");
    // A leftover temporary file would keep its own (perhaps wider) mode: start from none.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// A throwaway certificate authority.
pub struct DemoCa {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
    key_pem: String,
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "JP");
    dn.push(DnType::OrganizationName, "kiban demo");
    dn.push(DnType::CommonName, common_name);
    dn
}

impl DemoCa {
    pub fn new(common_name: &str) -> Result<DemoCa, IdentityError> {
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = day!(-1);
        params.not_after = day!(3650);
        let certified = CertifiedIssuer::self_signed(params, key)?;
        let issuer = Issuer::from_ca_cert_der(certified.der(), KeyPair::from_pem(&key_pem)?)?;
        Ok(DemoCa { issuer, certificate_pem: certified.pem(), key_pem })
    }

    pub fn certificate_pem(&self) -> String {
        self.certificate_pem.clone()
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    fn issue(&self, mut params: CertificateParams, validity: Validity) -> Result<Issued, IdentityError> {
        let key = KeyPair::generate()?;
        params.not_before = day!(validity.from_days);
        params.not_after = day!(validity.to_days);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { certificate_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A CA kept in PEM files (`kiban certs demo` writes `jpki-ca.pem` and `jpki-ca.key`).
    pub fn load(certificate: &Path, key: &Path) -> Result<DemoCa, IdentityError> {
        use rustls::pki_types::pem::PemObject;
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|source| IdentityError::Read { path: p.to_path_buf(), source });
        let key_pem = read(key)?;
        let certificate_pem = read(certificate)?;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| IdentityError::Pem { path: certificate.to_path_buf(), reason: e.to_string() })?;
        let issuer = Issuer::from_ca_cert_der(&der, KeyPair::from_pem(&key_pem)?)?;
        Ok(DemoCa { issuer, certificate_pem, key_pem })
    }

    /// A 利用者証明用電子証明書 (JPKI auth certificate) for a card's RSA public key (SPKI DER),
    /// as PEM. Like the real one it names no person: subject `C=JP, CN=<serial>`, with a random
    /// serial number, client authentication and digital signature only.
    pub fn jpki_auth(&self, public_key_spki_der: &[u8], validity: Validity) -> Result<String, IdentityError> {
        let mut serial = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
            .map_err(|_| IdentityError::Certificate("no system randomness".into()))?;
        serial[0] &= 0x7F;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "JP");
        dn.push(DnType::CommonName, hex::encode_upper(serial));
        params.distinguished_name = dn;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = day!(validity.from_days);
        params.not_after = day!(validity.to_days);
        params.use_authority_key_identifier_extension = true;
        let public = rcgen::SubjectPublicKeyInfo::from_der(public_key_spki_der)?;
        Ok(params.signed_by(&public, &self.issuer)?.pem())
    }

    /// A server certificate for these DNS names and IP addresses.
    pub fn server(&self, hosts: &[&str], validity: Validity) -> Result<Issued, IdentityError> {
        let mut params = CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = name(hosts.first().copied().unwrap_or("localhost"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, validity)
    }

    /// A terminal certificate of an insurer: SAN URI `urn:kiban:insurer:<no>`.
    pub fn terminal(&self, insurer_no: &str, validity: Validity) -> Result<Issued, IdentityError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&format!("kiban terminal {insurer_no}"));
        let uri = format!("{}{insurer_no}", crate::protocol::INSURER_URI);
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, validity)
    }
}

/// What `kiban certs demo` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoFiles {
    pub ca: PathBuf,
    /// The test JPKI CA (`jpki-ca.pem`, key `jpki-ca.key`): simulated cards' auth certificates.
    pub jpki_ca: PathBuf,
    pub server: (PathBuf, PathBuf),
    pub terminals: Vec<(String, PathBuf, PathBuf)>,
    /// True when the directory already held a complete set, which was kept.
    pub kept: bool,
}

/// Writes `ca.pem`, `ca.key`, `server.pem`/`.key` (localhost, 127.0.0.1, ::1),
/// `terminal-<insurer>.pem`/`.key` and the test JPKI CA `jpki-ca.pem`/`.key` into `out`. An existing complete set is kept unless `force`.
pub fn write_demo(out: &Path, insurers: &[String], force: bool) -> Result<DemoFiles, IdentityError> {
    let files = DemoFiles {
        ca: out.join("ca.pem"),
        jpki_ca: out.join("jpki-ca.pem"),
        server: (out.join("server.pem"), out.join("server.key")),
        terminals: insurers
            .iter()
            .map(|i| (i.clone(), out.join(format!("terminal-{i}.pem")), out.join(format!("terminal-{i}.key"))))
            .collect(),
        kept: false,
    };
    let all: Vec<&PathBuf> = [&files.ca, &files.jpki_ca, &files.server.0, &files.server.1]
        .into_iter()
        .chain(files.terminals.iter().flat_map(|(_, c, k)| [c, k]))
        .collect();
    if !force && all.iter().all(|p| p.is_file()) {
        return Ok(DemoFiles { kept: true, ..files });
    }
    std::fs::create_dir_all(out).map_err(|source| IdentityError::Write { path: out.to_path_buf(), source })?;
    let ca = DemoCa::new("kiban demo CA")?;
    write_file(&files.ca, ca.certificate_pem().as_bytes(), 0o644)?;
    write_file(&out.join("ca.key"), ca.key_pem().as_bytes(), 0o600)?;
    ca.server(&["localhost", "127.0.0.1", "::1"], Validity::days(825))?.write(out, "server")?;
    for i in insurers {
        ca.terminal(i, Validity::days(825))?.write(out, &format!("terminal-{i}"))?;
    }
    let jpki = DemoCa::new("kiban test JPKI CA (not 地方公共団体情報システム機構)")?;
    write_file(&out.join("jpki-ca.key"), jpki.key_pem().as_bytes(), 0o600)?;
    write_file(&files.jpki_ca, jpki.certificate_pem().as_bytes(), 0o644)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn a_terminal_certificate_names_its_insurer() {
        let ca = DemoCa::new("test CA").unwrap();
        let t = ca.terminal("141309", Validity::days(10)).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(t.certificate_pem.as_bytes()).unwrap();
        let id = crate::protocol::certificate_identity(&der).unwrap();
        assert_eq!(id.insurers, vec!["141309".to_string()]);
        assert!(id.subject.contains("kiban terminal 141309"), "{}", id.subject);
    }
}
