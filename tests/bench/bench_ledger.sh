#!/usr/bin/env bash
# tests/bench/bench_ledger.sh — durable ledger appends per second with 1 and
# with 16 concurrent appenders (group commit), beside the baseline of plain
# SQLite (WAL, synchronous=FULL) committing one row per transaction, in the
# same run on the same disk. Prints figures and ratios; asserts no timing.
# Target (issue 4): at least 10,000 durable records/s with 16 appenders.
set -u
B=${SLUICE_BUILD:-build}
TOOL=$B/tests/ledger/ledger_tool
W=${BENCH_WORK:-/var/tmp/sluice-bench}/ledger
RUNS=${LEDGER_BENCH_RUNS:-3}
[ -x "$TOOL" ] || { echo "ledger_tool not built (make)"; exit 1; }
rm -rf "$W"; mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
head -c 32 /dev/urandom > "$W/key"; chmod 600 "$W/key"

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

run_ledger() { # threads records
    rm -f "$W"/b.db*
    "$TOOL" bench "$W/b.db" "$W/key" "$1" "$2" | tee -a "$W/log" |
        sed -n 's/.*records_per_second=\([0-9]*\).*/\1/p'
}

run_sqlite() { # rows: one INSERT + COMMIT per row, same durability settings
        rm -f "$W"/s.db*
        python3 - "$W/s.db" "$1" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, rec TEXT)")
n = int(sys.argv[2]); row = "x" * 700
t0 = time.monotonic()
for i in range(n):
    db.execute("BEGIN IMMEDIATE"); db.execute("INSERT INTO t (rec) VALUES (?)", (row,)); db.execute("COMMIT")
print(int(n / (time.monotonic() - t0)))
PY
}

echo "durable appends per second, median of $RUNS runs (WAL, synchronous=FULL, $(df -P "$W" | awk 'NR==2{print $1}'))"
# Interleaved rounds, so that load from other users of the machine hits all three alike.
for _ in $(seq "$RUNS"); do
    run_sqlite 1000 >> "$W/base"
    run_ledger 1 1000 >> "$W/one"
    run_ledger 16 32000 >> "$W/sixteen"
done
base=$(median < "$W/base"); one=$(median < "$W/one"); sixteen=$(median < "$W/sixteen")
printf '%-52s %10s\n' "plain SQLite, one row per commit (baseline)" "$base"
printf '%-52s %10s\n' "ledger_append, 1 appender" "$one"
printf '%-52s %10s\n' "ledger_append, 16 concurrent appenders" "$sixteen"
awk -v b="$base" -v o="$one" -v s="$sixteen" 'BEGIN{
    printf "ratio 1 appender / baseline:        %.2f\n", o / b
    printf "ratio 16 appenders / 1 appender:    %.2f\n", s / o
    printf "ratio 16 appenders / baseline:      %.2f\n", s / b
    printf "16 appenders vs the 10,000/s target: %s\n", (s >= 10000 ? "met" : "NOT met on this run")
}'
# Verification speed, on the last 16-appender ledger (what an audit costs).
if [ -x "$B/sluice" ]; then
    n=$(sqlite3 "$W/b.db" 'SELECT count(*) FROM records' 2>/dev/null || echo 0)
    t0=$(date +%s.%N)
    "$B/sluice" ledger verify --ledger "$W/b.db" --key "$W/key" --quiet &&
        awk -v n="$n" -v t0="$t0" -v t1="$(date +%s.%N)" \
            'BEGIN{printf "sluice ledger verify: %d records in %.2f s, %.0f records/s\n", n, t1 - t0, n / (t1 - t0)}'
fi
echo "runs:"; sed 's/^/  /' "$W/log"
