-- The reference platform's state (SPEC §9): one schema for SQLite and PostgreSQL, portable types
-- only (TEXT, BIGINT, BYTEA — SQLite stores any blob in it), timestamps as RFC 3339 UTC text.

-- Each insurer's current platform version: 0 before its first commit, +1 per commit.
CREATE TABLE platform_insurers (
    insurer_no  TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Opened loads. `record_sets` is a JSON array; `status` is open or committed.
CREATE TABLE platform_loads (
    load_id       TEXT PRIMARY KEY,
    insurer_no    TEXT NOT NULL,
    base_version  BIGINT NOT NULL,
    record_sets   TEXT NOT NULL,
    status        TEXT NOT NULL,
    opened_by     TEXT NOT NULL,
    opened_at     TEXT NOT NULL
);

-- Batches received, not yet applied. The body is emptied once its load is committed; the digest
-- stays, so a batch sent again is still recognised.
CREATE TABLE platform_batches (
    load_id      TEXT NOT NULL,
    record_set   TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    digest       TEXT NOT NULL,
    row_count    BIGINT NOT NULL,
    body         BYTEA NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (load_id, record_set, seq)
);

-- One receipt per committed load; a commit sent again gets the same receipt.
CREATE TABLE platform_receipts (
    load_id       TEXT PRIMARY KEY,
    receipt_id    TEXT NOT NULL,
    insurer_no    TEXT NOT NULL,
    version       BIGINT NOT NULL,
    applied       BIGINT NOT NULL,
    committed_at  TEXT NOT NULL
);

-- Current rows. `record_key` is the hex of the key's canonical encoding (map::rowset), so the
-- state digest is computed from (record_key, row_hash) alone; `row_json` is what the records view
-- returns.
CREATE TABLE platform_records (
    insurer_no   TEXT NOT NULL,
    record_set   TEXT NOT NULL,
    record_key   TEXT NOT NULL,
    insured_no   TEXT,
    row_hash     TEXT NOT NULL,
    row_json     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    PRIMARY KEY (insurer_no, record_set, record_key)
);
CREATE INDEX platform_records_person ON platform_records (insurer_no, record_set, insured_no);

-- Every commit: who (certificate subject and serial; the person once card login exists) made
-- which version.
CREATE TABLE platform_audit (
    load_id      TEXT NOT NULL,
    insurer_no   TEXT NOT NULL,
    version      BIGINT NOT NULL,
    applied      BIGINT NOT NULL,
    subject      TEXT NOT NULL,
    serial       TEXT NOT NULL,
    person       TEXT,
    at           TEXT NOT NULL,
    PRIMARY KEY (load_id)
);
