-- The usage history bench/history.sh measures: one hot account with :runs runs spread over the
-- 365 days before :'now', and :others other accounts of the same tenant with 4 runs each, written
-- in bulk (see history.sh for why this is equivalent to the write path for the reads measured).
--
--   psql -v account=<hot account id> -v now=<RFC 3339> -v runs=1000000 -v others=10000 \
--        -v mix=task -f bench/history.sql
--
-- Mix: 6 task types (chat 45 %, image 15 %, tool 15 %, search 12 %, other 8 %, video 5 %) and 8
-- models; with mix=task each task type runs on the models that serve it (chat on four text
-- models, image on two image models, video on one, …: 11 task type × model pairs a day), with
-- mix=any every task type runs on every model (48 pairs a day, the most rollup rows a summary
-- can meet). Statuses: settled 90 %, released 7 %, expired 3 %, and the 5 newest runs active.
-- The values bench-history filters on are loaded here: task type TASK_TYPE_IMAGE (15 %), model
-- zai/glm-4.5-air (16.5 % with mix=task, 12 % with mix=any), status RELEASED, project mobile
-- (30 %) (src/bench/history.rs names them too).
\set ON_ERROR_STOP on
SELECT setseed(0.12) \g /dev/null

-- The other accounts: copies of the hot account's row (created through the API, so every column
-- holds what the write path stores) under new ids and external ids.
INSERT INTO accounts (account_id, tenant_id, external_id, kind, status, settle_policy, entitlements,
                      low_balance_threshold, debt, created_at, updated_at)
SELECT gen_random_uuid(), a.tenant_id, 'history-other-' || g, a.kind, a.status, a.settle_policy,
       a.entitlements, a.low_balance_threshold, 0, a.created_at, a.updated_at
FROM accounts a, generate_series(1, :others) g
WHERE a.account_id = :'account';

-- One row per run: the hot account's runs evenly spaced (with jitter) over the year, the others'
-- at random times; inserted in time order, as the write path appends them. Every column the
-- write path fills is filled with a plausible value; `r` holds the independent draws of each run.
CREATE TEMPORARY TABLE history_runs AS
SELECT account_id, tenant_id, authorize_key, created_at, newest, r
FROM (
    SELECT a.account_id, a.tenant_id, 'history-' || g AS authorize_key,
           :'now'::timestamptz - interval '365 days'
             + (g - 1 + random()) * (interval '365 days' / :runs) AS created_at,
           g > :runs - 5 AS newest,
           ARRAY[random(), random(), random(), random(), random(), random(), random()] AS r
    FROM accounts a, generate_series(1, :runs) g
    WHERE a.account_id = :'account'
    UNION ALL
    SELECT a.account_id, a.tenant_id, a.external_id || '-' || n,
           :'now'::timestamptz - random() * interval '365 days', false,
           ARRAY[random(), random(), random(), random(), random(), random(), random()]
    FROM accounts a, generate_series(1, 4) n
    WHERE a.external_id LIKE 'history-other-%'
) runs;

INSERT INTO holds (hold_id, tenant_id, account_id, status, amount, captured, expires_at, authorize_key,
                   catalog_version, task_type, tool, model, project, run_id, label_keys, label_values,
                   created_at, resolved_at)
SELECT gen_random_uuid(), tenant_id, account_id, status, amount,
       CASE status WHEN 'SETTLED' THEN round(amount * (0.3 + 0.8 * r[7])::numeric, 9) ELSE 0 END,
       -- Active holds expire after the bench ends, so no sweep touches them while it runs.
       CASE status WHEN 'ACTIVE' THEN :'now'::timestamptz + interval '1 day'
                   ELSE created_at + interval '15 minutes' END,
       authorize_key, 1, task_type,
       CASE task_type WHEN 'TASK_TYPE_SEARCH' THEN 'web_search'
                      WHEN 'TASK_TYPE_TOOL' THEN 'code_interpreter' ELSE '' END,
       model, project, 'run-' || authorize_key,
       CASE WHEN r[5] < 0.5 THEN ARRAY['env', 'team'] ELSE '{}' END,
       CASE WHEN r[5] < 0.5 THEN ARRAY['prod', 'team-' || floor(r[5] * 10)::int] ELSE '{}' END,
       created_at,
       CASE status WHEN 'ACTIVE' THEN NULL
                   WHEN 'EXPIRED' THEN created_at + interval '15 minutes'
                   ELSE created_at + (1 + 120 * r[6]) * interval '1 second' END
