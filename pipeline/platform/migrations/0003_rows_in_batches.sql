-- A commit no longer copies each row out of its batch as JSON (a 1M-person first load wrote
-- 6.6 GB of it, and the commit took a minute): a row committed from now on has `row_json` ''
-- and points at the row of the batch it came in — (`batch_load`, `record_set`, `batch_seq`) and
-- its index `batch_row` among the batch's rows. Batches of committed loads keep their body, since
-- current rows point into them; rows committed before this migration keep their JSON.
ALTER TABLE platform_records ADD COLUMN batch_load TEXT;
ALTER TABLE platform_records ADD COLUMN batch_seq BIGINT;
ALTER TABLE platform_records ADD COLUMN batch_row BIGINT;
