//! Jobs: what to load for one insurer, and running a load from files to a committed version.
//!
//! ```text
//!  job.toml ─► config::Job ─► catalog::Catalog (schemas, layouts, codes, eras, 外字, rules)
//!     └─► run::run_job: validate::Validator::compile (every rule planned, or exit 2)
//!                       for each source file ─► map::ingest::ingest_file
//!                       ─► validate::apply::apply_row_rules (each file's rows)
//!                       per record set ─► map::rowset::later_wins
//!                       ─► validate::apply::apply_set_rules (load, published, snapshot)
//!                       ─► map::rowset::merge_previous ─► thresholds
//!                       ─► store::Store::commit ─► LoadSummary (exit status 0 / 1 / 3)
//!
//!  jobs/*.toml ─► schedule::run_schedule: each job on its cron `schedule`, one
//!                 `kiban run <job> --json` child process per run, never two of one job at once
//! ```

pub mod catalog;
pub mod config;
pub mod run;
pub mod schedule;
