#!/usr/bin/env bash
# Events under load: two servers (replicas) on one private Postgres, `creditgate bench` loading
# the first while WATCHERS WatchEvents streams are open, half on each server, and a prober
# granting one credit every PROBE_MS so that events fire during the run. Prints each run's
# runs/s and the commit-to-delivery latency of every event at every watcher (the `event` row:
# from the event's created_at, the database's clock at its transaction, to its arrival), then
# runs/s with and without the watchers (the prober runs in both), alternated PAIRS times.
# Everything runs on loopback, bounded in time.
#
#   bench/events.sh                                  # defaults below
#   WATCHERS=50 PAIRS=3 DURATION=10 ACCOUNTS=1 bench/events.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WATCHERS=${WATCHERS:-50}
PAIRS=${PAIRS:-2}
DURATION=${DURATION:-10}
ACCOUNTS=${ACCOUNTS:-1}
WORKERS=${WORKERS:-64}
PROBE_MS=${PROBE_MS:-20}
PORT=${PORT:-50553}
PORT_B=${PORT_B:-50554}
BIN=${BIN:-target/release/creditgate}

[ -x "$BIN" ] || cargo build --release --quiet
WORK=$(mktemp -d /tmp/creditgate-events-XXXXXX)
chmod 755 "$WORK"   # as root the private Postgres runs as `postgres` and must enter it
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_listening() {  # output file, pid
  for _ in $(seq 1 600); do
    grep -q "listening on" "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$1"; exit 1; }
    sleep 0.1
  done
  echo "a server did not start" >&2; exit 1
}
"$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/a.out" 2>"$WORK/a.log" &
PIDS+=($!)
wait_listening "$WORK/a.out" "${PIDS[0]}"
PGPORT=$(sed -n 4p "$WORK/data/pgdata/postmaster.pid")
PGPASSWORD=$(cat "$WORK/data/postgres-password")
DATABASE_URL="postgres://creditgate:$PGPASSWORD@127.0.0.1:$PGPORT/creditgate" \
  "$BIN" serve --listen "127.0.0.1:$PORT_B" >"$WORK/b.out" 2>"$WORK/b.log" &
PIDS+=($!)
wait_listening "$WORK/b.out" "${PIDS[1]}"

bench() {  # watchers → the bench's JSON line
  "$BIN" bench --address "127.0.0.1:$PORT" --watch-address "127.0.0.1:$PORT_B" \
    --key-file "$WORK/data/demo-api-key" --data-dir "$WORK/data" --workers "$WORKERS" \
    --accounts "$ACCOUNTS" --duration-seconds "$DURATION" --watchers "$1" --probe-ms "$PROBE_MS" \
    2>"$WORK/bench.err" | tee "$WORK/bench.out" >&2
  tail -n 1 "$WORK/bench.out"
}
: >"$WORK/results"
for pair in $(seq 1 "$PAIRS"); do
  echo "== pair $pair: without watchers" >&2
  echo "without $(bench 0)" >>"$WORK/results"
  echo "== pair $pair: $WATCHERS watchers on 2 servers" >&2
  echo "with $(bench "$WATCHERS")" >>"$WORK/results"
done
python3 - "$WORK/results" <<'PY'
import json, statistics, sys
rows = [line.split(" ", 1) for line in open(sys.argv[1]) if line.strip()]
runs = {"without": [], "with": []}
print(f"{'run':10} {'runs/s':>10} {'events':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
for kind, text in rows:
    report = json.loads(text)
    runs[kind].append(report["runs_per_second"])
    event = report["latency"].get("event", {})
    print(f"{kind:10} {report['runs_per_second']:>10.1f} {event.get('calls', 0):>8} "
          f"{event.get('p50_ms', 0):>8.2f} {event.get('p99_ms', 0):>8.2f} {event.get('max_ms', 0):>8.2f}")
without, with_ = statistics.median(runs["without"]), statistics.median(runs["with"])
print(f"median runs/s without watchers {without:.1f}, with {with_:.1f}: ratio {with_ / without:.3f}")
PY
