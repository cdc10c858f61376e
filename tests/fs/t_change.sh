#!/usr/bin/env bash
# A source file that changes after its view was built is never served stale
# nor as a mix: rewrites in place (longer, shorter, same size), replacement
# by rename, and a writer racing readers. An fd opened before a change keeps
# reading the one version it opened.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

F=$FS_SRC/doc.txt
printf 'version one SSN 123-45-6789\n' >"$F"
fs_mount || { not_ok "mount"; t_done; }
ok "mount"

readback() { # name expected: cat and stat must both agree with the expected view
    local got size
    got=$(cat "$FS_MNT/doc.txt"; echo x); got=${got%x}
    size=$(stat -c %s "$FS_MNT/doc.txt")
    check_eq "$1: content" "$2" "$got"
    check_eq "$1: stat size" "${#2}" "$size"
}
readback "first version" $'version one SSN [REDACTED:us-ssn]\n'

sleep 0.05
printf 'version two is longer, with two SSNs 123-45-6789 and 234-56-7890, and more text\n' >"$F"
readback "rewritten longer in place" $'version two is longer, with two SSNs [REDACTED:us-ssn] and [REDACTED:us-ssn], and more text\n'
printf 'v3 short\n' >"$F"
readback "rewritten shorter in place" $'v3 short\n'
printf 'v4 short\n' >"$F"   # same size, same second: only the content differs
readback "rewritten, same size, immediately" $'v4 short\n'
# An fd opened on this version, across its replacement by rename.
exec 7<"$FS_MNT/doc.txt"
printf 'v5: replaced by rename, tok_abcdefghijklmnop\n' >"$FS_SRC/.tmp" && mv "$FS_SRC/.tmp" "$F"
readback "replaced by rename" $'v5: replaced by rename, ***_************mnop\n'
old=$(cat <&7; echo x)
check_eq "an fd opened before the replacement still reads its own version, whole" \
    $'v4 short\n' "${old%x}"
exec 7<&-
# An fd open across an in-place rewrite: it keeps reading the version it
# opened, whole, while a newer opener sees only the new version.
head -c 300000 /dev/zero | tr '\0' 'o' >"$F"
exec 7<"$FS_MNT/doc.txt"
head -c 1000 <&7 >/dev/null
sleep 0.05
head -c 300000 /dev/zero | tr '\0' 'n' >"$F"
check_eq "the newer opener reads only the new version" "300000 n" "$(tr -d '\n' <"$FS_MNT/doc.txt" | fold -w1 | sort | uniq -c | xargs)"
check_eq "the older fd reads the rest of its own version" "299000 o" "$(tr -d '\n' <&7 | fold -w1 | sort | uniq -c | xargs)"
exec 7<&-

# mmap'ed pages never mix versions either.
python3 - "$FS_MNT/doc.txt" "$F" >"$T_TMP/mmap.out" <<'PY'
import mmap, os, sys
mnt, src = sys.argv[1], sys.argv[2]
bad = 0
for i in range(20):
    body = (f"round {i} " + "word " * (2000 + 500 * (i % 3))).encode() + b"\n"
    with open(src + ".tmp", "wb") as f:
        f.write(body)
    os.rename(src + ".tmp", src)
    with open(mnt, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if m[:] != body or os.fstat(f.fileno()).st_size != len(body):
            bad += 1
        m.close()
print(bad)
PY
check_eq "mmap after each replacement sees exactly the new version" 0 "$(cat "$T_TMP/mmap.out")"

# A writer swapping versions A and B (atomically) while 4 readers read: every
# read is exactly view A or view B.
python3 - "$FS_MNT/doc.txt" "$F" >"$T_TMP/race.out" <<'PY'
import os, sys, threading, time
mnt, src = sys.argv[1], sys.argv[2]
A = b"A" * 100000 + b" SSN 123-45-6789\n"
B = b"B" * 50000 + b" key tok_abcdefghijklmnop\n" + b"B" * 70000 + b"\n"
VA = A.replace(b"123-45-6789", b"[REDACTED:us-ssn]")
VB = B.replace(b"tok_abcdefghijklmnop", b"***_************mnop")
# Bounded: until each version was read a few times, at most 30 s.
deadline = time.time() + 30
counts = {"A": 0, "B": 0, "bad": 0, "err": 0}
def running():
    return time.time() < deadline and (counts["A"] < 20 or counts["B"] < 20)
errs = {}
lock = threading.Lock()
def writer():
    # Replace the file again as soon as a reader got the current version
    # (or after 0.2 s): the race stays tight however slow the build is.
    i = 0
    while running():
        key = "A" if i % 2 == 0 else "B"
        seen = counts[key]
        with open(src + ".w", "wb") as f:
            f.write(A if key == "A" else B)
        os.rename(src + ".w", src)
        t = time.time()
        while running() and counts[key] == seen and time.time() - t < 0.2:
            time.sleep(0.001)
        i += 1
def reader():
    while running():
        try:
            with open(mnt, "rb") as f:
                d = f.read()
        except OSError as e:
            with lock: counts["err"] += 1; errs[e.errno] = errs.get(e.errno, 0) + 1
            continue
        k = "A" if d == VA else "B" if d == VB else "bad"
        with lock: counts[k] += 1
# Start from version A: a read before the writer's first swap would
# otherwise see the previous test's content, current but neither A nor B.
with open(src + ".w", "wb") as f:
    f.write(A)
os.rename(src + ".w", src)
ts = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(counts["A"], counts["B"], counts["bad"], counts["err"], sorted(errs.items()))
PY
read -r na nb nbad nerr errs <"$T_TMP/race.out"
echo "# racing reads: $na A, $nb B, $nbad mixed/stale, $nerr errors $errs"
check_eq "no read is a mix or a stale view" 0 "$nbad"
check "both versions were seen" test "$na" -gt 0 -a "$nb" -gt 0
t_done
