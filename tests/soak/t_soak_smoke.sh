#!/usr/bin/env bash
# tests/soak/t_soak_smoke.sh — the soak (tests/soak/soak.sh, `make soak`) for
# a few seconds inside `make check`: readers, reloads and diode publishing at
# once, every open recorded, no error, the ledger verifies.
source "$(dirname "$0")/../lib.sh"
out=$(SOAK_READERS=8 bash "$ROOT/tests/soak/soak.sh" 12 2>&1); rc=$?
[ $rc -eq 77 ] && { echo "$out"; exit 77; }
echo "$out" | grep '^soak:' | sed 's/^/# /'
check_eq "soak smoke passes" 0 "$rc"
check_contains "no reader errors" "$out" "errors: 0,"
check_contains "the ledger verifies" "$out" "verify: "
check_lacks "nothing failed" "$out" "FAIL"
t_done
