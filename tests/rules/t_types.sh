#!/usr/bin/env bash
# tests/rules/t_types.sh — the default policy's content types, as libmagic
# sees real files: text documents of every common kind are served unchanged
# (when they hold nothing to mask), and executables, archives, compressed,
# encrypted and unnamed binary data are denied (exit 2, nothing on stdout),
# whatever their file name says.
. "$(dirname "$0")/../lib.sh"
[ -x "$SLUICE" ] || { echo "sluice not built: $SLUICE"; exit 77; }

POLICY=$ROOT/rules/default-policy.yaml
install -m 0600 "$ROOT/tests/rules/test.key" "$T_TMP/test.key"
export SLUICE_KEY_FILE=$T_TMP/test.key
D=$T_TMP/docs
mkdir -p "$D"

# ---- served: clean text of many kinds comes back byte for byte -------------
printf 'Quarterly report\n\nRevenue grew 4.2%% to EUR 1.3m in Q2 2024.\n' >"$D/report.txt"
printf 'sku,name,qty,price\nA-100,Widget,12,3.50\nB-200,Gadget,3,19.99\n' >"$D/stock.csv"
printf 'sku\tname\tqty\nA-100\tWidget\t12\n' >"$D/stock.tsv"
printf '{"service": "billing", "replicas": 3, "tags": ["a", "b"]}\n' >"$D/deploy.json"
printf '{"event": "start", "n": 1}\n{"event": "stop", "n": 2}\n' >"$D/events.ndjson"
printf 'service:\n  name: billing\n  replicas: 3\n  tags: [a, b]\n' >"$D/values.yaml"
printf '[server]\nport = 8080\nname = "billing"\n' >"$D/config.toml"
printf '<?xml version="1.0"?>\n<order id="7"><item sku="A-100" qty="2"/></order>\n' >"$D/order.xml"
printf '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>\n' >"$D/logo.svg"
printf '# Runbook\n\n1. Check the *queue* depth.\n2. Restart the worker.\n' >"$D/runbook.md"
printf '#!/bin/sh\nset -e\necho "deploying $1"\n' >"$D/deploy.sh"
printf '#!/usr/bin/env python3\nimport sys\n\nprint(sum(int(a) for a in sys.argv[1:]))\n' >"$D/sum.py"
printf 'function add(a, b) { return a + b; }\nmodule.exports = add;\n' >"$D/add.js"
printf '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n' >"$D/hi.c"
printf 'SELECT sku, qty FROM stock WHERE qty < 5;\n' >"$D/low.sql"
printf 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n' >"$D/fix.diff"
printf 'Subject: status\nDate: Mon, 3 Jun 2024 10:00:00 +0200\nMessage-ID: <abc@mx1>\n\nAll green.\n' >"$D/status.eml"
printf 'BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:Review\nEND:VEVENT\nEND:VCALENDAR\n' >"$D/review.ics"
printf '1\n00:00:01,000 --> 00:00:02,000\nHello.\n' >"$D/talk.srt"
printf 'caf\xe9 cr\xe8me br\xfbl\xe9e\n' >"$D/menu-latin1.txt"
printf '\xef\xbb\xbf{"title": "BOM first"}\n' >"$D/bom.json"
printf 'Grüße aus Köln, 3 Äpfel\r\n' | iconv -f UTF-8 -t UTF-16 >"$D/notes-utf16-bom.txt"
printf 'Plain words in UTF-16LE without a byte order mark.\r\n' | iconv -f UTF-8 -t UTF-16LE >"$D/notes-utf16le.txt"
: >"$D/empty.txt"

for f in "$D"/*; do
    n=$(basename "$f")
    "$SLUICE" scan --policy "$POLICY" "$f" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    check_eq "served: $n exits 0" 0 "$rc"
    if cmp -s "$f" "$T_TMP/out"; then ok "served: $n unchanged"; else
        not_ok "served: $n unchanged"; sed 's/^/#   /' "$T_TMP/err"; fi
done

# ---- documents: the default policy serves HTML as its extracted text ----------
X=$T_TMP/documents
mkdir -p "$X"
printf '<!DOCTYPE html>\n<html><head><title>Docs</title></head><body><p>Hello</p></body></html>\n' >"$X/index.html"
out=$("$SLUICE" scan --policy "$POLICY" "$X/index.html" 2>"$T_TMP/err"); rc=$?
check_eq "document: index.html exits 0" 0 "$rc"
check_contains "document: index.html is served as its text" "$out" "Hello"
check_lacks "document: index.html is served without its markup" "$out" "<p>"

# ---- denied: binaries, whatever they are called ------------------------------
B=$T_TMP/bin
mkdir -p "$B"
cp "$SLUICE" "$B/notes.txt"                     # an ELF executable posing as text
cp /bin/sh "$B/readme.md"
(cd "$D" && tar cf "$B/docs.tar" report.txt stock.csv)
gzip -c "$D/report.txt" >"$B/report.txt.gz"
python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED); z.write(sys.argv[2], "report.txt"); z.close()' \
    "$B/docs.csv" "$D/report.txt"               # a zip archive named .csv
head -c 8192 /dev/urandom >"$B/random.txt"
printf 'Salted__' >"$B/secret.txt"; head -c 64 /dev/urandom >>"$B/secret.txt"   # openssl enc output
printf -- '-----BEGIN PGP MESSAGE-----\n\nhQEMA5x7Qm0CXXyHAQf+Kx1y\n=abcd\n-----END PGP MESSAGE-----\n' >"$B/mail.asc"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.execute("insert into t values (?)", ("ana@example.com",)); c.commit()' \
    "$B/users.txt"                              # a database named .txt
printf 'text with a\0NUL byte in it\n' >"$B/nul.txt"

for f in "$B"/*; do
    n=$(basename "$f")
    "$SLUICE" scan --policy "$POLICY" "$f" >"$T_TMP/out" 2>"$T_TMP/err"
    rc=$?
    check_eq "denied: $n exits 2" 2 "$rc"
    check_eq "denied: $n prints nothing" 0 "$(wc -c <"$T_TMP/out")"
    check_contains "denied: $n says why" "$(cat "$T_TMP/err")" "denied"
done

# Several files in one call: the denied one does not stop the others, and
# the exit code is the worst (2).
"$SLUICE" scan --policy "$POLICY" "$D/report.txt" "$B/notes.txt" "$D/stock.csv" >"$T_TMP/out" 2>/dev/null
rc=$?
check_eq "mixed call exits 2" 2 "$rc"
check_eq "mixed call serves the text files in order" "$(cat "$D/report.txt" "$D/stock.csv")" "$(cat "$T_TMP/out")"

t_done
