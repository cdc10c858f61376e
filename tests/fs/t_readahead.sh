#!/usr/bin/env bash
# The mount's kernel readahead is raised to 1 MiB (FUSE's own limit is
# 128 KiB; a view is in memory once opened); readahead=SIZE sets it,
# readahead=0 leaves the kernel's, a bad size is refused by name. Reads are
# the same bytes whatever it is.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

/usr/bin/python3 - "$FS_SRC/big.txt" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(70000):
        f.write("line %d of a long memo, ssn 123-45-6789 and key tok_abcdefghijklmnop\n" % i)
PY
ra() { cat "/sys/class/bdi/$(mountpoint -d "$FS_MNT")/read_ahead_kb"; }

fs_mount || { not_ok "mount"; t_done; }
check_eq "default: the mount reads ahead 1 MiB" 1024 "$(ra)"
cat "$FS_MNT/big.txt" >"$T_TMP/a.out"
fs_umount

fs_mount -o readahead=4M || { not_ok "mount readahead=4M"; t_done; }
check_eq "readahead=4M" 4096 "$(ra)"
dd if="$FS_MNT/big.txt" bs=7777 of="$T_TMP/b.out" status=none
fs_umount
check "same bytes read with 1 MiB and 4 MiB readahead" cmp -s "$T_TMP/a.out" "$T_TMP/b.out"
check "and the view is masked" bash -c "! grep -q 123-45-6789 '$T_TMP/a.out'"
check_eq "the whole view" 70000 "$(wc -l <"$T_TMP/a.out")"

fs_mount -o readahead=0 || { not_ok "mount readahead=0"; t_done; }
kern=$(ra)
check "readahead=0: the kernel's own (${kern} KiB, not ours)" test "$kern" -lt 1024
fs_umount

"$SLUICEFS" -f -o "policy=$FS_POLICY,ledger=$FS_DB,ledger_key=$FS_KEY,readahead=lots" "$FS_SRC" "$FS_MNT" 2>"$T_TMP/bad.err"
check_eq "a bad size: exit 2" 2 "$?"
check_contains "a bad size: named" "$(cat "$T_TMP/bad.err")" "readahead=lots"
check "a bad size: nothing mounted" bash -c "! mountpoint -q '$FS_MNT'"
t_done
