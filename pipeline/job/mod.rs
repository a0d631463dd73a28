//! Jobs: what to load for one insurer, and running a load from files to a committed version.
//!
//! ```text
//!  job.toml ─► config::Job ─► catalog::Catalog (schemas, layouts, codes, eras, 外字, rules)
//!     └─► run::run_job: validate::Validator::compile (every rule planned, or exit 2)
//!                       for each source file ─► map::ingest::ingest_parts, a part at a time
//!                       ─► validate::apply::apply_row_rules ─► map::spill::RunWriter (sorted runs)
//!                       per record set ─► map::merge::merge (later-wins, previous snapshot)
//!                         ─► store::Store::snapshot_writer (the version's file)
//!                       ─► validate::apply::apply_set_rules_to_files (load, published, snapshot)
//!                       ─► sets with withheld rows merged again ─► thresholds
//!                       ─► store::Store::commit ─► LoadSummary (exit status 0 / 1 / 3)
//!                       (warnings of every stage ─► warnings::WarningSink, streamed to their file)
//!
//!  jobs/*.toml ─► schedule::run_schedule: each job on its cron `schedule`, one
//!                 `kiban run <job> --json` child process per run, never two of one job at once
//! ```

pub mod catalog;
pub mod config;
pub mod run;
pub mod schedule;
pub mod warnings;
