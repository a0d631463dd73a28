//! Builders of CP932 exports for tests, and helpers to run `kiban` and read the store.
#![allow(dead_code)]

use arrow::array::{Array, RecordBatch};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const INSURER: &str = "141309";

pub fn cp932(s: &str) -> Vec<u8> {
    let mut v = Vec::new();
    kiban::codec::cp932::encode(s, &mut v).expect("test text is CP932");
    v
}

/// An 80-field 5311 data record (as text fields) for one person and 異動年月日.
pub fn row_5311(record_no: usize, insured: &str, change_date: &str) -> Vec<String> {
    let mut f = vec![String::new(); 80];
    let set = |f: &mut Vec<String>, n: usize, v: &str| f[n - 1] = v.to_string();
    set(&mut f, 1, "2");
    set(&mut f, 2, &record_no.to_string());
    set(&mut f, 3, "5311");
    set(&mut f, 4, change_date);
    set(&mut f, 5, "1");
    set(&mut f, 6, "01");
    set(&mut f, 7, INSURER);
    set(&mut f, 8, insured);
    set(&mut f, 9, "ﾔﾏﾀﾞ ﾀﾛｳ");
    set(&mut f, 10, "19400101");
    set(&mut f, 11, "1");
    set(&mut f, 12, "20050101");
    set(&mut f, 13, "00000000");
    set(&mut f, 17, "1");
    set(&mut f, 18, "1");
    set(&mut f, 19, "20250301");
    set(&mut f, 21, "21");
    set(&mut f, 22, "20250401");
    set(&mut f, 23, "20260331");
    set(&mut f, 28, "16765");
    set(&mut f, 29, "20250401");
    set(&mut f, 30, "20260331");
    set(&mut f, 41, "090");
    set(&mut f, 78, "1");
    set(&mut f, 79, "20250801");
    set(&mut f, 80, "99999999");
    f
}

/// A whole 5311 file: control, data rows, end. Raw byte overrides are applied per row.
pub fn file_5311(rows: &[Vec<String>], declared: Option<usize>, with_end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let n = declared.unwrap_or(rows.len());
    out.extend_from_slice(format!("1,1,1,{n},531,,{INSURER},,14,7,202610,000001\r\n").as_bytes());
    for r in rows {
        let line: Vec<String> = r.iter().enumerate().map(|(i, v)| if i == 8 { format!("\"{v}\"") } else { v.clone() }).collect();
        out.extend_from_slice(&cp932(&line.join(",")));
        out.extend_from_slice(b"\r\n");
    }
    if with_end {
        out.extend_from_slice(format!("3,{}\r\n", rows.len() + 2).as_bytes());
    }
    out
}

fn pad(bytes: &mut Vec<u8>, target: usize, fill: &[u8]) {
    while bytes.len() < target {
        bytes.extend_from_slice(fill);
    }
}

/// A 400-byte register data record.
pub fn fixed_data(insured: &str, history: &str, kana: &str, kanji: &str, birth: &str, acquired: &str) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(b"2");
    r.extend_from_slice(INSURER.as_bytes());
    r.extend_from_slice(insured.as_bytes());
    r.extend_from_slice(history.as_bytes());
    let mut k = cp932(kana);
    pad(&mut k, 50, b" ");
    r.extend_from_slice(&k[..50]);
    // `\u{E000}` in test text stands for the 外字 F040, which no encoder writes.
    let mut n = Vec::new();
    for part in kanji.split_inclusive('\u{E000}') {
        match part.strip_suffix('\u{E000}') {
            Some(head) => {
                n.extend_from_slice(&cp932(head));
                n.extend_from_slice(b"\xF0\x40");
            }
            None => n.extend_from_slice(&cp932(part)),
        }
    }
    pad(&mut n, 40, b"\x81\x40");
    r.extend_from_slice(&n[..40]);
    r.extend_from_slice(birth.as_bytes());
    r.extend_from_slice(b"1");
    r.extend_from_slice(b"2310000");
    let mut a = cp932("神奈川県横浜市中区１－１");
    pad(&mut a, 120, b"\x81\x40");
    r.extend_from_slice(&a[..120]);
    r.extend_from_slice(b"1");
    r.extend_from_slice(acquired.as_bytes());
    r.extend_from_slice(b"002");
    r.extend_from_slice(b"0000000");
    r.extend_from_slice(b"   ");
    r.extend_from_slice(b"1");
    r.extend_from_slice(b"      ");
    r.extend_from_slice(b"       ");
    r.extend_from_slice(b"       ");
    r.extend_from_slice(b"5070401");
    pad(&mut r, 400, b" ");
    assert_eq!(r.len(), 400);
    r
}

