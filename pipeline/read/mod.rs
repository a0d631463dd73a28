//! Readers: split a file into records without decoding them.
//!
//! ```text
//!  file ──1 MiB chunks──► RecordSplitter::feed ──► RawRecords (a batch of records)
//!                          (push-style, no I/O)      data: unescaped field bytes
//!                                                     raw:  bytes as in the file
//!                                                     per record: ordinal, byte offset
//! ```
//!
//! Ingest drives them with [`split_stream_ahead`]: reading, hashing and splitting on a thread of
//! their own, a few batches ahead of the mapping, so one large file uses two cores.
//!
//! Splitters are push decoders in the manner of arrow-rs: they take bytes as they come and hand
//! back whole records, so they never hold more than one incomplete record, they work on any chunk
//! size (the property tests feed every size), and a fuzzer can drive them without files. The
//! caller drains the batch after each chunk, so memory does not grow with the file.
//!
//! Record ordinals count every record of the file, header and control records included; a CSV
//! record whose quoted field holds line breaks counts once (SPEC §3). Offsets are those of the
//! record's first byte in the file.
//!
//! XML (`xml.rs`) is the exception to push-style: quick-xml is a pull parser, so the XML reader
//! pulls from any `BufRead` (a slice in tests and fuzzers, a file in ingest) and fills the same
//! `RawRecords`, one `<Ikensho>` per record, with its text already decoded to UTF-8.

pub mod csv;
pub mod fixed;
pub mod xml;

use std::io::Read;

/// Where one field of a record lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    /// Range of the unescaped field bytes in [`RawRecords::data`].
    pub start: usize,
    pub end: usize,
    /// Offset of the field's first byte within the raw record (an opening quote included).
    pub raw_offset: usize,
}

/// One record of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// 1-based ordinal in the file.
    pub record_no: u64,
    /// Byte offset of the record's first byte in the file.
    pub offset: u64,
    /// Range of the raw bytes (as in the file, without the line terminator) in [`RawRecords::raw`].
    pub raw_start: usize,
    pub raw_end: usize,
    /// Range of this record's fields in [`RawRecords::fields`] (empty for fixed-width records,
    /// which the mapping cuts by byte ranges from the raw bytes).
    pub fields_start: usize,
    pub fields_end: usize,
    /// Range of this record's numbered list entries in [`RawRecords::entries`] (XML only).
    pub entries_start: usize,
    pub entries_end: usize,
    /// A structural fault of the record (XML only), index into [`RawRecords::faults`].
    pub fault: Option<usize>,
}

/// One numbered entry of an XML record (`<Item no="1" value="1"/>`, `<Entry no="3">text</Entry>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListEntry {
    /// Which list of the layout (index into its lists).
    pub list: usize,
    /// The number as written, a range of [`RawRecords::data`].
    pub number: (usize, usize),
    /// The value, a range of [`RawRecords::data`]; `None` when the element gives none.
    pub value: Option<(usize, usize)>,
    /// Byte offset of the element in the file.
    pub offset: u64,
}

/// Why an XML record does not have the layout's shape (an element in the wrong place); the
/// record is quarantined. Never holds the record's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFault {
    pub element: String,
    pub offset: u64,
    pub detail: String,
}

/// A batch of records split from a file.
#[derive(Debug, Default, Clone)]
pub struct RawRecords {
    pub data: Vec<u8>,
    pub raw: Vec<u8>,
    pub records: Vec<RecordMeta>,
    pub fields: Vec<FieldSpan>,
    pub entries: Vec<ListEntry>,
    pub faults: Vec<RecordFault>,
    /// Field offsets are exact (XML); otherwise a field that starts with `"` was quoted (CSV).
    pub exact_offsets: bool,
}

/// A borrowed view of one record.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub record_no: u64,
    pub offset: u64,
    pub raw: &'a [u8],
    data: &'a [u8],
    fields: &'a [FieldSpan],
    entries: &'a [ListEntry],
    fault: Option<&'a RecordFault>,
    exact_offsets: bool,
}

impl<'a> RecordView<'a> {
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The unescaped bytes of field `index` (0-based) and their offset in the file.
    pub fn field(&self, index: usize) -> Option<(&'a [u8], u64)> {
        let f = self.fields.get(index)?;
        let quoted = !self.exact_offsets && self.raw.get(f.raw_offset) == Some(&b'"');
        let offset = self.offset + f.raw_offset as u64 + quoted as u64;
        Some((&self.data[f.start..f.end], offset))
    }

    /// The numbered list entries of an XML record.
    pub fn entries(&self) -> &'a [ListEntry] {
        self.entries
    }

    /// Bytes of a range of the record's decoded text (a [`ListEntry`]'s number or value).
    pub fn text(&self, span: (usize, usize)) -> &'a [u8] {
        self.data.get(span.0..span.1).unwrap_or_default()
    }

    /// Why an XML record does not have the layout's shape, if it does not.
    pub fn fault(&self) -> Option<&'a RecordFault> {
        self.fault
    }

    /// Bytes `start..start+len` (0-based) of a fixed-width record and their offset in the file.
    pub fn bytes(&self, start: usize, len: usize) -> Option<(&'a [u8], u64)> {
        let end = start.checked_add(len)?;
        Some((self.raw.get(start..end)?, self.offset + start as u64))
    }
}

