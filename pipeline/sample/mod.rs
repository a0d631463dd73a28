//! `kiban sample generate`: realistic synthetic exports of SPEC §4.1–4.3, fast and deterministic.
//!
//! The same persons appear in all three files. Texts are CP932-only where the formats are CP932:
//! NEC/IBM extension kanji (髙, 﨑), ①, ～, half-width kana with voiced marks (ｶﾞ, ﾎﾟ), 外字 from
//! the user-defined area (with the municipality's 外字 table written beside them, one code left
//! out on purpose so the unmapped-外字 warning shows), and 和暦 dates on era boundaries. Pools are
//! encoded once; records are assembled from bytes, so a million persons take seconds.

use crate::codec::cp932;
use crate::codec::wareki::{DateStyle, EraTable};
use chrono::{Datelike, Days, NaiveDate};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct SampleOptions {
    /// 保険者番号 (6 digits).
    pub insurer_no: String,
    pub persons: u64,
    pub out_dir: PathBuf,
    pub seed: u64,
    /// 処理対象年月 (year, month).
    pub month: (i32, u32),
}

pub struct SampleFile {
    pub path: PathBuf,
    pub format: &'static str,
    pub data_records: u64,
    pub bytes: u64,
}

pub struct SampleSummary {
    pub files: Vec<SampleFile>,
    pub job_file: PathBuf,
    pub gaiji_table: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("--insurer `{0}` is not 6 digits")]
    InvalidInsurer(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("sample data: {0}")]
    Data(String),
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

const KANA_FAMILY: &[&str] = &[
    "ﾔﾏﾀﾞ",
    "ｻﾄｳ",
    "ｽｽﾞｷ",
    "ﾀｶﾊｼ",
    "ﾀﾅｶ",
    "ﾜﾀﾅﾍﾞ",
    "ｲﾄｳ",
    "ﾅｶﾑﾗ",
    "ｺﾊﾞﾔｼ",
    "ｶﾄｳ",
    "ﾖｼﾀﾞ",
    "ﾔﾏｸﾞﾁ",
    "ﾏﾂﾓﾄ",
    "ｲﾉｳｴ",
    "ｷﾑﾗ",
    "ﾊﾔｼ",
    "ｼﾐｽﾞ",
    "ﾔﾏｻﾞｷ",
    "ﾓﾘ",
    "ｲｹﾀﾞ",
];
const KANJI_FAMILY: &[&str] = &[
    "山田", "佐藤", "鈴木", "髙橋", "田中", "渡邉", "伊藤", "中村", "小林", "加藤", "吉田", "山口", "松本", "井上", "木村", "林", "清水",
    "山﨑", "森", "池田",
];
const KANA_GIVEN: &[&str] = &["ﾀﾛｳ", "ﾊﾅｺ", "ｲﾁﾛｳ", "ﾐﾁｺ", "ｼｹﾞﾙ", "ｶｽﾞｺ", "ﾋﾛｼ", "ﾖｼｺ", "ｽｽﾑ", "ｹｲｺ", "ﾏｻｵ", "ﾌﾐｴ", "ｼﾞﾛｳ", "ﾃﾂﾔ", "ﾎﾟﾝﾀ"];
const KANJI_GIVEN: &[&str] =
    &["太郎", "花子", "一郎", "美智子", "茂", "和子", "博", "良子", "進", "恵子", "正夫", "文江", "次郎", "哲也", "凡太"];
const ADDRESSES: &[&str] = &[
    "神奈川県横浜市中区山下町１－２",
    "神奈川県横浜市港北区日吉本町３丁目４番５号",
    "横浜市西区みなとみらい２－３－１　①号棟",
    "横浜市青葉区美しが丘１－１～３",
    "横浜市鶴見区豊岡町２０－１　㈱ハイツ１０１",
    "横浜市南区浦舟町４－５７",
];

/// 外字 of the sample municipality: (CP932 code, replacement, MJ図形名). F044 is used in the
/// data but left out of the table.
const GAIJI: &[(u16, &str, &str)] =
    &[(0xF040, "U+845B U+E0100", "MJ012345"), (0xF041, "U+9AD9", ""), (0xF042, "U+5D0E", ""), (0xF043, "U+20BB7", "MJ056789")];
const UNMAPPED_GAIJI: u16 = 0xF044;

fn enc(s: &str) -> Result<Vec<u8>, SampleError> {
    let mut v = Vec::new();
    cp932::encode(s, &mut v).map_err(|c| SampleError::Data(format!("U+{:04X} is not CP932", c as u32)))?;
    Ok(v)
}

