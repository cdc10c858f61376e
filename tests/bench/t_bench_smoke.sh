#!/usr/bin/env bash
# tests/bench/t_bench_smoke.sh — `make bench` in miniature inside make check:
# every benchmark runs end to end on a small data set, so that a bench that
# no longer runs (a changed option, a tool gone missing, a wrong byte count)
# is found by the tests, not on the day its figures are needed. It checks
# that each one completes, prints its ratios and its own correctness checks
# (sluicefs serves what `sluice scan` produces, every open has its ledger
# row, the diode's copies are intact); it asserts no timing.
source "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] && [ -e /dev/fuse ] || { echo "needs root and /dev/fuse"; exit 77; }
for t in bindfs pcre2grep udp-sender; do
    command -v "$t" >/dev/null || { echo "needs $t (make deps)"; exit 77; }
done
# only the settings given below reach the benches
unset $(compgen -e | grep -E '^(BENCH_|LEDGER_BENCH_|EXTRACT_BENCH_)')
export SLUICE_ROOT=$ROOT SLUICE_BUILD=$BUILD BENCH_WORK=$T_TMP/bench
mkdir -p "$BENCH_WORK"
# a bench killed by its timeout may leave its mounts: never rm -rf into them
t_at_exit 'awk -v d="$T_TMP/" "index(\$2, d) == 1 {print \$2}" /proc/mounts | sort -r | xargs -r -n1 umount -l'
bench() { # NAME: run tests/bench/bench_NAME.sh with the environment given
    timeout 120 bash "$ROOT/tests/bench/bench_$1.sh" >"$T_TMP/$1.out" 2>&1
    local rc=$?
    check_eq "bench_$1 runs to the end on a small set" 0 "$rc"
    [ "$rc" -eq 0 ] || tail -n 20 "$T_TMP/$1.out" | sed 's/^/#   /'
    out=$(cat "$T_TMP/$1.out")
}

BENCH_FS_FILES=2 BENCH_FS_MB=2 BENCH_FS_SMALL=300 BENCH_FS_ROUNDS=1 BENCH_FS_PRIME_GB=0.1 bench fs
check_contains "bench_fs: sluicefs serves what sluice scan produces" "$out" "sluicefs view == sluice scan output: yes"
check_contains "bench_fs: first and second read ratios" "$out" "ratios: first read sluicefs/bindfs"
check_contains "bench_fs: small-file ratios" "$out" "ratios (medians of 1): sluicefs/bindfs first"
check_contains "bench_fs: one ledger row per open" "$out" "ledger rows written: 900 for 900 opens"
check_contains "bench_fs: where the time goes (daemon cpu per open)" "$out" "sluicefs daemon cpu per open:"
check "bench_fs: a lone ledger appender measured beside it" grep -Eq "a lone ledger appender: [0-9]+ records/s" "$T_TMP/fs.out"
check_contains "bench_fs: the lone reader's ceiling" "$out" "a lone reader's ceiling (one ledger commit per open) / bindfs -r:"
check "bench_fs: the least cpu a first read costs (figures)" grep -Eq "the least cpu a first read costs \(the engine alone \+ 2 SHA-256 passes, nothing else\): [0-9.]+ \+ 2 x [0-9.]+ = [0-9.]+ s per GB -> at most [0-9]+ MB/s on [0-9]+ cores" "$T_TMP/fs.out"
check "bench_fs: what checking alone costs a first pass (figures)" grep -Eq "checking alone \(sluice scan: libmagic type \+ masking, 30 files\): [0-9]+ us cpu per file -> a first pass opens at most [0-9]+ files/s on [0-9]+ cores, [0-9.]+ of bindfs -r" "$T_TMP/fs.out"

BENCH_DLP_MB=2 BENCH_RUNS=1 bench dlp
check_contains "bench_dlp: sluice against pcre2grep" "$out" "ratio sluice / pcre2grep:"
check_contains "bench_dlp: its planted findings found (it dies otherwise)" "$out" "bench_dlp: ok"

LEDGER_BENCH_RUNS=1 LEDGER_BENCH_DIV=10 bench ledger
for row in "ledger_append, 1 appender" "ledger_append, 16 concurrent appenders" "plain SQLite, one row per commit"; do
    check "bench_ledger: $row (a figure)" grep -Eq "^$row.* [0-9]+\$" "$T_TMP/ledger.out"
done
check_contains "bench_ledger: 16 appenders against the baseline" "$out" "ratio 16 appenders / baseline:"
check_contains "bench_ledger: the chain verifies afterwards" "$out" "chain: ok:"

EXTRACT_BENCH_DOCS=20 EXTRACT_BENCH_COLD=0 bench extract
check "bench_extract: per-document figures" grep -Eq "ms per document \(wall\): PDF [0-9.]+, DOCX [0-9.]+" "$T_TMP/extract.out"
check_fails "bench_extract: no run failed" grep -Eq ': FAILED|failed=[1-9]|(^|[^a-z])-?(nan|inf)([^a-z]|$)' "$T_TMP/extract.out"

BENCH_DIODE_MB=8 BENCH_DIODE_RUNS=1 bench diode
check_contains "bench_diode: diode against udpcast" "$out" "ratio diode / udpcast, loopback:"
for row in "diode udp loopback" "diode veth 2% loss"; do
    check "bench_diode: $row arrived intact" grep -Eq "^$row +1/1 " "$T_TMP/diode.out"
done
t_done
