# Shared by the bench scripts (sourced): the Postgres binaries, a work folder removed on exit,
# and one `creditgate serve` on a private Postgres in it, with psql pointed at its database.
#
#   . bench/lib.sh
#   bench_start NAME PORT [serve options…]   # sets PG_BIN, WORK, SERVER_PID, PG* for psql

bench_start() {  # name, port, serve options…
  local name=$1 port=$2
  shift 2
  [ -x "$BIN" ] || cargo build --release --quiet
  PG_BIN=$(pg_config --bindir 2>/dev/null || true)
  [ -x "$PG_BIN/pg_waldump" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  WORK=$(mktemp -d "/tmp/creditgate-$name-XXXXXX")
  chmod 755 "$WORK"   # as root the private Postgres runs as `postgres` and must enter it
  SERVER_PID=""
  trap bench_cleanup EXIT
  "$BIN" serve --data-dir "$WORK/data" --listen "127.0.0.1:$port" "$@" >"$WORK/serve.out" 2>"$WORK/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "listening on" "$WORK/serve.out" || { echo "the server did not start" >&2; exit 1; }
  export PGHOST=127.0.0.1 PGUSER=creditgate PGPORT PGPASSWORD PGDATABASE=creditgate
  PGPORT=$(sed -n 4p "$WORK/data/pgdata/postmaster.pid")
  PGPASSWORD=$(cat "$WORK/data/postgres-password")
}

bench_cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
