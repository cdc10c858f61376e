#!/usr/bin/env bash
# tests/rules/t_golden.sh — golden files for the default policy: each
# tests/rules/golden/NAME.in (an HR export, a contract, a config file with
# credentials, a log, source code, an e-mail, a service-account JSON, UTF-16
# text, text with invalid UTF-8 around findings) goes through `sluice scan
# --policy rules/default-policy.yaml` with the test key in tests/rules/test.key
# and must give NAME.out byte for byte. Every .out was reviewed by eye;
# planted.txt lists each sensitive value the inputs carry and none may
# survive in an output or a --report line, so regenerating the goldens
# (SLUICE_GOLDEN_UPDATE=1) cannot quietly keep a leak.
. "$(dirname "$0")/../lib.sh"
[ -x "$SLUICE" ] || { echo "sluice not built: $SLUICE"; exit 77; }

G=$ROOT/tests/rules/golden
POLICY=$ROOT/rules/default-policy.yaml
# git does not keep modes and the key loader refuses keys others can read.
install -m 0600 "$ROOT/tests/rules/test.key" "$T_TMP/test.key"
export SLUICE_KEY_FILE=$T_TMP/test.key

# as_utf8 FILE: the text of FILE in UTF-8 (UTF-16 with a BOM is decoded), so
# that planted values and report offsets can be compared on one encoding.
as_utf8() {
    case $(head -c 2 "$1" | od -An -tx1 | tr -d ' \n') in
        fffe | feff) iconv -f UTF-16 -t UTF-8 "$1" ;;
        *) cat "$1" ;;
    esac
}

# lacks_planted FILE: no line of planted.txt occurs in FILE (as UTF-8).
grep -v -e '^#' -e '^$' "$G/planted.txt" >"$T_TMP/planted.values"
lacks_planted() {
    as_utf8 "$1" >"$T_TMP/plain"
    local leaked
    leaked=$(LC_ALL=C grep -aoF -f "$T_TMP/planted.values" "$T_TMP/plain" | sort -u)
    [ -z "$leaked" ] && return 0
    printf '#   leaked: %s\n' "$leaked"
    return 1
}

# report_ok IN REPORT: every line is a JSON object with file, rule, offset,
# length, action; none holds the bytes it points at in the input.
report_ok() {
    as_utf8 "$1" >"$T_TMP/in8"
    python3 - "$T_TMP/in8" "$2" <<'EOF'
import json, sys
data = open(sys.argv[1], 'rb').read()
raw = open(sys.argv[2], 'rb').read()
bad = 0
lines = raw.splitlines()
if not lines:
    print('#   empty report'); bad = 1
for ln in lines:
    try:
        f = json.loads(ln)
    except ValueError:
        print('#   not JSON:', ln[:80]); bad = 1; continue
    if not all(k in f for k in ('file', 'rule', 'offset', 'length', 'action')):
        print('#   missing keys:', f); bad = 1; continue
    text = data[f['offset']:f['offset'] + f['length']]
    if len(text) != f['length'] or f['length'] == 0:
        print('#   span outside the input:', f); bad = 1; continue
    # Short spans (a 4-digit group) may occur by chance; secrets are longer.
    if len(text) >= 6 and text in raw:
        print('#   report holds the matched text of', f['rule']); bad = 1
sys.exit(bad)
EOF
}

n=0
for in in "$G"/*.in; do
    name=$(basename "$in" .in)
    n=$((n + 1))
    "$SLUICE" scan --policy "$POLICY" --report="$T_TMP/$name.report" "$in" >"$T_TMP/$name.out" 2>"$T_TMP/$name.err"
    rc=$?
    if [ "${SLUICE_GOLDEN_UPDATE:-}" = 1 ] && [ $rc -eq 1 ]; then
        cp "$T_TMP/$name.out" "$G/$name.out"
        echo "# updated $name.out: review it by eye before committing"
    fi
    check_eq "$name: exit 1 (findings masked)" 1 "$rc"
    if [ -f "$G/$name.out" ] && cmp -s "$G/$name.out" "$T_TMP/$name.out"; then
        ok "$name: output is the golden, byte for byte"
    else
        not_ok "$name: output is the golden, byte for byte"
        diff -u --text "$G/$name.out" "$T_TMP/$name.out" 2>&1 | head -n 40 | sed 's/^/#   /'
    fi
    check "$name: golden keeps no planted value" lacks_planted "$G/$name.out"
    check "$name: output keeps no planted value" lacks_planted "$T_TMP/$name.out"
    check "$name: report is JSON lines without the matched text" report_ok "$in" "$T_TMP/$name.report"
    check "$name: report keeps no planted value" lacks_planted "$T_TMP/$name.report"
done
check "there are golden inputs ($n)" test "$n" -ge 9

# Encodings are kept: the UTF-16 file stays UTF-16 (BOM first), the invalid
# UTF-8 bytes around findings pass through untouched.
check_eq "UTF-16 output keeps its BOM" "fffe" "$(head -c 2 "$T_TMP/notes-utf16.txt.out" | od -An -tx1 | tr -d ' \n')"
has_bytes() { LC_ALL=C grep -qF -- "$(printf "$2")" "$1"; }
check "invalid UTF-8 around a card stays, the card is masked" \
    has_bytes "$T_TMP/invalid-utf8.txt.out" '\xc3card:\xe9************1111\xff end'
check "invalid UTF-8 after an IBAN stays" \
    has_bytes "$T_TMP/invalid-utf8.txt.out" 'IBAN\xa0**** **** **** **** **30 00\xc3'
check "a token after a truncated UTF-8 sequence is masked" \
    has_bytes "$T_TMP/invalid-utf8.txt.out" 'token=\xf0\x9f\x98[REDACTED:github-token]\xed\xa0\x80'

# Hashing is keyed and deterministic: the same address gets the same
# pseudonym in two files, and another key gives other pseudonyms.
p1=$(grep -o '<email:[0-9a-f]*>' "$T_TMP/contract.txt.out" | tail -n2 | head -n1)
check_contains "same address, same pseudonym across files" "$(cat "$T_TMP/hr-export.csv.out")" "$p1"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T_TMP/other.key"; chmod 600 "$T_TMP/other.key"
SLUICE_KEY_FILE=$T_TMP/other.key "$SLUICE" scan --policy "$POLICY" "$G/contract.txt.in" >"$T_TMP/other.out" 2>/dev/null
check_lacks "another key gives another pseudonym" "$(cat "$T_TMP/other.out")" "$p1"
check_eq "another key changes only the pseudonyms" \
    "$(sed 's/<email:[0-9a-f]*>/<email>/g' "$T_TMP/contract.txt.out")" \
    "$(sed 's/<email:[0-9a-f]*>/<email>/g' "$T_TMP/other.out")"

# The report goes to stderr by default, and the sanitized text alone to stdout.
"$SLUICE" scan --policy "$POLICY" --report "$G/app.log.in" >"$T_TMP/so" 2>"$T_TMP/se"
check "report on stderr by default: stdout is the golden" cmp -s "$T_TMP/so" "$G/app.log.out"
check "report on stderr by default: stderr has JSON lines" grep -q '^{"file":' "$T_TMP/se"
check "report on stderr keeps no planted value" lacks_planted "$T_TMP/se"

t_done
