#!/usr/bin/env bash
# Reads back one account's long usage history and compares each read with what it must be
# measured against, all in one run on one private Postgres: ListUsage pages (first, tenth,
# thousandth, under each filter) against GetBalance of the same account; GetUsageSummary over
# the year against the plain aggregate SQL over the same rows; ExportUsage of every run against
# psql's COPY of the same columns, with the server's memory growth during the export.
# Everything runs on loopback, bounded in time.
#
#   bench/history.sh                                  # defaults below
#   RUNS=100000 OTHER_ACCOUNTS=1000 SAMPLES=100 bench/history.sh
#   PORT=0 bench/history.sh                           # any free port
#   MIX=any bench/history.sh                          # every task type on every model
#
# The history is loaded in bulk (bench/history.sql), not through Authorize and Settle: a
# million runs through the API would take hours here. For the reads measured the bulk load
# is equivalent to the write path:
# - the same rows: `holds` rows with every column the write path fills (status, amounts,
#   task type as the enum name, model, project, tool, run id, labels, created_at and
#   resolved_at), appended in created_at order as runs arrive, the hot account's runs
#   interleaved with those of 10,000 other accounts of the same tenant; beside them what a
#   usage row looks up: the settlement of every charged run (its `refunded`) and the
#   allocations of the active holds (their `held`, reserved from the account's grant);
# - the same indexes: the rows go through the migrated schema, so every index the write path
#   maintains (holds_usage_idx and settlements_hold_idx among them) is built as it would be;
# - the same rollups: `usage_rollups` is filled by the very statement with which
#   migrations/0009_usage_history.sql fills them for the runs made before it (taken from that
#   file), which counts what `creditgate verify` checks the write path's rollups against;
# - then VACUUM ANALYZE, as a database that took a year of writes would have been vacuumed.
# Not loaded, because no measured read touches them: the journal (ListLedger is not measured),
# the allocations of resolved holds, refunds and idempotency records. `creditgate verify`
# would therefore report the loaded books as unbalanced; the script does not run it.
# The hot account itself is created and funded through the API, so GetBalance reads a real
# account and grant.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-1000000}
OTHER_ACCOUNTS=${OTHER_ACCOUNTS:-10000}
MIX=${MIX:-task}
SAMPLES=${SAMPLES:-400}
WARM_UP=${WARM_UP:-20}
SUMMARY_CALLS=${SUMMARY_CALLS:-50}
DEEP_PAGE=${DEEP_PAGE:-1000}
EXPORTS=${EXPORTS:-2}
REFERENCE_RUNS=${REFERENCE_RUNS:-5}
PORT=${PORT:-50552}
BIN=${BIN:-target/release/creditgate}
LIMIT_SECONDS=${LIMIT_SECONDS:-1800}

. bench/lib.sh
bench_start history "$PORT"
ADDRESS=$(sed -n 's/^creditgate listening on //p' "$WORK/serve.out")
export PGOPTIONS="-c statement_timeout=${LIMIT_SECONDS}s"
KEY_FILE="$WORK/data/demo-api-key"
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
bench_history() {
  timeout "$LIMIT_SECONDS" "$BIN" bench-history --address "$ADDRESS" --key-file "$KEY_FILE" "$@"
}
milliseconds() { echo $(( $(date +%s%N) / 1000000 )); }
at() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# The year of runs ends now; the time-range filter of ListUsage asks for the quarter that ended
# 90 days ago.
NOW=$(date +%s)
SUMMARY_FROM=$(at $((NOW - 365 * 86400))); SUMMARY_TO=$(at "$NOW")
RANGE_FROM=$(at $((NOW - 180 * 86400))); RANGE_TO=$(at $((NOW - 90 * 86400)))

ACCOUNT=$(bench_history --create-account)
echo "== loading $RUNS runs of account $ACCOUNT and 4 runs each of $OTHER_ACCOUNTS other accounts (mix $MIX)"
LOAD_STARTED=$(milliseconds)
psql -v account="$ACCOUNT" -v now="$SUMMARY_TO" -v runs="$RUNS" -v others="$OTHER_ACCOUNTS" -v mix="$MIX" -f bench/history.sql
BACKFILL=$(sed -n '/^-- The runs made before this migration/,/;$/p' migrations/0009_usage_history.sql)
case "$BACKFILL" in *"INSERT INTO usage_rollups"*) ;; *) echo "no rollup backfill in migration 0009" >&2; exit 1 ;; esac
psql -c "$BACKFILL"
psql -c "VACUUM ANALYZE" -c "CHECKPOINT"
echo "loaded and vacuumed in $(( ($(milliseconds) - LOAD_STARTED) / 1000 )) s"

