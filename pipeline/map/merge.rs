//! Later-wins as a merge: one row per key from a set's sorted runs, upserted into the previous
//! snapshot where the set's mode asks for it, streamed to the store a batch at a time.
//!
//! ```text
//!  run 1 (file A) ─┐
//!  run 2 (file A) ─┤  by (key, tier, apply date, file rank, record): the previous
//!  run 3 (file B) ─┼─ snapshot's row first, then this load's rows, the last winning
//!  previous ───────┘        │
//!   snapshot (optional)     ├─► winner of the load (unless a set rule withheld its key) ─► snapshot
//!                           │                                                            └► load rows
//!                           └─► else the previous row, when the set keeps it ─────────────► snapshot
//! ```
//!
//! The merge holds one batch of each input (4 Ki rows of a run, one store batch of the previous
//! snapshot) and the output batch being built, so its memory does not grow with the load. A single
//! run with no key twice and no previous snapshot (a sorted export into a snapshot set, the usual
//! case) is passed through as it is. Two rows of this load with one key and different content
//! are a key conflict, reported whether or not the key is withheld. The result is the same as
//! [`super::rowset::later_wins`] followed by [`super::rowset::merge_previous`], which hold
//! everything in memory and are what the merge is tested against.

use super::rowset::{KeepPrevious, KeyConflict, digest_sum, key_strings};
use super::spill::{KeySet, Run, SpillError, key_converter, key_rows, read_run};
use crate::schema::{RecordSetSchema, SOURCE_FILE, SOURCE_RECORD};
use arrow::array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::row::{RowConverter, Rows};

/// Rows per output batch (a few in unit tests, so merges flush midway).
#[cfg(not(test))]
const OUT_BATCH: usize = 8 * 1024;
#[cfg(test)]
const OUT_BATCH: usize = 5;

type Batches<'a> = Box<dyn Iterator<Item = Result<RecordBatch, SpillError>> + 'a>;

/// What becomes of the previous snapshot's rows.
pub enum Previous<'a> {
    /// Not read: a snapshot set's load replaces it.
    None,
    /// Every previous row stays unless this load has its key (incremental sets).
    Upsert(Batches<'a>),
    /// Only the rows of these keys stay (a snapshot set keeping the rows of quarantined records,
    /// SPEC §8), or all of them when `keep.all`.
    Keep(Batches<'a>, &'a KeepPrevious),
}

/// One set's merge.
pub struct MergeSpec<'a> {
    pub schema: &'a RecordSetSchema,
    pub runs: &'a [Run],
    /// Rank of each file of the load (SPEC §5.2), by file_seq.
    pub file_rank: &'a dyn Fn(u32) -> u32,
    pub previous: Previous<'a>,
    /// Keys (as [`key_converter`] rows) whose rows of this load a set rule withheld.
    pub withheld: &'a KeySet,
}

/// Counts of a merge, and the digest of the snapshot it wrote.
#[derive(Debug, Default)]
pub struct Merged {
    pub load_rows: u64,
    pub snapshot_rows: u64,
    /// Previous rows a snapshot set kept for quarantined records (every previous row when `all`).
    pub kept_previous: u64,
    pub conflicts: Vec<KeyConflict>,
    /// Wrapping sum of the set digest's terms over the snapshot's rows.
    pub digest: u128,
}

/// Where the merged rows go: the new snapshot, and this load's rows when they differ from it.
pub type Sink<'s> = &'s mut dyn FnMut(RecordBatch) -> Result<(), SpillError>;

struct Held {
    batch: RecordBatch,
    keys: Rows,
    order: Option<Int32Array>,
    record: Option<Int64Array>,
    /// Keys as `KeepPrevious` names them: of the previous snapshot's rows, when only some are kept.
    key_strings: Option<Vec<String>>,
}

struct Cursor<'a> {
    source: Batches<'a>,
    /// 0 for the previous snapshot, 1 for this load's runs.
    tier: u8,
    rank: u32,
    held: usize,
    pos: usize,
    len: usize,
    /// The previous snapshot must ascend strictly: its last key of the batch before.
    rows_before: u64,
}

