//! A simulated マイナンバーカード: the JPKI application's files, an RSA-2048 auth key, a PIN
//! counter and the status words of reference/jpki.md. It answers APDUs in process (unit tests)
//! and, through `vpcd`, to a real pcscd, so kiban's PC/SC path runs without hardware.
//!
//! A card lives in a directory, so its PIN counter survives removal like a real card's:
//! ```text
//!  card.json   label, PIN (a test card's: in clear), tries left
//!  auth.pem    利用者証明用電子証明書 (issued by a test JPKI CA)    auth.key   its RSA key (0600)
//!  auth-ca.pem the CA certificate (EF 000B)                        selections.log  every SELECT
//! ```
//! The card also holds a sign certificate (EF 0001) behind the sign PIN and answers a SELECT of
//! the card-info application, so that a test can prove from `selections.log` that kiban never
//! asks for either.

use super::apdu::{self, Response};
use super::jpki::{EF_AUTH_CA_CERTIFICATE, EF_AUTH_CERTIFICATE, EF_AUTH_KEY, EF_AUTH_PIN, EF_TOKEN_INFO, JPKI_AID};
use super::{CardChannel, CardConnection, CardError};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use std::path::{Path, PathBuf};

/// 券面事項入力補助AP: holds the 個人番号. kiban never selects it.
pub const CARD_INFO_AID: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
/// 署名用電子証明書 (name, address, birth date). kiban never reads it.
pub const EF_SIGN_CERTIFICATE: u16 = 0x0001;
/// The sign certificate's CA (public). The simulated card serves its test CA there.
pub const EF_SIGN_CA_CERTIFICATE: u16 = 0x0002;
/// The sign key and the sign PIN (6–16 characters, 5 tries): present so that other JPKI software
/// (OpenSC's driver) recognises the card; this card never lets the sign PIN verify.
pub const EF_SIGN_KEY: u16 = 0x001A;
pub const EF_SIGN_PIN: u16 = 0x001B;
const SIGN_PIN_TRIES: u16 = 5;
/// The ATR pcscd sees (reference/jpki.md).
pub const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];
const AUTH_PIN_TRIES: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SimulatedCardError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("making the card's key or certificate: {0}")]
    Key(String),
    #[error(transparent)]
    Identity(#[from] crate::identity::tls::IdentityError),
}

/// `card.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CardState {
    /// Token label (EF 0006).
    label: String,
    /// The auth PIN. A simulated card's, kept in clear on purpose.
    pin: String,
    /// Tries left on the auth PIN.
    tries_left: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selected {
    Nothing,
    Jpki,
    CardInfo,
}

/// The card: its files and its volatile state (selection, verified PIN).
pub struct SimulatedCard {
    dir: Option<PathBuf>,
    state: CardState,
    auth_certificate: Vec<u8>,
    auth_ca_certificate: Vec<u8>,
    key: rsa::RsaPrivateKey,
    application: Selected,
    file: Option<u16>,
    verified: bool,
    selections: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SimulatedCardError + '_ {
    move |source| SimulatedCardError::Io { path: path.to_path_buf(), source }
}

fn first_certificate(path: &Path) -> Result<Vec<u8>, SimulatedCardError> {
    let certs = crate::identity::tls::load_certificates(path)?;
    Ok(certs[0].to_vec())
}

/// A fresh RSA-2048 key (a second or more in a debug build).
pub fn generate_key() -> Result<rsa::RsaPrivateKey, SimulatedCardError> {
    rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).map_err(|e| SimulatedCardError::Key(e.to_string()))
}

impl SimulatedCard {
    /// Makes a card in `dir`: an RSA-2048 key, an auth certificate from the test JPKI CA `ca`
    /// with a random serial, the PIN given and 3 tries. An existing card there is replaced.
    pub fn create(
        dir: &Path,
        ca: &crate::identity::certs::DemoCa,
        pin: &str,
        validity: crate::identity::certs::Validity,
    ) -> Result<(), SimulatedCardError> {
        Self::create_with_key(dir, ca, pin, validity, generate_key()?)
    }

