#!/usr/bin/env bash
# tests/soak/soak.sh [SECONDS] — `make soak` (default 600 s; the smoke test in
# `make check` runs it for a few seconds).
#
# 16 readers (cat-like whole reads, random ranges and mmap) hammer a sluicefs
# mount over a mixed tree for SECONDS, while the policy is swapped and
# reloaded (SIGHUP) every 3 s and sluice-diode keeps publishing new files into
# the vault (`send --watch` over a fifo). Reports operations per second,
# errors (target zero), the daemon's RSS over time and at its peak (checked
# against cache_size + build_memory + 64 MiB, sluicefs(8)), and checks that the ledger
# holds a record for every open the readers made and verifies.
# Exit 0 only when there were no errors, every open is recorded, and
# `sluice ledger verify` passes. It measures; it asserts no speed.
set -u
DUR=${1:-${SOAK_SECONDS:-600}}
READERS=${SOAK_READERS:-16}
CACHE=${SOAK_CACHE:-64M}
# sluicefs(8), MEMORY: the daemon's RSS stays within cache_size + build_memory
# (64M by default) + 64 MiB.
BUILD_MEM=${SOAK_BUILD_MEMORY:-64M}
RSS_BOUND_KIB=$(( ($(numfmt --from=iec "$CACHE") + $(numfmt --from=iec "$BUILD_MEM")) / 1024 + 65536 ))
ROOT=${SLUICE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SLUICE_BUILD:-$ROOT/build}
SLUICE=$BUILD/sluice SLUICEFS=$BUILD/sluicefs DIODE=$BUILD/sluice-diode
PY=/usr/bin/python3
die() { echo "soak: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] && [ -e /dev/fuse ] || { echo "soak: needs root and /dev/fuse"; exit 77; }
for b in "$SLUICE" "$SLUICEFS" "$DIODE"; do [ -x "$b" ] || die "$b not built"; done

W=$(mktemp -d /var/tmp/sluice-soak.XXXXXX)
MNT=$W/mnt
pids=()
FS_PID=
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u "$MNT" || umount -l "$MNT"; fi
    [ -n "$FS_PID" ] && kill "$FS_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

# ---- keys, two policies that differ for real ------------------------------------
for k in hash ledger diode; do "$SLUICE" keygen "$W/$k.key" || die "keygen"; done
export SLUICE_KEY_FILE=$W/hash.key
mkdir -p "$W/rules"
cp "$ROOT"/rules/*.yaml "$W/rules/"
"$PY" - "$W/rules" <<'EOF' || die "cannot write policy variants"
import sys, yaml
d = sys.argv[1]
p = yaml.safe_load(open(d + "/default-policy.yaml"))
open(d + "/policy-a.yaml", "w").write(yaml.safe_dump(p))
p["disable"] = sorted(set(p.get("disable") or []) | {"ipv4", "ipv6"})
open(d + "/policy-b.yaml", "w").write(yaml.safe_dump(p))
EOF
cp "$W/rules/policy-a.yaml" "$W/rules/policy.yaml"

# ---- a mixed tree: many small, a few large, some denied ----------------------------
mkdir -p "$W/outbox" "$W/vault"
"$PY" - "$W/outbox" <<'EOF' || die "cannot generate the tree"
import os, random, sys
random.seed(11)
out = sys.argv[1]
words = ("contract party shall agreement payment invoice employee record policy data "
         "system access review quarter revenue customer supplier notice term").split()
finds = ["jane.roe@example.com", "4111 1111 1111 1111", "SSN 536-22-8451", "+44 20 7946 0958",
         "GB82 WEST 1234 5698 7654 32", "AKIAZ7Q3WPLEK4ABCD27", "10.20.30.40",
         "password = Xq7!vR2#pLm9zz"]
def text(n):
    lines, size = [], 0
    while size < n:
        l = " ".join(random.choice(words) for _ in range(random.randint(6, 14)))
        if random.random() < 0.05:
            l += " " + random.choice(finds)
        lines.append(l); size += len(l) + 1
    return "\n".join(lines) + "\n"
for d in range(8):
    os.makedirs(f"{out}/dept{d}", exist_ok=True)
    for i in range(40):
        open(f"{out}/dept{d}/doc{i:03}.txt", "w").write(text(random.choice([900, 4000, 16000, 60000])))
open(f"{out}/big1.txt", "w").write(text(8 << 20))
open(f"{out}/big2.csv", "w").write(text(3 << 20))
EOF
# Denied content never crosses the diode; put a few straight into the vault so
# the readers meet refusals too.
mkdir -p "$W/vault/bin"
for i in 1 2 3; do cp /bin/true "$W/vault/bin/tool$i.txt"; done

# ---- the diode: receiver, then a watching sender --------------------------------------
mkfifo "$W/diode.fifo"
"$DIODE" recv --from "fifo:$W/diode.fifo" --vault "$W/vault" --key "$W/diode.key" \
    --ledger "$W/diode.db" --ledger-key "$W/ledger.key" 2>"$W/recv.log" &
pids+=($!)
"$DIODE" send --watch --settle 0.5 --no-progress --policy "$W/rules/policy.yaml" --key "$W/diode.key" \
    "$W/outbox" --to "fifo:$W/diode.fifo" 2>"$W/send.log" &
pids+=($!)
for _ in $(seq 300); do [ -f "$W/vault/big2.csv" ] && [ -f "$W/vault/dept7/doc039.txt" ] && break; sleep 0.1; done
[ -f "$W/vault/dept7/doc039.txt" ] || { cat "$W/recv.log" "$W/send.log"; die "the diode did not publish the tree"; }

# ---- sluicefs ---------------------------------------------------------------------------
mkdir -p "$MNT"
"$SLUICEFS" -f -o "policy=$W/rules/policy.yaml,ledger=$W/ledger.db,ledger_key=$W/ledger.key,cache_size=$CACHE,build_memory=$BUILD_MEM,session=soak,log_level=warn" \
    "$W/vault" "$MNT" 2>"$W/sluicefs.log" &
FS_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { cat "$W/sluicefs.log"; die "sluicefs did not mount"; }

# ---- readers ------------------------------------------------------------------------------
cat >"$W/reader.py" <<'EOF'
import errno, json, mmap, os, random, signal, sys, time
mnt, dur, idx, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rnd = random.Random(idx)
st = {"opens": 0, "refused": 0, "bytes": 0, "errors": 0, "interrupted": 0, "samples": []}
files, listed = [], 0.0
end = time.monotonic() + dur
def err(what):
    st["errors"] += 1
    if len(st["samples"]) < 5: st["samples"].append(what)
while time.monotonic() < end:
    if time.monotonic() - listed > 2 or not files:
        files = [os.path.join(d, f) for d, _, fs in os.walk(mnt) for f in fs]
        listed = time.monotonic()
    path = rnd.choice(files)
    denied = "/bin/" in path
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        continue  # listed before a replacement was published
    except OSError as e:
        if e.errno == errno.EACCES and denied: st["refused"] += 1
        else: err(f"open {path}: {e}")
        continue
    st["opens"] += 1
    try:
        if denied:
            err(f"denied file opened: {path}")
        size = os.fstat(fd).st_size
        mode = rnd.random()
        if mode < 0.5:
            n = 0
            while True:
                b = os.read(fd, 1 << 17)
                if not b: break
                n += len(b)
            if n != size: err(f"{path}: read {n} of {size}")
            st["bytes"] += n
        elif mode < 0.8:
            for _ in range(4):
                off = rnd.randrange(0, max(size, 1)); ln = rnd.randrange(1, 65536)
                want, got = max(0, min(ln, size - off)), 0
                while got < want:  # a read cut short by a reload ends in EIO on the next
                    b = os.pread(fd, want - got, off + got)
                    if not b: break
                    got += len(b)
                if got != want: err(f"{path}: pread {off}+{ln} gave {got}")
                st["bytes"] += got
        elif size:
            # In a child: a page the daemon refuses (EIO after a reload, see
            # below) is SIGBUS for whoever touches it, which Python cannot catch.
            pid = os.fork()
            if pid == 0:
                try:
                    os.fstat(fd)  # mmap would take a failed fstat for a size of 0
                except OSError as e:
                    os._exit(4 if e.errno in (errno.EIO, errno.ESTALE) else 3)
                try:
                    with mmap.mmap(fd, size, prot=mmap.PROT_READ) as m:
                        m[:: 4096]
                    os._exit(0)
                except BaseException as e:
                    print(f"mmap {path}: {e!r}", file=sys.stderr)
                    os._exit(3)
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGBUS: st["interrupted"] += 1
            elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 4: st["interrupted"] += 1
            elif status != 0: err(f"mmap {path}: child status {status}")
            else: st["bytes"] += (size + 4095) // 4096
    except OSError as e:
        # A policy reload ends every descriptor opened under the old policy
        # (sluicefs(8): no view of the old policy is served after a reload):
        # EIO or ESTALE there is by design, counted apart and bounded below.
        if e.errno in (errno.EIO, errno.ESTALE): st["interrupted"] += 1
        else: err(f"read {path}: {e}")
    finally:
        os.close(fd)
json.dump(st, open(out, "w"))
EOF
t0=$(date +%s.%N)
rpids=()
for i in $(seq 1 "$READERS"); do
    "$PY" "$W/reader.py" "$MNT" "$DUR" "$i" "$W/reader.$i.json" &
    rpids+=($!)
done

# ---- meanwhile: reloads, new files, RSS samples ---------------------------------------------
rss_samples=()
reloads=0 published=0 tick=0
while kill -0 "${rpids[0]}" 2>/dev/null; do
    sleep 1
    tick=$((tick + 1))
    rss=$(awk '/^VmRSS/ {print $2}' /proc/$FS_PID/status 2>/dev/null)
    rss_samples+=("${rss:-0}")
    if [ $((tick % 3)) -eq 0 ]; then
        v=$([ $((reloads % 2)) -eq 0 ] && echo b || echo a)
        cp "$W/rules/policy-$v.yaml" "$W/rules/policy.yaml.new" && mv "$W/rules/policy.yaml.new" "$W/rules/policy.yaml"
        kill -HUP "$FS_PID" && reloads=$((reloads + 1))
    fi
    if [ $((tick % 2)) -eq 0 ]; then
        d=$W/outbox/new
        mkdir -p "$d"
        printf 'published at tick %d: contact new.hire%d@example.com, SSN 536-22-8451\n' "$tick" "$tick" >"$d/n$tick.txt"
        published=$((published + 1))
    fi
done
wait "${rpids[@]}"
t1=$(date +%s.%N)
peak=$(awk '/^VmHWM/ {print $2}' /proc/$FS_PID/status)
alive=yes; kill -0 "$FS_PID" 2>/dev/null || alive=no
arrived=$(ls "$W/vault/new" 2>/dev/null | wc -l)

# A SIGHUP sent in the last second may still be queued: let its reload land
# (a policy-load record) before unmounting, so every reload is counted.
for ((i = 0; i < 100; i++)); do
    [ "$(sqlite3 "$W/ledger.db" "SELECT count(*) FROM records WHERE event='policy-load'" 2>/dev/null || echo 0)" \
        -ge $((reloads + 1)) ] && break
    sleep 0.1
done

# ---- tally --------------------------------------------------------------------------------------
fusermount3 -u "$MNT"; wait "$FS_PID" 2>/dev/null; FS_PID=
read -r opens refused bytes errors interrupted <<<"$("$PY" - "$W" "$READERS" <<'EOF'
import json, sys
w, n = sys.argv[1], int(sys.argv[2])
t = {"opens": 0, "refused": 0, "bytes": 0, "errors": 0, "interrupted": 0}
for i in range(1, n + 1):
    s = json.load(open(f"{w}/reader.{i}.json"))
    for k in t: t[k] += s[k]
    for x in s["samples"]: print("error:", x, file=sys.stderr)
print(t["opens"], t["refused"], t["bytes"], t["errors"], t["interrupted"])
EOF
)"
served=$(sqlite3 "$W/ledger.db" "SELECT count(*) FROM records WHERE event='open-served' AND session='soak'")
refusals=$(sqlite3 "$W/ledger.db" "SELECT count(*) FROM records WHERE event='open-refused' AND session='soak'")
loads=$(sqlite3 "$W/ledger.db" "SELECT count(*) FROM records WHERE event='policy-load'")
verify=$("$SLUICE" ledger verify --ledger "$W/ledger.db" --key "$W/ledger.key" 2>&1); vrc=$?
secs=$("$PY" -c "print(max(0.001, $t1 - $t0))")
n=${#rss_samples[@]}
q() { [ "$n" -gt 0 ] && echo "${rss_samples[$(( ($1 * (n - 1)) / 4 ))]}" || echo 0; }

echo "soak: ${DUR}s, $READERS readers, cache_size=$CACHE, $reloads policy reloads, $published files published during the run ($arrived arrived)"
printf 'soak: %d opens (%.0f/s), %d refusals as expected, %.1f MB read (%.1f MB/s), errors: %d, reads ended by a reload: %d\n' \
    "$opens" "$("$PY" -c "print($opens / $secs)")" "$refused" "$("$PY" -c "print($bytes / 1e6)")" \
    "$("$PY" -c "print($bytes / 1e6 / $secs)")" "$errors" "$interrupted"
echo "soak: sluicefs RSS (KiB) at 0/25/50/75/100%: $(q 0) $(q 1) $(q 2) $(q 3) $(q 4); peak $peak (bound: cache_size + build_memory + 64 MiB = $RSS_BOUND_KIB); alive until unmount: $alive"
echo "soak: ledger: $served opens served and $refusals refused recorded for $opens + $refused reader opens; $loads policy loads; verify: $verify"
ok=1
[ "$errors" -eq 0 ] || { echo "soak: FAIL: $errors reader errors"; ok=0; }
# One descriptor per reader can be open across each reload, no more.
[ "$interrupted" -le $((reloads * READERS)) ] || { echo "soak: FAIL: $interrupted reads ended by $reloads reloads"; ok=0; }
[ "$alive" = yes ] || { echo "soak: FAIL: sluicefs died"; ok=0; }
# A sanitizer build (make sanitize) keeps freed memory in quarantine and
# shadow memory beside it: its RSS says nothing about the bound, so it is
# printed above but not checked.
if ldd "$SLUICEFS" 2>/dev/null | grep -q libasan; then
    echo "soak: RSS bound not checked (sanitizer build)"
elif [ "${peak:-0}" -gt "$RSS_BOUND_KIB" ]; then
    echo "soak: FAIL: peak RSS $peak KiB above $RSS_BOUND_KIB KiB"; ok=0
fi
[ "$served" -ge "$opens" ] || { echo "soak: FAIL: $((opens - served)) opens have no ledger record"; ok=0; }
[ "$refusals" -ge "$refused" ] || { echo "soak: FAIL: refusals missing from the ledger"; ok=0; }
[ $vrc -eq 0 ] || { echo "soak: FAIL: ledger verify"; ok=0; }
[ "$loads" -ge $((reloads + 1)) ] || { echo "soak: FAIL: $reloads reloads but $loads policy-load records"; ok=0; }
[ "$arrived" -ge 1 ] || [ "$published" -eq 0 ] || { echo "soak: FAIL: nothing published during the run arrived"; ok=0; }
[ $ok = 1 ] && echo "soak: PASS"
[ $ok = 1 ]
