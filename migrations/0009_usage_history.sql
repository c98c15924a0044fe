-- Usage history: ListUsage, ExportUsage and GetUsageSummary.

-- One account's runs by time, for ListUsage and ExportUsage (keyset pages on created_at, then
-- hold_id) and the partial days of GetUsageSummary. The predicate holds for every row (no run
-- is made at -infinity) but only the usage queries state it, word for word, so the planner can
-- never use this index for the locked reads, which do not: an index on (account_id,
-- created_at) once let it walk every hold of a hot account on each transaction
-- (docs/PERFORMANCE.md, "Robust plans"). A comparison, not `IS NOT NULL` on a NOT NULL column,
-- which newer planners simplify away.
CREATE INDEX holds_usage_idx ON holds (account_id, created_at, hold_id) WHERE created_at > '-infinity';

-- What was refunded of a run, for its usage row: a lookup in an index of the few refunded
-- settlements instead of all of them. Settlements are written unrefunded, so the money path
-- adds no entry; a refund's update adds one.
CREATE INDEX settlements_refunded_idx ON settlements (hold_id) WHERE refunded > 0;

-- What an account's runs created on one UTC day with one task type and model add up to,
-- maintained in the transaction that resolves (settles, releases, expires) or refunds them, so
-- a summary over a year reads at most 366 days × task types × models rows. A run is counted
-- once resolved, with all it captured by then: `runs`, `captured` (what the runs were charged)
-- and `last_run_at` (the latest run's created_at) cover resolved runs only; active runs are read
-- from the holds (few per account). `refunded`: what was refunded of the day's runs, active or
-- not. Unbounded numerics: a counter of many runs may exceed what one amount column holds.
CREATE TABLE usage_rollups (
    account_id   uuid NOT NULL,
    day          date NOT NULL,
    task_type    text NOT NULL,
    model        text NOT NULL,
    runs         bigint NOT NULL CHECK (runs >= 0),
    captured     numeric NOT NULL CHECK (captured >= 0),
    refunded     numeric NOT NULL CHECK (refunded >= 0),
    last_run_at  timestamptz,
    PRIMARY KEY (account_id, day, task_type, model)
) WITH (fillfactor = 70);

-- The runs made before this migration.
INSERT INTO usage_rollups (account_id, day, task_type, model, runs, captured, refunded, last_run_at)
SELECT h.account_id, (h.created_at AT TIME ZONE 'UTC')::date, h.task_type, h.model,
       count(*) FILTER (WHERE h.status <> 'ACTIVE'),
       coalesce(sum(h.captured) FILTER (WHERE h.status <> 'ACTIVE'), 0),
       coalesce(sum(s.refunded), 0),
       max(h.created_at) FILTER (WHERE h.status <> 'ACTIVE')
FROM holds h
LEFT JOIN (SELECT hold_id, sum(refunded) AS refunded FROM settlements GROUP BY hold_id) s
       ON s.hold_id = h.hold_id
GROUP BY 1, 2, 3, 4
HAVING count(*) FILTER (WHERE h.status <> 'ACTIVE') > 0 OR coalesce(sum(s.refunded), 0) > 0;
