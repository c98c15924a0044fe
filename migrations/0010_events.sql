-- Events (WatchEvents): an outbox written in the same transaction as the change that causes
-- it, so an event exists if and only if its change committed.

-- One row per event. Its position is (tx, seq): the writing transaction's id and the event's
-- place in that transaction. Readers deliver only events of transactions older than every
-- transaction still running (`pg_snapshot_xmin`), in position order, so an event committed
-- late with a lower position is never skipped: a cursor is a position, and everything after it
-- is delivered once its transaction is older than all running ones.
CREATE TABLE events (
    tx          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq         integer NOT NULL,
    event_id    uuid NOT NULL,
    tenant_id   uuid NOT NULL,
    account_id  uuid NOT NULL,
    event_type  text NOT NULL,
    attributes  jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tx, seq)
);
-- A tenant's events in position order: WatchEvents replays and cursor checks.
CREATE INDEX events_tenant_idx ON events (tenant_id, tx, seq);

-- Per tenant, the last position removed by retention: a cursor before it may have missed
-- events (CURSOR_EXPIRED); a cursor at or after it has missed nothing.
CREATE TABLE event_horizons (
    tenant_id   uuid PRIMARY KEY,
    pruned_tx   xid8 NOT NULL,
    pruned_seq  integer NOT NULL
);

-- Wakes every listening server when a transaction with events commits (one notification per
-- transaction: Postgres folds identical notifications of one transaction).
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('creditgate_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- CREDITS_EXPIRING fires once per grant: the flag says it did. Grants that exist now start
-- unwarned, so those expiring within the horizon are warned by the first sweep.
ALTER TABLE grants ADD COLUMN expiry_warned boolean NOT NULL DEFAULT false;
-- Live grants not yet warned, by expiry: what the sweeper looks for. Its predicate names only
-- `live` and the flag, which change rarely, so reserving and capturing stay HOT updates.
CREATE INDEX grants_warning_idx ON grants (expires_at) WHERE live AND NOT expiry_warned AND expires_at IS NOT NULL;
