//! Synthetic, realistic sample exports: the implementation behind
//! `kiban sample generate --insurer <no> --persons <n> --out <dir>`.
//!
//! [`generate`] writes, for one insurer, the three reference source layouts of SPEC §4.1–§4.3, the
//! insurer's 外字 table (§4.6) and a job file (§12):
//!
//! | file | layout |
//! |---|---|
//! | `5311_<insurer>_<yyyymm>.csv` | 国保連 受給者異動連絡票 (CP932 CSV, CRLF, control/data/end records, some fields quoted) |
//! | `nintei_09B_<insurer>_<yyyymm>.csv` | 要介護認定 09B (CP932 CSV, CRLF, no quoting, 328 fields) |
//! | `hihokensha_<insurer>.dat` | 被保険者台帳 (fixed width, 400 bytes + CRLF, 和暦 dates) |
//! | `housing_<insurer>_<yyyymm>.csv` | 住宅改修費・福祉用具購入費 支給 (UTF-8 RFC 4180 CSV with a header row; 備考 with commas, quotes, line breaks, non-BMP characters and an ideographic variation sequence) |
//! | `ikensho_<insurer>_<yyyymm>_sjis.xml` | 主治医意見書 (XML in Shift_JIS, CRLF: entities, character references for what Shift_JIS cannot hold, 外字 as user-defined characters) |
//! | `ikensho_<insurer>_<yyyymm>_utf8.xml` | 主治医意見書 (XML in UTF-8, LF: CDATA, characters outside the BMP as they are) |
//! | `gaiji/<insurer>.tsv` | 外字 table (F040–F043; F044 is used in the data but deliberately unmapped) |
//! | `job.toml` | a job over the three sources |
//!
//! The same persons (保険者番号 + 10-digit 被保険者番号) appear in all three files with the same
//! birth date, sex and names.
//!
//! Determinism and speed: every person is generated from its own splitmix64 stream, seeded
//! from `(seed, person index)`, so the output depends only on the options. The person model is
//! built twice: a cheap first pass counts the 5311 data records (the control record, which
//! comes first, carries the count), the second pass writes all three files at once. Names,
//! addresses and texts are encoded to CP932 once, with the `Encoder` API, and then copied as
//! bytes; numbers and dates are formatted by small helpers straight into the output buffers.
//!
//! Persons with special roles (person index = 0-based position in the register):
//! - 0–6: each has one application in the 09B file, at a given stage, so that every
//!   `certification_progress` status occurs (0 withdrawn, 1 decided (非該当), 2
//!   awaiting_committee, 3 primary_judged, 4 awaiting_primary_judgement, 5 awaiting_opinion,
//!   6 received);
//! - 2, 3, 4, 8: a 外字 in the kanji name (F040, F041, F042, F043); about 0.4 % of the other
//!   persons too;
//! - every index ≡ 199 (mod 2000): the unmapped 外字 F044 (name 渡＋F044, ﾜﾀﾅﾍﾞ), always with an
//!   application in the 09B file;
//! - 9, 10: born on era boundaries (大正15年12月24日, 昭和元年12月25日) when that age is possible
//!   for the processing month; 11, 12: moved in (転入) on 平成31年4月30日 and 令和元年5月1日.
//! - 13, 14, 15: the era-boundary examples asked for literally, although they are not plausible
//!   for a 介護保険 register: 13 is born 昭和64年1月7日 (3640107) and, while under 40, carries
//!   被保険者区分 9 (その他; the SPEC §6 age rule covers 1 and 2 only) with no certification
//!   or application; 14 is born 大正元年7月30日 (2010730); 15 is a 第1号 with 資格取得年月日
//!   平成元年1月8日 (4010108), before 介護保険 began (2000-04-01).

/// Synthetic store versions (benchmarks and scale tests of the diff).
pub mod store;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `kiban sample generate`.
pub struct SampleOptions {
    /// 保険者番号, 6 digits, e.g. "141309" (the first two digits are the prefecture, 01–47).
    pub insurer_no: String,
    /// Number of insured persons in the register.
    pub persons: u64,
    /// Output directory (created when missing).
    pub out_dir: PathBuf,
    /// Seed: the same options give byte-identical files.
    pub seed: u64,
    /// 処理対象年月 (year, month), e.g. (2026, 10).
    pub month: (i32, u32),
}

/// One generated source file.
pub struct SampleFile {
    pub path: PathBuf,
    /// The mapping name: "kokuhoren_5311" | "nintei_09b" | "insured_register_fixed".
    pub format: &'static str,
    /// Data records (control, end, header and trailer records not counted).
    pub data_records: u64,
    pub bytes: u64,
}

/// What [`generate`] wrote.
pub struct SampleSummary {
    pub files: Vec<SampleFile>,
    pub job_file: PathBuf,
    pub gaiji_table: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("invalid insurer number {0:?}: expected 6 digits starting with a prefecture code 01-47")]
    InvalidInsurer(String),
    #[error("invalid processing month {0}-{1:02}: expected a month from 2005-01 to 2099-12 (和暦 GYYMMDD holds 令和 years up to 99)")]
    InvalidMonth(i32, u32),
    #[error("too many persons: {0} (at most {MAX_PERSONS})")]
    TooManyPersons(u64),
    #[error("sample text {0:?} cannot be encoded in CP932")]
    Unencodable(String),
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Upper bound on `persons` (the 被保険者番号 numbering has room for this many).
pub const MAX_PERSONS: u64 = 100_000_000;

/// Generate the sample exports described in the module documentation.
pub fn generate(opts: &SampleOptions) -> Result<SampleSummary, SampleError> {
    let ctx = Ctx::new(opts)?;
    let out = opts.out_dir.as_path();
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let gaiji_dir = out.join("gaiji");
    std::fs::create_dir_all(&gaiji_dir).map_err(io_err(&gaiji_dir))?;

    let ins = std::str::from_utf8(&ctx.insurer).unwrap_or("000000").to_string();
    let yyyymm = std::str::from_utf8(&ctx.yyyymm).unwrap_or("000000").to_string();

    // Pass 1: count the 5311 data records (the control record comes first and carries it).
    let mut n5311: u64 = 0;
    for idx in 0..opts.persons {
        n5311 += u64::from(build(&ctx, idx).n_cert);
    }

    let mut f5311 = Out::create(out.join(format!("5311_{ins}_{yyyymm}.csv")))?;
    let mut f09b = Out::create(out.join(format!("nintei_09B_{ins}_{yyyymm}.csv")))?;
    let mut freg = Out::create(out.join(format!("hihokensha_{ins}.dat")))?;
    let mut fhousing = Out::create(out.join(format!("housing_{ins}_{yyyymm}.csv")))?;
    fhousing.buf.extend_from_slice(HOUSING_HEADER.as_bytes());
    let mut fop_sjis = Out::create(out.join(format!("ikensho_{ins}_{yyyymm}_sjis.xml")))?;
    let mut fop_utf8 = Out::create(out.join(format!("ikensho_{ins}_{yyyymm}_utf8.xml")))?;
    let mut created = Vec::new();
    push_iso_date(&mut created, ctx.c);
    let created = String::from_utf8_lossy(&created).to_string();
    for (f, encoding, eol) in [(&mut fop_sjis, "Shift_JIS", "\r\n"), (&mut fop_utf8, "UTF-8", "\n")] {
        let head = format!(
            "<?xml version=\"1.0\" encoding=\"{encoding}\"?>{eol}<IkenshoList version=\"09B\" insurerNo=\"{ins}\" created=\"{created}\">{eol}"
        );
        f.buf.extend_from_slice(head.as_bytes());
    }

    // 5311 control record.
    {
        let b = &mut f5311.buf;
        let mut f = Csv::new(b, false);
        f.raw(b"1");
        f.raw(b"1");
        f.raw(b"1"); // ボリューム通番
        f.num(n5311);
        f.raw(b"531");
        f.empty(); // 福祉事務所特定番号
        f.raw(&ctx.insurer);
        f.empty(); // 事業所番号
        f.raw(&ctx.insurer[0..2]);
        f.raw(b"7");
        f.raw(&ctx.yyyymm);
        f.raw(b"000001");
        f.end();
    }
    // Register header.
    {
        let mut rec = blank_record();
        rec[0] = b'1';
        rec[1..7].copy_from_slice(&ctx.insurer);
        let mut d = Vec::with_capacity(8);
        push_date8(&mut d, ctx.c);
        rec[7..15].copy_from_slice(&d);
        freg.buf.extend_from_slice(&rec);
    }

    let mut sc = Scratch::default();
    let mut recno: u64 = 1; // the control record is record 1
    let mut seq09b: u64 = 0;
    let mut nreg: u64 = 0;
    let mut nhousing: u64 = 0;
    let (mut nop_sjis, mut nop_utf8) = (0u64, 0u64);
    let mut op_text = String::new();
    for idx in 0..opts.persons {
        let p = build(&ctx, idx);
        let mut w = Rng::new(mix(ctx.seed ^ 0x5EED_0FC0_FFEE, idx));
        ctx.name_bytes(&p, &mut sc.kanji, &mut sc.kana);
        nreg += write_register(&ctx, &p, &mut freg.buf, &mut sc, &mut w);
        write_5311(&ctx, &p, &mut recno, &mut f5311.buf, &sc, &mut w);
        for a in 0..usize::from(p.n_app) {
            seq09b += 1;
            write_09b(&ctx, &p, &p.apps[a], seq09b, &mut f09b.buf, &sc, &mut w);
        }
        // Its own stream: the other files stay as they were before this file existed.
        let mut wh = Rng::new(mix(ctx.seed ^ 0x4855_5349_4E47, idx));
        nhousing += write_housing(&ctx, &p, &mut fhousing.buf, &mut wh);
        let mut wo = Rng::new(mix(ctx.seed ^ 0x0049_4B45_4E53_484F, idx));
        for a in &p.apps[..usize::from(p.n_app)] {
            if a.op_recv == NONE || a.op_recv > ctx.c {
                continue;
            }
            // An institution's system writes one encoding: Shift_JIS from about 60 % of them.
            let institution = 1 + (p.ident >> 24) % 400;
            let sjis = institution % 5 < 3;
            op_text.clear();
            write_opinion(&ctx, &p, a, institution, sjis, &mut op_text, &mut wo);
            if sjis {
                fop_sjis.buf.extend_from_slice(&enc(&op_text)?);
                nop_sjis += 1;
            } else {
                fop_utf8.buf.extend_from_slice(op_text.as_bytes());
                nop_utf8 += 1;
            }
        }
        fop_sjis.maybe_flush()?;
        fop_utf8.maybe_flush()?;
        f5311.maybe_flush()?;
        f09b.maybe_flush()?;
        freg.maybe_flush()?;
        fhousing.maybe_flush()?;
    }
    debug_assert_eq!(recno - 1, n5311);

    // 5311 end record.
    {
        let b = &mut f5311.buf;
        b.extend_from_slice(b"3,");
        push_num(b, recno + 1);
        b.extend_from_slice(b"\r\n");
    }
    // Register trailer.
    {
        let mut rec = blank_record();
        rec[0] = b'9';
        rec[1..7].copy_from_slice(&ctx.insurer);
        let mut d = Vec::with_capacity(9);
        push_pad(&mut d, nreg, 9);
        rec[7..16].copy_from_slice(&d);
        freg.buf.extend_from_slice(&rec);
    }

    let (p5311, b5311) = f5311.finish()?;
    let (p09b, b09b) = f09b.finish()?;
    let (preg, breg) = freg.finish()?;
    let (phousing, bhousing) = fhousing.finish()?;
    fop_sjis.buf.extend_from_slice(b"</IkenshoList>\r\n");
    fop_utf8.buf.extend_from_slice(b"</IkenshoList>\n");
    let (pop_sjis, bop_sjis) = fop_sjis.finish()?;
    let (pop_utf8, bop_utf8) = fop_utf8.finish()?;

    let gaiji_table = gaiji_dir.join(format!("{ins}.tsv"));
    write_small(&gaiji_table, GAIJI_TSV.as_bytes())?;
    let job_file = out.join("job.toml");
    write_small(&job_file, job_toml(&ins).as_bytes())?;

    Ok(SampleSummary {
        files: vec![
            SampleFile { path: p5311, format: "kokuhoren_5311", data_records: n5311, bytes: b5311 },
            SampleFile { path: p09b, format: "nintei_09b", data_records: seq09b, bytes: b09b },
            SampleFile { path: preg, format: "insured_register_fixed", data_records: nreg, bytes: breg },
            SampleFile { path: phousing, format: "housing_equipment_utf8", data_records: nhousing, bytes: bhousing },
            SampleFile { path: pop_sjis, format: "ikensho_xml", data_records: nop_sjis, bytes: bop_sjis },
            SampleFile { path: pop_utf8, format: "ikensho_xml", data_records: nop_utf8, bytes: bop_utf8 },
        ],
        job_file,
        gaiji_table,
    })
}

// ---------------------------------------------------------------------------------------------
// Static texts

/// The 外字 table. F044 is used in the data (about one person in 2,000) but deliberately absent.
const GAIJI_TSV: &str = "code\tunicode\tmj_name\tnote\n\
F040\tU+845B U+E0100\t\t葛 (IVS: 下部がヒの字形) 葛西・葛城\n\
F041\tU+20BB7\t\t𠮷 (つちよし) 𠮷田・𠮷川\n\
F042\tU+9089\tMJ012345\t邉 の異体字 (MJ図形名は見本の値) 渡邉\n\
F043\tU+2550E\t\t𥔎 (たつさき) 山𥔎・宮𥔎\n";

fn job_toml(ins: &str) -> String {
    format!(
        "# Generated by `kiban sample generate`.\n\
name = \"sample-{ins}\"\n\
insurer_no = \"{ins}\"\n\
store = \"store\"\n\
gaiji = \"gaiji/{ins}.tsv\"\n\
\n\
[[sources]]\n\
path = \"hihokensha_{ins}.dat\"\n\
mapping = \"insured_register_fixed\"\n\
\n\
[[sources]]\n\
path = \"5311_{ins}_*.csv\"\n\
mapping = \"kokuhoren_5311\"\n\
\n\
[[sources]]\n\
path = \"nintei_09B_{ins}_*.csv\"\n\
mapping = \"nintei_09b\"\n\
\n\
[[sources]]\n\
path = \"housing_{ins}_*.csv\"\n\
mapping = \"housing_equipment_utf8\"\n\
\n\
[[sources]]\n\
path = \"ikensho_{ins}_*.xml\"\n\
mapping = \"ikensho_xml\"\n"
    )
}

/// Doctors' names. `\u{E001}` is 外字 F041 (𠮷 in the 外字 table): the Shift_JIS file carries it as
/// a user-defined character, the UTF-8 file as the PUA code point (both mapped by the table).
const DOCTORS: [&str; 8] = ["山田 太郎", "佐藤 花子", "渡邉 誠", "髙橋 一郎", "\u{E001}田 健", "鈴木 恵子", "中村 直樹", "小林 由美"];

/// 特記事項: with markup characters (escaped as entities), line breaks, and text outside CP932
/// (𠮷, 𥔎) that the Shift_JIS file writes as character references.
const OPINION_REMARKS: [&str; 7] = [
    "",
    "脳梗塞後遺症により右片麻痺あり。\n歩行時に転倒の危険が高い。",
    "血圧 <140/90> を目標に内服調整中 & 週1回通院。",
    "認知症の進行あり（ＨＤＳ－Ｒ １５点）。家族の介護負担が大きい。",
    "娘（𠮷田 様方）と同居。山𥔎医院から紹介。",
    "\"夜間せん妄\" に注意。服薬は家族が管理。",
    "特記すべき事項なし",
];

/// 記入項目 texts: 1 身長, 2 体重, 3 診断名, 4 発症年月日 (as written), 5 服薬内容.
const DIAGNOSES: [&str; 6] =
    ["脳梗塞後遺症", "アルツハイマー型認知症", "変形性膝関節症", "パーキンソン病", "心不全", "骨粗鬆症・腰椎圧迫骨折"];

/// 認知症高齢者の日常生活自立度 codes, including the NEC special characters Ⅰ–Ⅳ (CP932 87xx).
const DEMENTIA_LEVELS: [&str; 9] = ["自立", "Ⅰ", "Ⅱa", "Ⅱb", "Ⅲa", "Ⅲb", "Ⅳ", "M", "Ⅱa"];
const BEDRIDDEN_LEVELS: [&str; 9] = ["自立", "J1", "J2", "A1", "A2", "B1", "B2", "C1", "C2"];