fn padded(mut v: Vec<u8>, len: usize, fill: &[u8]) -> Vec<u8> {
    // Never cut a double-byte character: drop whole characters until it fits.
    while v.len() > len {
        let mut i = 0;
        let mut last = 0;
        while i < v.len() {
            last = i;
            i += if cp932::is_lead_byte(v[i]) { 2 } else { 1 };
        }
        v.truncate(last);
    }
    while v.len() + fill.len() <= len {
        v.extend_from_slice(fill);
    }
    while v.len() < len {
        v.push(b' ');
    }
    v
}

fn ymd(d: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

fn last_of_month(y: i32, m: u32) -> NaiveDate {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1).and_then(|d| d.pred_opt()).unwrap_or(NaiveDate::MIN)
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn mod10_check(body: &str) -> u32 {
    let mut sum = 0;
    for (i, c) in body.chars().rev().enumerate() {
        let d = c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 2 } else { 1 };
        sum += d / 10 + d % 10;
    }
    (10 - sum % 10) % 10
}

fn office_no(rng: &mut Rng, pref: &str) -> String {
    let body = format!("{pref}7{:02}{:04}", rng.below(100), rng.below(10000));
    format!("{body}{}", mod10_check(&body))
}

struct Person {
    insured_no: String,
    kana: Vec<u8>,
    kanji: Vec<u8>,
    address: Vec<u8>,
    birth: NaiveDate,
    sex: u8,
    acquired: NaiveDate,
    second_category: bool,
}

struct Out {
    w: BufWriter<std::fs::File>,
    path: PathBuf,
    bytes: u64,
}

impl Out {
    fn create(path: PathBuf) -> Result<Out, SampleError> {
        let f = std::fs::File::create(&path).map_err(|source| SampleError::Io { path: path.clone(), source })?;
        Ok(Out { w: BufWriter::with_capacity(1 << 20, f), path, bytes: 0 })
    }
    fn put(&mut self, b: &[u8]) -> Result<(), SampleError> {
        self.bytes += b.len() as u64;
        self.w.write_all(b).map_err(|source| SampleError::Io { path: self.path.clone(), source })
    }
    fn done(mut self) -> Result<u64, SampleError> {
        self.w.flush().map_err(|source| SampleError::Io { path: self.path.clone(), source })?;
        Ok(self.bytes)
    }
}

