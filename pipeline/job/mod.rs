//! Jobs: what to load for one insurer, and running a load from files to a committed version.
//!
//! ```text
//!  job.toml ─► config::Job ─► catalog::Catalog (schemas, layouts, codes, eras, 外字)
//!     └─► run::run_job: for each source file ─► map::ingest::ingest_file
//!                       per record set ─► map::rowset::finalize (with the previous snapshot)
//!                       ─► store::Store::commit ─► LoadSummary (exit status 0 / 1 / 3)
//! ```

pub mod catalog;
pub mod config;
pub mod run;
