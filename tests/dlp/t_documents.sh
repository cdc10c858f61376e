#!/usr/bin/env bash
# tests/dlp/t_documents.sh — documents through the engine (`sluice scan` with
# a policy whose documents: section extracts them): real PDF, DOCX, XLSX,
# PPTX, ODT, ODS, RTF, HTML and e-mail files made by tests/extract/mkdocs.py.
# Every planted sensitive value must be masked, the text must really have
# been extracted (markers present), no container byte is ever printed, and
# hostile files (encrypted, image-only, bombs, corrupt) are refused.
source "$(dirname "$0")/../lib.sh"
[ -x "$BUILD/sluice-extract" ] || { echo "sluice-extract not built"; exit 77; }
/usr/bin/python3 -c "import docx, openpyxl, odf, reportlab" 2>/dev/null || { echo "python3-docx/openpyxl/odf/reportlab missing"; exit 77; }
export SLUICE_EXTRACT=$BUILD/sluice-extract
D=$T_TMP/docs
/usr/bin/python3 "$ROOT/tests/extract/mkdocs.py" "$D" >/dev/null 2>&1 || { not_ok "documents generated"; t_done; }

install -m 0600 "$ROOT/tests/rules/test.key" "$T_TMP/hash.key"
cat >"$T_TMP/policy.yaml" <<POL
policy: documents-test
version: 1
packs: [$ROOT/rules/pii.yaml, $ROOT/rules/secrets.yaml]
types:
  allow: ['text/plain', 'text/csv']
  deny: ['application/zip', 'application/x-*executable']
documents:
  extract: ['application/pdf', 'application/vnd.openxmlformats-officedocument.*',
            'application/vnd.oasis.opendocument.*', 'text/rtf', 'text/html', 'message/rfc822']
  metadata: mask
key-file: $T_TMP/hash.key
POL

scan() { "$SLUICE" scan --policy "$T_TMP/policy.yaml" "$@"; }
sensitive=(219-09-9999 078-05-1120 536-22-1234 '4111 1111 1111 1111' 4111111111111111
           'DE89 3704 0044 0532 0130 00' jane.roe@example.com footer.person@example.com)
for f in contract.docx payroll.xlsx deck.pptx letter.odt customers.ods contract.pdf memo.rtf page.html mail.eml; do
    out=$(scan "$D/$f" 2>"$T_TMP/err"); rc=$?
    check "$f: served as text (exit 0 or 1)" test $rc -le 1
    for v in "${sensitive[@]}"; do
        if [[ $out == *"$v"* ]]; then not_ok "$f: $v is masked"; fi
    done
    ok "$f: no planted sensitive value in the view"
    check_lacks "$f: no zip or PDF bytes" "$out" "PK"$'\x03\x04'
    check_lacks "$f: no PDF syntax" "$out" "%PDF-"
    # the markers planted as always-extracted text show extraction happened
    marker=$(awk -F'\t' -v f="$f" '$1 == f && $2 == "always" && $3 ~ /^[A-Z]+-[0-9]+$|^[A-Z][A-Z0-9]*-[0-9]+$/ {print $3; exit}' "$D/expect.tsv")
    if [ -n "$marker" ]; then check_contains "$f: extracted text present ($marker)" "$out" "$marker"; fi
done

# Hostile files: refused, named, exit 2, nothing printed.
while IFS=$'\t' read -r f word; do
    out=$(scan "$D/$f" 2>"$T_TMP/err"); rc=$?
    check_eq "$f: refused (exit 2)" 2 "$rc"
    check_eq "$f: nothing printed" "" "$out"
    check_contains "$f: the error names the file" "$(cat "$T_TMP/err")" "$f"
done <"$D/hostile.tsv"

# Metadata dropped on request: a property value disappears, the body stays.
sed -i 's/metadata: mask/metadata: drop/' "$T_TMP/policy.yaml"
out=$(scan "$D/contract.docx" 2>/dev/null)
check_lacks "metadata: drop leaves document properties out" "$out" "ACME-TITLE-7731"
check_contains "metadata: drop keeps the body" "$out" "INS-778899"
t_done