# The plain aggregate a user would write for the year's summary (one pass, no join: every
# breakdown the summary gives can be added up from its rows; refunds left out, which only
# makes it faster), REFERENCE_RUNS times, without JIT (which only made it slower here).
echo "== plain aggregate SQL over the year, $REFERENCE_RUNS times"
AGGREGATE="SELECT task_type, model, count(*), sum(captured), max(created_at) FROM holds
  WHERE account_id = '$ACCOUNT' AND created_at >= '$SUMMARY_FROM' AND created_at < '$SUMMARY_TO'
  GROUP BY task_type, model"
AGGREGATE_MS=$(for _ in $(seq 1 "$REFERENCE_RUNS"); do printf '%s;\n' "$AGGREGATE"; done \
  | PGOPTIONS="$PGOPTIONS -c jit=off" psql -c '\timing on' -c '\o /dev/null' -f - | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | paste -sd ' ')
YEAR_RUNS=$(psql -At -c "SELECT count(*) FROM holds WHERE account_id = '$ACCOUNT'
  AND created_at >= '$SUMMARY_FROM' AND created_at < '$SUMMARY_TO'")
ACCOUNT_RUNS=$(psql -At -c "SELECT count(*) FROM holds WHERE account_id = '$ACCOUNT'")

# COPY of the columns the export writes, over the same rows, oldest first as the export is, in
# two forms: the export's own SELECT (refunded looked up in the run's settlements, held in its
# allocations) and the one a user would write (LEFT JOINs of the summed settlements and
# allocations, the planner free to hash them), each with its verdict. For
# information, the COPY of the hold columns alone, with no lookup.
echo "== psql COPY of the account's runs, $EXPORTS times each of three forms"
COLUMNS="h.hold_id, h.created_at, h.resolved_at, h.status, h.task_type, h.tool, h.model, h.project, h.run_id,
  h.captured, h.label_keys, h.label_values"
LOOKUPS="CASE WHEN h.captured > 0 THEN (SELECT coalesce(sum(s.refunded), 0) FROM settlements s WHERE s.hold_id = h.hold_id)
  ELSE 0 END AS refunded,
  CASE WHEN h.status = 'ACTIVE' THEN (SELECT coalesce(sum(a.reserved), 0) FROM hold_allocations a WHERE a.hold_id = h.hold_id)
  ELSE 0 END AS held"
JOINS="LEFT JOIN (SELECT hold_id, sum(refunded) AS refunded FROM settlements GROUP BY hold_id) s ON s.hold_id = h.hold_id
  LEFT JOIN (SELECT hold_id, sum(reserved) AS held FROM hold_allocations GROUP BY hold_id) a ON a.hold_id = h.hold_id"
ACCOUNT_ORDER="h.account_id = '$ACCOUNT' AND h.created_at > '-infinity' ORDER BY h.created_at, h.hold_id"
copy_ms() {  # query → the milliseconds of each COPY of it (without JIT, as the export reads)
  for _ in $(seq 1 "$EXPORTS"); do
    started=$(milliseconds)
    PGOPTIONS="$PGOPTIONS -c jit=off" psql -c "COPY ($1) TO STDOUT WITH CSV" >/dev/null
    printf '%s ' $(( $(milliseconds) - started ))
  done
}
COPY_LOOKUPS_MS=$(copy_ms "SELECT $COLUMNS, $LOOKUPS FROM holds h WHERE $ACCOUNT_ORDER")
COPY_JOINS_MS=$(copy_ms "SELECT $COLUMNS, coalesce(s.refunded, 0), coalesce(a.held, 0) FROM holds h $JOINS WHERE $ACCOUNT_ORDER")
COPY_HOLDS_MS=$(copy_ms "SELECT $COLUMNS FROM holds h WHERE $ACCOUNT_ORDER")

echo "== creditgate bench-history (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
bench_history --account "$ACCOUNT" --samples "$SAMPLES" --warm-up "$WARM_UP" --summary-calls "$SUMMARY_CALLS" \
  --deep-page "$DEEP_PAGE" --exports "$EXPORTS" \
  --range-from "$RANGE_FROM" --range-to "$RANGE_TO" --summary-from "$SUMMARY_FROM" --summary-to "$SUMMARY_TO" \
  --server-pid "$SERVER_PID" | tee "$WORK/bench.out" >&2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$(tail -n 1 "$WORK/bench.out")" "$AGGREGATE_MS" "$COPY_LOOKUPS_MS" "$COPY_JOINS_MS" "$COPY_HOLDS_MS" \
  "$YEAR_RUNS" "$ACCOUNT_RUNS" "$DEEP_PAGE" <<'PY'
import json, statistics, sys
report = json.loads(sys.argv[1])
aggregate_ms, lookups_ms, joins_ms, holds_ms = ([float(value) for value in arg.split()] for arg in sys.argv[2:6])
year_runs, account_runs, deep_page = map(int, sys.argv[6:9])
verdict = lambda ok: "ok" if ok else "MISSED"

balance_p99 = report["get_balance"]["p99_ms"]
print(f"\n== ListUsage p99 ÷ GetBalance p99 (target ≤ 3); GetBalance p50 "
      f"{report['get_balance']['p50_ms']:.2f} ms, p99 {balance_p99:.2f} ms, "
      f"{report['get_balance']['calls']} calls each")
print(f"{'filter':<36} {'page':>5} {'rows':>5} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}")
for case in report["list_usage"]:
    ratio = case["p99_ms"] / balance_p99
    note = ""
    if case["page"] not in (1, 10, deep_page):
        note = f"  (the deepest page: page {10 if case['page'] < 10 else deep_page} does not exist)"
    print(f"{case['filter']:<36} {case['page']:>5} {case['rows']:>5} {case['p50_ms']:>8.2f} "
          f"{case['p99_ms']:>8.2f} {ratio:>6.2f} {verdict(ratio <= 3)}{note}")

summary = report["summary"]
aggregate = statistics.median(aggregate_ms)
ratio = summary["p50_ms"] / aggregate
print(f"\n== GetUsageSummary over the year ÷ plain aggregate SQL over the same rows (target ≤ 0.10)")
print(f"GetUsageSummary p50 {summary['p50_ms']:.2f} ms (p99 {summary['p99_ms']:.2f}, {summary['calls']} calls); "
      f"plain aggregate median {aggregate:.1f} ms (of {', '.join(f'{v:.1f}' for v in aggregate_ms)}): "
      f"{ratio:.3f} {verdict(ratio <= 0.1)}")
print(f"runs counted: summary {summary['total_runs']}, SQL {year_runs}: "
      f"{'equal' if summary['total_runs'] == year_runs else 'MISMATCH'}")

export = report["export"]
rate = lambda milliseconds: account_runs / (min(milliseconds) / 1000)
print(f"\n== ExportUsage rows/s ÷ psql COPY rows/s (target ≥ 0.5), server VmRSS growth (target ≤ 32 MiB)")
print(f"ExportUsage {export['rows']} rows, fastest {export['fastest_s']:.2f} s "
      f"(of {', '.join(f'{v:.2f}' for v in export['seconds'])}): {export['rows_per_second']:.0f} rows/s")
copies = [("COPY, the export's SELECT", lookups_ms), ("COPY, a user's SELECT with joins", joins_ms),
          ("COPY, hold columns only (no lookups)", holds_ms)]
for index, (name, milliseconds) in enumerate(copies):
    ratio = export["rows_per_second"] / rate(milliseconds)
    target = verdict(ratio >= 0.5) if index < 2 else "(for information)"
    print(f"{name:<38} fastest {min(milliseconds) / 1000:6.2f} s (of "
          f"{', '.join(f'{v / 1000:.2f}' for v in milliseconds)}): {rate(milliseconds):8.0f} rows/s, "
          f"export ÷ this {ratio:.2f} {target}")
growth = export["rss_growth_kib"]
print(f"server VmRSS {export['rss_before_kib']} KiB before, at most {export['rss_max_kib']} KiB: "
      f"+{growth / 1024:.1f} MiB {verdict(growth <= 32 * 1024)}")
print(f"rows exported: {export['rows']}, in the database: {account_runs}: "
      f"{'equal' if export['rows'] == account_runs else 'MISMATCH'}")
PY
