//! ISO 7816-4 command and response APDUs (short form only: JPKI needs nothing longer), and the
//! trace line kiban logs for each exchange.
//!
//! A trace never shows data that could identify a person or unlock a card: a VERIFY's PIN is
//! masked, read data (certificates) and signatures appear as their length only.

use zeroize::Zeroize;

/// `CLA INS P1 P2 [Lc data] [Le]`. The buffer is zeroed on drop: a VERIFY carries the PIN.
pub struct Command {
    bytes: Vec<u8>,
    /// The data field must not appear in a trace (a PIN).
    secret: bool,
}

impl Command {
    /// A command without data (case 1) or with an expected length (case 2, `le` 1–256; 256 is
    /// encoded as 00).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command {
        Command { bytes: vec![cla, ins, p1, p2], secret: false }
    }

    /// Appends `Lc` and the data (case 3). At most 255 bytes in a short APDU.
    pub fn with_data(mut self, data: &[u8]) -> Result<Command, ApduError> {
        let lc = u8::try_from(data.len()).ok().filter(|&n| n > 0).ok_or(ApduError::DataLength(data.len()))?;
        self.bytes.push(lc);
        self.bytes.extend_from_slice(data);
        Ok(self)
    }

    /// Appends `Le` (cases 2 and 4): the answer may carry up to `le` bytes (1–256).
    pub fn expecting(mut self, le: usize) -> Result<Command, ApduError> {
        let b = match le {
            1..=255 => le as u8,
            256 => 0,
            _ => return Err(ApduError::ExpectedLength(le)),
        };
        self.bytes.push(b);
        Ok(self)
    }

    /// Marks the data field as secret (a PIN): masked in traces.
    pub fn secret(mut self) -> Command {
        self.secret = true;
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn ins(&self) -> u8 {
        self.bytes[1]
    }

    /// `00 A4 04 0C 0A D3 92 …` — header and, except for secrets and long data, the data in hex.
    pub fn trace(&self) -> String {
        let header = hex::encode_upper(&self.bytes[..4]);
        let Some(&lc) = self.bytes.get(4) else { return header };
        if self.bytes.len() == 5 {
            return format!("{header} Le={lc:02X}");
        }
        let data = &self.bytes[5..5 + lc as usize];
        if self.secret {
            format!("{header} Lc={lc:02X} <{lc} bytes masked>")
        } else if self.ins() == INS_SELECT {
            format!("{header} Lc={lc:02X} {}", hex::encode_upper(data))
        } else {
            format!("{header} Lc={lc:02X} <{lc} bytes>")
        }
    }
}

impl Drop for Command {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

pub const INS_SELECT: u8 = 0xA4;
pub const INS_READ_BINARY: u8 = 0xB0;
pub const INS_VERIFY: u8 = 0x20;
/// JPKI's COMPUTE DIGITAL SIGNATURE (proprietary class 80).
pub const INS_SIGN: u8 = 0x2A;

/// A response: data and the status word `SW1 SW2`.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Response {
    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        if bytes.len() < 2 {
            return Err(ApduError::ShortResponse(bytes.len()));
        }
        let (data, sw) = bytes.split_at(bytes.len() - 2);
        Ok(Response { data: data.to_vec(), sw: u16::from_be_bytes([sw[0], sw[1]]) })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.data.clone();
        v.extend_from_slice(&self.sw.to_be_bytes());
        v
    }

    pub fn ok(&self) -> bool {
        self.sw == SW_OK
    }

    pub fn trace(&self) -> String {
        if self.data.is_empty() { format!("{:04X}", self.sw) } else { format!("<{} bytes> {:04X}", self.data.len(), self.sw) }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.trace())
    }
}

