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
use std::sync::Arc;

/// Rows of a record set checked at once; chunks of a large file are checked on every core.
const CHUNK_ROWS: usize = 1 << 16;

/// A row that failed rules, named by its provenance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Shared by a set's findings: a load may flag every row (a warning rule over a set loaded
    /// before the set it refers to), so a finding holds no text of its own but the key below.
    pub record_set: Arc<str>,
    pub file: Arc<str>,
    pub record: i64,
    pub offset: i64,
    /// Indices of the failed rules in [`Validator::rules`], all of one severity.
    pub rules: Vec<usize>,
    /// The row's key as `KeepPrevious` names keys: a snapshot set keeps the published row of a
    /// quarantined record (SPEC §8). Empty for a warned row, which nothing looks up.
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
    set: Arc<str>,
    file: &'a StringArray,
    record: &'a Int64Array,
    offset: &'a Int64Array,
    keys: Vec<&'a ArrayRef>,
    /// The last file name handed out: rows of one file share it.
    last_file: Option<Arc<str>>,
}

impl<'a> Provenance<'a> {
    /// The provenance columns of `columns`, the set's or a projection of them; `index_of` finds a
    /// column by name.
    fn of(
        set: Arc<str>,
        schema: &RecordSetSchema,
        index_of: impl Fn(&str) -> Option<usize>,
        columns: &'a [ArrayRef],
    ) -> Result<Provenance<'a>, ValidateError> {
        let col = |name: &str| index_of(name).and_then(|i| columns.get(i));
        let missing =
            || ValidateError::Arrow(arrow::error::ArrowError::SchemaError(format!("{}: provenance columns missing", schema.name)));
        Ok(Provenance {
            file: col(SOURCE_FILE).and_then(|c| c.as_any().downcast_ref::<StringArray>()).ok_or_else(missing)?,
            record: col(SOURCE_RECORD).and_then(|c| c.as_any().downcast_ref::<Int64Array>()).ok_or_else(missing)?,
            offset: col(SOURCE_OFFSET).and_then(|c| c.as_any().downcast_ref::<Int64Array>()).ok_or_else(missing)?,
            keys: schema.key.iter().map(|&k| col(&schema.columns[k].name).ok_or_else(missing)).collect::<Result<_, _>>()?,
            set,
            last_file: None,
        })
    }

    fn finding(&mut self, row: usize, rules: Vec<usize>, with_key: bool) -> Finding {
        let name = self.file.value(row);
        let file = match &self.last_file {
            Some(f) if **f == *name => f.clone(),
            _ => self.last_file.insert(Arc::from(name)).clone(),
        };
        Finding {
            record_set: self.set.clone(),
            file,
            record: self.record.value(row),
            offset: self.offset.value(row),
            rules,
            key: if with_key { crate::map::rowset::key_string(&self.keys, row) } else { String::new() },
        }
    }
}

