//! The `kiban` command line (SPEC §11). Argument parsing lives here; the work is done by the
//! library, whose typed errors this module alone turns into messages and exit statuses:
//! 0 success, 1 failure (nothing stored), 2 usage or configuration error, 3 stored with
//! quarantined records.

mod card;
mod diff;
mod loads;
mod logging;
mod progress;
mod publish;
mod schedule;

use crate::job::catalog::Catalog;
use crate::job::config::Job;
use crate::job::run::{LoadSummary, RunOutcome, run_job};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "kiban", version, about = "Carries a municipality's 介護保険 exports into the 介護情報基盤")]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// More detail in the logs (-v info, -vv debug, -vvv trace with APDUs, PINs masked). RUST_LOG overrides.
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
    /// Run a transmission job: read → decode → map → validate → store → diff → publish.
    Run {
        /// The job file (jobs/*.toml).
        job: PathBuf,
        /// Print the load summary as JSON on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run every job of a directory (`*.toml`) on the cron `schedule` in its file, each run a
    /// `kiban run <job> --json` child process, never two runs of one job at once; each run is
    /// logged with its load id and exit status. SIGINT/SIGTERM: no new runs, wait, exit 0.
    Schedule {
        /// The directory of job files.
        jobs_dir: PathBuf,
        /// Start at most N runs in total, exit 0 when they have finished (tests, a one-off catch-up).
        #[arg(long, value_name = "N")]
        max_runs: Option<u64>,
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
        #[command(flatten)]
        at: StoreOpts,
        /// The HTML file to write.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
    },
    /// The ledger's loads: what was loaded, when, from which files, counts and changes per set.
    Loads {
        #[command(subcommand)]
        command: LoadsCommand,
    },
    /// The diff stage alone: changes between two versions of a store (default: the latest
    /// against its parent); counts on stdout, change rows as Parquet with --out.
    Diff {
        #[command(flatten)]
        at: StoreOpts,
        /// The old version (default: the new version's parent).
        #[arg(long)]
        from: Option<u64>,
        /// The new version (default: the latest).
        #[arg(long)]
        to: Option<u64>,
        /// Only this record set.
        #[arg(long)]
        set: Option<String>,
        /// A directory for `<set>.parquet` files of change rows.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The publish stage alone: send a stored load that is not yet published (an earlier run
    /// failed to reach the platform) to the job's platform, and record the receipt.
    Publish {
        /// The load id (`kiban loads list`).
        load: String,
        /// The job file: its ledger, store and [platform].
        #[arg(long)]
        job: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The reference platform of the publish protocol.
    Platform {
        #[command(subcommand)]
        command: PlatformCommand,
    },
    /// The マイナンバーカード in a PC/SC reader (JPKI auth side only), and a simulated card.
    Card {
        #[command(subcommand)]
        command: CardCommand,
    },
    /// Log in to a platform with the マイナンバーカード: the card signs the platform's challenge
    /// (or authenticates TLS itself with --card-tls); the 60-minute token is kept in a file only
    /// you can read, and sent by `kiban loads replay` to that platform.
    Login {
        /// The platform, https://host:port.
        #[arg(long)]
        platform: String,
        /// A job whose [platform] names the CA and the terminal certificate.
        #[arg(long)]
        job: Option<PathBuf>,
        #[command(flatten)]
        tls: TlsOpts,
        /// The reader (default: the first with a card).
        #[arg(long)]
        reader: Option<String>,
        /// Read the PIN from this file descriptor (e.g. `--pin-fd 3 3<pin-file`) instead of the terminal.
        #[arg(long)]
        pin_fd: Option<i32>,
        /// Authenticate the TLS connection with the card's key (TLS 1.2) instead of signing a challenge
        /// over the terminal certificate's connection.
        #[arg(long)]
        card_tls: bool,
        /// Where to keep the token (default: ~/.local/state/kiban/logins/<host>_<port>.json).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Seconds to wait for a card to be inserted.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Certificates for the demo and for tests.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
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

/// Which store a command reads, and which of its insurers.
#[derive(clap::Args, Debug)]
pub struct StoreOpts {
    /// The store directory (or take it from --job).
    #[arg(long, env = "KIBAN_STORE", conflicts_with = "job")]
    store: Option<PathBuf>,
    /// A job file whose store to read.
    #[arg(long)]
    job: Option<PathBuf>,
    /// The insurer, when the store holds several.
    #[arg(long)]
    insurer: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LedgerOpts {
    /// A job file: its ledger (and store).
    #[arg(long, conflicts_with = "ledger")]
    job: Option<PathBuf>,
    /// A ledger: a SQLite file or a postgres:// URL.
    #[arg(long, env = "KIBAN_LEDGER")]
    ledger: Option<String>,
    /// The store, to check that the ledger's versions are on disk (default: the job's).
    #[arg(long)]
    store: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum LoadsCommand {
    /// Loads, newest first.
    List {
        #[command(flatten)]
        at: LedgerOpts,
        /// Only this insurer.
        #[arg(long)]
        insurer: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u64,
        #[arg(long)]
        json: bool,
    },
    /// One load: files, counts and changes per record set, batches, receipt, events.
    Show {
        load: String,
        #[command(flatten)]
        at: LedgerOpts,
        #[arg(long)]
        json: bool,
    },
    /// Re-send a stored load's changes to a platform (idempotent there: a load it committed
    /// answers with its receipt). Replaying loads in order rebuilds a platform's state.
    Replay {
        load: String,
        #[command(flatten)]
        at: LedgerOpts,
        /// The platform, https://host:port.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        tls: TlsOpts,
        #[arg(long)]
        json: bool,
    },
    /// Compare the platform's state digest per record set with the store's last published
    /// version; exit 1 when any differs.
    Verify {
        #[command(flatten)]
        at: LedgerOpts,
        /// The insurer (default: the job's).
        #[arg(long)]
        insurer: Option<String>,
        /// The platform (default: the job's).
        #[arg(long)]
        platform: Option<String>,
        #[command(flatten)]
        tls: TlsOpts,
        #[arg(long)]
        json: bool,
    },
}

/// TLS files for talking to a platform; default: the job's [platform].
#[derive(clap::Args, Debug)]
pub struct TlsOpts {
    /// CA certificates (PEM) the platform's server certificate chains to.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The terminal certificate (PEM).
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// The terminal certificate's key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum PlatformCommand {
    /// Serve the publish protocol (SPEC §9) until SIGINT/SIGTERM; prints `listening on
    /// https://<addr>` on stdout once it accepts connections.
    Serve {
        /// The platform's configuration file (see `pipeline/platform/config.rs`).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CardCommand {
    /// Readers, the card, its token, PIN tries left and the auth certificate's subject and
    /// validity. Exit 1 when there is no card.
    Status {
        #[arg(long)]
        reader: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write the auth certificate (利用者証明用電子証明書): PEM, or DER for a .der/.cer name.
    Certificate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        reader: Option<String>,
    },
    /// A simulated card for tests and trying kiban without hardware (README: "Card without hardware").
    Simulate {
        #[command(subcommand)]
        command: SimulateCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum SimulateCommand {
    /// Make a simulated card in a directory: RSA-2048 key, auth certificate from the test JPKI
    /// CA of `kiban certs demo`, PIN 1234 unless --pin-fd gives one.
    Create {
        #[arg(long)]
        dir: PathBuf,
        /// The directory with jpki-ca.pem and jpki-ca.key.
        #[arg(long)]
        issuer: PathBuf,
        #[arg(long)]
        pin_fd: Option<i32>,
    },
    /// Insert the card into pcscd's virtual reader (vsmartcard-vpcd) and serve it until stopped.
    Serve {
        #[arg(long)]
        dir: PathBuf,
        /// The vpcd driver's address (its first reader listens on port 35963).
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Write a throwaway CA, a server certificate for localhost and terminal certificates
    /// (SAN URI urn:kiban:insurer:<no>). An existing complete set is kept unless --force.
    Demo {
        #[arg(long)]
        out: PathBuf,
        /// Insurers to make terminal certificates for.
        #[arg(long = "insurer", default_values_t = ["141309".to_string(), "131011".to_string()])]
        insurers: Vec<String>,
        #[arg(long)]
        force: bool,
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
    // The scheduler's and the platform's logs are their output (the platform's is its audit
    // trail of requests and commits): info by default.
    let serving = matches!(cli.command, Command::Schedule { .. } | Command::Platform { .. });
    let log_level = if serving { cli.verbose.max(1) } else { cli.verbose };
    logging::init(cli.log_format, log_level);
    match cli.command {
        Command::Run { job, json } => run(&job, json, cli.log_format),
        Command::Schedule { jobs_dir, max_runs } => schedule::schedule(&jobs_dir, max_runs, cli.log_format, cli.verbose),
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
        Command::Loads { command } => match command {
            LoadsCommand::List { at, insurer, limit, json } => {
                loads::list(&loads::LedgerArgs { job: at.job, ledger: at.ledger, store: at.store }, insurer, limit, json)
            }
            LoadsCommand::Show { load, at, json } => {
                loads::show(&loads::LedgerArgs { job: at.job, ledger: at.ledger, store: at.store }, &load, json)
            }
            LoadsCommand::Replay { load, at, to, tls, json } => publish::replay(
                &loads::LedgerArgs { job: at.job, ledger: at.ledger, store: at.store },
                &load,
                &to,
                &publish::TlsArgs { ca: tls.ca, certificate: tls.certificate, key: tls.key },
                json,
            ),
            LoadsCommand::Verify { at, insurer, platform, tls, json } => publish::verify(
                &loads::LedgerArgs { job: at.job, ledger: at.ledger, store: at.store },
                insurer,
                platform,
                &publish::TlsArgs { ca: tls.ca, certificate: tls.certificate, key: tls.key },
                json,
            ),
        },
        Command::Publish { load, job, json } => publish::publish(&job, &load, json),
        Command::Platform { command: PlatformCommand::Serve { config } } => publish::serve(&config),
        Command::Certs { command: CertsCommand::Demo { out, insurers, force } } => publish::certs_demo(&out, &insurers, force),
        Command::Card { command: CardCommand::Status { reader, json } } => card::status(reader.as_deref(), json),
        Command::Card { command: CardCommand::Certificate { out, reader } } => card::certificate(reader.as_deref(), &out),
        Command::Card { command: CardCommand::Simulate { command: SimulateCommand::Create { dir, issuer, pin_fd } } } => {
            card::simulate_create(&dir, &issuer, pin_fd)
        }
        Command::Card { command: CardCommand::Simulate { command: SimulateCommand::Serve { dir, vpcd } } } => {
            card::simulate_serve(&dir, &vpcd)
        }
        Command::Login { platform, job, tls, reader, pin_fd, card_tls, token_file, wait } => card::login(card::LoginArgs {
            platform: &platform,
            job: job.as_deref(),
            tls: &publish::TlsArgs { ca: tls.ca, certificate: tls.certificate, key: tls.key },
            reader: reader.as_deref(),
            pin_fd,
            card_tls,
            token_file,
            wait: std::time::Duration::from_secs(wait),
        }),
        Command::Diff { at: StoreOpts { store, job, insurer }, from, to, set, out } => {
            let insurer = insurer.or_else(|| job.as_ref().and_then(|j| Job::load(j).ok()).map(|j| j.file.insurer_no));
            match store_dir(store, job) {
                Err(code) => code,
                Ok(store) => diff::run(diff::DiffArgs { store, insurer, from, to, set, out }),
            }
        }
        Command::Query { sql, store, job, format, out } => match store_dir(store, job) {
            Err(code) => code,
            Ok(store) => query(&store, &sql, format, out.as_deref()),
        },
        Command::Report { load, at: StoreOpts { store, job, insurer }, out } => match store_dir(store, job) {
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
        Ok(outcome) => {
            if json {
                match serde_json::to_string_pretty(&outcome) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            } else {
                match &outcome {
                    RunOutcome::Loaded(summary) => print_summary(summary),
                    RunOutcome::AlreadyLoaded(a) => println!(
                        "already loaded: these input files are load {} of job {} for insurer {} (version {}); nothing to do",
                        a.load_id,
                        a.job,
                        a.insurer_no,
                        a.version.map_or("-".to_string(), |v| v.to_string())
                    ),
                }
            }
            outcome.exit_code()
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn print_summary(s: &LoadSummary) {
    print_load(s);
    if let Some(p) = &s.published {
        println!(
            "published: receipt {} — platform version {}, {} change rows applied ({} batches, {} sent in this run{}, {:.2} s)",
            p.receipt.receipt_id,
            p.receipt.version,
            p.receipt.applied,
            p.batches,
            p.sent,
            if p.full_snapshot { ", whole snapshot" } else { "" },
            p.seconds
        );
    }
}

fn print_load(s: &LoadSummary) {
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
    let base = s.base_version.map_or("nothing (first load)".to_string(), |v| format!("version {v}"));
    println!("changes against {base}, in {}", s.store.join("_changes").display());
    println!(
        "{:<24} {:<12} {:>10} {:>14} {:>10} {:>9} {:>9} {:>9}",
        "record set", "mode", "this load", "snapshot rows", "conflicts", "inserts", "updates", "deletes"
    );
    for r in &s.record_sets {
        let mode = match r.mode {
            crate::map::layout::ModeName::Snapshot => "snapshot",
            crate::map::layout::ModeName::Incremental => "incremental",
        };
        println!(
            "{:<24} {:<12} {:>10} {:>14} {:>10} {:>9} {:>9} {:>9}",
            r.record_set, mode, r.load_rows, r.snapshot_rows, r.key_conflicts, r.changes.inserts, r.changes.updates, r.changes.deletes
        );
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