pub fn generate(opts: &SampleOptions) -> Result<SampleSummary, SampleError> {
    let ins = &opts.insurer_no;
    if ins.len() != 6 || !ins.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SampleError::InvalidInsurer(ins.clone()));
    }
    let eras = EraTable::from_tsv(include_str!("../../mappings/eras.tsv")).map_err(|e| SampleError::Data(e.to_string()))?;
    let dir = &opts.out_dir;
    std::fs::create_dir_all(dir.join("gaiji")).map_err(|source| SampleError::Io { path: dir.clone(), source })?;
    let (year, month) = opts.month;
    let yyyymm = format!("{year:04}{month:02}");
    let month_end = last_of_month(year, month);
    let mut rng = Rng(opts.seed ^ 0x6B69_6261_6E00);

    let kana_family: Vec<Vec<u8>> = KANA_FAMILY.iter().map(|s| enc(s)).collect::<Result<_, _>>()?;
    let kana_given: Vec<Vec<u8>> = KANA_GIVEN.iter().map(|s| enc(s)).collect::<Result<_, _>>()?;
    let kanji_family: Vec<Vec<u8>> = KANJI_FAMILY.iter().map(|s| enc(s)).collect::<Result<_, _>>()?;
    let kanji_given: Vec<Vec<u8>> = KANJI_GIVEN.iter().map(|s| enc(s)).collect::<Result<_, _>>()?;
    let addresses: Vec<Vec<u8>> = ADDRESSES.iter().map(|s| enc(s)).collect::<Result<_, _>>()?;
    let zspace = enc("\u{3000}")?;
    // Era-boundary dates that must occur.
    let boundary_births = [day(1989, 1, 7), day(1926, 12, 24), day(1926, 12, 25), day(1912, 7, 30)];
    let boundary_acq = [day(1989, 1, 8), day(2019, 4, 30), day(2019, 5, 1)];

    let mut persons = Vec::with_capacity(opts.persons as usize);
    for i in 0..opts.persons {
        let second = rng.chance(60);
        let birth = if i < boundary_births.len() as u64 && !second {
            boundary_births[i as usize]
        } else if second {
            day(year - 40 - rng.below(24) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
        } else {
            day(year - 65 - rng.below(35) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
        };
        let mut kanji = kanji_family[rng.below(kanji_family.len() as u64) as usize].clone();
        kanji.extend_from_slice(&zspace);
        kanji.extend_from_slice(rng.pick(kanji_given.as_slice()).as_slice());
        if rng.chance(10) {
            let code = GAIJI[rng.below(GAIJI.len() as u64) as usize].0;
            kanji.extend_from_slice(&code.to_be_bytes());
        } else if rng.below(2000) == 0 {
            kanji.extend_from_slice(&UNMAPPED_GAIJI.to_be_bytes());
        }
        let mut kana = rng.pick(kana_family.as_slice()).clone();
        kana.push(b' ');
        kana.extend_from_slice(rng.pick(kana_given.as_slice()).as_slice());
        let acquired = if (i as usize) < boundary_acq.len() {
            boundary_acq[i as usize]
        } else {
            day(1990 + rng.below((year - 1990).max(1) as u64) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32)
        };
        persons.push(Person {
            insured_no: format!("{:010}", 1 + i),
            kana,
            kanji,
            address: rng.pick(addresses.as_slice()).clone(),
            birth,
            sex: 1 + rng.below(2) as u8,
            acquired,
            second_category: second,
        });
    }

    let w7 = |d: NaiveDate| eras.format(d, DateStyle::Wareki7).ok_or_else(|| SampleError::Data(format!("{d} has no 和暦")));

    // 被保険者台帳 (fixed width, CRLF).
    let reg_path = dir.join(format!("hihokensha_{ins}.dat"));
    let mut reg = Out::create(reg_path.clone())?;
    let mut rec = padded(format!("1{ins}{}", ymd(month_end)).into_bytes(), 400, b" ");
    rec.extend_from_slice(b"\r\n");
    reg.put(&rec)?;
    let mut reg_count = 0u64;
    for p in &persons {
        let histories = if rng.chance(50) { 2 } else { 1 };
        for h in 1..=histories {
            let mut r = Vec::with_capacity(402);
            r.push(b'2');
            r.extend_from_slice(ins.as_bytes());
            r.extend_from_slice(p.insured_no.as_bytes());
            r.extend_from_slice(format!("{h:03}").as_bytes());
            r.extend_from_slice(&padded(p.kana.clone(), 50, b" "));
            r.extend_from_slice(&padded(p.kanji.clone(), 40, &zspace));
            r.extend_from_slice(w7(p.birth)?.as_bytes());
            r.push(b'0' + p.sex);
            r.extend_from_slice(format!("{:07}", 2310000 + rng.below(9999)).as_bytes());
            r.extend_from_slice(&padded(p.address.clone(), 120, &zspace));
            r.push(if p.second_category { b'2' } else { b'1' });
            r.extend_from_slice(w7(p.acquired)?.as_bytes());
            r.extend_from_slice(if h == 1 { if p.second_category { b"006" } else { b"002" } } else { b"160" });
            r.extend_from_slice(b"0000000   ");
            let special = rng.chance(20);
            r.push(if special { b'2' } else { b'1' });
            if special {
                r.extend_from_slice(b"141002");
                r.extend_from_slice(w7(day(2020, 4, 1))?.as_bytes());
                r.extend_from_slice(b"       ");
            } else {
                r.extend_from_slice(&[b' '; 20]);
            }
            r.extend_from_slice(w7(p.acquired.max(day(2000, 4, 1)))?.as_bytes());
            let r = padded(r, 400, b" ");
            reg.put(&r)?;
            reg.put(b"\r\n")?;
            reg_count += 1;
        }
    }
    let mut t = padded(format!("9{ins}{reg_count:09}").into_bytes(), 400, b" ");
    t.extend_from_slice(b"\r\n");
    reg.put(&t)?;
    let reg_bytes = reg.done()?;

    // 5311 受給者異動連絡票 (CSV, some fields quoted).
    let levels = ["01", "06", "12", "13", "21", "22", "23", "24", "25"];
    let limits = ["0", "5032", "5032", "10531", "16765", "19705", "27048", "30938", "36217"];
    let mut rows: Vec<Vec<u8>> = Vec::new();
    let pref = &ins[..2];
    for p in &persons {
        if !rng.chance(200) {
            continue;
        }
        let events = 1 + rng.below(2);
        let mut from = day(year - 1 - rng.below(2) as i32, 1 + rng.below(12) as u32, 1);
        for e in 0..events {
            let li = rng.below(levels.len() as u64) as usize;
            let months = if e == 0 { 12 } else { 36 };
            let to_m = from.checked_add_months(chrono::Months::new(months - 1)).unwrap_or(from);
            let to = last_of_month(to_m.year(), to_m.month());
            let applied = from.checked_sub_days(Days::new(20 + rng.below(20))).unwrap_or(from);
            let mut f: Vec<String> = vec![String::new(); 80];
            f[0] = "2".into();
            f[2] = "5311".into();
            f[3] = ymd(from.min(month_end));
            f[4] = if e == 0 { "1" } else { "2" }.into();
            f[5] = if e == 0 { "01" } else { "99" }.into();
            f[6] = if rng.chance(20) { format!("00{ins}") } else { ins.clone() };
            f[7] = p.insured_no.clone();
            f[9] = ymd(p.birth);
            f[10] = p.sex.to_string();
            f[11] = ymd(p.acquired);
            f[12] = if rng.chance(500) { "00000000".into() } else { String::new() };
            f[16] = if e == 0 { "1" } else { "2" }.into();
            f[17] = "1".into();
            f[18] = ymd(applied);
            f[19] = "1".into();
            f[20] = levels[li].into();
            f[21] = ymd(from);
            f[22] = ymd(to);
            if rng.chance(600) {
                f[23] = (1 + rng.below(3)).to_string();
                f[24] = office_no(&mut rng, pref);
                f[25] = ymd(from);
            }
            f[27] = limits[li].into();
            f[28] = ymd(from);
            f[29] = ymd(to);
            if rng.chance(10) {
                f[34] = ymd(from);
                f[35] = ymd(to);
            }
            f[40] = "090".into();
            if rng.chance(100) {
                f[47] = "3".into();
                f[48] = "1".into();
                f[49] = "1".into();
                f[50] = "392".into();
                // 居住費 limits of the 第3段階 (円/日), fields 52–56.
                for (k, v) in f[51..56].iter_mut().zip([1310, 1310, 880, 1310, 370]) {
                    *k = v.to_string();
                }
                f[56] = ymd(day(from.year(), 8, 1));
                f[57] = ymd(day(from.year() + 1, 7, 31));
            }
            if rng.chance(20) {
                f[70] = "2".into();
                f[71] = "141002".into();
                f[72] = ymd(from);
            }
            let ratio = match rng.below(100) {
                0..=89 => "1",
                90..=95 => "2",
                _ => "3",
            };
            f[77] = ratio.into();
            f[78] = ymd(day(from.year(), 8, 1));
            f[79] = if rng.chance(100) { "99999999".into() } else { ymd(day(from.year() + 1, 7, 31)) };
            let mut line = Vec::with_capacity(400);
            for (k, v) in f.iter().enumerate() {
                if k > 0 {
                    line.push(b',');
                }
                if k == 8 {
                    line.push(b'"');
                    line.extend_from_slice(&p.kana);
                    line.push(b'"');
                } else if k == 7 {
                    line.push(b'"');
                    line.extend_from_slice(v.as_bytes());
                    line.push(b'"');
                } else {
                    line.extend_from_slice(v.as_bytes());
                }
            }
            rows.push(line);
            from = to.succ_opt().unwrap_or(to);
            if from > month_end {
                break;
            }
        }
    }
    let k_path = dir.join(format!("5311_{ins}_{yyyymm}.csv"));
    let mut k = Out::create(k_path.clone())?;
    k.put(format!("1,1,1,{},531,,{ins},,{pref},7,{yyyymm},000001\r\n", rows.len()).as_bytes())?;
    for (i, r) in rows.iter().enumerate() {
        // Field 2 is the running record number: splice it in.
        let comma = r.iter().position(|&b| b == b',').unwrap_or(0);
        k.put(&r[..comma + 1])?;
        k.put((i + 2).to_string().as_bytes())?;
        k.put(&r[comma + 1..])?;
        k.put(b"\r\n")?;
    }
    k.put(format!("3,{}\r\n", rows.len() + 2).as_bytes())?;
    let k_count = rows.len() as u64;
    let k_bytes = k.done()?;

    // 要介護認定 09B (CSV, no quoting, 328 fields).
    let n_path = dir.join(format!("nintei_09B_{ins}_{yyyymm}.csv"));
    let mut n = Out::create(n_path.clone())?;
    let patterns: &[u64] = &[
        2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 4, 3, 3, 3, 3, 4, 3, 5, 5, 4, 4, 3, 4, 4, 4, 3, 3, 3, 4, 4, 3, 4, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    ];
    let mut seq = 0u64;
    for p in &persons {
        if !rng.chance(150) {
            continue;
        }
        seq += 1;
        let applied = month_end.checked_sub_days(Days::new(rng.below(120))).unwrap_or(month_end);
        let stage = rng.below(7);
        let mut f: Vec<String> = vec![String::new(); 328];
        f[0] = seq.to_string();
        f[1] = "1".into();
        f[2] = "09B".into();
        f[3] = ins.clone();
        f[4] = p.insured_no.clone();
        f[5] = ymd(applied);
        f[6] = "0".into();
        f[7] = (1 + rng.below(3)).to_string();
        f[8] = f[7].clone();
        f[9] = if stage == 0 { (2 + rng.below(3)).to_string() } else { "1".into() };
        f[10] = if p.second_category { "2" } else { "1" }.into();
        f[11] = "2".into();
        f[12] = ymd(p.birth);
        let mut age = applied.year() - p.birth.year();
        if (applied.month(), applied.day()) < (p.birth.month(), p.birth.day()) {
            age -= 1;
        }
        f[13] = age.to_string();
        f[14] = p.sex.to_string();
        let d = |k: u64| ymd(applied.checked_add_days(Days::new(k)).unwrap_or(applied));
        if stage >= 2 {
            f[34] = d(3);
            f[35] = d(10);
            f[36] = office_no(&mut rng, pref);
            f[38] = format!("{:06}", rng.below(999_999));
            for (i, pat) in patterns.iter().enumerate() {
                f[111 + i] = (1 + rng.below(*pat)).to_string();
            }
            f[185] = (1 + rng.below(9)).to_string();
            f[186] = (1 + rng.below(8)).to_string();
        }
        if stage >= 3 {
            f[25] = format!("14{:08}", rng.below(100_000_000));
            f[27] = d(2);
            f[28] = d(14);
        }
        if stage >= 4 {
            f[40] = d(16);
            f[41] = levels[4 + rng.below(5) as usize].into();
            f[42] = (1 + rng.below(3)).to_string();
            f[43] = format!("{}.{}", 25 + rng.below(90), rng.below(10));
        }
        if stage >= 5 {
            f[62] = d(18);
            f[63] = d(25);
            f[64] = format!("{:02}", 1 + rng.below(9));
        }
        if stage >= 6 {
            f[66] = d(25);
            f[67] = f[41].clone();
            let from = d(0);
            f[68] = from;
            let end_m = applied.checked_add_months(chrono::Months::new(11)).unwrap_or(applied);
            f[69] = ymd(last_of_month(end_m.year(), end_m.month()));
            f[70] = if p.second_category { format!("{:02}", 1 + rng.below(16)) } else { "99".into() };
            f[326] = "特になし".into();
        }
        let mut line = Vec::with_capacity(1200);
        for (k, v) in f.iter().enumerate() {
            if k > 0 {
                line.push(b',');
            }
            match k {
                15 => line.extend_from_slice(&p.kana),
                16 => line.extend_from_slice(&p.kanji),
                18 => line.extend_from_slice(&p.address),
                _ => line.extend_from_slice(&enc(v)?),
            }
        }
        line.extend_from_slice(b"\r\n");
        n.put(&line)?;
    }
    let n_bytes = n.done()?;

    // 外字 table and job.
    let g_path = dir.join("gaiji").join(format!("{ins}.tsv"));
    let mut g = String::from("code\tunicode\tmj_name\tnote\n");
    for (code, uni, mj) in GAIJI {
        g.push_str(&format!("{code:04X}\t{uni}\t{mj}\tsample\n"));
    }
    write(&g_path, g.as_bytes())?;
    let job_path = dir.join("job.toml");
    let job = format!(
        "# Generated by `kiban sample generate`.\nname = \"sample-{ins}\"\ninsurer_no = \"{ins}\"\nstore = \"store\"\ngaiji = \"gaiji/{ins}.tsv\"\n\n\
[[sources]]\npath = \"hihokensha_{ins}.dat\"\nmapping = \"insured_register_fixed\"\n\n\
[[sources]]\npath = \"5311_{ins}_*.csv\"\nmapping = \"kokuhoren_5311\"\n\n\
[[sources]]\npath = \"nintei_09B_{ins}_*.csv\"\nmapping = \"nintei_09b\"\n"
    );
    write(&job_path, job.as_bytes())?;
    Ok(SampleSummary {
        files: vec![
            SampleFile { path: reg_path, format: "insured_register_fixed", data_records: reg_count, bytes: reg_bytes },
            SampleFile { path: k_path, format: "kokuhoren_5311", data_records: k_count, bytes: k_bytes },
            SampleFile { path: n_path, format: "nintei_09b", data_records: seq, bytes: n_bytes },
        ],
        job_file: job_path,
        gaiji_table: g_path,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SampleError> {
    std::fs::write(path, bytes).map_err(|source| SampleError::Io { path: path.to_path_buf(), source })
}
