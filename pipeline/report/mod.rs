//! The load report (`kiban report <load> --out report.html`): one self-contained HTML page per
//! load, for auditors to open in a browser.
//!
//! ```text
//!  store ─► query::session (the same tables as `kiban query`) ─► SQL per figure ─► ReportData
//!        ─► html::render ─► report.html (inline CSS and SVG, no external assets)
//! ```
//!
//! Every figure comes from an SQL query over the store, so an auditor can reproduce any number
//! on the page with `kiban query`; the queries are the `*_SQL` constants below. Records are
//! named by file and record number only: no name, address or birth date reaches the page.

pub mod html;

use crate::query::{QueryError, session};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use html::{CareLevelRow, FileRow, ReportData, RuleRow, SetRow};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("no load `{0}` in the store (see `kiban query \"SELECT * FROM loads\"`)")]
    NoSuchLoad(String),
    #[error("`{load}` matches loads of several insurers ({insurers}); give --insurer")]
    Ambiguous { load: String, insurers: String },
    #[error("{0}")]
    DataFusion(#[from] datafusion::common::DataFusionError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Files of the load and their counts.
pub const FILES_SQL: &str = "SELECT file, layout, read, accepted, quarantined, warnings, rejected FROM load_files \
     WHERE insurer_no = '{insurer}' AND version = {version} ORDER BY file";
/// Record sets of the version: snapshot rows, rows from this load's files, rows withheld.
pub const SETS_SQL: &str = "SELECT s.record_set, s.rows, coalesce(q.n, 0) AS quarantined_rows, s.load_rows FROM load_record_sets s \
     LEFT JOIN (SELECT record_set, count(*) AS n FROM quarantine WHERE insurer_no = '{insurer}' AND version = {version} GROUP BY record_set) q \
     ON q.record_set = s.record_set WHERE s.insurer_no = '{insurer}' AND s.version = {version} ORDER BY s.record_set";
/// Rule hits of the load: validation rules, and record-level errors and warnings by kind.
pub const RULES_SQL: &str = "SELECT rule_id, record_set, severity, count(*) AS hits FROM ( \
       SELECT rule_id, record_set, severity, source_file, source_record FROM rule_hits WHERE insurer_no = '{insurer}' AND version = {version} \
       UNION ALL SELECT 'record.' || error_kind, record_set, 'error', source_file, source_record FROM quarantine \
         WHERE insurer_no = '{insurer}' AND version = {version} AND rule_ids IS NULL \
       UNION ALL SELECT 'record.' || warning_kind, coalesce(record_set, ''), 'warning', source_file, source_record FROM warnings \
         WHERE insurer_no = '{insurer}' AND version = {version} AND rule_id IS NULL) h \
     GROUP BY rule_id, record_set, severity ORDER BY severity, hits DESC, rule_id";
/// Up to 10 examples per rule, by file and record number.
pub const EXAMPLES_SQL: &str = "SELECT rule_id, source_file, source_record FROM ( \
       SELECT rule_id, source_file, source_record, row_number() OVER (PARTITION BY rule_id ORDER BY source_file, source_record) AS n FROM ( \
         SELECT rule_id, source_file, source_record FROM rule_hits WHERE insurer_no = '{insurer}' AND version = {version} \
         UNION ALL SELECT 'record.' || error_kind, source_file, source_record FROM quarantine \
           WHERE insurer_no = '{insurer}' AND version = {version} AND rule_ids IS NULL \
         UNION ALL SELECT 'record.' || warning_kind, source_file, source_record FROM warnings \
           WHERE insurer_no = '{insurer}' AND version = {version} AND rule_id IS NULL) h) e \
     WHERE n <= 10 ORDER BY rule_id, source_file, source_record";
/// Persons by the 要介護状態区分 of their latest recipient record in the version.
pub const CARE_LEVELS_SQL: &str = "SELECT coalesce(r.care_level, '') AS code, coalesce(c.label, '') AS label, count(*) AS persons FROM ( \
       SELECT care_level, row_number() OVER (PARTITION BY insured_no ORDER BY change_date DESC) AS n \
       FROM recipient_versions WHERE insurer_no = '{insurer}' AND version = {version}) r \
     LEFT JOIN code_tables c ON c.code_table = 'care_level' AND c.code = r.care_level \
     WHERE r.n = 1 GROUP BY r.care_level, c.label ORDER BY code";

/// Fills a query template; the values are checked to be plain digits and identifiers.
pub fn bind(sql: &str, insurer: &str, version: u64) -> String {
    let insurer: String = insurer.chars().filter(char::is_ascii_alphanumeric).collect();
    sql.replace("{insurer}", &insurer).replace("{version}", &version.to_string())
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, ReportError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Column `i` of every row as text (integers in decimal), for building the report.
fn texts(batches: &[RecordBatch], i: usize) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.column(i);
        let c = match arrow::compute::cast(c, &DataType::Utf8) {
            Ok(c) => c,
            Err(_) => continue,
        };
        let s = c.as_string::<i32>();
        out.extend((0..s.len()).map(|r| if s.is_null(r) { String::new() } else { s.value(r).to_string() }));
    }
    out
}

fn numbers(batches: &[RecordBatch], i: usize) -> Vec<u64> {
    texts(batches, i).iter().map(|s| s.parse().unwrap_or(0)).collect()
}

