//! The JPKI operations of reference/jpki.md over a [`CardConnection`].

use super::apdu::{self, Command, Response};
use super::{CardChannel, CardConnection, CardError, Pin};
use sha2::Digest;

/// JPKI application (公的個人認証 AP).
pub const JPKI_AID: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// Token information: the label in its first 32 bytes.
pub const EF_TOKEN_INFO: u16 = 0x0006;
/// 利用者証明用電子証明書: the auth certificate, readable without a PIN.
pub const EF_AUTH_CERTIFICATE: u16 = 0x000A;
/// The auth certificate's CA.
pub const EF_AUTH_CA_CERTIFICATE: u16 = 0x000B;
/// The auth private key.
pub const EF_AUTH_KEY: u16 = 0x0017;
/// The auth PIN (4 digits, 3 tries).
pub const EF_AUTH_PIN: u16 = 0x0018;
/// `DigestInfo` prefix of SHA-256 (PKCS#1 v1.5).
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
/// Largest certificate kiban reads (READ BINARY addresses 15 bits).
const MAX_CERTIFICATE: usize = 0x7FFF;

/// The auth PIN's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinStatus {
    /// Tries left before the PIN blocks.
    TriesLeft(u8),
    /// Verified in this card session already.
    Verified,
    Blocked,
}

/// The JPKI application of one card, selected.
pub struct Jpki<C: CardConnection> {
    connection: C,
}

fn transmit(ch: &mut dyn CardChannel, command: Command) -> Result<Response, CardError> {
    tracing::trace!(target: "kiban::apdu", "> {}", command.trace());
    let r = ch.transmit(&command)?;
    tracing::trace!(target: "kiban::apdu", "< {}", r.trace());
    Ok(r)
}

fn expect_ok(r: Response, command: &'static str) -> Result<Vec<u8>, CardError> {
    match r.sw {
        apdu::SW_OK => Ok(r.data),
        apdu::SW_NOT_VERIFIED => Err(CardError::NotVerified),
        sw => Err(CardError::Status { command, sw }),
    }
}

fn select_jpki(ch: &mut dyn CardChannel, reader: &str) -> Result<(), CardError> {
    let r = transmit(ch, Command::new(0x00, apdu::INS_SELECT, 0x04, 0x0C).with_data(&JPKI_AID)?)?;
    match r.sw {
        apdu::SW_OK => Ok(()),
        apdu::SW_NOT_FOUND => Err(CardError::NotJpki(reader.to_string())),
        sw => Err(CardError::Status { command: "SELECT JPKI", sw }),
    }
}

fn select_ef(ch: &mut dyn CardChannel, fid: u16) -> Result<(), CardError> {
    let r = transmit(ch, Command::new(0x00, apdu::INS_SELECT, 0x02, 0x0C).with_data(&fid.to_be_bytes())?)?;
    expect_ok(r, "SELECT EF").map(drop)
}

fn read_binary(ch: &mut dyn CardChannel, offset: usize, len: usize) -> Result<Vec<u8>, CardError> {
    let [hi, lo] =
        u16::try_from(offset).map_err(|_| CardError::Malformed { what: "file", reason: "longer than 32 KiB".into() })?.to_be_bytes();
    let r = transmit(ch, Command::new(0x00, apdu::INS_READ_BINARY, hi, lo).expecting(len.clamp(1, 256))?)?;
    expect_ok(r, "READ BINARY")
}

/// Reads `total` bytes from offset 0 of the selected EF, in chunks of up to 256 bytes.
fn read_all(ch: &mut dyn CardChannel, mut data: Vec<u8>, total: usize) -> Result<Vec<u8>, CardError> {
    while data.len() < total {
        let chunk = read_binary(ch, data.len(), (total - data.len()).min(256))?;
        if chunk.is_empty() {
            return Err(CardError::Malformed {
                what: "certificate",
                reason: format!("the card stopped after {} of {total} bytes", data.len()),
            });
        }
        data.extend_from_slice(&chunk);
    }
    data.truncate(total);
    Ok(data)
}

/// The total length of a DER `SEQUENCE` from its first bytes (short and long length forms).
pub fn der_total_length(head: &[u8]) -> Result<usize, CardError> {
    let bad = |reason: &str| CardError::Malformed { what: "certificate", reason: reason.to_string() };
    match head {
        [0x30, len, ..] if *len < 0x80 => Ok(*len as usize + 2),
        [0x30, 0x81, len, ..] => Ok(*len as usize + 3),
        [0x30, 0x82, hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo]) as usize + 4),
        [0x30, 0x83, ..] | [0x30, 0x84, ..] => Err(bad("longer than 64 KiB")),
        [0x30, ..] => Err(bad("a DER length that is not 1 to 3 bytes")),
        [] => Err(bad("the file is empty")),
        _ => Err(bad("it does not start with a DER SEQUENCE")),
    }
}

/// `DigestInfo` of the SHA-256 of `message`: what the card's PKCS#1 v1.5 signature wraps.
pub fn sha256_digest_info(message: &[u8]) -> Vec<u8> {
    let mut v = SHA256_DIGEST_INFO_PREFIX.to_vec();
    v.extend_from_slice(&sha2::Sha256::digest(message));
    v
}

fn verify(ch: &mut dyn CardChannel, pin: &Pin) -> Result<(), CardError> {
    select_ef(ch, EF_AUTH_PIN)?;
    let r = transmit(ch, Command::new(0x00, apdu::INS_VERIFY, 0x00, 0x80).with_data(pin.ascii())?.secret())?;
    match r.sw {
        apdu::SW_OK => Ok(()),
        apdu::SW_BLOCKED | apdu::SW_TRIES_LEFT => Err(CardError::PinBlocked),
        sw if sw & 0xFFF0 == apdu::SW_TRIES_LEFT => Err(CardError::WrongPin { tries_left: (sw & 0x0F) as u8 }),
        sw => Err(CardError::Status { command: "VERIFY", sw }),
    }
}

