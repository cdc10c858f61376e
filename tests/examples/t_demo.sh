#!/usr/bin/env bash
# tests/examples/t_demo.sh — `make demo` (examples/demo/run.sh) end to end:
# it succeeds, the model's view is masked, no planted secret reaches the
# model's side of the output, and nothing is left mounted or behind.
source "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] && [ -e /dev/fuse ] || { echo "needs root and /dev/fuse"; exit 77; }

out=$T_TMP/demo.out
before=$(ls -d /tmp/sluice-demo.* 2>/dev/null | wc -l)
SLUICE_BUILD=$BUILD bash "$ROOT/examples/demo/run.sh" >"$out" 2>&1
check_eq "demo exits 0" 0 "$?"
text=$(cat "$out")

# What the model printed, and the right-hand (/data) side of the comparison.
model=$(grep '\[model\]' "$out")
right=$(sed -n '/^== 6\./,/^== 7\./p' "$out" | awk -F'|' 'NF > 1 {print $2}')
check_contains "model has no network but loopback" "$model" "lo(DOWN) - no route out"
check_lacks "model sees no other interface" "$(grep 'network interfaces' "$out")" "eth0"
check_contains "the model sees masked files" "$model" "grep -rl REDACTED /data: ./config/deploy-key.pem"
check_contains "mmap works inside the model's namespace" "$model" "mmap of hr/employees-export.csv"
for secret in 536-22-8451 219-09-9999 'jane.roe@acme' 'Xq7!vR2#pLm9' AKIAZ7Q3WPLEK4ABCD27 \
              sk_live_51Hq ghp_R8x2 '4111 1111 1111 1111' 'GB82 WEST' 'correct-Horse'; do
    check_lacks "model side lacks $secret" "$model$right" "$secret"
    check_contains "original side still shows $secret (the comparison is real)" "$text" "$secret"
done
check_contains "the executable was refused at the diode" "$text" "tools/helper.txt  type application/"
check_contains "the ledger names the readers" "$text" "python3 "
check_contains "the ledger verifies" "$text" "ok: "
check_lacks "no stale mount" "$(cat /proc/mounts)" "sluice-demo"
after=$(ls -d /tmp/sluice-demo.* 2>/dev/null | wc -l)
check_eq "the demo cleaned up after itself" "$before" "$after"

# One side of the diode failing before it opens the fifo (a bad key, an
# unwritable vault, a busy ledger) must end the demo with the error, not
# leave the other side waiting on the fifo for ever: a build whose
# sluice-diode fails the side named in FAIL_SIDE at once.
fake=$T_TMP/fakebuild
mkdir -p "$fake"
for b in sluice sluicefs sluice-extract; do ln -s "$BUILD/$b" "$fake/$b"; done
printf '#!/bin/sh\n[ "$1" = "$FAIL_SIDE" ] && { echo "sluice-diode $1: injected failure" >&2; exit 2; }\nexec %s "$@"\n' \
    "$BUILD/sluice-diode" >"$fake/sluice-diode"
chmod +x "$fake/sluice-diode"
# the real sluice-diode (the wrapper execs it) of a failed demo, by its fifo
left='sluice-diode (send|recv) .*fifo:/tmp/sluice-demo\.'
t_at_exit "pkill -KILL -f '$left'"
for side in recv send; do
    FAIL_SIDE=$side SLUICE_BUILD=$fake timeout 120 bash "$ROOT/examples/demo/run.sh" >"$T_TMP/fail-$side.out" 2>&1
    check_eq "a $side side failing early ends the demo with an error (124: it hung)" 2 "$?"
    check_contains "the $side failure: the demo says the transfer failed" "$(cat "$T_TMP/fail-$side.out")" \
        "the diode transfer failed"
    check_fails "the $side failure: no sluice-diode is left running" pgrep -f "$left"
done
after=$(ls -d /tmp/sluice-demo.* 2>/dev/null | wc -l)
check_eq "the failed demos cleaned up after themselves" "$before" "$after"
t_done
