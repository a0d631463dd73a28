//! The `kiban` command line (SPEC §11). Argument parsing lives here; the work is done by the
//! library, whose typed errors this module alone turns into messages and exit statuses:
//! 0 success, 1 failure (nothing stored), 2 usage or configuration error, 3 stored with
//! quarantined records.

mod logging;
mod progress;

use crate::job::catalog::Catalog;
use crate::job::config::Job;
use crate::job::run::{LoadSummary, run_job};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "kiban", version, about = "Carries a municipality's 介護保険 exports into the 介護情報基盤")]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// More detail in the logs (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a transmission job: read → decode → map → store.
    Run {
        /// The job file (jobs/*.toml).
        job: PathBuf,
        /// Print the load summary as JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// SQL over the store: record sets (current and `<set>_versions`), quarantine, warnings,
    /// loads, load_files, load_record_sets, rules, rule_hits, code_tables.
    Query {
        /// One SQL statement.
        sql: String,
        /// The store directory (or take it from --job).
        #[arg(long, env = "KIBAN_STORE", conflicts_with = "job")]
        store: Option<PathBuf>,
        /// A job file whose store to query.
        #[arg(long)]
        job: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = crate::query::output::Format::Table)]
        format: crate::query::output::Format,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write the HTML report of a load (a load id, a version number, or `latest`).
    Report {
        load: String,
        #[arg(long, env = "KIBAN_STORE", conflicts_with = "job")]
        store: Option<PathBuf>,
        #[arg(long)]
        job: Option<PathBuf>,
        /// The insurer, when the store holds several.
        #[arg(long)]
        insurer: Option<String>,
        /// The HTML file to write.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
    },
    /// Synthetic sample exports.
    Sample {
        #[command(subcommand)]
        command: SampleCommand,
    },
    /// The platform's record sets.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum SampleCommand {
    /// Write realistic synthetic exports of every format and a job file that loads them.
    Generate {
        /// 保険者番号 (6 digits).
        #[arg(long)]
        insurer: String,
        /// Number of insured persons.
        #[arg(long)]
        persons: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed gives the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// 処理対象年月 as YYYYMM.
        #[arg(long, default_value = "202610")]
        month: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
    /// List the record sets.
    List,
    /// Show a record set's columns and key.
    Show { name: String },
}

/// Runs the command line; returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    logging::init(cli.log_format, cli.verbose);
    match cli.command {
        Command::Run { job, json } => run(&job, json, cli.log_format),
        Command::Sample { command: SampleCommand::Generate { insurer, persons, out, seed, month } } => {
            let month = match parse_month(&month) {
                Some(m) => m,
                None => {
                    eprintln!("error: --month `{month}` is not YYYYMM");
                    return 2;
                }
            };
            let opts = crate::sample::SampleOptions { insurer_no: insurer, persons, out_dir: out, seed, month };
            let started = std::time::Instant::now();
            match crate::sample::generate(&opts) {
                Ok(summary) => {
                    for f in &summary.files {
                        println!("{}\t{}\t{} data records\t{} bytes", f.path.display(), f.format, f.data_records, f.bytes);
                    }
                    println!("{}\t外字 table", summary.gaiji_table.display());
                    println!("{}\tjob: kiban run {}", summary.job_file.display(), summary.job_file.display());
                    tracing::info!(seconds = started.elapsed().as_secs_f64(), "sample generated");
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    match e {
                        crate::sample::SampleError::InvalidInsurer(_)
                        | crate::sample::SampleError::InvalidMonth(..)
                        | crate::sample::SampleError::TooManyPersons(_) => 2,
                        _ => 1,
                    }
                }
            }
        }
        Command::Schema { command } => schema(command),
        Command::Query { sql, store, job, format, out } => match store_dir(store, job) {
            Err(code) => code,
            Ok(store) => query(&store, &sql, format, out.as_deref()),
        },
        Command::Report { load, store, job, insurer, out } => match store_dir(store, job) {
            Err(code) => code,
            Ok(store) => report(&store, &load, insurer.as_deref(), &out),
        },
    }
}

/// The store a query or report reads: `--store`, or the store of `--job`.
fn store_dir(store: Option<PathBuf>, job: Option<PathBuf>) -> Result<PathBuf, i32> {
    match (store, job) {
        (Some(s), _) => Ok(s),
        (None, Some(j)) => match Job::load(&j) {
            Ok(job) => Ok(job.resolve(&job.file.store)),
            Err(e) => {
                eprintln!("error: {e}");
                Err(2)
            }
        },
        (None, None) => {
            eprintln!("error: give --store <dir> (or KIBAN_STORE) or --job <job.toml>");
            Err(2)
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the query runtime: {e}");
            None
        }
    }
}

