-- `record_key` holds the key's canonical encoding itself, not its hex (see the SQLite version of
-- this migration for why). A BYTEA orders as its hex did.
ALTER TABLE platform_records ALTER COLUMN record_key TYPE BYTEA USING decode(record_key, 'hex');
