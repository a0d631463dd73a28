//! The UTF-8 住宅改修・福祉用具 CSV (SPEC §4.5): RFC 4180 quoting, text kept exactly, and its
//! bad input — a missing field, invalid UTF-8, a wrong header row.
use super::fixtures::*;

const HEADER: &str = "保険者番号,被保険者番号,種別,支給申請日,支給決定日,サービス提供年月,事業所番号,費用額,保険給付額,利用者負担額,給付率,限度額リセット区分,備考\r\n";

/// 備考 values that need everything RFC 4180 has, and characters a CP932 pipeline would lose.
const REMARKS: [&str; 4] = [
    "段差の解消, 引き戸への扉の取替え \"玄関\"",
    "洋式便器への取替え\r\n工事は2回に分けて実施\n(LF のみの改行も)",
    "𠮷田様 山𥔎様 葛\u{E0100}飾区 (IVS)",
    "",
];

fn quoted(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn row(insured: &str, remarks: &str) -> String {
    format!("141309,{insured},1,20261001,20261015,202609,1312345679,200000,180000,20000,90,0,{}\r\n", quoted(remarks))
}

#[test]
fn quoted_fields_non_bmp_and_variation_sequences_are_kept_exactly() {
    let ws = Workspace::new();
    let mut file = HEADER.to_string();
    for (i, r) in REMARKS.iter().enumerate() {
        file.push_str(&row(&format!("00000000{:02}", i + 1), r));
    }
    ws.write("housing.csv", file.as_bytes());
    let job = ws.job(&[("housing.csv", "housing_equipment_utf8")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let b = read_set(&ws.store(), "housing_equipment_usage").unwrap();
    assert_eq!(b.num_rows(), 4);
    let mut got: Vec<(Option<String>, Option<String>, Option<String>)> = strings(&b, "insured_no")
        .into_iter()
        .zip(strings(&b, "remarks"))
        .zip(strings(&b, "source_record"))
        .map(|((a, r), s)| (a, r, s))
        .collect();
    got.sort();
    for (i, want) in REMARKS.iter().enumerate() {
        let (insured, remarks, record) = &got[i];
        assert_eq!(insured.as_deref(), Some(format!("00000000{:02}", i + 1).as_str()));
        // Byte for byte: line breaks inside the quotes, 𠮷 (U+20BB7), the variation selector.
        let want = if want.is_empty() { None } else { Some(want.to_string()) };
        assert_eq!(remarks, &want, "row {}", i + 1);
        // The header row is record 1; a record with line breaks inside quotes counts once.
        assert_eq!(record.as_deref(), Some((i + 2).to_string().as_str()));
    }
    let month = strings(&b, "service_month");
    assert!(month.iter().all(|m| m.as_deref() == Some("2026-09-01")), "YYYYMM becomes the month's first day: {month:?}");
}

#[test]
fn a_row_with_a_missing_field_or_invalid_utf8_is_quarantined_with_its_position() {
    let ws = Workspace::new();
    let mut file = HEADER.as_bytes().to_vec();
    file.extend_from_slice(row("0000000001", "ok").as_bytes());
    let short = "141309,0000000002,1,20261001,20261015,202609,1312345679,200000,180000\r\n";
    let offset_short = file.len();
    file.extend_from_slice(short.as_bytes());
    let offset_bad = file.len();
    file.extend_from_slice(row("0000000003", "壊れた").as_bytes());
    // Cut the UTF-8 of 壊 in the middle: E5 A3 8A → E5 A3.
    let at = offset_bad + row("0000000003", "").len() - 2;
    file.remove(at + 2);
    ws.write("housing.csv", &file);
    let job = ws.job(&[("housing.csv", "housing_equipment_utf8")], "");
    let out = kiban(&["run", job.to_str().unwrap(), "--json"]);
    assert_eq!(out.code, 3, "published with quarantined records: {}{}", out.stdout, out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let f = &summary["files"][0]["stats"];
    assert_eq!((f["read"].as_u64(), f["accepted"].as_u64(), f["quarantined"].as_u64()), (Some(3), Some(1), Some(2)), "{f}");
    let q = read_quarantine(&ws.store(), "housing_equipment_usage").unwrap();
    let kinds = strings(&q, "error_kind");
    let records = strings(&q, "source_record");
    let messages = strings(&q, "message");
    let mut rows: Vec<(String, String, String)> =
        (0..q.num_rows()).map(|i| (records[i].clone().unwrap(), kinds[i].clone().unwrap(), messages[i].clone().unwrap())).collect();
    rows.sort();
    assert_eq!(rows[0].0, "3");
    assert_eq!(rows[0].1, "field_count");
    assert!(
        rows[0].2.contains("housing.csv") && rows[0].2.contains("record 3") && rows[0].2.contains(&format!("byte offset {offset_short}")),
        "{}",
        rows[0].2
    );
    assert_eq!(rows[1].0, "4");
    assert_eq!(rows[1].1, "decode");
    assert!(rows[1].2.contains("record 4") && rows[1].2.contains("invalid UTF-8") && rows[1].2.contains("byte offset"), "{}", rows[1].2);
    assert!(!rows.iter().any(|r| r.2.contains("壊")), "no data values in messages");
}

#[test]
fn a_header_row_that_is_not_the_layouts_rejects_the_file() {
    let ws = Workspace::new();
    let file = HEADER.replace("種別", "区分") + &row("0000000001", "");
    ws.write("housing.csv", file.as_bytes());
    let job = ws.job(&[("housing.csv", "housing_equipment_utf8")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 1, "the only file is rejected, nothing stored: {}{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("housing.csv") && all.contains("column 3 of the header row is not `種別`"), "{all}");
    // A UTF-8 byte order mark before the header is fine.
    let ws = Workspace::new();
    let file = format!("\u{FEFF}{HEADER}{}", row("0000000001", ""));
    ws.write("housing.csv", file.as_bytes());
    let job = ws.job(&[("housing.csv", "housing_equipment_utf8")], "");
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}
