//! Good loads end to end through the binary.
use super::fixtures::*;

#[test]
fn loads_5311_into_every_derived_record_set() {
    let ws = Workspace::new();
    let mut a = row_5311(2, "0000000001", "20250401");
    a[34] = "20250501".into(); // 35 償還払化開始
    a[35] = "20251031".into();
    a[56] = "20250801".into(); // 57 負担限度額開始
    a[57] = "20260731".into();
    a[47] = "3".into();
    a[50] = "392".into();
    let mut b = row_5311(3, "0000000002", "20250501");
    b[6] = format!("00{INSURER}"); // 8-digit insurer form
    b[77] = "02".into(); // zero-padded ratio: still 2割, 80 %
    ws.write("5311_a.csv", &file_5311(&[a, b], None, true));
    let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "stdout {} stderr {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("5311_a.csv"), "{}", out.stdout);
    assert!(out.stdout.contains("2 =          2 +           0"), "{}", out.stdout);

    let r = read_set(&ws.store(), "recipient").expect("recipient");
    assert_eq!(r.num_rows(), 2);
    assert_eq!(strings(&r, "insurer_no"), vec![Some(INSURER.into()), Some(INSURER.into())]);
    assert_eq!(strings(&r, "change_date"), vec![Some("2025-04-01".into()), Some("2025-05-01".into())]);
    assert_eq!(strings(&r, "care_level")[0].as_deref(), Some("21"));
    assert_eq!(strings(&r, "visit_limit_units")[0].as_deref(), Some("16765"));
    assert_eq!(strings(&r, "source_record"), vec![Some("2".into()), Some("3".into())]);
    assert_eq!(strings(&r, "source_file")[0].as_deref(), Some("5311_a.csv"));
    // The store keeps a row_hash as its 16 bytes (store format 2).
    assert_eq!(r.column_by_name("row_hash").map(|h| h.data_type().clone()), Some(arrow::datatypes::DataType::FixedSizeBinary(16)));

    let c = read_set(&ws.store(), "copayment_ratio").expect("copayment_ratio");
    assert_eq!(strings(&c, "ratio"), vec![Some("1".into()), Some("2".into())]);
    assert_eq!(strings(&c, "benefit_rate"), vec![Some("90".into()), Some("80".into())]);
    assert_eq!(strings(&c, "valid_to"), vec![None, None], "99999999 ends no period");

    let br = read_set(&ws.store(), "benefit_restriction").expect("benefit_restriction");
    assert_eq!(strings(&br, "kind"), vec![Some("reimbursement".into())]);
    let cl = read_set(&ws.store(), "cost_limit").expect("cost_limit");
    assert_eq!(strings(&cl, "food_limit"), vec![Some("392".into())]);
    assert_eq!(read_set(&ws.store(), "special_address").map(|b| b.num_rows()), Some(0), "no 住所地特例 start date → no row");

    // The manifest records counts and digests.
    let m = std::fs::read_to_string(ws.store().join("_manifests").join(INSURER).join("1.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(m["record_sets"]["recipient"]["rows"], 2);
    assert_eq!(m["inputs"][0]["read"], 2);
    // File sizes and SHA-256 in the manifest are those of the files on disk.
    for set in ["recipient", "copayment_ratio"] {
        let f = &m["record_sets"][set]["files"][0];
        let bytes = std::fs::read(ws.store().join(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(f["bytes"].as_u64(), Some(bytes.len() as u64));
        use sha2::Digest;
        assert_eq!(f["sha256"].as_str(), Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()));
    }
    let input = std::fs::read(ws.path().join("5311_a.csv")).unwrap();
    use sha2::Digest;
    assert_eq!(m["inputs"][0]["sha256"].as_str(), Some(hex::encode(sha2::Sha256::digest(&input)).as_str()));
    // The sorted runs the load spilled are gone with it.
    assert!(!ws.store().join("_staging").join(format!("insurer_no={INSURER}")).exists(), "staging left behind");
}

#[test]
fn later_row_wins_per_key_and_conflicts_are_reported() {
    let ws = Workspace::new();
    // Two rows of one person carry the same 負担割合 start with different ratios.
    let a = row_5311(2, "0000000001", "20250901");
    let mut b = row_5311(3, "0000000001", "20250401");
    b[77] = "02".into(); // zero-padded ratio: still 2割, 80 %
    ws.write("5311_a.csv", &file_5311(&[a, b], None, true));
    let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = read_set(&ws.store(), "copayment_ratio").unwrap();
    assert_eq!(c.num_rows(), 1);
    // Applied in 異動年月日 order: the 2025-09-01 row (record 2) is the later one and wins.
    assert_eq!(strings(&c, "ratio"), vec![Some("1".into())]);
    assert_eq!(strings(&c, "source_record"), vec![Some("2".into())]);
    assert!(out.stderr.contains("record 3") && out.stderr.contains("record 2"), "{}", out.stderr);
}

#[test]
fn incremental_loads_upsert_into_the_previous_snapshot() {
    let ws = Workspace::new();
    ws.write("5311_a.csv", &file_5311(&[row_5311(2, "0000000001", "20250401")], None, true));
    let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "");
    assert_eq!(kiban(&["run", job.to_str().unwrap()]).code, 0);
    std::fs::remove_file(ws.path().join("5311_a.csv")).unwrap();
    let mut b = row_5311(2, "0000000001", "20250401");
    b[20] = "22".into();
    ws.write("5311_b.csv", &file_5311(&[b, row_5311(3, "0000000002", "20250401")], None, true));
    assert_eq!(kiban(&["run", job.to_str().unwrap()]).code, 0);
    let r = read_set(&ws.store(), "recipient").unwrap();
    assert_eq!(strings(&r, "insured_no"), vec![Some("0000000001".into()), Some("0000000002".into())]);
    assert_eq!(strings(&r, "care_level")[0].as_deref(), Some("22"), "the later load replaces the stored row");
}

#[test]
fn fixed_register_with_and_without_crlf_and_wareki() {
    for crlf in [true, false] {
        let ws = Workspace::new();
        let recs = vec![
            // 被保険者区分 9 (その他): no age rule applies to a person born on the last day of 昭和.
            with_category(fixed_data("0000000002", "001", "ｻﾄｳ ﾊﾅｺ", "佐藤　花子", "3640107", "4010108"), b'9'),
            fixed_data("0000000001", "001", "ﾔﾏﾀﾞ ﾀﾛｳ", "髙橋\u{E000}", "2150730", "5010501"),
        ];
        ws.write("reg.dat", &fixed_file(&recs, None, crlf));
        ws.write("gaiji.tsv", "code\tunicode\tmj_name\tnote\nF040\tU+845B U+E0100\tMJ012345\t\n".as_bytes());
        let job = ws.job(&[("reg.dat", "insured_register_fixed")], "gaiji = \"gaiji.tsv\"");
        let out = kiban(&["run", job.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let p = read_set(&ws.store(), "insured_person").unwrap();
        assert_eq!(strings(&p, "insured_no"), vec![Some("0000000001".into()), Some("0000000002".into())], "sorted by key");
        assert_eq!(strings(&p, "name_kana_raw")[0].as_deref(), Some("ﾔﾏﾀﾞ ﾀﾛｳ"));
        assert_eq!(strings(&p, "name_kana")[0].as_deref(), Some("ヤマダ タロウ"));
        assert_eq!(strings(&p, "name_kanji")[0].as_deref(), Some("髙橋葛\u{E0100}"));
        assert_eq!(strings(&p, "name_kanji")[1].as_deref(), Some("佐藤　花子"));
        assert_eq!(strings(&p, "birth_date"), vec![Some("1926-07-30".into()), Some("1989-01-07".into())]);
        assert_eq!(strings(&p, "acquisition_date"), vec![Some("2019-05-01".into()), Some("1989-01-08".into())]);
        assert_eq!(strings(&p, "loss_date"), vec![None, None]);
        assert_eq!(strings(&p, "history_no")[0].as_deref(), Some("1"));
        assert_eq!(strings(&p, "source_record"), vec![Some("3".into()), Some("2".into())]);
        let step = if crlf { 402 } else { 400 };
        assert_eq!(strings(&p, "source_offset"), vec![Some((2 * step).to_string()), Some(step.to_string())]);
    }
}

#[test]
fn a_vendor_layout_is_a_mapping_file_and_no_rust() {
    // A second fixed-width layout, its fields in another order and 西暦 dates, from a test mapping.
    let ws = Workspace::new();
    let mapping = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vendor_b_register.toml")).unwrap();
    ws.write("vendor_b.toml", mapping.as_bytes());
    let rec = |insured: &str, kana: &str, birth: &str| {
        let mut r = Vec::new();
        r.extend_from_slice(b"D");
        r.extend_from_slice(insured.as_bytes());
        r.extend_from_slice(INSURER.as_bytes());
        r.extend_from_slice(birth.as_bytes());
        r.extend_from_slice(b"02");
        let mut k = cp932(kana);
        while k.len() < 30 {
            k.push(b' ');
        }
        r.extend_from_slice(&k);
        while r.len() < 64 {
            r.push(b' ');
        }
        r
    };
    let mut file = Vec::new();
    for r in [rec("0000000009", "ｶﾞｸ", "19450815"), rec("0000000003", "ﾎﾟﾁ", "19500101")] {
        file.extend_from_slice(&r);
    }
    ws.write("b.dat", &file);
    let job = ws.job(&[("b.dat", "vendor_b.toml")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let p = read_set(&ws.store(), "insured_person").unwrap();
    assert_eq!(strings(&p, "insured_no"), vec![Some("0000000003".into()), Some("0000000009".into())]);
    assert_eq!(strings(&p, "birth_date"), vec![Some("1950-01-01".into()), Some("1945-08-15".into())]);
    assert_eq!(strings(&p, "name_kana"), vec![Some("ポチ".into()), Some("ガク".into())]);
    assert_eq!(strings(&p, "history_no"), vec![Some("2".into()), Some("2".into())]);
}

#[test]
fn schema_list_and_show() {
    let out = kiban(&["schema", "list"]);
    assert_eq!(out.code, 0);
    for set in [
        "insured_person",
        "recipient",
        "certification",
        "certification_progress",
        "certification_survey",
        "physician_opinion",
        "copayment_ratio",
        "cost_limit",
        "benefit_restriction",
        "care_plan_notification",
        "special_address",
        "housing_equipment_usage",
    ] {
        assert!(out.stdout.contains(set), "{set} missing from {}", out.stdout);
    }
    let out = kiban(&["schema", "show", "certification"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("standard_time") && out.stdout.contains("Decimal128(6, 1)"), "{}", out.stdout);
    assert_eq!(kiban(&["schema", "show", "nope"]).code, 2);
}

#[test]
fn every_shipped_mapping_compiles_against_the_schemas() {
    let c = kiban::job::catalog::Catalog::embedded().expect("catalog");
    let layouts = c.compile_all().expect("shipped mappings compile");
    assert_eq!(layouts.len(), 5);
    assert_eq!(c.schemas.sets.len(), 12);
}

#[test]
fn a_quarantined_register_record_keeps_its_published_row() {
    let reg = super::fixtures::RegisterJob::new();
    let person = super::fixtures::register_person;
    let run = |recs: &[Vec<u8>]| reg.run(recs);
    let (_, v1) = run(&[person("0000000001", "3200101"), person("0000000002", "3200101"), person("0000000003", "3200101")]);
    assert_eq!(v1.len(), 3);
    // 2 is quarantined (an impossible date) and keeps its row; 3 is gone from the register: deleted.
    let (s2, v2) = run(&[person("0000000001", "3200101"), person("0000000002", "3201345")]);
    assert_eq!(v2, vec![Some("0000000001".into()), Some("0000000002".into())]);
    assert_eq!(s2["kept_for_quarantined"], 1);
    assert_eq!(s2["deletes_suppressed"], false);
    // A record whose key cannot be read: this load deletes nothing.
    let mut unreadable = person("0000000009", "3200101");
    unreadable[7..17].copy_from_slice(b"00000\x80000X");
    let (s3, v3) = run(&[person("0000000004", "3200101"), unreadable]);
    assert_eq!(s3["deletes_suppressed"], true);
    assert_eq!(v3, vec![Some("0000000001".into()), Some("0000000002".into()), Some("0000000004".into())]);
}

/// A store written before format 2 keeps `row_hash` as hex text. kiban reads such a version as it
/// reads its own: the next load keeps a quarantined record's row from it and diffs against it to
/// the same changes, and queries show one text `row_hash` across both versions.
#[test]
fn a_version_with_text_row_hashes_is_read_as_one_with_bytes() {
    use super::fixtures::register_person as person;
    let first: Vec<Vec<u8>> = (1..=5).map(|i| person(&format!("{i:010}"), "3200101")).collect();
    // 2 changes, 3 is quarantined (an impossible date) and keeps its row, 5 goes, 9 comes.
    let second = vec![
        person("0000000001", "3200101"),
        person("0000000002", "3200202"),
        person("0000000003", "3201345"),
        person("0000000004", "3200101"),
        person("0000000009", "3200101"),
    ];
    let (control, older) = (RegisterJob::new(), RegisterJob::new());
    for j in [&control, &older] {
        j.run(&first);
    }
    let v1 = older.ws.store().join("insured_person").join(format!("insurer_no={INSURER}")).join("version=1").join("part-0.parquet");
    let stored = read_parquet(&v1).expect("version 1");
    assert_eq!(stored.column_by_name("row_hash").map(|c| c.data_type().clone()), Some(arrow::datatypes::DataType::FixedSizeBinary(16)));
    let text = kiban::store::row_hash::to_text(stored).expect("text");
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&v1).expect("file"), text.schema(), None).expect("writer");
    w.write(&text).expect("write");
    w.close().expect("close");

    let (expected, rows) = control.run(&second);
    let (got, older_rows) = older.run(&second);
    let c = &expected["changes"];
    assert_eq!((c["inserts"].as_u64(), c["updates"].as_u64(), c["deletes"].as_u64()), (Some(1), Some(1), Some(1)));
    assert_eq!(expected["kept_for_quarantined"], 1);
    for k in ["changes", "kept_for_quarantined"] {
        assert_eq!(got[k], expected[k], "{k}");
    }
    assert_eq!(older_rows, rows);
    let changes = |j: &RegisterJob| {
        read_parquet(
            &j.ws.store().join("_changes/insured_person").join(format!("insurer_no={INSURER}")).join("version=2").join("part-0.parquet"),
        )
        .expect("changes")
    };
    assert_eq!(changes(&older), changes(&control), "the same change rows, hashes as text");
    let snapshot = |j: &RegisterJob| read_set(&j.ws.store(), "insured_person").expect("version 2");
    assert_eq!(
        snapshot(&older).column_by_name("row_hash"),
        snapshot(&control).column_by_name("row_hash"),
        "the kept row's hash, as bytes again"
    );

    let query = |j: &RegisterJob, sql: &str| {
        let o = kiban(&["query", sql, "--store", j.ws.store().to_str().unwrap(), "--format", "csv"]);
        assert_eq!(o.code, 0, "{sql}: {}", o.stderr);
        o.stdout
    };
    let shapes = "SELECT version, COUNT(*) AS n, MIN(LENGTH(row_hash)) AS lo, MAX(LENGTH(row_hash)) AS hi, \
                  SUM(CASE WHEN row_hash = lower(row_hash) THEN 1 ELSE 0 END) AS lower FROM insured_person_versions GROUP BY version ORDER BY version";
    let same = "SELECT COUNT(*) AS same FROM insured_person_versions a JOIN insured_person_versions b \
                ON a.insured_no = b.insured_no AND a.row_hash = b.row_hash WHERE a.version = 1 AND b.version = 2";
    let changed = "SELECT COUNT(*) AS n FROM insured_person_changes c JOIN insured_person_versions v \
                   ON c.new_row_hash = v.row_hash AND v.version = 2 WHERE c.version = 2";
    assert_eq!(query(&older, shapes), "version,n,lo,hi,lower\n1,5,32,32,5\n2,5,32,32,5\n");
    assert_eq!(query(&older, same), "same\n3\n", "1, 3 (kept) and 4 are unchanged");
    assert_eq!(query(&older, changed), "n\n2\n", "the update and the insert, by their text hashes");
    for sql in [shapes, same, changed] {
        assert_eq!(query(&older, sql), query(&control, sql), "{sql}");
    }
}

/// A store a newer kiban wrote is refused with the reason, not misread.
#[test]
fn a_newer_store_format_is_refused() {
    let reg = super::fixtures::RegisterJob::new();
    reg.run(&[super::fixtures::register_person("0000000001", "3200101")]);
    let manifest = reg.ws.store().join("_manifests").join(INSURER).join("1.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["format"], kiban::store::FORMAT);
    m["format"] = serde_json::json!(kiban::store::FORMAT + 1);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let o = kiban(&["query", "SELECT COUNT(*) FROM insured_person", "--store", reg.ws.store().to_str().unwrap()]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("1.json") && o.stderr.contains("newer than this kiban"), "{}", o.stderr);
}
