#!/usr/bin/env bash
# 16 concurrent readers of the same file and of different files get identical
# bytes; readers killed in the middle of an open or a read leave the daemon
# healthy.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

python3 - "$FS_SRC" "$T_TMP/exp" <<'PY'
import os, random, sys
src, exp = sys.argv[1], sys.argv[2]
os.makedirs(exp)
rnd = random.Random(3)
def doc(n):
    lines = []
    for i in range(n):
        lines.append(" ".join(rnd.choice(["alpha", "beta", "gamma", "delta", "records"]) for _ in range(12))
                     + (" SSN 123-45-6789" if i % 29 == 0 else "") + (" tok_abcdefghijklmnop" if i % 31 == 0 else ""))
    return "\n".join(lines) + "\n"
def masked(s):
    return s.replace("123-45-6789", "[REDACTED:us-ssn]").replace("tok_abcdefghijklmnop", "***_************mnop")
for name, n in [("shared.txt", 80000)] + [(f"f{i}.txt", 3000 + 500 * i) for i in range(16)] + [("huge.txt", 150000)]:
    t = doc(n)
    open(os.path.join(src, name), "w").write(t)
    open(os.path.join(exp, name), "w").write(masked(t))
PY
fs_mount || { not_ok "mount"; t_done; }
ok "mount"

# Same file, 16 readers at once, before any view exists (they race to build it).
# (wait for these pids only: the daemon is a child of this shell too)
pids=()
for i in $(seq 1 16); do sha256sum <"$FS_MNT/shared.txt" >"$T_TMP/same.$i" & pids+=($!); done
wait "${pids[@]}"
check_eq "16 concurrent readers of one file: identical, correct bytes" \
    "1 $(sha256sum <"$T_TMP/exp/shared.txt")" "$(sort -u "$T_TMP"/same.* | wc -l) $(sort -u "$T_TMP"/same.* | head -1)"
# Different files, 16 readers at once (python, with reads of mixed sizes).
pids=()
for i in $(seq 0 15); do
    python3 - "$FS_MNT/f$i.txt" "$T_TMP/exp/f$i.txt" >"$T_TMP/diff.$i" <<'PY' &
import os, random, sys
want = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_RDONLY)
got, rnd = b"", random.Random(len(want))
while True:
    b = os.read(fd, rnd.choice([1, 100, 4096, 70000, 1 << 20]))
    if not b:
        break
    got += b
print("same" if got == want else "DIFFERENT")
PY
    pids+=($!)
done
wait "${pids[@]}"
check_eq "16 concurrent readers of different files: each got its view" "16 same" "$(cat "$T_TMP"/diff.* | sort | uniq -c | xargs)"

# A reader killed while its open is still building a large view, and one
# killed in the middle of slow reads.
python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$FS_MNT/huge.txt" & victim=$!
sleep 0.05; kill -9 $victim 2>/dev/null; wait $victim 2>/dev/null
python3 - "$FS_MNT/f3.txt" <<'PY' & victim=$!
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
while True:
    os.pread(fd, 10, 0)
    time.sleep(0.01)
PY
sleep 0.5; kill -9 $victim 2>/dev/null; wait $victim 2>/dev/null
check "daemon alive after readers were killed" kill -0 "$FS_PID"
check "mount still live" fs_is_mounted
check "huge file still served whole and right" cmp "$FS_MNT/huge.txt" "$T_TMP/exp/huge.txt"
check "other files still served right" cmp "$FS_MNT/f3.txt" "$T_TMP/exp/f3.txt"
check_eq "every served open has a row" "$(fs_sql "select count(*) from records where event='open-served'")" \
    "$(fs_sql "select count(*) from records where event='open-served' and served_sha256 is not null")"
fs_umount
check_eq "clean unmount after all that" "unmounted" "$(fs_sql "select decision from records where event='unmount'")"
t_done