/// A register record with another 被保険者区分 (byte 246).
pub fn with_category(mut record: Vec<u8>, category: u8) -> Vec<u8> {
    record[245] = category;
    record
}

pub fn fixed_file(records: &[Vec<u8>], declared: Option<usize>, crlf: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let term: &[u8] = if crlf { b"\r\n" } else { b"" };
    let mut h = format!("1{INSURER}20261001").into_bytes();
    pad(&mut h, 400, b" ");
    out.extend_from_slice(&h);
    out.extend_from_slice(term);
    for r in records {
        out.extend_from_slice(r);
        out.extend_from_slice(term);
    }
    let mut t = format!("9{INSURER}{:09}", declared.unwrap_or(records.len())).into_bytes();
    pad(&mut t, 400, b" ");
    out.extend_from_slice(&t);
    out.extend_from_slice(term);
    out
}

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }

    /// A job over the given (glob, mapping) sources.
    pub fn job(&self, sources: &[(&str, &str)], extra: &str) -> PathBuf {
        let mut s = format!("name = \"test\"\ninsurer_no = \"{INSURER}\"\nstore = \"store\"\n{extra}\n");
        for (p, m) in sources {
            s.push_str(&format!("[[sources]]\npath = \"{p}\"\nmapping = \"{m}\"\n"));
        }
        self.write("job.toml", s.as_bytes())
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn kiban(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_kiban")).args(args).output().expect("run kiban");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// All rows of the latest version of a record set, read from the store's Parquet files.
pub fn read_set(store: &Path, set: &str) -> Option<RecordBatch> {
    let base = store.join(set).join(format!("insurer_no={INSURER}"));
    let mut versions: Vec<u64> = std::fs::read_dir(&base)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_prefix("version=").and_then(|v| v.parse().ok()))
        .collect();
    versions.sort();
    let v = versions.last()?;
    read_parquet(&base.join(format!("version={v}")).join("part-0.parquet"))
}

pub fn read_parquet(path: &Path) -> Option<RecordBatch> {
    let f = std::fs::File::open(path).ok()?;
    let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).ok()?;
    let schema = b.schema().clone();
    let batches: Vec<RecordBatch> = b.build().ok()?.collect::<Result<_, _>>().ok()?;
    arrow::compute::concat_batches(&schema, &batches).ok()
}

/// Quarantined rows of a load.
pub fn read_quarantine(store: &Path, set: &str) -> Option<RecordBatch> {
    let base = store.join("_quarantine").join(set).join(format!("insurer_no={INSURER}"));
    let load = std::fs::read_dir(&base).ok()?.flatten().next()?.path();
    read_parquet(&load.join("part-0.parquet"))
}

pub fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).unwrap_or_else(|| panic!("no column {col}"));
    let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).expect("cast");
    let s = a.as_any().downcast_ref::<arrow::array::StringArray>().expect("utf8");
    (0..s.len()).map(|i| if s.is_null(i) { None } else { Some(s.value(i).to_string()) }).collect()
}

/// A workspace with a job over one register file `reg.dat`: `run` writes the given records, runs
/// the job and returns its `insured_person` summary and the stored 被保険者番号.
pub struct RegisterJob {
    pub ws: Workspace,
    job: PathBuf,
}

/// A register record of `no` born on `birth` (和暦 `gyymmdd`).
pub fn register_person(no: &str, birth: &str) -> Vec<u8> {
    fixed_data(no, "001", "ｱ", "山田", birth, "5010501")
}

impl RegisterJob {
    pub fn new() -> RegisterJob {
        let ws = Workspace::new();
        let job = ws.job(&[("reg.dat", "insured_register_fixed")], "");
        RegisterJob { ws, job }
    }

    pub fn run(&self, records: &[Vec<u8>]) -> (serde_json::Value, Vec<Option<String>>) {
        self.ws.write("reg.dat", &fixed_file(records, None, true));
        let out = kiban(&["run", self.job.to_str().unwrap(), "--json"]);
        assert!(out.code == 0 || out.code == 3, "{}", out.stderr);
        let s: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let set = s["record_sets"].as_array().unwrap().iter().find(|r| r["record_set"] == "insured_person").unwrap().clone();
        (set, strings(&read_set(&self.ws.store(), "insured_person").unwrap(), "insured_no"))
    }
}