pub fn merge(spec: MergeSpec<'_>, snapshot: Sink<'_>, mut load: Option<Sink<'_>>) -> Result<Merged, SpillError> {
    let schema = spec.schema;
    let ncols = schema.columns.len();
    let converter = key_converter(schema)?;
    let mut merged = Merged::default();
    let no_previous = matches!(spec.previous, Previous::None);
    // The usual case: one sorted run, nothing to merge into.
    if no_previous && spec.runs.len() <= 1 && spec.runs.iter().all(|r| r.unique) {
        // Every row of the run goes to the snapshot: its digest was summed as it was written.
        let whole = spec.withheld.is_empty();
        for run in spec.runs {
            for b in read_run(run)? {
                let b = b?;
                let b = RecordBatch::try_new(schema.arrow.clone(), b.columns()[..ncols].to_vec())?;
                let b = if spec.withheld.is_empty() {
                    b
                } else {
                    let keys = key_rows(schema, &converter, &b)?;
                    let mask: arrow::array::BooleanArray =
                        (0..b.num_rows()).map(|i| Some(!spec.withheld.contains(keys.row(i).as_ref()))).collect();
                    arrow::compute::filter_record_batch(&b, &mask)?
                };
                emit(schema, b, &mut merged, !whole, snapshot, &mut load)?;
            }
            if whole {
                merged.digest = run.digest;
            }
        }
        merged.load_rows = merged.snapshot_rows;
        return Ok(merged);
    }
    let (previous, keep) = match spec.previous {
        Previous::None => (None, None),
        Previous::Upsert(b) => (Some(b), None),
        Previous::Keep(b, k) => (Some(b), Some(k)),
    };
    let mut cursors: Vec<Cursor<'_>> = Vec::new();
    if let Some(source) = previous {
        cursors.push(Cursor { source, tier: 0, rank: 0, held: 0, pos: 0, len: 0, rows_before: 0 });
    }
    for run in spec.runs {
        cursors.push(Cursor {
            source: Box::new(read_run(run)?),
            tier: 1,
            rank: (spec.file_rank)(run.file_seq),
            held: 0,
            pos: 0,
            len: 0,
            rows_before: 0,
        });
    }
    let keep_strings = keep.is_some_and(|k| !k.all);
    let mut m = Merger { schema, converter, held: Vec::new(), cursors, heap: Vec::new(), keep_strings };
    for c in 0..m.cursors.len() {
        if m.fill(c)? {
            m.heap_push(c);
        }
    }
    let hash_col = ncols - 1;
    let file_col = schema.index_of(SOURCE_FILE);
    let mut group: Vec<(usize, usize, u8)> = Vec::new();
    let mut out_snapshot: Vec<(usize, usize)> = Vec::with_capacity(OUT_BATCH);
    let mut out_load: Vec<(usize, usize)> = Vec::new();
    while let Some(&top) = m.heap.first() {
        group.clear();
        let (h0, r0) = (m.cursors[top].held, m.cursors[top].pos);
        group.push((h0, r0, m.cursors[top].tier));
        m.advance(top)?;
        while let Some(&next) = m.heap.first() {
            let c = &m.cursors[next];
            if m.held[c.held].keys.row(c.pos) != m.held[h0].keys.row(r0) {
                break;
            }
            group.push((c.held, c.pos, c.tier));
            m.advance(next)?;
        }
        let prev: Vec<(usize, usize)> = group.iter().filter(|g| g.2 == 0).map(|g| (g.0, g.1)).collect();
        if prev.len() > 1 {
            return Err(SpillError::Unsorted { what: "the previous snapshot".into(), record_set: schema.name.clone(), row: 0 });
        }
        let loads: Vec<(usize, usize)> = group.iter().filter(|g| g.2 == 1).map(|g| (g.0, g.1)).collect();
        if loads.len() > 1 {
            merged.conflicts.extend(conflicts(&m.held, &loads, hash_col, file_col));
        }
        let winner =
            loads.last().copied().filter(|&(h, r)| spec.withheld.is_empty() || !spec.withheld.contains(m.held[h].keys.row(r).as_ref()));
        let kept = match (prev.first(), keep) {
            (None, _) => None,
            (Some(&p), None) => Some(p),
            (Some(&(h, r)), Some(k)) => {
                let keeps = k.all || m.held[h].key_strings.as_ref().is_some_and(|s| k.keys.contains(&s[r]));
                if keeps {
                    merged.kept_previous += 1;
                    Some((h, r))
                } else {
                    None
                }
            }
        };
        if let Some(w) = winner {
            out_snapshot.push(w);
            if load.is_some() {
                out_load.push(w);
            }
            merged.load_rows += 1;
        } else if let Some(p) = kept {
            out_snapshot.push(p);
        }
        // Keys that write nothing (withheld, or previous rows not kept) must not keep every batch
        // they pass through: batches no cursor is on are let go at the next flush.
        if out_snapshot.len() >= OUT_BATCH || out_load.len() >= OUT_BATCH || m.held.len() > 2 * m.cursors.len() + 2 {
            m.flush(&mut out_snapshot, &mut out_load, &mut merged, snapshot, &mut load)?;
        }
    }
    m.flush(&mut out_snapshot, &mut out_load, &mut merged, snapshot, &mut load)?;
    Ok(merged)
}

