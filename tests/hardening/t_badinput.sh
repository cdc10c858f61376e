#!/usr/bin/env bash
# tests/hardening/t_badinput.sh — hostile trees and configurations against a
# real sluicefs mount (issue 8): file names with newlines, invalid UTF-8 and
# 255-byte components; paths 4,000 bytes deep; 0-byte files; a 10 GB sparse
# file; a directory with 100,000 entries; a rule that backtracks
# catastrophically; a policy that does not parse; a ledger that is not
# SQLite. Each case has its documented outcome: served masked, or refused
# with a ledger record; the daemon stays up; nothing is served unchecked.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/fs/fs_lib.sh"
PY=/usr/bin/python3
SSN=536-22-8451

# ---- the tree ----------------------------------------------------------------------
nl_name=$'two\nlines.txt'
bad_utf8=$'bad\xff\xfename.txt'
long_name=$(printf 'L%.0s' $(seq 1 251)).txt          # 255 bytes
printf 'ssn %s in a newline name\n' "$SSN" >"$FS_SRC/$nl_name"
printf 'ssn %s in an invalid UTF-8 name\n' "$SSN" >"$FS_SRC/$bad_utf8"
printf 'ssn %s in a 255-byte name\n' "$SSN" >"$FS_SRC/$long_name"
: >"$FS_SRC/empty.txt"
truncate -s 10G "$FS_SRC/sparse10g.txt"
# 4,000 bytes of path below the root: 20 components of 199 bytes.
deep=$FS_SRC
rel=
for i in $(seq -w 1 20); do
    c=$(printf "d$i%.0s" $(seq 1 66) | cut -c1-199)
    deep=$deep/$c
    rel=$rel/$c
done
mkdir -p "$deep"
printf 'ssn %s at the bottom\n' "$SSN" >"$deep/leaf.txt"
$PY - "$FS_SRC/many" <<'EOF'
import os, sys
d = sys.argv[1]
os.makedirs(d)
for i in range(100000):
    os.close(os.open(f"{d}/f{i:06}", os.O_CREAT | os.O_WRONLY, 0o644))
EOF
# One file that makes the catastrophic rule backtrack.
printf '%s\n' "$(printf 'a%.0s' $(seq 1 40))b" >"$FS_SRC/redos.txt"

# A pack with the catastrophic rule, added to the test policy.
cat >"$T_TMP/evil.yaml" <<'EOF'
pack: evil
version: 1
rules:
  - id: evil-backtracking
    pattern: '(a|aa)+(?<!a)b'
    action: replace
EOF
fs_write_policy "$T_TMP/evil.yaml"
sed -i 's/^  max-file-size: .*/  max-file-size: 64M\n  match-limit: 100000/' "$FS_POLICY"
fs_mount || { not_ok "mounted"; t_done; }
ok "mounted over the hostile tree"

# ---- names ----------------------------------------------------------------------------
for n in "$nl_name" "$bad_utf8" "$long_name"; do
    label=$(printf '%q' "$n" | cut -c1-40)
    out=$(cat "$FS_MNT/$n" 2>&1)
    check_lacks "$label: served masked" "$out" "$SSN"
    check_contains "$label: served" "$out" "ssn [REDACTED"
    check "$label: listed" test -e "$FS_MNT/$n"
done
rows=$(fs_sql "SELECT count(*) FROM records WHERE event='open-served' AND path LIKE 'two%lines.txt'")
check_eq "the newline name's open is in the ledger" 1 "$rows"
rows=$(fs_sql "SELECT count(*) FROM records WHERE event='open-served' AND hex(path) = hex(CAST(X'$(printf '%s' "$bad_utf8" | xxd -p)' AS TEXT))")
check_eq "the invalid UTF-8 name is recorded byte for byte" 1 "$rows"

# ---- depth ------------------------------------------------------------------------------
# (one component at a time, as a path this long cannot be named whole here)
out=$(cd "$FS_MNT" && IFS=/ && for c in ${rel#/}; do cd "$c" || exit 1; done && cat leaf.txt 2>&1)
check_contains "a file 4,000 bytes deep is served" "$out" "ssn [REDACTED"
check_lacks "a file 4,000 bytes deep is masked" "$out" "$SSN"

# ---- sizes ------------------------------------------------------------------------------
check_eq "a 0-byte file stats as 0 bytes" 0 "$(stat -c %s "$FS_MNT/empty.txt")"
check_eq "a 0-byte file reads as nothing" "" "$(cat "$FS_MNT/empty.txt")"
t0=$SECONDS
err=$(cat "$FS_MNT/sparse10g.txt" 2>&1 >/dev/null); rc=$?
check "a 10 GB sparse file is refused" test $rc -ne 0
check_contains "with EACCES" "$err" "Permission denied"
check "without reading 10 GB (refused in under 60 s)" test $((SECONDS - t0)) -lt 60
rows=$(fs_sql "SELECT count(*) FROM records WHERE event='open-refused' AND path='sparse10g.txt'")
check "the refusal is in the ledger" test "$rows" -ge 1

# ---- 100,000 entries --------------------------------------------------------------------
n=$(ls -f "$FS_MNT/many" | grep -c '^f')
check_eq "a directory of 100,000 entries lists whole" 100000 "$n"
served_before=$(fs_sql "SELECT count(*) FROM records WHERE event LIKE 'open-%'")
find "$FS_MNT/many" -type f | head -n 100000 | tail -n 1 >/dev/null
stat "$FS_MNT/many/f099999" >/dev/null
served_after=$(fs_sql "SELECT count(*) FROM records WHERE event LIKE 'open-%'")
check_eq "listing and stat sanitize nothing (no opens recorded)" "$served_before" "$served_after"

# ---- a rule that backtracks catastrophically ------------------------------------------------
err=$(cat "$FS_MNT/redos.txt" 2>&1 >/dev/null); rc=$?
check "the backtracking file is refused, not served" test $rc -ne 0
check_contains "with EACCES" "$err" "Permission denied"
reason=$(fs_sql "SELECT reason FROM records WHERE event='open-refused' AND path='redos.txt' ORDER BY seq DESC LIMIT 1")
check_contains "the ledger says the match limit was hit" "$reason" "limit"
check "the daemon is still up" kill -0 "$FS_PID"
out=$(cat "$FS_MNT/$long_name")
check_contains "and still serves other files" "$out" "ssn [REDACTED"
fs_umount

# ---- a policy that does not parse; a ledger that is not SQLite ------------------------------
printf 'policy: broken\nversion: 1\npacks: [\n' >"$T_TMP/broken.yaml"
err=$("$SLUICEFS" -f -o "policy=$T_TMP/broken.yaml,ledger=$FS_DB,ledger_key=$FS_KEY" "$FS_SRC" "$FS_MNT" 2>&1); rc=$?
check "a policy that does not parse: sluicefs refuses to start" test $rc -ne 0
check_contains "naming file:line:col" "$err" "broken.yaml:"
check_lacks "and mounts nothing" "$(cat /proc/mounts)" "$FS_MNT"
head -c 4096 /dev/urandom >"$T_TMP/notsqlite.db"
err=$("$SLUICEFS" -f -o "policy=$FS_POLICY,ledger=$T_TMP/notsqlite.db,ledger_key=$FS_KEY" "$FS_SRC" "$FS_MNT" 2>&1); rc=$?
check "a ledger that is not SQLite: sluicefs refuses to start" test $rc -ne 0
check_contains "saying why" "$err" "notsqlite.db"
check_lacks "and mounts nothing" "$(cat /proc/mounts)" "$FS_MNT"
t_done
