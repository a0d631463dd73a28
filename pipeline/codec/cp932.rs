//! Strict CP932 (Windows-31J) decoding.
//!
//! `encoding_rs::SHIFT_JIS` is the WHATWG Shift_JIS decoder, which is CP932 (NEC and IBM
//! extensions included). Two of its behaviours do not fit files that must be decoded strictly
//! (reference/codes.md):
//! - a lone `0x80` decodes to U+0080 without an error, so it is detected here and reported;
//! - invalid sequences only turn into U+FFFD with the replacing API, so the non-replacing API is
//!   used and the byte offset of the malformed sequence is reported instead.
//!
//! A field is decoded as a whole with `last = true`: a double-byte character whose trail byte lies
//! beyond the field (a fixed-width field cut in the middle of a character) is an error, never a
//! character to guess. [`StreamDecoder`] decodes a byte stream fed in chunks of any size and gives
//! exactly what decoding it at once gives; the property tests hold it to that.

use encoding_rs::{DecoderResult, SHIFT_JIS};

/// What is wrong with the bytes of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cp932Fault {
    /// `0x80`, which CP932 does not assign (encoding_rs would pass it through as U+0080).
    Lone0x80,
    /// A lead byte of a double-byte character is the last byte of the field.
    CutDoubleByte,
    /// A byte or byte pair that CP932 does not map.
    InvalidSequence,
}

impl Cp932Fault {
    pub fn describe(self) -> &'static str {
        match self {
            Cp932Fault::Lone0x80 => "byte 0x80 is not a CP932 character",
            Cp932Fault::CutDoubleByte => "double-byte character cut by the field boundary",
            Cp932Fault::InvalidSequence => "invalid CP932 byte sequence",
        }
    }
}

/// A decoding error: the fault and the offset of its first byte, relative to the start of the
/// bytes given to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cp932Error {
    pub fault: Cp932Fault,
    pub offset: usize,
}

/// True for a byte that starts a double-byte character in CP932.
#[inline]
pub fn is_lead_byte(b: u8) -> bool {
    matches!(b, 0x81..=0x9F | 0xE0..=0xFC)
}

/// Decodes one field strictly and appends the text to `out`. On error `out` is left with
/// whatever was appended before the error; callers discard it.
pub fn decode_field(bytes: &[u8], out: &mut String) -> Result<(), Cp932Error> {
    // ASCII is a subset of CP932 with the same code points (0x5C stays '\\').
    if bytes.is_ascii()
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        out.push_str(text);
        return Ok(());
    }
    let start_len = out.len();
    let mut decoder = SHIFT_JIS.new_decoder_without_bom_handling();
    let needed = decoder.max_utf8_buffer_length_without_replacement(bytes.len()).unwrap_or(bytes.len().saturating_mul(3));
    out.reserve(needed);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, out, true);
    match result {
        DecoderResult::InputEmpty => {}
        DecoderResult::Malformed(bad, good_after) => {
            let offset = read.saturating_sub(good_after as usize + bad as usize);
            if let Some(p) = find_lone_0x80(&bytes[..offset.min(bytes.len())]) {
                return Err(Cp932Error { fault: Cp932Fault::Lone0x80, offset: p });
            }
            let fault = if offset + 1 == bytes.len() && is_lead_byte(bytes[offset]) {
                Cp932Fault::CutDoubleByte
            } else {
                Cp932Fault::InvalidSequence
            };
            return Err(Cp932Error { fault, offset });
        }
        DecoderResult::OutputFull => {
            // The buffer was reserved for the worst case; treat the impossible as invalid input
            // rather than panic.
            return Err(Cp932Error { fault: Cp932Fault::InvalidSequence, offset: read });
        }
    }
    if out[start_len..].contains('\u{80}')
        && let Some(offset) = find_lone_0x80(bytes)
    {
        return Err(Cp932Error { fault: Cp932Fault::Lone0x80, offset });
    }
    Ok(())
}

