#!/usr/bin/env bash
# tests/diode/t_watch.sh — `send --watch` follows the source tree and sends
# new and changed files once they settle; both sides record their decisions
# in the ledger (ingest-accepted / ingest-rejected).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/diode_lib.sh"
[ -x "$DIODE" ] || { echo "no $DIODE"; exit 77; }
cd "$T_TMP"
d_key key
d_key ledger.key
mkdir -p src/a
echo "first" > src/a/one.txt
ln -s one.txt src/a/link

"$DIODE" recv --from "fifo:$T_TMP/chan" --vault "$T_TMP/vault" --key key \
    --ledger "$T_TMP/recv.db" --ledger-key ledger.key 2>recv.err &
rpid=$!
t_at_exit "kill $rpid 2>/dev/null"
for _ in $(seq 50); do [ -p chan ] && break; sleep 0.1; done
"$DIODE" send --no-policy --watch --settle 0.3 --key key --report report.jsonl \
    --ledger "$T_TMP/send.db" --ledger-key ledger.key src --to "fifo:$T_TMP/chan" 2>send.err &
spid=$!
t_at_exit "kill $spid 2>/dev/null"

wait_for() { # FILE CONTENT: up to 15 s
    local i
    for i in $(seq 150); do
        [ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
check "watch: the initial tree is sent" wait_for vault/a/one.txt first
echo "second" > src/a/two.txt
check "watch: a new file is sent once it settles" wait_for vault/a/two.txt second
mkdir -p src/b/c
echo "deep" > src/b/c/three.txt
check "watch: a file in a new directory is sent" wait_for vault/b/c/three.txt deep
echo "first, edited" > src/a/one.txt
check "watch: a changed file replaces the old version" wait_for vault/a/one.txt "first, edited"
echo "moved in" > tmp-outside.txt && mv tmp-outside.txt src/a/moved.txt
check "watch: a file moved into the tree is sent" wait_for vault/a/moved.txt "moved in"
check "watch: the symlink never crosses" test ! -e vault/a/link
kill -TERM $spid; wait $spid; rc=$?
check_eq "watch: the sender exits 1 on SIGTERM (the symlink was refused)" 1 $rc
sleep 0.5
check "the receiver keeps running after the sender leaves" kill -0 $rpid
kill -TERM $rpid; wait $rpid

# ---- the ledgers
if command -v sqlite3 >/dev/null; then
    q() { sqlite3 "$1" "$2"; }
    check_eq "sender ledger: the refused symlink" "ingest-rejected|a/link|symbolic link" \
        "$(q send.db "SELECT event, path, reason FROM records WHERE event='ingest-rejected'")"
    check_eq "sender ledger: one.txt accepted twice (two versions)" 2 \
        "$(q send.db "SELECT count(*) FROM records WHERE event='ingest-accepted' AND path='a/one.txt'")"
    sha=$(sha256sum src/b/c/three.txt | cut -c1-64)
    check_eq "sender ledger: SHA-256 of the source" "$sha" \
        "$(q send.db "SELECT source_sha256 FROM records WHERE path='b/c/three.txt'")"
    check_eq "receiver ledger: the same file published with the same hash" "ingest-accepted|accepted|$sha" \
        "$(q recv.db "SELECT event, decision, served_sha256 FROM records WHERE path='b/c/three.txt'")"
    check_eq "receiver ledger: 5 publications" 5 \
        "$(q recv.db "SELECT count(*) FROM records WHERE event='ingest-accepted'")"
else
    skip "ledger rows" "no sqlite3"
fi
check_eq "report: one line per decision" 6 "$(wc -l < report.jsonl)"
t_done
