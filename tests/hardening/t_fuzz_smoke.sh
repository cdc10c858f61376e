#!/usr/bin/env bash
# tests/hardening/t_fuzz_smoke.sh — every libFuzzer campaign of `make fuzz`
# for a few seconds inside make check: each parser of untrusted input (rule
# files and policies, scanned text, documents, diode frames, ledger files)
# replays its seeds and mutates them under ASan+UBSan, exactly as the
# campaign runs it (the same make targets, arguments, seeds and
# dictionaries), into a scratch corpus so that nothing in the tree changes.
# A crash, a leak or a sanitizer report fails it, with the input kept in
# build-fuzz/smoke-* and the fuzzer's last lines shown. FUZZ_SMOKE_SECONDS
# (5) per target; the campaigns proper are `make fuzz FUZZ_SECONDS=...`.
source "$(dirname "$0")/../lib.sh"
command -v clang >/dev/null || { echo "needs clang (make deps)"; exit 77; }
secs=${FUZZ_SMOKE_SECONDS:-5}
# a make of its own: not a job of the make that runs the tests
unset MAKEFLAGS MAKELEVEL MFLAGS
# the fuzzers recover from undefined behaviour unless told to stop at it
export UBSAN_OPTIONS="halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
cd "$ROOT"
seeds_before=$(git -C "$ROOT" status --porcelain -- 'tests/*/corpus*' 2>/dev/null)
for c in dlp diode extract ledger; do
    out=$T_TMP/$c
    mkdir -p "$out"
    rm -f "$ROOT"/build-fuzz/smoke-"$c"-*
    TMPDIR=$T_TMP make -s -C "$ROOT" "fuzz-$c" FUZZ_SECONDS="$secs" FUZZ_CORPUS="$out" \
        FUZZ_ARGS="-artifact_prefix=$ROOT/build-fuzz/smoke-$c-" >"$out.log" 2>&1
    rc=$?
    check_eq "fuzz-$c: $secs s per target from its seeds, no crash, leak or sanitizer report" 0 "$rc"
    if [ "$rc" -ne 0 ]; then
        grep -E -A15 'ERROR: |runtime error: ' "$out.log" | head -n 30 | sed 's/^/#   /'
        ls "$ROOT"/build-fuzz/smoke-"$c"-* 2>/dev/null | sed 's/^/#   input kept: /'
    fi
    runs=$(grep -Eo 'Done [0-9]+ runs' "$out.log" | awk '{s += $2} END {print s + 0}')
    check "fuzz-$c: its targets ran (\"Done N runs\": $runs)" test "$runs" -gt 0
    n=$(find "$out" -type f | wc -l)
    check "fuzz-$c: the scratch corpus got the seeds and what it found ($n inputs)" test "$n" -gt 0
done
check_eq "the tree's seed corpora are unchanged" "$seeds_before" \
    "$(git -C "$ROOT" status --porcelain -- 'tests/*/corpus*' 2>/dev/null)"
t_done
