//! kiban: a municipality's 介護保険 exports into the 介護情報基盤.
//!
//! ```text
//! exports ─► read ─► decode ─► map ─► validate ─► store ─► diff ─► publish ══ mTLS ══► platform
//!  (files)   bytes   CP932,    record  DataFusion  Parquet   I/U/D    Arrow IPC          (reference
//!                    外字, 和暦  sets    rules       snapshot  by key   batches,           receiver:
//!                                 │        │          │                 commit, receipt    platform/)
//!                                 └─ quarantine       └──── ledger (sqlx: loads, files, versions, batches, receipts, events)
//! ```
//!
//! One module per stage, data flowing one way down this list (SPEC §2): [`codec`] (CP932, 外字,
//! 和暦; depends on no stage), [`read`] (records from bytes), [`schema`] (record sets as data),
//! [`map`] (layouts as data → Arrow), [`validate`] (SQL rules in DataFusion), [`store`] (Parquet versions), [`diff`] (changes by key), [`ledger`] (every load in SQL), [`publish`] (batches, commit, receipt over [`protocol`]), [`platform`] (the reference receiver), [`identity`] (certificates and TLS), [`job`] (a load end to end), [`query`] (SQL over the store), [`report`] (the HTML load report),
//! [`sample`] (synthetic exports), [`cli`] (the `kiban` command).

pub mod cli;
pub mod codec;
pub mod diff;
pub mod fault;
pub mod identity;
pub mod job;
pub mod ledger;
pub mod map;
pub mod parallel;
pub mod platform;
pub mod protocol;
pub mod publish;
pub mod query;
pub mod read;
pub mod report;
pub mod sample;
pub mod schema;
pub mod store;
pub mod validate;
