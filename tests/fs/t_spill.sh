#!/usr/bin/env bash
# spill_dir: views evicted from memory are kept zstd-compressed on disk and
# come back from there (not from a new sanitization); only sanitized bytes
# are on disk; a damaged spill file is never served (the view is rebuilt);
# the spill directory goes away at unmount.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"
command -v zstd >/dev/null || { echo "no zstd"; exit 77; }

python3 - "$FS_SRC" "$T_TMP/exp" <<'PY'
import os, sys
src, exp = sys.argv[1], sys.argv[2]
os.makedirs(exp)
for name, word in [("a.txt", "alpha"), ("b.txt", "bravo")]:
    t = "".join(f"{word} line {i} SSN 123-45-6789\n" if i % 10 == 0 else f"{word} line {i} nothing here\n" for i in range(12000))
    open(os.path.join(src, name), "w").write(t)
    open(os.path.join(exp, name), "w").write(t.replace("123-45-6789", "[REDACTED:us-ssn]"))
PY
mkdir "$T_TMP/spill"
sleep 0.3 # let the sources settle (views of just-written files are not spilled)
fs_mount -o "cache_size=100K,spill_dir=$T_TMP/spill,log_level=debug" || { not_ok "mount"; t_done; }
ok "mount"
builds() { grep -c 'msg="view built" path="'"$1"'"' "$FS_LOG"; }
spilldir=$(ls -d "$T_TMP"/spill/sluicefs-spill.*)
check_eq "a private spill directory" "drwx------" "$(stat -c %A "$spilldir")"

check "first read: the view" cmp "$FS_MNT/a.txt" "$T_TMP/exp/a.txt"
check "evicted view spilled to disk" test -n "$(ls "$spilldir")"
check_eq "only sanitized bytes on disk" 0 "$(cat "$spilldir"/*.zst | zstd -dc | grep -c '123-45-6789')"
check "second read: the same view" cmp "$FS_MNT/a.txt" "$T_TMP/exp/a.txt"
check_eq "... taken from the spill, not sanitized again" 1 "$(builds a.txt)"
check_contains "... as the log says" "$(cat "$FS_LOG")" 'msg="view from spill" path="a.txt"'

# Damage what is on disk now: the next read must not serve it.
for f in "$spilldir"/*.zst; do printf 'alpha line 0 SSN 123-45-6789\n' | zstd -q -c >"$f"; done
check "read after the spill file was altered: still the right view" cmp "$FS_MNT/a.txt" "$T_TMP/exp/a.txt"
check_contains "the altered spill was detected" "$(cat "$FS_LOG")" "failed verification"
check_eq "and the view rebuilt from the source" 2 "$(builds a.txt)"
check "another file through the small cache" cmp "$FS_MNT/b.txt" "$T_TMP/exp/b.txt"
fs_umount
check_fails "spill directory removed at unmount" test -e "$spilldir"
t_done
