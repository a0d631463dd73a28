//! `kiban schedule <jobs-dir>`: runs each job of a directory on the cron expression in its file
//! (`schedule`, see [`JobFile::schedule`](super::config::JobFile::schedule); SPEC §1, §12).
//!
//! ```text
//!  jobs/*.toml ─► Job::load (name order; a file that does not load is logged and left out,
//!                 a job without `schedule` is logged as unscheduled)
//!      └─► per job: next fire time (croner, local time zone)
//!          loop: sleep until the earliest fire time, a run ending, or SIGINT/SIGTERM
//!                due job idle    ─► spawn `<kiban> run <job.toml> --json` (a child process)
//!                due job running ─► warn "still running, this run is skipped"; next fire time
//!                child ended     ─► log job, load id (from its JSON summary), exit status, seconds
//! ```
//!
//! **Each run is a child process**, the same `kiban run` an operator would type, not a call into
//! the library: a crash, a panic or an abort (out of memory) in one load cannot take the
//! scheduler or the other jobs down; the memory a load used (Arrow batches, DataFusion plans, the
//! allocator's high-water mark) goes back to the system when the run exits, so a scheduler that
//! runs for months does not grow; and a run under the scheduler behaves exactly like a run under
//! cron or a systemd timer (same exit statuses, same logs on stderr, same lock). The scheduler only
//! reads the child's stdout (the `--json` summary, for the load id); the child's stderr is the
//! scheduler's stderr.
//!
//! **Never two runs of one job at once**: a job fires only when its previous run has ended; a fire
//! time that finds it still running is skipped (logged as a warning) and the next one computed.
//! Missed fire times (the machine was suspended, a run took longer) are not caught up one by one:
//! after a pause the job runs once and continues on its schedule. Different jobs do run at once.
//!
//! **Failures are logged, not fatal**: a run that exits 1 or 2 (or is killed) is logged at error
//! level and the job runs again at its next fire time; exit 0 and 3 (stored with quarantined
//! records) are logged at info level. The scheduler itself exits 2 when the directory cannot be
//! read or no job in it can be scheduled, and 0 otherwise.
//!
//! **Stopping**: on SIGINT or SIGTERM the scheduler starts no more runs, waits for the running
//! ones to finish (each load commits atomically, so letting it finish is the clean way) and exits 0;
//! a second signal kills the running children (nothing of a killed load is committed). Children run
//! in their own process group, so a Ctrl-C on the terminal reaches the scheduler only. With
//! `--max-runs N` the scheduler starts at most N runs and exits 0 when they have finished (tests,
//! a one-off catch-up).
//!
//! Threads, no async: the main loop waits on a channel with a timeout (the next fire time, or
//! [`POLL`] while children run, whose exit it polls with `try_wait`); one thread per child reads
//! its stdout, and one thread holds a small tokio runtime for the signal handlers. Fire times are
//! evaluated against the wall clock at least every [`MAX_SLEEP`], so a clock change or a resume
//! from suspend is noticed.

use super::config::{Job, parse_schedule};
use chrono::{DateTime, Local};
use croner::Cron;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the exit of running children is checked.
pub const POLL: Duration = Duration::from_millis(100);
/// The longest the scheduler sleeps without looking at the wall clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
/// At most this much of a child's stdout is kept (the JSON summary is a few KiB); the rest is read
/// and dropped so that the child never blocks on a full pipe.
const MAX_STDOUT: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("{path}: no job can be scheduled (no *.toml that loads and has a `schedule`)")]
    NoJobs { path: PathBuf },
    #[error("cannot find the kiban executable to run jobs with: {0}")]
    Executable(std::io::Error),
    #[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
    Signals(std::io::Error),
}

impl ScheduleError {
    /// Exit status of SPEC §11: 2 for a directory that cannot be read or holds no schedulable
    /// job (a configuration error), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ScheduleError::Dir { .. } | ScheduleError::NoJobs { .. } => 2,
            ScheduleError::Executable(_) | ScheduleError::Signals(_) => 1,
        }
    }
}

/// How a run of a job is started: `program <args_before…> <job.toml> <args_after…>`.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
    pub args_before: Vec<OsString>,
    pub args_after: Vec<OsString>,
}