/// Finds a load by id, by version number, or `latest`: (insurer, version, load id, committed at).
async fn find_load(ctx: &SessionContext, load: &str, insurer: Option<&str>) -> Result<(String, u64, String, String), ReportError> {
    let batches = rows(ctx, "SELECT insurer_no, version, load_id, committed_at, current FROM loads ORDER BY insurer_no, version").await?;
    let (ins, ver, ids, at, cur) = (texts(&batches, 0), numbers(&batches, 1), texts(&batches, 2), texts(&batches, 3), texts(&batches, 4));
    let matches: Vec<usize> = (0..ins.len())
        .filter(|&i| insurer.is_none_or(|x| x == ins[i]))
        .filter(|&i| match load {
            "latest" => cur[i] == "yes",
            l => ids[i] == l || l.parse::<u64>().ok() == Some(ver[i]),
        })
        .collect();
    match matches.as_slice() {
        [] => Err(ReportError::NoSuchLoad(load.to_string())),
        [i] => Ok((ins[*i].clone(), ver[*i], ids[*i].clone(), at[*i].clone())),
        many => {
            let insurers: Vec<&str> = many.iter().map(|&i| ins[i].as_str()).collect();
            Err(ReportError::Ambiguous { load: load.to_string(), insurers: insurers.join(", ") })
        }
    }
}

/// Gathers the figures of one load.
pub async fn gather(store: &Path, load: &str, insurer: Option<&str>) -> Result<ReportData, ReportError> {
    let ctx = session(store).await?;
    let (insurer, version, load_id, committed_at) = find_load(&ctx, load, insurer).await?;
    let q = |sql: &str| bind(sql, &insurer, version);
    let catalog = crate::job::catalog::Catalog::embedded().map_err(QueryError::from)?;

    let f = rows(&ctx, &q(FILES_SQL)).await?;
    let (names, layouts) = (texts(&f, 0), texts(&f, 1));
    let (read, acc, quar, warn) = (numbers(&f, 2), numbers(&f, 3), numbers(&f, 4), numbers(&f, 5));
    let rejected = texts(&f, 6);
    let files = (0..names.len())
        .map(|i| FileRow {
            file: names[i].clone(),
            layout: layouts[i].clone(),
            read: read[i],
            accepted: acc[i],
            quarantined: quar[i],
            warnings: warn[i],
            rejected: rejected.get(i).filter(|r| !r.is_empty()).cloned(),
        })
        .collect();

    let s = rows(&ctx, &q(SETS_SQL)).await?;
    let (sets, snap, sq, lr) = (texts(&s, 0), numbers(&s, 1), numbers(&s, 2), numbers(&s, 3));
    let record_sets = (0..sets.len())
        .map(|i| SetRow {
            label: catalog.schemas.get(&sets[i]).map(|x| x.label.clone()).unwrap_or_default(),
            record_set: sets[i].clone(),
            load_rows: lr[i],
            snapshot_rows: snap[i],
            quarantined_rows: sq[i],
        })
        .collect();

    let e = rows(&ctx, &q(EXAMPLES_SQL)).await?;
    let mut examples: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for ((id, file), rec) in texts(&e, 0).into_iter().zip(texts(&e, 1)).zip(numbers(&e, 2)) {
        examples.entry(id).or_default().push((file, rec as i64));
    }
    let r = rows(&ctx, &q(RULES_SQL)).await?;
    let (ids, rsets, sev, hits) = (texts(&r, 0), texts(&r, 1), texts(&r, 2), numbers(&r, 3));
    let rules = (0..ids.len())
        .map(|i| {
            let def = catalog.rules.iter().find(|x| x.id == ids[i]);
            let (ja, en) = match def {
                Some(d) => (d.message_ja.clone(), d.message_en.clone()),
                None => record_level_message(&ids[i]),
            };
            RuleRow {
                rule_id: ids[i].clone(),
                record_set: rsets[i].clone(),
                severity: sev[i].clone(),
                message_ja: ja,
                message_en: en,
                count: hits[i],
                examples: examples.remove(&ids[i]).unwrap_or_default(),
            }
        })
        .collect();

    let c = rows(&ctx, &q(CARE_LEVELS_SQL)).await?;
    let (codes, labels, persons) = (texts(&c, 0), texts(&c, 1), numbers(&c, 2));
    let care_levels =
        (0..codes.len()).map(|i| CareLevelRow { code: codes[i].clone(), label: labels[i].clone(), persons: persons[i] }).collect();
    Ok(ReportData { insurer_no: insurer, load_id, version, committed_at, files, record_sets, rules, care_levels })
}

fn record_level_message(id: &str) -> (String, String) {
    let kind = id.strip_prefix("record.").unwrap_or(id);
    match kind {
        "unmapped_gaiji" => ("外字表にない外字 (そのまま保持)".into(), "外字 with no mapping in the 外字 table, kept as is".into()),
        "key_conflict" => (
            "同じキーで内容の異なるレコード (後のものを採用)".into(),
            "records with the same key and different content; the later wins".into(),
        ),
        other => (format!("レコードエラー: {other}"), format!("record error: {other} (the record could not be read; see the quarantine)")),
    }
}

/// Writes the report of `load` to `out`.
pub async fn write_report(store: &Path, load: &str, insurer: Option<&str>, out: &Path) -> Result<ReportData, ReportError> {
    let data = gather(store, load, insurer).await?;
    let page = html::render(&data);
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, page.as_bytes()).map_err(|source| ReportError::Io { path: tmp.display().to_string(), source })?;
    std::fs::rename(&tmp, out).map_err(|source| ReportError::Io { path: out.display().to_string(), source })?;
    Ok(data)
}
