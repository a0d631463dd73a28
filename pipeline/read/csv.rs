//! CSV records on bytes, split by `csv-core` (no hand-written quote parser), with a fast path for
//! the plain lines that are most of a municipal export.
//!
//! Fields come out unescaped and undecoded; the decode stage decodes each one, so a CP932 trail
//! byte equal to `,` or `"` cannot occur (CP932 trail bytes are 0x40 and above) and splitting
//! before decoding is safe. CRLF, LF and CR all end a record, as csv-core reads them; blank lines
//! are skipped and not counted.
//!
//! ```text
//!  bytes ─► at a record start: the next LF (memchr) ─► a line of plain fields, no bare CR?
//!                │ yes: its fields are the bytes between commas and quotes (memchr), copied once
//!                └ no (or no LF yet): csv-core, byte by byte, until it ends a record
//! ```
//!
//! The fast path gives exactly what csv-core gives for such a line (checked by a property test
//! on any input and chunking); csv-core took a tenth of a CSV load's CPU, and its output was
//! copied twice more.

use super::{FieldSpan, RawRecords, RecordSplitter, SplitError};
use csv_core::{ReadFieldResult, Reader, ReaderBuilder, Terminator};

/// Splits CSV bytes into records.
pub struct CsvSplitter {
    reader: Reader,
    /// Unescaped bytes of the record in progress.
    data: Vec<u8>,
    data_len: usize,
    /// Raw bytes of the record in progress, from the end of the previous record.
    raw: Vec<u8>,
    /// Field spans of the record in progress, relative to `data` and `raw`.
    fields: Vec<FieldSpan>,
    field_start: usize,
    field_raw_start: usize,
    /// File offset of `raw[0]`.
    raw_base: u64,
    record_no: u64,
    done: bool,
    quoting: bool,
    /// At a record start with csv-core reset: plain lines are split without it.
    fast: bool,
    /// Records in a row the fast path may leave to csv-core before it gives up on the file (a
    /// file whose every line has doubled quotes would pay a failed try per line); 0: never tried
    /// (tests compare with csv-core alone).
    give_up_after: u32,
    /// Records left to csv-core since the fast path last split one.
    misses: u32,
}

/// [`CsvSplitter::give_up_after`] for files.
const GIVE_UP_AFTER: u32 = 64;

impl CsvSplitter {
    /// `quoting`: whether `"` encloses fields (false for layouts that never quote, where a `"`
    /// is an ordinary byte).
    pub fn new(quoting: bool) -> Self {
        Self::with_fast_path(quoting, GIVE_UP_AFTER)
    }

    fn with_fast_path(quoting: bool, give_up_after: u32) -> Self {
        let reader =
            ReaderBuilder::new().delimiter(b',').quote(b'"').quoting(quoting).double_quote(true).terminator(Terminator::CRLF).build();
        CsvSplitter {
            reader,
            data: vec![0; 4096],
            data_len: 0,
            raw: Vec::with_capacity(4096),
            fields: Vec::with_capacity(512),
            field_start: 0,
            field_raw_start: 0,
            raw_base: 0,
            record_no: 0,
            done: false,
            quoting,
            fast: give_up_after > 0,
            give_up_after,
            misses: 0,
        }
    }