impl Launcher {
    /// `<this kiban executable> [--log-format json] [-v…] run <job.toml> --json`. The executable's
    /// path is resolved once, now, so that runs keep working when the binary is replaced by an
    /// upgrade (they then run the new one).
    pub fn kiban(json_logs: bool, verbose: u8) -> Result<Launcher, ScheduleError> {
        let program = std::env::current_exe().map_err(ScheduleError::Executable)?;
        let mut args_before: Vec<OsString> = Vec::new();
        if json_logs {
            args_before.extend(["--log-format".into(), "json".into()]);
        }
        if verbose > 0 {
            args_before.push(format!("-{}", "v".repeat(usize::from(verbose))).into());
        }
        args_before.push("run".into());
        Ok(Launcher { program, args_before, args_after: vec!["--json".into()] })
    }

    /// The command of one run of `job`: stdin closed, stdout captured (the JSON summary), stderr
    /// inherited, in a process group of its own.
    pub fn command(&self, job: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args_before).arg(job).args(&self.args_after);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd
    }
}

/// What `kiban schedule` was asked to do.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// Start at most this many runs (over all jobs) and exit when they have finished.
    pub max_runs: Option<u64>,
    pub launcher: Launcher,
}

/// A job with a schedule, read from the jobs directory.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub name: String,
    pub path: PathBuf,
    /// The cron expression as written in the job file.
    pub schedule: String,
    pub cron: Cron,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// The child's exit status.
    Exit(i32),
    /// The child was killed by this signal.
    Signal(i32),
    /// The child could not be started, or its status could not be read.
    Unknown,
}

impl RunStatus {
    fn from_exit(status: ExitStatus) -> RunStatus {
        if let Some(code) = status.code() {
            return RunStatus::Exit(code);
        }
        #[cfg(unix)]
        if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return RunStatus::Signal(sig);
        }
        RunStatus::Unknown
    }

    /// Exit 0 (success) and 3 (stored with quarantined records or skipped files) are not failures.
    pub fn is_success(&self) -> bool {
        matches!(self, RunStatus::Exit(0 | 3))
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunStatus::Exit(c) => write!(f, "{c}"),
            RunStatus::Signal(s) => write!(f, "killed by signal {s}"),
            RunStatus::Unknown => f.write_str("unknown"),
        }
    }
}

/// A finished run, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub job: String,
    pub load_id: Option<String>,
    pub status: RunStatus,
    pub duration: Duration,
}

/// Counts of a scheduler's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleSummary {
    /// Runs that finished (or could not be started).
    pub runs: u64,
    /// Of those, runs that did not exit 0 or 3.
    pub failed: u64,
    /// Fire times skipped because the job's previous run was still running.
    pub skipped: u64,
}

/// What wakes the main loop besides its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGINT or SIGTERM (by name).
    Signal(&'static str),
}

/// Runs the jobs of `dir` on their schedules until SIGINT/SIGTERM (or `max_runs`).
pub fn run_schedule(dir: &Path, opts: ScheduleOptions) -> Result<ScheduleSummary, ScheduleError> {
    let jobs = load_jobs(dir)?;
    let (tx, rx) = mpsc::channel();
    watch_signals(tx).map_err(ScheduleError::Signals)?;
    let scheduler = Scheduler::new(jobs, opts, Local::now());
    if scheduler.slots.is_empty() {
        return Err(ScheduleError::NoJobs { path: dir.to_path_buf() });
    }
    Ok(scheduler.run(&rx))
}

/// The scheduled jobs of `dir`: every `*.toml` in name order. A file that does not load is logged
/// (error) and left out; a job without `schedule` is logged as unscheduled and left out. Errors
/// only when the directory cannot be read, or nothing in it can be scheduled.
pub fn load_jobs(dir: &Path) -> Result<Vec<ScheduledJob>, ScheduleError> {
    let dir_err = |source| ScheduleError::Dir { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_err)? {
        let path = entry.map_err(dir_err)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut jobs = Vec::new();
    for path in files {
        let job = match Job::load(&path) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(file = %path.display(), "not scheduled: {}", e.to_string().trim_end());
                continue;
            }
        };
        let Some(expr) = job.file.schedule.clone() else {
            tracing::info!(job = %job.file.name, file = %path.display(), "unscheduled (no `schedule` in the job file): skipped");
            continue;
        };
        match parse_schedule(&expr) {
            Ok(cron) => jobs.push(ScheduledJob { name: job.file.name, path, schedule: expr, cron }),
            // Job::load has parsed it already.
            Err(e) => tracing::error!(file = %path.display(), "not scheduled: schedule `{expr}`: {e}"),
        }
    }
    if jobs.is_empty() {
        return Err(ScheduleError::NoJobs { path: dir.to_path_buf() });
    }
    Ok(jobs)
}

