#!/usr/bin/env bash
# examples/demo/run.sh — the whole sluice chain on the built-in demo corpus
# (`make demo`, the README's first command). As root on Debian 12:
#
#   corpus --(sluice-diode send: type/size approval, one-way fifo)--> vault
#   vault  --(sluicefs: sanitized view, ledger record per open)--> mount
#   mount  --(bind-mounted as /data in a namespace with no network)--> "model"
#   ledger --(sluice ledger query / verify, sqlite3 views)--> auditor
#
# Everything lives in one temporary directory and is removed at the end; the
# mount is undone even when a step fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/examples/diode-pair.sh"
B=${SLUICE_BUILD:-$ROOT/build}
SLUICE=$B/sluice SLUICEFS=$B/sluicefs DIODE=$B/sluice-diode
POLICY=$ROOT/rules/default-policy.yaml
CORPUS=$ROOT/examples/demo/corpus

bold() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
die() { echo "sluice demo: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts and namespaces need it)"
[ -e /dev/fuse ] || die "/dev/fuse is missing (modprobe fuse)"
for b in "$SLUICE" "$SLUICEFS" "$DIODE"; do [ -x "$b" ] || die "$b is not built (run make)"; done

W=$(mktemp -d /tmp/sluice-demo.XXXXXX)
MNT=$W/mnt
FS_PID=
cleanup() {
    set +e
    if mountpoint -q "$MNT" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    fi
    [ -n "$FS_PID" ] && kill "$FS_PID" 2>/dev/null && wait "$FS_PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

bold "1. keys (each 0600, kept outside the sandbox)"
"$SLUICE" keygen "$W/hash.key"     # keyed pseudonyms (<email:...>)
"$SLUICE" keygen "$W/ledger.key"   # seals the ledger's records
"$SLUICE" keygen "$W/diode.key"    # authenticates the diode's manifest
export SLUICE_KEY_FILE=$W/hash.key
ls -l "$W"/*.key | awk '{print "   ", $1, $NF}'

bold "2. the corporate side: the demo corpus, plus an executable that must not cross"
mkdir -p "$W/outbox"
cp -r "$CORPUS"/. "$W/outbox/"
mkdir -p "$W/outbox/tools" && cp /bin/true "$W/outbox/tools/helper.txt"
(cd "$W/outbox" && find . -type f | sort | sed 's/^/    /')

bold "3. sluice-diode: one-way transfer into the vault (fifo channel; nothing flows back)"
mkfifo "$W/diode.fifo"
"$DIODE" recv --from "fifo:$W/diode.fifo" --vault "$W/vault" --key "$W/diode.key" --once \
    --ledger "$W/ledger.db" --ledger-key "$W/ledger.key" &
RECV=$!
"$DIODE" send --policy "$POLICY" --no-progress --report "$W/send-report.jsonl" \
    --ledger "$W/ledger.db" --ledger-key "$W/ledger.key" --key "$W/diode.key" \
    "$W/outbox" --to "fifo:$W/diode.fifo" &
SEND=$!
set +e
diode_wait_pair "$SEND" "$RECV" # whichever ends first: a failed side stops the other
set -e
echo "    sender exit $send_rc (1 = some files refused), receiver exit $recv_rc"
[ "$send_rc" -le 1 ] && [ "$recv_rc" -eq 0 ] || die "the diode transfer failed (its messages are above)"
echo "    sender's own record of each decision (nothing can come back to tell it):"
sed 's/^/    /' "$W/send-report.jsonl" | cut -c1-150
echo "    vault:"
(cd "$W/vault" && find . -type f | sort | sed 's/^/      /')

bold "4. sluicefs over the vault (policy $(basename "$POLICY"), session demo)"
mkdir -p "$MNT"
"$SLUICEFS" -f -o "policy=$POLICY,ledger=$W/ledger.db,ledger_key=$W/ledger.key,session=demo,log_level=warn" \
    "$W/vault" "$MNT" 2>"$W/sluicefs.log" &
FS_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { cat "$W/sluicefs.log"; die "sluicefs did not mount"; }
echo "    mounted at $MNT (pid $FS_PID)"

bold "5. the model: its own mount and network namespaces, the view bind-mounted at /data"
# /data exists only inside the model's mount namespace: a tmpfs over /mnt
# gives it a place to live without touching the host's root directory.
cat > "$W/model.sh" <<'MODEL'
set -e
mount --make-rprivate /
mount -t tmpfs -o size=1m sluice-demo /mnt
mkdir /mnt/data && mount --bind "$1" /mnt/data && mount --bind /mnt/data /mnt/data
echo "    [model] network interfaces: $(ip -brief link | awk '{print $1 "(" $2 ")"}' | tr '\n' ' ')- no route out"
cd /mnt/data
echo "    [model] ls -R /data:"; find . -type f | sort | sed 's/^/      /'
echo "    [model] grep -rl REDACTED /data: $(grep -rl REDACTED . | sort | tr '\n' ' ')"
python3 - <<'PY'
import mmap
with open("hr/employees-export.csv", "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print("    [model] mmap of hr/employees-export.csv:", len(m), "bytes, first row:",
          m[:m.find(b"\n", m.find(b"\n") + 1)].decode().splitlines()[1][:70])
PY
MODEL
unshare --mount --net --fork bash "$W/model.sh" "$MNT"

bold "6. what the model saw, next to the original (left: vault, right: /data)"
for f in hr/employees-export.csv config/production.env contracts/msa-acme-globex.txt; do
    echo "--- $f"
    diff --side-by-side --width=200 "$W/vault/$f" "$MNT/$f" | grep '|' | head -12 || true
done

bold "7. the auditor: every access is in the ledger"
"$SLUICE" ledger query --ledger "$W/ledger.db" --format table | cut -c1-160 | head -40
echo
echo "    Which processes read files that had hits of rule us-ssn? (SQL view, plain sqlite3)"
sqlite3 -header -column "$W/ledger.db" \
    "SELECT process, path, sum(count) AS hits, count(*) AS opens FROM rule_hits
      WHERE event = 'open-served' AND rule = 'us-ssn' GROUP BY process, path;" | sed 's/^/    /'
echo
echo "    All refusals:"
sqlite3 -header -column "$W/ledger.db" \
    "SELECT seq, event, process, path, reason FROM refusals ORDER BY seq;" | cut -c1-160 | sed 's/^/    /'
echo
"$SLUICE" ledger verify --ledger "$W/ledger.db" --key "$W/ledger.key" | sed 's/^/    /'

bold "8. unmount and clean up"
fusermount3 -u "$MNT"
wait "$FS_PID" 2>/dev/null || true
FS_PID=
echo "    unmounted; $W removed. Done."
