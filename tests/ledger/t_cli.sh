#!/usr/bin/env bash
# tests/ledger/t_cli.sh — `sluice ledger` as an auditor uses it: verify a
# clean ledger, catch tampering done with the plain sqlite3 shell, detect a
# truncated tail against a checkpoint, query in every format, archive, and
# answer the audit questions from the SQL views.
source "$(dirname "$0")/../lib.sh"
TOOL=$BUILD/tests/ledger/ledger_tool
[ -x "$SLUICE" ] && [ -x "$TOOL" ] || { echo "sluice or ledger_tool not built"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3 shell"; exit 77; }

cd "$T_TMP"
"$SLUICE" keygen k >/dev/null 2>&1 || { umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > k; echo >> k; }
chmod 600 k
check "ledger_tool fills a ledger" "$TOOL" fill l.db k 40   # mount + policy-load + 40 records

out=$("$SLUICE" ledger verify --ledger l.db --key k); rc=$?
check_eq "verify clean: exit 0" 0 "$rc"
check_contains "verify clean: counts records" "$out" "ok: 42 records (seq 1..42)"

# --- tampering with the plain sqlite3 shell, on copies ---
tamper() { # name sql -> prints verify's stderr, returns its exit code
    cp l.db "t-$1.db"; sqlite3 "t-$1.db" "$2"
    "$SLUICE" ledger verify --ledger "t-$1.db" --key k 2>&1 >/dev/null
}
err=$(tamper edit "DROP TRIGGER records_no_update; UPDATE records SET path='innocent.txt' WHERE seq=10"); rc=$?
check_eq "edited field: exit 1" 1 "$rc"
check_contains "edited field: names record 10" "$err" "verification failed at record 10: record 10: content does not match its hash"
err=$(tamper del "DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq=20"); rc=$?
check_eq "deleted record: exit 1" 1 "$rc"
check_contains "deleted record: names record 20" "$err" "record 20 is missing"
err=$(tamper swap "DROP TRIGGER records_no_update; UPDATE records SET seq=-1 WHERE seq=30; UPDATE records SET seq=30 WHERE seq=31; UPDATE records SET seq=31 WHERE seq=-1"); rc=$?
check_eq "reordered records: exit 1" 1 "$rc"
check_contains "reordered records: names record 30" "$err" "at record 30"
err=$(tamper ins "INSERT INTO records SELECT 43, time, event, pid, uid, gid, process, exe, cgroup, session, 'planted', source_sha256, served_sha256, size_served, mime, policy_hash, hits, decision, reason, extractor, request_id, hash, hash, hmac FROM records WHERE seq=42"); rc=$?
check_eq "inserted record: exit 1" 1 "$rc"
check_contains "inserted record: names record 43" "$err" "at record 43"
check_contains "append-only trigger stops casual edits" \
    "$(sqlite3 l.db "UPDATE records SET path='x' WHERE seq=1" 2>&1)" "append-only"

# --- checkpoint and truncated tail ---
"$SLUICE" ledger checkpoint --ledger l.db --key k > cp.txt; rc=$?
check_eq "checkpoint: exit 0" 0 "$rc"
check_contains "checkpoint: names the head" "$(cat cp.txt)" "sluice-ledger-checkpoint v1 seq=42 hash="
cp l.db cut.db
sqlite3 cut.db "DROP TRIGGER records_no_delete; DELETE FROM records WHERE seq > 38"
check "cut tail alone still verifies (no checkpoint)" "$SLUICE" ledger verify --ledger cut.db --key k --quiet
err=$("$SLUICE" ledger verify --ledger cut.db --key k --checkpoint cp.txt 2>&1); rc=$?
check_eq "cut tail with checkpoint: exit 1" 1 "$rc"
check_contains "cut tail with checkpoint: truncated tail" "$err" "truncated tail"
sed 's/seq=42/seq=41/' cp.txt > forged.txt
err=$("$SLUICE" ledger verify --ledger l.db --key k --checkpoint forged.txt 2>&1); rc=$?
check_eq "forged checkpoint: exit 1" 1 "$rc"
check_contains "forged checkpoint: names the line" "$err" "forged.txt:1: checkpoint HMAC does not match"
"$SLUICE" keygen k2 >/dev/null 2>&1 || { head -c 32 /dev/urandom > k2; }
chmod 600 k2
err=$("$SLUICE" ledger verify --ledger l.db --key k2 2>&1); rc=$?
check_eq "other key: exit 1" 1 "$rc"
check_contains "other key: HMAC at record 1" "$err" "record 1: HMAC does not match"

# --- query ---
out=$("$SLUICE" ledger query --ledger l.db --rule us-ssn --format csv)
check_eq "query --rule: CSV header + 8 rows" 9 "$(wc -l <<<"$out")"
check_contains "query --rule: CSV has the path" "$out" ",hr/salaries.csv,"
out=$("$SLUICE" ledger query --ledger l.db --decision refused --format json)
check_eq "query --decision refused: 8 JSON lines" 8 "$(wc -l <<<"$out")"
if command -v python3 >/dev/null; then
    check_eq "query JSON lines parse, hits are arrays" "ok" \
        "$(python3 -c 'import json,sys
rows=[json.loads(l) for l in sys.stdin]
print("ok" if all(isinstance(r["hits"],list) and r["decision"]=="refused" for r in rows) else "bad")' <<<"$out")"
fi
out=$("$SLUICE" ledger query --ledger l.db --path 'code/*' --process grep --since 1h)
check_contains "query table: grep read code/main.c" "$out" "code/main.c"
check_lacks "query table: only code/*" "$out" "hr/salaries.csv"
check_eq "query --until in the past: header only" 1 "$("$SLUICE" ledger query --ledger l.db --until 2000-01-01 | wc -l)"
check_eq "query --uid 1001 --limit 3" 4 "$("$SLUICE" ledger query --ledger l.db --uid 1001 --limit 3 | wc -l)"
err=$("$SLUICE" ledger query --ledger l.db --since yesterday 2>&1); rc=$?
check_eq "bad --since: exit 2" 2 "$rc"
check_contains "bad --since: says why" "$err" "sluice: ledger query: --since yesterday: not a time"
err=$("$SLUICE" ledger query --ledger missing.db 2>&1); rc=$?
check_eq "missing ledger: exit 2" 2 "$rc"
check_contains "missing ledger: named" "$err" "sluice: missing.db:"

# --- views from the plain sqlite3 shell ---
check_eq "view rule_hits: who read us-ssn hits" "cat
grep
python3" "$(sqlite3 l.db "SELECT DISTINCT process FROM rule_hits WHERE rule='us-ssn' ORDER BY 1")"
check_eq "view refusals" 8 "$(sqlite3 l.db "SELECT count(*) FROM refusals")"
check_eq "view bytes_per_process_day" "$(sqlite3 l.db "SELECT sum(size_served) FROM records WHERE process='cat' AND event='open-served'")" \
    "$(sqlite3 l.db "SELECT sum(bytes) FROM bytes_per_process_day WHERE process='cat'")"
sum=$(sqlite3 l.db "SELECT source_sha256 FROM records WHERE path='hr/salaries.csv' LIMIT 1")
check_eq "view accesses_by_checksum" 8 "$(sqlite3 l.db "SELECT count(*) FROM accesses_by_checksum WHERE sha256='$sum'")"

# --- the shipped audit examples run as documented ---
out=$(sqlite3 -readonly -box l.db < "$ROOT/examples/audit/queries.sql" 2>&1); rc=$?
check_eq "examples/audit/queries.sql: exit 0" 0 "$rc"
check_contains "examples/audit/queries.sql: answers the rule question" "$out" "/usr/bin/python3.11"
check_lacks "examples/audit/queries.sql: no SQL error" "$out" "Error"
if command -v man >/dev/null; then
    page=$(MANWIDTH=80 man -l "$ROOT/man/sluice-ledger.5" 2>/dev/null)
    check_contains "man page renders" "$page" "SLUICE-LEDGER(5)"
    check_contains "man page documents the views" "$page" "accesses_by_checksum"
    check_eq "man page: no roff warnings" "" "$(man --warnings -l "$ROOT/man/sluice-ledger.5" 2>&1 >/dev/null)"
fi

# --- archive ---
"$SLUICE" ledger checkpoint --ledger l.db --key k > cp2.txt
out=$("$SLUICE" ledger archive --ledger l.db --key k --before 31); rc=$?
check_eq "archive: exit 0" 0 "$rc"
check_contains "archive: 30 records" "$out" "archived 30 records"
check "archive: segment file beside the db" test -s l.db.seg-000000000001-000000000030.zst
check_eq "archive: 12 records left" 12 "$(sqlite3 l.db 'SELECT count(*) FROM records')"
out=$("$SLUICE" ledger verify --ledger l.db --key k --checkpoint cp.txt --checkpoint cp2.txt); rc=$?
check_eq "verify after archive: exit 0" 0 "$rc"
check_contains "verify after archive: all 42 checked, 1 segment" "$out" "42 records (seq 1..42), 1 archived segments, 2 checkpoints"
check_eq "archived segment readable with zstd + sqlite3" "hr/salaries.csv" \
    "$(zstd -q -d -c l.db.seg-000000000001-000000000030.zst > seg.db && sqlite3 seg.db 'SELECT path FROM records WHERE seq=4')"
out=$("$SLUICE" ledger query --ledger l.db --rule us-ssn --format csv | cut -d, -f1 | tr '\n' ' ')
check_eq "query without --archived: live records only" "seq 34 39 " "$out"
out=$("$SLUICE" ledger query --ledger l.db --rule us-ssn --archived --format csv | cut -d, -f1 | tr '\n' ' ')
check_eq "query --archived: segments too, in seq order" "seq 4 9 14 19 24 29 34 39 " "$out"
check_eq "query --archived --limit spans segment and db" 4 \
    "$("$SLUICE" ledger query --ledger l.db --archived --limit 4 --format json | wc -l)"
out=$("$SLUICE" ledger archive --ledger l.db --key k --older-than 0); rc=$?
check_contains "archive --older-than 0 keeps the head" "$out" "archived 11 records"
check "verify after second archive" "$SLUICE" ledger verify --ledger l.db --key k --checkpoint cp2.txt --quiet
err=$("$SLUICE" ledger archive --ledger l.db --key k 2>&1); rc=$?
check_eq "archive without --before/--older-than: exit 2" 2 "$rc"

# --- help and usage ---
for sub in verify checkpoint query archive; do
    check "ledger $sub --help" "$SLUICE" ledger $sub --help
done
check_contains "ledger --help lists commands" "$("$SLUICE" ledger --help)" "checkpoint"
"$SLUICE" ledger frobnicate >/dev/null 2>&1; rc=$?
check_eq "unknown subcommand: exit 2" 2 "$rc"
t_done
