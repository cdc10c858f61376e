# tests/lib.sh — helpers for integration tests (sourced).
# Each check prints a TAP-style line that tests/run counts.
set -u
ROOT=${SLUICE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD=${SLUICE_BUILD:-$ROOT/build}
SLUICE=$BUILD/sluice
SLUICEFS=$BUILD/sluicefs
DIODE=$BUILD/sluice-diode
T_FAILED=0

# A scratch directory removed at exit (after the test's own cleanup).
T_TMP=$(mktemp -d /tmp/sluice-test.XXXXXX)
t_cleanup_hooks=()
t_at_exit() { t_cleanup_hooks+=("$*"); }
t_exit() {
    local i
    for ((i = ${#t_cleanup_hooks[@]} - 1; i >= 0; i--)); do eval "${t_cleanup_hooks[$i]}" || true; done
    t_sanitizer_logs
    rm -rf "$T_TMP"
}
# Under `make sanitize` (tests/run exports SLUICE_SANITIZED=1) reports go to
# files that tests/run checks; a confined daemon (sluicefs under Landlock)
# cannot create them, and what it prints instead lands in its log, kept in
# T_TMP: any sanitizer line in a log there fails the test.
t_sanitizer_logs() {
    [ "${SLUICE_SANITIZED:-0}" = 1 ] || return 0
    local pat="ERROR: (AddressSanitizer|LeakSanitizer|Can't open file)|LeakSanitizer has encountered"
    pat+="|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error: "
    local f
    while IFS= read -r f; do
        not_ok "no sanitizer report in ${f#"$T_TMP"/}"
        grep -a -E -m 20 "$pat" "$f" | sed 's/^/#   /'
    done < <(grep -r -a -l -E "$pat" --include='*.log' --include='*.err' --include='*.out' "$T_TMP" 2>/dev/null)
}
trap t_exit EXIT

ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; T_FAILED=1; }
skip()   { echo "ok - $1 # SKIP ${2:-}"; }

# check NAME CMD... : passes when CMD exits 0
check() { local n=$1; shift; if "$@"; then ok "$n"; else not_ok "$n"; fi; }
# check_fails NAME CMD... : passes when CMD exits non-zero
check_fails() { local n=$1; shift; if "$@"; then not_ok "$n"; else ok "$n"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1"; printf '#   expected: %q\n#   actual:   %q\n' "$2" "$3"; fi
}
# check_contains NAME HAYSTACK NEEDLE / check_lacks NAME HAYSTACK NEEDLE
check_contains() { if [[ $2 == *"$3"* ]]; then ok "$1"; else not_ok "$1"; printf '#   missing: %q\n' "$3"; fi; }
check_lacks()    { if [[ $2 != *"$3"* ]]; then ok "$1"; else not_ok "$1"; printf '#   unexpected: %q\n' "$3"; fi; }

t_done() { exit $T_FAILED; }
