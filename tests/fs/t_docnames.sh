#!/usr/bin/env bash
# tests/fs/t_docnames.sh — documents appear under their text's name: with a
# policy that extracts them, contract.pdf is listed and opened as
# contract.pdf.txt (documents.suffix), the original name does not exist in
# the mount, the text is masked, and the ledger names the source file and its
# extractor. A policy that extracts nothing leaves names alone.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/fs/fs_lib.sh"
[ -x "$BUILD/sluice-extract" ] || { echo "sluice-extract not built"; exit 77; }
/usr/bin/python3 -c "import docx, reportlab" 2>/dev/null || { echo "python3-docx/reportlab missing"; exit 77; }
export SLUICE_EXTRACT=$BUILD/sluice-extract
/usr/bin/python3 "$ROOT/tests/extract/mkdocs.py" "$T_TMP/docs" >/dev/null 2>&1 || { not_ok "documents generated"; t_done; }
cp "$T_TMP/docs/contract.pdf" "$T_TMP/docs/contract.docx" "$FS_SRC/"
printf 'plain ssn 536-22-8451\n' >"$FS_SRC/notes.txt"
cat >>"$FS_POLICY" <<'POL'
documents:
  extract: ['application/pdf', 'application/vnd.openxmlformats-officedocument.*']
  suffix: .txt
POL
fs_mount || { not_ok "mounted"; t_done; }
names=$(ls "$FS_MNT" | tr '\n' ' ')
check_eq "documents are listed under their text's name" "contract.docx.txt contract.pdf.txt notes.txt " "$names"
check_fails "the document's own name does not exist" test -e "$FS_MNT/contract.pdf"
out=$(cat "$FS_MNT/contract.docx.txt")
check_contains "the text is served" "$out" "Service agreement"
check_lacks "and masked" "$out" "219-09-9999"
check_eq "stat size equals the bytes served" "$(stat -c %s "$FS_MNT/contract.pdf.txt")" "$(cat "$FS_MNT/contract.pdf.txt" | wc -c)"
row=$(fs_sql "SELECT path || '|' || extractor FROM records WHERE event='open-served' AND path='contract.docx' LIMIT 1")
check_eq "the ledger names the source and its extractor" "contract.docx|docx/libxml2" "$row"
check_eq "plain text keeps its name" "plain ssn [REDACTED:us-ssn]" "$(cat "$FS_MNT/notes.txt")"
fs_umount

# Without a documents section, names are the source's (and a PDF is refused).
fs_write_policy
fs_mount || { not_ok "mounted again"; t_done; }
check "without documents: the original name is listed" test -e "$FS_MNT/contract.pdf"
check_fails "and no .txt name exists" test -e "$FS_MNT/contract.pdf.txt"
check_fails "and the PDF's bytes are refused" cat "$FS_MNT/contract.pdf"
t_done