/// Splits a row's failed rules by severity into findings; returns whether the row is withheld.
fn classify(v: &Validator, prov: &mut Provenance<'_>, row: usize, rules: &[usize], out: &mut Findings) -> bool {
    let (errors, warnings): (Vec<usize>, Vec<usize>) = rules.iter().partition(|&&r| v.severity(r) == Severity::Error);
    if !warnings.is_empty() {
        out.warned.push(prov.finding(row, warnings, false));
    }
    if errors.is_empty() {
        return false;
    }
    out.quarantined.push(prov.finding(row, errors, true));
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
        let mut prov = Provenance::of(Arc::from(set.as_str()), schema, |n| schema.index_of(n), &part.columns)?;
        for h in hits {
            let row = start + h.row as usize;
            if classify(v, &mut prov, row, &h.rules, &mut findings) {
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
/// Returns the findings of withheld rows and, per set, their keys (as rows of
/// [`crate::map::spill::key_converter`]), which the snapshot is then written without; the rows
/// a warning rule flagged go to `on_warned` as they are found.
///
/// A warning rule may flag every row of a large set (a set loaded before the one it refers to),
/// so this is built for millions of keys: the keys stay in the buffers the rules returned, each
/// key maps to the combination of rules it failed (a handful per set, split by severity once), and
/// only the key and provenance columns of this load's rows are read back.
pub fn apply_set_rules_to_files<E: From<ValidateError>>(
    v: &Validator,
    tables: &SetTables,
    mut on_warned: impl FnMut(Finding) -> Result<(), E>,
) -> Result<(Findings, BTreeMap<String, KeySet>), E> {
    let mut fired: BTreeMap<String, Vec<(usize, Vec<arrow::row::Rows>)>> = BTreeMap::new();
    for (rule, keys) in v.offending_keys(tables)? {
        fired.entry(v.rule(rule).record_set.clone()).or_default().push((rule, keys));
    }
    let mut findings = Findings::default();
    let mut withheld: BTreeMap<String, KeySet> = BTreeMap::new();
    for (set, rules) in &fired {
        let (Some(schema), Some(paths)) = (v.schemas().get(set), tables.files.get(&(String::new(), set.clone()))) else { continue };
        let failed = FailedKeys::of(v, rules);
        let converter = crate::map::spill::key_converter(schema).map_err(ValidateError::from)?;
        let set_name: Arc<str> = Arc::from(set.as_str());
        for path in paths {
            for batch in read_provenance(schema, path)? {
                let batch = batch.map_err(ValidateError::from)?;
                let cols: Vec<ArrayRef> = schema
                    .key
                    .iter()
                    .map(|&k| {
                        batch.column_by_name(&schema.columns[k].name).cloned().ok_or_else(|| missing_column(path, &schema.columns[k].name))
                    })
                    .collect::<Result<_, _>>()?;
                let keys = converter.convert_columns(&cols).map_err(ValidateError::from)?;
                let batch_schema = batch.schema();
                let mut prov = Provenance::of(set_name.clone(), schema, |n| batch_schema.index_of(n).ok(), batch.columns())?;
                for (i, key) in keys.iter().enumerate() {
                    let Some(&c) = failed.by_key.get(key.data()) else { continue };
                    let (errors, warnings) = &failed.combos[c as usize];
                    if !warnings.is_empty() {
                        on_warned(prov.finding(i, warnings.clone(), false))?;
                    }
                    if !errors.is_empty() {
                        findings.quarantined.push(prov.finding(i, errors.clone(), true));
                        withheld.entry(set.clone()).or_default().insert(key.data().to_vec());
                    }
                }
            }
        }
    }
    Ok((findings, withheld))
}

/// The keys of a set that rules flagged, each with the rules it failed.
struct FailedKeys<'a> {
    /// Key (a row of the set's key converter) → index into `combos`.
    by_key: hashbrown::HashMap<&'a [u8], u32>,
    /// Each combination of failed rules, as (error rules, warning rules), ids ascending.
    combos: Vec<(Vec<usize>, Vec<usize>)>,
}

impl<'a> FailedKeys<'a> {
    fn of(v: &Validator, fired: &'a [(usize, Vec<arrow::row::Rows>)]) -> FailedKeys<'a> {
        let capacity = fired.iter().flat_map(|(_, rows)| rows).map(|r| r.num_rows()).max().unwrap_or(0);
        let mut by_key: hashbrown::HashMap<&'a [u8], u32> = hashbrown::HashMap::with_capacity(capacity);
        // Combinations as sorted rule lists; a key moves from one to the next as rules fire on
        // it, and the moves are remembered, so a key costs one lookup per rule that flagged it.
        let mut lists: Vec<Vec<usize>> = Vec::new();
        let mut ids: HashMap<Vec<usize>, u32> = HashMap::new();
        let mut moves: HashMap<(Option<u32>, usize), u32> = HashMap::new();
        for (rule, rows) in fired {
            for key in rows.iter().flat_map(|r| r.iter()) {
                let from = by_key.get(key.data()).copied();
                let to = *moves.entry((from, *rule)).or_insert_with(|| {
                    let mut list = from.map(|c| lists[c as usize].clone()).unwrap_or_default();
                    if let Err(at) = list.binary_search(rule) {
                        list.insert(at, *rule);
                    }
                    *ids.entry(list.clone()).or_insert_with(|| {
                        lists.push(list);
                        (lists.len() - 1) as u32
                    })
                });
                by_key.insert(key.data(), to);
            }
        }
        let combos = lists.into_iter().map(|l| l.into_iter().partition(|&r| v.severity(r) == Severity::Error)).collect();
        FailedKeys { by_key, combos }
    }
}

/// This load's rows of a set in `path`, only the key and provenance columns.
fn read_provenance(
    schema: &RecordSetSchema,
    path: &std::path::Path,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, ValidateError> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let read_err = |e: parquet::errors::ParquetError| {
        ValidateError::Arrow(arrow::error::ArrowError::ExternalError(format!("{}: {e}", path.display()).into()))
    };
    let file = std::fs::File::open(path)
        .map_err(|e| ValidateError::Arrow(arrow::error::ArrowError::IoError(format!("{}: {e}", path.display()), e)))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(read_err)?;
    let wanted: Vec<&str> =
        schema.key.iter().map(|&k| schema.columns[k].name.as_str()).chain([SOURCE_FILE, SOURCE_RECORD, SOURCE_OFFSET]).collect();
    let roots: Vec<usize> =
        builder.schema().fields().iter().enumerate().filter(|(_, f)| wanted.contains(&f.name().as_str())).map(|(i, _)| i).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder.with_projection(mask).with_batch_size(1 << 16).build().map_err(read_err)
}

fn missing_column(path: &std::path::Path, column: &str) -> ValidateError {
    ValidateError::Arrow(arrow::error::ArrowError::SchemaError(format!("{}: no column {column}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use arrow::datatypes::DataType;
    use arrow::row::{RowConverter, SortField};

    fn rows(keys: &[&str]) -> arrow::row::Rows {
        let conv = RowConverter::new(vec![SortField::new(DataType::Utf8)]).unwrap();
        conv.convert_columns(&[Arc::new(StringArray::from(keys.to_vec())) as ArrayRef]).unwrap()
    }

    #[test]
    fn a_key_failing_several_rules_is_named_once_with_them_by_severity() {
        let catalog = crate::job::catalog::Catalog::embedded().unwrap();
        let run_date = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let v = Validator::compile(&catalog.schemas.sets, &catalog.rules, &catalog.codes, run_date).unwrap();
        let of = |s: Severity| (0..v.rules().len()).filter(|&r| v.severity(r) == s).collect::<Vec<_>>();
        let (errors, warnings) = (of(Severity::Error), of(Severity::Warning));
        let (e, w1, w2) = (errors[0], warnings[0], warnings[1]);
        // Rules in any order, keys over several batches, a key flagged twice by one rule.
        let fired = vec![(w2, vec![rows(&["k2"])]), (e, vec![rows(&["k2", "k3"])]), (w1, vec![rows(&["k1"]), rows(&["k2", "k1"])])];
        let failed = FailedKeys::of(&v, &fired);
        let of_key = |k: &str| failed.by_key.get(rows(&[k]).row(0).data()).map(|&c| failed.combos[c as usize].clone());
        let (lo, hi) = (w1.min(w2), w1.max(w2));
        assert_eq!(of_key("k1"), Some((vec![], vec![w1])));
        assert_eq!(of_key("k2"), Some((vec![e], vec![lo, hi])));
        assert_eq!(of_key("k3"), Some((vec![e], vec![])));
        assert_eq!(of_key("k4"), None);
    }
}
