//! Code tables (`mappings/codes/<name>.tsv`): the codes a coded field may hold, with the dates
//! they are valid on, and lookup tables that derive one value from another.
//!
//! A table is tab-separated with a header line; `#` lines are comments. Columns: `code`, `label`,
//! and optionally `valid_from`, `valid_to` (ISO dates, blank for open) and `value` (for lookups).

use chrono::NaiveDate;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub code: String,
    pub label: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CodeTable {
    pub name: String,
    pub codes: Vec<Code>,
}

#[derive(Debug, thiserror::Error)]
#[error("code table `{table}`, line {line}: {reason}")]
pub struct CodeTableError {
    pub table: String,
    pub line: usize,
    pub reason: String,
}

impl CodeTable {
    pub fn from_tsv(name: &str, text: &str) -> Result<CodeTable, CodeTableError> {
        let err = |line: usize, reason: String| CodeTableError { table: name.to_string(), line, reason };
        let mut header: Option<Vec<String>> = None;
        let mut codes = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let Some(h) = &header else {
                if !cols.contains(&"code") || !cols.contains(&"label") {
                    return Err(err(i + 1, "the header must name the columns code and label".into()));
                }
                header = Some(cols.iter().map(|s| s.to_string()).collect());
                continue;
            };
            let get = |name: &str| h.iter().position(|c| c == name).and_then(|p| cols.get(p)).map(|s| s.trim()).filter(|s| !s.is_empty());
            let date = |name: &str| -> Result<Option<NaiveDate>, CodeTableError> {
                match get(name) {
                    None => Ok(None),
                    Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(Some)
                        .map_err(|_| err(i + 1, format!("{name} `{s}` is not YYYY-MM-DD"))),
                }
            };
            let code = get("code").ok_or_else(|| err(i + 1, "empty code".into()))?.to_string();
            if codes.iter().any(|c: &Code| c.code == code) {
                return Err(err(i + 1, format!("code `{code}` appears twice")));
            }
            codes.push(Code {
                code,
                label: get("label").unwrap_or("").to_string(),
                valid_from: date("valid_from")?,
                valid_to: date("valid_to")?,
                value: get("value").map(str::to_string),
            });
        }
        Ok(CodeTable { name: name.to_string(), codes })
    }

    pub fn get(&self, code: &str) -> Option<&Code> {
        self.codes.iter().find(|c| c.code == code)
    }

    /// The derived values of a lookup table, by code.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.codes.iter().filter_map(|c| Some((c.code.clone(), c.value.clone()?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dates_and_values() {
        let t = CodeTable::from_tsv("x", "# c\ncode\tlabel\tvalue\tvalid_from\tvalid_to\n1\ta\t90\t2015-08-01\t\n").unwrap();
        assert_eq!(t.get("1").unwrap().value.as_deref(), Some("90"));
        assert_eq!(t.get("1").unwrap().valid_from, NaiveDate::from_ymd_opt(2015, 8, 1));
        assert!(CodeTable::from_tsv("x", "code\tlabel\n1\ta\n1\tb\n").is_err());
        assert!(CodeTable::from_tsv("x", "c\tl\n").is_err());
    }
}
