//! Integration tests: they run the `kiban` binary on real files and read back the Parquet store.
mod bad_input;
mod fixtures;
mod golden;
mod housing;
mod ledger;
mod pg;
mod platform;
pub mod platform_fixture;
mod publish;
mod report;
mod robustness;
mod rules;
mod run;
mod sample;
mod schedule;
mod validation;
mod xml;
