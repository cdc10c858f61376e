#!/usr/bin/env bash
# Sequential prebuilding: opens of a directory's files in name order (or
# directory order) make the daemon build the next files' views ahead of
# their opens (two ahead for large files, eight for small ones). Later opens find those views (counted at unmount), the bytes
# are the same as with -o no_prebuild, a source changed after its view was
# prebuilt is served fresh, and the ledger records real opens only.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

mkdir -p "$FS_SRC/big"
# 6 files of ~1.2 MiB, each with findings to mask
python3 - "$FS_SRC/big" <<'PY'
import sys
for i in range(6):
    with open(f"{sys.argv[1]}/f{i}.txt", "w") as f:
        n = 0
        while f.tell() < 1_250_000:
            f.write(f"file {i} line {n}: the quarterly figures, SSN 123-45-{6789 - n % 1000:04d} and more prose\n")
            n += 1
PY
names=(f0.txt f1.txt f2.txt f3.txt f4.txt f5.txt)
# Wait (bounded) until the daemon logged the prebuild of $1.
prebuilt() {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "msg=\"prebuild\" path=\"big/$1\" result=\"ok\"" "$FS_LOG" && return 0
        sleep 0.1
    done
    return 1
}
cache_line() { grep 'msg="view cache"' "$FS_LOG" | tail -1; }
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$2"; }

# ---- in name order, prebuilding on (the default) ------------------------------
fs_mount -o log_level=debug || { not_ok "mount"; t_done; }
ok "mount"
: >"$T_TMP/sums.on"
waited=1
for k in "${!names[@]}"; do
    # from the third file on, its view was asked for by the two opens before
    if ((k >= 2)); then prebuilt "${names[k]}" || waited=0; fi
    echo "${names[k]} $(sha256sum <"$FS_MNT/big/${names[k]}" | cut -c1-64)" >>"$T_TMP/sums.on"
done
check_eq "files 3 to 6 were built ahead of their opens" 1 "$waited"
check_eq "one ledger record per real open, none for a prebuild" \
    "6 6" "$(fs_sql "select count(*), count(distinct path) from records where event like 'open-%'" | tr '|' ' ')"
check_eq "the masked bytes were served" 0 "$(grep -c '123-45-' "$FS_MNT/big/f3.txt")"
fs_umount
line=$(cache_line)
check_eq "4 views prebuilt, each found by its open" "4 4" "$(field prebuilds "$line") $(field prebuild_hits "$line")"

# ---- the same with -o no_prebuild: same bytes, nothing built ahead ------------
: >"$FS_LOG"
rm -f "$FS_DB"*
fs_mount -o log_level=debug,no_prebuild || { not_ok "mount no_prebuild"; t_done; }
: >"$T_TMP/sums.off"
for n in "${names[@]}"; do
    echo "$n $(sha256sum <"$FS_MNT/big/$n" | cut -c1-64)" >>"$T_TMP/sums.off"
done
fs_umount
check_eq "the bytes served are the same with and without prebuilding" \
    "$(cat "$T_TMP/sums.off")" "$(cat "$T_TMP/sums.on")"
check_eq "no_prebuild: nothing built ahead" 0 "$(field prebuilds "$(cache_line)")"

# ---- a source changed after its view was prebuilt is served fresh ---------------
: >"$FS_LOG"
rm -f "$FS_DB"*
fs_mount -o log_level=debug || { not_ok "mount again"; t_done; }
cat "$FS_MNT/big/f0.txt" "$FS_MNT/big/f1.txt" >/dev/null
prebuilt f2.txt || not_ok "f2.txt prebuilt"
sed -i 's/quarterly figures/CHANGED after prebuild/' "$FS_SRC/big/f2.txt"
got=$(head -c 200 "$FS_MNT/big/f2.txt")
check_contains "the changed source is what is served" "$got" "CHANGED after prebuild"
check_eq "... its record has the new source's SHA-256" "$(sha "$FS_SRC/big/f2.txt")" \
    "$(fs_sql "select source_sha256 from records where event='open-served' and path='big/f2.txt'")"
check_eq "one ledger record per real open" 3 "$(fs_sql "select count(*) from records where event like 'open-%'")"
fs_umount
check_eq "the stale prebuilt view of f2.txt was not used: built again at its open" \
    1 "$(grep -c 'msg="view built" path="big/f2.txt".*prebuilt=0' "$FS_LOG")"

# ---- directory order (what find and tar follow) ------------------------------------
mkdir "$FS_SRC/dir"
for n in e b d a f c; do cp "$FS_SRC/big/f1.txt" "$FS_SRC/dir/$n.txt"; done
mapfile -t order < <(ls -U "$FS_SRC/dir")
if [ "${order[*]}" = "a.txt b.txt c.txt d.txt e.txt f.txt" ]; then
    ok "# SKIP directory order is name order on this file system"
else
    : >"$FS_LOG"
    rm -f "$FS_DB"*
    fs_mount -o log_level=debug || { not_ok "mount for directory order"; t_done; }
    for n in "${order[@]}"; do cat "$FS_MNT/dir/$n" >/dev/null; done
    fs_umount
    check_eq "directory order: the 3rd to 6th files were built ahead" \
        "$(printf '%s\n' "${order[@]:2}" | sort | xargs)" \
        "$(sed -n 's/.*msg="prebuild" path="dir\/\([^"]*\)" result="ok".*/\1/p' "$FS_LOG" | sort -u | xargs)"
    check_eq "directory order: opens found prebuilt views" 1 "$(($(field prebuild_hits "$(cache_line)") >= 1))"
fi
# ---- small files: eight ahead, one more per open -------------------------------------
mkdir "$FS_SRC/small"
for k in $(seq -w 0 39); do
    printf 'memo %s: call 555-0100, SSN 123-45-67%s, nothing else\n' "$k" "$k" >"$FS_SRC/small/m$k.txt"
done
: >"$FS_LOG"
rm -f "$FS_DB"*
fs_mount -o log_level=debug || { not_ok "mount for small files"; t_done; }
: >"$T_TMP/small.on"
for f in "$FS_MNT"/small/m*.txt; do cat "$f" >>"$T_TMP/small.on"; done
fs_umount
line=$(cache_line)
pb=$(field prebuilds "$line") ph=$(field prebuild_hits "$line")
check_eq "small files: the 3rd to 40th were built ahead (38 prebuilds)" 38 "$pb"
check "small files: most opens found their view built ahead ($ph of 38)" test "$ph" -ge 30
check_eq "small files: each asked for once (one more per open, not the whole window again)" 38 \
    "$(grep -c 'msg="prebuild" path="small/' "$FS_LOG")"
check_eq "small files: one ledger record per real open" 40 \
    "$(fs_sql "select count(*) from records where event like 'open-%' and path like 'small/%'")"
: >"$FS_LOG"
rm -f "$FS_DB"*
fs_mount -o no_prebuild || { not_ok "mount for small files, no_prebuild"; t_done; }
: >"$T_TMP/small.off"
for f in "$FS_MNT"/small/m*.txt; do cat "$f" >>"$T_TMP/small.off"; done
fs_umount
check "small files: the same bytes with and without prebuilding" cmp -s "$T_TMP/small.on" "$T_TMP/small.off"
check_eq "small files: masked" 0 "$(grep -c '123-45-' "$T_TMP/small.on")"
t_done
