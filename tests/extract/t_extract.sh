#!/usr/bin/env bash
# tests/extract/t_extract.sh — real documents through sluice-extract, the way
# a user runs it: libmagic picks the type, the confined helper extracts.
#
# mkdocs.py writes DOCX/XLSX/PPTX/ODT/ODS/PDF/RTF/HTML/EML files with planted
# PII and secrets in body text, tables, headers, footers, comments, tracked
# changes, properties, sheet names, speaker notes and mail headers, and
# hostile files. Every planted value must come out (so DLP can mask it), the
# metadata ones must be gone with --drop-metadata, scripts never; every
# hostile file is refused with its reason, and the helper leaves no process.
. "$(dirname "$0")/../lib.sh"
X=$BUILD/sluice-extract
PY=/usr/bin/python3 # Debian's: python3-docx, -openpyxl, -odf, -reportlab live there
[ -x "$X" ] || { echo "no $X"; exit 77; }
$PY -c 'import docx, openpyxl, odf, reportlab' 2>/dev/null || { echo "python3-docx/openpyxl/odf/reportlab missing"; exit 77; }
command -v qpdf >/dev/null || { echo "qpdf missing"; exit 77; }

D=$T_TMP/docs
check "fixtures written" $PY "$ROOT/tests/extract/mkdocs.py" "$D"

# Which extractor libmagic's type leads to, for each format.
declare -A want=([contract.docx]=docx/libxml2 [payroll.xlsx]=xlsx/libxml2 [deck.pptx]=pptx/libxml2
    [letter.odt]=odt/libxml2 [customers.ods]=ods/libxml2 [contract.pdf]=pdf/poppler [memo.rtf]=rtf
    [page.html]=html/libxml2 [mail.eml]=eml/gmime)
for f in "${!want[@]}"; do
    "$X" --show-extractor "$D/$f" >"$D/$f.keep" 2>"$D/$f.err"
    check_eq "$f: extracted" 0 $?
    check_contains "$f: extractor ${want[$f]}" "$(cat "$D/$f.err")" "extractor: ${want[$f]}"
    "$X" --drop-metadata "$D/$f" >"$D/$f.drop" 2>/dev/null
    check_eq "$f: extracted with --drop-metadata" 0 $?
done

while IFS=$'\t' read -r f where value; do
    keep=$(cat "$D/$f.keep") drop=$(cat "$D/$f.drop")
    case $where in
    always)
        check_contains "$f: body value '$value'" "$keep" "$value"
        check_contains "$f: body value '$value' kept by --drop-metadata" "$drop" "$value" ;;
    meta)
        check_contains "$f: metadata '$value' extracted" "$keep" "$value"
        check_lacks "$f: metadata '$value' dropped" "$drop" "$value" ;;
    never)
        check_lacks "$f: '$value' never extracted" "$keep" "$value" ;;
    esac
done <"$D/expect.tsv"

# The output is text: valid UTF-8, no NUL or other control bytes.
for f in "${!want[@]}"; do
    check "$f: output is valid UTF-8 text" bash -c "iconv -f UTF-8 -t UTF-8 '$D/$f.keep' >/dev/null && ! LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]' '$D/$f.keep'"
done

# libmagic calls a hand-made DOCX only "application/zip": still a document.
check_eq "zip-typed DOCX recognized" "application/zip" "$(file -b --mime-type "$D/nested.docx")"

# Hostile files: refused with the reason, exit 1, nothing on stdout.
while IFS=$'\t' read -r f word; do
    out=$("$X" --max-expanded 50M "$D/$f" 2>"$D/$f.err")
    rc=$?
    check_eq "$f: refused" 1 "$rc"
    check_eq "$f: nothing served" "" "$out"
    check_contains "$f: reason names '$word'" "$(cat "$D/$f.err")" "$word"
done <"$D/hostile.tsv"

# The bomb is refused by that limit: above its size the zip limit passes it
# (and libxml2's own text-node limit refuses the 200 MiB paragraph instead).
out=$("$X" --max-expanded 300M "$D/bomb.docx" 2>&1 | head -c 300)
check_lacks "bomb.docx: under a larger limit the zip limit passes it" "$out" "expands past limit"

# ODS repeat counts are not expanded: a million rows x 16384 columns come
# out as the one cell they repeat.
out=$("$X" "$D/repeat.ods")
check_eq "repeat.ods: extracted" 0 $?
check_contains "repeat.ods: the repeated cell" "$out" "REPEATED-CELL"
check "repeat.ods: not expanded (under 1 KB)" test "${#out}" -lt 1024

# Output limit: the text of payroll.xlsx is ~400 bytes.
"$X" --max-output 64 "$D/payroll.xlsx" >/dev/null 2>"$D/limit.err"
check_eq "max-output: refused" 1 $?
check_contains "max-output: reason" "$(cat "$D/limit.err")" "output limit"

# Memory limit: a 40 MB HTML page needs several times that as a tree.
$PY - "$D/big.html" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("<html><body>")
    for i in range(400000):
        f.write(f"<div><span>row {i} of a large table</span></div>\n")
    f.write("</body></html>")
EOF
# Wall-clock timeout: parsing it takes libxml2 far longer than 20 ms.
"$X" --timeout-ms 20 "$D/big.html" >/dev/null 2>"$D/t.err"
check_eq "timeout: refused" 1 $?
check_contains "timeout: reason" "$(cat "$D/t.err")" "timeout"
if ldd "$X" | grep -q libasan; then
    # ASan reserves terabytes of address space: no RLIMIT_AS under it
    skip "memory limit: refused" "sanitizer build"
else
    "$X" --max-memory 200M "$D/big.html" >/dev/null 2>"$D/m.err"
    check_eq "memory limit: refused" 1 $?
    check_contains "memory limit: reason" "$(cat "$D/m.err")" "memory limit"
fi
"$X" --max-memory 2G "$D/big.html" >"$D/big.txt" 2>/dev/null
check_eq "memory limit: a larger limit extracts it" 0 $?
check_contains "memory limit: last row there" "$(tail -c 100 "$D/big.txt")" "row 399999 of a large table"

# Not a document: refused before any helper runs.
printf '\x7fELF\x02\x01\x01binary' >"$D/prog.bin"
"$X" "$D/prog.bin" >/dev/null 2>"$D/b.err"
check_eq "binary: refused" 1 $?
check_contains "binary: reason" "$(cat "$D/b.err")" "not a document type"

# The confinement holds: exec, fork, sockets, writing, signals, memory.
out=$("$X" --check-sandbox)
check_eq "sandbox check passes" 0 $?
for what in execve fork socket "open for writing" "open read-write" unlink mkdir kill "core dumps"; do
    check_contains "sandbox denies $what" "$out" "$what: denied"
done
check_contains "sandbox still reads" "$out" "open read-only: allowed"

# A PDF protected by an owner password only opens for anyone: it extracts.
qpdf --encrypt "" owner-only 256 -- "$D/contract.pdf" "$D/owner.pdf"
out=$("$X" "$D/owner.pdf" 2>&1)
check_contains "owner-password-only PDF extracted" "$out" "078-05-1120"

# No helper is left behind by any of the above.
check_eq "no sluice-extract process left" "" "$(pgrep -f 'sluice-extract --child' || true)"
t_done