FROM (
    SELECT runs.*,
           CASE WHEN :'mix' = 'any' THEN
                -- Every task type on every model: the most rollup rows per day.
                CASE WHEN r[3] < 0.25 THEN 'bytedance/seed-1.8' WHEN r[3] < 0.37 THEN 'zai/glm-4.5-air'
                     WHEN r[3] < 0.45 THEN 'openai/o3-pro' WHEN r[3] < 0.60 THEN 'meta/llama-3.1-70b'
                     WHEN r[3] < 0.70 THEN 'xai/grok-3-fast' WHEN r[3] < 0.80 THEN 'openai/gpt-image-1'
                     WHEN r[3] < 0.90 THEN 'black-forest-labs/flux-1.1-pro' ELSE 'google/veo-3' END
           ELSE CASE task_type
                WHEN 'TASK_TYPE_CHAT' THEN
                     CASE WHEN r[3] < 0.40 THEN 'bytedance/seed-1.8' WHEN r[3] < 0.65 THEN 'meta/llama-3.1-70b'
                          WHEN r[3] < 0.85 THEN 'zai/glm-4.5-air' ELSE 'openai/o3-pro' END
                WHEN 'TASK_TYPE_TOOL' THEN
                     CASE WHEN r[3] < 0.50 THEN 'zai/glm-4.5-air' ELSE 'bytedance/seed-1.8' END
                WHEN 'TASK_TYPE_SEARCH' THEN 'xai/grok-3-fast'
                WHEN 'TASK_TYPE_IMAGE' THEN
                     CASE WHEN r[3] < 0.60 THEN 'openai/gpt-image-1' ELSE 'black-forest-labs/flux-1.1-pro' END
                WHEN 'TASK_TYPE_VIDEO' THEN 'google/veo-3'
                ELSE 'meta/llama-3.1-70b' END
           END AS model
    FROM (
        SELECT account_id, tenant_id, authorize_key, created_at, r,
               CASE WHEN newest THEN 'ACTIVE' WHEN r[1] < 0.90 THEN 'SETTLED'
                    WHEN r[1] < 0.97 THEN 'RELEASED' ELSE 'EXPIRED' END AS status,
               round((0.01 + 2 * r[6])::numeric, 6) AS amount,
               CASE WHEN r[2] < 0.45 THEN 'TASK_TYPE_CHAT' WHEN r[2] < 0.60 THEN 'TASK_TYPE_IMAGE'
                    WHEN r[2] < 0.75 THEN 'TASK_TYPE_TOOL' WHEN r[2] < 0.87 THEN 'TASK_TYPE_SEARCH'
                    WHEN r[2] < 0.92 THEN 'TASK_TYPE_VIDEO' ELSE 'TASK_TYPE_OTHER' END AS task_type,
               CASE WHEN r[4] < 0.40 THEN 'web' WHEN r[4] < 0.70 THEN 'mobile'
                    WHEN r[4] < 0.90 THEN 'batch' ELSE '' END AS project
        FROM history_runs
    ) runs
) runs
ORDER BY created_at;

-- What the reads of a run look up beside its hold: the settlement of every run that was charged
-- (for its `refunded`), with a line item as pricing writes one, and the allocation of every
-- active hold (for its `held`), reserved from the hot account's grant as Authorize reserves.
INSERT INTO settlements (settlement_id, hold_id, account_id, tenant_id, total, from_hold, from_balance,
                         debt, written_off, released, late, partial, refunded, created_at, line_items)
SELECT gen_random_uuid(), hold_id, account_id, tenant_id, captured, least(captured, amount),
       captured - least(captured, amount), 0, 0, amount - least(captured, amount), false, false, 0,
       resolved_at,
       jsonb_build_array(jsonb_build_object('kind', 'output_tokens', 'description', model || ' output tokens',
         'quantity', '1', 'unit', '1k tokens', 'rate', captured::text, 'amount', captured::text))
FROM holds
WHERE captured > 0
ORDER BY resolved_at;

WITH allocated AS (
    INSERT INTO hold_allocations (hold_id, grant_id, account_id, position, reserved, captured)
    SELECT h.hold_id, g.grant_id, h.account_id, 0, h.amount, 0
    FROM holds h JOIN grants g ON g.account_id = h.account_id
    WHERE h.status = 'ACTIVE' AND h.account_id = :'account'
    RETURNING grant_id, reserved
)
UPDATE grants g SET remaining = g.remaining - a.reserved, reserved = g.reserved + a.reserved
FROM (SELECT grant_id, sum(reserved) AS reserved FROM allocated GROUP BY grant_id) a
WHERE g.grant_id = a.grant_id;

-- The rollups are filled next by history.sh, with the backfill statement of
-- migrations/0009_usage_history.sql itself.
