//! Validation end to end: each bad record fires its rule and nothing else, the quarantine keeps
//! the raw record with its rule ids, counts reconcile, and `kiban query` and `kiban report` agree
//! with the Parquet files.

use crate::fixtures::*;
use arrow::array::Array;
use std::collections::BTreeSet;

/// A load with one fault per record (see the comments) and a register of persons 1–4.
pub fn faulty_load() -> (Workspace, Output) {
    let ws = Workspace::new();
    let person = |no: &str| fixed_data(no, "001", "ｱ", "山田", "3200101", "5010501");
    let reg = fixed_file(&[person("0000000001"), person("0000000002"), person("0000000003"), person("0000000004")], None, true);
    ws.write("reg.dat", &reg);
    let mut rows = vec![row_5311(2, "0000000001", "20250401")];
    let mut r = row_5311(3, "0000000002", "20250401");
    r[20] = "31".into(); // 要介護状態区分 31 is a workflow state, not a care level
    rows.push(r);
    let mut r = row_5311(4, "0000000003", "20250401");
    r[22] = "20250301".into(); // valid_to before valid_from
    rows.push(r);
    // Two open-ended 負担割合 periods of person 4: they overlap, both are withheld.
    rows.push(row_5311(5, "0000000004", "20250401"));
    let mut r = row_5311(6, "0000000004", "20250501");
    r[78] = "20250901".into();
    rows.push(r);
    // Person 5 is not in the register: warnings only.
    rows.push(row_5311(7, "0000000005", "20250401"));
    ws.write("5311_x.csv", &file_5311(&rows, None, true));
    let job = ws.job(&[("reg.dat", "insured_register_fixed"), ("5311_*.csv", "kokuhoren_5311")], "");
    let out = kiban(&["run", job.to_str().unwrap(), "--json"]);
    (ws, out)
}

