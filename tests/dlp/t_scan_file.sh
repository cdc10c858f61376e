#!/usr/bin/env bash
# tests/dlp/t_scan_file.sh — `sluice scan FILE` looks a regular file over
# first (size, NUL bytes) and then streams it like standard input. Both must
# give the same bytes, the same findings and the same exit code, and a file
# the checks refuse (NUL bytes in text, larger than the policy's limit)
# prints nothing at all.
source "$(dirname "$0")/../lib.sh"
install -m 0600 "$ROOT/tests/rules/test.key" "$T_TMP/hash.key"
export SLUICE_KEY_FILE=$T_TMP/hash.key
POLICY=$ROOT/rules/default-policy.yaml
/usr/bin/python3 "$ROOT/tests/bench/gencorpus.py" 5 "$T_TMP/c.txt" >/dev/null || { not_ok "corpus generated"; t_done; }
planted=$(awk '$1 == "planted" {print $2}' "$T_TMP/c.txt.count")

"$SLUICE" scan --policy "$POLICY" --report="$T_TMP/map.jsonl" "$T_TMP/c.txt" >"$T_TMP/map.out" 2>"$T_TMP/map.err"
rc_map=$?
"$SLUICE" scan --policy "$POLICY" --report="$T_TMP/str.jsonl" - <"$T_TMP/c.txt" >"$T_TMP/str.out" 2>"$T_TMP/str.err"
rc_str=$?
check_eq "mapped file: exit 1 (findings)" 1 "$rc_map"
check_eq "same exit code mapped and streamed" "$rc_str" "$rc_map"
check "same view mapped and streamed" cmp -s "$T_TMP/map.out" "$T_TMP/str.out"
sed 's/"file":"[^"]*"//' "$T_TMP/map.jsonl" >"$T_TMP/map.f"
sed 's/"file":"[^"]*"//' "$T_TMP/str.jsonl" >"$T_TMP/str.f"
check "same findings (rule, offset, length) mapped and streamed" cmp -s "$T_TMP/map.f" "$T_TMP/str.f"
check_eq "every planted finding reported" "$planted" "$(wc -l <"$T_TMP/map.jsonl")"
check "the view is shorter or longer, never the input" bash -c "! cmp -s '$T_TMP/c.txt' '$T_TMP/map.out'"

# a NUL byte far past the first MiB libmagic looks at: denied, nothing printed
{ head -c 3000000 "$T_TMP/c.txt"; printf 'x\0y\n'; tail -c 1000000 "$T_TMP/c.txt"; } >"$T_TMP/nul.txt"
"$SLUICE" scan --policy "$POLICY" "$T_TMP/nul.txt" >"$T_TMP/nul.out" 2>"$T_TMP/nul.err"
rc=$? out=$(wc -c <"$T_TMP/nul.out")
check_eq "NUL inside text: exit 2" 2 "$rc"
check_eq "NUL inside text: nothing printed" 0 "$out"
check_contains "NUL inside text: says why" "$(cat "$T_TMP/nul.err")" "NUL bytes"

# larger than the policy's limit: denied before anything is printed
cat >"$T_TMP/small-limit.yaml" <<POL
policy: small-limit
version: 1
packs: [$ROOT/rules/pii.yaml, $ROOT/rules/secrets.yaml]
types:
  allow: ['text/*']
key-file: $T_TMP/hash.key
limits:
  max-file-size: 2M
POL
"$SLUICE" scan --policy "$T_TMP/small-limit.yaml" "$T_TMP/c.txt" >"$T_TMP/big.out" 2>"$T_TMP/big.err"
rc=$? out=$(wc -c <"$T_TMP/big.out")
check_eq "over the size limit: exit 2" 2 "$rc"
check_eq "over the size limit: nothing printed" 0 "$out"
check_contains "over the size limit: says why" "$(cat "$T_TMP/big.err")" "larger than the policy's limit"

# a small file (one read) and an empty one still go through
head -c 100000 "$T_TMP/c.txt" >"$T_TMP/small.txt"
"$SLUICE" scan --policy "$POLICY" "$T_TMP/small.txt" >"$T_TMP/small.out" 2>/dev/null
"$SLUICE" scan --policy "$POLICY" - <"$T_TMP/small.txt" >"$T_TMP/small2.out" 2>/dev/null
check "small file: same view as streamed" cmp -s "$T_TMP/small.out" "$T_TMP/small2.out"
: >"$T_TMP/empty.txt"
check_eq "empty file: empty view" "" "$("$SLUICE" scan --policy "$POLICY" "$T_TMP/empty.txt")"
# A context word on every line (an HR export with an "ssn" column) chains
# the context windows of the SSN rule through the whole file: the scan must
# still cut through them, and mask every number, past any round's size
/usr/bin/python3 - "$T_TMP/hr.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("id,name,ssn,note\n")
    n = 0
    while f.tell() < 20_000_000:
        f.write(f"{n},Employee {n},ssn {100 + n % 500:03d}{10 + n % 89:02d}{1000 + n % 8999:04d},plain note\n")
        n += 1