/// The first fire time of `cron` strictly after `after`, in local time; `None` when the
/// expression never matches again (e.g. `0 0 30 2 *`).
pub fn next_fire(cron: &Cron, after: &DateTime<Local>) -> Option<DateTime<Local>> {
    cron.find_next_occurrence(after, false).ok()
}

/// The `load_id` of a `kiban run --json` summary (a new load, or an "already loaded" no-op).
/// `None` when the output holds no JSON object with a string `load_id`, or when that value does not
/// look like a load id (only ASCII letters, digits and `-_.:`, at most 64 characters), so that
/// nothing else printed on stdout can reach the log.
pub fn parse_load_id(stdout: &[u8]) -> Option<String> {
    let start = stdout.iter().position(|&b| b == b'{')?;
    let value = serde_json::Deserializer::from_slice(&stdout[start..]).into_iter::<serde_json::Value>().next()?.ok()?;
    let id = value.get("load_id")?.as_str()?;
    let plausible = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    plausible.then(|| id.to_string())
}

/// Installs the SIGINT/SIGTERM handlers (before any child starts) and forwards each signal as an
/// [`Event`], from a thread that holds a single-threaded tokio runtime.
fn watch_signals(tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    #[cfg(unix)]
    let mut term = {
        let _guard = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?
    };
    #[cfg(unix)]
    let mut int = {
        let _guard = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?
    };
    std::thread::Builder::new().name("kiban-signals".into()).spawn(move || {
        rt.block_on(async move {
            loop {
                #[cfg(unix)]
                let name = tokio::select! {
                    Some(()) = int.recv() => "SIGINT",
                    Some(()) = term.recv() => "SIGTERM",
                    else => return,
                };
                #[cfg(not(unix))]
                let name = match tokio::signal::ctrl_c().await {
                    Ok(()) => "Ctrl-C",
                    Err(_) => return,
                };
                if tx.send(Event::Signal(name)).is_err() {
                    return;
                }
            }
        })
    })?;
    Ok(())
}

struct Running {
    child: Child,
    pid: u32,
    started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
}

struct Slot {
    job: ScheduledJob,
    next: Option<DateTime<Local>>,
    running: Option<Running>,
}

/// The scheduler's state; [`Scheduler::tick`] is one step of its loop, with the time given, so
/// that tests drive it.
pub struct Scheduler {
    slots: Vec<Slot>,
    launcher: Launcher,
    max_runs: Option<u64>,
    started: u64,
    stopping: bool,
    summary: ScheduleSummary,
}

impl Scheduler {
    /// Computes each job's first fire time after `now`; a job whose expression never fires is
    /// logged and left out.
    pub fn new(jobs: Vec<ScheduledJob>, opts: ScheduleOptions, now: DateTime<Local>) -> Scheduler {
        let mut slots = Vec::with_capacity(jobs.len());
        for job in jobs {
            match next_fire(&job.cron, &now) {
                Some(next) => {
                    tracing::info!(job = %job.name, file = %job.path.display(), schedule = %job.schedule, next = %next.to_rfc3339(), "scheduled");
                    slots.push(Slot { job, next: Some(next), running: None });
                }
                None => {
                    tracing::error!(job = %job.name, file = %job.path.display(), schedule = %job.schedule, "the schedule never fires: not scheduled")
                }
            }
        }
        Scheduler {
            slots,
            launcher: opts.launcher,
            max_runs: opts.max_runs,
            started: 0,
            stopping: false,
            summary: ScheduleSummary::default(),
        }
    }

    pub fn summary(&self) -> ScheduleSummary {
        self.summary
    }

