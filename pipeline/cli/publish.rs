//! `kiban publish`, `kiban loads replay|verify`, `kiban platform serve`, `kiban certs demo`.

use super::loads::{LedgerArgs, open, print_json};
use crate::job::config::Job;
use std::path::PathBuf;

/// TLS material for operators' commands, overriding the job's `[platform]`.
pub struct TlsArgs {
    pub ca: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn load_job(path: &std::path::Path) -> Result<Job, i32> {
    Job::load(path).map_err(|e| {
        eprintln!("error: {e}");
        2
    })
}

/// A publish target for `url`: the TLS files from the flags, else from the job's `[platform]`.
fn target(url: &str, job: Option<&Job>, tls: &TlsArgs) -> Result<crate::publish::Target, i32> {
    let (ca, identity) = terminal(job, tls)?;
    let built = crate::identity::tls::client_config(&ca, Some(identity)).map_err(|e| {
        eprintln!("error: {e}");
        2
    })?;
    let p = job.and_then(|j| j.file.platform.as_ref());
    let mut target = crate::publish::Target::new(url, built, p.and_then(|p| p.retry_seconds), p.and_then(|p| p.batch_rows));
    // A person's login for this platform (`kiban login`), where the platform requires one.
    target.bearer = super::card::saved_token(url);
    Ok(target)
}

/// The platform's CA bundle: `--ca`, else the job's `[platform] ca`.
pub(super) fn platform_ca(job: Option<&Job>, tls: &TlsArgs) -> Option<PathBuf> {
    tls.ca.clone().or_else(|| job.and_then(|j| j.file.platform.as_ref().map(|p| j.resolve(&p.ca))))
}

/// The platform CA and the terminal identity: from the flags, else from the job's `[platform]`.
pub(super) fn terminal(job: Option<&Job>, tls: &TlsArgs) -> Result<(PathBuf, crate::identity::tls::TerminalIdentity), i32> {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        2
    };
    let ca = platform_ca(job, tls);
    let source = match (&tls.certificate, &tls.key) {
        (Some(certificate), Some(key)) => {
            Some(crate::identity::tls::TerminalSource::Pem { certificate: certificate.clone(), key: key.clone() })
        }
        _ => job.map(Job::terminal_source).transpose().map_err(|e| fail(&e))?.flatten(),
    };
    let (Some(ca), Some(source)) = (ca, source) else {
        eprintln!("error: give --ca, --certificate and --key, or a --job whose [platform] names them");
        return Err(2);
    };
    let identity = crate::identity::tls::TerminalIdentity::load(&source).map_err(|e| fail(&e))?;
    Ok((ca, identity))
}

/// What replay and verify both need: the job (if given), the ledger, the store and a target.
fn operator_setup(
    args: &LedgerArgs,
    url: impl FnOnce(Option<&Job>) -> Option<String>,
    tls: &TlsArgs,
    needs_store: &str,
) -> Result<(Option<Job>, crate::ledger::Ledger, crate::store::Store, crate::publish::Target), i32> {
    let job = args.job.as_deref().map(load_job).transpose()?;
    let Some(url) = url(job.as_ref()) else {
        eprintln!("error: give --platform <url> or a --job with a [platform]");
        return Err(2);
    };
    let target = target(&url, job.as_ref(), tls)?;
    let (ledger, store, _) = open(args)?;
    let Some(store) = store else {
        eprintln!("error: {needs_store}: give --store or --job");
        return Err(2);
    };
    Ok((job, ledger, store, target))
}

