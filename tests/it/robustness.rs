//! No panic on any input: mutated exports through the whole read → decode → map path. When a file
//! is accepted its counts reconcile (read = accepted + quarantined) and every accepted record is
//! a row of the primary record set or of none (derived sets only).
use super::fixtures::*;
use kiban::codec::gaiji::GaijiTable;
use kiban::job::catalog::Catalog;
use kiban::map::ingest::{FileContext, ingest_file};
use proptest::prelude::*;
use std::sync::LazyLock;

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog::embedded().expect("catalog"));

fn base_5311() -> Vec<u8> {
    let rows: Vec<Vec<String>> = (0..4).map(|i| row_5311(i + 2, &format!("{:010}", i + 1), "20250401")).collect();
    file_5311(&rows, None, true)
}

fn base_fixed() -> Vec<u8> {
    let recs: Vec<Vec<u8>> =
        (0..3).map(|i| fixed_data(&format!("{:010}", i + 1), "001", "ﾔﾏﾀﾞ ﾀﾛｳ", "山田　太郎", "3200101", "5010501")).collect();
    fixed_file(&recs, None, true)
}

fn mutate(mut b: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, op, byte) in edits {
        if b.is_empty() {
            break;
        }
        let p = pos % b.len();
        match op % 5 {
            0 => b[p] = byte,
            1 => b.insert(p, [b',', b'"', b'\r', b'\n', 0x80, 0x82, 0xF0, byte][byte as usize % 8]),
            2 => {
                b.remove(p);
            }
            3 => b.truncate(p),
            _ => b[p] = b' ',
        }
    }
    b
}

fn check(layout_name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input");
    std::fs::write(&path, bytes).expect("write");
    let layout = CATALOG.layout(layout_name, dir.path()).expect("layout");
    let gaiji = GaijiTable::default();
    let ctx = FileContext { layout: &layout, eras: &CATALOG.eras, gaiji: &gaiji, insurer_no: INSURER, file_name: "input", file_seq: 0 };
    if let Ok(out) = ingest_file(&ctx, &path, &mut |_| {}) {
        prop_assert_eq!(out.stats.read, out.stats.accepted + out.stats.quarantined);
        prop_assert_eq!(out.quarantine.num_rows() as u64, out.stats.quarantined);
        let primary = layout.outputs.iter().position(|o| o.set.name == layout.primary_record_set.name).expect("primary output");
        prop_assert_eq!(out.rows[primary].order_date.len() as u64, out.stats.accepted);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn mutated_5311_never_panics(edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6)) {
        check("kokuhoren_5311", &mutate(base_5311(), &edits))?;
    }

    #[test]
    fn mutated_register_never_panics(edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6)) {
        check("insured_register_fixed", &mutate(base_fixed(), &edits))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), which in 0usize..3) {
        check(["kokuhoren_5311", "nintei_09b", "insured_register_fixed"][which], &bytes)?;
    }
}
