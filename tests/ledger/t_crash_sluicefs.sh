#!/usr/bin/env bash
# tests/ledger/t_crash_sluicefs.sh — kill -9 sluicefs while 16 readers are
# reading: every read that returned data has its committed ledger record
# (same path, SHA-256 of exactly the bytes the reader got), the chain
# verifies, and a new mount continues the chain. Uses the fs tests' mount
# helpers (tests/fs/fs_lib.sh) read-only.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/fs/fs_lib.sh"
[ -x "$SLUICE" ] || { echo "sluice not built"; exit 77; }

# 64 small files with distinct contents, some with findings to mask.
for i in $(seq 0 63); do
    { echo "file $i of the crash test"; [ $((i % 4)) -eq 0 ] && echo "SSN: 123-45-6789"; seq "$i" 200; } > "$FS_SRC/f$i.txt"
done
fs_mount || { not_ok "mount"; t_done; }
ok "mount"

# 16 readers: open, read everything, and only then note "path sha256" of the
# bytes received (an unbuffered write per read: the claim survives our kill).
for r in $(seq 0 15); do
    python3 - "$FS_MNT" "$T_TMP/claims.$r" "$r" <<'PY' &
import hashlib, os, sys
mnt, out, r = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
i = r
for _ in range(200000):            # bounded; normally ends when the mount dies
    name = "f%d.txt" % (i % 64); i += 7
    try:
        with open(os.path.join(mnt, name), "rb") as f:
            data = f.read()
    except OSError:
        break
    if data:
        os.write(fd, ("%s %s\n" % (name, hashlib.sha256(data).hexdigest())).encode())
PY
done
# Let them read until a good number of reads completed (bounded wait), then kill.
for _ in $(seq 100); do
    [ "$(cat "$T_TMP"/claims.* 2>/dev/null | wc -l)" -ge 2000 ] && break
    sleep 0.1
done
kill -9 "$FS_PID"
wait "$FS_PID" 2>/dev/null
FS_PID=
fusermount3 -uz "$FS_MNT" 2>/dev/null || umount -l "$FS_MNT" 2>/dev/null
wait   # the readers end on ENOTCONN
claims=$(cat "$T_TMP"/claims.* | wc -l)
check "readers completed reads before the kill ($claims)" test "$claims" -ge 100

# Every claimed read has a served record of those very bytes: per (path,
# served_sha256), records >= reads that returned them.
missing=$(python3 - "$FS_DB" "$T_TMP" <<'PY'
import collections, glob, sqlite3, sys
db, tmp = sys.argv[1], sys.argv[2]
claims = collections.Counter()
for fn in glob.glob(tmp + "/claims.*"):
    for line in open(fn):
        path, sha = line.split()
        claims[(path, sha)] += 1
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
rows = collections.Counter()
for path, sha, n in con.execute("SELECT path, served_sha256, count(*) FROM records "
                                "WHERE event = 'open-served' GROUP BY path, served_sha256"):
    rows[(path, sha)] = n
bad = [(k, n, rows[k]) for k, n in claims.items() if rows[k] < n]
print(len(bad))
for k, n, m in bad[:5]:
    print("# %s: %d reads, %d records" % (k, n, m), file=sys.stderr)
PY
)
check_eq "every read that returned data has its committed record" 0 "$missing"
out=$("$SLUICE" ledger verify --ledger "$FS_DB" --key "$FS_KEY" 2>&1); rc=$?
check_eq "chain verifies after kill -9" 0 "$rc"
echo "# $out"
last=$(sqlite3 "$FS_DB" "SELECT max(seq) FROM records")

fs_mount || { not_ok "remount"; t_done; }
ok "remount after the crash"
cat "$FS_MNT/f1.txt" >/dev/null
fs_umount
check_contains "the new mount continues the chain" \
    "$(sqlite3 "$FS_DB" "SELECT group_concat(event, ' ') FROM records WHERE seq > $last")" "mount"
check "chain verifies after remount" "$SLUICE" ledger verify --ledger "$FS_DB" --key "$FS_KEY" --quiet
t_done
