//! Rules as data: `schemas/<set>.rules.toml`, next to the record set they check, plus the rules
//! every set derives from its own column declarations.
//!
//! ```toml
//! [[rules]]
//! id = "recipient.valid_period"        # unique; shown in quarantine, warnings and the report
//! severity = "error"                   # error: the row is quarantined | warning: kept and reported
//! check = "valid_from <= valid_to"     # a row rule: an SQL boolean expression over the set's columns
//! message_ja = "認定有効期間の開始日が終了日より後です"
//! message_en = "valid_from is after valid_to"
//! test.pass = { valid_from = "2024-04-01", valid_to = "2025-03-31" }   # one row that passes
//! test.fail = { valid_from = "2025-04-01", valid_to = "2025-03-31" }   # one row that fails
//!
//! [[rules]]
//! id = "copayment_ratio.period_overlap"
//! severity = "error"
//! query = "SELECT insurer_no, insured_no, valid_from FROM copayment_ratio WHERE …"
//! # a set rule: an SQL query returning the key columns of the offending rows of this load.
//! # Tables: `<set>` (this load's rows), `published.<set>` (the last published snapshot) and
//! # `snapshot.<set>` (the snapshot this load would leave), for every record set.
//! message_ja = "…"
//! message_en = "…"
//! [rules.test.pass]                    # tables → rows; tables left out are empty
//! copayment_ratio = [{ insured_no = "0000000001", valid_from = "2024-08-01" }]
//! [rules.test.fail]
//! copayment_ratio = [{ … }, { … }]
//! ```
//! A row rule that evaluates to NULL passes, as an SQL CHECK constraint does. Test values are
//! written as TOML strings or integers and cast to the column's type (dates as `YYYY-MM-DD`).
//!
//! Derived rules, so that a column's declaration is the only place its constraint is written:
//! a column with `shape` gets `<set>.<column>.shape` (error), a column with `code_table` gets
//! `<set>.<column>.code` (error: a code of the table valid on the set's `code_date`).

use crate::map::codes::CodeTable;
use crate::schema::{RecordSetSchema, Shape};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleBody {
    /// An SQL boolean expression over the set's columns.
    Row(String),
    /// An SQL query returning the key columns of offending rows.
    Set(String),
}

