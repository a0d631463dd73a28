//! Fixed-width records: a record is a count of bytes, optionally followed by CRLF.
//!
//! Nothing is decoded here: SPEC §4.7 says cut bytes first, then decode each field, so a field is
//! cut by byte range in the mapping stage and decoded on its own.

use super::{RawRecords, RecordSplitter, SplitError};

/// What follows each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminator {
    /// Every record is followed by CRLF.
    Crlf,
    /// Records follow each other with nothing between them.
    None,
}

impl Terminator {
    fn len(self) -> usize {
        match self {
            Terminator::Crlf => 2,
            Terminator::None => 0,
        }
    }
}

pub struct FixedSplitter {
    record_len: usize,
    terminator: Terminator,
    pending: Vec<u8>,
    /// File offset of `pending[0]`.
    base: u64,
    record_no: u64,
}

impl FixedSplitter {
    pub fn new(record_len: usize, terminator: Terminator) -> Self {
        FixedSplitter { record_len: record_len.max(1), terminator, pending: Vec::new(), base: 0, record_no: 0 }
    }

    fn take_records(&mut self, input: &[u8], out: &mut RawRecords) -> Result<(), SplitError> {
        let step = self.record_len + self.terminator.len();
        // Fast path: whole records straight from the input, with no copy into `pending`.
        let mut data: &[u8] = input;
        if !self.pending.is_empty() {
            let need = step - self.pending.len();
            let take = need.min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < step {
                return Ok(());
            }
            let rec = std::mem::take(&mut self.pending);
            self.push(&rec, out)?;
        }
        while data.len() >= step {
            self.push(&data[..step], out)?;
            data = &data[step..];
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    fn push(&mut self, rec: &[u8], out: &mut RawRecords) -> Result<(), SplitError> {
        self.record_no += 1;
        if self.terminator == Terminator::Crlf && &rec[self.record_len..] != b"\r\n" {
            return Err(SplitError::MissingTerminator { record_no: self.record_no, offset: self.base + self.record_len as u64 });
        }
        let raw_start = out.raw.len();
        out.raw.extend_from_slice(&rec[..self.record_len]);
        let fields_at = out.fields.len();
        out.push_record(self.record_no, self.base, raw_start, fields_at);
        self.base += rec.len() as u64;
        Ok(())
    }
}

impl RecordSplitter for FixedSplitter {
    fn feed(&mut self, input: &[u8], out: &mut RawRecords) -> Result<(), SplitError> {
        self.take_records(input, out)
    }

    fn finish(&mut self, _out: &mut RawRecords) -> Result<(), SplitError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        Err(SplitError::TruncatedRecord { offset: self.base, len: self.pending.len(), record_len: self.record_len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(input: &[u8], len: usize, t: Terminator, chunk: usize) -> Result<Vec<(u64, u64, Vec<u8>)>, SplitError> {
        let mut s = FixedSplitter::new(len, t);
        let mut out = RawRecords::default();
        for c in input.chunks(chunk.max(1)) {
            s.feed(c, &mut out)?;
        }
        s.finish(&mut out)?;
        Ok(out.iter().map(|v| (v.record_no, v.offset, v.raw.to_vec())).collect())
    }

    #[test]
    fn crlf_and_no_terminator() {
        let r = split(b"abcd\r\nefgh\r\n", 4, Terminator::Crlf, 3).unwrap();
        assert_eq!(r, vec![(1, 0, b"abcd".to_vec()), (2, 6, b"efgh".to_vec())]);
        let r = split(b"abcdefgh", 4, Terminator::None, 5).unwrap();
        assert_eq!(r, vec![(1, 0, b"abcd".to_vec()), (2, 4, b"efgh".to_vec())]);
    }

    #[test]
    fn truncated_and_missing_crlf_are_file_errors() {
        assert_eq!(
            split(b"abcd\r\nef", 4, Terminator::Crlf, 100).unwrap_err(),
            SplitError::TruncatedRecord { offset: 6, len: 2, record_len: 4 }
        );
        assert_eq!(
            split(b"abcdXYefgh\r\n", 4, Terminator::Crlf, 100).unwrap_err(),
            SplitError::MissingTerminator { record_no: 1, offset: 4 }
        );
    }

    proptest! {
        #[test]
        fn any_chunk_size_gives_the_same_records(recs in prop::collection::vec(prop::collection::vec(any::<u8>(), 7), 0..20), crlf in any::<bool>(), chunk in 1usize..30) {
            let t = if crlf { Terminator::Crlf } else { Terminator::None };
            let mut input = Vec::new();
            for r in &recs { input.extend_from_slice(r); if crlf { input.extend_from_slice(b"\r\n"); } }
            let whole = split(&input, 7, t, input.len() + 1).unwrap();
            let chunked = split(&input, 7, t, chunk).unwrap();
            prop_assert_eq!(whole.len(), recs.len());
            prop_assert_eq!(whole, chunked);
        }
    }
}
