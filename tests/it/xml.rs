//! The 主治医意見書 XML (SPEC §4.4) through `kiban run`: what is read in both encodings, and the
//! bad input of issue 7 — record errors quarantine that `<Ikensho>`, file errors reject the file.
use super::fixtures::*;
use arrow::array::{Array, Int32Array, ListArray, StringArray, StructArray};
use arrow::record_batch::RecordBatch;

const HEAD_SJIS: &str =
    "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\r\n<IkenshoList version=\"09B\" insurerNo=\"141309\" created=\"2026-04-01\">\r\n";
const TAIL: &str = "</IkenshoList>\r\n";

/// An opinion with every kind of text an XML processor must get right.
fn opinion(insured: &str, inner: &str) -> String {
    format!(
        "  <Ikensho>\r\n    <InsuredNo>{insured}</InsuredNo>\r\n    <ApplicationDate>2026-03-15</ApplicationDate>\r\n    <BranchNo>0</BranchNo>\r\n{inner}  </Ikensho>\r\n"
    )
}

const FULL: &str = "    <MedicalInstitutionNo>1410000001</MedicalInstitutionNo>\r\n    <DoctorName>山田 太郎</DoctorName>\r\n    <WrittenOn>2026-03-20</WrittenOn>\r\n    <Item no=\"14\" value=\"Ⅱa\"/>\r\n    <Item no=\"1\" value=\"1\"/>\r\n    <Item no='113' value=\"0\"/>\r\n    <Entry no=\"2\">52.0</Entry>\r\n    <Entry no=\"1\">162.5</Entry>\r\n    <Remarks>血圧 &lt;140/90&gt; &amp; 通院\r\n二行目&#x20BB7;田 <![CDATA[<b>そのまま</b> &amp;]]>\r末尾</Remarks>\r\n";

fn sjis(s: &str) -> Vec<u8> {
    let (b, _, bad) = encoding_rs::SHIFT_JIS.encode(s);
    assert!(!bad, "test text must be CP932");
    b.into_owned()
}

/// (no, value) pairs of a `list<struct<no, value>>` column, row by row.
fn numbered(b: &RecordBatch, col: &str) -> Vec<Vec<(i32, Option<String>)>> {
    let l = b.column_by_name(col).unwrap().as_any().downcast_ref::<ListArray>().unwrap();
    (0..l.len())
        .map(|i| {
            let v = l.value(i);
            let s = v.as_any().downcast_ref::<StructArray>().unwrap();
            let no = s.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
            let text = s.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            (0..s.len()).map(|j| (no.value(j), if text.is_null(j) { None } else { Some(text.value(j).to_string()) })).collect()
        })
        .collect()
}

fn raw_records(q: &RecordBatch) -> Vec<Option<Vec<u8>>> {
    let a = q.column_by_name("raw_record").unwrap().as_any().downcast_ref::<arrow::array::BinaryArray>().unwrap();
    (0..a.len()).map(|i| if a.is_null(i) { None } else { Some(a.value(i).to_vec()) }).collect()
}

fn run(ws: &Workspace, file: &str, bytes: &[u8]) -> Output {
    ws.write(file, bytes);
    let job = ws.job(&[(file, "ikensho_xml")], "");
    kiban(&["run", job.to_str().unwrap(), "--json"])
}

