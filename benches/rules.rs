//! Row rules per record set over 1M rows (target: under 0.3 s per 1M rows on 2 cores). The rows
//! are real: `kiban sample generate` exports read by `ingest_file`, repeated up to 1M rows.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiban::codec::gaiji::GaijiTable;
use kiban::job::catalog::Catalog;
use kiban::map::builder::SetRows;
use kiban::map::ingest::{FileContext, ingest_file};
use kiban::sample::{SampleOptions, generate};
use kiban::validate::Validator;
use kiban::validate::apply::apply_row_rules;
use std::collections::BTreeMap;
use std::hint::black_box;

const ROWS: usize = 1_000_000;

fn rules(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts =
        SampleOptions { insurer_no: "141309".into(), persons: 60_000, out_dir: dir.path().to_path_buf(), seed: 1, month: (2026, 10) };
    let summary = generate(&opts).expect("sample");
    let catalog = Catalog::embedded().expect("catalog");
    let gaiji = GaijiTable::from_tsv(&std::fs::read_to_string(&summary.gaiji_table).expect("gaiji")).expect("gaiji table");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
    let validator = Validator::compile(&catalog.schemas.sets, &catalog.rules, &catalog.codes, today).expect("rules");
    // Rows of every set, as ingestion yields them.
    let mut rows: BTreeMap<String, Vec<arrow::array::RecordBatch>> = BTreeMap::new();
    for f in &summary.files {
        let layout = catalog.layout(f.format, dir.path()).expect("layout");
        let name = f.path.file_name().and_then(|s| s.to_str()).unwrap_or("").to_string();
        let ctx = FileContext { layout: &layout, eras: &catalog.eras, gaiji: &gaiji, insurer_no: "141309", file_name: &name, file_seq: 0 };
        let out = ingest_file(&ctx, &f.path, &mut |_| {}).expect("ingest");
        for (o, part) in layout.outputs.iter().zip(out.rows) {
            let schema = validator.row_schema(&o.set.name).expect("schema");
            if part.order_date.is_empty() {
                continue;
            }
            rows.entry(o.set.name.clone()).or_default().push(arrow::array::RecordBatch::try_new(schema, part.columns).expect("batch"));
        }
    }
    for set in ["recipient", "certification", "certification_survey", "insured_person", "copayment_ratio"] {
        let Some(batches) = rows.get(set) else { continue };
        let schema = batches[0].schema();
        let one = arrow::compute::concat_batches(&schema, batches).expect("concat");
        // Repeat the real rows up to 1M.
        let copies = ROWS.div_ceil(one.num_rows());
        let big = arrow::compute::concat_batches(&schema, &vec![one; copies]).expect("concat").slice(0, ROWS);
        let big = arrow::compute::concat_batches(&schema, [&big]).expect("compact");
        let n_rules = validator.row_rule_count(set);
        let mut g = c.benchmark_group(format!("row_rules/{set}/{n_rules}_rules"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(ROWS as u64));
        g.bench_function("1M_rows", |b| {
            b.iter(|| {
                let mut parts = BTreeMap::from([(
                    set.to_string(),
                    vec![SetRows { columns: big.columns().to_vec(), order_date: vec![0; ROWS], file_seq: 0 }],
                )]);
                black_box(apply_row_rules(&validator, &mut parts).expect("rules").quarantined.len())
            })
        });
        g.finish();
    }
}

criterion_group!(benches, rules);
criterion_main!(benches);
