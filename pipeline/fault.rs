//! Crash points for tests: with `KIBAN_FAULT=<point>` in its environment, a run ends the process
//! at that point the way `kill -9` would (abort: no unwinding, no cleanup, no flush), so tests
//! can prove that an interruption anywhere is finished or rolled back by the next run. Without
//! the variable this costs one environment lookup per point.
//!
//! Points, in the order a load passes them: `reading` (the load is recorded, nothing read),
//! `storing` (counts recorded, store not written), `store-sets` (snapshot files written, no
//! manifest), `committed` (manifest written, ledger not told), `stored`, `changes-written`
//! (`_changes` on disk, counts not recorded), `diffed`; then, publishing to a platform:
//! `publish-opened` (the platform has the load, no batch sent), `publish-batch-<n>` (after the
//! n-th batch this run sent was acknowledged and recorded), `publish-before-commit` (every batch
//! acknowledged), `publish-committed` (the platform committed, the receipt is not recorded).

/// Ends the process here when `KIBAN_FAULT` names this point.
pub fn point(name: &str) {
    if std::env::var_os("KIBAN_FAULT").is_some_and(|v| v == name) {
        eprintln!("KIBAN_FAULT={name}: ending the process here");
        std::process::abort();
    }
}
