//! Synthetic store versions for benchmarks and scale tests of the diff: two versions of a record
//! set with a known number of inserts, updates and deletes, written batch by batch (never the
//! whole snapshot in memory), with real `row_hash`es and manifests, as a load would leave them.
//!
//! Row `i` of version 1 has key `(insurer, 2·i as 10 digits, fixed dates)`; version 2 deletes,
//! updates (one non-key column changes) or keeps each row by a hash of `i`, and inserts a row at
//! key `2·i + 1` after the chosen rows, so changes are spread over the whole key range.

use crate::diff::ChangeCounts;
use crate::map::rowset::row_hashes;
use crate::schema::{RecordSetSchema, SOURCE_FILE, SOURCE_OFFSET, SOURCE_RECORD};
use crate::store::{Manifest, SetEntry, Store, StoreError};
use arrow::array::{ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::DataType;
use std::collections::BTreeMap;
use std::sync::Arc;

const BATCH: u64 = 64 * 1024;

/// What [`write_versions`] wrote.
pub struct SyntheticVersions {
    pub old: Manifest,
    pub new: Manifest,
    /// The changes version 2 holds against version 1.
    pub expected: ChangeCounts,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Update,
    Delete,
}

/// `changed_per_million` of the rows are deleted, as many updated, and as many get an insert after them.
fn fate(i: u64, changed_per_million: u64) -> (Fate, bool) {
    let h = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()) % 1_000_000;
    let c = changed_per_million;
    if h < c {
        (Fate::Delete, false)
    } else if h < 2 * c {
        (Fate::Update, false)
    } else if h < 3 * c {
        (Fate::Keep, true)
    } else {
        (Fate::Keep, false)
    }
}

fn column(set: &RecordSetSchema, c: usize, keys: &[u64], salt: &[u64], insurer: &str) -> Result<ArrayRef, StoreError> {
    let col = &set.columns[c];
    let key_pos = set.key.iter().position(|&k| k == c);
    let n = keys.len();
    Ok(match (&col.data_type, key_pos) {
        (DataType::Utf8, Some(0)) => Arc::new(StringArray::from(vec![insurer; n])),
        (DataType::Utf8, Some(_)) => Arc::new(StringArray::from_iter_values(keys.iter().map(|k| format!("{k:010}")))),
        (DataType::Date32, Some(_)) => Arc::new(Date32Array::from(vec![19_000; n])),
        (DataType::Utf8, None) if col.name == SOURCE_FILE => Arc::new(StringArray::from(vec!["synthetic.csv"; n])),
        (DataType::Int64, None) if col.name == SOURCE_RECORD => Arc::new(Int64Array::from_iter_values(keys.iter().map(|&k| k as i64 + 2))),
        (DataType::Int64, None) if col.name == SOURCE_OFFSET => {
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|&k| k as i64 * 300)))
        }
        (DataType::Utf8, None) => {
            Arc::new(StringArray::from_iter_values(keys.iter().zip(salt).map(|(k, s)| format!("{}", (k * 7 + c as u64 + s) % 97))))
        }
        (DataType::Int32, None) => Arc::new(Int32Array::from_iter_values(keys.iter().zip(salt).map(|(k, s)| ((k + s) % 30_000) as i32))),
        (DataType::Int64, None) => Arc::new(Int64Array::from_iter_values(keys.iter().zip(salt).map(|(k, s)| (k + s) as i64))),
        (DataType::Date32, None) => {
            Arc::new(Date32Array::from_iter_values(keys.iter().zip(salt).map(|(k, s)| 18_000 + ((k + s) % 3_650) as i32)))
        }
        (DataType::Boolean, None) => Arc::new(BooleanArray::from_iter(keys.iter().zip(salt).map(|(k, s)| Some((k + s) % 2 == 0)))),
        (DataType::Decimal128(p, s), None) => Arc::new(
            Decimal128Array::from_iter_values(keys.iter().zip(salt).map(|(k, x)| ((k + x) % 1000) as i128))
                .with_precision_and_scale(*p, *s)?,
        ),
        (t, _) => {
            return Err(StoreError::Manifest {
                path: set.name.clone().into(),
                reason: format!("synthetic data has no generator for column {} of type {t}", col.name),
            });
        }
    })
}

