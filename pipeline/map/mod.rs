//! Map: source layouts (data in `mappings/`) turn records into rows of record sets.
//!
//! ```text
//!  mappings/<layout>.toml ─► compile::compile ─► Layout (checked against schemas/ and codes)
//!  file ─► ingest::ingest_parts ─► engine::Mapper per record ─► builder::SetBuilder per output
//!                                   └─ record errors ─► quarantine::QuarantineBuilder
//!  parts of 128 Ki rows ─► spill::RunWriter: row_hash, sorted runs in the load's staging directory
//!  all runs of a set ─► merge::merge: later-wins per key, merged into the previous snapshot
//!  (rowset::later_wins and rowset::merge_previous do the same in memory: the tests' reference)
//! ```
//!
//! Adding a vendor layout is a new mapping file and no Rust.

pub mod builder;
pub mod codes;
pub mod compile;
pub mod engine;
pub mod ingest;
pub mod layout;
pub mod merge;
pub mod quarantine;
pub mod rowset;
pub mod spill;
