#!/usr/bin/env bash
# Alternated rounds of bench/compare.sh over several builds or settings, so that the machine's
# drift falls on all of them alike: each round runs every entry once, in an order rotated each
# round. Then it prints each entry's medians and, round by round, each entry against the first:
# the change of creditgate ÷ naive and of creditgate's own runs/s, with their medians. On a
# shared 2-core machine single runs move by ±20 %; compare round by round, over five rounds or
# more.
#
#   bench/rounds.sh ROUNDS NAME=BINARY[,plans] ...
#   bench/rounds.sh 5 before=/tmp/creditgate-before after=target/release/creditgate
#   bench/rounds.sh 5 without=target/release/creditgate with=target/release/creditgate,plans
#
# compare.sh's settings (WORKERS, SPREAD_ACCOUNTS, DURATION, PRICING, PHASES) apply to every
# run; PORT is the first of the ports used (one per run). The runs' tables are kept in a log
# under /tmp, named at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,15p' "$0" >&2; exit 2; }
[ $# -ge 3 ] || usage
ROUNDS=$1
shift
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "ROUNDS: 1 to 99, not '$ROUNDS'" >&2; exit 2; }
ENTRIES=("$@")
for entry in "${ENTRIES[@]}"; do
  [[ $entry == *=* ]] || { echo "'$entry': expected NAME=BINARY[,plans]" >&2; exit 2; }
  spec=${entry#*=}
  [ -x "${spec%%,*}" ] || { echo "'$entry': ${spec%%,*} is not an executable" >&2; exit 2; }
  case $spec in *,plans | "${spec%%,*}") ;; *) echo "'$entry': only ',plans' may follow the binary" >&2; exit 2 ;; esac
done
LOG=$(mktemp /tmp/creditgate-rounds-XXXXXX)
PORT_BASE=${PORT:-50600}
count=${#ENTRIES[@]}

for ((round = 1; round <= ROUNDS; round++)); do
  for ((i = 0; i < count; i++)); do
    entry=${ENTRIES[$(((i + round - 1) % count))]}
    name=${entry%%=*}
    spec=${entry#*=}
    plans=""
    [[ $spec == *,plans ]] && plans=1
    echo "### round $round $name $(date +%T)" | tee -a "$LOG" >&2
    PLANS=$plans BIN=${spec%%,*} PORT=$((PORT_BASE + (round - 1) * count + i)) bench/compare.sh 2>/dev/null |
      grep -E '^(hot|spread) ' | tee -a "$LOG" >&2
  done
done

python3 - "$LOG" "${ENTRIES[0]%%=*}" <<'PY'
import re, statistics, sys

log, first = sys.argv[1], sys.argv[2]
runs, order, name, round_ = {}, [], None, None
for line in open(log):
    header = re.match(r"### round (\d+) (\S+)", line)
    if header:
        round_, name = int(header.group(1)), header.group(2)
        if name not in order:
            order.append(name)
        continue
    fields = line.split()
    if name and fields and fields[0] in ("hot", "spread"):
        # phase, naive runs/s, creditgate runs/s, ratio, naive WAL, creditgate WAL, WAL ratio
        runs[(name, fields[0], round_)] = (float(fields[3]), float(fields[2]), float(fields[5]))

def pct(value):
    return f"{value * 100:+.1f} %"

phases = [phase for phase in ("hot", "spread") if any(key[1] == phase for key in runs)]
print(f"{'':10} {'phase':7} {'runs':>4} {'ratio median':>13} {'runs/s median':>14} {'WAL B/run':>13}")
for name in order:
    for phase in phases:
        rows = [value for key, value in runs.items() if key[:2] == (name, phase)]
        if rows:
            wal = [row[2] for row in rows]
            print(f"{name:10} {phase:7} {len(rows):>4} {statistics.median(r[0] for r in rows):>13.3f} "
                  f"{statistics.median(r[1] for r in rows):>14,.0f} {min(wal):>6,.0f}–{max(wal):,.0f}")
for name in order[1:]:
    for phase in phases:
        pairs = [(runs[(name, phase, r)], runs[(first, phase, r)]) for (n, p, r) in runs
                 if (n, p) == (name, phase) and (first, phase, r) in runs]
        if not pairs:
            continue
        ratio = [ours[0] / base[0] - 1 for ours, base in pairs]
        speed = [ours[1] / base[1] - 1 for ours, base in pairs]
        print(f"{name} against {first}, {phase}, round by round: ratio {', '.join(map(pct, ratio))}; "
              f"median {pct(statistics.median(ratio))}; creditgate runs/s median {pct(statistics.median(speed))}")
PY
echo "runs' tables: $LOG" >&2