/// XML text with `&`, `<`, `>` escaped; in Shift_JIS, characters CP932 cannot hold become
/// character references.
fn push_xml_text(out: &mut String, text: &str, sjis: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' if sjis => out.push_str("\r\n"),
            c if sjis && (c as u32) > 0xFFFF => {
                use std::fmt::Write;
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// One `<Ikensho>` of an application whose opinion has arrived: items 1–113 as codes that follow
/// the application's severity, 記入項目, and sometimes 特記事項 (in CDATA in some UTF-8 ones).
fn write_opinion(ctx: &Ctx, p: &Person, a: &App, institution: u64, sjis: bool, out: &mut String, w: &mut Rng) {
    use std::fmt::Write;
    let eol = if sjis { "\r\n" } else { "\n" };
    let date = |d: i32| {
        let mut b = Vec::with_capacity(10);
        push_iso_date(&mut b, d);
        String::from_utf8_lossy(&b).to_string()
    };
    let written = (a.op_recv - w.range(1, 5)).max(a.op_req.max(a.date));
    let ins = std::str::from_utf8(&ctx.insurer).unwrap_or_default();
    let _ = write!(out, "  <Ikensho>{eol}    <InsuredNo>{}</InsuredNo>{eol}", String::from_utf8_lossy(&p.insured));
    let _ = write!(out, "    <ApplicationDate>{}</ApplicationDate>{eol}    <BranchNo>{}</BranchNo>{eol}", date(a.date), a.branch);
    let _ = write!(out, "    <MedicalInstitutionNo>{}1{:07}</MedicalInstitutionNo>{eol}", &ins[..2], institution * 7919 % 10_000_000);
    out.push_str("    <DoctorName>");
    push_xml_text(out, DOCTORS[(institution % DOCTORS.len() as u64) as usize], sjis);
    let _ = write!(out, "</DoctorName>{eol}    <WrittenOn>{}</WrittenOn>{eol}", date(written));
    let sev = a.sev.min(1000);
    let level = |n: usize| ((sev as usize * n) / 1001).min(n - 1);
    for no in 1..=113u32 {
        let value: String = match no {
            1..=12 => (if w.chance(sev / 8) { "1" } else { "0" }).into(),
            13 => BEDRIDDEN_LEVELS[level(9)].into(),
            14 => DEMENTIA_LEVELS[level(9)].into(),
            15..=17 => (1 + level(4)).to_string(),
            18 | 31 | 32 => (if w.chance(sev * 6) { "1" } else { "0" }).into(),
            33 => (if w.chance(9000) { "1" } else { "2" }).into(),
            34 => (1 + w.index(3)).to_string(),
            85 => (1 + level(3)).to_string(),
            113 => (if w.chance(500) { "1" } else { "0" }).into(),
            _ => (if w.chance(sev * 4) { "1" } else { "0" }).into(),
        };
        // A few systems leave unchecked boxes out.
        if value == "0" && no > 18 && w.chance(300) {
            continue;
        }
        let _ = write!(out, "    <Item no=\"{no}\" value=\"");
        push_xml_text(out, &value, sjis);
        let _ = write!(out, "\"/>{eol}");
    }
    let height = 1450 + w.below(350);
    let weight = 350 + w.below(450);
    let _ = write!(out, "    <Entry no=\"1\">{}.{}</Entry>{eol}", height / 10, height % 10);
    let _ = write!(out, "    <Entry no=\"2\">{}.{}</Entry>{eol}", weight / 10, weight % 10);
    out.push_str("    <Entry no=\"3\">");
    push_xml_text(out, DIAGNOSES[w.index(DIAGNOSES.len())], sjis);
    let _ = write!(out, "</Entry>{eol}");
    if w.chance(5000) {
        let onset = a.date - w.range(200, 2000);
        let _ = write!(out, "    <Entry no=\"4\">{}</Entry>{eol}", date(onset));
    }
    let remarks = OPINION_REMARKS[w.index(OPINION_REMARKS.len())];
    if !remarks.is_empty() {
        out.push_str("    <Remarks>");
        if !sjis && w.chance(3000) && !remarks.contains("]]>") {
            let _ = write!(out, "<![CDATA[{remarks}]]>");
        } else {
            push_xml_text(out, remarks, sjis);
        }
        let _ = write!(out, "</Remarks>{eol}");
    }
    let _ = write!(out, "  </Ikensho>{eol}");
}

/// The header row of the 住宅改修・福祉用具 CSV (mappings/housing_equipment_utf8.toml).
const HOUSING_HEADER: &str = "保険者番号,被保険者番号,種別,支給申請日,支給決定日,サービス提供年月,事業所番号,費用額,保険給付額,利用者負担額,給付率,限度額リセット区分,備考\r\n";

/// 備考 texts: plain ones, and ones that need RFC 4180 quoting (comma, quote, CRLF) or hold
/// characters outside the BMP (𠮷 U+20BB7, 𥔎 U+2550E) and an ideographic variation sequence
/// (葛 U+845B + U+E0100), which must come out of the pipeline exactly as written.
const HOUSING_REMARKS: [&str; 8] = [
    "手すりの取付け（玄関・廊下）",
    "段差の解消, 引き戸への扉の取替え",
    "洋式便器等への便器の取替え\r\n工事は2回に分けて実施",
    "申請者の記載どおり \"𠮷田\" 様方",
    "葛\u{E0100}飾の事業所に委託",
    "腰掛便座・入浴補助用具",
    "山𥔎様より「,」を含む住所で申請",
    "",
];

/// One RFC 4180 field: quoted when it holds a comma, a quote or a line break.
fn push_csv_text(b: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\r', '\n']) {
        b.push(b'"');
        b.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        b.push(b'"');
    } else {
        b.extend_from_slice(text.as_bytes());
    }
}

/// About 15 % of the persons with a certification get a 住宅改修 or 福祉用具購入 decision this month
/// (some both). Returns the records written.
fn write_housing(ctx: &Ctx, p: &Person, b: &mut Vec<u8>, w: &mut Rng) -> u64 {
    if p.n_cert == 0 || !w.chance(1500) {
        return 0;
    }
    let kinds: &[u8] = if w.chance(1500) {
        &[1, 2]
    } else if w.chance(4000) {
        &[1]
    } else {
        &[2]
    };
    for &kind in kinds {
        let applied = ctx.c - w.range(20, 45);
        let decided = applied + w.range(3, 15);
        let (y, m, _) = civil(applied - 10);
        let cost: u64 = if kind == 1 { 100 * (100 + w.below(1_900)) } else { 100 * (50 + w.below(950)) };
        let rate: u64 = [90, 80, 70][w.weighted(&[80, 12, 8])];
        let benefit = cost * rate / 100;
        b.extend_from_slice(&ctx.insurer);
        b.push(b',');
        b.extend_from_slice(&p.insured);
        b.push(b',');
        b.push(b'0' + kind);
        b.push(b',');
        push_date8(b, applied);
        b.push(b',');
        push_date8(b, decided);
        b.push(b',');
        push_pad(b, y.max(0) as u64, 4);
        push_pad(b, u64::from(m), 2);
        b.push(b',');
        b.extend_from_slice(&ctx.office_no(1 + (p.ident >> 20) as u32 % 300 + u32::from(kind) * 1000));
        b.push(b',');
        push_num(b, cost);
        b.push(b',');
        push_num(b, benefit);
        b.push(b',');
        push_num(b, cost - benefit);
        b.push(b',');
        push_num(b, rate);
        b.push(b',');
        b.push(if w.chance(9500) {
            b'0'
        } else if w.chance(5000) {
            b'1'
        } else {
            b'2'
        });
        b.push(b',');
        push_csv_text(b, HOUSING_REMARKS[w.index(HOUSING_REMARKS.len())]);
        b.extend_from_slice(b"\r\n");
    }
    kinds.len() as u64
}

/// (prefecture name, first three digits of a typical 郵便番号).
const PREFS: [(&str, u32); 47] = [
    ("北海道", 60),
    ("青森県", 30),
    ("岩手県", 20),
    ("宮城県", 980),
    ("秋田県", 10),
    ("山形県", 990),
    ("福島県", 960),
    ("茨城県", 310),
    ("栃木県", 320),
    ("群馬県", 370),
    ("埼玉県", 330),
    ("千葉県", 260),
    ("東京都", 100),
    ("神奈川県", 211),
    ("新潟県", 950),
    ("富山県", 930),
    ("石川県", 920),
    ("福井県", 910),
    ("山梨県", 400),
    ("長野県", 380),
    ("岐阜県", 500),
    ("静岡県", 420),
    ("愛知県", 460),
    ("三重県", 514),
    ("滋賀県", 520),
    ("京都府", 600),
    ("大阪府", 530),
    ("兵庫県", 650),
    ("奈良県", 630),
    ("和歌山県", 640),
    ("鳥取県", 680),
    ("島根県", 690),
    ("岡山県", 700),
    ("広島県", 730),
    ("山口県", 750),
    ("徳島県", 770),
    ("香川県", 760),
    ("愛媛県", 790),
    ("高知県", 780),
    ("福岡県", 810),
    ("佐賀県", 840),
    ("長崎県", 850),
    ("熊本県", 860),
    ("大分県", 870),
    ("宮崎県", 880),
    ("鹿児島県", 890),
    ("沖縄県", 900),
];

/// A few well-known insurers (first five digits): city, wards, telephone area code.
const KNOWN_CITIES: [(&str, &str, &[&str], &str); 8] = [
    ("14130", "川崎市", &["川崎区", "幸区", "中原区", "高津区", "宮前区", "多摩区", "麻生区"], "044"),
    ("14100", "横浜市", &["鶴見区", "神奈川区", "西区", "中区", "港北区", "青葉区", "戸塚区"], "045"),
    ("13101", "千代田区", &[], "03"),
    ("01100", "札幌市", &["中央区", "北区", "東区", "白石区", "豊平区"], "011"),
    ("27100", "大阪市", &["北区", "都島区", "福島区", "此花区", "中央区", "天王寺区"], "06"),
    ("23100", "名古屋市", &["千種区", "東区", "北区", "西区", "中村区", "中区"], "052"),
    ("26100", "京都市", &["北区", "上京区", "左京区", "中京区", "東山区"], "075"),
    ("40130", "福岡市", &["東区", "博多区", "中央区", "南区", "西区"], "092"),
];
/// Fictitious city names for other insurers.
const FALLBACK_CITIES: [&str; 4] = ["あおば市", "ひかり野市", "さくら野市", "みなと台市"];

/// Towns (町名). 﨑 (FAB1) and 髙 (FBFC) are CP932 extensions; 十, 能 and 表 have 0x5C as
/// their second byte.
const TOWNS: [&str; 40] = [
    "本町",
    "栄町",
    "緑町",
    "旭町",
    "幸町",
    "若葉台",
    "桜ケ丘",
    "中央",
    "東町",
    "西町",
    "南町",
    "北町",
    "大﨑町",
    "髙田町",
    "十日市場町",
    "能見台",
    "表町",
    "宮前町",
    "新町",
    "元町",
    "松が丘",
    "梅ケ丘",
    "稲田堤",
    "久地",
    "溝口",
    "上小田中",
    "下小田中",
    "新城",
    "木月",
    "井田",
    "日吉",
    "鷺沼",
    "向ヶ丘",
    "登戸",
    "宿河原",
    "中野島",
    "百合丘",
    "生田",
    "菅",
    "五反田",
];

/// Building names; ①, ②, ㈱ are NEC special characters, ～ is 0x8160.
const BUILDINGS: [&str; 13] = [
    "グリーンハイツ",
    "コーポさくら",
    "メゾン緑",
    "サンハイツ①",
    "㈱丸髙社宅",
    "レジデンス\u{FF5E}さくら\u{FF5E}",
    "ソレイユ溝口",
    "パークホームズ",
    "県営住宅",
    "市営若葉台団地",
    "ハイツ表",
    "ロイヤルマンション②",
    "ヴィラ能見台",
];

/// (漢字, カナ). 十, 能, 表 have a 0x5C trail byte; 髙, 﨑, 德 are IBM/NEC extensions.
const SURNAMES: [(&str, &str); 126] = [
    ("佐藤", "ｻﾄｳ"),
    ("鈴木", "ｽｽﾞｷ"),
    ("高橋", "ﾀｶﾊｼ"),
    ("田中", "ﾀﾅｶ"),
    ("伊藤", "ｲﾄｳ"),
    ("渡辺", "ﾜﾀﾅﾍﾞ"),
    ("山本", "ﾔﾏﾓﾄ"),
    ("中村", "ﾅｶﾑﾗ"),
    ("小林", "ｺﾊﾞﾔｼ"),
    ("加藤", "ｶﾄｳ"),
    ("吉田", "ﾖｼﾀﾞ"),
    ("山田", "ﾔﾏﾀﾞ"),
    ("佐々木", "ｻｻｷ"),
    ("山口", "ﾔﾏｸﾞﾁ"),
    ("松本", "ﾏﾂﾓﾄ"),
    ("井上", "ｲﾉｳｴ"),
    ("木村", "ｷﾑﾗ"),
    ("林", "ﾊﾔｼ"),
    ("斎藤", "ｻｲﾄｳ"),
    ("清水", "ｼﾐｽﾞ"),
    ("山崎", "ﾔﾏｻﾞｷ"),
    ("森", "ﾓﾘ"),
    ("池田", "ｲｹﾀﾞ"),
    ("橋本", "ﾊｼﾓﾄ"),
    ("阿部", "ｱﾍﾞ"),
    ("石川", "ｲｼｶﾜ"),
    ("山下", "ﾔﾏｼﾀ"),
    ("中島", "ﾅｶｼﾞﾏ"),
    ("石井", "ｲｼｲ"),
    ("小川", "ｵｶﾞﾜ"),
    ("前田", "ﾏｴﾀﾞ"),
    ("岡田", "ｵｶﾀﾞ"),
    ("長谷川", "ﾊｾｶﾞﾜ"),
    ("藤田", "ﾌｼﾞﾀ"),
    ("後藤", "ｺﾞﾄｳ"),
    ("近藤", "ｺﾝﾄﾞｳ"),
    ("村上", "ﾑﾗｶﾐ"),
    ("遠藤", "ｴﾝﾄﾞｳ"),
    ("青木", "ｱｵｷ"),
    ("坂本", "ｻｶﾓﾄ"),
    ("斉藤", "ｻｲﾄｳ"),
    ("福田", "ﾌｸﾀﾞ"),
    ("太田", "ｵｵﾀ"),
    ("西村", "ﾆｼﾑﾗ"),
    ("藤井", "ﾌｼﾞｲ"),
    ("金子", "ｶﾈｺ"),
    ("岡本", "ｵｶﾓﾄ"),
    ("藤原", "ﾌｼﾞﾜﾗ"),
    ("中野", "ﾅｶﾉ"),
    ("三浦", "ﾐｳﾗ"),
    ("原田", "ﾊﾗﾀﾞ"),
    ("中川", "ﾅｶｶﾞﾜ"),
    ("松田", "ﾏﾂﾀﾞ"),
    ("竹内", "ﾀｹｳﾁ"),
    ("小野", "ｵﾉ"),
    ("田村", "ﾀﾑﾗ"),
    ("中山", "ﾅｶﾔﾏ"),
    ("和田", "ﾜﾀﾞ"),
    ("石田", "ｲｼﾀﾞ"),
    ("森田", "ﾓﾘﾀ"),
    ("上田", "ｳｴﾀﾞ"),
    ("原", "ﾊﾗ"),
    ("内田", "ｳﾁﾀﾞ"),
    ("柴田", "ｼﾊﾞﾀ"),
    ("酒井", "ｻｶｲ"),
    ("宮崎", "ﾐﾔｻﾞｷ"),
    ("横山", "ﾖｺﾔﾏ"),
    ("高木", "ﾀｶｷﾞ"),
    ("安藤", "ｱﾝﾄﾞｳ"),
    ("宮本", "ﾐﾔﾓﾄ"),
    ("大野", "ｵｵﾉ"),
    ("小島", "ｺｼﾞﾏ"),
    ("谷口", "ﾀﾆｸﾞﾁ"),
    ("今井", "ｲﾏｲ"),
    ("工藤", "ｸﾄﾞｳ"),
    ("高田", "ﾀｶﾀﾞ"),
    ("増田", "ﾏｽﾀﾞ"),
    ("丸山", "ﾏﾙﾔﾏ"),
    ("杉山", "ｽｷﾞﾔﾏ"),
    ("村田", "ﾑﾗﾀ"),
    ("大塚", "ｵｵﾂｶ"),
    ("新井", "ｱﾗｲ"),
    ("小山", "ｺﾔﾏ"),
    ("平野", "ﾋﾗﾉ"),
    ("藤本", "ﾌｼﾞﾓﾄ"),
    ("河野", "ｺｳﾉ"),
    ("上野", "ｳｴﾉ"),
    ("野口", "ﾉｸﾞﾁ"),
    ("武田", "ﾀｹﾀﾞ"),
    ("松井", "ﾏﾂｲ"),
    ("千葉", "ﾁﾊﾞ"),
    ("岩崎", "ｲﾜｻｷ"),
    ("菅原", "ｽｶﾞﾜﾗ"),
    ("木下", "ｷﾉｼﾀ"),
    ("久保", "ｸﾎﾞ"),
    ("佐野", "ｻﾉ"),
    ("野村", "ﾉﾑﾗ"),
    ("松尾", "ﾏﾂｵ"),
    ("菊地", "ｷｸﾁ"),
    ("杉本", "ｽｷﾞﾓﾄ"),
    ("市川", "ｲﾁｶﾜ"),
    ("古川", "ﾌﾙｶﾜ"),
    ("大西", "ｵｵﾆｼ"),
    ("島田", "ｼﾏﾀﾞ"),
    ("水野", "ﾐｽﾞﾉ"),
    ("桜井", "ｻｸﾗｲ"),
    ("高野", "ﾀｶﾉ"),
    ("渡部", "ﾜﾀﾅﾍﾞ"),
    ("吉川", "ﾖｼｶﾜ"),
    ("山内", "ﾔﾏｳﾁ"),
    ("服部", "ﾊｯﾄﾘ"),
    ("辻", "ﾂｼﾞ"),
    ("表", "ｵﾓﾃ"),
    ("十河", "ｿｺﾞｳ"),
    ("能登", "ﾉﾄ"),
    ("別府", "ﾍﾞｯﾌﾟ"),
    ("日向", "ﾋｭｳｶﾞ"),
    ("髙橋", "ﾀｶﾊｼ"),
    ("山﨑", "ﾔﾏｻﾞｷ"),
    ("髙木", "ﾀｶｷﾞ"),
    ("宮﨑", "ﾐﾔｻﾞｷ"),
    ("德永", "ﾄｸﾅｶﾞ"),
    ("金", "ｷﾑ"),
    ("朴", "ﾊﾟｸ"),
    ("李", "ｲ"),
    ("長谷部", "ﾊｾﾍﾞ"),
];

const MALE: [(&str, &str); 40] = [
    ("清", "ｷﾖｼ"),
    ("茂", "ｼｹﾞﾙ"),
    ("勇", "ｲｻﾑ"),
    ("実", "ﾐﾉﾙ"),
    ("進", "ｽｽﾑ"),
    ("博", "ﾋﾛｼ"),
    ("弘", "ﾋﾛｼ"),
    ("正", "ﾀﾀﾞｼ"),
    ("稔", "ﾐﾉﾙ"),
    ("昭", "ｱｷﾗ"),
    ("修", "ｵｻﾑ"),
    ("武", "ﾀｹｼ"),
    ("豊", "ﾕﾀｶ"),
    ("和夫", "ｶｽﾞｵ"),
    ("正雄", "ﾏｻｵ"),
    ("義雄", "ﾖｼｵ"),
    ("一郎", "ｲﾁﾛｳ"),
    ("健二", "ｹﾝｼﾞ"),
    ("三郎", "ｻﾌﾞﾛｳ"),
    ("幸雄", "ﾕｷｵ"),
    ("秀夫", "ﾋﾃﾞｵ"),
    ("勝", "ﾏｻﾙ"),
    ("隆", "ﾀｶｼ"),
    ("誠", "ﾏｺﾄ"),
    ("浩二", "ｺｳｼﾞ"),
    ("功", "ｲｻｵ"),
    ("孝", "ﾀｶｼ"),
    ("敏夫", "ﾄｼｵ"),
    ("治", "ｵｻﾑ"),
    ("保", "ﾀﾓﾂ"),
    ("忠", "ﾀﾀﾞｼ"),
    ("一平", "ｲｯﾍﾟｲ"),
    ("鉄平", "ﾃｯﾍﾟｲ"),
    ("源次郎", "ｹﾞﾝｼﾞﾛｳ"),
    ("直樹", "ﾅｵｷ"),
    ("健一", "ｹﾝｲﾁ"),
    ("聡", "ｻﾄｼ"),
    ("大輔", "ﾀﾞｲｽｹ"),
    ("善之助", "ｾﾞﾝﾉｽｹ"),
    ("權三", "ｺﾞﾝｿﾞｳ"),
];

const FEMALE: [(&str, &str); 40] = [
    ("和子", "ｶｽﾞｺ"),
    ("幸子", "ｻﾁｺ"),
    ("節子", "ｾﾂｺ"),
    ("洋子", "ﾖｳｺ"),
    ("恵子", "ｹｲｺ"),
    ("京子", "ｷｮｳｺ"),
    ("悦子", "ｴﾂｺ"),
    ("久子", "ﾋｻｺ"),
    ("美代子", "ﾐﾖｺ"),
    ("ハル", "ﾊﾙ"),
    ("キヨ", "ｷﾖ"),
    ("トミ", "ﾄﾐ"),
    ("フミ", "ﾌﾐ"),
    ("千代", "ﾁﾖ"),
    ("静子", "ｼｽﾞｺ"),
    ("光子", "ﾐﾂｺ"),
    ("文子", "ﾌﾐｺ"),
    ("昭子", "ｱｷｺ"),
    ("敏子", "ﾄｼｺ"),
    ("照子", "ﾃﾙｺ"),
    ("房子", "ﾌｻｺ"),
    ("君子", "ｷﾐｺ"),
    ("美智子", "ﾐﾁｺ"),
    ("典子", "ﾉﾘｺ"),
    ("弘子", "ﾋﾛｺ"),
    ("裕子", "ﾕｳｺ"),
    ("信子", "ﾉﾌﾞｺ"),
    ("綾子", "ｱﾔｺ"),
    ("ヨシ", "ﾖｼ"),
    ("八重子", "ﾔｴｺ"),
    ("花子", "ﾊﾅｺ"),
    ("由美子", "ﾕﾐｺ"),
    ("真由美", "ﾏﾕﾐ"),
    ("明美", "ｱｹﾐ"),
    ("智子", "ﾄﾓｺ"),
    ("榮子", "ｴｲｺ"),
    ("ヱイ", "ｴｲ"),
    ("ゑみ", "ｴﾐ"),
    ("靜", "ｼｽﾞ"),
    ("チヨ", "ﾁﾖ"),
];

/// Full names of foreign residents (全角カタカナ in the kanji field), with sex.
const FOREIGN: [(&str, &str, u8); 4] = [
    ("ジョンソン　ポール", "ｼﾞｮﾝｿﾝ ﾎﾟｰﾙ", 1),
    ("ガルシア　マリア", "ｶﾞﾙｼｱ ﾏﾘｱ", 2),
    ("サントス　ジョゼ", "ｻﾝﾄｽ ｼﾞｮｾﾞ", 1),
    ("グエン　ティ　ホア", "ｸﾞｴﾝ ﾃｨ ﾎｱ", 2),
];

/// Surnames with a 外字 (PUA U+E000.. = CP932 F040..). The last one (F044) is not in the table.
const GAIJI_SURNAMES: [(&str, &str); 8] = [
    ("\u{E000}西", "ｶｻｲ"),
    ("\u{E000}城", "ｶﾂﾗｷﾞ"),
    ("\u{E001}田", "ﾖｼﾀﾞ"),
    ("\u{E001}川", "ﾖｼｶﾜ"),
    ("渡\u{E002}", "ﾜﾀﾅﾍﾞ"),
    ("山\u{E003}", "ﾔﾏｻﾞｷ"),
    ("宮\u{E003}", "ﾐﾔｻﾞｷ"),
    ("渡\u{E004}", "ﾜﾀﾅﾍﾞ"),
];
const GAIJI_UNMAPPED: u8 = 7;

const FACILITIES: [&str; 5] = [
    "特別養護老人ホーム　さくら苑",
    "介護老人保健施設　みどりの里",
    "医療法人社団　髙木病院",
    "グループホーム　ひまわり",
    "㈱ケアサポート　サービス付き高齢者向け住宅",
];

const COMMITTEE_TEXTS: [&str; 8] = [
    "状態は安定しており有効期間を延長する",
    "認知症の進行に留意すること",
    "転倒リスクが高く住環境の整備が望ましい",
    "介護者の負担軽減のため短期入所の活用を検討",
    "週２\u{FF5E}３回の通所介護が望ましい",
    "特記事項なし",
    "状態不安定のため有効期間を短縮する",
    "主治医意見書と調査結果に整合性あり",
];

const COMMENTS: [&str; 7] = [
    "本人・家族同席で調査",
    "入院中のため病院で調査実施",
    "施設入所中",
    "①屋内の移動に見守りが必要",
    "電話連絡は長女宅へ",
    "表記の確認済み",
    "聴力低下あり筆談併用",
];

/// Answer pattern of each of the 74 基本調査 items (reference/survey-items-09B.tsv), as the
/// number after "P".
const ITEM_PATTERN: [u8; 74] = [
    1, 1, 1, 1, 1, 1, 1, 1, 1, // 1-1, 1-2
    2, 2, 3, 4, 2, 2, 4, 6, 7, 8, 9, // 1-3 .. 1-13
    10, 10, 11, 10, 10, 10, 12, 12, 12, 10, 10, 13, // 2-1 .. 2-12
    14, 15, 15, 15, 15, 15, 15, 16, 16, // 3-1 .. 3-9
    16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, // 4-1 .. 4-15
    12, 12, 17, 16, 10, 10, // 5-1 .. 5-6
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 6-1 .. 6-12
];

/// Highest answer code of an answer pattern (reference/survey-answer-patterns.tsv).
const fn pattern_max(p: u8) -> u8 {
    match p {
        1 | 15 => 2,
        2 | 4 | 7 | 11 | 12 | 13 | 16 => 3,
        3 | 6 | 10 | 14 | 17 => 4,
        8 | 9 => 5,
        _ => 1,
    }
}

/// 要介護状態区分 codes of recipients and their weights.
const LEVELS: [u8; 9] = [1, 6, 12, 13, 21, 22, 23, 24, 25];
const LEVEL_WEIGHTS: [u32; 9] = [100, 300, 1400, 1400, 2000, 1700, 1300, 1100, 700];
const LADDER: [u8; 7] = [12, 13, 21, 22, 23, 24, 25];

fn limit_units(level: u8) -> u64 {
    match level {
        6 | 12 => 5032,
        13 => 10531,
        21 => 16765,
        22 => 19705,
        23 => 27048,
        24 => 30938,
        25 => 36217,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Dates (days since 1970-01-01)

const NONE: i32 = i32::MIN;
const OPEN: i32 = i32::MAX;

const fn dfc(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

const fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The date (y, m, d), with d clamped to the month's last day.
fn ymd_clamped(y: i32, m: u32, d: u32) -> i32 {
    dfc(y, m, d.min(days_in_month(y, m)))
}

/// Last day of the month `k` months after the month of `d`.
fn month_end(d: i32, k: i32) -> i32 {
    let (y, m, _) = civil(d);
    let t = y * 12 + (m as i32 - 1) + k;
    let (ny, nm) = (t.div_euclid(12), t.rem_euclid(12) as u32 + 1);
    dfc(ny, nm, days_in_month(ny, nm))
}

/// 年齢到達日: the day before the `years`-th birthday (29 Feb births: 28 Feb in common years).
fn age_eve(birth: i32, years: i32) -> i32 {
    let (y, m, d) = civil(birth);
    let ny = y + years;
    let bd = if m == 2 && d == 29 && !is_leap(ny) { dfc(ny, 3, 1) } else { dfc(ny, m, d) };
    bd - 1
}

fn age_on(birth: i32, d: i32) -> i32 {
    let (by, bm, bd) = civil(birth);
    let (y, m, dd) = civil(d);
    let mut a = y - by;
    if (m, dd) < (bm, bd) {
        a -= 1;
    }
    a
}

const TAISHO: i32 = dfc(1912, 7, 30);
const SHOWA: i32 = dfc(1926, 12, 25);
const HEISEI: i32 = dfc(1989, 1, 8);
const REIWA: i32 = dfc(2019, 5, 1);
const KAIGO_START: i32 = dfc(2000, 4, 1);

/// 和暦 GYYMMDD.
fn wareki(d: i32) -> [u8; 7] {
    let (y, m, dd) = civil(d);
    let (g, base) = if d >= REIWA {
        (5, 2018)
    } else if d >= HEISEI {
        (4, 1988)
    } else if d >= SHOWA {
        (3, 1925)
    } else if d >= TAISHO {
        (2, 1911)
    } else {
        (1, 1867)
    };
    let yy = (y - base).clamp(0, 99) as u32;
    [
        b'0' + g,
        b'0' + (yy / 10) as u8,
        b'0' + (yy % 10) as u8,
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'0' + (dd / 10) as u8,
        b'0' + (dd % 10) as u8,
    ]
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers

fn push_pad(b: &mut Vec<u8>, mut n: u64, w: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = 20;
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (20 - i)..w {
        b.push(b'0');
    }
    b.extend_from_slice(&tmp[i..]);
}

fn push_num(b: &mut Vec<u8>, n: u64) {
    push_pad(b, n, 0);
}

fn push_date8(b: &mut Vec<u8>, d: i32) {
    let (y, m, dd) = civil(d);
    push_pad(b, y.max(0) as u64, 4);
    b.push(b'0' + (m / 10) as u8);
    b.push(b'0' + (m % 10) as u8);
    b.push(b'0' + (dd / 10) as u8);
    b.push(b'0' + (dd % 10) as u8);
}

fn push_iso_date(b: &mut Vec<u8>, d: i32) {
    let (y, m, dd) = civil(d);
    push_pad(b, y.max(0) as u64, 4);
    b.push(b'-');
    b.push(b'0' + (m / 10) as u8);
    b.push(b'0' + (m % 10) as u8);
    b.push(b'-');
    b.push(b'0' + (dd / 10) as u8);
    b.push(b'0' + (dd % 10) as u8);
}

/// Full-width (double-byte) decimal digits: ０ is 0x824F.
fn push_fw_num(b: &mut Vec<u8>, n: u64) {
    let mut tmp = Vec::with_capacity(8);
    push_num(&mut tmp, n);
    for c in tmp {
        b.push(0x82);
        b.push(0x4F + (c - b'0'));
    }
}

/// Modulus-10 check digit of reference/codes.md (from the right, weights 2,1,2,1,…, digits of
/// each product added; check = (10 − sum mod 10) mod 10).
fn mod10_check(body: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, &c) in body.iter().rev().enumerate() {
        let d = u32::from(c.wrapping_sub(b'0') % 10);
        let p = if i % 2 == 0 { d * 2 } else { d };
        sum += p / 10 + p % 10;
    }
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// `digits` digits of `n` (zero padded) followed by their modulus-10 check digit.
fn with_check(n: u64, digits: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(digits + 1);
    push_pad(&mut b, n, digits);
    let c = mod10_check(&b);
    b.push(c);
    b
}

/// A CSV line under construction.
struct Csv<'a> {
    b: &'a mut Vec<u8>,
    n: u32,
    /// Write empty dates as `00000000` instead of nothing.
    zero: bool,
}

impl<'a> Csv<'a> {
    fn new(b: &'a mut Vec<u8>, zero: bool) -> Self {
        Csv { b, n: 0, zero }
    }
    #[inline]
    fn next(&mut self) {
        if self.n > 0 {
            self.b.push(b',');
        }
        self.n += 1;
    }
    fn empty(&mut self) {
        self.next();
    }
    fn empties(&mut self, k: u32) {
        for _ in 0..k {
            self.next();
        }
    }
    fn raw(&mut self, x: &[u8]) {
        self.next();
        self.b.extend_from_slice(x);
    }
    fn quoted(&mut self, x: &[u8]) {
        self.next();
        self.b.push(b'"');
        self.b.extend_from_slice(x);
        self.b.push(b'"');
    }
    fn maybe_quoted(&mut self, x: &[u8], q: bool) {
        if q && !x.is_empty() { self.quoted(x) } else { self.raw(x) }
    }
    fn digit(&mut self, d: u8) {
        self.next();
        self.b.push(b'0' + d);
    }
    fn num(&mut self, n: u64) {
        self.next();
        push_num(self.b, n);
    }
    fn pad(&mut self, n: u64, w: usize) {
        self.next();
        push_pad(self.b, n, w);
    }
    /// A two-digit code, blank when 0.
    fn code2(&mut self, n: u8) {
        self.next();
        if n > 0 {
            push_pad(self.b, u64::from(n), 2);
        }
    }
    fn date(&mut self, d: i32) {
        self.next();
        if d == NONE {
            if self.zero {
                self.b.extend_from_slice(b"00000000");
            }
        } else if d == OPEN {
            self.b.extend_from_slice(b"99999999");
        } else {
            push_date8(self.b, d);
        }
    }
    /// A value in tenths, written with one decimal (`523` → `52.3`).
    fn tenths(&mut self, t: u32) {
        self.next();
        push_num(self.b, u64::from(t / 10));
        self.b.push(b'.');
        self.b.push(b'0' + (t % 10) as u8);
    }
    fn end(self) -> u32 {
        self.b.extend_from_slice(b"\r\n");
        self.n
    }
}

// ---------------------------------------------------------------------------------------------
// PRNG

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (0 when n is 0).
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in lo..=hi (lo when hi < lo).
    #[inline]
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        if hi <= lo { lo } else { lo + self.below((i64::from(hi) - i64::from(lo) + 1) as u64) as i32 }
    }
    /// True with probability `per10k` / 10,000.
    #[inline]
    fn chance(&mut self, per10k: u32) -> bool {
        self.below(10_000) < u64::from(per10k)
    }
    fn weighted(&mut self, w: &[u32]) -> usize {
        let total: u32 = w.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, &wi) in w.iter().enumerate() {
            if x < wi {
                return i;
            }
            x -= wi;
        }
        w.len().saturating_sub(1)
    }
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

fn mix(a: u64, b: u64) -> u64 {
    let mut r = Rng(a ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    r.next()
}

// ---------------------------------------------------------------------------------------------
// Context and pools

struct NameP {
    kanji: Vec<u8>,
    kana: Vec<u8>,
}

struct Pools {
    surnames: Vec<NameP>,
    male: Vec<NameP>,
    female: Vec<NameP>,
    foreign: Vec<(NameP, u8)>,
    gaiji: Vec<NameP>,
    addr_head: Vec<u8>,
    wards: Vec<Vec<u8>>,
    towns: Vec<Vec<u8>>,
    buildings: Vec<Vec<u8>>,
    facilities: Vec<Vec<u8>>,
    committee_texts: Vec<Vec<u8>>,
    comments: Vec<Vec<u8>>,
    chome: Vec<u8>,
    banchi: Vec<u8>,
    ban: Vec<u8>,
    gou: Vec<u8>,
    hyphen: Vec<u8>,
    space: Vec<u8>,
    tou: Vec<u8>,
    wings: Vec<Vec<u8>>,
}

/// Encode to CP932 with the `Encoder` API; PUA U+E000–U+E757 become user-defined F040–F9FC.
fn enc(s: &str) -> Result<Vec<u8>, SampleError> {
    let mut out = Vec::with_capacity(s.len() * 2);
    let mut chunk = String::new();
    for ch in s.chars() {
        let cp = ch as u32;
        if (0xE000..=0xE757).contains(&cp) {
            enc_chunk(&chunk, &mut out, s)?;
            chunk.clear();
            let p = 8836 + (cp - 0xE000);
            let (lead, trail) = (p / 188, p % 188);
            out.push((lead + if lead < 0x1F { 0x81 } else { 0xC1 }) as u8);
            out.push((trail + if trail < 0x3F { 0x40 } else { 0x41 }) as u8);
        } else {
            chunk.push(ch);
        }
    }
    enc_chunk(&chunk, &mut out, s)?;
    Ok(out)
}

fn enc_chunk(chunk: &str, out: &mut Vec<u8>, whole: &str) -> Result<(), SampleError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let mut encoder = encoding_rs::SHIFT_JIS.new_encoder();
    let cap = encoder.max_buffer_length_from_utf8_without_replacement(chunk.len()).unwrap_or(chunk.len() * 4 + 16);
    let mut buf = vec![0u8; cap];
    let (res, _read, written) = encoder.encode_from_utf8_without_replacement(chunk, &mut buf, true);
    match res {
        encoding_rs::EncoderResult::InputEmpty => {
            out.extend_from_slice(&buf[..written]);
            Ok(())
        }
        _ => Err(SampleError::Unencodable(whole.to_string())),
    }
}

fn enc_pairs(xs: &[(&str, &str)]) -> Result<Vec<NameP>, SampleError> {
    xs.iter().map(|(k, n)| Ok(NameP { kanji: enc(k)?, kana: enc(n)? })).collect()
}

fn enc_all(xs: &[&str]) -> Result<Vec<Vec<u8>>, SampleError> {
    xs.iter().map(|s| enc(s)).collect()
}

struct Ctx {
    seed: u64,
    insurer: [u8; 6],
    insurer8: [u8; 8],
    pref: u8,
    /// 処理対象年月 as YYYYMM.
    yyyymm: [u8; 6],
    /// Last day of the processing month: 作成年月日 and the latest date in the data.
    c: i32,
    postal3: u32,
    phone_area: Vec<u8>,
    /// Era-boundary birth dates that give a possible age (40–105) on `c`.
    boundary_births: Vec<i32>,
    pools: Pools,
}

impl Ctx {
    fn new(opts: &SampleOptions) -> Result<Ctx, SampleError> {
        let ins = opts.insurer_no.as_bytes();
        if ins.len() != 6 || !ins.iter().all(u8::is_ascii_digit) {
            return Err(SampleError::InvalidInsurer(opts.insurer_no.clone()));
        }
        let pref = (ins[0] - b'0') * 10 + (ins[1] - b'0');
        if !(1..=47).contains(&pref) {
            return Err(SampleError::InvalidInsurer(opts.insurer_no.clone()));
        }
        let (y, m) = opts.month;
        if !(2005..=2099).contains(&y) || !(1..=12).contains(&m) {
            return Err(SampleError::InvalidMonth(y, m));
        }
        if opts.persons > MAX_PERSONS {
            return Err(SampleError::TooManyPersons(opts.persons));
        }
        let mut insurer = [0u8; 6];
        insurer.copy_from_slice(ins);
        let mut insurer8 = [b'0'; 8];
        insurer8[2..].copy_from_slice(ins);
        let mut ym = Vec::with_capacity(6);
        push_pad(&mut ym, y as u64, 4);
        push_pad(&mut ym, u64::from(m), 2);
        let mut yyyymm = [0u8; 6];
        yyyymm.copy_from_slice(&ym);
        let c = dfc(y, m, days_in_month(y, m));

        let (pref_name, postal3) = PREFS[usize::from(pref - 1)];
        let five = &opts.insurer_no[0..5];
        let (city, wards, area): (String, &[&str], String) = match KNOWN_CITIES.iter().find(|k| k.0 == five) {
            Some(k) => (k.1.to_string(), k.2, k.3.to_string()),
            None => {
                let h = ins.iter().fold(0usize, |a, &b| a * 31 + usize::from(b));
                let area = format!("0{}{}", 2 + (ins[3] - b'0') % 8, ins[4] - b'0');
                (FALLBACK_CITIES[h % FALLBACK_CITIES.len()].to_string(), &[], area)
            }
        };
        let pools = Pools {
            surnames: enc_pairs(&SURNAMES)?,
            male: enc_pairs(&MALE)?,
            female: enc_pairs(&FEMALE)?,
            foreign: FOREIGN
                .iter()
                .map(|(k, n, s)| Ok((NameP { kanji: enc(k)?, kana: enc(n)? }, *s)))
                .collect::<Result<_, SampleError>>()?,
            gaiji: enc_pairs(&GAIJI_SURNAMES)?,
            addr_head: enc(&format!("{pref_name}{city}"))?,
            wards: enc_all(wards)?,
            towns: enc_all(&TOWNS)?,
            buildings: enc_all(&BUILDINGS)?,
            facilities: enc_all(&FACILITIES)?,
            committee_texts: enc_all(&COMMITTEE_TEXTS)?,
            comments: enc_all(&COMMENTS)?,
            chome: enc("丁目")?,
            banchi: enc("番地")?,
            ban: enc("番")?,
            gou: enc("号")?,
            hyphen: enc("\u{FF0D}")?,
            space: enc("\u{3000}")?,
            tou: enc("棟")?,
            wings: enc_all(&["Ａ", "Ｂ", "Ｃ"])?,
        };
        let boundary_births = [dfc(1926, 12, 24), dfc(1926, 12, 25), dfc(1989, 1, 7), dfc(1989, 1, 8)]
            .into_iter()
            .filter(|&b| (40..=105).contains(&age_on(b, c)))
            .collect();
        Ok(Ctx { seed: opts.seed, insurer, insurer8, pref, yyyymm, c, postal3, phone_area: area.into_bytes(), boundary_births, pools })
    }

    /// 漢字氏名 (double-byte, 全角 space between surname and given name) and カナ氏名
    /// (half-width, ASCII space).
    fn name_bytes(&self, p: &Person, kanji: &mut Vec<u8>, kana: &mut Vec<u8>) {
        kanji.clear();
        kana.clear();
        let pl = &self.pools;
        let given = |g: u16| {
            let pool = if p.sex == 2 { &pl.female } else { &pl.male };
            &pool[usize::from(g) % pool.len()]
        };
        match p.name {
            NameSel::Foreign(i) => {
                let n = &pl.foreign[usize::from(i) % pl.foreign.len()].0;
                kanji.extend_from_slice(&n.kanji);
                kana.extend_from_slice(&n.kana);
            }
            NameSel::Regular { .. } | NameSel::Gaiji { .. } => {
                let (s, g) = match p.name {
                    NameSel::Gaiji { sur, given } => (&pl.gaiji[usize::from(sur) % pl.gaiji.len()], given),
                    NameSel::Regular { sur, given } => (&pl.surnames[usize::from(sur) % pl.surnames.len()], given),
                    NameSel::Foreign(_) => (&pl.surnames[0], 0),
                };
                let gn = given(g);
                kanji.extend_from_slice(&s.kanji);
                kanji.extend_from_slice(&pl.space);
                kanji.extend_from_slice(&gn.kanji);
                kana.extend_from_slice(&s.kana);
                kana.push(b' ');
                kana.extend_from_slice(&gn.kana);
            }
        }
    }

    /// 住所 (double-byte only).
    fn addr_bytes(&self, a: &Addr, out: &mut Vec<u8>) {
        let pl = &self.pools;
        out.clear();
        out.extend_from_slice(&pl.addr_head);
        if !pl.wards.is_empty() {
            out.extend_from_slice(&pl.wards[usize::from(a.ward) % pl.wards.len()]);
        }
        out.extend_from_slice(&pl.towns[usize::from(a.town) % pl.towns.len()]);
        let (n1, n2, n3) = (u64::from(a.n1), u64::from(a.n2), u64::from(a.n3));
        match a.style {
            0 => {
                push_fw_num(out, n1);
                out.extend_from_slice(&pl.chome);
                push_fw_num(out, n2);
                out.extend_from_slice(&pl.banchi);
                push_fw_num(out, n3);
            }
            1 => {
                push_fw_num(out, n1);
                out.extend_from_slice(&pl.hyphen);
                push_fw_num(out, n2);
                out.extend_from_slice(&pl.hyphen);
                push_fw_num(out, n3);
            }
            2 => {
                push_fw_num(out, n1 * 37 % 2999 + 1);
                out.extend_from_slice(&pl.banchi);
            }
            _ => {
                push_fw_num(out, n1);
                out.extend_from_slice(&pl.chome);
                push_fw_num(out, n2);
                out.extend_from_slice(&pl.ban);
                push_fw_num(out, n3);
                out.extend_from_slice(&pl.gou);
            }
        }
        if a.building > 0 {
            out.extend_from_slice(&pl.space);
            out.extend_from_slice(&pl.buildings[usize::from(a.building - 1) % pl.buildings.len()]);
            if a.wing > 0 {
                out.extend_from_slice(&pl.wings[usize::from(a.wing - 1) % pl.wings.len()]);
                out.extend_from_slice(&pl.tou);
            }
            push_fw_num(out, u64::from(a.room));
            out.extend_from_slice(&pl.gou);
        }
        if out.len() > 120 {
            // Never happens with these pools; keep whole double-byte characters anyway.
            out.truncate(120);
        }
    }

    fn postal(&self, a: &Addr) -> u32 {
        let last4 = (u32::from(a.town) * 53 + u32::from(a.ward) * 7 + 11) % 10_000;
        (self.postal3 % 1000) * 10_000 + last4
    }

    /// Another insurer of the same prefecture (施設所在保険者番号), 6 digits with check digit.
    fn other_insurer(&self, r: &mut Rng) -> u32 {
        let own = u32::from(self.insurer[2] - b'0') * 100 + u32::from(self.insurer[3] - b'0') * 10 + u32::from(self.insurer[4] - b'0');
        let mut muni = 201 + r.below(399) as u32;
        if muni == own {
            muni += 1;
        }
        let body = u64::from(self.pref) * 1000 + u64::from(muni);
        let b = with_check(body, 5);
        b.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'))
    }

    /// 介護保険事業所番号: prefecture 2 + kind 1 + area 2 + serial 4 + check 1.
    fn office_no(&self, serial: u32) -> Vec<u8> {
        let area = u64::from(self.insurer[2] - b'0') * 10 + u64::from(self.insurer[3] - b'0');
        let body = ((u64::from(self.pref) * 10 + 7) * 100 + area) * 10_000 + u64::from(serial % 10_000);
        with_check(body, 9)
    }
}

// ---------------------------------------------------------------------------------------------
// Person model

#[derive(Clone, Copy, PartialEq, Eq)]
enum NameSel {
    Regular { sur: u16, given: u16 },
    Foreign(u8),
    Gaiji { sur: u8, given: u16 },
}

#[derive(Clone, Copy, Default)]
struct Addr {
    ward: u8,
    town: u16,
    style: u8,
    n1: u16,
    n2: u16,
    n3: u16,
    building: u8,
    wing: u8,
    room: u16,
}

#[derive(Clone, Copy)]
struct RegRow {
    category: u8,
    acq: i32,
    acq_reason: u16,
    loss: i32,
    loss_reason: u16,
    /// 住所地特例区分: 0 blank, 1 非該当, 2 該当.
    sp: u8,
    facility: u32,
    sp_from: i32,
    sp_to: i32,
    issue: i32,
    addr: Addr,
}

impl Default for RegRow {
    fn default() -> Self {
        RegRow {
            category: 1,
            acq: NONE,
            acq_reason: 0,
            loss: NONE,
            loss_reason: 0,
            sp: 0,
            facility: 0,
            sp_from: NONE,
            sp_to: NONE,
            issue: NONE,
            addr: Addr::default(),
        }
    }
}

/// One 5311 row: the recipient's state as of `date`.
#[derive(Clone, Copy)]
struct Cert {
    date: i32,
    /// 異動区分 1 新規, 2 変更, 3 終了.
    kind: u8,
    /// 異動事由 1, 2 or 99.
    reason: u8,
    /// 申請種別 1 新規, 2 更新, 3 変更, 4 職権.
    app_kind: u8,
    app_date: i32,
    level: u8,
    from: i32,
    to: i32,
    plan_kind: u8,
    plan_office: u32,
    loss: i32,
}

impl Default for Cert {
    fn default() -> Self {
        Cert {
            date: NONE,
            kind: 1,
            reason: 1,
            app_kind: 1,
            app_date: NONE,
            level: 21,
            from: NONE,
            to: NONE,
            plan_kind: 0,
            plan_office: 0,
            loss: NONE,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Stage {
    Received,
    AwaitOpinion,
    AwaitPrimary,
    PrimaryJudged,
    AwaitCommittee,
    Decided,
}

impl Stage {
    fn lower(self) -> Stage {
        match self {
            Stage::Decided => Stage::AwaitCommittee,
            Stage::AwaitCommittee => Stage::PrimaryJudged,
            Stage::PrimaryJudged => Stage::AwaitPrimary,
            Stage::AwaitPrimary => Stage::AwaitOpinion,
            _ => Stage::Received,
        }
    }
}

/// One 09B application.
#[derive(Clone, Copy)]
struct App {
    date: i32,
    branch: u8,
    legal: u8,
    kind_code: u8,
    withdraw: u8,
    stage: Stage,
    op_req: i32,
    op_recv: i32,
    sv_req: i32,
    sv_date: i32,
    prim: i32,
    mat: i32,
    committee: i32,
    secondary: i32,
    primary_level: u8,
    result: u8,
    from: i32,
    to: i32,
    prev_level: u8,
    prev_from: i32,
    prev_to: i32,
    prev_app: i32,
    category: u8,
    age: u8,
    /// Severity 0–1000 for the survey answers.
    sev: u32,
}

impl Default for App {
    fn default() -> Self {
        App {
            date: NONE,
            branch: 0,
            legal: 1,
            kind_code: b'1',
            withdraw: 1,
            stage: Stage::Received,
            op_req: NONE,
            op_recv: NONE,
            sv_req: NONE,
            sv_date: NONE,
            prim: NONE,
            mat: NONE,
            committee: NONE,
            secondary: NONE,
            primary_level: 0,
            result: 0,
            from: NONE,
            to: NONE,
            prev_level: 0,
            prev_from: NONE,
            prev_to: NONE,
            prev_app: NONE,
            category: 1,
            age: 0,
            sev: 0,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hist {
    None,
    SpCur,
    SpPast,
    Reentry,
    Cat2to1,
}

struct Person {
    insured: [u8; 10],
    sex: u8,
    birth: i32,
    name: NameSel,
    reg: [RegRow; 2],
    n_reg: u8,
    certs: [Cert; 4],
    n_cert: u8,
    apps: [App; 2],
    n_app: u8,
    /// 資格取得年月日 of the 5311 rows.
    acq_5311: i32,
    /// 負担割合 1/2/3.
    ratio: u8,
    open_end: bool,
    apr_variant: bool,
    /// 負担段階 1–4 for 負担限度額 (0: none).
    cost_stage: u8,
    /// 給付制限: 0 none, 1 償還払化, 2 給付率引下げ.
    restr_kind: u8,
    restr_from: i32,
    restr_to: i32,
    sp_kind: Hist,
    facility: u32,
    sp_from: i32,
    sp_to: i32,
    disease: u8,
    proxy: u8,
    /// Seed of person-level numbers that must stay the same in every row.
    ident: u64,
}

fn insured_no(idx: u64) -> [u8; 10] {
    let bit = (idx.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63) & 1;
    let serial = 1_000_000 + idx * 2 + bit;
    let v = with_check(serial, 9);
    let mut out = [b'0'; 10];
    out.copy_from_slice(&v[..10]);
    out
}

fn birth_for_age(c: i32, age: i32, r: &mut Rng) -> i32 {
    let (cy, cm, cd) = civil(c);
    let hi = ymd_clamped(cy - age, cm, cd);
    let lo = ymd_clamped(cy - age - 1, cm, cd) + 1;
    r.range(lo, hi)
}

fn rand_addr(r: &mut Rng) -> Addr {
    let style = r.below(4) as u8;
    let building = if r.chance(3000) { 1 + r.below(BUILDINGS.len() as u64) as u8 } else { 0 };
    Addr {
        ward: r.below(16) as u8,
        town: r.below(TOWNS.len() as u64) as u16,
        style,
        n1: 1 + r.below(9) as u16,
        n2: 1 + r.below(40) as u16,
        n3: 1 + r.below(30) as u16,
        building,
        wing: if r.chance(2000) { 1 + r.below(3) as u8 } else { 0 },
        room: (1 + r.below(12) as u16) * 100 + 1 + r.below(10) as u16,
    }
}

fn drift(level: u8, r: &mut Rng) -> u8 {
    let pos = LADDER.iter().position(|&l| l == level).unwrap_or(0) as i32;
    let d = match r.weighted(&[1500, 5500, 2500, 500]) {
        0 => -1,
        1 => 0,
        2 => 1,
        _ => 2,
    };
    LADDER[(pos + d).clamp(0, LADDER.len() as i32 - 1) as usize]
}

fn worsen(level: u8, r: &mut Rng) -> u8 {
    let pos = LADDER.iter().position(|&l| l == level).unwrap_or(0) as i32;
    let d = if r.chance(7000) { 1 } else { 2 };
    LADDER[(pos + d).clamp(0, LADDER.len() as i32 - 1) as usize]
}

fn sev_of(level: u8) -> u32 {
    match level {
        1 => 30,
        6 => 50,
        12 => 100,
        13 => 180,
        21 => 280,
        22 => 400,
        23 => 550,
        24 => 700,
        25 => 850,
        _ => 200,
    }
}

/// 居宅サービス計画 for a new certification period.
fn plan_for(level: u8, r: &mut Rng) -> (u8, u32) {
    if level == 1 || !r.chance(7000) {
        return (0, 0);
    }
    let kind = if matches!(level, 6 | 12 | 13) {
        if r.chance(9000) { 3 } else { 2 }
    } else if r.chance(9700) {
        1
    } else {
        2
    };
    let office = if kind == 2 { 0 } else { 1 + r.below(300) as u32 };
    (kind, office)
}

/// Certification period end: the last day of the month `k` months on (the month of `from`
/// counts when `from` is the 1st).
fn period_end(from: i32, k: i32) -> i32 {
    let (_, _, d) = civil(from);
    month_end(from, if d == 1 { k - 1 } else { k })
}

/// Fill the stage dates of an application, lowering the target stage until its dates are not
/// after `c` (a scheduled 審査会 date may be).
fn chain(app: &mut App, target: Stage, c: i32, r: &mut Rng) {
    let a = app.date;
    let op_req = a + r.range(1, 4);
    let op_recv = op_req + r.range(7, 21);
    let sv_req = a + r.range(1, 4);
    let sv_date = sv_req + r.range(4, 14);
    let prim = op_recv.max(sv_date) + r.range(1, 5);
    let mat = prim + r.range(1, 4);
    let committee = mat + r.range(3, 8);
    let mut st = target;
    loop {
        let ok = match st {
            Stage::Decided => committee <= c,
            Stage::AwaitCommittee => mat <= c,
            Stage::PrimaryJudged => prim <= c,
            Stage::AwaitPrimary => op_recv <= c && sv_date <= c,
            Stage::AwaitOpinion => sv_date <= c,
            Stage::Received => true,
        };
        if ok {
            break;
        }
        st = st.lower();
    }
    app.stage = st;
    match st {
        Stage::Received => {
            if op_req <= c && r.chance(7000) {
                app.op_req = op_req;
                if op_recv <= c && r.chance(3000) {
                    app.op_recv = op_recv;
                }
            }
            if sv_req <= c && r.chance(7000) {
                app.sv_req = sv_req;
            }
        }
        _ => {
            app.op_req = op_req;
            app.sv_req = sv_req;
            app.sv_date = sv_date;
            if st >= Stage::AwaitPrimary {
                app.op_recv = op_recv;
            }
            if st >= Stage::PrimaryJudged {
                app.prim = prim;
            }
            if st >= Stage::AwaitCommittee {
                app.mat = mat;
                app.committee = committee;
            }
            if st >= Stage::Decided {
                app.secondary = committee;
            }
        }
    }
}

fn build(ctx: &Ctx, idx: u64) -> Person {
    let mut r = Rng::new(mix(ctx.seed, idx));
    let c = ctx.c;
    let forced: Option<u8> = if idx < 7 { Some(idx as u8) } else { None };
    let special = idx < 16;
    let unmapped = idx % 2000 == 199;

    // Sex, age, birth date.
    let mut sex: u8 = if r.chance(5600) { 2 } else { 1 };
    let want2 = r.chance(500);
    let mut age_t: i32 = if want2 { 40 + r.below(24) as i32 } else { 65 + ((r.below(36).min(r.below(36)) + r.below(6)) as i32).min(39) };
    if idx == 11 || idx == 12 {
        age_t = 75 + r.below(10) as i32;
    }
    let mut birth = birth_for_age(c, age_t, &mut r);
    let bb = &ctx.boundary_births;
    let boundary_roll = r.chance(2);
    if !bb.is_empty() {
        if idx == 9 {
            birth = bb[0];
        } else if idx == 10 {
            birth = bb[1 % bb.len()];
        } else if boundary_roll && !special {
            birth = bb[r.index(bb.len())];
        }
    }
    // The brief's literal era-boundary examples (see the module documentation).
    match idx {
        13 => birth = dfc(1989, 1, 7),
        14 => birth = dfc(1912, 7, 30),
        15 => birth = dfc(1923, 5, 10),
        _ => {}
    }
    let age = age_on(birth, c);
    // Person 13 while under 40: 被保険者区分 9 (その他), no certification, no application.
    let cat9 = idx == 13 && age < 40;
    let cat: u8 = if cat9 {
        9
    } else if age >= 65 {
        1
    } else {
        2
    };

    // Name.
    let given_roll = r.below(40) as u16;
    let name = if unmapped {
        NameSel::Gaiji { sur: GAIJI_UNMAPPED, given: given_roll }
    } else if matches!(idx, 2 | 3 | 4 | 8) {
        let sur = match idx {
            2 => 0,
            3 => 2,
            4 => 4,
            _ => 5,
        };
        NameSel::Gaiji { sur, given: given_roll }
    } else if r.chance(40) {
        NameSel::Gaiji { sur: r.below(7) as u8, given: given_roll }
    } else if r.chance(20) {
        let i = r.below(FOREIGN.len() as u64) as u8;
        sex = FOREIGN[usize::from(i)].2;
        NameSel::Foreign(i)
    } else {
        let n = SURNAMES.len() as u64;
        let sur = r.below(n).min(r.below(n)) as u16;
        NameSel::Regular { sur, given: given_roll }
    };

    // 資格取得.
    let e65 = age_eve(birth, 65);
    let e40 = age_eve(birth, 40);
    let (mut acq, mut acq_reason): (i32, u16) = if cat9 {
        (c - 200, 54)
    } else if idx == 15 {
        (dfc(1989, 1, 8), 6)
    } else if cat == 1 {
        if e65 < KAIGO_START { (KAIGO_START, 6) } else { (e65, 2) }
    } else if e40 < KAIGO_START {
        (KAIGO_START, 6)
    } else {
        (e40, 2)
    };
    let mut was2 = false;
    let d0430 = dfc(2019, 4, 30);
    let d0501 = dfc(2019, 5, 1);
    let tennyu_roll = r.chance(900);
    let was2_roll = r.chance(1200);
    if idx == 11 && acq < d0430 && d0430 <= c - 30 {
        acq = d0430;
        acq_reason = 1;
    } else if idx == 12 && acq < d0501 && d0501 <= c - 30 {
        acq = d0501;
        acq_reason = 1;
    } else if !special && tennyu_roll && acq < c - 60 {
        acq = r.range(acq + 1, c - 30);
        acq_reason = if r.chance(300) { 53 } else { 1 };
    } else if !special && !unmapped && cat == 1 && age <= 69 && was2_roll {
        was2 = true;
        acq = e40.max(KAIGO_START);
        acq_reason = if e40 < KAIGO_START { 6 } else { 2 };
    }

    // Register history.
    let hist_roll = r.below(10_000);
    let mut hist = if was2 {
        Hist::Cat2to1
    } else if special || unmapped {
        Hist::None
    } else if hist_roll < 200 {
        Hist::SpCur
    } else if hist_roll < 400 {
        Hist::SpPast
    } else if hist_roll < 550 {
        Hist::Reentry
    } else {
        Hist::None
    };
    let (mut x_loss, mut y_acq) = (NONE, NONE);
    if hist == Hist::Reentry {
        if acq + 30 < c - 150 {
            x_loss = r.range(acq + 30, c - 150);
            y_acq = r.range(x_loss + 30, (x_loss + 400).min(c - 30));
        } else {
            hist = Hist::None;
        }
    }
    let acq_cur = if hist == Hist::Reentry { y_acq } else { acq };

    // 資格喪失.
    let mut loss = NONE;
    let mut loss_reason: u16 = 0;
    let loss_roll = r.chance(300);
    if forced.is_none() && !unmapped && !cat9 && loss_roll {
        let mut lo = (acq_cur + 30).max(c - 1095);
        if hist == Hist::Cat2to1 {
            lo = lo.max(e65 + 30);
        }
        if lo < c {
            loss = r.range(lo, c - 1);
            loss_reason = if r.chance(7000) { 202 } else { 209 };
        }
    }
    let end = if loss != NONE { loss } else { c };

    // 住所地特例.
    let (mut sp_from, mut sp_to, mut facility) = (NONE, NONE, 0u32);
    match hist {
        Hist::SpCur => {
            let lo = acq_cur.max(c - 2190);
            let hi = end - 10;
            if lo < hi {
                sp_from = r.range(lo, hi);
                facility = ctx.other_insurer(&mut r);
            } else {
                hist = Hist::None;
            }
        }
        Hist::SpPast => {
            let lo = acq_cur + 1;
            let hi = end - 100;
            if lo + 60 < hi {
                sp_from = r.range(lo, hi - 60);
                sp_to = r.range(sp_from + 60, hi);
                facility = ctx.other_insurer(&mut r);
            } else {
                hist = Hist::None;
            }
        }
        _ => {}
    }

    // Certifications (5311 rows).
    let mut certs = [Cert::default(); 4];
    let mut n: usize = 0;
    let cert_roll = r.chance(if cat == 2 { 3000 } else { 1950 });
    if forced.is_none() && !cat9 && cert_roll {
        let w = (c - 1461).max(acq_cur + 1);
        let upper = end.min(c - 45);
        if w < upper {
            let n_target = 1 + r.weighted(&[5000, 3000, 2000]);
            let s1 = r.range(w, upper);
            let level = LEVELS[r.weighted(&LEVEL_WEIGHTS)];
            let (from, to) = if level == 1 {
                (NONE, NONE)
            } else {
                let k = match r.weighted(&[6000, 2500, 1500]) {
                    0 => 6,
                    1 => 12,
                    _ => r.range(3, 11),
                };
                (s1, period_end(s1, k))
            };
            let (pk, po) = plan_for(level, &mut r);
            certs[0] = Cert {
                date: s1,
                kind: 1,
                reason: 1,
                app_kind: 1,
                app_date: s1,
                level,
                from,
                to,
                plan_kind: pk,
                plan_office: po,
                loss: NONE,
            };
            n = 1;
            while n < n_target {
                let prev = certs[n - 1];
                if prev.level == 1 {
                    break;
                }
                if r.chance(3000) {
                    let lo = prev.date + 60;
                    let hi = (prev.to - 30).min(end).min(c - 45);
                    if lo <= hi {
                        let a = r.range(lo, hi);
                        let level = worsen(if prev.level == 6 { 12 } else { prev.level }, &mut r);
                        let k = if r.chance(7000) { 6 } else { 12 };
                        let (pk, po) = plan_for(level, &mut r);
                        certs[n] = Cert {
                            date: a,
                            kind: 2,
                            reason: 99,
                            app_kind: if r.chance(200) { 4 } else { 3 },
                            app_date: a,
                            level,
                            from: a,
                            to: period_end(a, k),
                            plan_kind: pk,
                            plan_office: po,
                            loss: NONE,
                        };
                        n += 1;
                        continue;
                    }
                }
                let from = prev.to + 1;
                if from > end {
                    break;
                }
                let app_date = (prev.to - r.range(45, 75)).max(prev.date + 1);
                let k = [12, 24, 36, 48][r.weighted(&[3000, 2000, 3500, 1500])];
                let level = if prev.level == 6 { if r.chance(8000) { 6 } else { 12 } } else { drift(prev.level, &mut r) };
                let (pk, po) = plan_for(level, &mut r);
                certs[n] = Cert {
                    date: from,
                    kind: 2,
                    reason: 99,
                    app_kind: 2,
                    app_date,
                    level,
                    from,
                    to: month_end(from, k - 1),
                    plan_kind: pk,
                    plan_office: po,
                    loss: NONE,
                };
                n += 1;
            }
            if loss != NONE && n < 4 && loss > certs[n - 1].date {
                let mut t = certs[n - 1];
                t.date = loss;
                t.kind = 3;
                t.reason = 2;
                t.loss = loss;
                certs[n] = t;
                n += 1;
            }
        }
    }

    // Applications (09B rows).
    let mut apps = [App::default(); 2];
    let mut na: usize = 0;
    let disease = 1 + r.below(16) as u8;
    let new_app_roll = r.chance(120);
    if n > 0 {
        let last_real = (0..n).rev().find(|&i| certs[i].kind != 3).unwrap_or(0);
        let row = certs[last_real];
        let do_a = unmapped || r.chance(6500);
        if do_a {
            let mut a = App { date: row.app_date, legal: row.app_kind, result: row.level, from: row.from, to: row.to, ..App::default() };
            if last_real > 0 {
                let pr = certs[last_real - 1];
                a.prev_level = pr.level;
                a.prev_from = pr.from;
                a.prev_to = pr.to;
                a.prev_app = pr.app_date;
            }
            chain(&mut a, Stage::Decided, c, &mut r);
            if a.stage != Stage::Decided {
                a.result = 0;
                a.from = NONE;
                a.to = NONE;
            }
            apps[na] = a;
            na += 1;
        }
        let do_b = loss == NONE && r.chance(if do_a { 1200 } else { 1500 });
        if do_b {
            let last = certs[n - 1];
            let lo = (last.date + 30).max(c - 75);
            if lo <= c && row.level != 1 {
                let d = r.range(lo, c);
                let legal = if row.to != NONE && row.to >= d && row.to - d <= 60 { 2 } else { 3 };
                let mut a = App {
                    date: d,
                    legal,
                    prev_level: row.level,
                    prev_from: row.from,
                    prev_to: row.to,
                    prev_app: row.app_date,
                    ..App::default()
                };
                let target =
                    [Stage::Received, Stage::AwaitOpinion, Stage::AwaitPrimary, Stage::PrimaryJudged, Stage::AwaitCommittee][r.index(5)];
                chain(&mut a, target, c, &mut r);
                if r.chance(1000) {
                    a.withdraw = match r.weighted(&[2000, 7000, 1000]) {
                        0 => 2,
                        2 if legal == 3 => 4,
                        _ => 3,
                    };
                }
                apps[na] = a;
                na += 1;
            }
        }
    } else if loss == NONE && !cat9 && (forced.is_some() || unmapped || new_app_roll) {
        let d = if forced.is_some() { (c - 70).max(acq_cur + 1) } else { r.range((c - 75).max(acq_cur + 1), c) };
        if d <= c {
            let mut a = App { date: d, legal: 1, ..App::default() };
            let target = match forced {
                Some(0) => Stage::AwaitPrimary,
                Some(1) => Stage::Decided,
                Some(2) => Stage::AwaitCommittee,
                Some(3) => Stage::PrimaryJudged,
                Some(4) => Stage::AwaitPrimary,
                Some(5) => Stage::AwaitOpinion,
                Some(_) => Stage::Received,
                None => {
                    [Stage::Received, Stage::AwaitOpinion, Stage::AwaitPrimary, Stage::PrimaryJudged, Stage::AwaitCommittee, Stage::Decided]
                        [r.index(6)]
                }
            };
            chain(&mut a, target, c, &mut r);
            if a.stage == Stage::Decided {
                a.result = 1; // 非該当: no 5311 row follows from it
            }
            if forced == Some(0) || (forced.is_none() && r.chance(1000)) {
                a.withdraw = if r.chance(2500) { 2 } else { 3 };
            }
            if acq_reason == 1 && d - acq_cur < 180 && r.chance(5000) {
                a.kind_code = b'5';
            }
            apps[na] = a;
            na += 1;
        }
    }
    for a in apps.iter_mut().take(na) {
        a.branch = if r.chance(200) { 1 } else { 0 };
        let age_a = age_on(birth, a.date);
        a.age = age_a.clamp(0, 150) as u8;
        a.category = if age_a >= 65 { 1 } else { 2 };
        if a.kind_code == b'1' {
            a.kind_code = match a.legal {
                1 => {
                    if r.chance(300) {
                        b'A'
                    } else {
                        b'1'
                    }
                }
                2 => {
                    if r.chance(300) {
                        b'B'
                    } else {
                        b'2'
                    }
                }
                3 => b'3',
                _ => b'4',
            };
        }
        let base = if a.result > 0 {
            a.result
        } else if a.prev_level > 0 {
            a.prev_level
        } else {
            LEVELS[r.weighted(&LEVEL_WEIGHTS)]
        };
        a.primary_level = if a.result > 0 && r.chance(7500) {
            a.result
        } else if base == 1 || base == 6 {
            if r.chance(5000) { 1 } else { 12 }
        } else {
            drift(base, &mut r)
        };
        a.sev = sev_of(base);
    }

    // Register rows.
    let cat_at = |d: i32| -> u8 { if age_on(birth, d + 1) >= 65 { 1 } else { 2 } };
    let addr0 = rand_addr(&mut r);
    let addr1 = rand_addr(&mut r);
    let sp_plain = if r.chance(2000) { 1 } else { 0 };
    let issue_first = if special { acq } else { (acq + r.range(0, 14)).min(c) };
    let last_cert = (0..n).rev().find(|&i| certs[i].kind != 3).map(|i| certs[i].date);
    let issue_last = |row_acq: i32, r: &mut Rng| -> i32 {
        let base = match last_cert {
            Some(d) if loss == NONE => d.max(row_acq),
            _ => row_acq,
        };
        let v = if special { base } else { (base + r.range(0, 10)).min(c) };
        if loss != NONE { v.min(loss) } else { v }
    };
    let mut reg = [RegRow::default(); 2];
    let n_reg: u8;
    match hist {
        Hist::None | Hist::SpCur => {
            reg[0] = RegRow {
                category: if cat9 { 9 } else { cat_at(acq) },
                acq,
                acq_reason,
                loss,
                loss_reason,
                sp: if hist == Hist::SpCur { 2 } else { sp_plain },
                facility,
                sp_from,
                sp_to: NONE,
                issue: issue_last(acq, &mut r),
                addr: addr0,
            };
            n_reg = 1;
        }
        Hist::SpPast => {
            reg[0] = RegRow {
                category: cat_at(acq),
                acq,
                acq_reason,
                sp: 2,
                facility,
                sp_from,
                sp_to,
                issue: issue_first,
                addr: addr0,
                ..RegRow::default()
            };
            let a2 = sp_to + 1;
            reg[1] = RegRow {
                category: cat_at(a2),
                acq: a2,
                acq_reason: 155,
                loss,
                loss_reason,
                sp: 1,
                issue: issue_last(a2, &mut r),
                addr: addr1,
                ..RegRow::default()
            };
            n_reg = 2;
        }
        Hist::Reentry => {
            reg[0] = RegRow {
                category: cat_at(acq),
                acq,
                acq_reason,
                loss: x_loss,
                loss_reason: 209,
                sp: sp_plain,
                issue: issue_first,
                addr: addr0,
                ..RegRow::default()
            };
            reg[1] = RegRow {
                category: cat_at(y_acq),
                acq: y_acq,
                acq_reason: 1,
                loss,
                loss_reason,
                sp: sp_plain,
                issue: issue_last(y_acq, &mut r),
                addr: addr1,
                ..RegRow::default()
            };
            n_reg = 2;
        }
        Hist::Cat2to1 => {
            reg[0] = RegRow { category: 2, acq, acq_reason, sp: sp_plain, issue: issue_first, addr: addr0, ..RegRow::default() };
            reg[1] = RegRow {
                category: 1,
                acq: e65,
                acq_reason: 160,
                loss,
                loss_reason,
                sp: sp_plain,
                issue: issue_last(e65, &mut r),
                addr: addr0,
                ..RegRow::default()
            };
            n_reg = 2;
        }
    }

    // Person-level flags of the 5311 rows.
    let ratio = if cat == 2 || was2 { 1 } else { [1, 2, 3][r.weighted(&[9000, 600, 400])] };
    let open_end = r.chance(2000);
    let apr_variant = r.chance(1500);
    let cost_stage = if r.chance(1000) { 1 + r.weighted(&[1000, 4000, 2500, 2500]) as u8 } else { 0 };
    let (mut restr_kind, mut restr_from, mut restr_to) = (0u8, NONE, NONE);
    if n > 0 && r.chance(170) {
        let lo = certs[0].date;
        let hi = certs[n - 1].date.max(lo);
        restr_kind = if r.chance(6000) { 1 } else { 2 };
        restr_from = r.range(lo, hi);
        restr_to = month_end(restr_from, r.range(5, 11));
    }
    let proxy = [1, 2, 3, 4, 9][r.weighted(&[2500, 4500, 1500, 1300, 200])];

    Person {
        insured: insured_no(idx),
        sex,
        birth,
        name,
        reg,
        n_reg,
        certs,
        n_cert: n as u8,
        apps,
        n_app: na as u8,
        acq_5311: acq_cur,
        ratio,
        open_end,
        apr_variant,
        cost_stage,
        restr_kind,
        restr_from,
        restr_to,
        sp_kind: hist,
        facility,
        sp_from,
        sp_to,
        disease,
        proxy,
        ident: mix(idx, 0x1D),
    }
}

// ---------------------------------------------------------------------------------------------
// Writers

#[derive(Default)]
struct Scratch {
    kanji: Vec<u8>,
    kana: Vec<u8>,
    addr: Vec<u8>,
}

const FLUSH_AT: usize = 1 << 20;

struct Out {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SampleError + '_ {
    move |source| SampleError::Io { path: path.to_path_buf(), source }
}

impl Out {
    fn create(path: PathBuf) -> Result<Out, SampleError> {
        let file = File::create(&path).map_err(io_err(&path))?;
        Ok(Out { file, path, buf: Vec::with_capacity(FLUSH_AT + (64 << 10)), bytes: 0 })
    }
    fn maybe_flush(&mut self) -> Result<(), SampleError> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SampleError> {
        self.file.write_all(&self.buf).map_err(io_err(&self.path))?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
    fn finish(mut self) -> Result<(PathBuf, u64), SampleError> {
        self.flush()?;
        self.file.flush().map_err(io_err(&self.path))?;
        Ok((self.path, self.bytes))
    }
}

fn write_small(path: &Path, data: &[u8]) -> Result<(), SampleError> {
    std::fs::write(path, data).map_err(io_err(path))
}

fn blank_record() -> [u8; 402] {
    let mut rec = [b' '; 402];
    rec[400] = b'\r';
    rec[401] = b'\n';
    rec
}

/// Copy `src` into `rec[off..off + len]`, padding the rest with `pad` (one or two bytes).
fn put(rec: &mut [u8], off: usize, len: usize, src: &[u8], pad: &[u8]) {
    let n = if src.len() > len { len & !(pad.len() - 1) } else { src.len() };
    rec[off..off + n].copy_from_slice(&src[..n]);
    let mut i = off + n;
    while i + pad.len() <= off + len {
        rec[i..i + pad.len()].copy_from_slice(pad);
        i += pad.len();
    }
}

fn put_num(rec: &mut [u8], off: usize, n: u64, w: usize) {
    let mut v = Vec::with_capacity(w);
    push_pad(&mut v, n, w);
    rec[off..off + w].copy_from_slice(&v[v.len() - w..]);
}

fn put_wareki(rec: &mut [u8], off: usize, d: i32) {
    if d != NONE {
        rec[off..off + 7].copy_from_slice(&wareki(d));
    }
}

const ZENKAKU_SPACE: [u8; 2] = [0x81, 0x40];

fn write_register(ctx: &Ctx, p: &Person, b: &mut Vec<u8>, sc: &mut Scratch, w: &mut Rng) -> u64 {
    for h in 0..usize::from(p.n_reg) {
        let row = &p.reg[h];
        let mut rec = blank_record();
        rec[0] = b'2';
        rec[1..7].copy_from_slice(&ctx.insurer);
        rec[7..17].copy_from_slice(&p.insured);
        put_num(&mut rec, 17, h as u64 + 1, 3);
        put(&mut rec, 20, 50, &sc.kana, b" ");
        put(&mut rec, 70, 40, &sc.kanji, &ZENKAKU_SPACE);
        put_wareki(&mut rec, 110, p.birth);
        rec[117] = b'0' + p.sex;
        put_num(&mut rec, 118, u64::from(ctx.postal(&row.addr)), 7);
        ctx.addr_bytes(&row.addr, &mut sc.addr);
        put(&mut rec, 125, 120, &sc.addr, &ZENKAKU_SPACE);
        rec[245] = b'0' + row.category;
        put_wareki(&mut rec, 246, row.acq);
        put_num(&mut rec, 253, u64::from(row.acq_reason), 3);
        if row.loss != NONE {
            put_wareki(&mut rec, 256, row.loss);
            put_num(&mut rec, 263, u64::from(row.loss_reason), 3);
        } else if w.chance(7000) {
            rec[256..263].copy_from_slice(b"0000000");
        }
        match row.sp {
            1 => rec[266] = b'1',
            2 => {
                rec[266] = b'2';
                put_num(&mut rec, 267, u64::from(row.facility), 6);
                put_wareki(&mut rec, 273, row.sp_from);
                put_wareki(&mut rec, 280, row.sp_to);
            }
            _ => {}
        }
        put_wareki(&mut rec, 287, row.issue);
        b.extend_from_slice(&rec);
    }
    // sc.addr now holds the current (last row's) address, which the 09B file repeats.
    u64::from(p.n_reg)
}

/// 負担割合証 period of a 5311 row: 8/1–7/31 of the next year; with `apr_variant` the first
/// certification in April–July gets 4/1–7/31 of that year.
fn copay_period(p: &Person, d: i32) -> (i32, i32) {
    if p.apr_variant && p.n_cert > 0 {
        let (y, m, _) = civil(p.certs[0].date);
        if (4..=7).contains(&m) {
            let (af, at) = (dfc(y, 4, 1), dfc(y, 7, 31));
            if d >= af && d <= at {
                return (af, at);
            }
        }
    }
    aug_period(d)
}

fn aug_period(d: i32) -> (i32, i32) {
    let (y, m, _) = civil(d);
    let fy = if m >= 8 { y } else { y - 1 };
    (dfc(fy, 8, 1), dfc(fy + 1, 7, 31))
}

/// 負担限度額 (円/日) for a stage (1–4) and a period start: food, unit private, unit semi-private,
/// conventional private (特養), conventional private (老健), multi-bed.
fn cost_amounts(stage: u8, from: i32) -> [u64; 6] {
    let s = usize::from(stage.clamp(1, 4) - 1);
    if from >= dfc(2024, 8, 1) {
        [
            [300, 390, 650, 1360][s],
            [880, 880, 1370, 1370][s],
            [550, 550, 1370, 1370][s],
            [380, 480, 880, 880][s],
            [550, 550, 1370, 1370][s],
            [0, 430, 430, 430][s],
        ]
    } else if from >= dfc(2021, 8, 1) {
        [
            [300, 390, 650, 1360][s],
            [820, 820, 1310, 1310][s],
            [490, 490, 1310, 1310][s],
            [320, 420, 820, 820][s],
            [490, 490, 1310, 1310][s],
            [0, 370, 370, 370][s],
        ]
    } else {
        [
            [300, 390, 650, 650][s],
            [820, 820, 1310, 1310][s],
            [490, 490, 1310, 1310][s],
            [320, 420, 820, 820][s],
            [490, 490, 1310, 1310][s],
            [0, 370, 370, 370][s],
        ]
    }
}

fn write_5311(ctx: &Ctx, p: &Person, recno: &mut u64, b: &mut Vec<u8>, sc: &Scratch, w: &mut Rng) {
    let n = usize::from(p.n_cert);
    if n == 0 {
        return;
    }
    let last_period = copay_period(p, p.certs[n - 1].date);
    let pending_after = |d: i32| p.apps[..usize::from(p.n_app)].iter().any(|a| a.date > d && a.stage != Stage::Decided && a.withdraw == 1);
    let mut kouki = Vec::with_capacity(8);
    push_pad(&mut kouki, 39 * 100 + u64::from(ctx.pref), 4);
    kouki.extend_from_slice(b"200");
    let ck = mod10_check(&kouki);
    kouki.push(ck);
    for (i, row) in p.certs[..n].iter().enumerate() {
        *recno += 1;
        let zero = w.chance(1500);
        let q = w.chance(3300);
        let mut f = Csv::new(b, zero);
        f.raw(b"2"); // 1
        f.num(*recno); // 2
        f.raw(b"5311"); // 3
        f.date(row.date); // 4
        f.digit(row.kind); // 5
        f.pad(u64::from(row.reason), 2); // 6
        if w.below(50) == 0 {
            f.maybe_quoted(&ctx.insurer8, q); // 7, 8-digit form
        } else {
            f.maybe_quoted(&ctx.insurer, q); // 7
        }
        f.maybe_quoted(&p.insured, q); // 8
        f.quoted(&sc.kana); // 9
        f.date(p.birth); // 10
        f.digit(p.sex); // 11
        f.date(p.acq_5311); // 12
        f.date(row.loss); // 13
        f.empties(3); // 14-16
        f.digit(row.app_kind); // 17
        f.digit(if i == n - 1 && pending_after(row.date) { 2 } else { 1 }); // 18
        f.date(row.app_date); // 19
        if w.chance(9000) {
            f.raw(b"1"); // 20
        } else {
            f.empty();
        }
        f.code2(row.level); // 21
        f.date(row.from); // 22
        f.date(row.to); // 23
        if row.plan_kind > 0 {
            f.digit(row.plan_kind); // 24
            if row.plan_office > 0 {
                f.maybe_quoted(&ctx.office_no(row.plan_office), q && w.chance(5000)); // 25
            } else {
                f.empty();
            }
            f.date(row.from); // 26
            f.date(row.to); // 27
        } else {
            f.empty();
            f.empty();
            f.date(NONE);
            f.date(NONE);
        }
        let units = limit_units(row.level);
        if units > 0 {
            f.num(units); // 28
            f.date(row.from); // 29
            f.date(row.to); // 30
        } else {
            f.empty();
            f.date(NONE);
            f.date(NONE);
        }
        f.empty(); // 31
        f.date(NONE); // 32
        f.date(NONE); // 33
        f.empty(); // 34
        let restr = p.restr_kind > 0 && row.date >= p.restr_from;
        for k in 1..=2u8 {
            if restr && p.restr_kind == k {
                f.date(p.restr_from); // 35 / 37
                f.date(p.restr_to); // 36 / 38
            } else {
                f.date(NONE);
                f.date(NONE);
            }
        }
        f.raw(b"1"); // 39
        f.raw(b"1"); // 40
        f.raw(b"090"); // 41
        f.date(NONE); // 42
        f.date(NONE); // 43
        f.empties(2); // 44-45
        f.date(NONE); // 46
        f.date(NONE); // 47
        let cost = if p.cost_stage > 0 { Some(aug_period(row.date)) } else { None };
        let amounts = cost.map(|(from, _)| cost_amounts(p.cost_stage, from));
        match (cost, amounts) {
            (Some((from, to)), Some(am)) => {
                f.raw(b"3"); // 48
                f.raw(b"1"); // 49
                f.raw(b"1"); // 50
                for a in am {
                    f.num(a); // 51-56
                }
                f.date(from); // 57
                f.date(to); // 58
            }
            _ => {
                f.empties(9); // 48-56
                f.date(NONE); // 57
                f.date(NONE); // 58
            }
        }
        f.empty(); // 59
        f.date(NONE); // 60
        f.date(NONE); // 61
        f.empty(); // 62
        let age = age_on(p.birth, row.date);
        if age >= 75 && p.ident % 10 < 6 {
            f.raw(&kouki); // 63
            f.pad(p.ident / 10 % 100_000_000, 8); // 64
            f.empties(3); // 65-67
        } else if age < 75 && p.ident % 10 < 4 {
            f.empties(2); // 63-64
            f.raw(&ctx.insurer); // 65
            f.pad(p.ident / 10 % 100_000_000, 8); // 66
            f.pad(p.ident / 1000 % 10_000_000_000, 10); // 67
        } else {
            f.empties(5);
        }
        f.empty(); // 68
        f.date(NONE); // 69
        f.date(NONE); // 70
        let sp = match p.sp_kind {
            Hist::SpCur => row.date >= p.sp_from,
            Hist::SpPast => row.date >= p.sp_from && row.date <= p.sp_to,
            _ => false,
        };
        if sp {
            f.raw(b"2"); // 71
            f.pad(u64::from(p.facility), 6); // 72
            f.date(p.sp_from); // 73
            f.date(p.sp_to); // 74
        } else {
            f.empties(2);
            f.date(NONE);
            f.date(NONE);
        }
        match amounts {
            Some(am) => {
                f.num(am[1]); // 75
                f.num(am[3]); // 76
                f.num(am[5]); // 77
            }
            None => f.empties(3),
        }
        let (cf, mut ct) = copay_period(p, row.date);
        if p.open_end && cf == last_period.0 {
            ct = OPEN;
        }
        f.digit(p.ratio); // 78
        f.date(cf); // 79
        f.date(ct); // 80
        let fields = f.end();
        debug_assert_eq!(fields, 80);
    }
}

/// The 74 survey answers and the two 自立度, correlated with the severity.
fn push_survey(f: &mut Csv<'_>, sev: u32, w: &mut Rng) {
    for (i, &pat) in ITEM_PATTERN.iter().enumerate() {
        let max = pattern_max(pat);
        let p = match i {
            0..=8 => sev * 6 / 10,
            32..=38 => sev * 6 / 10,
            39..=55 | 59 => sev * 35 / 100,
            62..=73 => sev * 8 / 100,
            _ => sev,
        };
        let ans = if w.below(1000) < u64::from(p) { 2 + w.below(u64::from(max - 1)) as u8 } else { 1 };
        f.digit(ans);
    }
    let j = (1 + (sev * 8 / 1000) as i32 + w.range(-1, 1)).clamp(1, 9);
    f.num(if w.chance(100) { 10 } else { j as u64 }); // 障害高齢者自立度 1–10
    let k = (1 + (sev * 7 / 1000) as i32 + w.range(-1, 1)).clamp(1, 8);
    f.num(if w.chance(100) { 9 } else { k as u64 }); // 認知症自立度 1–9
}

/// 要介護認定等基準時間 in tenths of a minute for a 一次判定 level.
fn standard_time(level: u8, w: &mut Rng) -> u32 {
    let (lo, hi) = match level {
        1 => (100, 249),
        12 => (250, 319),
        13 | 21 => (320, 499),
        22 => (500, 699),
        23 => (700, 899),
        24 => (900, 1099),
        _ => (1100, 1500),
    };
    w.range(lo, hi) as u32
}

fn push_times(f: &mut Csv<'_>, level: u8, w: &mut Rng) {
    let total = standard_time(level, w);
    f.tenths(total);
    let mut weights = [0u32; 8];
    let mut sum = 0;
    for x in weights.iter_mut() {
        *x = 1 + w.below(10) as u32;
        sum += *x;
    }
    let mut left = total;
    for (i, x) in weights.iter().enumerate() {
        let part = if i == 7 { left } else { (total * x / sum).min(left) };
        left -= part;
        f.tenths(part);
    }
    f.tenths(if w.chance(2000) { w.range(10, 300) as u32 } else { 0 });
}

fn write_09b(ctx: &Ctx, p: &Person, a: &App, seq: u64, b: &mut Vec<u8>, sc: &Scratch, w: &mut Rng) {
    let pl = &ctx.pools;
    let zero = w.chance(1500);
    let mut f = Csv::new(b, zero);
    f.num(seq); // 1
    f.raw(b"1"); // 2
    f.raw(b"09B"); // 3
    f.raw(&ctx.insurer); // 4
    f.raw(&p.insured); // 5
    f.date(a.date); // 6
    f.digit(a.branch); // 7
    f.digit(a.legal); // 8
    f.raw(&[a.kind_code]); // 9
    f.digit(a.withdraw); // 10
    f.digit(a.category); // 11
    f.digit(p.proxy); // 12
    f.date(p.birth); // 13
    f.num(u64::from(a.age)); // 14
    f.digit(p.sex); // 15
    f.raw(&sc.kana); // 16
    f.raw(&sc.kanji); // 17
    let cur = &p.reg[usize::from(p.n_reg.max(1)) - 1];
    let postal = ctx.postal(&cur.addr);
    f.pad(u64::from(postal / 10_000), 3); // 18
    f.b.push(b'-');
    push_pad(f.b, u64::from(postal % 10_000), 4);
    f.raw(&sc.addr); // 19
    let ph = p.ident >> 20;
    if ph.is_multiple_of(10) {
        f.empty(); // 20
    } else if ph % 10 < 3 {
        f.raw(b"090-"); // 20 (mobile)
        push_pad(f.b, ph / 10 % 10_000, 4);
        f.b.push(b'-');
        push_pad(f.b, ph / 100_000 % 10_000, 4);
    } else {
        f.raw(&ctx.phone_area); // 20
        f.b.push(b'-');
        let (mid, modulo) = if ctx.phone_area.len() == 2 { (4, 10_000) } else { (3, 1000) };
        push_pad(f.b, ph / 10 % modulo, mid);
        f.b.push(b'-');
        push_pad(f.b, ph / 100_000 % 10_000, 4);
    }
    if w.chance(1200) {
        f.raw(&pl.facilities[w.index(pl.facilities.len())]); // 21
        f.raw(&pl.addr_head); // 22
        f.b.extend_from_slice(&pl.towns[w.index(pl.towns.len())]);
        push_fw_num(f.b, 1 + w.below(3000));
        f.b.extend_from_slice(&pl.banchi);
    } else {
        f.empties(2);
    }
    f.code2(a.prev_level); // 23
    f.date(a.prev_from); // 24
    f.date(a.prev_to); // 25
    if a.op_req != NONE {
        let inst = ((u64::from(ctx.pref) * 10 + 1) * 1_000_000 + (p.ident >> 8) % 300) % 1_000_000_000;
        f.raw(&with_check(inst, 9)); // 26
        f.pad((p.ident >> 16) % 1000 + 1, 6); // 27
    } else {
        f.empties(2);
    }
    f.date(a.op_req); // 28
    f.date(a.op_recv); // 29
    if a.op_recv != NONE {
        let s = a.sev;
        f.digit(if w.below(1000) < u64::from(s) { 2 } else { 1 }); // 30 短期記憶
        f.digit((1 + s * 3 / 1000 + w.below(2) as u32).min(4) as u8); // 31 認知能力
        f.digit((1 + s * 3 / 1000 + w.below(2) as u32).min(4) as u8); // 32 伝達能力
        f.digit(if w.below(1000) < u64::from(s / 2) { 2 } else { 1 }); // 33 食事行為
        f.digit((1 + s * 7 / 1000 + w.below(2) as u32).min(9) as u8); // 34 認知症自立度
    } else {
        f.empties(5);
    }
    f.date(a.sv_req); // 35
    f.date(a.sv_date); // 36
    if a.sv_req != NONE {
        f.raw(&ctx.office_no(1 + (p.ident >> 24) as u32 % 300)); // 37
        f.digit(if w.chance(8000) { 2 } else { 1 }); // 38
        f.pad(10_000 + (p.ident >> 32) % 500, 8); // 39
        f.pad(1 + w.below(9), 2); // 40
    } else {
        f.empties(4);
    }
    f.date(a.prim); // 41
    if a.prim != NONE {
        f.code2(a.primary_level); // 42
        f.digit([1, 2, 3][w.weighted(&[8000, 1500, 500])]); // 43
        push_times(&mut f, a.primary_level, w); // 44-53
        for _ in 0..5 {
            f.tenths(w.below(1001) as u32); // 54-58
        }
        if w.chance(500) {
            f.pad(1 + w.below(30), 3); // 59
        } else {
            f.empty();
        }
        if matches!(a.primary_level, 13 | 21) {
            f.digit(if w.chance(6000) { 1 } else { 2 }); // 60
            f.num(w.below(101)); // 61
            f.digit(if w.chance(5000) { 1 } else { 2 }); // 62
        } else {
            f.empties(3);
        }
    } else {
        f.empties(21);
    }
    f.date(a.mat); // 63
    f.date(a.committee); // 64
    if a.mat != NONE {
        f.pad(1 + (p.ident >> 40) % 12, 2); // 65
        f.pad(1 + w.below(300), 4); // 66
    } else {
        f.empties(2);
    }
    f.date(a.secondary); // 67
    f.code2(if a.secondary != NONE { a.result } else { 0 }); // 68
    f.date(if a.secondary != NONE { a.from } else { NONE }); // 69
    f.date(if a.secondary != NONE { a.to } else { NONE }); // 70
    if a.category == 2 {
        f.pad(u64::from(p.disease), 2); // 71
    } else {
        f.raw(b"99");
    }
    if a.secondary != NONE && a.result == 21 {
        f.raw([b"01", b"02", b"99"][w.weighted(&[5000, 3000, 2000])]); // 72
    } else {
        f.empty();
    }
    // 73-111 現在のサービス
    let svc = match a.prev_level {
        0 => 3u8,
        6 | 12 | 13 => 2,
        _ => 1,
    };
    f.digit(svc); // 73
    f.digit(1 + w.below(3) as u8); // 74
    for i in 0..37u32 {
        let applies = (svc == 1 && i < 21) || (svc == 2 && i >= 21);
        if applies && w.chance(1500) {
            f.num(1 + w.below(30));
        } else {
            f.empty();
        }
    }
    // 112-187
    if a.sv_date != NONE {
        push_survey(&mut f, a.sev, w);
    } else {
        f.empties(76);
    }
    // 188-326 前回
    if a.prev_level > 0 && w.chance(5000) {
        let psev = sev_of(a.prev_level);
        push_survey(&mut f, psev, w); // 188-263
        let pl1 = if a.prev_level == 6 { 12 } else { a.prev_level };
        f.code2(pl1); // 264
        f.digit(1); // 265
        push_times(&mut f, pl1, w); // 266-275
        for _ in 0..5 {
            f.tenths(w.below(1001) as u32); // 276-280
        }
        f.empty(); // 281
        f.digit(1); // 282
        f.num(w.below(101)); // 283
        f.digit(if matches!(pl1, 12 | 13) { 1 } else { 2 }); // 284
        f.date(a.prev_app); // 285
        let pd = if a.prev_app != NONE { (a.prev_app + w.range(25, 40)).min(a.date - 1) } else { NONE };
        f.date(pd); // 286
        f.empties(39); // 287-325
        f.raw(b"09B"); // 326
    } else {
        f.empties(139);
    }
    // 327-328
    if a.secondary != NONE && w.chance(5000) {
        f.raw(&pl.committee_texts[w.index(pl.committee_texts.len())]);
    } else {
        f.empty();
    }
    if w.chance(3000) {
        f.raw(&pl.comments[w.index(pl.comments.len())]);
    } else {
        f.empty();
    }
    let fields = f.end();
    debug_assert_eq!(fields, 328);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};
    use std::collections::{BTreeSet, HashMap};

    const INS: &str = "141309";

    fn opts(dir: &Path, persons: u64, seed: u64) -> SampleOptions {
        SampleOptions { insurer_no: INS.to_string(), persons, out_dir: dir.to_path_buf(), seed, month: (2026, 10) }
    }

    fn decode(b: &[u8]) -> String {
        // A single-byte 0x80 is invalid (encoding_rs would map it to U+0080); as a trail
        // byte (e.g. 麻 = 96 80) it is fine.
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                0x80 => panic!("single-byte 0x80 in {b:?}"),
                0x00..=0x7F | 0xA1..=0xDF => i += 1,
                _ => i += 2,
            }
        }
        encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(b)
            .unwrap_or_else(|| panic!("not CP932: {b:?}"))
            .into_owned()
    }

    fn crlf_lines(bytes: &[u8]) -> Vec<&[u8]> {
        assert!(bytes.ends_with(b"\r\n"));
        let body = &bytes[..bytes.len() - 2];
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i + 1 < body.len() + 1 {
            if i + 1 < body.len() && body[i] == b'\r' && body[i + 1] == b'\n' {
                out.push(&body[start..i]);
                start = i + 2;
                i += 2;
            } else {
                i += 1;
            }
        }
        out.push(&body[start..]);
        for l in &out {
            assert!(!l.contains(&b'\n') && !l.contains(&b'\r'), "bare line break");
        }
        out
    }

    /// Quote-aware splitter (test only); returns (field, was_quoted).
    fn split_csv(line: &str) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            let mut field = String::new();
            let mut quoted = false;
            if chars.peek() == Some(&'"') {
                quoted = true;
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => field.push(c),
                        None => panic!("unterminated quote in {line}"),
                    }
                }
                assert!(matches!(chars.peek(), None | Some(',')), "text after closing quote in {line}");
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    assert_ne!(c, '"', "quote inside unquoted field in {line}");
                    field.push(c);
                    chars.next();
                }
            }
            out.push((field, quoted));
            match chars.next() {
                Some(',') => continue,
                None => break,
                Some(c) => panic!("unexpected {c}"),
            }
        }
        out
    }

    /// YYYYMMDD; blank and 00000000 are None; 99999999 only where `open_ok`.
    fn date8(s: &str, open_ok: bool) -> Option<NaiveDate> {
        match s {
            "" | "00000000" => None,
            "99999999" => {
                assert!(open_ok, "99999999 outside an end column");
                None
            }
            _ => {
                assert_eq!(s.len(), 8, "date {s:?}");
                Some(NaiveDate::parse_from_str(s, "%Y%m%d").unwrap_or_else(|_| panic!("invalid date {s:?}")))
            }
        }
    }

    fn wareki_parse(s: &str) -> Option<NaiveDate> {
        if s == "0000000" || s.trim().is_empty() {
            return None;
        }
        assert_eq!(s.len(), 7, "wareki {s:?}");
        let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
        let (g, yy, mm, dd) = (d[0], d[1] * 10 + d[2], d[3] * 10 + d[4], d[5] * 10 + d[6]);
        let eras = [
            (1868, NaiveDate::from_ymd_opt(1868, 1, 25)),
            (1912, NaiveDate::from_ymd_opt(1912, 7, 30)),
            (1926, NaiveDate::from_ymd_opt(1926, 12, 25)),
            (1989, NaiveDate::from_ymd_opt(1989, 1, 8)),
            (2019, NaiveDate::from_ymd_opt(2019, 5, 1)),
        ];
        assert!((1..=5).contains(&g) && yy >= 1, "wareki {s}");
        let (base, start) = eras[(g - 1) as usize];
        let date = NaiveDate::from_ymd_opt(base + yy as i32 - 1, mm, dd).unwrap_or_else(|| panic!("wareki {s}"));
        assert!(Some(date) >= start, "wareki {s} before its era");
        if g < 5 {
            assert!(Some(date) < eras[g as usize].1, "wareki {s} after its era");
        }
        Some(date)
    }

    fn age(birth: NaiveDate, on: NaiveDate) -> i32 {
        let mut a = on.year() - birth.year();
        if (on.month(), on.day()) < (birth.month(), birth.day()) {
            a -= 1;
        }
        a
    }

    fn mod10_ok(s: &str) -> bool {
        s.len() >= 2 && s.bytes().all(|b| b.is_ascii_digit()) && mod10_check(&s.as_bytes()[..s.len() - 1]) == s.as_bytes()[s.len() - 1]
    }

    fn is_hw_kana(s: &str) -> bool {
        s.chars().all(|c| c == ' ' || ('\u{FF61}'..='\u{FF9F}').contains(&c))
    }

    struct Gen {
        _dir: tempfile::TempDir,
        sum: SampleSummary,
    }

    fn generate_in(persons: u64, seed: u64) -> Gen {
        let dir = tempfile::tempdir().unwrap();
        let sum = generate(&opts(dir.path(), persons, seed)).unwrap();
        Gen { _dir: dir, sum }
    }

    fn read(g: &Gen, format: &str) -> Vec<u8> {
        let f = g.sum.files.iter().find(|f| f.format == format).unwrap();
        let b = std::fs::read(&f.path).unwrap();
        assert_eq!(b.len() as u64, f.bytes);
        b
    }

    /// insured_no -> (birth, sex, kana) from the register.
    fn register_people(reg: &[u8]) -> HashMap<String, (NaiveDate, String, String)> {
        let mut m = HashMap::new();
        for rec in reg.chunks(402) {
            if rec[0] == b'2' {
                let no = decode(&rec[7..17]);
                let birth = wareki_parse(&decode(&rec[110..117])).unwrap();
                let sex = decode(&rec[117..118]);
                let kana = decode(&rec[20..70]).trim_end().to_string();
                m.insert(no, (birth, sex, kana));
            }
        }
        m
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = generate_in(700, 42);
        let b = generate_in(700, 42);
        let c = generate_in(700, 43);
        let names = |g: &Gen| {
            let mut v: Vec<PathBuf> = g.sum.files.iter().map(|f| f.path.clone()).collect();
            v.push(g.sum.job_file.clone());
            v.push(g.sum.gaiji_table.clone());
            v
        };
        let mut differs = false;
        for ((pa, pb), pc) in names(&a).iter().zip(names(&b)).zip(names(&c)) {
            assert_eq!(pa.file_name(), pb.file_name());
            let (x, y, z) = (std::fs::read(pa).unwrap(), std::fs::read(pb).unwrap(), std::fs::read(pc).unwrap());
            assert!(x == y, "{} differs between runs", pa.display());
            differs |= x != z;
        }
        assert!(differs, "another seed gives other data");
    }

    #[test]
    fn rejects_bad_options() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["14130", "1413099", "14130a", "", "991234", "001234", "１４１３０９"] {
            let mut o = opts(dir.path(), 1, 1);
            o.insurer_no = bad.to_string();
            assert!(matches!(generate(&o), Err(SampleError::InvalidInsurer(_))), "{bad}");
        }
        let mut o = opts(dir.path(), 1, 1);
        for month in [(2026, 13), (2026, 0), (2004, 12), (2100, 1)] {
            o.month = month;
            assert!(matches!(generate(&o), Err(SampleError::InvalidMonth(..))), "{month:?}");
        }
        let mut o = opts(dir.path(), MAX_PERSONS + 1, 1);
        o.month = (2026, 1);
        assert!(matches!(generate(&o), Err(SampleError::TooManyPersons(_))));
    }

    #[test]
    fn kokuhoren_5311_file() {
        let g = generate_in(4000, 7);
        let bytes = read(&g, "kokuhoren_5311");
        let f = g.sum.files.iter().find(|f| f.format == "kokuhoren_5311").unwrap();
        assert!(f.path.ends_with("5311_141309_202610.csv"));
        let lines = crlf_lines(&bytes);
        let ctl: Vec<String> = split_csv(&decode(lines[0])).into_iter().map(|x| x.0).collect();
        assert_eq!(ctl.len(), 12);
        assert_eq!(&ctl[0..3], ["1", "1", "1"]);
        assert_eq!(ctl[4], "531");
        assert_eq!(ctl[6], INS);
        assert_eq!(ctl[8], "14");
        assert_eq!(ctl[9], "7");
        assert_eq!(ctl[10], "202610");
        assert_eq!(ctl[11], "000001");
        let count: u64 = ctl[3].parse().unwrap();
        assert_eq!(count, f.data_records);
        assert_eq!(lines.len() as u64, count + 2);
        assert!(count > 400, "about 20% of persons have 1-3 rows: {count}");
        let end: Vec<String> = split_csv(&decode(lines[lines.len() - 1])).into_iter().map(|x| x.0).collect();
        assert_eq!(end, vec!["3".to_string(), (count + 2).to_string()]);

        let people = register_people(&read(&g, "insured_register_fixed"));
        let processing_end = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        let mut last_date: HashMap<String, NaiveDate> = HashMap::new();
        let (mut quoted_other, mut eight, mut zeros, mut blanks, mut open, mut restr, mut cost, mut sp, mut plans) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0);
        let mut ratios = [0u32; 4];
        let mut kana_marks = false;
        let date_cols =
            [4, 10, 12, 13, 19, 22, 23, 26, 27, 29, 30, 32, 33, 35, 36, 37, 38, 42, 43, 46, 47, 57, 58, 60, 61, 69, 70, 73, 74, 79, 80];
        let end_cols = [13, 23, 27, 30, 33, 36, 38, 43, 47, 58, 61, 70, 74, 80];
        for (i, line) in lines[1..lines.len() - 1].iter().enumerate() {
            let text = decode(line);
            let cells = split_csv(&text);
            assert_eq!(cells.len(), 80, "record {}", i + 2);
            let v: Vec<&str> = cells.iter().map(|c| c.0.as_str()).collect();
            let col = |n: usize| v[n - 1];
            assert_eq!(col(1), "2");
            assert_eq!(col(2), (i + 2).to_string());
            assert_eq!(col(3), "5311");
            assert!(cells[8].1, "kana name always quoted");
            quoted_other += cells.iter().enumerate().filter(|(k, c)| *k != 8 && c.1).count();
            assert!(col(7) == INS || col(7) == format!("00{INS}"));
            eight += usize::from(col(7).len() == 8);
            assert!(col(8).len() == 10 && col(8).bytes().all(|b| b.is_ascii_digit()));
            let kana = col(9);
            assert!(is_hw_kana(kana) && kana.chars().count() <= 25, "{kana}");
            kana_marks |= kana.contains('\u{FF9E}') || kana.contains('\u{FF9F}');
            for &dc in &date_cols {
                zeros += usize::from(col(dc) == "00000000");
                blanks += usize::from(col(dc).is_empty());
                date8(col(dc), end_cols.contains(&dc));
            }
            let date = date8(col(4), false).unwrap();
            assert!(date <= processing_end && date >= NaiveDate::from_ymd_opt(2022, 1, 1).unwrap());
            if let Some(prev) = last_date.insert(col(8).to_string(), date) {
                assert!(prev < date, "one row per person and date, ascending");
            }
            assert!(["1", "2", "3"].contains(&col(5)));
            assert!(["01", "02", "99"].contains(&col(6)));
            let (birth, sex, pkana) = &people[col(8)];
            assert_eq!(date8(col(10), false).unwrap(), *birth);
            assert_eq!(col(11), sex);
            assert_eq!(kana, pkana);
            assert!(["01", "06", "12", "13", "21", "22", "23", "24", "25"].contains(&col(21)));
            let (from, to) = (date8(col(22), false), date8(col(23), true));
            if let (Some(f), Some(t)) = (from, to) {
                assert!(f <= t);
                assert_eq!(t.succ_opt().unwrap().day(), 1, "valid_to ends a month");
                let app = date8(col(19), false).unwrap();
                assert!(app <= f);
                let months = (t.year() - f.year()) * 12 + t.month() as i32 - f.month() as i32;
                let max = if col(17) == "2" { 48 } else { 12 };
                assert!(months <= max, "{f}..{t} for kind {}", col(17));
            } else {
                assert_eq!(col(21), "01");
            }
            if !col(24).is_empty() {
                plans += 1;
                assert!(["1", "2", "3"].contains(&col(24)));
                if col(24) != "2" {
                    assert!(mod10_ok(col(25)) && col(25).len() == 10, "{}", col(25));
                }
            }
            if !col(28).is_empty() {
                assert!(["5032", "10531", "16765", "19705", "27048", "30938", "36217"].contains(&col(28)));
            }
            restr += usize::from(!col(35).is_empty() && col(35) != "00000000" || !col(37).is_empty() && col(37) != "00000000");
            cost += usize::from(!col(48).is_empty());
            sp += usize::from(!col(71).is_empty());
            assert_eq!(col(41), "090");
            let r: usize = col(78).parse().unwrap();
            ratios[r] += 1;
            let cf = date8(col(79), false).unwrap();
            assert!((cf.month(), cf.day()) == (4, 1) || (cf.month(), cf.day()) == (8, 1));
            if col(80) == "99999999" {
                open += 1;
            } else {
                let ct = date8(col(80), true).unwrap();
                assert_eq!((ct.month(), ct.day()), (7, 31));
                assert!(ct > cf && ct.year() - cf.year() <= 1);
            }
        }
        // Same key, same content; no overlapping 負担割合/負担限度額 periods; one level per 認定有効期間.
        let mut by_person: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for line in &lines[1..lines.len() - 1] {
            let v: Vec<String> = split_csv(&decode(line)).into_iter().map(|x| x.0).collect();
            by_person.entry(v[7].clone()).or_default().push(v);
        }
        let present = |s: &str| !s.is_empty() && s != "00000000";
        for rows in by_person.values() {
            for (from_col, cols) in [
                (79, vec![78, 80]),
                (57, vec![48, 51, 52, 53, 54, 55, 56, 58, 75, 76, 77]),
                (26, vec![24, 25, 27]),
                (73, vec![71, 72, 74]),
                (35, vec![36]),
                (37, vec![38]),
                (22, vec![21, 23]),
            ] {
                let mut seen: HashMap<String, Vec<String>> = HashMap::new();
                for v in rows {
                    if present(&v[from_col - 1]) {
                        let content: Vec<String> =
                            cols.iter().map(|&c| if v[c - 1] == "00000000" { String::new() } else { v[c - 1].clone() }).collect();
                        if let Some(old) = seen.insert(v[from_col - 1].clone(), content.clone()) {
                            assert_eq!(old, content, "same key {from_col} carries the same content");
                        }
                    }
                }
                if from_col == 79 || from_col == 57 {
                    let to_col = if from_col == 79 { 80 } else { 58 };
                    let mut periods: Vec<(NaiveDate, Option<NaiveDate>)> = rows
                        .iter()
                        .filter(|v| present(&v[from_col - 1]))
                        .map(|v| (date8(&v[from_col - 1], false).unwrap(), date8(&v[to_col - 1], true)))
                        .collect();
                    periods.sort();
                    periods.dedup();
                    for w in periods.windows(2) {
                        let end = w[0].1.expect("an open end overlaps every later period");
                        assert!(end < w[1].0, "overlap {:?}", w);
                    }
                }
            }
        }
        let n = count as usize;
        assert!(quoted_other > 0 && eight > 0 && zeros > 0 && blanks > 0 && open > 0);
        assert!(kana_marks, "dakuten/handakuten occur");
        assert!(cost * 100 / n >= 4 && cost * 100 / n <= 20, "cost limit {cost}/{n}");
        assert!(sp > 0 && plans > n / 3 && restr < n / 20, "sp {sp} plans {plans} restr {restr}");
        assert!(ratios[1] > ratios[2] + ratios[3] && ratios[2] + ratios[3] > 0, "{ratios:?}");
    }

    fn status(v: &[&str]) -> &'static str {
        let col = |n: usize| v[n - 1];
        let present = |n: usize| !col(n).is_empty() && col(n) != "00000000";
        if ["2", "3", "4"].contains(&col(10)) {
            "withdrawn"
        } else if present(67) {
            "decided"
        } else if present(64) {
            "awaiting_committee"
        } else if present(41) {
            "primary_judged"
        } else if present(29) && present(36) {
            "awaiting_primary_judgement"
        } else if present(36) {
            "awaiting_opinion"
        } else {
            "received"
        }
    }

    fn check_09b(g: &Gen, min_statuses: usize) -> BTreeSet<&'static str> {
        let bytes = read(g, "nintei_09b");
        assert!(!bytes.contains(&b'"'));
        let people = register_people(&read(g, "insured_register_fixed"));
        let lines = crlf_lines(&bytes);
        let f = g.sum.files.iter().find(|f| f.format == "nintei_09b").unwrap();
        assert_eq!(lines.len() as u64, f.data_records);
        let mut statuses = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let date_cols = [6, 13, 24, 25, 28, 29, 35, 36, 41, 63, 64, 67, 69, 70, 285, 286];
        for (i, line) in lines.iter().enumerate() {
            let text = decode(line);
            let v: Vec<&str> = text.split(',').collect();
            assert_eq!(v.len(), 328, "line {}", i + 1);
            let col = |n: usize| v[n - 1];
            assert_eq!(col(1), (i + 1).to_string());
            assert_eq!(col(3), "09B");
            assert_eq!(col(4), INS);
            for &dc in &date_cols {
                date8(col(dc), dc == 25 || dc == 70);
            }
            let app = date8(col(6), false).unwrap();
            assert!(app <= NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
            assert!(keys.insert((col(5).to_string(), col(6).to_string(), col(7).to_string())), "key unique");
            assert!(["1", "2", "3", "4"].contains(&col(8)));
            assert!(["1", "2", "3", "4", "5", "6", "A", "B"].contains(&col(9)));
            assert!(["1", "2", "3", "4"].contains(&col(10)));
            let (birth, sex, kana) = &people[col(5)];
            assert_eq!(date8(col(13), false).unwrap(), *birth);
            assert_eq!(col(15), sex);
            assert_eq!(col(16), kana);
            let a = age(*birth, app);
            assert_eq!(col(14), a.to_string());
            match col(11) {
                "1" => {
                    assert!(a >= 65);
                    assert_eq!(col(71), "99");
                }
                "2" => {
                    assert!((40..=64).contains(&a));
                    let d: u32 = col(71).parse().unwrap();
                    assert!((1..=16).contains(&d));
                }
                x => panic!("category {x}"),
            }
            if let Some(dec) = date8(col(67), false) {
                assert!(dec >= app, "decision not before application");
                assert!(!col(68).is_empty());
            }
            if let (Some(f), Some(t)) = (date8(col(69), false), date8(col(70), true)) {
                assert!(f <= t);
            }
            if !col(26).is_empty() {
                assert!(col(26).len() == 10 && mod10_ok(col(26)));
            }
            if !col(37).is_empty() {
                assert!(col(37).len() == 10 && mod10_ok(col(37)), "{}", col(37));
            }
            if !col(44).is_empty() {
                let (w, d) = col(44).split_once('.').unwrap();
                assert!(w.parse::<u32>().is_ok() && d.len() == 1);
            }
            assert!(["", "01", "02", "99"].contains(&col(72)));
            let survey: Vec<&str> = v[111..187].to_vec();
            if survey.iter().all(|s| s.is_empty()) {
                assert!(date8(col(36), false).is_none(), "surveyed application has answers");
            } else {
                for (k, &pat) in ITEM_PATTERN.iter().enumerate() {
                    let ans: u8 = survey[k].parse().unwrap();
                    assert!((1..=pattern_max(pat)).contains(&ans), "item {} = {ans}", k + 1);
                }
                let j: u8 = col(186).parse().unwrap();
                let d: u8 = col(187).parse().unwrap();
                assert!((1..=10).contains(&j) && (1..=9).contains(&d));
            }
            for t in [col(327), col(328)] {
                let _ = t; // no commas or quotes by construction (checked by the field count)
            }
            statuses.insert(status(&v));
        }
        assert!(statuses.len() >= min_statuses, "{statuses:?}");
        statuses
    }

    #[test]
    fn nintei_09b_file() {
        let g = generate_in(4000, 11);
        let st = check_09b(&g, 7);
        // A decided application with a care level is a 5311 row of the same person.
        let k = read(&g, "kokuhoren_5311");
        let rows: BTreeSet<(String, String, String, String, String)> = crlf_lines(&k)
            .iter()
            .map(|l| split_csv(&decode(l)).into_iter().map(|x| x.0).collect::<Vec<_>>())
            .filter(|v| v[0] == "2")
            .map(|v| (v[7].clone(), v[18].clone(), v[20].clone(), v[21].clone(), v[22].clone()))
            .collect();
        let n = read(&g, "nintei_09b");
        let mut matched = 0;
        for l in crlf_lines(&n) {
            let t = decode(l);
            let v: Vec<&str> = t.split(',').collect();
            if !v[66].is_empty() && v[66] != "00000000" && v[67] != "01" {
                let key = (v[4].to_string(), v[5].to_string(), v[67].to_string(), v[68].to_string(), v[69].to_string());
                assert!(rows.contains(&key), "{key:?}");
                matched += 1;
            }
        }
        assert!(matched > 100);
        assert_eq!(st.len(), 7);
        let f = g.sum.files.iter().find(|f| f.format == "nintei_09b").unwrap();
        let share = f.data_records * 100 / 4000;
        assert!((10..=22).contains(&share), "about 15% of persons apply: {share}%");
        // A tiny sample still shows every status.
        let small = generate_in(7, 1);
        assert_eq!(check_09b(&small, 7).len(), 7);
    }

    #[test]
    fn fixed_width_register() {
        let g = generate_in(4000, 5);
        let bytes = read(&g, "insured_register_fixed");
        let f = g.sum.files.iter().find(|f| f.format == "insured_register_fixed").unwrap();
        assert!(f.path.ends_with("hihokensha_141309.dat"));
        assert_eq!(bytes.len() % 402, 0);
        let recs: Vec<&[u8]> = bytes.chunks(402).collect();
        for r in &recs {
            assert_eq!(&r[400..], b"\r\n");
        }
        let head = recs[0];
        assert_eq!(head[0], b'1');
        assert_eq!(&head[1..7], INS.as_bytes());
        assert_eq!(&head[7..15], b"20261031");
        assert!(head[15..400].iter().all(|&b| b == b' '));
        let tail = recs[recs.len() - 1];
        assert_eq!(tail[0], b'9');
        assert_eq!(&tail[1..7], INS.as_bytes());
        let n: u64 = decode(&tail[7..16]).parse().unwrap();
        assert_eq!(n, recs.len() as u64 - 2);
        assert_eq!(n, f.data_records);
        assert!(tail[16..400].iter().all(|&b| b == b' '));
        assert!(n > 4000 && n < 4000 * 108 / 100, "about 5% second rows: {n}");

        let layout: [(usize, usize); 21] = [
            (1, 1),
            (2, 6),
            (8, 10),
            (18, 3),
            (21, 50),
            (71, 40),
            (111, 7),
            (118, 1),
            (119, 7),
            (126, 120),
            (246, 1),
            (247, 7),
            (254, 3),
            (257, 7),
            (264, 3),
            (267, 1),
            (268, 6),
            (274, 7),
            (281, 7),
            (288, 7),
            (295, 106),
        ];
        let (mut gaiji_codes, mut boundary, mut zero_loss, mut blank_loss, mut second, mut sp2, mut nec) =
            (BTreeSet::new(), BTreeSet::new(), 0, 0, 0, 0, 0);
        let mut prev_key = String::new();
        for r in &recs[1..recs.len() - 1] {
            let fields: Vec<String> = layout.iter().map(|&(s, l)| decode(&r[s - 1..s - 1 + l])).collect();
            assert_eq!(fields[0], "2");
            assert_eq!(fields[1], INS);
            assert!(fields[2].bytes().all(|b| b.is_ascii_digit()) && mod10_ok(&fields[2]));
            let key = format!("{}{}", fields[2], fields[3]);
            assert!(key > prev_key, "sorted by insured_no, history_no");
            prev_key = key;
            second += usize::from(fields[3] == "002");
            assert!(is_hw_kana(fields[4].trim_end()) && !fields[4].trim_end().is_empty());
            for (k, pad_field) in [(5usize, 40usize), (9, 120)] {
                let raw = &r[layout[k].0 - 1..layout[k].0 - 1 + pad_field];
                let mut i = 0;
                while i < raw.len() {
                    assert!(matches!(raw[i], 0x81..=0x9F | 0xE0..=0xFC), "double-byte only");
                    i += 2;
                }
                assert!(!fields[k].trim_end_matches('\u{3000}').is_empty());
            }
            for ch in fields[5].chars() {
                if ('\u{E000}'..='\u{E757}').contains(&ch) {
                    gaiji_codes.insert(ch as u32 - 0xE000 + 0xF040);
                }
            }
            nec += usize::from(fields[9].contains('髙') || fields[9].contains('﨑') || fields[9].contains('①') || fields[9].contains('㈱'));
            let birth = wareki_parse(&fields[6]).unwrap();
            assert!(birth.year() >= 1912 && birth < NaiveDate::from_ymd_opt(1989, 1, 8).unwrap(), "大正-昭和");
            assert!(["1", "2"].contains(&fields[7].as_str()));
            assert!(fields[8].len() == 7 && fields[8].bytes().all(|b| b.is_ascii_digit()));
            let acq = wareki_parse(&fields[11]).unwrap();
            assert!(acq >= NaiveDate::from_ymd_opt(2000, 4, 1).unwrap() || fields[11] == "4010108");
            let a = age(birth, acq.succ_opt().unwrap());
            match fields[10].as_str() {
                "1" => assert!(a >= 65, "第1号 age {a}"),
                "2" => assert!((40..=64).contains(&a), "第2号 age {a}"),
                "9" => assert_eq!(fields[6], "3640107", "only the 昭和64年 edge case"),
                x => panic!("category {x}"),
            }
            assert!(["001", "002", "006", "053", "054", "155", "160"].contains(&fields[12].as_str()), "{}", fields[12]);
            match fields[13].as_str() {
                "0000000" => zero_loss += 1,
                "       " => blank_loss += 1,
                s => {
                    assert!(wareki_parse(s).unwrap() >= acq);
                    assert!(["202", "209"].contains(&fields[14].as_str()));
                }
            }
            match fields[15].as_str() {
                " " | "1" => assert!(fields[16].trim().is_empty() && fields[17].trim().is_empty()),
                "2" => {
                    sp2 += 1;
                    assert!(fields[16].bytes().all(|b| b.is_ascii_digit()) && fields[16] != INS);
                    let from = wareki_parse(&fields[17]).unwrap();
                    if let Some(to) = wareki_parse(&fields[18]) {
                        assert!(from <= to);
                    }
                }
                x => panic!("住所地特例区分 {x:?}"),
            }
            wareki_parse(&fields[19]).unwrap();
            assert!(fields[20].bytes().all(|b| b == b' '));
            for s in [&fields[6], &fields[11], &fields[19]] {
                if ["2151224", "3011225", "4310430", "5010501", "4120401", "3640107", "2010730", "4010108"].contains(&s.as_str()) {
                    boundary.insert(s.clone());
                }
            }
        }
        assert_eq!(boundary.len(), 8, "{boundary:?}");
        assert!(gaiji_codes.contains(&0xF044), "the unmapped 外字 occurs");
        for c in 0xF040..=0xF043 {
            assert!(gaiji_codes.contains(&c), "{c:X}");
        }
        assert!(zero_loss > 0 && blank_loss > 0 && second > 0 && sp2 > 0 && nec > 0);
        // Raw user-defined bytes are present.
        assert!(bytes.windows(2).any(|w| w == [0xF0, 0x40]));
        assert!(bytes.windows(2).any(|w| w == [0xF0, 0x44]));
        // 0x8160 (～) occurs somewhere in the generated files.
        let all = [bytes.clone(), read(&g, "nintei_09b")].concat();
        assert!(all.windows(2).any(|w| w == [0x81, 0x60]));
    }

    #[test]
    fn unmapped_gaiji_is_rare_and_only_f044() {
        let g = generate_in(4000, 3);
        let table = std::fs::read_to_string(&g.sum.gaiji_table).unwrap();
        let mut lines = table.lines();
        assert_eq!(lines.next(), Some("code\tunicode\tmj_name\tnote"));
        let codes: Vec<&str> = lines.map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(codes, ["F040", "F041", "F042", "F043"]);
        assert!(table.contains("U+845B U+E0100") && table.contains("MJ012345"));
        let reg = read(&g, "insured_register_fixed");
        let persons_f044: BTreeSet<&[u8]> =
            reg.chunks(402).filter(|r| r[0] == b'2' && r[70..110].windows(2).any(|w| w == [0xF0, 0x44])).map(|r| &r[7..17]).collect();
        assert_eq!(persons_f044.len(), 2, "persons 199 and 2199");
        assert!(persons_f044.contains(&insured_no(199)[..]) && persons_f044.contains(&insured_no(2199)[..]));
        let nin = read(&g, "nintei_09b");
        let applicants_f044: BTreeSet<Vec<u8>> = crlf_lines(&nin)
            .iter()
            .filter(|l| l.windows(2).any(|w| w == [0xF0, 0x44]))
            .map(|l| l.split(|&b| b == b',').nth(4).unwrap().to_vec())
            .collect();
        assert_eq!(applicants_f044.len(), persons_f044.len(), "every F044 person also applies (09B field 17)");
    }

    #[test]
    fn other_months_and_insurers() {
        let mut boundary_1989 = 0;
        for (ins, month) in [("131011", (2005, 1)), ("011002", (2019, 5)), ("472018", (2030, 3)), ("141003", (2099, 12))] {
            let dir = tempfile::tempdir().unwrap();
            let o = SampleOptions { insurer_no: ins.to_string(), persons: 2500, out_dir: dir.path().to_path_buf(), seed: 9, month };
            let s = generate(&o).unwrap();
            let (y, m) = month;
            let last = NaiveDate::from_ymd_opt(y, m, 1).unwrap().checked_add_months(chrono::Months::new(1)).unwrap().pred_opt().unwrap();
            // 5311
            let k = std::fs::read(&s.files[0].path).unwrap();
            let lines = crlf_lines(&k);
            let ctl: Vec<String> = split_csv(&decode(lines[0])).into_iter().map(|x| x.0).collect();
            assert_eq!(ctl[3].parse::<usize>().unwrap(), lines.len() - 2);
            assert_eq!(ctl[10], format!("{y:04}{m:02}"));
            for l in &lines[1..lines.len() - 1] {
                let v: Vec<String> = split_csv(&decode(l)).into_iter().map(|x| x.0).collect();
                assert_eq!(v.len(), 80);
                let d = date8(&v[3], false).unwrap();
                assert!(d <= last && d > NaiveDate::from_ymd_opt(2000, 4, 1).unwrap());
                for c in [19, 22, 26, 29, 57, 73, 79] {
                    date8(&v[c - 1], false);
                }
            }
            // 09B
            let n = std::fs::read(&s.files[1].path).unwrap();
            let mut st = BTreeSet::new();
            for l in crlf_lines(&n) {
                let t = decode(l);
                let v: Vec<&str> = t.split(',').collect();
                assert_eq!(v.len(), 328);
                let app = date8(v[5], false).unwrap();
                assert!(app <= last);
                for c in [13, 28, 29, 35, 36, 41, 63, 64, 67, 69] {
                    if let Some(d) = date8(v[c - 1], false) {
                        if c != 13 {
                            assert!(d >= app);
                        }
                        if c != 64 {
                            assert!(d <= last, "field {c} {d} after the processing month");
                        }
                    }
                }
                st.insert(status(&v));
            }
            assert_eq!(st.len(), 7, "{ins} {month:?} {st:?}");
            // Register
            let r = std::fs::read(&s.files[2].path).unwrap();
            assert_eq!(r.len() % 402, 0);
            for rec in r.chunks(402).filter(|x| x[0] == b'2') {
                let birth = wareki_parse(&decode(&rec[110..117])).unwrap();
                boundary_1989 += usize::from(&rec[110..117] == b"3640107" || &rec[110..117] == b"4010108");
                let acq = wareki_parse(&decode(&rec[246..253])).unwrap();
                assert!(acq <= last);
                let a = age(birth, acq.succ_opt().unwrap());
                assert!(
                    if rec[245] == b'1' { a >= 65 } else { (40..=64).contains(&a) || rec[245] == b'9' },
                    "{ins} {month:?} {}",
                    decode(&rec[0..20]) + &decode(&rec[110..118]) + &decode(&rec[245..300])
                );
                decode(&rec[70..110]);
                decode(&rec[125..245]);
            }
        }
        assert!(boundary_1989 >= 1, "昭和64年1月7日 / 平成元年1月8日 births once they are 40");
    }

    #[test]
    fn job_file_shape() {
        let g = generate_in(10, 1);
        let job = std::fs::read_to_string(&g.sum.job_file).unwrap();
        assert_eq!(job, job_toml(INS));
        assert!(job.starts_with("# Generated by `kiban sample generate`.\nname = \"sample-141309\"\n"));
        assert!(job.contains("gaiji = \"gaiji/141309.tsv\""));
        assert!(g.sum.gaiji_table.ends_with("gaiji/141309.tsv"));
    }

    #[test]
    fn zero_persons_and_other_insurer() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path(), 0, 1);
        o.insurer_no = "472018".to_string();
        o.month = (2005, 1);
        let s = generate(&o).unwrap();
        let b = std::fs::read(&s.files[0].path).unwrap();
        assert_eq!(b, b"1,1,1,0,531,,472018,,47,7,200501,000001\r\n3,2\r\n");
        assert_eq!(std::fs::read(&s.files[1].path).unwrap().len(), 0);
        assert_eq!(std::fs::read(&s.files[2].path).unwrap().len(), 2 * 402);
        // A different insurer and an early month still generate valid data.
        o.persons = 300;
        let s = generate(&o).unwrap();
        assert!(s.files.iter().all(|f| f.bytes > 0));
    }

    #[test]
    fn dates_and_check_digits() {
        for z in [-1000, 0, 10_957, 20_000, 60_000] {
            let (y, m, d) = civil(z);
            assert_eq!(dfc(y, m, d), z);
        }
        assert_eq!(wareki(dfc(1989, 1, 7)), *b"3640107");
        assert_eq!(wareki(dfc(1989, 1, 8)), *b"4010108");
        assert_eq!(wareki(dfc(2019, 4, 30)), *b"4310430");
        assert_eq!(wareki(dfc(2019, 5, 1)), *b"5010501");
        assert_eq!(wareki(dfc(1926, 12, 24)), *b"2151224");
        assert_eq!(month_end(dfc(2026, 1, 15), 1), dfc(2026, 2, 28));
        assert_eq!(age_eve(dfc(1960, 2, 29), 65), dfc(2025, 2, 28));
        assert_eq!(mod10_check(b"14130"), b'9');
        assert_eq!(mod10_check(b"13101"), b'1');
        assert_eq!(&insured_no(0)[..9], b"001000000");
    }

    #[test]
    fn pools_fit_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Ctx::new(&opts(dir.path(), 1, 1)).unwrap();
        let pl = &ctx.pools;
        for n in pl.surnames.iter().chain(&pl.male).chain(&pl.female).chain(&pl.gaiji).chain(pl.foreign.iter().map(|f| &f.0)) {
            assert!(n.kanji.len() % 2 == 0 && n.kanji.len() <= 18);
            assert!(n.kana.iter().all(|&b| (0xA1..=0xDF).contains(&b) || b == b' '));
        }
        // Longest address with the longest pieces fits 120 bytes.
        let a = Addr { ward: 1, town: 14, style: 0, n1: 9, n2: 40, n3: 30, building: 6, wing: 1, room: 1210 };
        let mut out = Vec::new();
        ctx.addr_bytes(&a, &mut out);
        assert!(out.len() <= 120);
        decode(&out);
    }

    /// The embedded answer patterns agree with the reference tables, when they are around.
    #[test]
    fn survey_patterns_match_reference() {
        let base = Path::new("/work/shared/reference");
        let (Ok(items), Ok(pats)) =
            (std::fs::read_to_string(base.join("survey-items-09B.tsv")), std::fs::read_to_string(base.join("survey-answer-patterns.tsv")))
        else {
            return;
        };
        let mut max: HashMap<String, u8> = HashMap::new();
        for l in pats.lines().skip(1) {
            let v: Vec<&str> = l.split('\t').collect();
            let c: u8 = v[1].parse().unwrap();
            let e = max.entry(v[0].to_string()).or_insert(0);
            *e = (*e).max(c);
        }
        for (i, l) in items.lines().skip(1).enumerate() {
            let v: Vec<&str> = l.split('\t').collect();
            assert_eq!(format!("P{}", ITEM_PATTERN[i]), v[3], "item {}", i + 1);
            assert_eq!(pattern_max(ITEM_PATTERN[i]), max[v[3]]);
        }
    }
}
