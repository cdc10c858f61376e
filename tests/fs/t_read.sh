#!/usr/bin/env bash
# sluicefs: every standard tool sees the same masked bytes; random-offset
# reads match the full read; stat size == bytes served; the source's atime is
# never touched.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

EXP=$T_TMP/expected
mkdir -p "$FS_SRC/sub/deeper" "$EXP/sub/deeper"
# Sources with secrets, and the views the test pack must produce, written
# independently of the engine: the SSN becomes a label (the view is longer
# than the source), the token is masked but for its last 4.
python3 - "$FS_SRC" "$EXP" <<'PY'
import os, random, sys
src, exp = sys.argv[1], sys.argv[2]
rnd = random.Random(42)
words = "the report said quarterly revenue grew while the audit team reviewed access logs for every region".split()
def doc(nlines):
    out = []
    for i in range(nlines):
        line = " ".join(rnd.choice(words) for _ in range(rnd.randint(4, 16)))
        if i % 37 == 5:
            line += " SSN 123-45-6789 on file"
        if i % 53 == 7:
            line += " key tok_abcdefghijklmnop end"
        out.append(line)
    return "\n".join(out) + "\n"
def masked(s):
    return s.replace("123-45-6789", "[REDACTED:us-ssn]").replace("tok_abcdefghijklmnop", "***_************mnop")
files = {"a.txt": "SSN: 123-45-6789 and tok_abcdefghijklmnop\nplain line\n",
         "big.txt": doc(60000),            # ~3.5 MB: several 1 MiB requests
         "sub/notes.md": doc(300),
         "sub/deeper/data.json": '{"ssn": "123-45-6789", "n": 1}\n',
         "clean.txt": "nothing secret here\n" * 100}
for name, text in files.items():
    open(os.path.join(src, name), "w").write(text)
    open(os.path.join(exp, name), "w").write(masked(text))
PY
touch -a -d '2020-01-01 00:00:00' "$FS_SRC"/*.txt "$FS_SRC"/sub/notes.md
atime_before=$(stat -c '%n %X' "$FS_SRC"/*.txt "$FS_SRC"/sub/notes.md)

fs_mount || { not_ok "mount"; t_done; }
ok "mount"

check "cat sees the masked view" cmp "$FS_MNT/a.txt" "$EXP/a.txt"
check "cat of a multi-MiB file equals the expected view" cmp "$FS_MNT/big.txt" "$EXP/big.txt"
check_lacks "no raw SSN through cat" "$(cat "$FS_MNT/big.txt")" "123-45-6789"

cp -r "$FS_MNT" "$T_TMP/cp"
check "cp -r copies exactly the views" diff -r "$T_TMP/cp" "$EXP"
mkdir "$T_TMP/tar"
tar c -C "$FS_MNT" . 2>"$T_TMP/tar.err" | tar x -C "$T_TMP/tar"
check "tar c | tar x gives the views" diff -r "$T_TMP/tar" "$EXP"
check_eq "tar reports no size mismatch" "" "$(cat "$T_TMP/tar.err")"

check_eq "grep -r finds the labels" "$(cd "$EXP" && grep -rc 'REDACTED:us-ssn' . | sort)" \
    "$(cd "$FS_MNT" && grep -rc 'REDACTED:us-ssn' . | sort)"
check_fails "grep -r finds no raw SSN" grep -rq '123-45-6789' "$FS_MNT"
check_fails "grep -r finds no raw token" grep -rq 'tok_abcdefghijklmnop' "$FS_MNT"
check_eq "find lists every file" "$(cd "$EXP" && find . | sort)" "$(cd "$FS_MNT" && find . | sort)"
check_eq "find -exec cat sees the views" "$(cd "$EXP" && find . -type f | sort | xargs cat | sha256sum)" \
    "$(cd "$FS_MNT" && find . -type f | sort | xargs cat | sha256sum)"

check "python open().read() and mmap equal the view; random reads equal its slices" \
python3 - "$FS_MNT" "$EXP" <<'PY'
import mmap, os, random, sys
mnt, exp = sys.argv[1], sys.argv[2]
rnd = random.Random(7)
for name in ["a.txt", "big.txt", "sub/notes.md", "sub/deeper/data.json", "clean.txt"]:
    want = open(os.path.join(exp, name), "rb").read()
    p = os.path.join(mnt, name)
    got = open(p, "rb").read()
    assert got == want, f"{name}: read() differs"
    with open(p, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        assert m[:] == want, f"{name}: mmap differs"
        assert m[len(want) // 2:len(want) // 2 + 100] == want[len(want) // 2:len(want) // 2 + 100]
        m.close()
    assert os.stat(p).st_size == len(want), f"{name}: st_size {os.stat(p).st_size} != {len(want)}"
    fd = os.open(p, os.O_RDONLY)
    assert os.fstat(fd).st_size == len(want), f"{name}: fstat size"
    for _ in range(300):
        off = rnd.randrange(0, len(want) + 10)
        size = rnd.choice([1, 7, 4096, 65536, 1 << 20, 3 << 20, rnd.randrange(1, 300000)])
        got = os.pread(fd, size, off)
        assert got == want[off:off + size], f"{name}: pread({size}, {off}) differs"
    # reads going backwards must give the same bytes as forwards
    chunks = [os.pread(fd, 4096, o) for o in range(((len(want) - 1) // 4096) * 4096, -1, -4096)]
    assert b"".join(reversed(chunks)) == want, f"{name}: backwards read differs"
    os.close(fd)
PY

sizes_ok=1
while IFS= read -r f; do
    s=$(stat -c %s "$FS_MNT/$f"); n=$(wc -c <"$FS_MNT/$f")
    [ "$s" = "$n" ] || { sizes_ok=0; echo "# $f: stat $s, read $n"; }
done < <(cd "$FS_MNT" && find . -type f)
check_eq "stat size equals the bytes read, for every file" 1 "$sizes_ok"

check_eq "the source's atime is untouched" "$atime_before" \
    "$(stat -c '%n %X' "$FS_SRC"/*.txt "$FS_SRC"/sub/notes.md)"
check_contains "the mount is a read-only fuse mount" "$(awk -v m="$FS_MNT" '$2 == m' /proc/mounts)" " ro,"
t_done
