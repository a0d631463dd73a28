-- `record_key` holds the key's canonical encoding itself, not its hex: keys are 73–118 bytes in
-- the record sets of SPEC §5 and are stored twice (the table and its primary key), so hex made
-- them most of a 1M-person load's 1.4 GB of records and of its commit's work. A BLOB orders as
-- its hex did. SQLite cannot change a column's type: the table is rebuilt.
CREATE TABLE platform_records_v4 (
    insurer_no   TEXT NOT NULL,
    record_set   TEXT NOT NULL,
    record_key   BLOB NOT NULL,
    insured_no   TEXT,
    row_hash     TEXT NOT NULL,
    row_json     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    batch_load   TEXT,
    batch_seq    BIGINT,
    batch_row    BIGINT,
    PRIMARY KEY (insurer_no, record_set, record_key)
);
INSERT INTO platform_records_v4
    SELECT insurer_no, record_set, unhex(record_key), insured_no, row_hash, row_json, version, batch_load, batch_seq, batch_row
    FROM platform_records;
DROP TABLE platform_records;
ALTER TABLE platform_records_v4 RENAME TO platform_records;
CREATE INDEX platform_records_person ON platform_records (insurer_no, record_set, insured_no);