/// Rows of this load with the winner's key (the last of `loads`) and other content.
fn conflicts(held: &[Held], loads: &[(usize, usize)], hash_col: usize, file_col: Option<usize>) -> Vec<KeyConflict> {
    let text = |h: usize, c: usize| held[h].batch.column(c).as_any().downcast_ref::<StringArray>();
    let record = |h: usize, r: usize| held[h].record.as_ref().map_or(0, |a| a.value(r));
    let Some(((wh, wr), file_col)) = loads.last().copied().zip(file_col) else { return Vec::new() };
    let (Some(win_hash), Some(win_file)) = (text(wh, hash_col), text(wh, file_col)) else { return Vec::new() };
    let mut out = Vec::new();
    for &(eh, er) in &loads[..loads.len() - 1] {
        if let (Some(hash), Some(file)) = (text(eh, hash_col), text(eh, file_col))
            && hash.value(er) != win_hash.value(wr)
        {
            out.push(KeyConflict {
                earlier: (file.value(er).to_string(), record(eh, er)),
                later: (win_file.value(wr).to_string(), record(wh, wr)),
            });
        }
    }
    out
}

fn emit(
    schema: &RecordSetSchema,
    batch: RecordBatch,
    merged: &mut Merged,
    digest: bool,
    snapshot: Sink<'_>,
    load: &mut Option<Sink<'_>>,
) -> Result<(), SpillError> {
    if batch.num_rows() == 0 {
        return Ok(());
    }
    merged.snapshot_rows += batch.num_rows() as u64;
    if digest {
        merged.digest = merged.digest.wrapping_add(digest_sum(schema, &batch));
    }
    if let Some(load) = load.as_mut() {
        load(batch.clone())?;
    }
    snapshot(batch)
}

struct Merger<'a, 's> {
    schema: &'s RecordSetSchema,
    converter: RowConverter,
    held: Vec<Held>,
    cursors: Vec<Cursor<'a>>,
    /// Cursors with rows left, as a binary min-heap by their current row.
    heap: Vec<usize>,
    /// The previous snapshot's keys are needed as strings (some of its rows are kept).
    keep_strings: bool,
}

impl Merger<'_, '_> {
    fn less(&self, a: usize, b: usize) -> bool {
        let (ca, cb) = (&self.cursors[a], &self.cursors[b]);
        let (ha, hb) = (&self.held[ca.held], &self.held[cb.held]);
        let date = |h: &Held, r: usize| h.order.as_ref().map_or(i32::MIN, |o| o.value(r));
        let record = |h: &Held, r: usize| h.record.as_ref().map_or(0, |o| o.value(r));
        ha.keys
            .row(ca.pos)
            .cmp(&hb.keys.row(cb.pos))
            .then(ca.tier.cmp(&cb.tier))
            .then(date(ha, ca.pos).cmp(&date(hb, cb.pos)))
            .then(ca.rank.cmp(&cb.rank))
            .then(record(ha, ca.pos).cmp(&record(hb, cb.pos)))
            // Rows equal in all of these (never from the shipped mappings) go in run order, as
            // the stable sort of the in-memory later-wins keeps them.
            .then(a.cmp(&b))
            .is_lt()
    }

