#!/usr/bin/env bash
# examples/legal-pipeline/run.sh — a legal team's document review through
# sluice, end to end, as root on this machine:
#
#   1. contracts in: gen-contracts.py writes six contracts (parties, IBANs,
#      signatories' e-mail addresses and phone numbers) into an outbox, next
#      to a tarball of scanned originals that must not cross;
#   2. sluice-diode sends the outbox one way (fifo) into a vault, refusing the
#      tarball by type, recording every decision in the ledger;
#   3. sluicefs serves the vault, session "legal-review";
#   4. the "review": a process with no network, in its own mount namespace,
#      sees the view as /data and greps clauses out of it as a model would;
#   5. the auditor asks the ledger which files were read, by whom, with which
#      rule hits, and verifies the chain.
#
# It never leaves anything behind: everything lives in one temporary
# directory, and the mount is undone on every exit path (trap).
# Environment: SLUICE_BUILD (default ./build), SLUICE_POLICY (default
# rules/default-policy.yaml).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/examples/diode-pair.sh"
B=${SLUICE_BUILD:-$ROOT/build}
SLUICE=$B/sluice SLUICEFS=$B/sluicefs DIODE=$B/sluice-diode
POLICY=${SLUICE_POLICY:-$ROOT/rules/default-policy.yaml}
SESSION=legal-review

