//! A load's warnings (警告), written to their file as they come.
//!
//! A warning rule may flag every row of a set (a set loaded before the one it refers to: a
//! 5311 file before the 被保険者台帳), so a load does not hold its warnings: they are appended
//! to the Parquet file of `_warnings/insurer_no=<n>/load=<id>` in batches.
//!
//! ```text
//!  files' warnings (file order) ─┐
//!  row rules' warnings ──────────┼─► WarningSink ─► batches of 64 Ki ─► PartWriter (temporary name)
//!  set rules' warnings ──────────┤                                        │ finish (load storing)
//!  key conflicts ────────────────┘                                        ▼
//!                                                   _warnings/insurer_no=<n>/load=<id>/part-0.parquet
//! ```
//!
//! Until [`WarningSink::finish`] the file has a temporary name, which a failed or interrupted
//! load's sweep removes; the load finishes the sink once the ledger has it as storing, from when
//! a failure removes the load's outputs by its id.

use crate::map::quarantine::{WarningBuilder, WarningEntry};
use crate::store::{PartWriter, Store, StoreError, StoredFile};
use arrow::array::RecordBatch;
use std::collections::HashMap;

/// Warnings written at once.
const BATCH_ROWS: usize = 1 << 16;

pub struct WarningSink<'s> {
    store: &'s Store,
    insurer: &'s str,
    load_id: &'s str,
    writer: Option<PartWriter<'s>>,
    builder: WarningBuilder,
    /// Rule warnings per file (`kind = "rule"`), which the file's counts include.
    rule_warnings: HashMap<String, u64>,
}

impl<'s> WarningSink<'s> {
    pub fn new(store: &'s Store, insurer: &'s str, load_id: &'s str) -> WarningSink<'s> {
        WarningSink { store, insurer, load_id, writer: None, builder: WarningBuilder::default(), rule_warnings: HashMap::new() }
    }

    pub fn push(&mut self, w: WarningEntry<'_>) -> Result<(), StoreError> {
        if w.kind == "rule" {
            match self.rule_warnings.get_mut(w.file) {
                Some(n) => *n += 1,
                None => {
                    self.rule_warnings.insert(w.file.to_string(), 1);
                }
            }
        }
        self.builder.push(w);
        if self.builder.len() >= BATCH_ROWS {
            let batch = self.builder.finish()?;
            self.write(&batch)?;
        }
        Ok(())
    }

    /// Warnings already in a batch (a file's, from its mapping).
    pub fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        if !self.builder.is_empty() {
            let pending = self.builder.finish()?;
            self.write(&pending)?;
        }
        self.write(batch)
    }

    /// Rule warnings pushed so far for `file`.
    pub fn rule_warnings(&self, file: &str) -> u64 {
        self.rule_warnings.get(file).copied().unwrap_or(0)
    }

    /// The warnings file, in its directory; none when the load warned about nothing.
    pub fn finish(mut self) -> Result<Option<StoredFile>, StoreError> {
        if !self.builder.is_empty() {
            let pending = self.builder.finish()?;
            self.write(&pending)?;
        }
        self.writer.map(PartWriter::finish).transpose()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(self.store.warnings_writer(self.insurer, self.load_id)?),
        };
        writer.write(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn entry<'a>(file: &'a str, record: u64, kind: &'a str, message: &'a str) -> WarningEntry<'a> {
        WarningEntry { file, record_no: record, record_set: Some("recipient"), kind, field: None, rule_id: None, message }
    }

    #[test]
    fn warnings_are_written_in_batches_in_the_order_they_came() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut sink = WarningSink::new(&store, "141309", "141309-test");
        let mut gaiji = WarningBuilder::default();
        gaiji.push(entry("a.csv", 0, "unmapped_gaiji", "外字"));
        sink.push_batch(&gaiji.finish().unwrap()).unwrap();
        // More than two batches, the files interleaved.
        let n = 2 * BATCH_ROWS as u64 + 3;
        for i in 1..=n {
            sink.push(entry(if i % 3 == 0 { "b.csv" } else { "a.csv" }, i, "rule", "m")).unwrap();
        }
        sink.push(entry("b.csv", n + 1, "key_conflict", "c")).unwrap();
        assert_eq!(sink.rule_warnings("a.csv"), n - n / 3);
        assert_eq!(sink.rule_warnings("b.csv"), n / 3);
        assert_eq!(sink.rule_warnings("c.csv"), 0);
        let file = sink.finish().unwrap().expect("a warnings file");
        assert_eq!(file.rows, n + 2);
        assert_eq!(file.path, "_warnings/insurer_no=141309/load=141309-test/part-0.parquet");

        let f = std::fs::File::open(dir.path().join(&file.path)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap();
        let (mut records, mut kinds) = (Vec::new(), Vec::new());
        for b in reader {
            let b = b.unwrap();
            let r = b.column_by_name("source_record").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
            let k = b.column_by_name("warning_kind").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            records.extend(r.values().iter().copied());
            kinds.extend(k.iter().map(|k| k.unwrap().to_string()));
        }
        assert_eq!(records, (0..=n as i64 + 1).collect::<Vec<_>>());
        assert_eq!(kinds.first().map(String::as_str), Some("unmapped_gaiji"));
        assert_eq!(kinds.last().map(String::as_str), Some("key_conflict"));
    }

    #[test]
    fn a_load_without_warnings_writes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut sink = WarningSink::new(&store, "141309", "141309-test");
        sink.push_batch(&WarningBuilder::default().finish().unwrap()).unwrap();
        assert!(sink.finish().unwrap().is_none());
        assert!(!dir.path().join("_warnings").exists());
    }
}
