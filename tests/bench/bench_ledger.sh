#!/usr/bin/env bash
# tests/bench/bench_ledger.sh — durable ledger appends per second with 1 and
# with 16 concurrent appenders (group commit), beside the baseline of plain
# SQLite (WAL, synchronous=FULL) committing one row per transaction, in the
# same run on the same disk, and beside the disk's own floor: a 4 KiB write +
# fdatasync appended to a file and written over an allocated one (SQLite's
# WAL grows at first and is written over in place once it has wrapped after
# a checkpoint, so the in-place rate is what one commit costs at best).
# Prints figures and ratios; asserts no timing.
# Target (issue 4): at least 10,000 durable records/s with 16 appenders.
set -u
ROOT=${SLUICE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${SLUICE_BUILD:-build}
TOOL=$B/tests/ledger/ledger_tool
W=${BENCH_WORK:-/var/tmp/sluice-bench}/ledger
RUNS=${LEDGER_BENCH_RUNS:-3}
DIV=${LEDGER_BENCH_DIV:-1} # divides every count below (a smoke run)
[ -x "$TOOL" ] || { echo "ledger_tool not built (make)"; exit 1; }
rm -rf "$W"; mkdir -p "$W"
trap 'mountpoint -q "$W/mnt" 2>/dev/null && fusermount3 -uz "$W/mnt"; rm -rf "$W"' EXIT
head -c 32 /dev/urandom > "$W/key"; chmod 600 "$W/key"

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

run_ledger() { # threads records [think_us]
    rm -f "$W"/b.db*
    "$TOOL" bench "$W/b.db" "$W/key" "$@" | tee -a "$W/log" |
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
# Interleaved rounds, so that load from other users of the machine hits all alike.
# 3000 single commits: the WAL wraps several times (a fresh WAL is appended to
# for its first ~1000 pages, then written over in place).
for _ in $(seq "$RUNS"); do
    "$TOOL" sync "$W" $((1000 / DIV)) | tee -a "$W/log" > "$W/sync.now"
    sed -n 's/.*append_per_second=\([0-9]*\).*/\1/p' "$W/sync.now" >> "$W/sync_append"
    sed -n 's/.*inplace_per_second=\([0-9]*\).*/\1/p' "$W/sync.now" >> "$W/sync_inplace"
    run_sqlite $((3000 / DIV)) >> "$W/base"
    run_ledger 1 $((3000 / DIV)) >> "$W/one"
    run_ledger 16 $((32000 / DIV)) >> "$W/sixteen"
    run_ledger 16 $((16000 / DIV)) 100 >> "$W/think"
done
sapp=$(median < "$W/sync_append"); sinp=$(median < "$W/sync_inplace")
base=$(median < "$W/base"); one=$(median < "$W/one"); sixteen=$(median < "$W/sixteen"); think=$(median < "$W/think")
for v in "$sapp" "$sinp" "$base" "$one" "$sixteen" "$think"; do # a run that failed printed nothing
    [ -n "$v" ] || { echo "bench_ledger: a run failed (see $W/log)" >&2; exit 1; }
done
printf '%-52s %10s\n' "4 KiB write + fdatasync, appended (disk floor)" "$sapp"
printf '%-52s %10s\n' "4 KiB write + fdatasync, in place (disk floor)" "$sinp"
printf '%-52s %10s\n' "plain SQLite, one row per commit (baseline)" "$base"
printf '%-52s %10s\n' "ledger_append, 1 appender" "$one"
printf '%-52s %10s\n' "ledger_append, 16 concurrent appenders" "$sixteen"
printf '%-52s %10s\n' "  the same, each waiting 100 us between appends" "$think"
awk -v b="$base" -v o="$one" -v s="$sixteen" -v i="$sinp" -v a="$sapp" 'BEGIN{
    printf "ratio 1 appender / in-place sync:   %.2f (1 appender / appended sync %.2f)\n", o / i, o / a
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

# Through sluicefs: served opens per second, every one durable in the ledger
# before its first byte, with 1 and 16 readers (python open/read/close of
# 4 KiB text files; views are cached after the first open, so this is the
# open path: FUSE + ledger group commit). Native reads of the same files in
# the same run for scale.
FS=$B/sluicefs
if [ -x "$FS" ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
    mkdir -p "$W/src" "$W/mnt"
    python3 - "$W/src" <<'PY'
import os, sys
for i in range(256):
    with open(os.path.join(sys.argv[1], "f%03d.txt" % i), "w") as f:
        f.write(("line %d of a plain text document, nothing secret here\n" % i) * 70)
PY
    reads() { # DIR READERS SECONDS -> opens per second
        python3 - "$@" <<'PY'
import os, sys, time, multiprocessing as mp
d, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
names = sorted(os.listdir(d))
def worker(k, q):
    end, c, i = time.monotonic() + secs, 0, k
    while time.monotonic() < end:
        with open(os.path.join(d, names[i % len(names)]), "rb") as f:
            f.read()
        c += 1; i += 7
    q.put(c)
q = mp.Queue(); ps = [mp.Process(target=worker, args=(k, q)) for k in range(n)]
t0 = time.monotonic(); [p.start() for p in ps]; total = sum(q.get() for _ in ps); [p.join() for p in ps]
print(int(total / (time.monotonic() - t0)))
PY
    }
    rm -f "$W"/fs.db*
    SLUICE_KEY_FILE=$W/key "$FS" -f -o "policy=$ROOT/rules/default-policy.yaml,ledger=$W/fs.db,ledger_key=$W/key,log_level=error" \
        "$W/src" "$W/mnt" 2>"$W/fs.log" & fspid=$!
    for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
    if mountpoint -q "$W/mnt"; then
        cat "$W"/mnt/* >/dev/null   # build every view once
        n0=$(sqlite3 "$W/fs.db" "SELECT count(*) FROM records WHERE event='open-served'")
        fs1=$(reads "$W/mnt" 1 3); fs16=$(reads "$W/mnt" 16 3)
        n1=$(sqlite3 "$W/fs.db" "SELECT count(*) FROM records WHERE event='open-served'")
        fusermount3 -u "$W/mnt"; wait "$fspid"
        nat1=$(reads "$W/src" 1 3); nat16=$(reads "$W/src" 16 3)
        echo "through sluicefs (opens/s; each open's record committed before its data):"
        printf '  %-50s %10s   native %8s   ratio %.2f\n' "1 reader" "$fs1" "$nat1" "$(awk -v a="$fs1" -v b="$nat1" 'BEGIN{print a/b}')"
        printf '  %-50s %10s   native %8s   ratio %.2f\n' "16 readers" "$fs16" "$nat16" "$(awk -v a="$fs16" -v b="$nat16" 'BEGIN{print a/b}')"
        echo "  ledger rows written during the runs: $((n1 - n0)); chain: $("$B/sluice" ledger verify --ledger "$W/fs.db" --key "$W/key" 2>&1 | sed 's/.*: ok: /ok: /')"
    else
        echo "sluicefs did not mount; skipped the through-sluicefs part"; sed 's/^/  /' "$W/fs.log"
        kill "$fspid" 2>/dev/null; wait "$fspid" 2>/dev/null
    fi
    if mountpoint -q "$W/mnt"; then fusermount3 -uz "$W/mnt" || umount -l "$W/mnt"; fi
fi
exit 0
