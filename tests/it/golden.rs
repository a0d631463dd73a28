//! Golden files: the demo job's record sets, printed in full, must not change unnoticed.
//! `KIBAN_UPDATE_GOLDEN=1 cargo test --test it golden` rewrites them after an intended change.
use super::fixtures::*;
use std::path::Path;

#[test]
fn demo_load_matches_the_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ws = Workspace::new();
    for f in [
        "hihokensha_141309.dat",
        "5311_141309_202610.csv",
        "nintei_09B_141309_202610.csv",
        "housing_141309_202610.csv",
        "ikensho_141309_202610_sjis.xml",
        "ikensho_141309_202610_utf8.xml",
    ] {
        std::fs::copy(root.join("sample-data").join(f), ws.path().join(f)).unwrap();
    }
    let gaiji = std::fs::read(root.join("sample-data/gaiji/141309.tsv")).unwrap();
    ws.write("gaiji.tsv", &gaiji);
    let job = ws.job(
        &[
            ("hihokensha_*.dat", "insured_register_fixed"),
            ("5311_*.csv", "kokuhoren_5311"),
            ("nintei_09B_*.csv", "nintei_09b"),
            ("housing_*.csv", "housing_equipment_utf8"),
            ("ikensho_*.xml", "ikensho_xml"),
        ],
        "gaiji = \"gaiji.tsv\"",
    );
    let out = kiban(&["run", job.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let update = std::env::var_os("KIBAN_UPDATE_GOLDEN").is_some();
    let mut sets: Vec<String> = std::fs::read_dir(ws.store())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('_'))
        .collect();
    sets.sort();
    assert_eq!(sets.len(), 12);
    for set in sets {
        let b = read_set(&ws.store(), &set).unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&[b]).unwrap().to_string() + "\n";
        let golden = root.join("tests/golden").join(format!("{set}.txt"));
        if update {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &text).unwrap();
        }
        let want =
            std::fs::read_to_string(&golden).unwrap_or_else(|_| panic!("{} missing: run with KIBAN_UPDATE_GOLDEN=1", golden.display()));
        assert!(want == text, "{set} differs from {}", golden.display());
    }
}
