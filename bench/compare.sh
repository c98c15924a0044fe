#!/usr/bin/env bash
# Runs the naive Postgres reference (pgbench, bench/naive.sql) and `creditgate bench` against
# the same private Postgres at the same concurrency, for one hot account and for many, and
# prints creditgate ÷ naive: runs/s, and WAL bytes per run (the cluster's WAL position before
# and after each load; the naive reference's by pgbench's transaction count). Everything runs
# on loopback, bounded in time.
#
#   bench/compare.sh                      # defaults below
#   WORKERS=64 SPREAD_ACCOUNTS=10000 DURATION=10 PRICING=quote bench/compare.sh
#   PLANS=1 bench/compare.sh              # every account with an allowance and a member limit
#   PHASES=spread bench/compare.sh        # one phase only (hot, spread, or both: the default)
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-64}
SPREAD_ACCOUNTS=${SPREAD_ACCOUNTS:-10000}
DURATION=${DURATION:-10}
PRICING=${PRICING:-quote}
PLANS=${PLANS:-}
PHASES=${PHASES:-hot spread}
PORT=${PORT:-50551}
BIN=${BIN:-target/release/creditgate}

. bench/lib.sh
bench_start compare "$PORT"
KEY_FILE="$WORK/data/demo-api-key"

"$PG_BIN/psql" -q -d creditgate -c "DROP DATABASE IF EXISTS naive" -c "CREATE DATABASE naive"
naive() {  # accounts → runs/s of the naive reference
  "$PG_BIN/psql" -q -d naive <<SQL
DROP TABLE IF EXISTS naive_holds, naive_accounts;
CREATE TABLE naive_accounts (id integer PRIMARY KEY, available numeric NOT NULL, held numeric NOT NULL);
CREATE TABLE naive_holds (id bigserial PRIMARY KEY, account_id integer NOT NULL REFERENCES naive_accounts,
  amount numeric NOT NULL, captured numeric, status text NOT NULL);
INSERT INTO naive_accounts SELECT g, 1000000000, 0 FROM generate_series(1, $1) g;
SQL
  local before after
  before=$("$PG_BIN/psql" -Atq -d naive -c "SELECT pg_current_wal_lsn()")
  "$PG_BIN/pgbench" -n -d naive -c "$WORKERS" -j 2 -T "$DURATION" -D accounts="$1" -f bench/naive.sql \
    >"$WORK/pgbench.out" 2>/dev/null
  after=$("$PG_BIN/psql" -Atq -d naive -c "SELECT pg_current_wal_lsn()")
  # WAL bytes per run (one script execution), as `creditgate bench` reports its own.
  "$PG_BIN/psql" -Atq -d naive -c "SELECT round(pg_wal_lsn_diff('$after', '$before') / \
    greatest($(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/pgbench.out"), 1))" \
    >"$WORK/naive-wal-$1"
  sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench.out"
}
ours() {  # accounts → the bench's JSON line
  "$BIN" bench --address "127.0.0.1:$PORT" --key-file "$KEY_FILE" --data-dir "$WORK/data" --workers "$WORKERS" \
    --accounts "$1" --duration-seconds "$DURATION" --pricing "$PRICING" ${PLANS:+--plans} 2>"$WORK/bench.err" | tee "$WORK/bench.out" >&2
  tail -n 1 "$WORK/bench.out"
}
runs_per_second() {  # the bench's JSON line → runs/s; keeps its WAL bytes per run in $WORK/ours-wal
  python3 -c 'import json,sys
report = json.loads(sys.stdin.read())
print(round(report["runs_per_second"], 1))
open(sys.argv[1], "w").write(str(round(report.get("wal_bytes_per_run") or 0)))' "$WORK/ours-wal"
}

# Each phase starts from a checkpoint with the previous phase's tables vacuumed, so none pays
# for the WAL or the autovacuum work of the one before.
checkpoint() {
  "$PG_BIN/psql" -q -d naive -c "VACUUM ANALYZE" 2>/dev/null || true
  "$PG_BIN/psql" -q -d creditgate -c "VACUUM ANALYZE" -c "CHECKPOINT"
}
ROWS=()
phase() {  # name, accounts → one row for the table below
  echo "== $1: $2 account(s), $WORKERS workers, ${DURATION}s, pricing $PRICING${PLANS:+, with plans}"
  local naive_runs ours_runs
  checkpoint; naive_runs=$(naive "$2")
  checkpoint; ours_runs=$(ours "$2" | runs_per_second)
  ROWS+=("$1 $naive_runs $ours_runs $(cat "$WORK/naive-wal-$2") $(cat "$WORK/ours-wal")")
}
for name in $PHASES; do
  case $name in
    hot) phase hot 1 ;;
    spread) phase spread "$SPREAD_ACCOUNTS" ;;
    *) echo "PHASES: unknown phase '$name' (expected hot and/or spread)" >&2; exit 2 ;;
  esac
done

python3 - "${ROWS[@]}" <<'PY'
import sys
print(f"{'':8} {'naive runs/s':>14} {'creditgate runs/s':>18} {'ratio':>7} {'naive WAL B/run':>16} {'creditgate WAL B/run':>21} {'ratio':>7}")
for row in sys.argv[1:]:
    name, naive, ours, naive_wal, ours_wal = row.split()
    naive, ours, naive_wal, ours_wal = map(float, (naive, ours, naive_wal, ours_wal))
    wal_ratio = ours_wal / naive_wal if naive_wal else float("nan")
    print(f"{name:8} {naive:>14.1f} {ours:>18.1f} {ours / naive:>7.2f} {naive_wal:>16.0f} {ours_wal:>21.0f} {wal_ratio:>7.2f}")
PY
