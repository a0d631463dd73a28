-- The ledger of kiban (SPEC §3): one schema for SQLite and PostgreSQL, so only portable types:
-- TEXT, BIGINT (0/1 for flags) and timestamps as RFC 3339 UTC text.

-- A load: one run of a job over one set of input files. `load_id` is derived from the job, the
-- insurer and the inputs' SHA-256, so a rerun of the same inputs finds its load again.
CREATE TABLE loads (
    load_id        TEXT PRIMARY KEY,
    job            TEXT NOT NULL,
    insurer_no     TEXT NOT NULL,
    inputs_sha256  TEXT NOT NULL,
    status         TEXT NOT NULL,
    -- the published version this load builds on and is diffed from (NULL: none yet)
    base_version   BIGINT,
    -- the store version this load creates, recorded before the store is written
    version        BIGINT,
    attempts       BIGINT NOT NULL,
    exit_code      BIGINT,
    message        TEXT,
    host           TEXT NOT NULL,
    pid            BIGINT NOT NULL,
    started_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    finished_at    TEXT
);
CREATE INDEX loads_by_insurer ON loads (insurer_no, status);

-- The input files of a load, recorded (with size and SHA-256) before they are read; counts after.
CREATE TABLE load_files (
    load_id         TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    path            TEXT NOT NULL,
    file_name       TEXT NOT NULL,
    layout          TEXT NOT NULL,
    bytes           BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    records_read    BIGINT,
    accepted        BIGINT,
    quarantined     BIGINT,
    warnings        BIGINT,
    rejected        TEXT,
    PRIMARY KEY (load_id, seq)
);

-- Counts per record set of a load; the change counts once the diff is written.
CREATE TABLE load_sets (
    load_id             TEXT NOT NULL,
    record_set          TEXT NOT NULL,
    mode                TEXT NOT NULL,
    load_rows           BIGINT NOT NULL,
    snapshot_rows       BIGINT NOT NULL,
    quarantined_rows    BIGINT NOT NULL,
    key_conflicts       BIGINT NOT NULL,
    deletes_suppressed  BIGINT NOT NULL,
    inserts             BIGINT,
    updates             BIGINT,
    deletes             BIGINT,
    PRIMARY KEY (load_id, record_set)
);

-- Store versions (SPEC §7): a row once the version's manifest is on disk; `published_at` once
-- its changes were delivered.
CREATE TABLE store_versions (
    insurer_no       TEXT NOT NULL,
    version          BIGINT NOT NULL,
    load_id          TEXT NOT NULL,
    parent_version   BIGINT,
    manifest_path    TEXT NOT NULL,
    manifest_sha256  TEXT NOT NULL,
    committed_at     TEXT NOT NULL,
    published_at     TEXT,
    PRIMARY KEY (insurer_no, version)
);

-- Batches of change rows sent to the platform (SPEC §9), recorded before they are sent.
CREATE TABLE publish_batches (
    load_id      TEXT NOT NULL,
    record_set   TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    row_count    BIGINT NOT NULL,
    bytes        BIGINT NOT NULL,
    digest       TEXT NOT NULL,
    status       TEXT NOT NULL,
    sent_at      TEXT,
    acked_at     TEXT,
    PRIMARY KEY (load_id, record_set, seq)
);

-- The platform's receipt of a committed load.
CREATE TABLE receipts (
    load_id           TEXT PRIMARY KEY,
    receipt_id        TEXT NOT NULL,
    platform_version  BIGINT NOT NULL,
    applied           BIGINT NOT NULL,
    committed_at      TEXT NOT NULL,
    recorded_at       TEXT NOT NULL
);

-- What happened to a load, in order: every state change, resumption and rollback.
CREATE TABLE events (
    load_id  TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL,
    PRIMARY KEY (load_id, seq)
);
