//! `kiban sample generate` then `kiban run` on what it wrote.
use super::fixtures::*;

fn generate(dir: &std::path::Path, persons: &str, seed: &str) -> Output {
    kiban(&["sample", "generate", "--insurer", INSURER, "--persons", persons, "--out", dir.to_str().unwrap(), "--seed", seed])
}

#[test]
fn generated_exports_load_and_reconcile() {
    let ws = Workspace::new();
    let out = generate(ws.path(), "3000", "5");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let run = kiban(&["run", ws.path().join("job.toml").to_str().unwrap(), "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s: serde_json::Value = serde_json::from_str(&run.stdout).expect("json summary");
    let files = s["files"].as_array().unwrap();
    assert_eq!(files.len(), 6);
    for f in files {
        let st = &f["stats"];
        assert_eq!(st["read"].as_u64(), Some(st["accepted"].as_u64().unwrap() + st["quarantined"].as_u64().unwrap()));
        assert!(st["read"].as_u64().unwrap() > 0);
    }
    // The register is a snapshot: every data record is a row.
    let reg = files.iter().find(|f| f["layout"] == "insured_register_fixed").unwrap();
    let p = read_set(&ws.path().join("store"), "insured_person").unwrap();
    assert_eq!(p.num_rows() as u64, reg["stats"]["accepted"].as_u64().unwrap());
    // The UTF-8 住宅改修・福祉用具 CSV: what only UTF-8 can carry comes through exactly.
    let housing = read_set(&ws.path().join("store"), "housing_equipment_usage").unwrap();
    let remarks = strings(&housing, "remarks");
    for want in ["\r\n", "葛\u{E0100}", "𠮷", "\"𠮷田\"", ", "] {
        assert!(remarks.iter().flatten().any(|r| r.contains(want)), "a remark with {want:?} missing");
    }
    // 主治医意見書 in both encodings: every opinion read, each belongs to an application of the 09B
    // file, and text only Shift_JIS character references or UTF-8 can carry arrives.
    let xml: Vec<&serde_json::Value> = files.iter().filter(|f| f["layout"] == "ikensho_xml").collect();
    assert_eq!(xml.len(), 2);
    assert!(xml.iter().all(|f| f["stats"]["quarantined"].as_u64() == Some(0) && f["stats"]["read"].as_u64() > Some(0)));
    let op = read_set(&ws.path().join("store"), "physician_opinion").unwrap();
    let read: u64 = xml.iter().map(|f| f["stats"]["read"].as_u64().unwrap()).sum();
    assert_eq!(op.num_rows() as u64, read);
    let cert = read_set(&ws.path().join("store"), "certification").unwrap();
    let key = |b: &arrow::record_batch::RecordBatch, i: usize| {
        ["insured_no", "application_date", "branch_no"].map(|c| strings(b, c)[i].clone().unwrap_or_default())
    };
    let apps: std::collections::HashSet<[String; 3]> = (0..cert.num_rows()).map(|i| key(&cert, i)).collect();
    assert!((0..op.num_rows()).all(|i| apps.contains(&key(&op, i))), "an opinion of no application");
    let op_remarks = strings(&op, "remarks");
    for want in ["<140/90>", "& 週1回", "\n", "𠮷田", "山𥔎"] {
        assert!(op_remarks.iter().flatten().any(|r| r.contains(want)), "an opinion remark with {want:?} missing");
    }
    assert!(strings(&op, "doctor_name").iter().flatten().any(|d| d.starts_with("𠮷田")), "外字 F041 mapped in both encodings");
    // Era boundaries occur and parse.
    let births = strings(&p, "birth_date");
    for d in ["1989-01-07", "1926-12-24", "1926-12-25", "1912-07-30"] {
        assert!(births.iter().any(|b| b.as_deref() == Some(d)), "birth date {d} missing");
    }
    let acq = strings(&p, "acquisition_date");
    for d in ["1989-01-08", "2019-04-30", "2019-05-01"] {
        assert!(acq.iter().any(|b| b.as_deref() == Some(d)), "acquisition date {d} missing");
    }
    // Kana was normalised, 外字 mapped.
    assert!(strings(&p, "name_kana").iter().flatten().all(|k| !k.chars().any(|c| ('\u{FF61}'..='\u{FF9F}').contains(&c))));
    assert!(strings(&p, "name_kanji").iter().flatten().any(|k| k.contains("葛\u{E0100}") || k.contains('髙')));
    // Every progress status of SPEC §5.2 occurs.
    let st = strings(&read_set(&ws.path().join("store"), "certification_progress").unwrap(), "status");
    for want in
        ["withdrawn", "decided", "awaiting_committee", "primary_judged", "awaiting_primary_judgement", "awaiting_opinion", "received"]
    {
        assert!(st.iter().any(|s| s.as_deref() == Some(want)), "status {want} missing");
    }
    // 09B survey rows only where the survey was done.
    let survey = read_set(&ws.path().join("store"), "certification_survey").unwrap();
    let cert = read_set(&ws.path().join("store"), "certification").unwrap();
    assert!(survey.num_rows() > 0 && survey.num_rows() < cert.num_rows());
    // benefit_rate follows the ratio.
    let c = read_set(&ws.path().join("store"), "copayment_ratio").unwrap();
    for (r, b) in strings(&c, "ratio").into_iter().zip(strings(&c, "benefit_rate")) {
        let expect = match r.as_deref() {
            Some("1") => "90",
            Some("2") => "80",
            Some("3") => "70",
            _ => panic!("ratio {r:?}"),
        };
        assert_eq!(b.as_deref(), Some(expect));
    }
}

#[test]
fn generation_is_deterministic() {
    let a = Workspace::new();
    let b = Workspace::new();
    assert_eq!(generate(a.path(), "500", "9").code, 0);
    assert_eq!(generate(b.path(), "500", "9").code, 0);
    for f in ["hihokensha_141309.dat", "5311_141309_202610.csv", "nintei_09B_141309_202610.csv", "gaiji/141309.tsv", "job.toml"] {
        assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap(), "{f} differs");
    }
    assert_eq!(kiban(&["sample", "generate", "--insurer", "12345", "--persons", "1", "--out", a.path().to_str().unwrap()]).code, 2);
}

#[test]
fn unmapped_gaiji_is_a_stored_warning_and_json_logs_hold_no_personal_data() {
    let ws = Workspace::new();
    let recs = vec![fixed_data("0000000001", "001", "ﾔﾏﾀﾞ ﾀﾛｳ", "山田\u{E000}", "3200101", "5010501")];
    ws.write("reg.dat", &fixed_file(&recs, None, true));
    let job = ws.job(&[("reg.dat", "insured_register_fixed")], "");
    let out = kiban(&["--log-format", "json", "-v", "run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some());
    }
    for pd in ["ﾔﾏﾀﾞ", "ヤマダ", "山田", "3300101", "1955"] {
        assert!(!out.stderr.contains(pd), "personal data `{pd}` in logs: {}", out.stderr);
    }
    let wdir = ws.store().join("_warnings").join(format!("insurer_no={INSURER}"));
    let load = std::fs::read_dir(&wdir).unwrap().flatten().next().unwrap().path();
    let w = read_parquet(&load.join("part-0.parquet")).unwrap();
    assert_eq!(strings(&w, "warning_kind"), vec![Some("unmapped_gaiji".into())]);
    assert!(strings(&w, "message")[0].as_deref().unwrap().contains("U+E000"));
    let p = read_set(&ws.store(), "insured_person").unwrap();
    assert_eq!(strings(&p, "name_kanji")[0].as_deref(), Some("山田\u{E000}"), "the PUA code point is kept");
}