    /// Number of runs under way.
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.running.is_some()).count()
    }

    /// Whether new runs may start: no stop was asked for and `max_runs` is not reached.
    fn accepting(&self) -> bool {
        !self.stopping && self.max_runs.is_none_or(|max| self.started < max)
    }

    /// True when the loop should end: no run under way and none may start.
    pub fn finished(&self) -> bool {
        self.running() == 0 && (!self.accepting() || self.slots.iter().all(|s| s.next.is_none()))
    }

    /// One step: collects the runs that ended (logged, and returned), then starts the jobs due at
    /// `now` (skipping those still running) and computes their next fire times.
    pub fn tick(&mut self, now: DateTime<Local>) -> Vec<RunOutcome> {
        let mut ended = self.reap();
        for i in 0..self.slots.len() {
            if !self.accepting() {
                break;
            }
            let slot = &mut self.slots[i];
            let Some(due) = slot.next.filter(|t| *t <= now) else { continue };
            slot.next = next_fire(&slot.job.cron, &now);
            if slot.next.is_none() {
                tracing::warn!(job = %slot.job.name, schedule = %slot.job.schedule, "the schedule does not fire again after this run");
            }
            if let Some(r) = &slot.running {
                tracing::warn!(job = %slot.job.name, due = %due.to_rfc3339(), pid = r.pid, "still running, this run is skipped");
                self.summary.skipped += 1;
                continue;
            }
            self.started += 1;
            if let Some(outcome) = self.start(i) {
                ended.push(outcome);
            }
        }
        ended
    }

    /// Starts a run of slot `i`; returns its outcome when it could not be started.
    fn start(&mut self, i: usize) -> Option<RunOutcome> {
        let slot = &mut self.slots[i];
        let started = Instant::now();
        let mut child = match self.launcher.command(&slot.job.path).spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(job = %slot.job.name, program = %self.launcher.program.display(), "cannot start the run: {e}");
                let outcome =
                    RunOutcome { job: slot.job.name.clone(), load_id: None, status: RunStatus::Unknown, duration: started.elapsed() };
                self.record(&outcome);
                return Some(outcome);
            }
        };
        let pid = child.id();
        let stdout = child.stdout.take().and_then(|mut out| {
            let reader = std::thread::Builder::new().name(format!("kiban-run-{pid}")).spawn(move || {
                let mut buf = Vec::new();
                let _ = (&mut out).take(MAX_STDOUT).read_to_end(&mut buf);
                let _ = std::io::copy(&mut out, &mut std::io::sink());
                buf
            });
            match reader {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(job = %slot.job.name, "cannot read the run's output, its load id will not be logged: {e}");
                    None
                }
            }
        });
        tracing::info!(job = %slot.job.name, file = %slot.job.path.display(), pid, "run started");
        slot.running = Some(Running { child, pid, started, stdout });
        None
    }

    /// Collects the runs that have ended.
    fn reap(&mut self) -> Vec<RunOutcome> {
        let mut ended = Vec::new();
        for slot in &mut self.slots {
            let Some(r) = &mut slot.running else { continue };
            let status = match r.child.try_wait() {
                Ok(None) => continue,
                Ok(Some(status)) => RunStatus::from_exit(status),
                Err(e) => {
                    tracing::error!(job = %slot.job.name, pid = r.pid, "cannot read the run's exit status: {e}");
                    RunStatus::Unknown
                }
            };
            let Some(mut r) = slot.running.take() else { continue };
            let duration = r.started.elapsed();
            let stdout = r.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
            ended.push(RunOutcome { job: slot.job.name.clone(), load_id: parse_load_id(&stdout), status, duration });
        }
        for outcome in &ended {
            self.record(outcome);
        }
        ended
    }

    fn record(&mut self, o: &RunOutcome) {
        self.summary.runs += 1;
        let load_id = o.load_id.as_deref().unwrap_or("none");
        let seconds = (o.duration.as_millis() as f64) / 1000.0;
        if o.status.is_success() {
            tracing::info!(job = %o.job, load_id = %load_id, exit_status = %o.status, seconds, "run finished");
        } else {
            self.summary.failed += 1;
            tracing::error!(job = %o.job, load_id = %load_id, exit_status = %o.status, seconds, "run failed");
        }
    }

    /// SIGINT/SIGTERM: the first stops new runs, a second kills the running ones.
    pub fn signal(&mut self, name: &str) {
        let running = self.running();
        if !self.stopping {
            self.stopping = true;
            if running > 0 {
                tracing::info!(
                    signal = name,
                    running,
                    "stopping: no new runs; waiting for the running jobs (send the signal again to kill them)"
                );
            } else {
                tracing::info!(signal = name, "stopping");
            }
            return;
        }
        tracing::warn!(signal = name, running, "stopping now: killing the running jobs (nothing of a killed load is committed)");
        for slot in &mut self.slots {
            if let Some(r) = &mut slot.running
                && let Err(e) = r.child.kill()
            {
                tracing::error!(job = %slot.job.name, pid = r.pid, "cannot kill the run: {e}");
            }
        }
    }

    /// How long the loop may wait at `now`: until the earliest fire time (when runs may start),
    /// at most [`POLL`] while runs are under way, at most [`MAX_SLEEP`].
    pub fn wait_time(&self, now: &DateTime<Local>) -> Duration {
        let mut wait = MAX_SLEEP;
        if self.running() > 0 {
            wait = wait.min(POLL);
        }
        if self.accepting() {
            for t in self.slots.iter().filter_map(|s| s.next) {
                wait = wait.min((t - *now).to_std().unwrap_or(Duration::ZERO));
            }
        }
        wait
    }

    /// The loop: until [`Scheduler::finished`], run [`Scheduler::tick`] and wait for the next
    /// fire time, a child's end (polled) or a signal.
    pub fn run(mut self, events: &mpsc::Receiver<Event>) -> ScheduleSummary {
        loop {
            self.tick(Local::now());
            if self.finished() {
                break;
            }
            let wait = self.wait_time(&Local::now());
            match events.recv_timeout(wait) {
                Ok(Event::Signal(name)) => self.signal(name),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // No signal thread any more: keep going on the clock alone.
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
        let s = self.summary;
        tracing::info!(runs = s.runs, failed = s.failed, skipped = s.skipped, "scheduler stopped");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cron(expr: &str) -> Cron {
        parse_schedule(expr).expect("test expression")
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Local> {
        Local.with_ymd_and_hms(y, mo, d, h, mi, s).single().expect("unambiguous local time")
    }

    /// A launcher running `sh -c <script> sh <job.toml>`.
    fn sh(script: &str) -> Launcher {
        Launcher { program: "sh".into(), args_before: vec!["-c".into(), script.into(), "sh".into()], args_after: vec![] }
    }

    fn job(name: &str, expr: &str) -> ScheduledJob {
        ScheduledJob { name: name.into(), path: format!("/nonexistent/{name}.toml").into(), schedule: expr.into(), cron: cron(expr) }
    }

    /// Ticks with real time until every run has ended.
    fn drain(s: &mut Scheduler, now: DateTime<Local>) -> Vec<RunOutcome> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut out = Vec::new();
        while s.running() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            out.extend(s.tick(now));
        }
        out
    }

    #[test]
    fn next_fire_follows_the_expression_in_local_time() {
        let t = local(2026, 6, 10, 1, 59, 30);
        assert_eq!(next_fire(&cron("0 2 * * *"), &t), Some(local(2026, 6, 10, 2, 0, 0)));
        assert_eq!(next_fire(&cron("0 2 * * *"), &local(2026, 6, 10, 2, 0, 0)), Some(local(2026, 6, 11, 2, 0, 0)), "strictly after");
        assert_eq!(next_fire(&cron("30 1 5 * *"), &t), Some(local(2026, 7, 5, 1, 30, 0)));
        assert_eq!(next_fire(&cron("0 3 * * MON-FRI"), &local(2026, 6, 12, 4, 0, 0)), Some(local(2026, 6, 15, 3, 0, 0)), "Friday → Monday");
        assert_eq!(next_fire(&cron("@monthly"), &t), Some(local(2026, 7, 1, 0, 0, 0)));
        // Six fields: seconds first.
        assert_eq!(next_fire(&cron("*/10 * * * * *"), &t), Some(local(2026, 6, 10, 1, 59, 40)));
        let half = t + chrono::TimeDelta::milliseconds(500);
        assert_eq!(next_fire(&cron("* * * * * *"), &half), Some(local(2026, 6, 10, 1, 59, 31)), "from a fraction of a second");
        assert_eq!(next_fire(&cron("0 0 30 2 *"), &t), None, "30 February never comes");
    }

    #[test]
    fn bad_expressions_do_not_parse() {
        for bad in ["", "not a cron", "* * * *", "61 * * * *", "* * * * * * 2026", "0 25 * * *"] {
            assert!(parse_schedule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn load_id_is_read_from_the_json_summary() {
        let pretty = b"{\n  \"job\": \"demo\",\n  \"load_id\": \"20261124T224621Z-f4f1\",\n  \"version\": 1\n}\n";
        assert_eq!(parse_load_id(pretty).as_deref(), Some("20261124T224621Z-f4f1"));
        assert_eq!(parse_load_id(br#"{"already_loaded":true,"load_id":"abc-1"}"#).as_deref(), Some("abc-1"));
        assert_eq!(parse_load_id(b"note\n{\"load_id\": \"x1\"}\n").as_deref(), Some("x1"), "text before the object");
        assert_eq!(parse_load_id(b""), None);
        assert_eq!(parse_load_id(b"load 1 of job demo"), None);
        assert_eq!(parse_load_id(br#"{"job":"demo"}"#), None);
        assert_eq!(parse_load_id(br#"{"load_id":7}"#), None);
        assert_eq!(parse_load_id(r#"{"load_id":"山田 太郎"}"#.as_bytes()), None, "not a load id: never logged");
        assert_eq!(parse_load_id(b"{\"load_id\": \"x1\""), None, "truncated");
    }

    #[test]
    fn launcher_builds_the_run_command() {
        let l = Launcher { program: "/usr/bin/kiban".into(), args_before: vec!["run".into()], args_after: vec!["--json".into()] };
        let cmd = l.command(Path::new("/etc/kiban/jobs/monthly.toml"));
        assert_eq!(cmd.get_program(), "/usr/bin/kiban");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["run", "/etc/kiban/jobs/monthly.toml", "--json"]);
    }

    #[test]
    fn a_job_still_running_is_skipped_and_its_outcome_logged() {
        let t0 = local(2026, 6, 10, 2, 0, 0);
        let opts = ScheduleOptions { max_runs: None, launcher: sh(r#"sleep 1; echo '{"load_id": "L-1"}'; exit 3"#) };
        let mut s = Scheduler::new(vec![job("slow", "* * * * * *")], opts, t0);
        assert!(s.tick(t0).is_empty());
        assert_eq!(s.running(), 0, "not due yet: fires strictly after the start");
        assert!(s.tick(t0 + chrono::TimeDelta::seconds(1)).is_empty());
        assert_eq!(s.running(), 1, "started");
        // Due again while the first run sleeps: skipped, and the next fire time moves on.
        assert!(s.tick(t0 + chrono::TimeDelta::seconds(2)).is_empty());
        assert_eq!(s.running(), 1);
        assert_eq!(s.summary().skipped, 1);
        assert!(s.tick(t0 + chrono::TimeDelta::milliseconds(2500)).is_empty(), "not due");
        assert_eq!(s.summary().skipped, 1);
        let ended = drain(&mut s, t0 + chrono::TimeDelta::milliseconds(2500));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].job, "slow");
        assert_eq!(ended[0].load_id.as_deref(), Some("L-1"));
        assert_eq!(ended[0].status, RunStatus::Exit(3));
        assert!(ended[0].duration >= Duration::from_millis(900), "{:?}", ended[0].duration);
        assert_eq!(s.summary(), ScheduleSummary { runs: 1, failed: 0, skipped: 1 });
        // Idle again: the next fire time starts a new run.
        assert!(s.tick(t0 + chrono::TimeDelta::seconds(3)).is_empty());
        assert_eq!(s.running(), 1);
        drain(&mut s, t0 + chrono::TimeDelta::seconds(3));
        assert_eq!(s.summary().runs, 2);
    }

    #[test]
    fn failures_are_counted_and_other_jobs_keep_running() {
        let t0 = local(2026, 6, 10, 2, 0, 0);
        let opts = ScheduleOptions { max_runs: Some(4), launcher: sh(r#"case "$1" in *bad*) exit 1;; esac; echo '{"load_id":"ok-1"}'"#) };
        let mut s = Scheduler::new(vec![job("bad", "* * * * * *"), job("good", "* * * * * *")], opts, t0);
        let mut ended = Vec::new();
        for sec in 1..=3 {
            let now = t0 + chrono::TimeDelta::seconds(sec);
            ended.extend(s.tick(now));
            ended.extend(drain(&mut s, now));
        }
        assert!(s.finished(), "max_runs reached and nothing running");
        assert_eq!(ended.len(), 4, "{ended:?}");
        assert_eq!(ended.iter().filter(|o| o.job == "bad" && o.status == RunStatus::Exit(1) && o.load_id.is_none()).count(), 2);
        assert_eq!(
            ended.iter().filter(|o| o.job == "good" && o.status == RunStatus::Exit(0) && o.load_id.as_deref() == Some("ok-1")).count(),
            2
        );
        assert_eq!(s.summary(), ScheduleSummary { runs: 4, failed: 2, skipped: 0 });
    }

    #[test]
    fn a_program_that_cannot_start_is_a_failed_run() {
        let t0 = local(2026, 6, 10, 2, 0, 0);
        let launcher = Launcher { program: "/nonexistent/kiban".into(), args_before: vec![], args_after: vec![] };
        let mut s = Scheduler::new(vec![job("j", "* * * * * *")], ScheduleOptions { max_runs: Some(1), launcher }, t0);
        let ended = s.tick(t0 + chrono::TimeDelta::seconds(1));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].status, RunStatus::Unknown);
        assert!(s.finished());
        assert_eq!(s.summary(), ScheduleSummary { runs: 1, failed: 1, skipped: 0 });
    }

    #[test]
    fn a_signal_stops_new_runs_waits_and_a_second_kills() {
        let t0 = local(2026, 6, 10, 2, 0, 0);
        let opts = ScheduleOptions { max_runs: None, launcher: sh("sleep 0.5") };
        let mut s = Scheduler::new(vec![job("a", "* * * * * *")], opts, t0);
        s.tick(t0 + chrono::TimeDelta::seconds(1));
        assert_eq!(s.running(), 1);
        s.signal("SIGTERM");
        assert!(!s.finished(), "waits for the running job");
        s.tick(t0 + chrono::TimeDelta::seconds(2));
        assert_eq!(s.summary().skipped, 0, "no new runs, not even skipped ones");
        let ended = drain(&mut s, t0 + chrono::TimeDelta::seconds(2));
        assert_eq!(ended[0].status, RunStatus::Exit(0), "the running job finished");
        assert!(s.finished());

        let opts = ScheduleOptions { max_runs: None, launcher: sh("exec sleep 30") };
        let mut s = Scheduler::new(vec![job("b", "* * * * * *")], opts, t0);
        s.tick(t0 + chrono::TimeDelta::seconds(1));
        s.signal("SIGINT");
        s.signal("SIGINT");
        let ended = drain(&mut s, t0 + chrono::TimeDelta::seconds(1));
        assert_eq!(ended[0].status, RunStatus::Signal(9));
        assert!(s.finished());
        assert_eq!(s.summary().failed, 1);
    }

    #[test]
    fn wait_time_is_the_earliest_fire_time_or_the_poll_interval() {
        let t0 = local(2026, 6, 10, 2, 0, 0);
        let launcher = sh("exit 0");
        let s = Scheduler::new(vec![job("a", "0 * * * *"), job("b", "*/5 * * * * *")], ScheduleOptions { max_runs: None, launcher }, t0);
        assert_eq!(s.wait_time(&t0), Duration::from_secs(5));
        assert_eq!(s.wait_time(&(t0 + chrono::TimeDelta::seconds(7))), Duration::ZERO, "overdue");
        let s = Scheduler::new(vec![job("a", "0 3 * * *")], ScheduleOptions { max_runs: None, launcher: sh("exit 0") }, t0);
        assert_eq!(s.wait_time(&t0), MAX_SLEEP);
    }

    #[test]
    fn jobs_are_read_in_name_order_and_bad_files_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let body = |name: &str, schedule: &str| {
            format!(
                "name = \"{name}\"\n{schedule}insurer_no = \"141309\"\nstore = \"s\"\n[[sources]]\npath = \"x.csv\"\nmapping = \"kokuhoren_5311\"\n"
            )
        };
        std::fs::write(dir.path().join("b.toml"), body("b", "schedule = \"0 2 * * *\"\n")).expect("write");
        std::fs::write(dir.path().join("a.toml"), body("a", "schedule = \"*/5 * * * * *\"\n")).expect("write");
        std::fs::write(dir.path().join("c.toml"), body("c", "")).expect("write");
        std::fs::write(dir.path().join("d.toml"), body("d", "schedule = \"every night\"\n")).expect("write");
        std::fs::write(dir.path().join("e.toml"), "name = \"e").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "not a job").expect("write");
        let jobs = load_jobs(dir.path()).expect("jobs");
        let names: Vec<_> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(jobs[1].schedule, "0 2 * * *");

        let empty = tempfile::tempdir().expect("tempdir");
        assert_eq!(load_jobs(empty.path()).map(|_| ()).map_err(|e| e.exit_code()), Err(2));
        assert_eq!(load_jobs(&empty.path().join("missing")).map(|_| ()).map_err(|e| e.exit_code()), Err(2));
    }
}
