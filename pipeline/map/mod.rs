//! Map: source layouts (data in `mappings/`) turn records into rows of record sets.
//!
//! ```text
//!  mappings/<layout>.toml ─► compile::compile ─► Layout (checked against schemas/ and codes)
//!  file ─► ingest::ingest_file ─► engine::Mapper per record ─► builder::SetBuilder per output
//!                                   └─ record errors ─► quarantine::QuarantineBuilder
//!  all files of a load ─► rowset: row_hash, later-wins per key (rowset::later_wins), merge (rowset::merge_previous)
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
