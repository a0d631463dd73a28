//! What the ledger records of publishing (SPEC §9): each batch before it is sent and once it is
//! acknowledged, the platform's receipt, and operators' replays. A run that resumes a load sends
//! only the batches without an acknowledgement.

use super::records::{Cols, INSERT_EVENT, i};
use super::{Ledger, LedgerError, now};
use serde::Serialize;

/// A batch of change rows as the ledger knows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BatchRecord {
    pub record_set: String,
    pub seq: u64,
    pub row_count: u64,
    pub bytes: u64,
    /// Hex SHA-256 of the body.
    pub digest: String,
    /// `sending` (recorded, no acknowledgement yet) or `acked`.
    pub status: String,
    pub sent_at: Option<String>,
    pub acked_at: Option<String>,
}

/// The platform's receipt of a load.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub load_id: String,
    pub receipt_id: String,
    pub platform_version: u64,
    pub applied: u64,
    pub committed_at: String,
    pub recorded_at: String,
}

impl Ledger {
    pub fn batches(&self, load_id: &str) -> Result<Vec<BatchRecord>, LedgerError> {
        let res: Result<Vec<BatchRecord>, sqlx::Error> = self.block(async {
            let rows = sqlx::query(
                "SELECT record_set, seq, row_count, bytes, digest, status, sent_at, acked_at FROM publish_batches WHERE load_id = $1 ORDER BY record_set, seq",
            )
            .bind(load_id)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let c = Cols(r);
                    Ok(BatchRecord {
                        record_set: c.text("record_set")?,
                        seq: c.num("seq")?,
                        row_count: c.num("row_count")?,
                        bytes: c.num("bytes")?,
                        digest: c.text("digest")?,
                        status: c.text("status")?,
                        sent_at: c.opt_text("sent_at")?,
                        acked_at: c.opt_text("acked_at")?,
                    })
                })
                .collect()
        });
        res.map_err(self.query_error("reading a load's batches"))
    }

    /// A batch about to be sent (written before the request).
    pub fn record_batch(&self, load_id: &str, b: &BatchRecord) -> Result<(), LedgerError> {
        let res: Result<_, sqlx::Error> = self.block(
            sqlx::query(
                "INSERT INTO publish_batches (load_id, record_set, seq, row_count, bytes, digest, status, sent_at, acked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'sending', $7, NULL)
                 ON CONFLICT (load_id, record_set, seq) DO UPDATE SET row_count = $4, bytes = $5, digest = $6, status = 'sending', sent_at = $7, acked_at = NULL",
            )
            .bind(load_id)
            .bind(&b.record_set)
            .bind(i(b.seq))
            .bind(i(b.row_count))
            .bind(i(b.bytes))
            .bind(&b.digest)
            .bind(now())
            .execute(&self.pool),
        );
        res.map(|_| ()).map_err(self.query_error("recording a batch"))
    }

    /// The platform acknowledged a batch.
    pub fn ack_batch(&self, load_id: &str, record_set: &str, seq: u64) -> Result<(), LedgerError> {
        let res: Result<_, sqlx::Error> = self.block(
            sqlx::query("UPDATE publish_batches SET status = 'acked', acked_at = $4 WHERE load_id = $1 AND record_set = $2 AND seq = $3")
                .bind(load_id)
                .bind(record_set)
                .bind(i(seq))
                .bind(now())
                .execute(&self.pool),
        );
        res.map(|_| ()).map_err(self.query_error("recording a batch's acknowledgement"))
    }

    pub fn receipt(&self, load_id: &str) -> Result<Option<ReceiptRecord>, LedgerError> {
        let res: Result<Option<ReceiptRecord>, sqlx::Error> = self.block(async {
            let row = sqlx::query(
                "SELECT load_id, receipt_id, platform_version, applied, committed_at, recorded_at FROM receipts WHERE load_id = $1",
            )
            .bind(load_id)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| {
                let c = Cols(&r);
                Ok(ReceiptRecord {
                    load_id: c.text("load_id")?,
                    receipt_id: c.text("receipt_id")?,
                    platform_version: c.num("platform_version")?,
                    applied: c.num("applied")?,
                    committed_at: c.text("committed_at")?,
                    recorded_at: c.text("recorded_at")?,
                })
            })
            .transpose()
        });
        res.map_err(self.query_error("reading a receipt"))
    }

    /// The receipt, and the load published, in one transaction: a crash leaves both or neither
    /// (then the next run commits again and the platform answers with the same receipt).
    pub fn record_receipt(
        &self,
        load_id: &str,
        insurer_no: &str,
        version: u64,
        exit_code: i32,
        receipt: &crate::protocol::Receipt,
    ) -> Result<(), LedgerError> {
        let detail =
            format!("receipt {} from the platform: version {}, {} rows applied", receipt.receipt_id, receipt.version, receipt.applied);
        self.publish_version(load_id, insurer_no, version, exit_code, &detail, Some(receipt))
    }

    /// An event outside the state machine (a replay, a verification).
    pub fn event(&self, load_id: &str, kind: &str, detail: &str) -> Result<(), LedgerError> {
        let res: Result<_, sqlx::Error> =
            self.block(sqlx::query(INSERT_EVENT).bind(load_id).bind(now()).bind(kind).bind(detail).execute(&self.pool));
        res.map(|_| ()).map_err(self.query_error("recording an event"))
    }
}