    /// Splits the complete plain lines at the start of `input` (the splitter is at a record
    /// start); returns the rest, from the first line it leaves to csv-core.
    fn plain_lines<'i>(&mut self, mut input: &'i [u8], out: &mut RawRecords) -> &'i [u8] {
        while let Some(nl) = memchr::memchr(b'\n', input) {
            let line = &input[..nl];
            let content = line.strip_suffix(b"\r").unwrap_or(line);
            // An empty line is a blank line: not a record, as in csv-core.
            if !content.is_empty() {
                let (data_start, fields_start) = (out.data.len(), out.fields.len());
                if memchr::memchr(b'\r', content).is_some() || !self.plain_fields(content, out) {
                    out.data.truncate(data_start);
                    out.fields.truncate(fields_start);
                    break;
                }
                self.record_no += 1;
                let raw_start = out.raw.len();
                out.raw.extend_from_slice(content);
                out.push_record(self.record_no, self.raw_base, raw_start, fields_start);
            }
            self.raw_base += (nl + 1) as u64;
            input = &input[nl + 1..];
        }
        input
    }

    /// The fields of one line into `out`, when each is plain: unquoted without a `"`, or quoted
    /// without a `"` inside and closed right before a comma or the line's end (what exports write
    /// around names and addresses). False for anything else (doubled quotes, text after a
    /// closing quote), which csv-core then reads.
    fn plain_fields(&self, line: &[u8], out: &mut RawRecords) -> bool {
        let mut pos = 0;
        loop {
            let (value, raw_offset, next) = if self.quoting && line.get(pos) == Some(&b'"') {
                let Some(close) = memchr::memchr(b'"', &line[pos + 1..]) else { return false };
                let end = pos + 1 + close;
                if end + 1 < line.len() && line[end + 1] != b',' {
                    return false;
                }
                (&line[pos + 1..end], pos, end + 1)
            } else {
                let end = memchr::memchr(b',', &line[pos..]).map_or(line.len(), |c| pos + c);
                if self.quoting && memchr::memchr(b'"', &line[pos..end]).is_some() {
                    return false;
                }
                (&line[pos..end], pos, end)
            };
            let start = out.data.len();
            out.data.extend_from_slice(value);
            out.fields.push(FieldSpan { start, end: out.data.len(), raw_offset });
            // `next` is at the comma after the field or at the line's end.
            if next >= line.len() {
                return true;
            }
            pos = next + 1;
            if pos == line.len() {
                // A comma ends the line: one more, empty field.
                out.fields.push(FieldSpan { start: out.data.len(), end: out.data.len(), raw_offset: pos });
                return true;
            }
        }
    }

    fn emit(&mut self, out: &mut RawRecords) {
        // csv-core consumes the terminator of a record at the start of the next one (and blank
        // lines there too): strip them so the offset names the record's first byte.
        let lead = self.raw.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        let mut end = self.raw.len();
        while end > lead && (self.raw[end - 1] == b'\r' || self.raw[end - 1] == b'\n') {
            end -= 1;
        }
        if lead == end {
            // A blank line: not a record (csv-core reports one for some chunkings only).
            self.raw_base += self.raw.len() as u64;
            self.raw.clear();
            self.fields.clear();
            self.data_len = 0;
            self.field_start = 0;
            self.field_raw_start = 0;
            return;
        }
        self.record_no += 1;
        let raw_start = out.raw.len();
        out.raw.extend_from_slice(&self.raw[lead..end]);
        let data_start = out.data.len();
        out.data.extend_from_slice(&self.data[..self.data_len]);
        let fields_start = out.fields.len();
        for f in &self.fields {
            out.fields.push(FieldSpan {
                start: data_start + f.start,
                end: data_start + f.end,
                raw_offset: f.raw_offset.saturating_sub(lead),
            });
        }
        out.push_record(self.record_no, self.raw_base + lead as u64, raw_start, fields_start);
        self.raw_base += self.raw.len() as u64;
        self.raw.clear();
        self.fields.clear();
        self.data_len = 0;
        self.field_start = 0;
        self.field_raw_start = 0;
    }

    fn run(&mut self, mut input: &[u8], out: &mut RawRecords, at_end: bool) {
        loop {
            if self.fast {
                let before = out.records.len();
                input = self.plain_lines(input, out);
                if out.records.len() > before {
                    self.misses = 0;
                }
                if input.is_empty() {
                    self.done |= at_end;
                    return;
                }
                // A line with quotes or a bare CR, or one not ended yet: csv-core takes it.
                self.fast = false;
                self.misses += 1;
            }
            // An empty input tells csv-core the file has ended: only at the real end.
            if input.is_empty() && !at_end {
                return;
            }
            if self.data.len() - self.data_len < 64 {
                let n = self.data.len() * 2;
                self.data.resize(n, 0);
            }
            let (res, nin, nout) = self.reader.read_field(input, &mut self.data[self.data_len..]);
            self.raw.extend_from_slice(&input[..nin]);
            input = &input[nin..];
            self.data_len += nout;
            match res {
                ReadFieldResult::InputEmpty => {
                    if input.is_empty() && !at_end {
                        return;
                    }
                }
                ReadFieldResult::OutputFull => {}
                ReadFieldResult::Field { record_end } => {
                    // The field's raw start: skip the separator or terminator bytes consumed
                    // before it (they belong to the previous field or record).
                    let raw_off = self.field_raw_start;
                    self.fields.push(FieldSpan { start: self.field_start, end: self.data_len, raw_offset: raw_off });
                    self.field_start = self.data_len;
                    self.field_raw_start = self.raw.len();
                    if record_end {
                        self.emit(out);
                        // At a record start again. A terminator byte csv-core has not consumed
                        // yet is a blank line to the fast path.
                        if self.misses < self.give_up_after {
                            self.reader.reset();
                            self.fast = true;
                        }
                    }
                }
                ReadFieldResult::End => {
                    self.done = true;
                    return;
                }
            }
        }
    }
}