impl RawRecords {
    /// Ends a record whose raw bytes and fields (if any) were appended from `raw_start` and
    /// `fields_start` on (a splitter's record: no list entries, no fault).
    pub fn push_record(&mut self, record_no: u64, offset: u64, raw_start: usize, fields_start: usize) {
        self.records.push(RecordMeta {
            record_no,
            offset,
            raw_start,
            raw_end: self.raw.len(),
            fields_start,
            fields_end: self.fields.len(),
            entries_start: 0,
            entries_end: 0,
            fault: None,
        });
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.raw.clear();
        self.records.clear();
        self.fields.clear();
        self.entries.clear();
        self.faults.clear();
    }

    pub fn get(&self, i: usize) -> Option<RecordView<'_>> {
        let m = self.records.get(i)?;
        Some(RecordView {
            record_no: m.record_no,
            offset: m.offset,
            raw: &self.raw[m.raw_start..m.raw_end],
            data: &self.data,
            fields: &self.fields[m.fields_start..m.fields_end],
            entries: &self.entries[m.entries_start..m.entries_end],
            fault: m.fault.and_then(|i| self.faults.get(i)),
            exact_offsets: self.exact_offsets,
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = RecordView<'_>> {
        (0..self.records.len()).filter_map(move |i| self.get(i))
    }
}

/// A file-level problem found while splitting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("truncated last record: {len} bytes at byte offset {offset}, a record is {record_len} bytes")]
    TruncatedRecord { offset: u64, len: usize, record_len: usize },
    #[error("record {record_no}: expected CRLF at byte offset {offset}")]
    MissingTerminator { record_no: u64, offset: u64 },
}

/// A push decoder of records.
pub trait RecordSplitter {
    /// Splits as many whole records as `input` completes, appending them to `out`.
    fn feed(&mut self, input: &[u8], out: &mut RawRecords) -> Result<(), SplitError>;
    /// The end of the file: emits the last record if it is complete, or reports what is left.
    fn finish(&mut self, out: &mut RawRecords) -> Result<(), SplitError>;
}

/// Size of the chunks read from a file.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Reads `reader` to its end a chunk at a time through `splitter`; `emit` takes each batch that
/// has records, with the bytes read since the last, and the last batch (empty or not) at the end.
/// It leaves the batch empty, and returns false to stop.
fn drive<R: Read, S: RecordSplitter + ?Sized, E>(
    mut reader: R,
    splitter: &mut S,
    mut emit: impl FnMut(&mut RawRecords, usize) -> Result<bool, E>,
) -> Result<(), SplitStreamError<E>> {
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut batch = RawRecords::default();
    let mut bytes = 0usize;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SplitStreamError::Io(e)),
        };
        bytes += n;
        splitter.feed(&buf[..n], &mut batch).map_err(SplitStreamError::Split)?;
        if !batch.is_empty() && !emit(&mut batch, std::mem::take(&mut bytes)).map_err(SplitStreamError::Sink)? {
            return Ok(());
        }
    }
    splitter.finish(&mut batch).map_err(SplitStreamError::Split)?;
    emit(&mut batch, bytes).map_err(SplitStreamError::Sink)?;
    Ok(())
}

/// Drives a splitter over a reader, calling `sink` with each batch. Memory stays at one chunk
/// plus one batch.
pub fn split_stream<R: Read, S: RecordSplitter + ?Sized, E>(
    reader: R,
    splitter: &mut S,
    mut on_bytes: impl FnMut(usize),
    mut sink: impl FnMut(&RawRecords) -> Result<(), E>,
) -> Result<(), SplitStreamError<E>> {
    drive(reader, splitter, |batch, bytes| {
        on_bytes(bytes);
        if !batch.is_empty() {
            sink(batch)?;
        }
        batch.clear();
        Ok(true)
    })
}

/// Batches a producing thread of [`run_ahead`] may be ahead of its consumer.
pub(crate) const AHEAD: usize = 4;

/// Runs `produce` on a thread of its own, a few batches ahead of `consume`, which takes the
/// batches in order on the calling thread. `produce` hands each batch over with
/// `hand(batch, extra)`, which swaps it for one the consumer is done with (so memory stays at a
/// few batches) and returns false once the consumer has stopped. A consumer error stops the
/// producer and is the one returned; otherwise the producer's result is, after the consumer has
/// had every batch handed over before it ended.
pub(crate) fn run_ahead<T: Send, PE: Send, E>(
    produce: impl FnOnce(&mut dyn FnMut(&mut RawRecords, T) -> bool) -> Result<(), PE> + Send,
    mut consume: impl FnMut(&RawRecords, T) -> Result<(), E>,
) -> Result<Result<(), PE>, E> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(RawRecords, T)>(AHEAD);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<RawRecords>();
        let producer = scope.spawn(move || {
            produce(&mut |batch, extra| {
                let next = back_rx.try_recv().unwrap_or_default();
                tx.send((std::mem::replace(batch, next), extra)).is_ok()
            })
        });
        let mut failed = None;
        for (mut batch, extra) in rx.iter() {
            if let Err(e) = consume(&batch, extra) {
                failed = Some(e);
                break;
            }
            batch.clear();
            let _ = back_tx.send(batch);
        }
        // Hanging up stops a producer that is waiting to hand over a batch.
        drop(rx);
        let produced = producer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match failed {
            Some(e) => Err(e),
            None => Ok(produced),
        }
    })
}