#[test]
fn both_encodings_read_field_by_field() {
    let doc = format!("{HEAD_SJIS}{}  <!-- between -->\r\n{}{TAIL}", opinion("0001234567", FULL), opinion("H000000002", ""));
    for (name, bytes) in [("sjis.xml", sjis(&doc)), ("utf8.xml", doc.replace("Shift_JIS", "UTF-8").into_bytes())] {
        let ws = Workspace::new();
        let out = run(&ws, name, &bytes);
        assert_eq!(out.code, 0, "{name}: {}{}", out.stdout, out.stderr);
        let b = read_set(&ws.store(), "physician_opinion").unwrap();
        assert_eq!(b.num_rows(), 2, "{name}");
        let insured = strings(&b, "insured_no");
        let i = insured.iter().position(|x| x.as_deref() == Some("0001234567")).unwrap();
        let j = 1 - i;
        assert_eq!(strings(&b, "insurer_no")[i].as_deref(), Some("141309"));
        assert_eq!(strings(&b, "application_date")[i].as_deref(), Some("2026-03-15"));
        assert_eq!(strings(&b, "branch_no")[i].as_deref(), Some("0"));
        assert_eq!(strings(&b, "medical_institution_no")[i].as_deref(), Some("1410000001"));
        assert_eq!(strings(&b, "doctor_name")[i].as_deref(), Some("山田 太郎"));
        assert_eq!(strings(&b, "written_on")[i].as_deref(), Some("2026-03-20"));
        // Entities and character references resolved, CDATA kept as written, CRLF and CR → LF.
        assert_eq!(strings(&b, "remarks")[i].as_deref(), Some("血圧 <140/90> & 通院\n二行目𠮷田 <b>そのまま</b> &amp;\n末尾"), "{name}");
        // Ordered by number; values as strings (Ⅱ is an NEC special character in Shift_JIS).
        let items = numbered(&b, "items");
        assert_eq!(items[i], vec![(1, Some("1".into())), (14, Some("Ⅱa".into())), (113, Some("0".into()))], "{name}");
        assert_eq!(numbered(&b, "entries")[i], vec![(1, Some("162.5".into())), (2, Some("52.0".into()))]);
        // An opinion without the optional elements: nulls and empty lists.
        assert_eq!(strings(&b, "doctor_name")[j], None);
        assert_eq!(strings(&b, "remarks")[j], None);
        assert!(items[j].is_empty());
        // Provenance: the ordinal of the <Ikensho> and the byte offset of its `<` in the file.
        let records = strings(&b, "source_record");
        let offsets = strings(&b, "source_offset");
        assert_eq!(records[i].as_deref(), Some("1"));
        assert_eq!(records[j].as_deref(), Some("2"));
        for k in [i, j] {
            let off: usize = offsets[k].as_deref().unwrap().parse().unwrap();
            assert!(bytes[off..].starts_with(b"<Ikensho>"), "{name}: offset {off}");
        }
        assert!(offsets[j].as_deref().unwrap().parse::<usize>().unwrap() > offsets[i].as_deref().unwrap().parse::<usize>().unwrap());
    }
}

#[test]
fn record_errors_quarantine_the_opinion_with_its_position() {
    let cases: [(&str, &str, &str); 7] = [
        ("0000000001", "    <Item no=\"114\" value=\"1\"/>\r\n", "unknown_item"),
        ("0000000002", "    <Item no=\"0\" value=\"1\"/>\r\n", "unknown_item"),
        ("0000000003", "    <Item no=\"5\" value=\"1\"/>\r\n    <Item no=\"5\" value=\"0\"/>\r\n", "unknown_item"),
        ("0000000004", "    <WrittenOn>2026-02-30</WrittenOn>\r\n", "invalid_date"),
        ("0000000005", "    <Unknown>x</Unknown>\r\n", "misplaced_element"),
        ("0000000006", "    <DoctorName>山田<Item no=\"1\" value=\"1\"/></DoctorName>\r\n", "misplaced_element"),
        ("", "", "malformed_key"),
    ];
    let mut doc = HEAD_SJIS.to_string();
    doc.push_str(&opinion("0000000000", "    <DoctorName>佐藤 花子</DoctorName>\r\n"));
    let mut want = Vec::new();
    for (n, (insured, inner, kind)) in cases.iter().enumerate() {
        let at = sjis(&doc).len();
        let body = if insured.is_empty() {
            // A missing key element.
            "  <Ikensho>\r\n    <ApplicationDate>2026-03-15</ApplicationDate>\r\n    <BranchNo>0</BranchNo>\r\n  </Ikensho>\r\n".to_string()
        } else {
            opinion(insured, inner)
        };
        doc.push_str(&body);
        want.push(((n + 2).to_string(), kind.to_string(), at));
    }
    doc.push_str(TAIL);
    let bytes = sjis(&doc);
    let ws = Workspace::new();
    let out = run(&ws, "ikensho.xml", &bytes);
    assert_eq!(out.code, 3, "published with quarantined records: {}{}", out.stdout, out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let f = &summary["files"][0]["stats"];
    assert_eq!((f["read"].as_u64(), f["accepted"].as_u64(), f["quarantined"].as_u64()), (Some(8), Some(1), Some(7)), "{f}");
    let q = read_quarantine(&ws.store(), "physician_opinion").unwrap();
    let (records, kinds, messages, offsets, raws) =
        (strings(&q, "source_record"), strings(&q, "error_kind"), strings(&q, "message"), strings(&q, "source_offset"), raw_records(&q));
    let mut got: Vec<(String, String, String, String, Vec<u8>)> = (0..q.num_rows())
        .map(|i| {
            (
                records[i].clone().unwrap(),
                kinds[i].clone().unwrap(),
                messages[i].clone().unwrap(),
                offsets[i].clone().unwrap(),
                raws[i].clone().unwrap(),
            )
        })
        .collect();
    got.sort_by_key(|g| g.0.parse::<u64>().unwrap());
    assert_eq!(got.len(), want.len());
    for ((record, kind, message, offset, raw), (wrecord, wkind, wat)) in got.iter().zip(&want) {
        assert_eq!((record, kind), (wrecord, wkind), "{message}");
        assert_eq!(offset, &(wat + 2).to_string(), "the record starts at its <Ikensho> (after two spaces)");
        assert!(
            message.contains("ikensho.xml") && message.contains(&format!("record {record}")) && message.contains("byte offset"),
            "{message}"
        );
        // The quarantine keeps the record as sent (Shift_JIS bytes), from <Ikensho> to </Ikensho>.
        let at: usize = offset.parse().unwrap();
        assert_eq!(raw.as_slice(), &bytes[at..at + raw.len()]);
        assert!(raw.starts_with(b"<Ikensho>") && raw.ends_with(b"</Ikensho>"));
        assert!(!message.contains("山田") && !message.contains("佐藤"), "no personal data in messages: {message}");
    }
    assert!(got[0].2.contains("element <Item>") && got[0].2.contains("114 is outside 1–113"), "{}", got[0].2);
    assert!(got[2].2.contains("given twice"), "{}", got[2].2);
    assert!(got[4].2.contains("<Unknown>"), "{}", got[4].2);
    assert!(got[5].2.contains("inside <DoctorName>"), "{}", got[5].2);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("山田") && !all.contains("佐藤"), "no personal data in logs");
}