    fn heap_push(&mut self, c: usize) {
        self.heap.push(c);
        let mut i = self.heap.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.less(self.heap[i], self.heap[parent]) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.heap.len() && self.less(self.heap[l], self.heap[least]) {
                least = l;
            }
            if r < self.heap.len() && self.less(self.heap[r], self.heap[least]) {
                least = r;
            }
            if least == i {
                return;
            }
            self.heap.swap(i, least);
            i = least;
        }
    }

    /// Loads the cursor's next non-empty batch; false when it has none left.
    fn fill(&mut self, c: usize) -> Result<bool, SpillError> {
        loop {
            let Some(batch) = self.cursors[c].source.next() else { return Ok(false) };
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let keys = key_rows(self.schema, &self.converter, &batch)?;
            let cur = &self.cursors[c];
            if cur.tier == 0 {
                // A store file out of key order would give a wrong snapshot: refuse it.
                let before = (cur.len > 0).then(|| self.held[cur.held].keys.row(cur.len - 1));
                let first_ok = before.is_none_or(|b| b < keys.row(0));
                if let Some(i) = (1..keys.num_rows()).find(|&i| keys.row(i - 1) >= keys.row(i)).or((!first_ok).then_some(0)) {
                    return Err(SpillError::Unsorted {
                        what: "the previous snapshot".into(),
                        record_set: self.schema.name.clone(),
                        row: cur.rows_before + i as u64,
                    });
                }
            }
            let order =
                (cur.tier == 1).then(|| batch.column(batch.num_columns() - 1).as_any().downcast_ref::<Int32Array>().cloned()).flatten();
            let record = self.schema.index_of(SOURCE_RECORD).and_then(|i| batch.column(i).as_any().downcast_ref::<Int64Array>().cloned());
            let key_strings = if cur.tier == 0 && self.keep_strings { Some(key_strings(self.schema, &batch)?) } else { None };
            let len = batch.num_rows();
            self.held.push(Held { batch, keys, order, record, key_strings });
            let cur = &mut self.cursors[c];
            cur.rows_before += cur.len as u64;
            cur.held = self.held.len() - 1;
            cur.pos = 0;
            cur.len = len;
            return Ok(true);
        }
    }

    /// Moves the heap's top cursor on by a row.
    fn advance(&mut self, c: usize) -> Result<(), SpillError> {
        self.cursors[c].pos += 1;
        if self.cursors[c].pos == self.cursors[c].len && !self.fill(c)? {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        self.sift_down(0);
        Ok(())
    }

    /// Writes the chosen rows out and lets go of the batches no cursor is on any more.
    fn flush(
        &mut self,
        out_snapshot: &mut Vec<(usize, usize)>,
        out_load: &mut Vec<(usize, usize)>,
        merged: &mut Merged,
        snapshot: Sink<'_>,
        load: &mut Option<Sink<'_>>,
    ) -> Result<(), SpillError> {
        let ncols = self.schema.columns.len();
        let build = |held: &[Held], rows: &[(usize, usize)]| -> Result<RecordBatch, SpillError> {
            let cols: Vec<ArrayRef> = (0..ncols)
                .map(|c| {
                    let arrays: Vec<&dyn Array> = held.iter().map(|h| h.batch.column(c).as_ref()).collect();
                    arrow::compute::interleave(&arrays, rows)
                })
                .collect::<Result<_, _>>()?;
            Ok(RecordBatch::try_new(self.schema.arrow.clone(), cols)?)
        };
        if !out_snapshot.is_empty() {
            let b = build(&self.held, out_snapshot)?;
            merged.snapshot_rows += b.num_rows() as u64;
            merged.digest = merged.digest.wrapping_add(digest_sum(self.schema, &b));
            snapshot(b)?;
        }
        if let Some(load) = load.as_mut()
            && !out_load.is_empty()
        {
            load(build(&self.held, out_load)?)?;
        }
        out_snapshot.clear();
        out_load.clear();
        // Keep only the batches cursors are on.
        let mut held = Vec::with_capacity(self.cursors.len());
        let old = std::mem::take(&mut self.held);
        let mut slots: Vec<Option<Held>> = old.into_iter().map(Some).collect();
        for c in self.cursors.iter_mut() {
            if c.pos < c.len
                && let Some(h) = slots.get_mut(c.held).and_then(Option::take)
            {
                held.push(h);
                c.held = held.len() - 1;
            }
        }
        self.held = held;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::builder::{SetBuilder, SetRows, Value};
    use crate::map::rowset::{later_wins, merge_previous, set_digest};
    use crate::map::spill::RunWriter;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn copayment() -> Arc<RecordSetSchema> {
        let catalog = crate::job::catalog::Catalog::embedded().expect("catalog");
        catalog.schemas.get("copayment_ratio").expect("set").clone()
    }

    /// copayment_ratio rows (insured_no, valid_from, ratio, apply date) of one file.
    fn part(schema: &Arc<RecordSetSchema>, file: &str, seq: u32, first_record: u64, rows: &[(u8, i32, i64, i32)]) -> SetRows {
        let mut b = SetBuilder::new(schema.clone());
        for (i, &(insured, from, ratio, order)) in rows.iter().enumerate() {
            let insured = format!("{insured:010}");
            for (c, col) in schema.columns[..schema.content_len()].iter().enumerate() {
                let v = match col.name.as_str() {
                    "insurer_no" => Value::Str("141309"),
                    "insured_no" => Value::Str(&insured),
                    "valid_from" => Value::Date(from),
                    "ratio" => Value::Int(ratio),
                    _ => Value::Null,
                };
                b.column(c).append(v);
            }
            b.end_row(file, first_record + i as u64, 0, Some(order));
        }
        b.finish(seq)
    }

    fn described(batch: &RecordBatch) -> Vec<String> {
        let col = |n: &str| batch.column_by_name(n).expect("column").clone();
        let (insured, file, record, hash) = (col("insured_no"), col(SOURCE_FILE), col(SOURCE_RECORD), col(crate::schema::ROW_HASH));
        let text = |a: &ArrayRef, i: usize| a.as_any().downcast_ref::<StringArray>().expect("utf8").value(i).to_string();
        let from =
            batch.column_by_name("valid_from").expect("column").as_any().downcast_ref::<arrow::array::Date32Array>().expect("date").clone();
        let record = record.as_any().downcast_ref::<Int64Array>().expect("i64").clone();
        (0..batch.num_rows())
            .map(|i| format!("{}/{} {}#{} {}", text(&insured, i), from.value(i), text(&file, i), record.value(i), text(&hash, i)))
            .collect()
    }

    /// How the previous snapshot is merged in: 0 not at all, 1 upsert, 2 keep some keys, 3 keep all.
    fn previous_of<'a>(how: u8, batches: Vec<RecordBatch>, keep: &'a KeepPrevious) -> Previous<'a> {
        let it: Batches<'a> = Box::new(batches.into_iter().map(Ok));
        match how {
            0 => Previous::None,
            1 => Previous::Upsert(it),
            _ => Previous::Keep(it, keep),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Runs of files in any order, merged a batch at a time, give what later-wins and the
        /// merge with the previous snapshot give in memory: the same rows, conflicts, counts and
        /// digest, with withheld keys left out.
        #[test]
        fn merging_runs_is_later_wins_then_merge_previous(
            files in prop::collection::vec(prop::collection::vec((0u8..12, 0i32..3, 1i64..4, 0i32..3), 0..40), 1..4),
            part_rows in 1usize..12,
            previous in prop::collection::btree_map((0u8..12, 0i32..3), 1i64..4, 0..20),
            how in 0u8..4,
            kept in prop::collection::btree_set(0u8..12, 0..4),
            withheld in prop::collection::btree_set((0u8..12, 0i32..3), 0..3),
            previous_batch in 1usize..8,
        ) {
            let schema = copayment();
            let dir = tempfile::tempdir().expect("dir");
            let names: Vec<String> = (0..files.len()).map(|i| format!("f{i}.csv")).collect();
            // Files are ranked in reverse of their sequence, so rank and sequence differ.
            let rank = |seq: u32| files.len() as u32 - seq;
            let mut runs = Vec::new();
            let mut parts = Vec::new();
            for (seq, rows) in files.iter().enumerate() {
                let mut w = RunWriter::new(schema.clone(), dir.path(), seq as u32, 0).expect("writer");
                for (c, chunk) in rows.chunks(part_rows).enumerate() {
                    w.push(part(&schema, &names[seq], seq as u32, (c * part_rows) as u64 + 1, chunk)).expect("push");
                }
                runs.extend(w.finish().expect("runs"));
                parts.push(part(&schema, &names[seq], seq as u32, 1, rows));
            }
            let prev_rows: Vec<(u8, i32, i64, i32)> = previous.iter().map(|(&(k, f), &r)| (k, f, r, 0)).collect();
            let prev = later_wins(&schema, vec![part(&schema, "old.csv", 0, 1, &prev_rows)], &|_| 0).expect("previous").batch;
            let keep = KeepPrevious {
                keys: kept.iter().flat_map(|k| (0..3).map(move |f| (k, f))).map(|(k, f)| {
                    let d = arrow::array::Date32Array::from(vec![f]);
                    let d = arrow::compute::cast(&d, &arrow::datatypes::DataType::Utf8).expect("cast");
                    format!("141309\u{1F}{k:010}\u{1F}{}", d.as_any().downcast_ref::<StringArray>().expect("utf8").value(0))
                }).collect(),
                all: how == 3,
            };
            let converter = key_converter(&schema).expect("converter");
            let withheld_rows = part(&schema, "x.csv", 0, 1, &withheld.iter().map(|&(k, f)| (k, f, 1, 0)).collect::<Vec<_>>());
            let withheld_batch = later_wins(&schema, vec![withheld_rows], &|_| 0).expect("withheld").batch;
            let withheld_keys: KeySet =
                key_rows(&schema, &converter, &withheld_batch).expect("keys").iter().map(|r| r.as_ref().to_vec()).collect();

            // In memory.
            let load = later_wins(&schema, parts, &rank).expect("later wins");
            let load_keys = key_rows(&schema, &converter, &load.batch).expect("keys");
            let mask: arrow::array::BooleanArray = (0..load.batch.num_rows()).map(|i| Some(!withheld_keys.contains(load_keys.row(i).as_ref()))).collect();
            let load_batch = arrow::compute::filter_record_batch(&load.batch, &mask).expect("filter");
            let (want, want_kept) = match how {
                0 => merge_previous(&schema, &load_batch, None, None),
                1 => merge_previous(&schema, &load_batch, Some(&prev), None),
                _ => merge_previous(&schema, &load_batch, Some(&prev), Some(&keep)),
            }.expect("merge in memory");

            // Streamed.
            let prev_batches: Vec<RecordBatch> = (0..prev.num_rows()).step_by(previous_batch).map(|s| prev.slice(s, previous_batch.min(prev.num_rows() - s))).collect();
            let spec = MergeSpec { schema: &schema, runs: &runs, file_rank: &rank, previous: previous_of(how, prev_batches, &keep), withheld: &withheld_keys };
            let (mut snapshot, mut loaded) = (Vec::new(), Vec::new());
            let mut to_load = |b: RecordBatch| { loaded.push(b); Ok(()) };
            let merged = merge(spec, &mut |b| { snapshot.push(b); Ok(()) }, Some(&mut to_load)).expect("merge");
            let got = arrow::compute::concat_batches(&schema.arrow, &snapshot).expect("concat");
            let got_load = arrow::compute::concat_batches(&schema.arrow, &loaded).expect("concat");

            prop_assert_eq!(described(&got), described(&want));
            prop_assert_eq!(described(&got_load), described(&load_batch));
            prop_assert_eq!(merged.snapshot_rows, want.num_rows() as u64);
            prop_assert_eq!(merged.load_rows, load_batch.num_rows() as u64);
            prop_assert_eq!(merged.kept_previous, if how >= 2 { want_kept as u64 } else { 0 });
            prop_assert_eq!(crate::map::rowset::digest_hex(merged.digest), set_digest(&schema, &want));
            let mut a = merged.conflicts.clone();
            let mut b = load.conflicts.clone();
            a.sort_by(|x, y| (&x.earlier, &x.later).cmp(&(&y.earlier, &y.later)));
            b.sort_by(|x, y| (&x.earlier, &x.later).cmp(&(&y.earlier, &y.later)));
            prop_assert_eq!(a, b);
        }
    }
}
