//! The load report as one self-contained HTML page (`kiban report <load> --out report.html`).
//!
//! [`render`] is a pure function from [`ReportData`] to a `String`: the caller runs the queries
//! (DataFusion over the store) and fills the structs; nothing here reads files, the clock or the
//! environment, so the same load always renders to the same bytes.
//!
//! The page is meant to be mailed to and archived by a municipal auditor, so it must open
//! anywhere, offline, years from now: no external assets (no CDN, fonts or scripts), inline CSS,
//! charts as inline SVG, and no JavaScript at all. The `<svg>` elements carry no `xmlns`, which an
//! HTML parser does not need; that keeps the page free of any `http://` text.
//!
//! Every figure shown is also carried raw (no thousands separators) in a `data-*` attribute of
//! the element that shows it, so tests and auditors' tools can read the numbers back from the
//! rendered DOM instead of scraping formatted text:
//!
//! | element                         | attributes                                                        |
//! |---------------------------------|-------------------------------------------------------------------|
//! | `<section class="summary">`     | `data-insurer-no data-load-id data-version data-committed-at`     |
//! |                                 | `data-total-read data-total-accepted data-total-quarantined`      |
//! |                                 | `data-total-warnings data-balance-all` (`ok` / `mismatch`)        |
//! | balance `<li>`                  | `data-balance-file data-balance` (`ok` / `mismatch`)              |
//! | file `<tr>`                     | `data-file data-layout data-read data-accepted data-quarantined`  |
//! |                                 | `data-warnings data-balance data-rejected` (last only if rejected)|
//! | record set `<tr>`               | `data-record-set data-load-rows data-snapshot-rows`               |
//! |                                 | `data-quarantined-rows`                                           |
//! | rule `<tr>`                     | `data-rule data-severity data-count`                              |
//! | example `<li>`                  | `data-example-file data-example-record`                           |
//! | `<svg>`                         | `data-chart` (`care-levels` / `quarantine-per-rule`)              |
//! | care-level bar `<g>`            | `data-care-level data-persons`                                    |
//! | quarantine bar `<g>`            | `data-rule data-count`                                            |
//! | bar `<rect>`                    | `data-bar-width` (pixels, same as `width`)                        |
//!
//! `data-record-set` is only on record-set rows, so `tr[data-record-set]` selects exactly them; a
//! rule's record set is in its visible cell.
//!
//! The report names records by file and 1-based record number only; it never receives names,
//! addresses or birth dates, and the footer says so.

use std::fmt::{self, Write};

/// Everything the report shows about one load.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    pub insurer_no: String,
    pub load_id: String,
    pub version: u64,
    /// RFC 3339 time the load was committed.
    pub committed_at: String,
    pub files: Vec<FileRow>,
    pub record_sets: Vec<SetRow>,
    pub rules: Vec<RuleRow>,
    /// 要介護状態区分 distribution: persons by their latest recipient record's care level.
    pub care_levels: Vec<CareLevelRow>,
}

/// Counts for one input file of the load.
#[derive(Debug, Clone, Default)]
pub struct FileRow {
    pub file: String,
    pub layout: String,
    pub read: u64,
    pub accepted: u64,
    pub quarantined: u64,
    pub warnings: u64,
    /// Set when the whole file was rejected.
    pub rejected: Option<String>,
}

/// Row counts for one record set.
#[derive(Debug, Clone, Default)]
pub struct SetRow {
    pub record_set: String,
    pub label: String,
    pub load_rows: u64,
    pub snapshot_rows: u64,
    pub quarantined_rows: u64,
}

/// One rule that fired during the load.
#[derive(Debug, Clone, Default)]
pub struct RuleRow {
    pub rule_id: String,
    pub record_set: String,
    /// "error" or "warning" (record-level decode errors come as severity "error" with rule ids
    /// like "record.decode").
    pub severity: String,
    pub message_ja: String,
    pub message_en: String,
    pub count: u64,
    /// Up to 10 (file name, 1-based record number).
    pub examples: Vec<(String, i64)>,
}

/// Persons at one 要介護状態区分.
#[derive(Debug, Clone, Default)]
pub struct CareLevelRow {
    pub code: String,
    pub label: String,
    pub persons: u64,
}

/// Width of the bar area of a chart; the largest value gets exactly this many pixels.
const BAR_WIDTH: u64 = 640;
/// Room left of the bars for the labels.
const LABEL_WIDTH: u64 = 260;
/// Room right of the bars for the number of a full-width bar.
const VALUE_WIDTH: u64 = 130;
const CHART_WIDTH: u64 = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH;
const ROW_HEIGHT: u64 = 24;
const BAR_HEIGHT: u64 = 16;
const CHART_PAD: u64 = 8;
/// Label budget in "half-width units" (ASCII 1, anything else 2): what fits in [`LABEL_WIDTH`]
/// at 12 px, since SVG text never wraps and would run into the bars.
const LABEL_UNITS: usize = 36;

const NO_DATA: &str = "データなし / No data";

