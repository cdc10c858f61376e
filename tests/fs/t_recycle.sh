#!/usr/bin/env bash
# A view built while the cache is full takes the memory of the view evicted
# for it (no fresh pages to fault in): the bytes served are exactly the
# view's, never anything left of the evicted one (served, read at any
# offset, or across its end), and the cache stays within its size.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

# 6 files of 2.4-2.9 MB (view buffers of 2 MiB or more are mappings) with different content and lengths, in a cache that
# holds two of their views: each new view evicts an older one.
python3 - "$FS_SRC" <<'PY'
import sys
for i in range(6):
    with open(f"{sys.argv[1]}/f{i}.txt", "w") as f:
        n = 0
        while f.tell() < 2_400_000 + 97_000 * ((i * 5) % 6):
            f.write(f"file {i} line {n}: {'abcdefghij'[i] * 20} SSN 123-45-{6789 - n % 1000:04d} card 4111 1111 1111 1111\n")
            n += 1
PY
expected() { # the view of $1 as `sluice scan` prints it
    SLUICE_KEY_FILE=$ROOT/tests/rules/test.key "$BUILD/sluice" scan --policy "$FS_POLICY" "$FS_SRC/$1"
}
fs_mount -o log_level=info,cache_size=7M,no_prebuild || { not_ok "mount"; t_done; }
ok "mount"
bad=0
for round in 1 2; do
    for i in 0 1 2 3 4 5; do
        cmp -s <(expected "f$i.txt") "$FS_MNT/f$i.txt" || { bad=$((bad + 1)); echo "# round $round: f$i.txt differs"; }
    done
done
check_eq "every view read twice through a full cache is exactly sluice scan's output" 0 "$bad"
check_eq "stat size is the view's size" "$(expected f3.txt | wc -c)" "$(stat -c %s "$FS_MNT/f3.txt")"
got=$(python3 - "$FS_MNT/f4.txt" <<'PY'
import os, sys
with open(sys.argv[1], "rb") as f:
    size = os.fstat(f.fileno()).st_size
    f.seek(size - 10)
    print(len(f.read(4096)))
PY
)
check_eq "a read across the end gets the view's last bytes only" 10 "$got"
fs_umount
line=$(grep 'msg="view cache"' "$FS_LOG" | tail -1)
recycled=$(sed -n 's/.* recycled=\([0-9]*\).*/\1/p' <<<"$line")
check_eq "views were built in the memory of evicted ones" 1 "$((recycled >= 4))"
t_done
