# tests/diode/diode_lib.sh — helpers for the sluice-diode integration tests
# (sourced after tests/lib.sh).
FORGE=$BUILD/tests/diode/diode_forge

# d_key FILE: a fresh 32-byte hex key, mode 0600
d_key() { (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$1"; echo >> "$1"); }

# d_tree DIR NSMALL: NSMALL small text files in nested directories, a few
# large files (text and random), an executable script and an empty file.
d_tree() {
    local dir=$1 n=$2 i
    mkdir -p "$dir"
    python3 - "$dir" "$n" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1234)
words = "the quarterly report lists revenue costs margin customer region forecast".split()
for i in range(n):
    d = os.path.join(root, "docs", "d%02d" % (i % 17), "s%d" % (i % 3))
    os.makedirs(d, exist_ok=True)
    size = rnd.choice([0, 10, 100, 700, 3000, 9000, 40000])
    text = " ".join(rnd.choice(words) for _ in range(size // 6 + 1))[:size]
    with open(os.path.join(d, "note-%04d.txt" % i), "w") as f:
        f.write(text)
os.makedirs(os.path.join(root, "big"), exist_ok=True)
with open(os.path.join(root, "big", "log.txt"), "w") as f:
    for i in range(120000):
        f.write("2026-11-23T12:00:%02d host%d service=api status=%d latency=%dms\n" % (i % 60, i % 7, 200 + i % 5, i % 997))
with open(os.path.join(root, "big", "random.bin"), "wb") as f:
    f.write(rnd.randbytes(6 * 1024 * 1024 + 123))
with open(os.path.join(root, "run.sh"), "w") as f:
    f.write("#!/bin/sh\necho hi\n")
os.chmod(os.path.join(root, "run.sh"), 0o755)
open(os.path.join(root, "empty.txt"), "w").close()
PY
}

# d_same SRC VAULT: every regular file of SRC is in VAULT with the same bytes
# and nothing else is there.
d_same() { diff -r "$1" "$2" >/dev/null 2>&1; }

# d_vault_sound SRC VAULT: every file in VAULT is a regular file identical
# to the file of the same name in SRC (nothing partial, nothing foreign).
d_vault_sound() {
    local src=$1 v=$2 f bad=0
    while IFS= read -r -d '' f; do
        local rel=${f#"$v"/}
        if [ -L "$f" ] || [ ! -f "$f" ] || ! cmp -s "$f" "$src/$rel"; then
            echo "# unsound: $rel"; bad=1
        fi
    done < <(find "$v" -mindepth 1 ! -type d -print0)
    return $bad
}

# d_staging_empty VAULT: no leftover staged file beside the vault
d_staging_empty() {
    local s; s="$(dirname "$1")/.$(basename "$1").sluice-staging"
    [ -d "$s" ] && [ -z "$(ls -A "$s")" ]
}

d_nfiles() { find "$1" -type f | wc -l; }