say() { printf '\n== %s\n' "$*"; }
die() { echo "legal-pipeline: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts and namespaces need it)"
[ -e /dev/fuse ] || die "/dev/fuse: missing (modprobe fuse)"
for b in "$SLUICE" "$SLUICEFS" "$DIODE"; do [ -x "$b" ] || die "$b: not built (run make)"; done
for t in python3 sqlite3 unshare fusermount3 mountpoint; do
    command -v "$t" >/dev/null || die "$t: not installed"
done

W=$(mktemp -d /tmp/sluice-legal.XXXXXX)
MNT=$W/view
FS_PID= RECV_PID= SEND_PID=
cleanup() {
    set +e
    if mountpoint -q "$MNT" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    fi
    [ -n "$FS_PID" ] && kill "$FS_PID" 2>/dev/null && wait "$FS_PID" 2>/dev/null
    [ -n "$RECV_PID" ] && kill "$RECV_PID" 2>/dev/null && wait "$RECV_PID" 2>/dev/null
    [ -n "$SEND_PID" ] && kill "$SEND_PID" 2>/dev/null && wait "$SEND_PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "1. keys (0600; the review process never sees them)"
"$SLUICE" keygen "$W/hash.key"      # pseudonyms: <email:...>
"$SLUICE" keygen "$W/ledger.key"    # seals the ledger
"$SLUICE" keygen "$W/diode.key"     # authenticates the diode's manifest
export SLUICE_KEY_FILE=$W/hash.key

say "2. contracts in (the legal department's outbox)"
python3 "$HERE/gen-contracts.py" "$W/outbox"
mv "$W/outbox/planted.tsv" "$W/planted.tsv"   # the generator's answer key stays out of the outbox
mkdir -p "$W/outbox/scans"
tar -C "$W/outbox" -czf "$W/outbox/scans/originals-2024.tar.gz" contracts
(cd "$W/outbox" && find . -type f | sort | sed 's/^\.\//    /')
echo "    planted: $(cut -f1 "$W/planted.tsv" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')in $(cut -f3 "$W/planted.tsv" | sort -u | wc -l) contracts"

say "3. sluice-diode: outbox -> vault, one way"
mkfifo "$W/diode.fifo"
"$DIODE" recv --from "fifo:$W/diode.fifo" --vault "$W/vault" --key "$W/diode.key" --once \
    --ledger "$W/ledger.db" --ledger-key "$W/ledger.key" 2>"$W/recv.log" &
RECV_PID=$!
"$DIODE" send --policy "$POLICY" --no-progress --report "$W/send.jsonl" \
    --ledger "$W/ledger.db" --ledger-key "$W/ledger.key" --key "$W/diode.key" \
    "$W/outbox" --to "fifo:$W/diode.fifo" 2>"$W/send.log" &
SEND_PID=$!
set +e
diode_wait_pair "$SEND_PID" "$RECV_PID" # whichever ends first: a failed side stops the other
RECV_PID= SEND_PID=
set -e
echo "    sender exit $send_rc (1: some files refused), receiver exit $recv_rc"
[ "$send_rc" -le 1 ] && [ "$recv_rc" -eq 0 ] || { cat "$W/send.log" "$W/recv.log" >&2; die "diode transfer failed"; }
python3 - "$W/send.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"    {r['decision']:9} {r['path']:38} {r.get('mime') or '-':28} {r.get('reason') or ''}")
PY

say "4. sluicefs over the vault (session $SESSION)"
mkdir -p "$MNT"
"$SLUICEFS" -f -o "policy=$POLICY,ledger=$W/ledger.db,ledger_key=$W/ledger.key,session=$SESSION,log_level=warn" \
    "$W/vault" "$MNT" 2>"$W/sluicefs.log" &
FS_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { cat "$W/sluicefs.log" >&2; die "$MNT: sluicefs did not mount"; }
echo "    $W/vault served at $MNT"

say "5. the review: no network, the view at /data, clauses grepped out as a model would"
cat >"$W/review.sh" <<'REVIEW'
set -eu
mount --make-rprivate /
mount -t tmpfs -o size=1m sluice-legal /mnt
mkdir /mnt/data && mount --bind "$1" /mnt/data
cd /mnt/data
echo "-- network: $(ip -brief link 2>/dev/null | awk '{print $1}' | tr '\n' ' ')(no route out)"
echo "-- contracts under English law:"
grep -rl 'governed by the laws of England' contracts | sort | sed 's/^/     /'
echo "-- payment clauses:"
for f in contracts/*.txt; do
    echo "   $f"
    grep -A5 '^3\. PAYMENT' "$f" | sed -n '2,6p' | sed 's/^/     /'
done
echo "-- notice parties (who may be written to):"
grep -rh -A3 '^6\. NOTICES' contracts | grep -E ': .*, tel\. ' | sed 's/^ */     /' | sort -u
echo "-- summary:"
python3 - <<'PY'
import glob, re
for f in sorted(glob.glob("contracts/*.txt")):
    t = open(f, encoding="utf-8").read()
    title = t.splitlines()[0].title()
    law = re.search(r"governed by the laws of (.+?)\.", t).group(1)
    iban = re.search(r"IBAN: (.+)", t).group(1)
    print(f"     {f[10:]:28} {title[:30]:30} law: {law[:22]:22} IBAN {iban}")
PY
REVIEW
unshare --mount --net --fork bash "$W/review.sh" "$MNT" | tee "$W/review.out"

say "6. the auditor: what was read, by whom, with which rule hits"
echo "    the first served opens (sluice ledger query):"
"$SLUICE" ledger query --ledger "$W/ledger.db" --session "$SESSION" --event open-served \
    --format table --limit 6 | sed 's/^/    /'
echo
echo "    files read in session $SESSION, by process, with their rule hits:"
sqlite3 -header -column "$W/ledger.db" "
    WITH reads AS (SELECT path, group_concat(DISTINCT process) AS readers,
                          count(*) AS opens, max(seq) AS last
                     FROM records WHERE session = '$SESSION' AND event = 'open-served'
                    GROUP BY path)
    SELECT path, readers, opens,
           (SELECT group_concat(rule || '=' || count, ' ') FROM rule_hits
             WHERE rule_hits.seq = reads.last) AS rule_hits
      FROM reads ORDER BY path;" | sed 's/^/    /'
echo
echo "    ingest decisions (diode) and refusals:"
sqlite3 -header -column "$W/ledger.db" "
    SELECT event, path, coalesce(reason, '') AS reason FROM records
     WHERE event LIKE 'ingest-%' AND (event = 'ingest-rejected' OR path NOT LIKE 'contracts/%')
     UNION ALL
    SELECT event, path, reason FROM refusals WHERE session = '$SESSION';" | sed 's/^/    /'
echo
"$SLUICE" ledger verify --ledger "$W/ledger.db" --key "$W/ledger.key" | sed 's/^/    /'

say "7. unmount and clean up"
fusermount3 -u "$MNT"
wait "$FS_PID" 2>/dev/null || true
FS_PID=
echo "    unmounted; $W removed"
