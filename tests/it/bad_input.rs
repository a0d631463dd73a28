//! Every bad-input case of SPEC §4.1, §4.3 and §4.7: the record is quarantined or the file is
//! rejected, with a message naming file, record, field and byte offset, and no personal data.
use super::fixtures::*;

fn run_5311(bytes: &[u8]) -> (Workspace, Output) {
    let ws = Workspace::new();
    ws.write("5311_x.csv", bytes);
    let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    (ws, out)
}

fn run_fixed(bytes: &[u8]) -> (Workspace, Output) {
    let ws = Workspace::new();
    ws.write("reg.dat", bytes);
    let job = ws.job(&[("reg.dat", "insured_register_fixed")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    (ws, out)
}

/// Replaces the bytes of one field of a 5311 data line (line index `line`, field `n`).
fn patch_5311(rows: &[Vec<String>], line: usize, n: usize, raw: &[u8]) -> Vec<u8> {
    let file = file_5311(rows, None, true);
    let mut lines: Vec<Vec<u8>> = file.split(|&b| b == b'\n').map(|l| l.to_vec()).collect();
    let l = &lines[line];
    let body = &l[..l.len() - 1];
    let mut fields: Vec<Vec<u8>> = body.split(|&b| b == b',').map(|f| f.to_vec()).collect();
    fields[n - 1] = raw.to_vec();
    let mut nl = fields.join(&b","[..]);
    nl.push(b'\r');
    lines[line] = nl;
    lines.join(&b"\n"[..])
}

fn assert_quarantined(ws: &Workspace, out: &Output, set: &str, kind: &str, field_no: Option<&str>, record: &str) -> String {
    assert_eq!(out.code, 3, "partial load exits 3; stdout {} stderr {}", out.stdout, out.stderr);
    let q = read_quarantine(&ws.store(), set).expect("quarantine written");
    assert_eq!(q.num_rows(), 1);
    assert_eq!(strings(&q, "error_kind")[0].as_deref(), Some(kind));
    assert_eq!(strings(&q, "source_record")[0].as_deref(), Some(record));
    assert_eq!(strings(&q, "field_no")[0].as_deref(), field_no);
    let msg = strings(&q, "message")[0].clone().unwrap();
    assert!(msg.contains(&format!("record {record}")), "{msg}");
    if field_no.is_some() {
        assert!(msg.contains("byte offset"), "{msg}");
    }
    // The raw record is kept, so nothing is lost.
    assert!(q.column_by_name("raw_record").unwrap().len() == 1);
    // No personal data in logs.
    for pd in ["ﾔﾏﾀﾞ", "ヤマダ", "19400101", "佐藤", "花子"] {
        assert!(!out.stderr.contains(pd) && !out.stdout.contains(pd), "personal data `{pd}` leaked: {}", out.stderr);
    }
    msg
}

#[test]
fn byte_0x80_is_quarantined_with_its_offset() {
    let rows = vec![row_5311(2, "0000000001", "20250401"), row_5311(3, "0000000002", "20250401")];
    let bytes = patch_5311(&rows, 2, 9, b"\"\xB1\x80\"");
    let (ws, out) = run_5311(&bytes);
    let msg = assert_quarantined(&ws, &out, "recipient", "decode", Some("9"), "3");
    assert!(msg.contains("0x80") && msg.contains("5311_x.csv"), "{msg}");
    // The offset is that of the 0x80 byte in the file.
    let off: u64 = msg.rsplit("byte offset ").next().unwrap().trim().parse().unwrap();
    assert_eq!(bytes[off as usize], 0x80);
    assert_eq!(read_set(&ws.store(), "recipient").unwrap().num_rows(), 1, "the other record is accepted");
    assert!(out.stdout.contains("2 =          1 +           1"), "{}", out.stdout);
}

#[test]
fn invalid_bytes_are_quarantined() {
    let rows = vec![row_5311(2, "0000000001", "20250401")];
    let (ws, out) = run_5311(&patch_5311(&rows, 1, 9, b"\xFF\xFE"));
    assert_quarantined(&ws, &out, "recipient", "decode", Some("9"), "2");
}

#[test]
fn wrong_field_count_is_quarantined() {
    let mut r = row_5311(2, "0000000001", "20250401");
    r.pop();
    let (ws, out) = run_5311(&file_5311(&[r, row_5311(3, "0000000002", "20250401")], None, true));
    let msg = assert_quarantined(&ws, &out, "recipient", "field_count", None, "2");
    assert!(msg.contains("79 fields, expected 80"), "{msg}");
}

#[test]
fn impossible_and_open_end_dates() {
    let mut r = row_5311(2, "0000000001", "20250230");
    r[21] = "20250401".into();
    let (ws, out) = run_5311(&file_5311(&[r], None, true));
    let msg = assert_quarantined(&ws, &out, "recipient", "invalid_date", Some("4"), "2");
    assert!(msg.contains("change_date"), "{msg}");
    // 99999999 outside an end-of-period column is an invalid date.
    let mut r = row_5311(2, "0000000001", "20250401");
    r[78] = "99999999".into();
    let (ws, out) = run_5311(&file_5311(&[r], None, true));
    assert_quarantined(&ws, &out, "recipient", "invalid_date", Some("79"), "2");
}

#[test]
fn malformed_key_is_quarantined_by_its_shape_rule() {
    let file = file_5311(&[row_5311(2, "00001", "20250401")], None, true);
    let (ws, out) = run_5311(&file);
    assert_eq!(out.code, 3, "{}", out.stderr);
    // The record yields a recipient and a copayment_ratio row: each is withheld by its set's rule.
    for set in ["recipient", "copayment_ratio"] {
        let q = read_quarantine(&ws.store(), set).expect("quarantine written");
        assert_eq!(q.num_rows(), 1, "{set}");
        assert_eq!(strings(&q, "error_kind")[0].as_deref(), Some("rule"));
        assert_eq!(strings(&q, "rule_ids")[0].as_deref(), Some(format!("{set}.insured_no.shape").as_str()));
        assert_eq!(strings(&q, "source_record")[0].as_deref(), Some("2"));
        let raw = q.column_by_name("raw_record").unwrap().as_any().downcast_ref::<arrow::array::BinaryArray>().unwrap().value(0).to_vec();
        let line = file.split(|&b| b == b'\n').nth(1).unwrap();
        assert_eq!(raw, line.strip_suffix(b"\r").unwrap_or(line), "the raw record, read back from the file");
        assert!(!strings(&q, "message")[0].as_deref().unwrap().contains("00001"), "no data values in messages");
    }
    // One record, quarantined once in the file's counts: read = accepted + quarantined.
    let manifest = std::fs::read_to_string(ws.store().join("_manifests/141309/1.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let input = &m["inputs"][0];
    assert_eq!((input["read"].as_u64(), input["accepted"].as_u64(), input["quarantined"].as_u64()), (Some(1), Some(0), Some(1)));
}

fn assert_rejected(out: &Output, ws: &Workspace, needle: &str) {
    assert_eq!(out.code, 1, "stdout {} stderr {}", out.stdout, out.stderr);
    assert!(out.stderr.contains(needle), "expected `{needle}` in {}", out.stderr);
    assert!(!ws.store().join("_manifests").exists(), "a failed run stores nothing");
}

#[test]
fn control_count_mismatch_rejects_the_file() {
    let (ws, out) = run_5311(&file_5311(&[row_5311(2, "0000000001", "20250401")], Some(2), true));
    assert_rejected(&out, &ws, "declares 2 data records, the file has 1");
}

#[test]
fn missing_end_record_rejects_the_file() {
    let (ws, out) = run_5311(&file_5311(&[row_5311(2, "0000000001", "20250401")], None, false));
    assert_rejected(&out, &ws, "missing trailer/end record");
}

#[test]
fn data_after_the_end_record_rejects_the_file() {
    let mut b = file_5311(&[row_5311(2, "0000000001", "20250401")], None, true);
    let extra = file_5311(&[row_5311(4, "0000000002", "20250401")], None, false);
    let line = extra.split(|&c| c == b'\n').nth(1).unwrap();
    b.extend_from_slice(line);
    b.extend_from_slice(b"\n");
    let (ws, out) = run_5311(&b);
    assert_rejected(&out, &ws, "data after the trailer/end record");
}

#[test]
fn missing_or_malformed_control_record_rejects_the_file() {
    let b = file_5311(&[row_5311(2, "0000000001", "20250401")], None, true);
    let without: Vec<u8> = b.splitn(2, |&c| c == b'\n').nth(1).unwrap().to_vec();
    let (ws, out) = run_5311(&without);
    assert_rejected(&out, &ws, "missing header/control record");
    let bad = String::from_utf8_lossy(&b).replacen(",531,", ",532,", 1).into_bytes();
    let (ws, out) = run_5311(&bad);
    assert_rejected(&out, &ws, "field 5 is not `531`");
}

#[test]
fn a_data_record_of_another_insurer_rejects_the_file() {
    let mut r = row_5311(2, "0000000001", "20250401");
    r[6] = "131011".into();
    let (ws, out) = run_5311(&file_5311(&[r], None, true));
    assert_rejected(&out, &ws, "a file belongs to one insurer");
}

#[test]
fn another_insurer_rejects_the_file_even_when_the_record_has_other_errors() {
    let mut r = row_5311(2, "0000000001", "20250230");
    r[6] = "00131011".into();
    let (ws, out) = run_5311(&file_5311(&[r], None, true));
    assert_rejected(&out, &ws, "data record of insurer 131011");
}

#[test]
fn a_rejected_file_is_left_out_and_the_others_load() {
    // One good file and one whose control count is wrong.
    let two_files = |extra: &str| {
        let ws = Workspace::new();
        ws.write("5311_a.csv", &file_5311(&[row_5311(2, "0000000001", "20250401")], None, true));
        ws.write("5311_b.csv", &file_5311(&[row_5311(2, "0000000002", "20250401")], Some(7), true));
        let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], extra);
        let out = kiban(&["run", job.to_str().unwrap()]);
        (ws, out)
    };
    let (ws, out) = two_files("");
    assert_eq!(out.code, 3, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("5311_b.csv") && out.stdout.contains("rejected: file.record_count: the header/control record declares 7"),
        "{}",
        out.stdout
    );
    assert_eq!(strings(&read_set(&ws.store(), "recipient").unwrap(), "insured_no"), vec![Some("0000000001".into())]);
    // The store records the rejected file and why, for auditors.
    let files = kiban(&[
        "query",
        "SELECT file, read, rejected FROM load_files ORDER BY file",
        "--store",
        ws.store().to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(
        files.stdout.lines().nth(2),
        Some("5311_b.csv,0,\"file.record_count: the header/control record declares 7 data records, the file has 1\"")
    );
    // With on_file_error = "fail_load" the same input stores nothing.
    let (ws, out) = two_files("on_file_error = \"fail_load\"");
    assert_rejected(&out, &ws, "5311_b.csv: file rejected");
}

#[test]
fn a_register_record_of_another_insurer_is_quarantined() {
    let mut r = fixed_data("0000000001", "001", "ｱ", "山田", "3200101", "5010501");
    r[1..7].copy_from_slice(b"131011");
    let ok = fixed_data("0000000002", "001", "ｲ", "川", "3200101", "5010501");
    let (ws, out) = run_fixed(&fixed_file(&[r, ok], None, true));
    assert_quarantined(&ws, &out, "insured_person", "other_insurer", Some("2"), "2");
}

#[test]
fn fixed_trailer_count_mismatch_and_truncation_reject_the_file() {
    let recs = vec![fixed_data("0000000001", "001", "ｱ", "山田", "3200101", "5010501")];
    let (ws, out) = run_fixed(&fixed_file(&recs, Some(5), true));
    assert_rejected(&out, &ws, "declares 5 data records, the file has 1");
    let mut b = fixed_file(&recs, None, true);
    b.truncate(b.len() - 10);
    let (ws, out) = run_fixed(&b);
    assert_rejected(&out, &ws, "truncated last record");
}

#[test]
fn fixed_cut_double_byte_and_era_overflow_are_quarantined() {
    // 漢字氏名 whose 40th byte is the lead byte of a double-byte character.
    let mut r = fixed_data("0000000001", "001", "ｱ", "山田", "3200101", "5010501");
    let name: Vec<u8> = std::iter::repeat_n(b"\x8e\x52".to_vec(), 19).flatten().chain([b' ', 0x93]).collect();
    r[70..110].copy_from_slice(&name);
    let ok = fixed_data("0000000002", "001", "ｲ", "川", "3200101", "5010501");
    let (ws, out) = run_fixed(&fixed_file(&[r, ok], None, true));
    let msg = assert_quarantined(&ws, &out, "insured_person", "decode", Some("71"), "2");
    assert!(msg.contains("cut by the field boundary"), "{msg}");
    let off: u64 = msg.rsplit("byte offset ").next().unwrap().trim().parse().unwrap();
    assert_eq!(off, 402 + 109);
    // 平成31年5月1日 does not exist.
    let r = fixed_data("0000000001", "001", "ｱ", "山田", "4310501", "4010108");
    let (ws, out) = run_fixed(&fixed_file(&[r], None, true));
    let msg = assert_quarantined(&ws, &out, "insured_person", "invalid_date", Some("111"), "2");
    assert!(msg.contains("era"), "{msg}");
}

#[test]
fn threshold_aborts_the_load() {
    let ws = Workspace::new();
    let rows = vec![row_5311(2, "0000000001", "20250401"), row_5311(3, "000001", "20250401")];
    ws.write("5311_x.csv", &file_5311(&rows, None, true));
    let job = ws.job(&[("5311_*.csv", "kokuhoren_5311")], "[thresholds]\nmax_quarantined_ratio = 0.01");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_rejected(&out, &ws, "over the job's threshold");
}

#[test]
fn configuration_errors_exit_2_before_reading() {
    let ws = Workspace::new();
    ws.write("m.toml", b"name = \"m\"\nformat = \"csv\"\nencoding = \"cp932\"\nmode = \"snapshot\"\nprimary_record_set = \"recipient\"\n[csv]\nquoting = true\nfields = 3\n[[fields]]\nname = \"a\"\nfield = 1\ntype = \"text\"\ncode_table = \"nope\"\n[[outputs]]\nrecord_set = \"recipient\"\n[outputs.columns]\ninsurer_no = \"a\"\n");
    ws.write("x.csv", b"a,b,c\r\n");
    let job = ws.job(&[("x.csv", "m.toml")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("unknown code table `nope`"), "{}", out.stderr);
    let job = ws.write(
        "bad.toml",
        b"name = \"x\"\ninsurer_no = \"141309\"\nstore = \"s\"\nsurprise = 1\n[[sources]]\npath = \"x\"\nmapping = \"y\"\n",
    );
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("surprise"), "{}", out.stderr);
}