/// A test case: for a row rule one row; for a set rule rows per table.
#[derive(Debug, Clone, PartialEq)]
pub enum TestCase {
    Row(toml::Table),
    Tables(BTreeMap<String, Vec<toml::Table>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleTest {
    pub pass: TestCase,
    pub fail: TestCase,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub record_set: String,
    pub severity: Severity,
    pub body: RuleBody,
    pub message_ja: String,
    pub message_en: String,
    pub test: Option<RuleTest>,
    /// The file the rule is written in (or the schema file it is derived from).
    pub origin: String,
}

impl Rule {
    pub fn kind(&self) -> &'static str {
        match self.body {
            RuleBody::Row(_) => "row",
            RuleBody::Set(_) => "set",
        }
    }

    pub fn sql(&self) -> &str {
        match &self.body {
            RuleBody::Row(s) | RuleBody::Set(s) => s,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    #[error("{file}: {source}")]
    Toml { file: String, source: toml::de::Error },
    #[error("{file}: rule `{rule}`: {reason}")]
    Invalid { file: String, rule: String, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rules: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    /// Unique id, conventionally `<set>.<what>`.
    id: String,
    severity: Severity,
    /// Row rule: SQL boolean expression.
    check: Option<String>,
    /// Set rule: SQL query returning offending keys.
    query: Option<String>,
    message_ja: String,
    message_en: String,
    test: Option<TestEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEntry {
    pass: toml::Table,
    fail: toml::Table,
}

fn tables(file: &str, id: &str, t: toml::Table) -> Result<TestCase, RuleFileError> {
    let mut out = BTreeMap::new();
    for (name, v) in t {
        let rows = match v {
            toml::Value::Array(a) => a
                .into_iter()
                .map(|r| match r {
                    toml::Value::Table(t) => Ok(t),
                    _ => Err(()),
                })
                .collect::<Result<Vec<_>, ()>>(),
            _ => Err(()),
        };
        let rows = rows.map_err(|_| RuleFileError::Invalid {
            file: file.into(),
            rule: id.into(),
            reason: format!("test table `{name}` must be an array of rows ({name} = [{{ column = value, … }}])"),
        })?;
        out.insert(name, rows);
    }
    Ok(TestCase::Tables(out))
}

/// Parses `schemas/<set>.rules.toml`.
pub fn parse_rule_file(file: &str, record_set: &str, text: &str) -> Result<Vec<Rule>, RuleFileError> {
    let f: RuleFile = toml::from_str(text).map_err(|source| RuleFileError::Toml { file: file.into(), source })?;
    let mut out = Vec::new();
    for r in f.rules {
        let invalid = |reason: &str| RuleFileError::Invalid { file: file.into(), rule: r.id.clone(), reason: reason.into() };
        let body = match (r.check.clone(), r.query.clone()) {
            (Some(c), None) => RuleBody::Row(c),
            (None, Some(q)) => RuleBody::Set(q),
            _ => return Err(invalid("give exactly one of `check` (a row rule) or `query` (a set rule)")),
        };
        if r.message_ja.trim().is_empty() || r.message_en.trim().is_empty() {
            return Err(invalid("message_ja and message_en must not be empty"));
        }
        if r.id.is_empty() || !r.id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(invalid("an id is ASCII letters, digits, `.`, `_` and `-`"));
        }
        let test = match r.test {
            None => None,
            Some(t) => Some(match body {
                RuleBody::Row(_) => RuleTest { pass: TestCase::Row(t.pass), fail: TestCase::Row(t.fail) },
                RuleBody::Set(_) => RuleTest { pass: tables(file, &r.id, t.pass)?, fail: tables(file, &r.id, t.fail)? },
            }),
        };
        out.push(Rule {
            id: r.id,
            record_set: record_set.to_string(),
            severity: r.severity,
            body,
            message_ja: r.message_ja,
            message_en: r.message_en,
            test,
            origin: file.to_string(),
        });
    }
    Ok(out)
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The rules a set's column declarations imply (see the module doc).
pub fn derived_rules(schema: &RecordSetSchema, file: &str, codes: &BTreeMap<String, CodeTable>) -> Vec<Rule> {
    let mut out = Vec::new();
    let date_col = schema.code_date.as_deref();
    for c in &schema.columns {
        let col = quote_ident(&c.name);
        if let Some(shape) = c.shape {
            let (check, good, bad, ja) = match shape {
                Shape::Digits(n) => {
                    (format!("is_digits({col}, {n})"), "1".repeat(n), "1".repeat(n.saturating_sub(1)), format!("{n}桁の数字"))
                }
                Shape::Chars(n) => (format!("character_length({col}) = {n}"), "0".repeat(n), "0".repeat(n + 1), format!("{n}文字")),
            };
            out.push(Rule {
                id: format!("{}.{}.shape", schema.name, c.name),
                record_set: schema.name.clone(),
                severity: Severity::Error,
                body: RuleBody::Row(check),
                message_ja: format!("{}が{}ではありません", c.label, ja),
                message_en: format!("{} must be {}", c.name, shape.describe()),
                test: Some(RuleTest {
                    pass: TestCase::Row(toml::Table::from_iter([(c.name.clone(), toml::Value::String(good))])),
                    fail: TestCase::Row(toml::Table::from_iter([(c.name.clone(), toml::Value::String(bad))])),
                }),
                origin: file.to_string(),
            });
        }
        if let Some(table) = &c.code_table {
            let value = if c.data_type == arrow::datatypes::DataType::Utf8 { col.clone() } else { format!("CAST({col} AS VARCHAR)") };
            let check = match date_col {
                Some(d) => format!("code_valid('{table}', {value}, {})", quote_ident(d)),
                None => format!("code_valid('{table}', {value})"),
            };
            // A passing example: the first code, on a day it is valid.
            let test = codes.get(table).and_then(|t| t.codes.first()).map(|first| {
                let mut pass = toml::Table::new();
                let val = |s: &str| match c.data_type {
                    arrow::datatypes::DataType::Int32 | arrow::datatypes::DataType::Int64 => {
                        s.parse::<i64>().map(toml::Value::Integer).unwrap_or_else(|_| toml::Value::String(s.into()))
                    }
                    _ => toml::Value::String(s.into()),
                };
                pass.insert(c.name.clone(), val(&first.code));
                if let (Some(d), Some(from)) = (date_col, first.valid_from) {
                    pass.insert(d.to_string(), toml::Value::String(from.format("%Y-%m-%d").to_string()));
                }
                let bad = if matches!(c.data_type, arrow::datatypes::DataType::Utf8) { "~".to_string() } else { "987654".to_string() };
                RuleTest { pass: TestCase::Row(pass), fail: TestCase::Row(toml::Table::from_iter([(c.name.clone(), val(&bad))])) }
            });
            let on = date_col
                .and_then(|d| schema.columns.iter().find(|x| x.name == d))
                .map(|d| (format!("{}時点で", d.label), format!(" on {}", d.name)))
                .unwrap_or_default();
            out.push(Rule {
                id: format!("{}.{}.code", schema.name, c.name),
                record_set: schema.name.clone(),
                severity: Severity::Error,
                body: RuleBody::Row(check),
                message_ja: format!("{}が{}有効なコード ({table}) ではありません", c.label, on.0),
                message_en: format!("{} is not a code of table {table} valid{}", c.name, on.1),
                test,
                origin: file.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_a_row_or_a_set_rule() {
        let both = "[[rules]]\nid = \"a\"\nseverity = \"error\"\ncheck = \"x\"\nquery = \"y\"\nmessage_ja = \"あ\"\nmessage_en = \"a\"\n";
        assert!(parse_rule_file("f", "s", both).unwrap_err().to_string().contains("exactly one"));
        let unknown = "[[rules]]\nid = \"a\"\nseverity = \"fatal\"\ncheck = \"x\"\nmessage_ja = \"あ\"\nmessage_en = \"a\"\n";
        assert!(parse_rule_file("f", "s", unknown).is_err());
        let ok = "[[rules]]\nid = \"s.a\"\nseverity = \"warning\"\ncheck = \"x > 1\"\nmessage_ja = \"あ\"\nmessage_en = \"a\"\n\
                  test.pass = { x = 2 }\ntest.fail = { x = 1 }\n";
        let r = parse_rule_file("f", "s", ok).unwrap();
        assert_eq!(r[0].severity, Severity::Warning);
        assert_eq!(r[0].body, RuleBody::Row("x > 1".into()));
        assert!(matches!(&r[0].test, Some(RuleTest { pass: TestCase::Row(_), .. })));
    }
}