const STYLE: &str = r#"
:root { color-scheme: light; }
body {
  margin: 0; color: #1f2328; background: #fff; line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Hiragino Kaku Gothic ProN",
    "Noto Sans CJK JP", "Noto Sans JP", "Yu Gothic", Meiryo, sans-serif;
}
main { max-width: 1060px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; padding-bottom: .2rem; border-bottom: 2px solid #d0d7de; }
.en { color: #57606a; font-size: .85em; font-weight: normal; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1.5rem; margin: 0 0 1rem; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 .55em; border: 1px solid; border-radius: .8em; font-size: .8rem; font-weight: 600; }
.badge.error { color: #a40e26; background: #fde7e9; border-color: #a40e26; }
.badge.warning { color: #7a4d00; background: #fff4d6; border-color: #b07800; }
.badge.other { color: #57606a; background: #f6f8fa; border-color: #8c959f; }
.ok { color: #1a7f37; }
.ng { color: #cf222e; font-weight: 600; }
ul.balance { margin: .25rem 0 0; padding-left: 1.2em; }
ul.examples { margin: 0; padding-left: 1.1em; font-size: .85em; }
p.more { margin: 0; font-size: .85em; color: #57606a; }
p.none { color: #57606a; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-size: 12px; fill: #1f2328; }
svg.chart text.nodata { fill: #57606a; font-size: 14px; }
footer { margin-top: 2.5rem; padding-top: .75rem; border-top: 1px solid #d0d7de; font-size: .85rem; color: #57606a; }
@media print {
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  tr, li, svg.chart { break-inside: avoid; }
  .badge { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// Renders the whole report page.
pub fn render(data: &ReportData) -> String {
    let mut out = String::with_capacity(32 * 1024);
    // `fmt::Write` for `String` never fails; the `Result` only exists because the trait is
    // generic over writers, so there is nothing to handle.
    let _ = write_page(&mut out, data);
    out
}

/// Escapes text for HTML text content and for quoted attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `1234567` → `1,234,567`, for visible text only (data-* attributes keep raw integers).
fn group(n: u64) -> String {
    let digits = n.to_string();
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// [`group`] for record numbers, which arrive as `i64`; a negative one is a caller bug, but it
/// is shown as it is rather than hidden.
fn group_signed(n: i64) -> String {
    if n < 0 { format!("-{}", group(n.unsigned_abs())) } else { group(n.unsigned_abs()) }
}

struct Totals {
    read: u64,
    accepted: u64,
    quarantined: u64,
    warnings: u64,
}

fn totals(files: &[FileRow]) -> Totals {
    // Saturating: a report about absurd counts should still render, not panic or wrap.
    files.iter().fold(Totals { read: 0, accepted: 0, quarantined: 0, warnings: 0 }, |t, f| Totals {
        read: t.read.saturating_add(f.read),
        accepted: t.accepted.saturating_add(f.accepted),
        quarantined: t.quarantined.saturating_add(f.quarantined),
        warnings: t.warnings.saturating_add(f.warnings),
    })
}

/// Whether every record read from the file ended up either accepted or quarantined.
fn balances(f: &FileRow) -> bool {
    f.accepted.checked_add(f.quarantined) == Some(f.read)
}

fn balance_attr(ok: bool) -> &'static str {
    if ok { "ok" } else { "mismatch" }
}

fn is_error(severity: &str) -> bool {
    severity.eq_ignore_ascii_case("error")
}

fn severity_class(severity: &str) -> &'static str {
    if is_error(severity) {
        "error"
    } else if severity.eq_ignore_ascii_case("warning") {
        "warning"
    } else {
        "other"
    }
}

fn write_page(out: &mut String, d: &ReportData) -> fmt::Result {
    out.push_str("<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>介護保険データ 取込レポート / Load report</title>\n");
    writeln!(out, "<style>{STYLE}</style>")?;
    out.push_str("</head>\n<body>\n<main>\n");
    out.push_str("<h1>介護保険データ 取込レポート / Load report</h1>\n");
    write_summary(out, d)?;
    write_files(out, &d.files)?;
    write_record_sets(out, &d.record_sets)?;
    write_rules(out, &d.rules)?;
    write_care_level_chart(out, &d.care_levels)?;
    write_quarantine_chart(out, &d.rules)?;
    write_footer(out);
    out.push_str("</main>\n</body>\n</html>\n");
    Ok(())
}

fn write_summary(out: &mut String, d: &ReportData) -> fmt::Result {
    let t = totals(&d.files);
    let mismatched = d.files.iter().filter(|f| !balances(f)).count();
    writeln!(
        out,
        "<section class=\"summary\" data-insurer-no=\"{}\" data-load-id=\"{}\" data-version=\"{}\" data-committed-at=\"{}\" \
         data-total-read=\"{}\" data-total-accepted=\"{}\" data-total-quarantined=\"{}\" data-total-warnings=\"{}\" \
         data-balance-all=\"{}\">",
        escape(&d.insurer_no),
        escape(&d.load_id),
        d.version,
        escape(&d.committed_at),
        t.read,
        t.accepted,
        t.quarantined,
        t.warnings,
        balance_attr(mismatched == 0),
    )?;
    out.push_str("<dl class=\"meta\">\n");
    let meta: [(&str, &str, String); 8] = [
        ("保険者番号", "Insurer no.", format!("<code>{}</code>", escape(&d.insurer_no))),
        ("取込ID", "Load id", format!("<code>{}</code>", escape(&d.load_id))),
        ("バージョン", "Version", d.version.to_string()),
        ("確定日時", "Committed at", format!("<time datetime=\"{0}\">{0}</time>", escape(&d.committed_at))),
        ("読込件数", "Read", group(t.read)),
        ("受理件数", "Accepted", group(t.accepted)),
        ("隔離件数", "Quarantined", group(t.quarantined)),
        ("警告件数", "Warnings", group(t.warnings)),
    ];
    for (ja, en, value) in meta {
        writeln!(out, "<dt>{ja} <span class=\"en\">/ {en}</span></dt><dd>{value}</dd>")?;
    }
    out.push_str("</dl>\n");

    out.push_str(
        "<p><strong>件数の整合 / Balance check</strong>: 読込 = 受理 + 隔離 <span class=\"en\">(read = accepted + quarantined)</span> — ",
    );
    if d.files.is_empty() {
        out.push_str("<span>ファイルなし / No files</span></p>\n");
    } else if mismatched == 0 {
        out.push_str("<span class=\"ok\">✓ 全ファイルで成立 / Holds for every file</span></p>\n");
    } else {
        writeln!(
            out,
            "<span class=\"ng\">✗ {} ファイルで不成立 / Does not hold for {} file(s)</span></p>",
            group_usize(mismatched),
            group_usize(mismatched)
        )?;
    }
    if !d.files.is_empty() {
        out.push_str("<ul class=\"balance\">\n");
        for f in &d.files {
            let ok = balances(f);
            let (mark, class, rel) = if ok { ("✓", "ok", "=") } else { ("✗", "ng", "≠") };
            writeln!(
                out,
                "<li data-balance-file=\"{}\" data-balance=\"{}\"><span class=\"{class}\">{mark}</span> <code>{}</code>: {} {rel} {} + {}</li>",
                escape(&f.file),
                balance_attr(ok),
                escape(&f.file),
                group(f.read),
                group(f.accepted),
                group(f.quarantined),
            )?;
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    Ok(())
}

fn group_usize(n: usize) -> String {
    group(u64::try_from(n).unwrap_or(u64::MAX))
}

/// A header cell with its English sub-label on a second line.
fn th(out: &mut String, ja: &str, en: &str, numeric: bool) -> fmt::Result {
    let class = if numeric { " class=\"num\"" } else { "" };
    write!(out, "<th scope=\"col\"{class}>{ja}<br><span class=\"en\">{en}</span></th>")
}

fn write_files(out: &mut String, files: &[FileRow]) -> fmt::Result {
    out.push_str("<section class=\"files\">\n<h2>ファイル別件数 / Records per file</h2>\n<table>\n<thead><tr>");
    th(out, "ファイル", "File", false)?;
    th(out, "レイアウト", "Layout", false)?;
    th(out, "読込", "Read", true)?;
    th(out, "受理", "Accepted", true)?;
    th(out, "隔離", "Quarantined", true)?;
    th(out, "警告", "Warnings", true)?;
    th(out, "状態", "Status", false)?;
    out.push_str("</tr></thead>\n<tbody>\n");
    if files.is_empty() {
        out.push_str("<tr><td colspan=\"7\">ファイルなし / No files</td></tr>\n");
    }
    for f in files {
        let rejected_attr = match &f.rejected {
            Some(reason) => format!(" data-rejected=\"{}\"", escape(reason)),
            None => String::new(),
        };
        write!(
            out,
            "<tr data-file=\"{}\" data-layout=\"{}\" data-read=\"{}\" data-accepted=\"{}\" data-quarantined=\"{}\" data-warnings=\"{}\" \
             data-balance=\"{}\"{rejected_attr}>",
            escape(&f.file),
            escape(&f.layout),
            f.read,
            f.accepted,
            f.quarantined,
            f.warnings,
            balance_attr(balances(f)),
        )?;
        write!(
            out,
            "<td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            escape(&f.file),
            escape(&f.layout),
            group(f.read),
            group(f.accepted),
            group(f.quarantined),
            group(f.warnings),
        )?;
        match &f.rejected {
            Some(reason) => writeln!(out, "<td class=\"ng\">却下 / Rejected: {}</td></tr>", escape(reason))?,
            None => out.push_str("<td class=\"ok\">OK</td></tr>\n"),
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    Ok(())
}

fn write_record_sets(out: &mut String, sets: &[SetRow]) -> fmt::Result {
    out.push_str("<section class=\"record-sets\">\n<h2>レコードセット別件数 / Rows per record set</h2>\n<table>\n<thead><tr>");
    th(out, "レコードセット", "Record set", false)?;
    th(out, "名称", "Label", false)?;
    th(out, "今回取込", "Rows in this load", true)?;
    th(out, "スナップショット", "Rows in snapshot", true)?;
    th(out, "隔離", "Quarantined rows", true)?;
    out.push_str("</tr></thead>\n<tbody>\n");
    if sets.is_empty() {
        writeln!(out, "<tr><td colspan=\"5\">{NO_DATA}</td></tr>")?;
    }
    for s in sets {
        writeln!(
            out,
            "<tr data-record-set=\"{}\" data-load-rows=\"{}\" data-snapshot-rows=\"{}\" data-quarantined-rows=\"{}\">\
             <td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&s.record_set),
            s.load_rows,
            s.snapshot_rows,
            s.quarantined_rows,
            escape(&s.record_set),
            escape(&s.label),
            group(s.load_rows),
            group(s.snapshot_rows),
            group(s.quarantined_rows),
        )?;
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    Ok(())
}

fn write_rules(out: &mut String, rules: &[RuleRow]) -> fmt::Result {
    out.push_str("<section class=\"rules\">\n<h2>ルール別件数 / Rule hits</h2>\n");
    if rules.is_empty() {
        out.push_str("<p class=\"none\">ルール違反はありません / No rule fired</p>\n</section>\n");
        return Ok(());
    }
    out.push_str("<table>\n<thead><tr>");
    th(out, "ルール", "Rule", false)?;
    th(out, "レコードセット", "Record set", false)?;
    th(out, "重大度", "Severity", false)?;
    th(out, "内容", "Message", false)?;
    th(out, "件数", "Count", true)?;
    th(out, "例 (ファイル #レコード)", "Examples (file #record)", false)?;
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rules {
        writeln!(
            out,
            "<tr data-rule=\"{}\" data-severity=\"{}\" data-count=\"{}\">\
             <td><code>{}</code></td><td><code>{}</code></td><td><span class=\"badge {}\">{}</span></td>\
             <td><div lang=\"ja\">{}</div><div lang=\"en\" class=\"en\">{}</div></td><td class=\"num\">{}</td><td>",
            escape(&r.rule_id),
            escape(&r.severity),
            r.count,
            escape(&r.rule_id),
            escape(&r.record_set),
            severity_class(&r.severity),
            escape(&r.severity),
            escape(&r.message_ja),
            escape(&r.message_en),
            group(r.count),
        )?;
        if !r.examples.is_empty() {
            out.push_str("<ul class=\"examples\">\n");
            for (file, record) in &r.examples {
                writeln!(
                    out,
                    "<li data-example-file=\"{}\" data-example-record=\"{record}\"><code>{}</code> #{}</li>",
                    escape(file),
                    escape(file),
                    group_signed(*record),
                )?;
            }
            out.push_str("</ul>\n");
        }
        // Examples are capped upstream; say how many hits the list does not show so a short list
        // is not mistaken for the whole story.
        let shown = u64::try_from(r.examples.len()).unwrap_or(u64::MAX);
        let more = r.count.saturating_sub(shown);
        if more > 0 && shown > 0 {
            writeln!(out, "<p class=\"more\">ほか {0} 件 / and {0} more</p>", group(more))?;
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    Ok(())
}

/// One bar of a [`BarChart`].
struct Bar {
    /// `data-*` attributes of the bar's `<g>`, values unescaped.
    attrs: Vec<(&'static str, String)>,
    label: String,
    /// Full description for the hover tooltip, since the visible label may be cut short.
    tooltip: String,
    value: u64,
}

struct BarChart<'a> {
    id: &'static str,
    title: &'a str,
    fill: &'static str,
    bars: Vec<Bar>,
}

/// Bar length in pixels, scaled so that `max` gets the full [`BAR_WIDTH`].
fn bar_width(value: u64, max: u64) -> u64 {
    if max == 0 || value == 0 {
        return 0;
    }
    // u128 so that value × width cannot overflow for any u64 count.
    let scaled = u128::from(value.min(max)) * u128::from(BAR_WIDTH) / u128::from(max);
    // A tiny non-zero count would round to nothing; one pixel keeps "some" distinct from "none".
    u64::try_from(scaled).unwrap_or(BAR_WIDTH).max(1)
}

/// Cuts a label to what fits left of the bars, counting non-ASCII (mostly kanji and kana) as
/// double width.
fn fit_label(s: &str) -> String {
    let units = |c: char| if c.is_ascii() { 1 } else { 2 };
    if s.chars().map(units).sum::<usize>() <= LABEL_UNITS {
        return s.to_owned();
    }
    let mut used = 1; // the ellipsis
    let mut out = String::new();
    for c in s.chars() {
        used += units(c);
        if used > LABEL_UNITS {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

fn write_bar_chart(out: &mut String, chart: &BarChart) -> fmt::Result {
    let max = chart.bars.iter().map(|b| b.value).max().unwrap_or(0);
    let rows = u64::try_from(chart.bars.len()).unwrap_or(u64::MAX);
    // All-zero rows are still drawn (their figures matter to the auditor) with a note below them.
    let note_rows = u64::from(max == 0);
    let height = rows.saturating_add(note_rows).saturating_mul(ROW_HEIGHT).saturating_add(2 * CHART_PAD);
    let title_id = format!("chart-{}-title", chart.id);
    writeln!(
        out,
        "<svg class=\"chart\" data-chart=\"{id}\" role=\"img\" aria-labelledby=\"{title_id}\" viewBox=\"0 0 {CHART_WIDTH} {height}\" \
         width=\"{CHART_WIDTH}\" height=\"{height}\">\n<title id=\"{title_id}\">{title}</title>",
        id = chart.id,
        title = escape(chart.title),
    )?;
    if !chart.bars.is_empty() {
        writeln!(
            out,
            "<line x1=\"{LABEL_WIDTH}\" y1=\"{CHART_PAD}\" x2=\"{LABEL_WIDTH}\" y2=\"{}\" stroke=\"#8c959f\" stroke-width=\"1\"/>",
            CHART_PAD.saturating_add(rows.saturating_mul(ROW_HEIGHT)),
        )?;
    }
    let mut y = CHART_PAD;
    for bar in &chart.bars {
        let width = bar_width(bar.value, max);
        let mid = y + ROW_HEIGHT / 2;
        out.push_str("<g");
        for (name, value) in &bar.attrs {
            write!(out, " {name}=\"{}\"", escape(value))?;
        }
        writeln!(out, ">")?;
        writeln!(out, "<title>{}: {}</title>", escape(&bar.tooltip), group(bar.value))?;
        writeln!(
            out,
            "<text x=\"{}\" y=\"{mid}\" text-anchor=\"end\" dominant-baseline=\"central\">{}</text>",
            LABEL_WIDTH - 8,
            escape(&fit_label(&bar.label)),
        )?;
        writeln!(
            out,
            "<rect x=\"{LABEL_WIDTH}\" y=\"{}\" width=\"{width}\" height=\"{BAR_HEIGHT}\" fill=\"{}\" data-bar-width=\"{width}\"/>",
            y + (ROW_HEIGHT - BAR_HEIGHT) / 2,
            chart.fill,
        )?;
        writeln!(
            out,
            "<text x=\"{}\" y=\"{mid}\" dominant-baseline=\"central\">{}</text>\n</g>",
            LABEL_WIDTH + width + 6,
            group(bar.value),
        )?;
        y = y.saturating_add(ROW_HEIGHT);
    }
    if max == 0 {
        writeln!(
            out,
            "<text class=\"nodata\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"central\">{NO_DATA}</text>",
            CHART_WIDTH / 2,
            y + ROW_HEIGHT / 2,
        )?;
    }
    out.push_str("</svg>\n");
    Ok(())
}

fn write_care_level_chart(out: &mut String, levels: &[CareLevelRow]) -> fmt::Result {
    const TITLE: &str = "要介護度分布 / Care-level distribution";
    writeln!(out, "<section class=\"chart care-levels\">\n<h2>{TITLE}</h2>")?;
    let bars = levels
        .iter()
        .map(|l| {
            let label = if l.label.is_empty() { l.code.clone() } else { format!("{} {}", l.code, l.label) };
            Bar {
                attrs: vec![("data-care-level", l.code.clone()), ("data-persons", l.persons.to_string())],
                tooltip: label.clone(),
                label,
                value: l.persons,
            }
        })
        .collect();
    write_bar_chart(out, &BarChart { id: "care-levels", title: TITLE, fill: "#3b6ea5", bars })?;
    out.push_str("</section>\n");
    Ok(())
}

fn write_quarantine_chart(out: &mut String, rules: &[RuleRow]) -> fmt::Result {
    const TITLE: &str = "ルール別 隔離件数 / Quarantined rows per rule";
    writeln!(out, "<section class=\"chart quarantine-per-rule\">\n<h2>{TITLE}</h2>")?;
    // Warnings do not quarantine anything, so only error rules belong in this chart.
    let bars = rules
        .iter()
        .filter(|r| is_error(&r.severity) && r.count > 0)
        .map(|r| Bar {
            attrs: vec![("data-rule", r.rule_id.clone()), ("data-count", r.count.to_string())],
            label: r.rule_id.clone(),
            tooltip: format!("{} ({}) {}", r.rule_id, r.record_set, r.message_ja),
            value: r.count,
        })
        .collect();
    write_bar_chart(out, &BarChart { id: "quarantine-per-rule", title: TITLE, fill: "#c0392b", bars })?;
    out.push_str("</section>\n");
    Ok(())
}

fn write_footer(out: &mut String) {
    out.push_str(
        "<footer>\n<p>kiban により生成 / Generated by kiban</p>\n\
         <p>本レポートには氏名・住所・生年月日は一切含まれません。レコードはファイル名とレコード番号で示します。<br>\
         <span class=\"en\">Names, addresses and birth dates never appear in this report; records are named by file and record number.</span></p>\n\
         </footer>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A start tag read back from the rendered page.
    #[derive(Debug)]
    struct Tag {
        name: String,
        attrs: Vec<(String, String)>,
    }

    impl Tag {
        fn attr(&self, name: &str) -> Option<&str> {
            self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
    }

    /// Start tags in document order, attributes unescaped. Relies on the page never containing a
    /// raw `<` outside markup, which is what escaping guarantees.
    fn tags(html: &str) -> Vec<Tag> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            rest = &rest[start + 1..];
            let end = rest.find('>').expect("tag is closed");
            let inner = rest[..end].trim_end_matches('/');
            rest = &rest[end + 1..];
            if inner.starts_with('/') || inner.starts_with('!') {
                continue;
            }
            let (name, mut src) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
            let mut attrs = Vec::new();
            loop {
                src = src.trim_start();
                if src.is_empty() {
                    break;
                }
                let (attr, after) = src.split_once("=\"").unwrap_or_else(|| panic!("attribute is quoted: {src}"));
                let (value, after) = after.split_once('"').expect("attribute value is closed");
                attrs.push((attr.to_owned(), unescape(value)));
                src = after;
            }
            out.push(Tag { name: name.to_owned(), attrs });
        }
        out
    }

    fn with_attr<'a>(tags: &'a [Tag], name: &str, attr: &str) -> Vec<&'a Tag> {
        tags.iter().filter(|t| t.name == name && t.attr(attr).is_some()).collect()
    }

    /// The width of the first `<rect>` after the `<g>` whose `attr` is `value`.
    fn bar_width_of(tags: &[Tag], attr: &str, value: &str) -> u64 {
        let g = tags.iter().position(|t| t.name == "g" && t.attr(attr) == Some(value)).unwrap_or_else(|| panic!("bar {attr}={value}"));
        let rect = tags[g..].iter().find(|t| t.name == "rect").expect("bar has a rect");
        rect.attr("width").expect("rect width").parse().expect("integer width")
    }

    /// Every "No data" note lies inside the height of its chart's `viewBox`, where it can be seen.
    fn assert_no_data_inside_view_box(tags: &[Tag], expected: usize) {
        let mut height = 0.0;
        let mut seen = 0;
        for t in tags {
            if t.name == "svg" {
                let view_box = t.attr("viewBox").expect("svg has a viewBox");
                height = view_box.split(' ').nth(3).expect("four numbers").parse::<f64>().expect("numeric height");
            }
            if t.name == "text" && t.attr("class") == Some("nodata") {
                let y: f64 = t.attr("y").expect("text y").parse().expect("numeric y");
                assert!(y > 0.0 && y < height, "No data at y={y} outside height {height}");
                seen += 1;
            }
        }
        assert_eq!(seen, expected);
    }

    fn sample() -> ReportData {
        ReportData {
            insurer_no: "131016".into(),
            load_id: "L-2025-04-01".into(),
            version: 7,
            committed_at: "2025-04-01T09:30:00+09:00".into(),
            files: vec![
                FileRow {
                    file: "jukyu.csv".into(),
                    layout: "jukyu_v1".into(),
                    read: 1234,
                    accepted: 1200,
                    quarantined: 34,
                    warnings: 5,
                    rejected: None,
                },
                FileRow {
                    file: "shikaku.txt".into(),
                    layout: "shikaku_v2".into(),
                    rejected: Some("CP932 として読めません".into()),
                    ..Default::default()
                },
            ],
            record_sets: vec![SetRow {
                record_set: "recipient".into(),
                label: "受給者".into(),
                load_rows: 1200,
                snapshot_rows: 98765,
                quarantined_rows: 34,
            }],
            rules: vec![
                RuleRow {
                    rule_id: "record.decode".into(),
                    record_set: "recipient".into(),
                    severity: "error".into(),
                    message_ja: "デコードできません".into(),
                    message_en: "cannot decode".into(),
                    count: 30,
                    examples: vec![("jukyu.csv".into(), 17), ("jukyu.csv".into(), 1002)],
                },
                RuleRow {
                    rule_id: "recipient.period".into(),
                    record_set: "recipient".into(),
                    severity: "error".into(),
                    message_ja: "期間が逆転".into(),
                    message_en: "period reversed".into(),
                    count: 4,
                    examples: vec![("jukyu.csv".into(), 9)],
                },
                RuleRow {
                    rule_id: "recipient.kana".into(),
                    record_set: "recipient".into(),
                    severity: "warning".into(),
                    message_ja: "カナ不正".into(),
                    message_en: "bad kana".into(),
                    count: 5,
                    examples: vec![],
                },
            ],
            care_levels: vec![
                CareLevelRow { code: "21".into(), label: "要介護1".into(), persons: 200 },
                CareLevelRow { code: "22".into(), label: "要介護2".into(), persons: 100 },
                CareLevelRow { code: "25".into(), label: "要介護5".into(), persons: 0 },
            ],
        }
    }

    #[test]
    fn escape_replaces_all_five_characters() {
        assert_eq!(escape(r#"<a&b>"'.csv"#), "&lt;a&amp;b&gt;&quot;&#39;.csv");
        assert_eq!(escape("受給者.csv"), "受給者.csv");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn hostile_names_are_escaped_in_text_and_attributes() {
        let name = r#"<a&b>"'.csv"#;
        let mut data = sample();
        data.files[0].file = name.into();
        data.rules[0].examples[0].0 = name.into();
        data.rules[0].rule_id = "<script>alert(1)</script>".into();
        data.rules[0].message_ja = "</td><td>".into();
        data.care_levels[0].code = "\"><x".into();
        let html = render(&data);

        assert!(!html.contains("<a&b>"), "raw name leaked");
        assert!(!html.contains("<script"), "raw rule id leaked");
        assert!(!html.contains("\"><x"), "raw care-level code leaked");
        assert!(html.contains(r#"data-file="&lt;a&amp;b&gt;&quot;&#39;.csv""#));
        assert!(html.contains(r#"<code>&lt;a&amp;b&gt;&quot;&#39;.csv</code>"#));

        let tags = tags(&html);
        let files = with_attr(&tags, "tr", "data-file");
        assert_eq!(files.first().and_then(|t| t.attr("data-file")), Some(name));
        let examples = with_attr(&tags, "li", "data-example-file");
        assert_eq!(examples.first().and_then(|t| t.attr("data-example-file")), Some(name));
        assert_eq!(with_attr(&tags, "tr", "data-rule").first().and_then(|t| t.attr("data-rule")), Some("<script>alert(1)</script>"));
        assert_eq!(with_attr(&tags, "g", "data-care-level").first().and_then(|t| t.attr("data-care-level")), Some("\"><x"));
    }

    #[test]
    fn summary_carries_metadata_totals_and_balance() {
        let mut data = sample();
        data.files.push(FileRow { file: "bad.csv".into(), read: 10, accepted: 7, quarantined: 2, ..Default::default() });
        let html = render(&data);
        let tags = tags(&html);
        let summary = tags.iter().find(|t| t.name == "section" && t.attr("class") == Some("summary")).expect("summary");
        assert_eq!(summary.attr("data-insurer-no"), Some("131016"));
        assert_eq!(summary.attr("data-load-id"), Some("L-2025-04-01"));
        assert_eq!(summary.attr("data-version"), Some("7"));
        assert_eq!(summary.attr("data-committed-at"), Some("2025-04-01T09:30:00+09:00"));
        assert_eq!(summary.attr("data-total-read"), Some("1244"));
        assert_eq!(summary.attr("data-total-accepted"), Some("1207"));
        assert_eq!(summary.attr("data-total-quarantined"), Some("36"));
        assert_eq!(summary.attr("data-balance-all"), Some("mismatch"));

        let balance: Vec<_> = with_attr(&tags, "li", "data-balance-file")
            .iter()
            .map(|t| (t.attr("data-balance-file").unwrap_or(""), t.attr("data-balance").unwrap_or("")))
            .collect();
        assert_eq!(balance, [("jukyu.csv", "ok"), ("shikaku.txt", "ok"), ("bad.csv", "mismatch")]);
        assert!(html.contains("✗ 1 ファイルで不成立"));
        assert!(html.contains("10 ≠ 7 + 2"));
        assert!(html.contains("1,234 = 1,200 + 34"));

        let good = render(&sample());
        assert!(good.contains("data-balance-all=\"ok\""));
        assert!(good.contains("✓ 全ファイルで成立"));
    }

    #[test]
    fn table_rows_carry_raw_numbers_and_show_grouped_ones() {
        let html = render(&sample());
        let tags = tags(&html);

        let files = with_attr(&tags, "tr", "data-file");
        assert_eq!(files.len(), 2);
        let f = files[0];
        assert_eq!(
            ["data-file", "data-layout", "data-read", "data-accepted", "data-quarantined", "data-warnings"].map(|a| f.attr(a)),
            [Some("jukyu.csv"), Some("jukyu_v1"), Some("1234"), Some("1200"), Some("34"), Some("5")]
        );
        assert_eq!(f.attr("data-rejected"), None);
        assert_eq!(files[1].attr("data-rejected"), Some("CP932 として読めません"));
        assert!(html.contains("<td class=\"num\">1,234</td>"));
        assert!(html.contains("却下 / Rejected: CP932 として読めません"));

        let sets = with_attr(&tags, "tr", "data-record-set");
        assert_eq!(sets.len(), 1, "only record-set rows carry data-record-set");
        let s = sets[0];
        assert_eq!(
            ["data-record-set", "data-load-rows", "data-snapshot-rows", "data-quarantined-rows"].map(|a| s.attr(a)),
            [Some("recipient"), Some("1200"), Some("98765"), Some("34")]
        );
        assert!(html.contains("<td class=\"num\">98,765</td>"));

        let rules: Vec<_> = with_attr(&tags, "tr", "data-rule")
            .iter()
            .map(|t| (t.attr("data-rule").unwrap_or(""), t.attr("data-severity").unwrap_or(""), t.attr("data-count").unwrap_or("")))
            .collect();
        assert_eq!(rules, [("record.decode", "error", "30"), ("recipient.period", "error", "4"), ("recipient.kana", "warning", "5")]);
        assert!(html.contains("<span class=\"badge error\">error</span>"));
        assert!(html.contains("<span class=\"badge warning\">warning</span>"));

        let examples: Vec<_> = with_attr(&tags, "li", "data-example-file")
            .iter()
            .map(|t| (t.attr("data-example-file").unwrap_or(""), t.attr("data-example-record").unwrap_or("")))
            .collect();
        assert_eq!(examples, [("jukyu.csv", "17"), ("jukyu.csv", "1002"), ("jukyu.csv", "9")]);
        assert!(html.contains("<code>jukyu.csv</code> #1,002"));
        assert!(html.contains("ほか 28 件 / and 28 more"));
    }

    #[test]
    fn charts_carry_their_figures() {
        let html = render(&sample());
        let tags = tags(&html);
        for chart in ["care-levels", "quarantine-per-rule"] {
            let svg = tags.iter().find(|t| t.name == "svg" && t.attr("data-chart") == Some(chart)).expect("chart svg");
            assert_eq!(svg.attr("role"), Some("img"));
            assert!(svg.attr("viewBox").is_some_and(|v| v.starts_with("0 0 ")));
        }
        let levels: Vec<_> = with_attr(&tags, "g", "data-care-level")
            .iter()
            .map(|t| (t.attr("data-care-level").unwrap_or(""), t.attr("data-persons").unwrap_or("")))
            .collect();
        assert_eq!(levels, [("21", "200"), ("22", "100"), ("25", "0")]);
        assert!(html.contains(">21 要介護1</text>"));

        // Only error rules with hits: the warning rule must not be drawn.
        let quarantine: Vec<_> = with_attr(&tags, "g", "data-rule")
            .iter()
            .map(|t| (t.attr("data-rule").unwrap_or(""), t.attr("data-count").unwrap_or("")))
            .collect();
        assert_eq!(quarantine, [("record.decode", "30"), ("recipient.period", "4")]);
        assert_eq!(html.matches("<title").count(), 1 + 2 + 3 + 2, "page, two charts, five bars");
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let mut data = sample();
        data.rules[1].count = 15;
        data.rules.push(RuleRow { rule_id: "zero".into(), severity: "error".into(), count: 0, ..Default::default() });
        let html = render(&data);
        let tags = tags(&html);
        assert_eq!(bar_width_of(&tags, "data-care-level", "21"), BAR_WIDTH);
        assert_eq!(bar_width_of(&tags, "data-care-level", "22"), BAR_WIDTH / 2);
        assert_eq!(bar_width_of(&tags, "data-care-level", "25"), 0);
        assert!(!tags.iter().any(|t| t.name == "g" && t.attr("data-rule") == Some("zero")), "zero-count rule drawn");
        let quarantine: Vec<_> = tags.iter().filter(|t| t.name == "g" && t.attr("data-rule").is_some()).collect();
        assert_eq!(quarantine.len(), 2);
        assert_eq!(bar_width_of(&tags, "data-rule", "record.decode"), BAR_WIDTH);
        assert_eq!(bar_width_of(&tags, "data-rule", "recipient.period"), BAR_WIDTH / 2);

        assert_eq!(bar_width(1, u64::MAX), 1, "tiny non-zero stays visible");
        assert_eq!(bar_width(u64::MAX, u64::MAX), BAR_WIDTH);
        assert_eq!(bar_width(5, 0), 0);
    }

    #[test]
    fn empty_data_renders_and_says_so() {
        let html = render(&ReportData::default());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.ends_with("</html>\n"));
        assert!(html.contains("ルール違反はありません / No rule fired"));
        assert!(html.contains("ファイルなし / No files"));
        assert_eq!(html.matches(">データなし / No data</text>").count(), 2, "both charts say No data");
        assert!(!html.contains("NaN") && !html.contains("inf"));
        let tags = tags(&html);
        assert_no_data_inside_view_box(&tags, 2);
        assert!(!tags.iter().any(|t| t.name == "rect"));
        assert!(!tags.iter().any(|t| t.attr("data-rule").is_some() || t.attr("data-care-level").is_some()));
    }

    #[test]
    fn all_zero_care_levels_keep_their_rows_and_say_no_data() {
        let mut data = sample();
        for level in &mut data.care_levels {
            level.persons = 0;
        }
        let html = render(&data);
        let tags = tags(&html);
        assert_eq!(with_attr(&tags, "g", "data-care-level").len(), 3);
        assert_eq!(bar_width_of(&tags, "data-care-level", "21"), 0);
        assert_no_data_inside_view_box(&tags, 1);
        assert_eq!(html.matches(">データなし / No data</text>").count(), 1, "only the care-level chart is empty");
    }

    #[test]
    fn page_is_self_contained() {
        let mut data = sample();
        data.files[0].file = "report.csv".into();
        let html = render(&data);
        for needle in ["http://", "https://", "src=", "href=", "<script", "<link", "url(", "@import", "@font-face"] {
            assert!(!html.contains(needle), "page contains {needle}");
        }
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<meta name=\"viewport\""));
        assert!(html.contains("\"Hiragino Sans\"") && html.contains("\"Noto Sans CJK JP\""));
    }

    #[test]
    fn sections_come_in_order() {
        let html = render(&sample());
        let order = [
            "<h1>介護保険データ 取込レポート / Load report</h1>",
            "data-total-read=",
            "ファイル別件数 / Records per file",
            "data-snapshot-rows=",
            "data-severity=",
            "data-chart=\"care-levels\"",
            "data-chart=\"quarantine-per-rule\"",
            "Generated by kiban",
            "Names, addresses and birth dates never appear in this report",
        ];
        let positions: Vec<usize> = order.iter().map(|n| html.find(n).unwrap_or_else(|| panic!("missing {n}"))).collect();
        assert!(positions.is_sorted(), "{positions:?}");
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(group_signed(-1234), "-1,234");
        assert_eq!(group_signed(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn long_labels_are_cut_and_extreme_counts_do_not_panic() {
        let long = "要介護".repeat(40);
        let cut = fit_label(&long);
        assert!(cut.ends_with('…'));
        assert!(cut.chars().count() < long.chars().count());
        assert_eq!(fit_label("short"), "short");

        let data = ReportData {
            files: vec![
                FileRow { file: "a".into(), read: u64::MAX, accepted: u64::MAX, quarantined: u64::MAX, ..Default::default() },
                FileRow { file: "b".into(), read: u64::MAX, ..Default::default() },
            ],
            rules: vec![RuleRow {
                rule_id: long.clone(),
                severity: "ERROR".into(),
                count: u64::MAX,
                examples: vec![("x".into(), -1)],
                ..Default::default()
            }],
            care_levels: vec![CareLevelRow { code: long, label: String::new(), persons: u64::MAX }],
            ..Default::default()
        };
        let html = render(&data);
        assert!(html.contains("data-total-read=\"18446744073709551615\""), "totals saturate");
        assert!(html.contains("data-balance-file=\"a\" data-balance=\"mismatch\""), "overflowing sum is no balance");
        let tags = tags(&html);
        assert_eq!(with_attr(&tags, "g", "data-rule").len(), 1, "severity compared case-insensitively");
    }
}