/// The offset of the first 0x80 byte that stands alone (not a trail byte of a double-byte
/// character).
pub fn find_lone_0x80(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x80 {
            return Some(i);
        }
        i += if is_lead_byte(b) { 2 } else { 1 };
    }
    None
}

/// Decodes a CP932 byte stream fed in chunks of any size. Offsets in errors are counted from the
/// first byte ever fed.
pub struct StreamDecoder {
    decoder: encoding_rs::Decoder,
    consumed: usize,
    /// The previous chunk ended on a lead byte: the first byte of the next chunk is its trail.
    pending_lead: bool,
    failed: bool,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder { decoder: SHIFT_JIS.new_decoder_without_bom_handling(), consumed: 0, pending_lead: false, failed: false }
    }

    /// Decodes `chunk`, appending text to `out`. `last` marks the end of the stream.
    pub fn feed(&mut self, chunk: &[u8], out: &mut String, last: bool) -> Result<(), Cp932Error> {
        if self.failed {
            return Err(Cp932Error { fault: Cp932Fault::InvalidSequence, offset: self.consumed });
        }
        // Find a lone 0x80, with lead/trail state carried across chunks; decode only the bytes
        // before it so that an earlier malformed sequence is reported first.
        let mut i = 0;
        if self.pending_lead && !chunk.is_empty() {
            i = 1;
        }
        let mut ends_on_lead = false;
        let mut lone = None;
        while i < chunk.len() {
            let b = chunk[i];
            if b == 0x80 {
                lone = Some(i);
                break;
            }
            if is_lead_byte(b) {
                if i + 1 == chunk.len() {
                    ends_on_lead = true;
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        let slice = match lone {
            Some(p) => &chunk[..p],
            None => chunk,
        };
        let last_slice = last && lone.is_none();
        let needed = self.decoder.max_utf8_buffer_length_without_replacement(slice.len()).unwrap_or(slice.len().saturating_mul(3) + 16);
        out.reserve(needed);
        let (result, read) = self.decoder.decode_to_string_without_replacement(slice, out, last_slice);
        match result {
            DecoderResult::InputEmpty => {}
            DecoderResult::Malformed(bad, good_after) => {
                self.failed = true;
                let rel = read as isize - good_after as isize - bad as isize;
                let offset = (self.consumed as isize + rel).max(0) as usize;
                let at_end =
                    (rel >= 0 && rel as usize + 1 == slice.len() && is_lead_byte(slice[rel as usize])) || (rel < 0 && slice.is_empty());
                let fault = if last_slice && at_end { Cp932Fault::CutDoubleByte } else { Cp932Fault::InvalidSequence };
                return Err(Cp932Error { fault, offset });
            }
            DecoderResult::OutputFull => {
                self.failed = true;
                return Err(Cp932Error { fault: Cp932Fault::InvalidSequence, offset: self.consumed + read });
            }
        }
        if let Some(p) = lone {
            self.failed = true;
            return Err(Cp932Error { fault: Cp932Fault::Lone0x80, offset: self.consumed + p });
        }
        self.pending_lead = if chunk.is_empty() { self.pending_lead } else { ends_on_lead };
        self.consumed += chunk.len();
        Ok(())
    }
}

/// Encodes text as CP932 with the `Encoder` API (never `Encoding::encode`, which writes `&#NNNN;`
/// for what it cannot encode). Returns the first character that CP932 cannot hold.
pub fn encode(text: &str, out: &mut Vec<u8>) -> Result<(), char> {
    let mut encoder = SHIFT_JIS.new_encoder();
    let needed = encoder.max_buffer_length_from_utf8_without_replacement(text.len()).unwrap_or(text.len() * 2 + 16);
    out.reserve(needed);
    let (result, _read) = encoder.encode_from_utf8_to_vec_without_replacement(text, out, true);
    match result {
        encoding_rs::EncoderResult::InputEmpty => Ok(()),
        encoding_rs::EncoderResult::Unmappable(c) => Err(c),
        encoding_rs::EncoderResult::OutputFull => Err('\u{FFFD}'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(b: &[u8]) -> Result<String, Cp932Error> {
        let mut s = String::new();
        decode_field(b, &mut s).map(|_| s)
    }

    #[test]
    fn decodes_cp932_extensions_and_specials() {
        assert_eq!(dec(b"\x87\x40").unwrap(), "①");
        assert_eq!(dec(b"\xFB\xFC").unwrap(), "髙");
        assert_eq!(dec(b"\x81\x60").unwrap(), "\u{FF5E}");
        assert_eq!(dec(b"\x5C").unwrap(), "\\");
        assert_eq!(dec(b"\xB6\xDE").unwrap(), "ｶﾞ");
        assert_eq!(dec(b"\xF0\x40").unwrap(), "\u{E000}");
        assert_eq!(dec(b"\x81\x80").unwrap(), "÷");
    }

    #[test]
    fn lone_0x80_is_an_error_with_offset() {
        let e = dec(b"AB\x80C").unwrap_err();
        assert_eq!(e, Cp932Error { fault: Cp932Fault::Lone0x80, offset: 2 });
        // 0x80 as a trail byte is fine.
        assert!(dec(b"\x81\x80\x80").is_err());
        assert!(dec(b"\x81\x80").is_ok());
    }

    #[test]
    fn cut_double_byte_at_field_end() {
        let e = dec(b"\x82\xA0\x82").unwrap_err();
        assert_eq!(e, Cp932Error { fault: Cp932Fault::CutDoubleByte, offset: 2 });
    }

    #[test]
    fn invalid_bytes_report_their_offset() {
        let e = dec(b"abc\xFFd").unwrap_err();
        assert_eq!(e.fault, Cp932Fault::InvalidSequence);
        assert_eq!(e.offset, 3);
        let e = dec(b"\x82\xA0\xA0").unwrap_err();
        assert_eq!(e.offset, 2);
    }

    #[test]
    fn encode_refuses_unmappable() {
        let mut v = Vec::new();
        assert!(encode("髙橋", &mut v).is_ok());
        assert_eq!(v, b"\xFB\xFC\x8B\xB4");
        assert_eq!(encode("𠮷", &mut Vec::new()), Err('𠮷'));
    }

    fn cp932_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Mostly valid text with occasional arbitrary bytes.
        let piece = prop_oneof![
            8 => prop::sample::select(vec![
                b"A".to_vec(), b",".to_vec(), b"\x82\xA0".to_vec(), b"\x88\x9F".to_vec(),
                b"\xB6\xDE".to_vec(), b"\xFB\xFC".to_vec(), b"\x87\x40".to_vec(), b"\xF0\x40".to_vec(),
                b"\x81\x80".to_vec(), b"\r\n".to_vec(),
            ]),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn stream_decoding_in_any_chunks_equals_decoding_at_once(bytes in cp932_bytes(), cuts in prop::collection::vec(0usize..200, 0..8)) {
            let whole = dec(&bytes);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort();
            let mut d = StreamDecoder::new();
            let mut out = String::new();
            let mut prev = 0;
            let mut result = Ok(());
            for p in points.into_iter().chain(std::iter::once(bytes.len())) {
                if result.is_err() { break; }
                result = d.feed(&bytes[prev..p], &mut out, false);
                prev = p;
            }
            if result.is_ok() { result = d.feed(&[], &mut out, true); }
            match (whole, result) {
                (Ok(w), Ok(())) => prop_assert_eq!(w, out),
                (Err(a), Err(b)) => prop_assert_eq!(a.offset, b.offset),
                (a, b) => prop_assert!(false, "whole {:?} stream {:?}", a, b),
            }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = dec(&bytes);
        }
    }
}