/// `kiban publish <load> --job <job>`.
pub fn publish(job: &std::path::Path, load: &str, json: bool) -> i32 {
    let job = match load_job(job) {
        Ok(j) => j,
        Err(c) => return c,
    };
    match crate::job::run::publish_load(&job, load) {
        Ok(r) => {
            if json {
                return print_json(&r);
            }
            println!(
                "load {} published: receipt {}, platform version {}, {} rows applied, committed {}",
                r.load_id, r.receipt_id, r.platform_version, r.applied, r.committed_at
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// `kiban loads replay <load> --to <url>`.
pub fn replay(args: &LedgerArgs, load: &str, to: &str, tls: &TlsArgs, json: bool) -> i32 {
    let (_, ledger, store, target) =
        match operator_setup(args, |_| Some(to.to_string()), tls, "replay reads the load's changes from the store") {
            Ok(x) => x,
            Err(c) => return c,
        };
    let schemas = match crate::job::catalog::Catalog::embedded() {
        Ok(c) => c.schemas,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match crate::publish::replay(&ledger, &store, &schemas, &target, load) {
        Ok(p) => {
            if json {
                return print_json(&p);
            }
            println!(
                "load {} replayed to {}: receipt {}, platform version {}, {} rows applied ({} of {} batches sent, {:.2} s)",
                load, to, p.receipt.receipt_id, p.receipt.version, p.receipt.applied, p.sent, p.batches, p.seconds
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `kiban loads verify`: exit 0 when the platform matches the store, 1 when it differs.
pub fn verify(args: &LedgerArgs, insurer: Option<String>, platform: Option<String>, tls: &TlsArgs, json: bool) -> i32 {
    let url = |job: Option<&Job>| platform.or_else(|| job.and_then(|j| j.file.platform.as_ref().map(|p| p.url.clone())));
    let (job, ledger, store, target) = match operator_setup(args, url, tls, "verify compares with the store") {
        Ok(x) => x,
        Err(c) => return c,
    };
    let Some(insurer) = insurer.or_else(|| job.as_ref().map(|j| j.file.insurer_no.clone())) else {
        eprintln!("error: give --insurer <保険者番号> or --job");
        return 2;
    };
    let mut client = match target.client() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let v = match crate::publish::verify(&ledger, &store, &mut client, &insurer) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let code = if v.differs() { 1 } else { 0 };
    if json {
        let printed = print_json(&v);
        return if printed != 0 { printed } else { code };
    }
    let dash = |x: Option<u64>| x.map_or("-".to_string(), |v| v.to_string());
    println!(
        "insurer {}: store version {} (platform version per the ledger {}), {} holds version {}",
        v.insurer_no,
        dash(v.store_version),
        dash(v.expected_platform_version),
        v.platform_url,
        v.platform_version
    );
    println!("{:<26} {:>10} {:>10}  {:<32}  {:<32}  result", "record set", "store", "platform", "store digest", "platform digest");
    for s in &v.record_sets {
        println!(
            "{:<26} {:>10} {:>10}  {:<32}  {:<32}  {}",
            s.record_set,
            s.store_rows,
            s.platform_rows,
            s.store_digest,
            s.platform_digest,
            if s.equal { "same" } else { "DIFFERS" }
        );
    }
    if v.differs() {
        eprintln!("error: the platform's state differs from the store's last published version");
    }
    code
}

/// `kiban platform serve --config <file>`: serves until SIGINT or SIGTERM.
pub fn serve(config: &std::path::Path) -> i32 {
    let config = match crate::platform::PlatformConfig::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the platform's runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async {
        let bound = match crate::platform::bind(config).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return match e {
                    crate::platform::PlatformError::Config(_) | crate::platform::PlatformError::Identity(_) => 2,
                    _ => 1,
                };
            }
        };
        // The one line on stdout: scripts and tests read the address (port 0 picks a free one).
        println!("listening on https://{}", bound.addr);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        bound.serve(shutdown_signal()).await;
        0
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `kiban certs demo --out <dir>`.
pub fn certs_demo(out: &std::path::Path, insurers: &[String], force: bool) -> i32 {
    if let Some(bad) = insurers.iter().find(|i| !crate::protocol::is_insurer_no(i)) {
        eprintln!("error: --insurer `{bad}` is not 6 digits");
        return 2;
    }
    match crate::identity::certs::write_demo(out, insurers, force) {
        Ok(f) => {
            let verb = if f.kept { "kept (use --force to replace)" } else { "written" };
            println!("{}\tdemo CA certificate, {verb}", f.ca.display());
            println!("{}\ttest JPKI CA for simulated cards (kiban card simulate create)", f.jpki_ca.display());
            println!("{}\t{}\tserver certificate for localhost, 127.0.0.1, ::1", f.server.0.display(), f.server.1.display());
            for (i, c, k) in &f.terminals {
                println!("{}\t{}\tterminal certificate of insurer {i}", c.display(), k.display());
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
