#!/usr/bin/env bash
# tests/rules/t_packs.sh — the shipped rule packs and the default policy lint
# clean, every rule's embedded examples pass, every rule carries at least 3
# must-match and 3 must-not-match examples; broken copies (bad regex, unknown
# key, missing id, failing example, bad policy) are refused with
# `file:line:col: message` and the documented exit code. Never edits rules/.
. "$(dirname "$0")/../lib.sh"
[ -x "$SLUICE" ] || { echo "sluice not built: $SLUICE"; exit 77; }

RULES=$ROOT/rules
PACKS=("$RULES/pii.yaml" "$RULES/secrets.yaml")
POLICY=$RULES/default-policy.yaml
install -m 0600 "$ROOT/tests/rules/test.key" "$T_TMP/test.key"
export SLUICE_KEY_FILE=$T_TMP/test.key

# ---- the shipped files --------------------------------------------------------
for f in "${PACKS[@]}" "$POLICY"; do
    n=${f#"$ROOT"/}
    out=$("$SLUICE" rules lint "$f" 2>&1); rc=$?
    check_eq "$n: lint exits 0" 0 "$rc"
    check_contains "$n: lint says ok" "$out" ": ok ("
    out=$("$SLUICE" rules test "$f" 2>&1); rc=$?
    check_eq "$n: every embedded example passes (exit 0)" 0 "$rc"
    check_contains "$n: test summary has no failure" "$out" " 0 failed"
    if grep -q '^FAIL' <<<"$out"; then not_ok "$n: no FAIL line"; grep '^FAIL\|^  ' <<<"$out" | sed 's/^/#   /'
    else ok "$n: no FAIL line"; fi
done

# Counts per rule, read from the YAML as written (one `- id:` per rule, list
# items of must-match / must-not-match at six spaces), cross-checked with the
# engine's own count of rules.
count_examples() { # file -> "id mm mnm" per rule
    awk '
        /^  - id: /          { if (id != "") print id, mm, mn; id = $3; mm = 0; mn = 0; sec = ""; next }
        /^    must-match:/     { sec = "mm"; next }
        /^    must-not-match:/ { sec = "mn"; next }
        /^    [a-z]/           { sec = ""; next }
        /^      - /            { if (sec == "mm") mm++; else if (sec == "mn") mn++ }
        END                  { if (id != "") print id, mm, mn }' "$1"
}
total=0
for f in "${PACKS[@]}"; do
    n=${f#"$ROOT"/}
    short=0 rules=0
    while read -r id mm mn; do
        rules=$((rules + 1))
        if [ "$mm" -lt 3 ] || [ "$mn" -lt 3 ]; then
            short=$((short + 1)); echo "#   $id: $mm must-match, $mn must-not-match"
        fi
        for key in description pattern tags action; do
            awk -v id="$id" -v key="$key" '
                /^  - id: / { inrule = ($3 == id) }
                inrule && $1 == key":" { found = 1 }
                END { exit !found }' "$f" || { short=$((short + 1)); echo "#   $id: no $key"; }
        done
    done < <(count_examples "$f")
    check_eq "$n: every rule has id, description, pattern, tags, action and >= 3+3 examples" 0 "$short"
    engine=$("$SLUICE" rules test "$f" 2>&1 | grep -c '^PASS ')
    check_eq "$n: the engine ran every rule's examples" "$rules" "$engine"
    total=$((total + rules))
done
secrets=$(count_examples "$RULES/secrets.yaml" | wc -l)
check "secrets pack has at least 20 credential formats ($secrets)" test "$secrets" -ge 20
out=$("$SLUICE" rules lint "$POLICY" 2>&1)
check_contains "the policy loads every rule of both packs" "$out" "($total rules"

# Rule ids the policy's actions name exist in the packs.
for id in $(awk '/^  rules:/{r=1;next} r && /^    [a-z0-9-]+:/{sub(":","",$1); print $1} /^[a-z]/{r=0}' "$POLICY"); do
    check "policy action for rule '$id' names a shipped rule" grep -q "^  - id: $id\$" "${PACKS[@]}"
done

# ---- broken copies ----------------------------------------------------------------
# expect_error NAME FILE LINE PATTERN [CMD]: exit 2 and "FILE:LINE:COL: ..." on stderr
expect_error() {
    local name=$1 file=$2 line=$3 pat=$4 cmd=${5:-lint} err rc
    err=$("$SLUICE" rules "$cmd" "$file" 2>&1 >/dev/null); rc=$?
    check_eq "$name: rules $cmd exits 2" 2 "$rc"
    if [[ $err =~ ^"$file":([0-9]+):([0-9]+):\ (.*)$ ]] && [ "${BASH_REMATCH[1]}" = "$line" ] \
        && [ "${BASH_REMATCH[2]}" -ge 1 ] && grep -qE -- "$pat" <<<"${BASH_REMATCH[3]}"; then
        ok "$name: error is FILE:$line:COL: message"
    else
        not_ok "$name: error is FILE:$line:COL: message"
        printf '#   got: %q\n' "$err"
    fi
}

# Bad regex: an unbalanced parenthesis in the first rule's pattern; PCRE2's
# own message, at the pattern's line.
bad=$T_TMP/bad-regex.yaml
line=$(grep -n "^    pattern: '" "$RULES/pii.yaml" | head -n1 | cut -d: -f1)
sed "${line}s/pattern: '/pattern: '(/" "$RULES/pii.yaml" >"$bad"
expect_error "bad regex" "$bad" "$line" "missing closing parenthesis"
expect_error "bad regex" "$bad" "$line" "missing closing parenthesis" test

# Unknown key: a misspelt validator.
bad=$T_TMP/unknown-key.yaml
line=$(grep -n "^    validator: " "$RULES/pii.yaml" | head -n1 | cut -d: -f1)
sed "${line}s/validator:/validatr:/" "$RULES/pii.yaml" >"$bad"
expect_error "unknown key" "$bad" "$line" "validatr"

# Missing id: the second rule loses its id line.
bad=$T_TMP/missing-id.yaml
line=$(grep -n "^  - id: " "$RULES/secrets.yaml" | sed -n 2p | cut -d: -f1)
sed "${line}d; $((line + 1))s/^    description:/  - description:/" "$RULES/secrets.yaml" >"$bad"
expect_error "missing id" "$bad" "$line" "id"

# A must-match span that is off by one byte: lint passes, test fails with 1.
bad=$T_TMP/wrong-span.yaml
sed "s/'SSN: \[\[123-45-6789\]\] on file'/'SSN: 1[[23-45-6789]] on file'/" "$RULES/pii.yaml" >"$bad"
check "wrong span: the copy differs from the pack" test "$(cmp -s "$bad" "$RULES/pii.yaml"; echo $?)" = 1
"$SLUICE" rules lint "$bad" >/dev/null 2>&1
check_eq "wrong span: lint still exits 0" 0 $?
out=$("$SLUICE" rules test "$bad" 2>&1); rc=$?
check_eq "wrong span: rules test exits 1" 1 "$rc"
check_contains "wrong span: the failing rule is named" "$out" "FAIL us-ssn"
check_lacks "wrong span: other rules still pass" "$out" "FAIL email"

# A policy naming a pack that does not exist, and one with an unknown key.
mkdir -p "$T_TMP/pol"
cp "${PACKS[@]}" "$T_TMP/pol/"
sed 's/^packs: \[pii.yaml, secrets.yaml\]/packs: [pii.yaml, secret.yaml]/' "$POLICY" >"$T_TMP/pol/missing-pack.yaml"
# (The engine names the missing file but not the policy line that names it.)
err=$("$SLUICE" rules lint "$T_TMP/pol/missing-pack.yaml" 2>&1 >/dev/null); rc=$?
check_eq "policy with a missing pack: rules lint exits 2" 2 "$rc"
check_contains "policy with a missing pack: the error names the pack" "$err" "secret.yaml"
sed 's/^limits:/limit:/' "$POLICY" >"$T_TMP/pol/unknown-key.yaml"
line=$(grep -n '^limit:' "$T_TMP/pol/unknown-key.yaml" | cut -d: -f1)
expect_error "policy with an unknown key" "$T_TMP/pol/unknown-key.yaml" "$line" "limit"

# The key file: a key others can read is refused, so is a missing one.
install -m 0644 "$ROOT/tests/rules/test.key" "$T_TMP/open.key"
SLUICE_KEY_FILE=$T_TMP/open.key "$SLUICE" rules lint "$POLICY" >/dev/null 2>&1
check_eq "policy with a group/world-readable key file exits 2" 2 $?
SLUICE_KEY_FILE=$T_TMP/none.key "$SLUICE" rules lint "$POLICY" >/dev/null 2>&1
check_eq "policy with a missing key file exits 2" 2 $?

t_done