PY
"$SLUICE" scan --policy "$POLICY" "$T_TMP/hr.csv" >"$T_TMP/hr.out" 2>"$T_TMP/hr.err"
check_eq "20 MB with a context word on every line: scanned (exit 1), not refused" 1 "$?"
check_eq "every line's number masked" 0 "$(grep -cE 'ssn [0-9]{9}' "$T_TMP/hr.out")"
check_eq "every line kept" "$(wc -l <"$T_TMP/hr.csv")" "$(wc -l <"$T_TMP/hr.out")"

# The look goes through a read-only mapping. Where a file cannot be mapped
# it is read instead: same verdicts. A file cut short while looked at
# (SIGBUS at the missing pages) is refused, nothing printed, no crash.
if cc -shared -fPIC -O1 -o "$T_TMP/mmap_shim.so" "$ROOT/tests/dlp/mmap_shim.c" -ldl 2>"$T_TMP/cc.err"; then
    # a sanitizer build wants its runtime first; the shim only wraps mmap
    old_asan=${ASAN_OPTIONS-}
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
    SHIM_MMAP_FAIL=1 LD_PRELOAD=$T_TMP/mmap_shim.so "$SLUICE" scan --policy "$POLICY" "$T_TMP/c.txt" >"$T_TMP/nomap.out" 2>/dev/null
    check_eq "unmappable file: exit 1 (findings)" 1 "$?"
    check "unmappable file: same view as streamed" cmp -s "$T_TMP/nomap.out" "$T_TMP/str.out"
    SHIM_MMAP_FAIL=1 LD_PRELOAD=$T_TMP/mmap_shim.so "$SLUICE" scan --policy "$POLICY" "$T_TMP/nul.txt" >"$T_TMP/nomapnul.out" 2>"$T_TMP/nomapnul.err"
    rc=$? out=$(wc -c <"$T_TMP/nomapnul.out")
    check_eq "unmappable file with a NUL: exit 2" 2 "$rc"
    check_eq "unmappable file with a NUL: nothing printed" 0 "$out"
    cp "$T_TMP/c.txt" "$T_TMP/cut.txt"
    SHIM_TRUNCATE=$T_TMP/cut.txt LD_PRELOAD=$T_TMP/mmap_shim.so "$SLUICE" scan --policy "$POLICY" "$T_TMP/cut.txt" >"$T_TMP/cut.out" 2>"$T_TMP/cut.err"
    rc=$? out=$(wc -c <"$T_TMP/cut.out")
    check_eq "file cut short while looked at: exit 2 (no crash)" 2 "$rc"
    check_eq "file cut short while looked at: nothing printed" 0 "$out"
    check_contains "file cut short while looked at: says why" "$(cat "$T_TMP/cut.err")" "cut short"
    check_eq "the shim did cut it" 4096 "$(stat -c %s "$T_TMP/cut.txt")"
    # The bytes libmagic judged are the ones scanned and printed: a writer
    # that turns the file's start into a denied type after the check does
    # not get that start printed
    cp "$T_TMP/c.txt" "$T_TMP/swap.txt"
    SHIM_REWRITE=$T_TMP/swap.txt LD_PRELOAD=$T_TMP/mmap_shim.so "$SLUICE" scan --policy "$POLICY" "$T_TMP/swap.txt" >"$T_TMP/swap.out" 2>/dev/null
    check "the shim did rewrite it" grep -q "BEGIN PGP MESSAGE" "$T_TMP/swap.txt"
    check "start rewritten after the type check: the checked start is printed, not the new one" \
        bash -c "! grep -q 'BEGIN PGP MESSAGE' '$T_TMP/swap.out'"
    check_eq "and the rest as before" "$(tail -c 100000 "$T_TMP/str.out" | sha256sum)" "$(tail -c 100000 "$T_TMP/swap.out" | sha256sum)"
    ASAN_OPTIONS=$old_asan
else
    not_ok "mmap shim compiled: $(head -3 "$T_TMP/cc.err")"
fi
t_done
