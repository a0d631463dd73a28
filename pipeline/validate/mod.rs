//! Validate: SQL rules over a load's record sets, run in DataFusion (SPEC §6).
//!
//! ```text
//!  schemas/<set>.toml ── shape, code_table ──► derived rules ─┐
//!  schemas/<set>.rules.toml ── row and set rules ─────────────┴► Validator::compile (start-up:
//!                                                                 plan every rule, or exit 2)
//!  rows of each file ─► row rules (physical exprs, one pass) ─► error: quarantine, warning: kept
//!        ─► later-wins per key ─► set rules (SQL over this load, published.*, snapshot.*)
//!        ─► offending keys ─► error: quarantine, warning: kept ─► store
//! ```
//!
//! Rules are data: [`rules`] reads them, [`functions`] holds the UDFs they call (check digits,
//! age, month arithmetic, code validity on a date), [`engine`] plans and runs them. Nothing here
//! re-implements a rule in Rust.

pub mod apply;
pub mod check_digit;
pub mod engine;
pub mod functions;
pub mod rules;

pub use engine::{RowHit, SetTables, ValidateError, Validator};
pub use rules::{Rule, RuleBody, Severity, TestCase};

use arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow::datatypes::{DataType, Schema};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rows written in a rule test (`{ column = value }`), as a batch of `schema` with every field
/// nullable; columns left out are null.
pub fn batch_from_rows(schema: &Schema, rows: &[toml::Table]) -> Result<RecordBatch, String> {
    for r in rows {
        if let Some(k) = r.keys().find(|k| schema.field_with_name(k).is_err()) {
            return Err(format!("test row names unknown column `{k}`"));
        }
    }
    let relaxed = engine::relaxed(schema);
    let mut cols: Vec<ArrayRef> = Vec::new();
    for f in relaxed.fields() {
        if rows.iter().all(|r| !r.contains_key(f.name())) || matches!(f.data_type(), DataType::List(_) | DataType::Struct(_)) {
            cols.push(new_null_array(f.data_type(), rows.len()));
            continue;
        }
        let text: StringArray = rows
            .iter()
            .map(|r| match r.get(f.name()) {
                None => None,
                Some(toml::Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_string()),
            })
            .collect();
        let arr = arrow::compute::cast_with_options(
            &(Arc::new(text) as ArrayRef),
            f.data_type(),
            &arrow::compute::CastOptions { safe: false, ..Default::default() },
        )
        .map_err(|e| format!("column `{}`: {e}", f.name()))?;
        cols.push(arr);
    }
    RecordBatch::try_new_with_options(relaxed, cols, &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())))
        .map_err(|e| e.to_string())
}

fn tables_for(v: &Validator, rule: &Rule, case: &TestCase) -> Result<SetTables, String> {
    let schemas = v.schemas();
    let mut t = SetTables::default();
    match case {
        TestCase::Row(row) => {
            let s = schemas.get(&rule.record_set).ok_or("unknown record set")?;
            t.load.insert(rule.record_set.clone(), batch_from_rows(&s.arrow, std::slice::from_ref(row))?);
        }
        TestCase::Tables(tables) => {
            for (name, rows) in tables {
                let (target, set) = match name.split_once('.') {
                    None => (&mut t.load, name.as_str()),
                    Some((engine::PUBLISHED, s)) => (&mut t.published, s),
                    Some((engine::SNAPSHOT, s)) => (&mut t.snapshot, s),
                    Some(_) => return Err(format!("test table `{name}`: use <set>, published.<set> or snapshot.<set>")),
                };
                let s = schemas.get(set).ok_or_else(|| format!("test table `{name}`: unknown record set"))?;
                target.insert(set.to_string(), batch_from_rows(&s.arrow, rows).map_err(|e| format!("test table `{name}`: {e}"))?);
            }
        }
    }
    Ok(t)
}

/// Runs a rule's own test: its passing case must not flag a row, its failing case must.
pub fn run_rule_test(v: &Validator, rule: usize) -> Result<(), String> {
    let r = v.rule(rule);
    let Some(test) = &r.test else { return Err("the rule has no test".into()) };
    for (case, want) in [(&test.pass, false), (&test.fail, true)] {
        let tables = tables_for(v, r, case)?;
        let got = v.run_test(rule, &tables).map_err(|e| e.to_string())?;
        if got != want {
            return Err(format!(
                "the {} case {}",
                if want { "failing" } else { "passing" },
                if got { "was flagged" } else { "was not flagged" }
            ));
        }
    }
    Ok(())
}

/// Rule counts per record set, for `kiban schema show`.
pub fn rules_by_set(rules: &[Rule]) -> BTreeMap<&str, Vec<&Rule>> {
    let mut m: BTreeMap<&str, Vec<&Rule>> = BTreeMap::new();
    for r in rules {
        m.entry(r.record_set.as_str()).or_default().push(r);
    }
    m
}