pub const SW_OK: u16 = 0x9000;
/// `63 Cx`: verification failed or, with no data, x tries left.
pub const SW_TRIES_LEFT: u16 = 0x63C0;
pub const SW_WRONG_LENGTH: u16 = 0x6700;
/// Security status not satisfied (PIN not verified).
pub const SW_NOT_VERIFIED: u16 = 0x6982;
/// Authentication method blocked (PIN blocked).
pub const SW_BLOCKED: u16 = 0x6983;
pub const SW_CONDITIONS: u16 = 0x6985;
pub const SW_NO_EF_SELECTED: u16 = 0x6986;
pub const SW_WRONG_DATA: u16 = 0x6A80;
pub const SW_NOT_FOUND: u16 = 0x6A82;
pub const SW_WRONG_P1P2: u16 = 0x6B00;
pub const SW_INS_NOT_SUPPORTED: u16 = 0x6D00;
pub const SW_CLA_NOT_SUPPORTED: u16 = 0x6E00;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error("a short APDU carries 1 to 255 data bytes, not {0}")]
    DataLength(usize),
    #[error("a short APDU expects 1 to 256 bytes, not {0}")]
    ExpectedLength(usize),
    #[error("the card answered {0} bytes; a response has at least the 2 status bytes")]
    ShortResponse(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commands_encode_the_short_cases() {
        assert_eq!(Command::new(0, 0x20, 0, 0x80).bytes(), [0, 0x20, 0, 0x80]);
        assert_eq!(Command::new(0, 0xB0, 1, 0).expecting(256).unwrap().bytes(), [0, 0xB0, 1, 0, 0]);
        assert_eq!(Command::new(0, 0xA4, 2, 0x0C).with_data(&[0, 0x0A]).unwrap().bytes(), [0, 0xA4, 2, 0x0C, 2, 0, 0x0A]);
        assert_eq!(
            Command::new(0x80, 0x2A, 0, 0x80).with_data(&[1, 2, 3]).unwrap().expecting(256).unwrap().bytes(),
            [0x80, 0x2A, 0, 0x80, 3, 1, 2, 3, 0]
        );
        assert_eq!(Command::new(0, 0xA4, 2, 0x0C).with_data(&[]).err(), Some(ApduError::DataLength(0)));
        assert_eq!(Command::new(0, 0xA4, 2, 0x0C).with_data(&[0; 256]).err(), Some(ApduError::DataLength(256)));
        assert_eq!(Command::new(0, 0xB0, 0, 0).expecting(257).err(), Some(ApduError::ExpectedLength(257)));
    }

    #[test]
    fn a_pin_never_appears_in_a_trace() {
        let c = Command::new(0, 0x20, 0, 0x80).with_data(b"4321").unwrap().secret();
        let t = c.trace();
        assert_eq!(t, "00200080 Lc=04 <4 bytes masked>");
        assert!(!t.contains("34333231") && !t.contains("4321"));
        let select = Command::new(0, 0xA4, 2, 0x0C).with_data(&[0, 0x18]).unwrap();
        assert_eq!(select.trace(), "00A4020C Lc=02 0018");
        let read = Response { data: vec![0x30, 0x82, 1, 2], sw: SW_OK };
        assert_eq!(read.trace(), "<4 bytes> 9000");
    }

    #[test]
    fn responses_split_data_and_status() {
        assert_eq!(Response::parse(&[0x63, 0xC2]).unwrap(), Response { data: vec![], sw: 0x63C2 });
        assert_eq!(Response::parse(&[1, 2, 0x90, 0]).unwrap(), Response { data: vec![1, 2], sw: SW_OK });
        assert_eq!(Response::parse(&[0x90]).err(), Some(ApduError::ShortResponse(1)));
    }

    proptest! {
        #[test]
        fn responses_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300), sw in any::<u16>()) {
            let r = Response { data, sw };
            prop_assert_eq!(Response::parse(&r.to_bytes()).unwrap(), r);
        }

        #[test]
        fn case_4_commands_carry_lc_data_le(data in proptest::collection::vec(any::<u8>(), 1..256), le in 1usize..=256) {
            let c = Command::new(0x80, 0x2A, 0, 0x80).with_data(&data).unwrap().expecting(le).unwrap();
            let b = c.bytes();
            prop_assert_eq!(b.len(), 4 + 1 + data.len() + 1);
            prop_assert_eq!(b[4] as usize, data.len());
            prop_assert_eq!(&b[5..5 + data.len()], &data[..]);
            prop_assert_eq!(b[b.len() - 1] as usize, le % 256);
        }
    }
}
