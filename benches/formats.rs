//! Decode + map throughput per source format: rows/s and MB/s through `ingest_file`, on exports
//! from `kiban sample generate` (KIBAN_BENCH_PERSONS persons, default 50,000). For the 主治医意見書
//! XML also the reader alone (`read::xml`, no mapping): opinions/s and MB/s.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiban::codec::gaiji::GaijiTable;
use kiban::job::catalog::Catalog;
use kiban::map::compile::SourceFormat;
use kiban::map::ingest::{FileContext, ingest_file};
use kiban::sample::{SampleOptions, generate};
use std::hint::black_box;

fn formats(c: &mut Criterion) {
    let persons = std::env::var("KIBAN_BENCH_PERSONS").ok().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let summary =
        generate(&SampleOptions { insurer_no: "141309".into(), persons, out_dir: dir.path().to_path_buf(), seed: 1, month: (2026, 10) })
            .expect("sample");
    let catalog = Catalog::embedded().expect("catalog");
    let gaiji = GaijiTable::from_tsv(&std::fs::read_to_string(&summary.gaiji_table).expect("gaiji")).expect("gaiji table");
    for f in &summary.files {
        let layout = catalog.layout(f.format, dir.path()).expect("layout");
        let name = f.path.file_name().and_then(|s| s.to_str()).unwrap_or("").to_string();
        let ctx = FileContext { layout: &layout, eras: &catalog.eras, gaiji: &gaiji, insurer_no: "141309", file_name: &name, file_seq: 0 };
        // Two files share the XML layout: name the group by the file's encoding too.
        let group = match name.rsplit_once('_').map(|(_, e)| e) {
            Some("sjis.xml") => format!("{} (Shift_JIS)", f.format),
            Some("utf8.xml") => format!("{} (UTF-8)", f.format),
            _ => f.format.to_string(),
        };
        if let SourceFormat::Xml { plan, .. } = &layout.format {
            let read_all = || {
                let mut n = 0u64;
                let file = std::io::BufReader::new(std::fs::File::open(&f.path).expect("open"));
                kiban::read::xml::read_stream(plan, file, |batch, _| {
                    n += batch.len() as u64;
                    Ok::<(), ()>(())
                })
                .expect("read");
                n
            };
            let mut g = c.benchmark_group(format!("{group} reader only"));
            g.sample_size(10);
            g.throughput(Throughput::Bytes(f.bytes));
            g.bench_function("MB/s", |b| b.iter(|| black_box(read_all())));
            g.throughput(Throughput::Elements(f.data_records));
            g.bench_function("opinions/s", |b| b.iter(|| black_box(read_all())));
            g.finish();
        }
        let mut g = c.benchmark_group(group);
        g.sample_size(10);
        g.throughput(Throughput::Bytes(f.bytes));
        g.bench_function("MB/s", |b| b.iter(|| black_box(ingest_file(&ctx, &f.path, &mut |_| {}).expect("ingest").stats.accepted)));
        g.throughput(Throughput::Elements(f.data_records));
        g.bench_function("rows/s", |b| b.iter(|| black_box(ingest_file(&ctx, &f.path, &mut |_| {}).expect("ingest").stats.accepted)));
        g.finish();
    }
}

criterion_group!(benches, formats);
criterion_main!(benches);
