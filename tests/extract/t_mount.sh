#!/usr/bin/env bash
# tests/extract/t_mount.sh — documents through a real sluicefs mount with a
# policy that extracts them: what a reader gets is the masked text (no
# planted SSN, card number or e-mail address comes out as it was planted),
# the original bytes never; hostile documents are refused and the ledger
# says why and which extractor tried.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fs/fs_lib.sh"
PY=/usr/bin/python3
[ -x "$BUILD/sluice-extract" ] || { echo "no sluice-extract"; exit 77; }
$PY -c 'import docx, openpyxl, odf, reportlab' 2>/dev/null || { echo "python3-docx/openpyxl/odf/reportlab missing"; exit 77; }
command -v qpdf >/dev/null || { echo "qpdf missing"; exit 77; }

D=$T_TMP/docs
$PY "$ROOT/tests/extract/mkdocs.py" "$D" || { not_ok "fixtures"; t_done; }
docs="contract.docx payroll.xlsx deck.pptx letter.odt customers.ods contract.pdf memo.rtf mail.eml"
hostile="encrypted.pdf scan.pdf bomb.docx truncated.docx laughs.docx"
for f in $docs $hostile; do cp "$D/$f" "$FS_SRC/"; done

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T_TMP/hash.key"; chmod 600 "$T_TMP/hash.key"
cat >"$FS_POLICY" <<EOF
policy: extract-mount-test
version: 1
packs: [$ROOT/rules/pii.yaml, $ROOT/rules/secrets.yaml]
types:
  allow: ['text/*', 'inode/x-empty']
documents:
  extract: ['application/pdf', 'application/vnd.openxmlformats-officedocument.*',
            'application/vnd.oasis.opendocument.*', 'application/zip', 'text/rtf', 'message/rfc822']
  metadata: mask
  max-expanded: 50M
key-file: $T_TMP/hash.key
actions:
  tags:
    pci: {type: mask, char: '*', keep-last: 4, keep-separators: true}
    secret: {type: replace}
  rules:
    email: {type: hash, label: email, length: 8}
EOF
export SLUICE_EXTRACT=$BUILD/sluice-extract

fs_mount || { not_ok "mount"; t_done; }
ok "mount"

# The view of a document: NAME.txt when sluicefs presents documents with a
# suffix, else under its own name.
view() { if [ -e "$FS_MNT/$1.txt" ]; then echo "$FS_MNT/$1.txt"; else echo "$FS_MNT/$1"; fi; }
errno_of() { # path -> errno name of open()+read(), or OK
    $PY -c '
import errno, sys
try:
    open(sys.argv[1], "rb").read(); print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno))' "$1"
}

for f in $docs; do
    v=$(view "$f")
    out=$(cat "$v" 2>&1)
    check_eq "$f: readable through the mount" OK "$(errno_of "$v")"
    check_contains "$f: SSN masked" "$out" "[REDACTED:us-ssn]"
    for planted in 078-05-1120 219-09-9999 "4111 1111 1111 1111" 4111-1111-1111-1111 \
        jane.roe@example.com footer.person@example.com footer.odt@example.com; do
        check_lacks "$f: '$planted' not served" "$out" "$planted"
    done
    # never the container's bytes
    check_lacks "$f: no PDF or zip bytes" "$(head -c 8 "$v" | od -c)" "P   K 003 004"
    check_lacks "$f: no PDF header" "$(head -c 8 "$v")" "%PDF-"
done
# metadata is extracted and masked, not dropped, with metadata: mask
check_contains "docx: tracked deletion served masked" "$(cat "$(view contract.docx)")" "deleted-ssn [REDACTED:us-ssn]"
check_contains "docx: author served" "$(cat "$(view contract.docx)")" "Author Alice Metadata"
check_contains "eml: From served with its address masked" "$(cat "$(view mail.eml)")" "From: Olga Sender <<email:"
check_contains "xlsx: hidden sheet's card masked" "$(cat "$(view payroll.xlsx)")" "****-****-****-1111"
check "grep -r finds no planted SSN anywhere" bash -c "! grep -rqs 078-05-1120 '$FS_MNT'"

for f in $hostile; do
    v=$(view "$f")
    e=$(errno_of "$v")
    check_contains "$f: refused" "EACCES EPERM EIO" "$e"
    [ "$e" = OK ] && not_ok "$f: was served"
done
fs_umount
check_eq "ledger: encrypted.pdf refused, extractor and reason recorded" "refused|pdf/poppler|1" \
    "$(fs_sql "SELECT decision, extractor, instr(reason, 'encrypted') > 0 FROM records WHERE path LIKE 'encrypted.pdf%' ORDER BY seq DESC LIMIT 1")"
check_eq "ledger: scan.pdf refused for its missing text layer" "refused|1" \
    "$(fs_sql "SELECT decision, instr(reason, 'no text layer') > 0 FROM records WHERE path LIKE 'scan.pdf%' ORDER BY seq DESC LIMIT 1")"
check_eq "ledger: the bomb refused by the zip limit" "refused|1" \
    "$(fs_sql "SELECT decision, instr(reason, 'expands past limit') > 0 FROM records WHERE path LIKE 'bomb.docx%' ORDER BY seq DESC LIMIT 1")"
check_eq "ledger: a served document names its extractor and both checksums" \
    "pdf/poppler|$(sha "$D/contract.pdf")|1" \
    "$(fs_sql "SELECT extractor, source_sha256, served_sha256 IS NOT NULL AND served_sha256 != source_sha256 FROM records WHERE path LIKE 'contract.pdf%' AND decision = 'served' ORDER BY seq DESC LIMIT 1")"
t_done
