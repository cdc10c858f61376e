#!/usr/bin/env bash
# tests/bench/bench_dlp.sh — DLP throughput, side by side in one run:
# `sluice scan` with the default policy against the naive baseline, one
# `pcre2grep -c -f` over the same rule patterns (JIT, as pcre2grep does by
# default), on a generated corpus of document-like text with about 1% of
# lines carrying a finding (tests/bench/gencorpus.py, cached in $BENCH_WORK).
# Medians of several runs; prints MB/s (10^6 bytes), MB per CPU-second (the
# per-core figure, steadier than wall time on a shared machine) and ratios.
# Fails only when sluice's finding count is not the planted count (±2%) or a
# command fails; it never asserts a speed.
#   BENCH_DLP_MB (200)  corpus size      BENCH_RUNS (3)  runs per command
set -u
ROOT=${SLUICE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SLUICE_BUILD:-$ROOT/build}
SLUICE=$BUILD/sluice
W=${BENCH_WORK:-/var/tmp/sluice-bench}
MB=${BENCH_DLP_MB:-200}
RUNS=${BENCH_RUNS:-3}
POLICY=$ROOT/rules/default-policy.yaml
PACKS=("$ROOT/rules/pii.yaml" "$ROOT/rules/secrets.yaml")
mkdir -p "$W"

die() { echo "bench_dlp: $*" >&2; exit 1; }
[ -x "$SLUICE" ] || die "sluice not built: $SLUICE"
command -v pcre2grep >/dev/null || die "pcre2grep not found (Debian package pcre2-utils)"

# The corpus is cached under a name that changes with the generator.
gen=$ROOT/tests/bench/gencorpus.py
ver=$(sha256sum "$gen" | cut -c1-12)
CORPUS=$W/dlp-corpus-${MB}MB-$ver.txt
if [ ! -s "$CORPUS" ] || [ ! -s "$CORPUS.count" ]; then
    echo "generating $CORPUS ..."
    rm -f "$W"/dlp-corpus-*
    python3 "$gen" "$MB" "$CORPUS.tmp" || die "corpus generation failed"
    mv "$CORPUS.tmp.count" "$CORPUS.count" && mv "$CORPUS.tmp" "$CORPUS" || die "cannot store the corpus"
fi
bytes=$(stat -c %s "$CORPUS")
planted=$(awk '$1 == "planted" {print $2}' "$CORPUS.count")

# Hashing needs a key: the test key unless the caller gives one.
if [ -z "${SLUICE_KEY_FILE:-}" ]; then
    install -m 0600 "$ROOT/tests/rules/test.key" "$W/bench.key"
    export SLUICE_KEY_FILE=$W/bench.key
fi

# The baseline's patterns: every rule's `pattern:` line (single-quoted, one
# line, '' for a quote) from the packs the policy uses.
PATS=$W/dlp-patterns.txt
sed -n "s/^    pattern: '\(.*\)' *\$/\1/p" "${PACKS[@]}" | sed "s/''/'/g" >"$PATS"
npat=$(wc -l <"$PATS")
nrules=$("$SLUICE" rules lint "$POLICY" 2>&1 | sed -n 's/.*(\([0-9]*\) rules.*/\1/p')
[ "$npat" = "$nrules" ] || die "read $npat patterns from the packs but the policy has ${nrules:-?} rules"

source "$ROOT/tests/bench/lib.sh"
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# bench NAME CMD...: RUNS runs; sets W_MED (wall) and C_MED (user+sys) medians.
bench() {
    local name=$1; shift
    local walls=() cpus=() i out w c st
    for ((i = 0; i < RUNS; i++)); do
        out=$(run_timed "$@") || die "$name failed"
        read -r w c st <<<"$out"
        [ "$st" = 0 ] || [ "$st" = 1 ] || die "$name failed (exit $st): $*"
        walls+=("$w"); cpus+=("$c")
    done
    W_MED=$(printf '%s\n' "${walls[@]}" | median)
    C_MED=$(printf '%s\n' "${cpus[@]}" | median)
    printf '  %-34s wall %s s, cpu %s s (runs: %s)\n' "$name" "$W_MED" "$C_MED" "${walls[*]}"
}
rate() { awk -v b="$bytes" -v t="$1" 'BEGIN {printf "%.1f", (t > 0) ? b / 1e6 / t : 0}'; }

echo "corpus: $CORPUS"
echo "  $(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1e6}') MB, $(wc -l <"$CORPUS") lines, $planted planted findings; $npat rules; $RUNS runs each; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# Start-up (policy load, compile) is timed on an empty file and reported
# apart, so that the scan rate is the engine's own.
: >"$W/empty.txt"
bench "sluice scan (empty file: start-up)" "$SLUICE" scan --policy "$POLICY" "$W/empty.txt"
st_w=$W_MED st_c=$C_MED
bench "sluice scan --policy default" "$SLUICE" scan --policy "$POLICY" "$CORPUS"
sl_w=$W_MED sl_c=$C_MED
bench "pcre2grep -c -f ($npat patterns, JIT)" pcre2grep -c -f "$PATS" "$CORPUS"
pg_w=$W_MED pg_c=$C_MED

scan_w=$(awk -v a="$sl_w" -v b="$st_w" 'BEGIN {d = a - b; print (d > 0) ? d : a}')
scan_c=$(awk -v a="$sl_c" -v b="$st_c" 'BEGIN {d = a - b; print (d > 0) ? d : a}')
echo
printf '  %-44s %10s %14s\n' "" "MB/s" "MB/cpu-s"
printf '  %-44s %10s %14s\n' "sluice scan, default policy" "$(rate "$sl_w")" "$(rate "$sl_c")"
printf '  %-44s %10s %14s\n' "sluice scan, start-up excluded" "$(rate "$scan_w")" "$(rate "$scan_c")"
printf '  %-44s %10s %14s\n' "pcre2grep -c -f, same patterns" "$(rate "$pg_w")" "$(rate "$pg_c")"
echo "  ratio sluice / pcre2grep: $(awk -v a="$sl_w" -v b="$pg_w" 'BEGIN {printf "%.1fx", b / a}') wall, $(awk -v a="$sl_c" -v b="$pg_c" 'BEGIN {printf "%.1fx", b / a}') cpu"
echo "  target 500 MB/s per core: $(awk -v r="$(rate "$scan_c")" 'BEGIN {printf "%.0f%%", r / 5}') of it (start-up excluded, per cpu-second)"

# Every planted finding found, and nothing else (the innocent text carries
# none): one counting run with --report.
"$SLUICE" scan --policy "$POLICY" --report="$W/dlp-report.jsonl" "$CORPUS" >/dev/null
rc=$?
[ $rc -le 1 ] || die "sluice scan failed (exit $rc)"
found=$(wc -l <"$W/dlp-report.jsonl")
echo "  findings: sluice $found, planted $planted"
awk -v f="$found" -v p="$planted" 'BEGIN {d = f - p; if (d < 0) d = -d; exit !(p > 0 && d <= p * 0.02)}' ||
    die "sluice found $found findings, $planted were planted"
echo "bench_dlp: ok"
