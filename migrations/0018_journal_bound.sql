-- The journal becomes a table partitioned by month in 0020 (docs/SCALING.md §5). Its rows so
-- far stay where they are: this table becomes the partition of everything before a bound.
-- This constraint states the bound without checking the rows (NOT VALID: a moment's lock, no
-- scan); 0019 checks them online, and attaching then scans nothing. The bound is the start of
-- the month after next (UTC), so every write between here and 0020 falls before it.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_before_partitions '
        'CHECK (created_at < %L) NOT VALID',
        (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months') AT TIME ZONE 'UTC');
END
$$;