fn csv_rows(out: &Output) -> Vec<String> {
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn each_fault_fires_its_rule_and_nothing_else() {
    let (ws, out) = faulty_load();
    assert_eq!(out.code, 3, "quarantined records exit 3: {}", out.stderr);
    let store = ws.store();
    let q = |sql: &str| kiban(&["query", sql, "--store", store.to_str().unwrap(), "--format", "csv"]);
    let hits: BTreeSet<String> =
        csv_rows(&q("SELECT source_file, source_record, rule_id, severity FROM rule_hits ORDER BY 1, 2, 3")).into_iter().collect();
    let want: BTreeSet<String> = [
        "5311_x.csv,3,recipient.care_level.code,error",
        "5311_x.csv,4,recipient.valid_period,error",
        "5311_x.csv,5,copayment_ratio.period_overlap,error",
        "5311_x.csv,6,copayment_ratio.period_overlap,error",
        "5311_x.csv,7,copayment_ratio.insured_person_exists,warning",
        "5311_x.csv,7,recipient.insured_person_exists,warning",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(hits, want);
    // Withheld rows are gone from the snapshot; the record's other rows stay.
    let recipient = strings(&read_set(&store, "recipient").unwrap(), "insured_no");
    assert_eq!(recipient.iter().filter(|x| x.as_deref() == Some("0000000002")).count(), 0);
    assert_eq!(recipient.iter().filter(|x| x.as_deref() == Some("0000000004")).count(), 2);
    let copay = strings(&read_set(&store, "copayment_ratio").unwrap(), "insured_no");
    assert!(!copay.contains(&Some("0000000004".into())));
    assert!(copay.contains(&Some("0000000002".into())), "record 3's copayment_ratio row is accepted");
    // Counts reconcile per file: records 3, 4, 5, 6 are quarantined (fully or in part).
    let files = csv_rows(&q("SELECT file, read, accepted, quarantined, warnings FROM load_files ORDER BY file"));
    assert_eq!(files, vec!["5311_x.csv,6,2,4,2".to_string(), "reg.dat,4,4,0,0".to_string()]);
    // The quarantine holds each record's raw bytes.
    let q_rows = csv_rows(&q("SELECT source_record, rule_ids FROM quarantine ORDER BY record_set, source_record"));
    assert_eq!(
        q_rows,
        ["5,copayment_ratio.period_overlap", "6,copayment_ratio.period_overlap", "3,recipient.care_level.code", "4,recipient.valid_period"]
    );
    for set in ["recipient", "copayment_ratio"] {
        let qb = read_quarantine(&store, set).unwrap();
        let raw = qb.column_by_name("raw_record").unwrap().as_any().downcast_ref::<arrow::array::BinaryArray>().unwrap().clone();
        assert!((0..raw.len()).all(|i| raw.value(i).starts_with(b"2,") && raw.value(i).len() > 100), "{set}: raw 5311 data records");
    }
}

#[test]
fn query_counts_match_the_parquet_files() {
    let (ws, out) = faulty_load();
    assert_eq!(out.code, 3, "{}", out.stderr);
    let store = ws.store();
    for set in ["recipient", "copayment_ratio", "insured_person"] {
        let direct = read_set(&store, set).unwrap().num_rows();
        let out = kiban(&["query", &format!("SELECT count(*) AS n FROM {set}"), "--store", store.to_str().unwrap(), "--format", "json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v[0]["n"].as_u64(), Some(direct as u64), "{set}");
    }
    let direct = read_quarantine(&store, "recipient").unwrap().num_rows();
    let out = kiban(&[
        "query",
        "SELECT count(*) FROM quarantine WHERE record_set = 'recipient'",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(csv_rows(&out), vec![direct.to_string()]);
    // Every version, and Parquet output that DataFusion wrote and the parquet crate reads back.
    let pq = ws.path().join("out.parquet");
    let out = kiban(&[
        "query",
        "SELECT * FROM recipient_versions",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "parquet",
        "--out",
        pq.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let b = read_parquet(&pq).unwrap();
    assert_eq!(b.num_rows(), read_set(&store, "recipient").unwrap().num_rows());
    assert!(b.column_by_name("version").is_some());
    // A bad statement is a usage error; a directory that is not a store too.
    assert_eq!(kiban(&["query", "SELEC 1", "--store", store.to_str().unwrap()]).code, 2);
    assert_eq!(kiban(&["query", "SELECT 1", "--store", ws.path().join("nowhere").to_str().unwrap()]).code, 2);
}

#[test]
fn validation_counts_toward_the_threshold() {
    let ws = Workspace::new();
    let mut bad = row_5311(2, "0000000001", "20250401");
    bad[20] = "77".into();
    ws.write("5311_x.csv", &file_5311(&[bad, row_5311(3, "0000000002", "20250401")], None, true));
    let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "[thresholds]\nmax_quarantined_ratio = 0.01");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("1 of 2 records quarantined"), "{}", out.stderr);
    assert!(!ws.store().join("_manifests").exists(), "an aborted load stores nothing");
}

#[test]
fn a_job_adds_rules_of_its_own_and_a_broken_one_stops_it_before_reading() {
    let ws = Workspace::new();
    let mut big = row_5311(3, "0000000002", "20250401");
    big[27] = "40000".into(); // 訪問通所サービス支給限度基準額
    ws.write("5311_x.csv", &file_5311(&[row_5311(2, "0000000001", "20250401"), big], None, true));
    ws.write(
        "recipient.rules.toml",
        "[[rules]]\nid = \"recipient.local_visit_limit\"\nseverity = \"warning\"\ncheck = \"visit_limit_units <= 36217\"\n\
         message_ja = \"支給限度基準額が大きすぎます\"\nmessage_en = \"visit_limit_units is above the local maximum\"\n"
            .as_bytes(),
    );
    let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "rules = [\"recipient.rules.toml\"]");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "a warning keeps the row: {}", out.stderr);
    // (Both persons are missing from the register, which this job does not load: warnings too.)
    let hits = kiban(&[
        "query",
        "SELECT source_record, rule_id, severity FROM rule_hits WHERE rule_id NOT LIKE '%insured_person_exists'",
        "--store",
        ws.store().to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(csv_rows(&hits), vec!["3,recipient.local_visit_limit,warning".to_string()]);

    // Unknown column, unknown code table, invalid SQL: exit 2 naming file and rule; nothing read.
    for check in ["no_such_column > 1", "code_valid('no_such_table', care_level)", "valid_from <"] {
        let ws = Workspace::new();
        ws.write("5311_x.csv", &file_5311(&[row_5311(2, "0000000001", "20250401")], None, true));
        let rule = format!(
            "[[rules]]\nid = \"recipient.broken\"\nseverity = \"error\"\ncheck = \"{check}\"\nmessage_ja = \"壊\"\nmessage_en = \"b\"\n"
        );
        ws.write("recipient.rules.toml", rule.as_bytes());
        let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "rules = [\"recipient.rules.toml\"]");
        let out = kiban(&["--log-format", "json", "-v", "run", job.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{check}: {}", out.stderr);
        assert!(out.stderr.contains("recipient.rules.toml: rule `recipient.broken`"), "{check}: {}", out.stderr);
        assert!(!out.stderr.contains("file read"), "no data is read before the rules plan: {}", out.stderr);
        assert!(!ws.store().exists(), "nothing stored");
    }
}
