-- The journal grows by four rows a run, forever: it becomes a table partitioned by month of
-- `created_at` (UTC), so each month's rows and indexes stay apart (vacuum, cache, moving old
-- months elsewhere) and ListLedger reads only the months it asks for (docs/SCALING.md §5).
-- Its primary key (account_id, created_at, entry_id) already names the partition key.
--
-- The old table becomes the partition `journal_entries_legacy` of everything before the bound
-- 0018 stated and 0019 checked, so attaching it scans nothing: this migration changes only the
-- catalog. Then come partitions for the three months from the bound and a default partition,
-- so that a write never fails for want of a partition; the servers make the months ahead and
-- move any rows the default caught (src/store/partitions.rs). Servers of the version before
-- keep working: they name only `journal_entries`.
ALTER TABLE journal_entries RENAME TO journal_entries_legacy;
ALTER TABLE journal_entries_legacy RENAME CONSTRAINT journal_entries_pkey TO journal_entries_legacy_pkey;
-- Rules do not fire through a partitioned table: a trigger on every partition keeps the
-- journal append-only instead (below).
DROP RULE journal_entries_no_update ON journal_entries_legacy;
DROP RULE journal_entries_no_delete ON journal_entries_legacy;

-- Not the legacy table's bound, which is its own.
CREATE TABLE journal_entries (LIKE journal_entries_legacy INCLUDING ALL EXCLUDING INDEXES EXCLUDING CONSTRAINTS)
    PARTITION BY RANGE (created_at);
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_pkey
    PRIMARY KEY (account_id, created_at, entry_id);

DO $$
DECLARE
    bound timestamptz := (regexp_match(pg_get_constraintdef(
        (SELECT oid FROM pg_constraint WHERE conname = 'journal_entries_before_partitions'
            AND conrelid = 'journal_entries_legacy'::regclass)), '''([^'']+)'''))[1]::timestamptz;
    month timestamp;
BEGIN
    EXECUTE format('ALTER TABLE journal_entries ATTACH PARTITION journal_entries_legacy '
        'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    FOR ahead IN 0..2 LOOP
        month := (bound AT TIME ZONE 'UTC') + make_interval(months => ahead);
        EXECUTE format('CREATE TABLE %I PARTITION OF journal_entries FOR VALUES FROM (%L) TO (%L)',
            'journal_entries_' || to_char(month, 'YYYY_MM'),
            month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
    END LOOP;
END
$$;
CREATE TABLE journal_entries_default PARTITION OF journal_entries DEFAULT;

-- Append-only: an UPDATE or DELETE of a posting does nothing, as the rules did, now on every
-- partition (a row trigger of a partitioned table is cloned to each).
CREATE FUNCTION journal_entries_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END
$$;
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_entries_unchanged();
