#!/usr/bin/env bash
# The engine writes a large file's view straight into the view's buffer
# (dlp_sink): a view much longer than its source (labels longer than what
# they replace) outgrows the buffer reserved for it, which then moves while
# the feeder thread hashes and prefaults it. The bytes served are exactly
# `sluice scan`'s, in fresh memory and in memory recycled from an evicted
# view, and the served SHA-256 in the ledger is that of the bytes read.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

# g0: every line a finding, 12 bytes -> 18 (the view is 1.5x the source,
# the reservation 1.125x); g1: findings of both actions among clean text;
# g2: like g0, longer, read after g0 and g1 fill a small cache.
python3 - "$FS_SRC" <<'PY'
import sys
d = sys.argv[1]
with open(f"{d}/g0.txt", "w") as f:
    while f.tell() < 3_000_000:
        f.write("123-45-6789\n")
with open(f"{d}/g1.txt", "w") as f:
    n = 0
    while f.tell() < 2_600_000:
        f.write(f"line {n} SSN 234-56-{7890 - n % 1000:04d} key tok_{n % 10**16:016d} and 345-67-8901\n" if n % 3 else f"line {n}: only words here, nothing to hide at all\n")
        n += 1
with open(f"{d}/g2.txt", "w") as f:
    while f.tell() < 3_500_000:
        f.write("456-78-9012 ")
PY
expected() { # the view of $1 as `sluice scan` prints it
    SLUICE_KEY_FILE=$ROOT/tests/rules/test.key "$BUILD/sluice" scan --policy "$FS_POLICY" "$FS_SRC/$1"
}
for i in 0 1 2; do expected "g$i.txt" >"$T_TMP/g$i.want"; done
check_eq "g0's view is longer than its buffer's reservation" 1 \
    "$(($(stat -c %s "$T_TMP/g0.want") > $(stat -c %s "$FS_SRC/g0.txt") * 9 / 8 + 4096))"

for cache in 256M 9M; do
    rm -f "$FS_DB"*
    fs_mount -o log_level=info,cache_size=$cache,no_prebuild || { not_ok "mount"; t_done; }
    ok "mount (cache $cache)"
    for i in 0 1 2; do
        cat "$FS_MNT/g$i.txt" >"$T_TMP/g$i.got"
        check "cache $cache: g$i.txt is exactly sluice scan's output" cmp -s "$T_TMP/g$i.want" "$T_TMP/g$i.got"
    done
    fs_umount
    for i in 0 1 2; do
        check_eq "cache $cache: g$i.txt's served SHA-256 in the ledger is that of the bytes read" "$(sha "$T_TMP/g$i.got")" \
            "$(fs_sql "select served_sha256 from records where event='open-served' and path='g$i.txt'")"
    done
done
line=$(grep 'msg="view cache"' "$FS_LOG" | tail -1)
recycled=$(sed -n 's/.* recycled=\([0-9]*\).*/\1/p' <<<"$line")
check_eq "with the small cache, g2's view was built in recycled memory" 1 "$((recycled >= 1))"
t_done