fn batch(set: &RecordSetSchema, keys: &[u64], salt: &[u64], insurer: &str) -> Result<RecordBatch, StoreError> {
    let content: Vec<ArrayRef> = (0..set.content_len()).map(|c| column(set, c, keys, salt, insurer)).collect::<Result<_, _>>()?;
    let hashes = row_hashes(set, &content);
    let mut cols = content;
    for c in set.content_len()..set.columns.len() - 1 {
        cols.push(column(set, c, keys, salt, insurer)?);
    }
    cols.push(Arc::new(hashes));
    Ok(RecordBatch::try_new(set.arrow.clone(), cols)?)
}

/// Writes versions 1 and 2 of `set` for `insurer` into an empty `store`: `rows` rows in version 1
/// and `changed_per_million` inserts, updates and deletes each per million rows in version 2.
pub fn write_versions(
    store: &Store,
    set: &RecordSetSchema,
    insurer: &str,
    rows: u64,
    changed_per_million: u64,
) -> Result<SyntheticVersions, StoreError> {
    let mut expected = ChangeCounts::default();
    let sorting: Vec<parquet::file::metadata::SortingColumn> = set
        .key
        .iter()
        .map(|&k| parquet::file::metadata::SortingColumn { column_idx: k as i32, descending: false, nulls_first: false })
        .collect();
    let mut entries = Vec::new();
    for version in [1u64, 2] {
        let dir = store.root().join(&set.name).join(format!("insurer_no={insurer}")).join(format!("version={version}"));
        let mut w = store.part_writer(&dir, set.arrow.clone(), Some(sorting.clone()))?;
        let mut digest: u128 = 0;
        let mut total = 0u64;
        let mut start = 0u64;
        while start < rows {
            let end = (start + BATCH).min(rows);
            let (mut keys, mut salt) = (Vec::new(), Vec::new());
            for i in start..end {
                let (f, insert_after) = fate(i, changed_per_million);
                if version == 1 {
                    keys.push(2 * i);
                    salt.push(0);
                    continue;
                }
                match f {
                    Fate::Delete => expected.deletes += 1,
                    Fate::Update => {
                        keys.push(2 * i);
                        salt.push(1);
                        expected.updates += 1;
                    }
                    Fate::Keep => {
                        keys.push(2 * i);
                        salt.push(0);
                        expected.unchanged += 1;
                    }
                }
                if insert_after {
                    keys.push(2 * i + 1);
                    salt.push(0);
                    expected.inserts += 1;
                }
            }
            let b = batch(set, &keys, &salt, insurer)?;
            let d = crate::map::rowset::set_digest(set, &b);
            digest = digest.wrapping_add(u128::from_str_radix(&d, 16).unwrap_or(0));
            total += b.num_rows() as u64;
            w.write(&b)?;
            start = end;
        }
        let file = w.finish()?;
        entries.push(SetEntry { version, rows: total, load_rows: total, digest: format!("{digest:032x}"), files: vec![file] });
    }
    let mut manifests = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let version = i as u64 + 1;
        let m = Manifest {
            format: crate::store::FORMAT,
            insurer_no: insurer.to_string(),
            version,
            parent_version: version.checked_sub(1).filter(|&v| v > 0),
            load_id: format!("{insurer}-synthetic-{version}"),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            record_sets: BTreeMap::from([(set.name.clone(), entry)]),
            inputs: Vec::new(),
            quarantine: Vec::new(),
            warnings: Vec::new(),
        };
        store.write_manifest(&m)?;
        manifests.push(m);
    }
    let new = manifests.pop();
    let old = manifests.pop();
    match (old, new) {
        (Some(old), Some(new)) => Ok(SyntheticVersions { old, new, expected }),
        _ => Err(StoreError::Manifest { path: store.root().to_path_buf(), reason: "versions were not written".into() }),
    }
}
