-- Webhooks: per-tenant endpoints that receive the tenant's events (the `events` outbox) as
-- signed HTTP POSTs, in position order, and the record of every delivery attempt.

-- One row per endpoint. Its position is the last event delivered (or skipped by its filter):
-- the worker reads the tenant's events after it, below the events horizon. Only the head event
-- (the first one not yet delivered) is ever in flight, so events arrive in order.
CREATE TABLE webhook_endpoints (
    endpoint_id      uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (tenant_id),
    url              text NOT NULL CHECK (length(url) <= 2048),
    -- The signing secret itself, not a digest: every delivery is signed with it (HMAC), so it
    -- must be readable here. It is answered once, by the call that creates the endpoint.
    secret           text NOT NULL,
    -- Only this account's events; NULL: every account of the tenant.
    account_id       uuid,
    -- Only these event types; empty: all.
    event_types      text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'PAUSED')),
    pos_tx           xid8 NOT NULL,
    pos_seq          integer NOT NULL,
    -- Failure state of the head event: when it first failed, how many attempts failed.
    first_failed_at  timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_error       text CHECK (length(last_error) <= 512),
    -- A worker delivering to this endpoint holds it until then (a lease, not a row lock, so
    -- no transaction stays open across HTTP calls and the events horizon is never held back).
    lease_until      timestamptz,
    lease_token      uuid,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- A tenant's endpoints in listing order.
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id, created_at, endpoint_id);
-- What the worker claims: active endpoints by when they are due.
CREATE INDEX webhook_endpoints_due_idx ON webhook_endpoints (next_attempt_at) WHERE status = 'ACTIVE';

-- One row per attempt to deliver one event to one endpoint. Kept for a week (pruned in bounded
-- batches by the delivery worker).
CREATE TABLE webhook_deliveries (
    delivery_id   uuid PRIMARY KEY,
    endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL,
    event_id      uuid NOT NULL,
    event_tx      xid8 NOT NULL,
    event_seq     integer NOT NULL,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    http_status   integer,
    -- What went wrong, without the secret or the receiver's answer; NULL when delivered.
    error         text CHECK (length(error) <= 512),
    succeeded     boolean NOT NULL,
    duration_ms   integer NOT NULL,
    attempted_at  timestamptz NOT NULL
);
-- An endpoint's attempts, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, attempted_at DESC, delivery_id DESC);
-- Retention: the oldest attempts first.
CREATE INDEX webhook_deliveries_age_idx ON webhook_deliveries (attempted_at);
