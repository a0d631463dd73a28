//! kiban: a municipality's 介護保険 exports into the 介護情報基盤.
//!
//! ```text
//! exports ─► read ─► decode ─► map ─► store
//!  (files)   bytes   CP932,    record  Parquet
//!                    外字, 和暦  sets    snapshot
//!                                 │
//!                            quarantine
//! ```
//!
//! One module per stage, data flowing one way down this list (SPEC §2): [`codec`] (CP932, 外字,
//! 和暦; depends on no stage), [`read`] (records from bytes), [`schema`] (record sets as data),
//! [`map`] (layouts as data → Arrow), [`store`] (Parquet versions), [`job`] (a load end to end),
//! [`sample`] (synthetic exports), [`cli`] (the `kiban` command).

pub mod cli;
pub mod codec;
pub mod job;
pub mod map;
pub mod parallel;
pub mod read;
pub mod sample;
pub mod schema;
pub mod store;
