//! `kiban report`: rendered by headless Chromium (Debian's `chromium`, installed by scripts/test),
//! screenshotted, and its figures read back from the rendered DOM and compared with `kiban query`.

use crate::fixtures::*;
use crate::validation::faulty_load;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn chromium() -> &'static str {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return c;
        }
    }
    panic!("headless Chromium is needed for the report test: install Debian's `chromium` (scripts/test does)");
}

fn headless(profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium")
}

/// Every start tag's `data-*` attributes, in document order (Chromium serialises them as
/// `name="value"` with `&amp;`-style escapes).
fn data_attributes(dom: &str) -> Vec<BTreeMap<String, String>> {
    let unescape =
        |s: &str| s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let mut out = Vec::new();
    for tag in dom.split('<').skip(1) {
        let Some(end) = tag.find('>') else { continue };
        let mut attrs = BTreeMap::new();
        let mut rest = &tag[..end];
        while let Some(i) = rest.find(" data-") {
            rest = &rest[i + 1..];
            let Some(eq) = rest.find("=\"") else { break };
            let name = rest[..eq].to_string();
            let value_start = eq + 2;
            let Some(close) = rest[value_start..].find('"') else { break };
            attrs.insert(name, unescape(&rest[value_start..value_start + close]));
            rest = &rest[value_start + close..];
        }
        if !attrs.is_empty() {
            out.push(attrs);
        }
    }
    out
}

fn query_csv(store: &Path, sql: &str) -> Vec<Vec<String>> {
    let out = kiban(&["query", sql, "--store", store.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(out.code, 0, "{sql}: {}", out.stderr);
    out.stdout.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

#[test]
fn the_report_renders_in_chromium_and_its_figures_equal_the_query_results() {
    let (ws, out) = faulty_load();
    assert_eq!(out.code, 3, "{}", out.stderr);
    let store = ws.store();
    let page = ws.path().join("report.html");
    let out = kiban(&["report", "latest", "--store", store.to_str().unwrap(), "--out", page.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains(" src="), "self-contained");
    assert!(!html.contains("山田") && !html.contains("ﾔﾏﾀﾞ"), "no names in the report");

    let profile = ws.path().join("chromium-profile");
    let shot = ws.path().join("report.png");
    let s = headless(&profile, &["--window-size=1280,2400", &format!("--screenshot={}", shot.display())], &page);
    assert!(s.status.success(), "chromium screenshot: {}", String::from_utf8_lossy(&s.stderr));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot ({} bytes)", png.len());
    let d = headless(&profile, &["--dump-dom"], &page);
    assert!(d.status.success(), "chromium dump-dom: {}", String::from_utf8_lossy(&d.stderr));
    let dom = String::from_utf8_lossy(&d.stdout).to_string();
    assert!(dom.contains("data-chart=\"care-levels\"") && dom.contains("data-chart=\"quarantine-per-rule\""), "both charts rendered");
    let attrs = data_attributes(&dom);

    // Files: read / accepted / quarantined.
    let page_files: Vec<Vec<String>> = attrs
        .iter()
        .filter(|a| a.contains_key("data-file"))
        .map(|a| ["data-file", "data-read", "data-accepted", "data-quarantined"].iter().map(|k| a[*k].clone()).collect())
        .collect();
    assert_eq!(page_files, query_csv(&store, "SELECT file, read, accepted, quarantined FROM load_files ORDER BY file"));

    // Rules: count per rule id (validation rules; record-level kinds are none in this load).
    let mut page_rules: Vec<Vec<String>> = attrs
        .iter()
        .filter(|a| a.contains_key("data-rule") && a.contains_key("data-severity"))
        .map(|a| vec![a["data-rule"].clone(), a["data-count"].clone()])
        .collect();
    page_rules.sort();
    assert_eq!(page_rules, query_csv(&store, "SELECT rule_id, count(*) FROM rule_hits GROUP BY rule_id ORDER BY rule_id"));
    // The quarantine chart: error rules only.
    let mut chart: Vec<Vec<String>> = attrs
        .iter()
        .filter(|a| a.contains_key("data-rule") && !a.contains_key("data-severity"))
        .map(|a| vec![a["data-rule"].clone(), a["data-count"].clone()])
        .collect();
    chart.sort();
    assert_eq!(
        chart,
        query_csv(&store, "SELECT rule_id, count(*) FROM rule_hits WHERE severity = 'error' GROUP BY rule_id ORDER BY rule_id")
    );
    // Examples name file and record number.
    let examples: Vec<Vec<String>> = attrs
        .iter()
        .filter(|a| a.contains_key("data-example-record"))
        .map(|a| vec![a["data-example-file"].clone(), a["data-example-record"].clone()])
        .collect();
    assert!(examples.contains(&vec!["5311_x.csv".to_string(), "3".to_string()]), "{examples:?}");

    // Care levels: persons by their latest recipient record, computed here another way.
    let mut levels: Vec<Vec<String>> = attrs
        .iter()
        .filter(|a| a.contains_key("data-care-level"))
        .map(|a| vec![a["data-care-level"].clone(), a["data-persons"].clone()])
        .collect();
    levels.sort();
    let want = query_csv(
        &store,
        "SELECT care_level, count(*) FROM recipient r WHERE change_date = \
         (SELECT max(change_date) FROM recipient x WHERE x.insured_no = r.insured_no) GROUP BY care_level ORDER BY care_level",
    );
    assert_eq!(levels, want);
    assert!(!levels.is_empty());
}

#[test]
fn an_unknown_load_is_a_usage_error() {
    let (ws, _) = faulty_load();
    let out =
        kiban(&["report", "no-such-load", "--store", ws.store().to_str().unwrap(), "--out", ws.path().join("r.html").to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no load `no-such-load`"), "{}", out.stderr);
}
