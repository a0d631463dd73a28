//! kiban: a municipality's 介護保険 exports into the 介護情報基盤.
//!
//! ```text
//! exports ─► read ─► decode ─► map ─► validate ─► store ─► diff ─► query, report
//!  (files)   bytes   CP932,    record  DataFusion  Parquet   I/U/D    auditors' SQL,
//!                    外字, 和暦  sets    rules       snapshot  by key   HTML per load
//!                                 │        │          │
//!                                 └─ quarantine       └──── ledger (sqlx: loads, files, versions, events)
//! ```
//!
//! One module per stage, data flowing one way down this list (SPEC §2): [`codec`] (CP932, 外字,
//! 和暦; depends on no stage), [`read`] (records from bytes), [`schema`] (record sets as data),
//! [`map`] (layouts as data → Arrow), [`validate`] (SQL rules in DataFusion), [`store`] (Parquet versions), [`diff`] (changes by key), [`ledger`] (every load in SQL), [`job`] (a load end to end), [`query`] (SQL over the store), [`report`] (the HTML load report),
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
