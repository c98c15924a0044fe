#!/usr/bin/env bash
# Where a run's bytes go: runs `creditgate bench` (one hot account, or ACCOUNTS of them) on a
# private Postgres and prints, per run, the growth of every table and index
# (pg_relation_size before and after) and the WAL by record type (`pg_waldump --stats=record`
# between the WAL positions before and after the load). Loopback only, bounded in time.
#
#   bench/bytes.sh                         # WORKERS=64 ACCOUNTS=1 DURATION=10 PRICING=quote
#   ACCOUNTS=10000 bench/bytes.sh
#   SETUP_SQL="ALTER TABLE holds SET (fillfactor = 60)" bench/bytes.sh   # try a storage setting
#   PLANS=1 ACCOUNTS=10000 bench/bytes.sh  # every account with an allowance and a member limit
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-64}
ACCOUNTS=${ACCOUNTS:-1}
DURATION=${DURATION:-10}
PRICING=${PRICING:-quote}
PLANS=${PLANS:-}
PORT=${PORT:-50555}
BIN=${BIN:-target/release/creditgate}

. bench/lib.sh
bench_start bytes "$PORT" --drain-ms 0
sizes() {
  "$PG_BIN/psql" -Atq -F ' ' -c "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't') ORDER BY 1"
}
# The bench creates its accounts and grants first; measure a second, identical load on them.
"$BIN" bench --address "127.0.0.1:$PORT" --key-file "$WORK/data/demo-api-key" --data-dir "$WORK/data" \
  --workers "$WORKERS" --accounts "$ACCOUNTS" --duration-seconds 2 --pricing "$PRICING" ${PLANS:+--plans} >/dev/null 2>&1
[ -z "${SETUP_SQL:-}" ] || "$PG_BIN/psql" -q -c "$SETUP_SQL"
"$PG_BIN/psql" -q -c "VACUUM ANALYZE" -c "CHECKPOINT"
sizes >"$WORK/before"
START=$("$PG_BIN/psql" -Atq -c "SELECT pg_current_wal_lsn()")
RUNS_BEFORE=$("$PG_BIN/psql" -Atq -c "SELECT count(*) FROM holds")
"$BIN" bench --address "127.0.0.1:$PORT" --key-file "$WORK/data/demo-api-key" --data-dir "$WORK/data" \
  --workers "$WORKERS" --accounts "$ACCOUNTS" --duration-seconds "$DURATION" --pricing "$PRICING" ${PLANS:+--plans} \
  2>"$WORK/bench.err" | tail -n 1 >"$WORK/bench.json"
END=$("$PG_BIN/psql" -Atq -c "SELECT pg_current_wal_lsn()")
RUNS=$(( $("$PG_BIN/psql" -Atq -c "SELECT count(*) FROM holds") - RUNS_BEFORE ))
sizes >"$WORK/after"

echo "== $RUNS runs on $ACCOUNTS account(s), $WORKERS workers, ${DURATION}s: $(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("%.0f runs/s; the bench: %.0f WAL and %.0f table and index bytes per run" % (r["runs_per_second"],
      r.get("wal_bytes_per_run") or 0, r.get("table_bytes_per_run") or 0))' "$WORK/bench.json")"
echo "-- table and index bytes per run"
join -a 2 -e 0 -o 0,1.2,2.2 "$WORK/before" "$WORK/after" |
  awk -v runs="$RUNS" '{ d = ($3 - $2) / runs; if (d >= 1) printf "%-40s %8.0f\n", $1, d; t += d }
    END { printf "%-40s %8.0f\n", "total", t }' | sort -k2 -n -r
echo "-- WAL per run by record type (pg_waldump --stats=record)"
"$PG_BIN/pg_waldump" --stats=record -p "$WORK/data/pgdata/pg_wal" -s "$START" -e "$END" 2>/dev/null |
  python3 -c 'import re, sys
runs = int(sys.argv[1])
rows = []
for line in sys.stdin:
    m = re.match(r"(\S+)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)\s+\(\s*[\d.]+\)\s+(\d+)", line)
    if m:
        rows.append((m[1], int(m[2]), int(m[3]), int(m[4]), int(m[5])))
print("%-28s %9s %12s %10s %12s" % ("record", "records", "record bytes", "FPI bytes", "total bytes"))
for name, n, rec, fpi, total in sorted(rows, key=lambda r: -r[4]):
    if total / runs >= 1:
        print("%-28s %9.2f %12.0f %10.0f %12.0f" % (name, n / runs, rec / runs, fpi / runs, total / runs))
n, rec, fpi, total = (sum(r[i] for r in rows) for i in range(1, 5))
print("%-28s %9.2f %12.0f %10.0f %12.0f" % ("total", n / runs, rec / runs, fpi / runs, total / runs))' "$RUNS"