impl RecordSplitter for CsvSplitter {
    fn feed(&mut self, input: &[u8], out: &mut RawRecords) -> Result<(), SplitError> {
        if !input.is_empty() && !self.done {
            self.run(input, out, false);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut RawRecords) -> Result<(), SplitError> {
        if !self.done {
            self.run(&[], out, true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(input: &[u8], quoting: bool, chunk: usize) -> RawRecords {
        let mut s = CsvSplitter::new(quoting);
        let mut out = RawRecords::default();
        for c in input.chunks(chunk.max(1)) {
            s.feed(c, &mut out).unwrap();
        }
        s.finish(&mut out).unwrap();
        out
    }

    fn fields(r: &RawRecords) -> Vec<Vec<Vec<u8>>> {
        r.iter().map(|v| (0..v.field_count()).map(|i| v.field(i).unwrap().0.to_vec()).collect()).collect()
    }

    #[test]
    fn splits_quoted_fields_and_tracks_offsets() {
        let input = b"1,\"a,b\",c\r\n\r\n2,\"x\"\"y\",\"line\r\nbreak\"\r\n3,end";
        let r = split_all(input, true, 1 << 20);
        assert_eq!(r.len(), 3);
        let f = fields(&r);
        assert_eq!(f[0], vec![b"1".to_vec(), b"a,b".to_vec(), b"c".to_vec()]);
        assert_eq!(f[1], vec![b"2".to_vec(), b"x\"y".to_vec(), b"line\r\nbreak".to_vec()]);
        assert_eq!(f[2], vec![b"3".to_vec(), b"end".to_vec()]);
        let recs: Vec<_> = r.iter().map(|v| (v.record_no, v.offset, v.raw.to_vec())).collect();
        assert_eq!(recs[0], (1, 0, b"1,\"a,b\",c".to_vec()));
        assert_eq!(recs[1], (2, 13, b"2,\"x\"\"y\",\"line\r\nbreak\"".to_vec()));
        assert_eq!(recs[2].1, input.len() as u64 - 5);
        // Field offsets point at the first content byte in the file.
        let v = r.get(0).unwrap();
        assert_eq!(v.field(1).unwrap().1, 3);
        assert_eq!(v.field(2).unwrap().1, 8);
        let v = r.get(1).unwrap();
        assert_eq!(v.field(2).unwrap().1, 13 + 10);
    }

    #[test]
    fn unquoted_layouts_keep_quotes_as_bytes() {
        let r = split_all(b"a\"b,\"c\r\n", false, 3);
        assert_eq!(fields(&r)[0], vec![b"a\"b".to_vec(), b"\"c".to_vec()]);
    }

    /// A record as the splitter hands it on: number, offset, raw bytes and fields (bytes and
    /// offset in the file).
    type Split = (u64, u64, Vec<u8>, Vec<(Vec<u8>, u64)>);

    /// What the splitter gives with the fast path giving up after `give_up_after` misses in a
    /// row (0: csv-core alone).
    fn everything(input: &[u8], quoting: bool, chunk: usize, give_up_after: u32) -> Vec<Split> {
        let mut s = CsvSplitter::with_fast_path(quoting, give_up_after);
        let mut out = RawRecords::default();
        for c in input.chunks(chunk.max(1)) {
            s.feed(c, &mut out).unwrap();
        }
        s.finish(&mut out).unwrap();
        out.iter()
            .map(|v| {
                let fields = (0..v.field_count()).map(|i| v.field(i).map(|(b, o)| (b.to_vec(), o)).unwrap()).collect();
                (v.record_no, v.offset, v.raw.to_vec(), fields)
            })
            .collect()
    }

    #[test]
    fn the_fast_path_takes_plain_lines_and_leaves_the_rest_to_csv_core() {
        let input = b"a,b\r\n\r\n\nc,\"d,e\"\r\nf\rg,h\ni,j";
        for chunk in [1, 2, 5, input.len()] {
            let got = everything(input, true, chunk, GIVE_UP_AFTER);
            assert_eq!(got, everything(input, true, chunk, 0));
            let raws: Vec<&[u8]> = got.iter().map(|r| r.2.as_slice()).collect();
            assert_eq!(raws, vec![&b"a,b"[..], b"c,\"d,e\"", b"f", b"g,h", b"i,j"]);
            assert_eq!(got[1].1, 8);
            assert_eq!(got[1].3[1], (b"d,e".to_vec(), 11));
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_splits_as_csv_core_does(
            bytes in prop::collection::vec(prop::sample::select(vec![b'a', b',', b'"', b'\r', b'\n', 0x82, 0xa0]), 0..80),
            quoting in any::<bool>(),
            chunk in 1usize..40,
            // Small values make it give up (and go on with csv-core) within the input.
            give_up_after in prop::sample::select(vec![1u32, 2, 3, GIVE_UP_AFTER]),
        ) {
            prop_assert_eq!(everything(&bytes, quoting, chunk, give_up_after), everything(&bytes, quoting, bytes.len() + 1, 0));
        }

        #[test]
        fn any_chunk_size_gives_the_same_records(
            rows in prop::collection::vec(prop::collection::vec("[a-c\",\r\n\u{3042}]{0,6}", 1..5), 0..8),
            quote_all in any::<bool>(),
            chunk in 1usize..40,
        ) {
            let mut input = Vec::new();
            for row in &rows {
                let line: Vec<String> = row.iter().map(|f| {
                    if quote_all || f.contains([',', '"', '\r', '\n']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() }
                }).collect();
                input.extend_from_slice(line.join(",").as_bytes());
                input.extend_from_slice(b"\r\n");
            }
            // Rows of one empty field are blank lines, which are not records.
            let expected = rows.iter().filter(|r| !(r.len() == 1 && r[0].is_empty() && !quote_all)).count();
            let whole = split_all(&input, true, input.len() + 1);
            prop_assert_eq!(whole.len(), expected);
            let chunked = split_all(&input, true, chunk);
            prop_assert_eq!(fields(&whole), fields(&chunked));
            let a: Vec<_> = whole.iter().map(|v| (v.record_no, v.offset, v.raw.to_vec())).collect();
            let b: Vec<_> = chunked.iter().map(|v| (v.record_no, v.offset, v.raw.to_vec())).collect();
            prop_assert_eq!(a.clone(), b);
            // Each raw record is found at its offset in the input.
            for (_, off, raw) in a {
                prop_assert_eq!(&input[off as usize..off as usize + raw.len()], &raw[..]);
            }
        }
    }
}
