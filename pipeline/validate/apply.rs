//! Applying the rules to a load: which rows are withheld, which are flagged.
//!
//! Row rules run over each file's rows of a set before later-wins, so a failing row never
//! replaces a good one; set rules run over the load's rows after later-wins, with the published
//! and resulting snapshots beside them. A row failing several rules is reported once, with all
//! its rule ids.

use super::engine::{SetTables, ValidateError, Validator};
use super::rules::Severity;
use crate::map::builder::SetRows;
use crate::map::spill::KeySet;
use crate::schema::{RecordSetSchema, SOURCE_FILE, SOURCE_OFFSET, SOURCE_RECORD};
use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use std::collections::{BTreeMap, HashMap};

/// Rows of a record set checked at once; chunks of a large file are checked on every core.
const CHUNK_ROWS: usize = 1 << 16;

/// A row that failed rules, named by its provenance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub record_set: String,
    pub file: String,
    pub record: i64,
    pub offset: i64,
    /// Indices of the failed rules in [`Validator::rules`], all of one severity.
    pub rules: Vec<usize>,
    /// The row's key as `KeepPrevious` names keys: a snapshot set keeps the published row of a
    /// quarantined record (SPEC §8).
    pub key: String,
}

/// Rows withheld (error rules) and rows kept but flagged (warning rules).
#[derive(Debug, Default)]
pub struct Findings {
    pub quarantined: Vec<Finding>,
    pub warned: Vec<Finding>,
}

impl Findings {
    pub fn extend(&mut self, other: Findings) {
        self.quarantined.extend(other.quarantined);
        self.warned.extend(other.warned);
    }
}

struct Provenance<'a> {
    file: &'a StringArray,
    record: &'a Int64Array,
    offset: &'a Int64Array,
    keys: Vec<&'a ArrayRef>,
}

