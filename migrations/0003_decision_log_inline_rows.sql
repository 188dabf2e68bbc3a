-- Decision rows up to ~8 KB are stored inline and uncompressed.
--
-- A row longer than toast_tuple_target (2 KB by default) has its jsonb compressed with pglz before
-- it is written. A release-gate decision carries a ~3 KB input, so every such insert paid for a
-- compression: measured on local Postgres 15, batches of 16 release-gate rows cost 110 µs of
-- Postgres CPU per row with the default and 73 µs with toast_tuple_target = 8160 (ADR 0004). Rows
-- longer than that are still compressed and moved out of line as before. The price is disk: such
-- rows are stored at their full size. The parent of a partitioned table takes no storage
-- parameters, so each partition gets it (src/store/partitions.ts does the same for new ones).
DO $$
DECLARE
  part regclass;
BEGIN
  FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'decision_log'::regclass LOOP
    EXECUTE format('ALTER TABLE %s SET (toast_tuple_target = 8160)', part);
  END LOOP;
END $$;
