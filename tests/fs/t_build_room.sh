#!/usr/bin/env bash
# Views being built never take more than cache_size together: a large
# file's build that would take more waits for the builds before it to end
# (counted as a room wait) instead of holding its whole view in memory
# beside theirs. Both readers still get the right bytes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

/usr/bin/python3 - "$FS_SRC" <<'PY'
import sys
import os
for k in range(2):
    os.makedirs(f"{sys.argv[1]}/d{k}")
    with open(f"{sys.argv[1]}/d{k}/f{k}.txt", "w") as f:
        n = 0
        while f.tell() < 30_000_000:
            f.write(f"file {k} line {n}: SSN 123-45-{6789 - n % 1000:04d}, otherwise plain prose for the memo\n")
            n += 1
PY
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }
# 34 MB of view each (+1/8 reserved for labels): two at once do not fit 48M
# (in two directories: lookups in one directory, which build the view for
# the size they report, come one at a time)
waits=0
for attempt in 1 2 3 4 5; do
    : >"$FS_LOG"
    rm -f "$FS_DB"*
    fs_mount -o cache_size=48M,no_prebuild,log_level=info || { not_ok "mount"; t_done; }
    cat "$FS_MNT/d0/f0.txt" >"$T_TMP/f0.out" &
    a=$!
    sleep 0.02
    cat "$FS_MNT/d1/f1.txt" >"$T_TMP/f1.out" &
    b=$!
    wait $a; ra=$?
    wait $b; rb=$?
    fs_umount
    waits=$(field room_waits "$(grep 'msg="view cache"' "$FS_LOG" | tail -1)")
    [ "${waits:-0}" -ge 1 ] && break
done
check_eq "both concurrent reads succeed" "0 0" "$ra $rb"
check "the second build waited for room (room_waits=${waits:-?}, attempt $attempt)" test "${waits:-0}" -ge 1
for k in 0 1; do
    SLUICE_KEY_FILE=$ROOT/tests/rules/test.key "$BUILD/sluice" scan --policy "$FS_POLICY" "$FS_SRC/d$k/f$k.txt" >"$T_TMP/f$k.want" 2>/dev/null
    check "f$k: the bytes served are sluice scan's" cmp -s "$T_TMP/f$k.want" "$T_TMP/f$k.out"
done
t_done