impl<'a> Provenance<'a> {
    fn of(schema: &RecordSetSchema, columns: &'a [ArrayRef]) -> Result<Provenance<'a>, ValidateError> {
        let col = |name: &str| schema.index_of(name).and_then(|i| columns.get(i));
        let missing =
            || ValidateError::Arrow(arrow::error::ArrowError::SchemaError(format!("{}: provenance columns missing", schema.name)));
        Ok(Provenance {
            file: col(SOURCE_FILE).and_then(|c| c.as_any().downcast_ref::<StringArray>()).ok_or_else(missing)?,
            record: col(SOURCE_RECORD).and_then(|c| c.as_any().downcast_ref::<Int64Array>()).ok_or_else(missing)?,
            offset: col(SOURCE_OFFSET).and_then(|c| c.as_any().downcast_ref::<Int64Array>()).ok_or_else(missing)?,
            keys: schema.key.iter().filter_map(|&k| columns.get(k)).collect(),
        })
    }

    fn finding(&self, set: &str, row: usize, rules: Vec<usize>) -> Finding {
        Finding {
            record_set: set.to_string(),
            file: self.file.value(row).to_string(),
            record: self.record.value(row),
            offset: self.offset.value(row),
            rules,
            key: crate::map::rowset::key_string(&self.keys, row),
        }
    }
}

/// Splits a row's failed rules by severity into findings; returns whether the row is withheld.
fn classify(v: &Validator, prov: &Provenance<'_>, set: &str, row: usize, rules: &[usize], out: &mut Findings) -> bool {
    let (errors, warnings): (Vec<usize>, Vec<usize>) = rules.iter().partition(|&&r| v.severity(r) == Severity::Error);
    if !warnings.is_empty() {
        out.warned.push(prov.finding(set, row, warnings));
    }
    if errors.is_empty() {
        return false;
    }
    out.quarantined.push(prov.finding(set, row, errors));
    true
}

/// Runs the row rules over every file's rows of every set, removing the rows that fail an error
/// rule from `parts`.
pub fn apply_row_rules(v: &Validator, parts: &mut BTreeMap<String, Vec<SetRows>>) -> Result<Findings, ValidateError> {
    // Work items: (set, part, first row, rows), checked in parallel, results in order.
    let mut work = Vec::new();
    for (set, ps) in parts.iter() {
        if v.row_rule_count(set) == 0 {
            continue;
        }
        let Some(schema) = v.row_schema(set) else { continue };
        for (pi, p) in ps.iter().enumerate() {
            let batch = RecordBatch::try_new(schema.clone(), p.columns.clone())?;
            let mut start = 0;
            while start < batch.num_rows() {
                let len = CHUNK_ROWS.min(batch.num_rows() - start);
                work.push((set.clone(), pi, start, batch.slice(start, len)));
                start += len;
            }
        }
    }
    let results = crate::parallel::par_map(work, |(set, pi, start, chunk)| v.check_rows(&set, &chunk).map(|hits| (set, pi, start, hits)));
    let mut findings = Findings::default();
    let mut withheld: BTreeMap<(String, usize), Vec<usize>> = BTreeMap::new();
    for r in results {
        let (set, pi, start, hits) = r?;
        if hits.is_empty() {
            continue;
        }
        let (Some(schema), Some(part)) = (v.schemas().get(&set), parts.get(&set).and_then(|p| p.get(pi))) else { continue };
        let prov = Provenance::of(schema, &part.columns)?;
        for h in hits {
            let row = start + h.row as usize;
            if classify(v, &prov, &set, row, &h.rules, &mut findings) {
                withheld.entry((set.clone(), pi)).or_default().push(row);
            }
        }
    }
    for ((set, pi), rows) in withheld {
        if let Some(part) = parts.get_mut(&set).and_then(|p| p.get_mut(pi)) {
            let n = part.order_date.len();
            let mut keep = vec![true; n];
            for r in rows {
                keep[r] = false;
            }
            let mask = BooleanArray::from(keep.clone());
            part.columns = part.columns.iter().map(|c| arrow::compute::filter(c.as_ref(), &mask)).collect::<Result<_, _>>()?;
            let mut i = 0;
            part.order_date.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
    }
    Ok(findings)
}

/// The set rules over a load whose tables are files (`tables.files`): runs them, then reads this
/// load's rows of each set a rule fired on (from its `""` table) to name the offending rows.
/// Returns the findings and, per set, the keys of the withheld rows (as rows of
/// [`crate::map::spill::key_converter`]), which the snapshot is then written without.
pub fn apply_set_rules_to_files(v: &Validator, tables: &SetTables) -> Result<(Findings, BTreeMap<String, KeySet>), ValidateError> {
    let mut by_key: BTreeMap<String, HashMap<Vec<u8>, Vec<usize>>> = BTreeMap::new();
    for (rule, keys) in v.offending_keys(tables)? {
        let m = by_key.entry(v.rule(rule).record_set.clone()).or_default();
        for k in keys {
            m.entry(k).or_default().push(rule);
        }
    }
    let mut findings = Findings::default();
    let mut withheld: BTreeMap<String, KeySet> = BTreeMap::new();
    for (set, keys) in by_key {
        let (Some(schema), Some(paths)) = (v.schemas().get(&set), tables.files.get(&(String::new(), set.clone()))) else { continue };
        let converter = crate::map::spill::key_converter(schema)?;
        for path in paths {
            let read_err = |e: parquet::errors::ParquetError| ValidateError::Arrow(arrow::error::ArrowError::ExternalError(Box::new(e)));
            let file = std::fs::File::open(path)
                .map_err(|e| ValidateError::Arrow(arrow::error::ArrowError::IoError(format!("{}: {e}", path.display()), e)))?;
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()).map_err(read_err)?;
            for batch in reader {
                let batch = batch?;
                let rows = crate::map::spill::key_rows(schema, &converter, &batch)?;
                let prov = Provenance::of(schema, batch.columns())?;
                for i in 0..batch.num_rows() {
                    let key = rows.row(i);
                    if let Some(rules) = keys.get(key.as_ref()) {
                        let mut rules = rules.clone();
                        rules.sort_unstable();
                        if classify(v, &prov, &set, i, &rules, &mut findings) {
                            withheld.entry(set.clone()).or_default().insert(key.as_ref().to_vec());
                        }
                    }
                }
            }
        }
    }
    Ok((findings, withheld))
}