/// [`split_stream`] on two cores: reading the file (and whatever `reader` does, such as hashing
/// it) and splitting it into records run on a thread of their own ([`run_ahead`]), while `sink`
/// takes the batches in file order on the calling thread. The errors are those `split_stream`
/// gives on the same input: the splitting thread stops at the chunk where it fails, after the
/// sink has had every batch before it, and a sink error stops the reading.
pub fn split_stream_ahead<R: Read + Send, S: RecordSplitter + Send + ?Sized, E>(
    reader: R,
    splitter: &mut S,
    mut on_bytes: impl FnMut(usize),
    mut sink: impl FnMut(&RawRecords) -> Result<(), E>,
) -> Result<(), SplitStreamError<E>> {
    let produced = run_ahead(
        // A closed channel means the sink failed; its error is the one to report.
        move |hand| drive(reader, splitter, |batch, bytes| Ok::<bool, std::convert::Infallible>(hand(batch, bytes))),
        |batch, bytes| {
            on_bytes(bytes);
            if batch.is_empty() { Ok(()) } else { sink(batch) }
        },
    )
    .map_err(SplitStreamError::Sink)?;
    produced.map_err(|e| match e {
        SplitStreamError::Io(e) => SplitStreamError::Io(e),
        SplitStreamError::Split(e) => SplitStreamError::Split(e),
        SplitStreamError::Sink(never) => match never {},
    })
}

#[derive(Debug)]
pub enum SplitStreamError<E> {
    Io(std::io::Error),
    Split(SplitError),
    Sink(E),
}

/// A reader that hands out at most `size` bytes per read, so each read is a chunk of its own
/// (the readers' tests feed every chunk size through it).
#[cfg(test)]
pub(crate) struct Chunked<'a> {
    pub data: &'a [u8],
    pub size: usize,
}

#[cfg(test)]
impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Seen = Vec<(u64, u64, Vec<u8>, Vec<Vec<u8>>)>;

    /// Records the sink saw (failing at batch `fail_at`), the result and the bytes reported.
    fn run(ahead: bool, input: &[u8], step: usize, record_len: Option<usize>, fail_at: usize) -> (Seen, String, usize) {
        let mut seen = Vec::new();
        let (mut batches, mut bytes) = (0usize, 0usize);
        let sink = |b: &RawRecords| {
            if batches == fail_at {
                return Err("sink failed");
            }
            batches += 1;
            for r in b.iter() {
                let fields = (0..r.field_count()).filter_map(|i| r.field(i)).map(|f| f.0.to_vec()).collect();
                seen.push((r.record_no, r.offset, r.raw.to_vec(), fields));
            }
            Ok(())
        };
        let reader = Chunked { data: input, size: step };
        let res = match record_len {
            Some(len) => {
                let mut s = fixed::FixedSplitter::new(len, fixed::Terminator::Crlf);
                if ahead {
                    split_stream_ahead(reader, &mut s, |n| bytes += n, sink)
                } else {
                    split_stream(reader, &mut s, |n| bytes += n, sink)
                }
            }
            None => {
                let mut s = csv::CsvSplitter::new(true);
                if ahead {
                    split_stream_ahead(reader, &mut s, |n| bytes += n, sink)
                } else {
                    split_stream(reader, &mut s, |n| bytes += n, sink)
                }
            }
        };
        let outcome = match res {
            Ok(()) => "ok".to_string(),
            Err(SplitStreamError::Io(e)) => format!("io {e}"),
            Err(SplitStreamError::Split(e)) => format!("split {e}"),
            Err(SplitStreamError::Sink(e)) => format!("sink {e}"),
        };
        (seen, outcome, bytes)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Splitting ahead on another thread gives the sink the same records, in the same
        /// batches, and ends with the same error as splitting in line: for CSV, for fixed-width
        /// records (a truncated last record or a missing CRLF is a split error), and when the
        /// sink fails part way.
        #[test]
        fn ahead_is_the_same_as_in_line(
            input in prop::collection::vec(prop::sample::select(b"ab,\"\r\n".to_vec()), 0..400),
            step in 1usize..64,
            record_len in prop::option::of(1usize..8),
            fail_at in 0usize..40,
        ) {
            let (a, ra, ba) = run(false, &input, step, record_len, fail_at);
            let (b, rb, bb) = run(true, &input, step, record_len, fail_at);
            prop_assert_eq!(a, b);
            prop_assert_eq!(&ra, &rb);
            if ra == "ok" {
                prop_assert_eq!(ba, input.len());
                prop_assert_eq!(bb, input.len());
            }
        }
    }
}