    /// As `create`, with a given key (tests reuse one: generating RSA keys is slow).
    pub fn create_with_key(
        dir: &Path,
        ca: &crate::identity::certs::DemoCa,
        pin: &str,
        validity: crate::identity::certs::Validity,
        key: rsa::RsaPrivateKey,
    ) -> Result<(), SimulatedCardError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let spki = key.to_public_key().to_public_key_der().map_err(|e| SimulatedCardError::Key(e.to_string()))?;
        let certificate_pem = ca.jpki_auth(spki.as_bytes(), validity)?;
        let key_pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| SimulatedCardError::Key(e.to_string()))?;
        crate::identity::certs::write_file(&dir.join("auth.pem"), certificate_pem.as_bytes(), 0o644)?;
        crate::identity::certs::write_file(&dir.join("auth.key"), key_pem.as_bytes(), 0o600)?;
        crate::identity::certs::write_file(&dir.join("auth-ca.pem"), ca.certificate_pem().as_bytes(), 0o644)?;
        let state = CardState { label: "JPKIAPICCTOKEN2".into(), pin: pin.to_string(), tries_left: AUTH_PIN_TRIES };
        write_state(dir, &state)?;
        let _ = std::fs::remove_file(dir.join("selections.log"));
        Ok(())
    }

    /// The card kept in `dir`.
    pub fn open(dir: &Path) -> Result<SimulatedCard, SimulatedCardError> {
        let path = dir.join("card.json");
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let state: CardState =
            serde_json::from_str(&text).map_err(|e| SimulatedCardError::Invalid { path: path.clone(), reason: e.to_string() })?;
        if state.pin.len() != 4 || !state.pin.bytes().all(|b| b.is_ascii_digit()) || state.tries_left > AUTH_PIN_TRIES {
            return Err(SimulatedCardError::Invalid { path, reason: "the PIN is 4 digits and tries_left 0 to 3".into() });
        }
        let key_path = dir.join("auth.key");
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&key_pem)
            .map_err(|e| SimulatedCardError::Invalid { path: key_path.clone(), reason: e.to_string() })?;
        Ok(SimulatedCard {
            dir: Some(dir.to_path_buf()),
            state,
            auth_certificate: first_certificate(&dir.join("auth.pem"))?,
            auth_ca_certificate: first_certificate(&dir.join("auth-ca.pem"))?,
            key,
            application: Selected::Nothing,
            file: None,
            verified: false,
            selections: Vec::new(),
        })
    }

    /// What the card was asked to select, in order (`AID <hex>` or `EF <hex>`).
    pub fn selections(&self) -> &[String] {
        &self.selections
    }

    pub fn tries_left(&self) -> u8 {
        self.state.tries_left
    }

    /// Power off, power on or reset: the selection and the verified PIN are gone.
    pub fn reset(&mut self) {
        self.application = Selected::Nothing;
        self.file = None;
        self.verified = false;
    }

    fn note(&mut self, selection: String) {
        if let Some(dir) = &self.dir {
            use std::io::Write;
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("selections.log"))
                .and_then(|mut f| writeln!(f, "{selection}"));
        }
        self.selections.push(selection);
    }

    fn set_tries(&mut self, tries: u8) {
        if self.state.tries_left != tries {
            self.state.tries_left = tries;
            if let Some(dir) = &self.dir
                && let Err(e) = write_state(dir, &self.state)
            {
                tracing::warn!("simulated card: {e}");
            }
        }
    }

    fn status(sw: u16) -> Response {
        Response { data: Vec::new(), sw }
    }

    /// Answers one command APDU, as the card would.
    pub fn process(&mut self, command: &[u8]) -> Response {
        let Some((&[cla, ins, p1, p2], body)) = command.split_first_chunk::<4>() else {
            return Self::status(apdu::SW_WRONG_LENGTH);
        };
        // Short APDU body: nothing, Le, Lc+data, or Lc+data+Le.
        let (data, le): (&[u8], Option<usize>) = match body {
            [] => (&[], None),
            [le] => (&[], Some(if *le == 0 { 256 } else { *le as usize })),
            [lc, rest @ ..] if rest.len() == *lc as usize && *lc > 0 => (rest, None),
            [lc, rest @ ..] if rest.len() == *lc as usize + 1 && *lc > 0 => {
                let le = rest[rest.len() - 1];
                (&rest[..rest.len() - 1], Some(if le == 0 { 256 } else { le as usize }))
            }
            _ => return Self::status(apdu::SW_WRONG_LENGTH),
        };
        match (cla, ins) {
            (0x00, apdu::INS_SELECT) => self.select(p1, p2, data),
            (0x00, apdu::INS_READ_BINARY) => self.read_binary(p1, p2, le.unwrap_or(256)),
            (0x00, apdu::INS_VERIFY) => self.verify(p1, p2, data),
            (0x80, apdu::INS_SIGN) => self.sign(p1, p2, data),
            (0x00 | 0x80, _) => Self::status(apdu::SW_INS_NOT_SUPPORTED),
            _ => Self::status(apdu::SW_CLA_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, p1: u8, _p2: u8, data: &[u8]) -> Response {
        match p1 {
            0x04 => {
                self.note(format!("AID {}", hex::encode_upper(data)));
                self.file = None;
                self.verified = false;
                self.application = if data == JPKI_AID {
                    Selected::Jpki
                } else if data == CARD_INFO_AID {
                    Selected::CardInfo
                } else {
                    self.application = Selected::Nothing;
                    return Self::status(apdu::SW_NOT_FOUND);
                };
                Self::status(apdu::SW_OK)
            }
            0x02 => {
                let Ok(fid) = <[u8; 2]>::try_from(data).map(u16::from_be_bytes) else { return Self::status(apdu::SW_WRONG_LENGTH) };
                self.note(format!("EF {fid:04X}"));
                let known = [
                    EF_TOKEN_INFO,
                    EF_AUTH_CERTIFICATE,
                    EF_AUTH_CA_CERTIFICATE,
                    EF_AUTH_KEY,
                    EF_AUTH_PIN,
                    EF_SIGN_CERTIFICATE,
                    EF_SIGN_CA_CERTIFICATE,
                    EF_SIGN_KEY,
                    EF_SIGN_PIN,
                ];
                if self.application != Selected::Jpki || !known.contains(&fid) {
                    return Self::status(apdu::SW_NOT_FOUND);
                }
                self.file = Some(fid);
                Self::status(apdu::SW_OK)
            }
            _ => Self::status(apdu::SW_WRONG_P1P2),
        }
    }

    fn read_binary(&mut self, p1: u8, p2: u8, le: usize) -> Response {
        if p1 & 0x80 != 0 {
            return Self::status(apdu::SW_WRONG_P1P2);
        }
        let mut token;
        let content: &[u8] = match self.file {
            Some(EF_TOKEN_INFO) => {
                token = self.state.label.as_bytes().to_vec();
                token.resize(32, b' ');
                &token
            }
            Some(EF_AUTH_CERTIFICATE) => &self.auth_certificate,
            Some(EF_AUTH_CA_CERTIFICATE | EF_SIGN_CA_CERTIFICATE) => &self.auth_ca_certificate,
            // Behind the sign PIN, which this card never sees verified.
            Some(EF_SIGN_CERTIFICATE) => return Self::status(apdu::SW_NOT_VERIFIED),
            Some(_) => return Self::status(apdu::SW_CONDITIONS),
            None => return Self::status(apdu::SW_NO_EF_SELECTED),
        };
        let offset = u16::from_be_bytes([p1, p2]) as usize;
        if offset > content.len() {
            return Self::status(apdu::SW_WRONG_P1P2);
        }
        let end = (offset + le).min(content.len());
        Response { data: content[offset..end].to_vec(), sw: apdu::SW_OK }
    }

    fn verify(&mut self, _p1: u8, p2: u8, data: &[u8]) -> Response {
        if self.file == Some(EF_SIGN_PIN) && p2 == 0x80 {
            // Tries left can be asked; the sign PIN itself is never accepted here.
            return Self::status(if data.is_empty() { apdu::SW_TRIES_LEFT | SIGN_PIN_TRIES } else { apdu::SW_NOT_VERIFIED });
        }
        if self.file != Some(EF_AUTH_PIN) || p2 != 0x80 {
            return Self::status(apdu::SW_NO_EF_SELECTED);
        }
        let tries = self.state.tries_left;
        if tries == 0 {
            return Self::status(apdu::SW_BLOCKED);
        }
        if data.is_empty() {
            return Self::status(if self.verified { apdu::SW_OK } else { apdu::SW_TRIES_LEFT | tries as u16 });
        }
        if data == self.state.pin.as_bytes() {
            self.set_tries(AUTH_PIN_TRIES);
            self.verified = true;
            Self::status(apdu::SW_OK)
        } else {
            self.verified = false;
            self.set_tries(tries - 1);
            Self::status(apdu::SW_TRIES_LEFT | (tries - 1) as u16)
        }
    }

    fn sign(&mut self, p1: u8, p2: u8, data: &[u8]) -> Response {
        if self.file != Some(EF_AUTH_KEY) {
            return Self::status(apdu::SW_NO_EF_SELECTED);
        }
        if (p1, p2) != (0x00, 0x80) {
            return Self::status(apdu::SW_WRONG_P1P2);
        }
        if !self.verified {
            return Self::status(apdu::SW_NOT_VERIFIED);
        }
        match self.key.sign(rsa::Pkcs1v15Sign::new_unprefixed(), data) {
            Ok(signature) => Response { data: signature, sw: apdu::SW_OK },
            Err(_) => Self::status(apdu::SW_WRONG_DATA),
        }
    }
}

fn write_state(dir: &Path, state: &CardState) -> Result<(), SimulatedCardError> {
    let text = serde_json::to_vec_pretty(state).map_err(|e| SimulatedCardError::Key(e.to_string()))?;
    crate::identity::certs::write_file(&dir.join("card.json"), &text, 0o600)?;
    Ok(())
}

/// The simulated card as a [`CardConnection`], in process.
pub struct InProcess {
    pub card: SimulatedCard,
}

impl CardChannel for InProcess {
    fn transmit(&mut self, command: &apdu::Command) -> Result<Response, CardError> {
        Ok(self.card.process(command.bytes()))
    }
}

impl CardConnection for InProcess {
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn CardChannel) -> Result<(), CardError>) -> Result<(), CardError> {
        f(self)
    }
    fn reader(&self) -> &str {
        "simulated card (in process)"
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::card::{Jpki, Pin, PinStatus};
    use crate::identity::certs::{DemoCa, Validity};
    use rsa::pkcs1::EncodeRsaPublicKey;
    use std::sync::OnceLock;

    /// One RSA key for all unit tests (generation is the slow part).
    pub(crate) fn test_key() -> rsa::RsaPrivateKey {
        static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| generate_key().unwrap()).clone()
    }

    pub(crate) fn card(dir: &Path) -> (Jpki<InProcess>, DemoCa) {
        let ca = DemoCa::new("test JPKI CA").unwrap();
        SimulatedCard::create_with_key(dir, &ca, "1234", Validity::days(30), test_key()).unwrap();
        (Jpki::open(InProcess { card: SimulatedCard::open(dir).unwrap() }).unwrap(), ca)
    }

    fn pin(p: &str) -> Pin {
        Pin::new(zeroize::Zeroizing::new(p.into())).unwrap()
    }

    #[test]
    fn reads_token_certificate_and_tries() {
        let dir = tempfile::tempdir().unwrap();
        let (mut jpki, _) = card(dir.path());
        assert_eq!(jpki.token_label().unwrap(), "JPKIAPICCTOKEN2");
        let cert = jpki.auth_certificate().unwrap();
        assert_eq!(cert, first_certificate(&dir.path().join("auth.pem")).unwrap(), "the certificate is read whole, over chunks");
        assert!(cert.len() > 256, "more than one READ BINARY: {}", cert.len());
        assert_eq!(jpki.pin_status().unwrap(), PinStatus::TriesLeft(3));
    }

    #[test]
    fn signs_after_the_pin_and_the_signature_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (mut jpki, _) = card(dir.path());
        assert_eq!(jpki.sign_sha256(None, b"nonce").unwrap_err(), CardError::NotVerified);
        let signature = jpki.sign_sha256(Some(&pin("1234")), b"nonce").unwrap();
        assert_eq!(signature.len(), 256);
        // Checked by another implementation (ring) against the public key.
        let public = test_key().to_public_key().to_pkcs1_der().unwrap();
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public.as_bytes());
        key.verify(b"nonce", &signature).unwrap();
        assert!(key.verify(b"other", &signature).is_err());
    }

    #[test]
    fn wrong_pins_count_down_and_block_and_the_counter_survives_removal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut jpki, _) = card(dir.path());
        assert_eq!(jpki.verify_pin(&pin("0000")).unwrap_err(), CardError::WrongPin { tries_left: 2 });
        jpki.verify_pin(&pin("1234")).unwrap();
        assert_eq!(jpki.pin_status().unwrap(), PinStatus::Verified);
        assert_eq!(jpki.verify_pin(&pin("0000")).unwrap_err(), CardError::WrongPin { tries_left: 2 }, "a right PIN resets the counter");
        assert_eq!(jpki.verify_pin(&pin("0001")).unwrap_err(), CardError::WrongPin { tries_left: 1 });
        // "Removed" and inserted again: the counter is the card's.
        let mut jpki = Jpki::open(InProcess { card: SimulatedCard::open(dir.path()).unwrap() }).unwrap();
        assert_eq!(jpki.pin_status().unwrap(), PinStatus::TriesLeft(1));
        assert_eq!(jpki.verify_pin(&pin("0002")).unwrap_err(), CardError::PinBlocked);
        assert_eq!(jpki.pin_status().unwrap(), PinStatus::Blocked);
        assert_eq!(jpki.verify_pin(&pin("1234")).unwrap_err(), CardError::PinBlocked, "blocked even for the right PIN");
        assert_eq!(jpki.sign_sha256(Some(&pin("1234")), b"x").unwrap_err(), CardError::PinBlocked);
    }

    #[test]
    fn kiban_never_selects_the_card_info_application_or_the_sign_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (mut jpki, _) = card(dir.path());
        jpki.token_label().unwrap();
        jpki.auth_certificate().unwrap();
        jpki.auth_ca_certificate().unwrap();
        jpki.pin_status().unwrap();
        jpki.sign_sha256(Some(&pin("1234")), b"m").unwrap();
        let log = std::fs::read_to_string(dir.path().join("selections.log")).unwrap();
        assert!(log.contains(&format!("AID {}", hex::encode_upper(JPKI_AID))), "{log}");
        assert!(!log.contains(&hex::encode_upper(CARD_INFO_AID)) && !log.contains("EF 0001"), "{log}");
    }

    #[test]
    fn another_card_is_not_a_jpki_card_and_bad_apdus_get_status_words() {
        let dir = tempfile::tempdir().unwrap();
        let (jpki, _) = card(dir.path());
        drop(jpki);
        let mut c = SimulatedCard::open(dir.path()).unwrap();
        assert_eq!(c.process(&[0x00, 0xA4, 0x04, 0x0C, 0x02, 0xA0, 0x00]).sw, apdu::SW_NOT_FOUND);
        assert_eq!(c.process(&[0x00, 0xA4]).sw, apdu::SW_WRONG_LENGTH);
        assert_eq!(c.process(&[0x00, 0xA4, 0x02, 0x0C, 0x05, 1]).sw, apdu::SW_WRONG_LENGTH);
        assert_eq!(c.process(&[0x00, 0xB0, 0, 0, 4]).sw, apdu::SW_NO_EF_SELECTED);
        assert_eq!(c.process(&[0xA0, 0xB0, 0, 0, 4]).sw, apdu::SW_CLA_NOT_SUPPORTED);
        assert_eq!(c.process(&[0x00, 0xCA, 0, 0, 4]).sw, apdu::SW_INS_NOT_SUPPORTED);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any bytes at all get an answer with a status word, never a panic.
        #[test]
        fn any_apdu_gets_a_status_word(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
            let dir = DIR.get_or_init(|| {
                let d = tempfile::tempdir().unwrap();
                drop(card(d.path()));
                d
            });
            let mut c = SimulatedCard::open(dir.path()).unwrap();
            c.dir = None;
            let r = c.process(&bytes);
            proptest::prop_assert!(r.sw != 0);
        }
    }
}