fn sign(ch: &mut dyn CardChannel, digest_info: &[u8]) -> Result<Vec<u8>, CardError> {
    select_ef(ch, EF_AUTH_KEY)?;
    let r = transmit(ch, Command::new(0x80, apdu::INS_SIGN, 0x00, 0x80).with_data(digest_info)?.expecting(256)?)?;
    let signature = expect_ok(r, "SIGN")?;
    if signature.is_empty() {
        return Err(CardError::Malformed { what: "signature", reason: "empty".into() });
    }
    Ok(signature)
}

impl<C: CardConnection> Jpki<C> {
    /// Selects the JPKI application of the card behind `connection`.
    pub fn open(mut connection: C) -> Result<Jpki<C>, CardError> {
        let reader = connection.reader().to_string();
        select_jpki(&mut connection, &reader)?;
        Ok(Jpki { connection })
    }

    pub fn reader(&self) -> &str {
        self.connection.reader()
    }

    /// The token label (`JPKIAPICCTOKEN2` on a マイナンバーカード), spaces and NULs trimmed.
    pub fn token_label(&mut self) -> Result<String, CardError> {
        select_ef(&mut self.connection, EF_TOKEN_INFO)?;
        let data = read_binary(&mut self.connection, 0, 32)?;
        let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
        Ok(String::from_utf8_lossy(&data[..end]).trim_end().to_string())
    }

    /// The auth certificate (DER): its length from the DER header, then chunked reads.
    pub fn auth_certificate(&mut self) -> Result<Vec<u8>, CardError> {
        self.read_certificate(EF_AUTH_CERTIFICATE)
    }

    /// The auth certificate's CA certificate (DER).
    pub fn auth_ca_certificate(&mut self) -> Result<Vec<u8>, CardError> {
        self.read_certificate(EF_AUTH_CA_CERTIFICATE)
    }

    fn read_certificate(&mut self, fid: u16) -> Result<Vec<u8>, CardError> {
        select_ef(&mut self.connection, fid)?;
        let head = read_binary(&mut self.connection, 0, 4)?;
        let total = der_total_length(&head)?;
        if total > MAX_CERTIFICATE {
            return Err(CardError::Malformed { what: "certificate", reason: format!("{total} bytes is more than a JPKI certificate") });
        }
        let head = head.into_iter().take(total).collect();
        read_all(&mut self.connection, head, total)
    }

    /// Tries left on the auth PIN: a VERIFY without data, which uses none.
    pub fn pin_status(&mut self) -> Result<PinStatus, CardError> {
        select_ef(&mut self.connection, EF_AUTH_PIN)?;
        let r = transmit(&mut self.connection, Command::new(0x00, apdu::INS_VERIFY, 0x00, 0x80))?;
        match r.sw {
            apdu::SW_OK => Ok(PinStatus::Verified),
            apdu::SW_BLOCKED | apdu::SW_TRIES_LEFT => Ok(PinStatus::Blocked),
            sw if sw & 0xFFF0 == apdu::SW_TRIES_LEFT => Ok(PinStatus::TriesLeft((sw & 0x0F) as u8)),
            sw => Err(CardError::Status { command: "VERIFY (tries left)", sw }),
        }
    }

    /// Verifies the auth PIN. A wrong PIN uses a try: the error says how many are left.
    pub fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError> {
        verify(&mut self.connection, pin)
    }

    /// Signs a `DigestInfo` with the auth key (PKCS#1 v1.5, RSA-2048: 256 bytes). With a PIN,
    /// VERIFY and SIGN run in one transaction; without, the PIN must have been verified.
    pub fn sign_digest_info(&mut self, pin: Option<&Pin>, digest_info: &[u8]) -> Result<Vec<u8>, CardError> {
        let reader = self.connection.reader().to_string();
        let mut signature = None;
        self.connection.transaction(&mut |ch| {
            // Reselect: another program may have selected something else since.
            select_jpki(ch, &reader)?;
            if let Some(pin) = pin {
                verify(ch, pin)?;
            }
            signature = Some(sign(ch, digest_info)?);
            Ok(())
        })?;
        signature.ok_or(CardError::Malformed { what: "signature", reason: "none returned".into() })
    }

    /// Signs the SHA-256 of `message`.
    pub fn sign_sha256(&mut self, pin: Option<&Pin>, message: &[u8]) -> Result<Vec<u8>, CardError> {
        self.sign_digest_info(pin, &sha256_digest_info(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_in_short_and_long_form() {
        assert_eq!(der_total_length(&[0x30, 0x05, 0, 0]).unwrap(), 7);
        assert_eq!(der_total_length(&[0x30, 0x81, 0xC8, 0]).unwrap(), 203);
        assert_eq!(der_total_length(&[0x30, 0x82, 0x04, 0xB0]).unwrap(), 1204);
        for bad in [&[][..], &[0x31, 0x82, 1, 0], &[0x30, 0x84, 0, 0], &[0x30, 0x80, 0, 0]] {
            assert!(matches!(der_total_length(bad), Err(CardError::Malformed { .. })), "{bad:?}");
        }
    }

    #[test]
    fn digest_info_is_the_prefix_and_the_hash() {
        let d = sha256_digest_info(b"abc");
        assert_eq!(d.len(), 0x33);
        assert_eq!(hex::encode(&d[19..]), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
