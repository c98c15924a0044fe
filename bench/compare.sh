#!/usr/bin/env bash
# Runs the naive Postgres reference (pgbench, bench/naive.sql) and `creditgate bench` against
# the same private Postgres at the same concurrency, for one hot account and for many, and
# prints creditgate ÷ naive. Everything runs on loopback, bounded in time.
#
#   bench/compare.sh                      # defaults below
#   WORKERS=64 SPREAD_ACCOUNTS=10000 DURATION=10 PRICING=quote bench/compare.sh
#   PLANS=1 bench/compare.sh              # every account with an allowance and a member limit
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-64}
SPREAD_ACCOUNTS=${SPREAD_ACCOUNTS:-10000}
DURATION=${DURATION:-10}
PRICING=${PRICING:-quote}
PLANS=${PLANS:-}
PORT=${PORT:-50551}
BIN=${BIN:-target/release/creditgate}

[ -x "$BIN" ] || cargo build --release --quiet
PG_BIN=$(pg_config --bindir 2>/dev/null || true)
[ -x "$PG_BIN/pgbench" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

WORK=$(mktemp -d /tmp/creditgate-compare-XXXXXX)
chmod 755 "$WORK"   # as root the private Postgres runs as `postgres` and must enter it
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
  sleep 0.1
done
export PGHOST=127.0.0.1 PGUSER=creditgate PGPORT PGPASSWORD
PGPORT=$(sed -n 4p "$WORK/data/pgdata/postmaster.pid")
PGPASSWORD=$(cat "$WORK/data/postgres-password")
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
  "$PG_BIN/pgbench" -n -d naive -c "$WORKERS" -j 2 -T "$DURATION" -D accounts="$1" -f bench/naive.sql 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
ours() {  # accounts → the bench's JSON line
  "$BIN" bench --address "127.0.0.1:$PORT" --key-file "$KEY_FILE" --data-dir "$WORK/data" --workers "$WORKERS" \
    --accounts "$1" --duration-seconds "$DURATION" --pricing "$PRICING" ${PLANS:+--plans} 2>"$WORK/bench.err" | tee "$WORK/bench.out" >&2
  tail -n 1 "$WORK/bench.out"
}
runs_per_second() { python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read())["runs_per_second"], 1))'; }

# Each phase starts from a checkpoint with the previous phase's tables vacuumed, so none pays
# for the WAL or the autovacuum work of the one before.
checkpoint() {
  "$PG_BIN/psql" -q -d naive -c "VACUUM ANALYZE" 2>/dev/null || true
  "$PG_BIN/psql" -q -d creditgate -c "VACUUM ANALYZE" -c "CHECKPOINT"
}
echo "== hot: 1 account, $WORKERS workers, ${DURATION}s, pricing $PRICING${PLANS:+, with plans}"
checkpoint; NAIVE_HOT=$(naive 1)
checkpoint; OURS_HOT=$(ours 1 | runs_per_second)
echo "== spread: $SPREAD_ACCOUNTS accounts, $WORKERS workers, ${DURATION}s, pricing $PRICING${PLANS:+, with plans}"
checkpoint; NAIVE_SPREAD=$(naive "$SPREAD_ACCOUNTS")
checkpoint; OURS_SPREAD=$(ours "$SPREAD_ACCOUNTS" | runs_per_second)

python3 - "$NAIVE_HOT" "$OURS_HOT" "$NAIVE_SPREAD" "$OURS_SPREAD" <<'PY'
import sys
naive_hot, ours_hot, naive_spread, ours_spread = map(float, sys.argv[1:])
print(f"{'':8} {'naive runs/s':>14} {'creditgate runs/s':>18} {'ratio':>7}")
print(f"{'hot':8} {naive_hot:>14.1f} {ours_hot:>18.1f} {ours_hot / naive_hot:>7.2f}")
print(f"{'spread':8} {naive_spread:>14.1f} {ours_spread:>18.1f} {ours_spread / naive_spread:>7.2f}")
PY
