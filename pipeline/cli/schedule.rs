//! `kiban schedule <jobs-dir>`: options to [`crate::job::schedule`], errors to exit statuses.

use super::LogFormat;
use crate::job::schedule::{Launcher, ScheduleOptions, run_schedule};
use std::path::Path;

/// Runs the scheduler; exit 0 when it stopped (signal, `--max-runs`), 2 when the directory cannot
/// be read or holds no schedulable job, 1 when it cannot start.
pub fn schedule(jobs_dir: &Path, max_runs: Option<u64>, log_format: LogFormat, verbose: u8) -> i32 {
    // Runs log as the scheduler does; `-v` is passed on as given.
    let launcher = match Launcher::kiban(log_format == LogFormat::Json, verbose) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    match run_schedule(jobs_dir, ScheduleOptions { max_runs, launcher }) {
        Ok(_) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