fn query(store: &std::path::Path, sql: &str, format: crate::query::output::Format, out: Option<&std::path::Path>) -> i32 {
    use crate::query::QueryError;
    let Some(rt) = runtime() else { return 1 };
    let (schema, batches) = match rt.block_on(crate::query::run(store, sql)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            // A bad statement is the user's to fix; a store that cannot be read is a failure.
            return if matches!(e, QueryError::DataFusion(_) | QueryError::NotAStore { .. }) { 2 } else { 1 };
        }
    };
    let res = match out {
        Some(path) => {
            let tmp = path.with_extension("tmp");
            std::fs::File::create(&tmp)
                .map_err(|e| QueryError::Output(format!("{}: {e}", tmp.display())))
                .and_then(|f| crate::query::output::write(format, &schema, &batches, std::io::BufWriter::new(f)))
                .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| QueryError::Output(format!("{}: {e}", path.display()))))
        }
        None => {
            if format == crate::query::output::Format::Parquet && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                eprintln!("error: Parquet is binary: give --out <file.parquet> or redirect stdout");
                return 2;
            }
            crate::query::output::write(format, &schema, &batches, std::io::BufWriter::new(std::io::stdout()))
        }
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn report(store: &std::path::Path, load: &str, insurer: Option<&str>, out: &std::path::Path) -> i32 {
    use crate::report::ReportError;
    let Some(rt) = runtime() else { return 1 };
    match rt.block_on(crate::report::write_report(store, load, insurer, out)) {
        Ok(data) => {
            println!("{}: report of load {} (insurer {}, version {})", out.display(), data.load_id, data.insurer_no, data.version);
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                ReportError::NoSuchLoad(_) | ReportError::Ambiguous { .. } => 2,
                _ => 1,
            }
        }
    }
}

fn parse_month(s: &str) -> Option<(i32, u32)> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i32 = s[..4].parse().ok()?;
    let m: u32 = s[4..].parse().ok()?;
    (1..=12).contains(&m).then_some((y, m))
}

fn run(job: &std::path::Path, json: bool, log_format: LogFormat) -> i32 {
    let job = match Job::load(job) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let progress = progress::TerminalProgress::new(log_format == LogFormat::Human);
    match run_job(&job, &progress) {
        Ok(summary) => {
            if json {
                match serde_json::to_string_pretty(&summary) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            } else {
                print_summary(&summary);
            }
            summary.exit_code()
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn print_summary(s: &LoadSummary) {
    println!("load {} of job {} for insurer {}: version {} in {}", s.load_id, s.job, s.insurer_no, s.version, s.store.display());
    println!("{:<40} {:<24} {:>10}   {:>10}   {:>11}  {:>8}", "file", "layout", "read", "accepted", "quarantined", "warnings");
    for f in &s.files {
        match &f.rejected {
            None => println!(
                "{:<40} {:<24} {:>10} = {:>10} + {:>11}  {:>8}",
                f.file, f.layout, f.stats.read, f.stats.accepted, f.stats.quarantined, f.stats.warnings
            ),
            Some(reason) => println!("{:<40} {:<24} rejected: {reason}", f.file, f.layout),
        }
    }
    println!("{:<24} {:<12} {:>10} {:>14} {:>10}", "record set", "mode", "this load", "snapshot rows", "conflicts");
    for r in &s.record_sets {
        let mode = match r.mode {
            crate::map::layout::ModeName::Snapshot => "snapshot",
            crate::map::layout::ModeName::Incremental => "incremental",
        };
        println!("{:<24} {:<12} {:>10} {:>14} {:>10}", r.record_set, mode, r.load_rows, r.snapshot_rows, r.key_conflicts);
    }
}

fn schema(cmd: SchemaCommand) -> i32 {
    let catalog = match Catalog::embedded() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match cmd {
        SchemaCommand::List => {
            for (name, s) in &catalog.schemas.sets {
                println!("{name:<26} {:<3} columns  key ({})  {}", s.content_len(), s.key_names().join(", "), s.label);
            }
            0
        }
        SchemaCommand::Show { name } => match catalog.schemas.get(&name) {
            None => {
                eprintln!("error: no record set `{name}` (see `kiban schema list`)");
                2
            }
            Some(s) => {
                println!("{} — {}", s.name, s.label);
                if !s.description.is_empty() {
                    println!("{}", s.description);
                }
                println!("key: {}", s.key_names().join(", "));
                for (i, c) in s.columns.iter().enumerate() {
                    let key = if s.key.contains(&i) { "key" } else { "" };
                    let null = if c.nullable { "null" } else { "not null" };
                    println!("  {:<34} {:<40} {:<8} {:<3} {}", c.name, c.data_type.to_string(), null, key, c.label);
                }
                let rules: Vec<_> = catalog.rules.iter().filter(|r| r.record_set == s.name).collect();
                println!("rules ({}):", rules.len());
                for r in rules {
                    println!("  {:<52} {:<7} {:<3} {}", r.id, r.severity.as_str(), r.kind(), r.message_en);
                }
                0
            }
        },
    }
}
