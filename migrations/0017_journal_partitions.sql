-- The journal grows by four rows a run, forever: it becomes a table partitioned by month of
-- `created_at` (UTC), so each month's rows and indexes stay apart (vacuum, cache, moving old
-- months elsewhere) and ListLedger reads only the months it asks for (docs/SCALING.md §5).
-- Its primary key (account_id, created_at, entry_id) already names the partition key.
--
-- The rows so far stay where they are: the old table becomes the partition of everything
-- before the month after the newest row (or after now), checked by one scan (the time grows
-- with the journal, and writes to it wait meanwhile). Then come partitions for the next three
-- months and a default partition, so that a write never fails for want of a partition; the
-- servers make the months ahead and move any rows the default caught (src/store/partitions.rs).
-- Servers of the version before keep working: they name only `journal_entries`.
ALTER TABLE journal_entries RENAME TO journal_entries_legacy;
ALTER TABLE journal_entries_legacy RENAME CONSTRAINT journal_entries_pkey TO journal_entries_legacy_pkey;
-- Rules do not fire through a partitioned table: the journal is kept append-only by a trigger
-- on every partition instead (below).
DROP RULE journal_entries_no_update ON journal_entries_legacy;
DROP RULE journal_entries_no_delete ON journal_entries_legacy;

CREATE TABLE journal_entries (LIKE journal_entries_legacy INCLUDING ALL EXCLUDING INDEXES)
    PARTITION BY RANGE (created_at);
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_pkey
    PRIMARY KEY (account_id, created_at, entry_id);

DO $$
DECLARE
    newest timestamptz := greatest(now(), (SELECT max(created_at) FROM journal_entries_legacy));
    bound timestamp := date_trunc('month', newest AT TIME ZONE 'UTC') + interval '1 month';
    month timestamp;
BEGIN
    EXECUTE format('ALTER TABLE journal_entries_legacy ADD CONSTRAINT journal_entries_legacy_range '
        'CHECK (created_at < %L)', bound AT TIME ZONE 'UTC');
    EXECUTE format('ALTER TABLE journal_entries ATTACH PARTITION journal_entries_legacy '
        'FOR VALUES FROM (MINVALUE) TO (%L)', bound AT TIME ZONE 'UTC');
    FOR ahead IN 0..2 LOOP
        month := bound + make_interval(months => ahead);
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
