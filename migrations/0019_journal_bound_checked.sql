-- Checks the journal's rows against the bound 0018 stated, online: validating takes a lock that
-- lets writes go on, and validating again does nothing.
ALTER TABLE journal_entries VALIDATE CONSTRAINT journal_entries_before_partitions;