/// Each bad file is rejected as a whole (exit 1, nothing stored) with its file, check, record and
/// byte offset.
#[test]
fn file_errors_reject_the_file() {
    let good = format!("{HEAD_SJIS}{}{}{TAIL}", opinion("0000000001", FULL), opinion("0000000002", ""));
    let sjis_bytes = sjis(&good);
    let second = sjis(&format!("{HEAD_SJIS}{}", opinion("0000000001", FULL))).len();
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n]>\n<IkenshoList insurerNo=\"141309\"><Ikensho><InsuredNo>&lol2;</InsuredNo></Ikensho></IkenshoList>\n";
    let mut utf8_declared_utf8_with_sjis = sjis(&good.replace("Shift_JIS", "UTF-8"));
    let cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
        ("utf8-declared-sjis", good.as_bytes().to_vec(), "file.xml_encoding_mismatch", None),
        ("sjis-declared-utf8", std::mem::take(&mut utf8_declared_utf8_with_sjis), "file.xml_encoding_mismatch", Some("record 1")),
        ("euc", good.replace("Shift_JIS", "EUC-JP").into_bytes(), "file.xml_encoding", None),
        ("laughs", laughs.as_bytes().to_vec(), "file.xml_doctype", None),
        ("truncated", sjis_bytes[..second + 40].to_vec(), "file.xml_truncated", Some("record 2")),
        (
            "wrong-place",
            sjis(&good.replace(
                "  <Ikensho>\r\n    <InsuredNo>0000000002",
                "  <Item no=\"1\" value=\"1\"/>\r\n  <Ikensho>\r\n    <InsuredNo>0000000002",
            )),
            "file.xml_structure",
            None,
        ),
        ("mismatched-end", sjis(&good.replace("</DoctorName>", "</Doctor>")), "file.xml_not_well_formed", Some("record 1")),
        ("other-insurer", sjis(&good.replace("insurerNo=\"141309\"", "insurerNo=\"131016\"")), "file.other_insurer", None),
    ];
    for (name, bytes, code, record) in cases {
        let ws = Workspace::new();
        let file = format!("{name}.xml");
        let out = run(&ws, &file, &bytes);
        assert_eq!(out.code, 1, "{name}: the only file is rejected: {}{}", out.stdout, out.stderr);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(&file) && all.contains(code), "{name}: {all}");
        if code != "file.other_insurer" {
            assert!(all.contains("byte offset"), "{name}: {all}");
        }
        if let Some(r) = record {
            assert!(all.contains(r), "{name}: wants {r}: {all}");
        }
        assert!(!all.contains("山田"), "{name}: no personal data: {all}");
        assert!(read_set(&ws.store(), "physician_opinion").is_none_or(|b| b.num_rows() == 0), "{name}: nothing stored");
    }
}

/// The position of a mismatch is the first byte that is not in the declared encoding.
#[test]
fn the_first_foreign_byte_is_named() {
    let good = format!("{}{}{TAIL}", HEAD_SJIS.replace("Shift_JIS", "UTF-8"), opinion("0000000001", FULL));
    let bytes = sjis(&good);
    let first = bytes.iter().position(|&b| b >= 0x80).unwrap();
    let ws = Workspace::new();
    let out = run(&ws, "x.xml", &bytes);
    assert_eq!(out.code, 1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains(&format!("byte offset {first}")), "{first}: {all}");
}
