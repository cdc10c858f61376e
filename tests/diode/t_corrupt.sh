#!/usr/bin/env bash
# tests/diode/t_corrupt.sh — hostile and damaged input: bit flips,
# truncation (an interrupted transfer), a forged HMAC, paths with .. or
# through a symlink, a receiver that starts late. Nothing partial or
# unverified may appear in the vault, and a long-running receiver keeps
# running through all of it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/diode_lib.sh"
[ -x "$DIODE" ] || { echo "no $DIODE"; exit 77; }
cd "$T_TMP"
d_key key
d_key other.key
d_tree src 400
nsrc=$(find src -type f | wc -l)
# One pass without FEC, and two passes with FEC, captured to files.
"$DIODE" send --no-policy --key key src --to fd:3 3>plain.bin 2>/dev/null
"$DIODE" send --no-policy --key key --fec 16:4 --repeat 1 src --to fd:3 3>fec2.bin 2>/dev/null
recv() { # VAULT < stream ; prints the summary line
    "$DIODE" recv --from fd:0 --vault "$T_TMP/$1" --key key 2>&1 | grep 'recv: published'
    return "${PIPESTATUS[0]}"
}
flip() { # IN OUT N SEED: flip N random bytes
    python3 - "$1" "$2" "$3" "$4" <<'PY'
import random, sys
d = bytearray(open(sys.argv[1], 'rb').read()); r = random.Random(int(sys.argv[4]))
for _ in range(int(sys.argv[3])):
    i = r.randrange(len(d)); d[i] ^= 1 << r.randrange(8)
open(sys.argv[2], 'wb').write(d)
PY
}

# ---- interrupted transfer: the first half of the stream only
size=$(stat -c %s plain.bin)
head -c $((size / 2)) plain.bin > half.bin
out=$(recv v_half < half.bin); rc=$?
check_eq "interrupted: receiver exits 1 (files missing)" 1 $rc
n=$(d_nfiles v_half)
check "interrupted: some files were published" test "$n" -gt 0
check "interrupted: fewer than all" test "$n" -lt "$nsrc"
check "interrupted: every published file is whole and identical" d_vault_sound src v_half
check "interrupted: no staged leftovers" d_staging_empty "$T_TMP/v_half"
out=$(recv v_half < plain.bin); rc=$?
check_eq "resumed: the full stream completes the vault" 0 $rc
check "resumed: vault identical to the source" d_same src v_half
check_contains "resumed: files already there are not rewritten" "$out" "already present $n"

# ---- bit flips without FEC: damaged files are never published
flip plain.bin flipped.bin 40 1
recv v_flip < flipped.bin >/dev/null
check "bit flips: every published file is identical to its source" d_vault_sound src v_flip
check "bit flips: no staged leftovers" d_staging_empty "$T_TMP/v_flip"
# ---- bit flips with FEC: the erasure code repairs them
flip fec2.bin fecflip.bin 40 2
out=$(recv v_fecflip < fecflip.bin); rc=$?
check_eq "bit flips + FEC: receiver exits 0" 0 $rc
check "bit flips + FEC: the whole tree arrives intact" d_same src v_fecflip

# ---- a receiver that starts late sees only the end of pass 1 and pass 2
size2=$(stat -c %s fec2.bin)
tail -c $((size2 * 3 / 5)) fec2.bin > late.bin
out=$(recv v_late < late.bin); rc=$?
check_eq "late receiver: exits 0" 0 $rc
check "late receiver: the whole tree arrives (second pass)" d_same src v_late

# ---- a forged HMAC: a sender without the right key publishes nothing
"$DIODE" send --no-policy --key other.key src --to fd:3 3>forged.bin 2>/dev/null
out=$(recv v_forged < forged.bin)
check_eq "forged HMAC: nothing is published" 0 "$(d_nfiles v_forged)"
check_contains "forged HMAC: records are counted as rejected" "$out" "published 0 files"

# ---- signed entries with dangerous paths (diode_forge) never escape the vault
mkdir -p outside v_path
ln -s "$T_TMP/outside" v_path/ln
for p in "../outside/dotdot" "/$T_TMP/outside/abs" "a/../../outside/mid" "ln/through-link" ".sluice-x"; do
    "$FORGE" key "$p" "pwned" | "$DIODE" recv --from fd:0 --vault "$T_TMP/v_path" --key key 2>/dev/null
done
check_eq "hostile paths: nothing written outside the vault" "" "$(ls -A outside)"
check_eq "hostile paths: nothing but the pre-existing symlink in the vault" "ln" "$(ls -A v_path)"
"$FORGE" key "ok/fine.txt" "fine" | "$DIODE" recv --from fd:0 --vault "$T_TMP/v_path" --key key 2>/dev/null
check_eq "a forged-but-signed sane path is published (the tool works)" "fine" "$(cat v_path/ok/fine.txt)"

# ---- one long-running receiver on a fifo survives all of the above
"$DIODE" recv --from "fifo:$T_TMP/chan" --vault "$T_TMP/v_long" --key key 2>long.err &
rpid=$!
for _ in $(seq 50); do [ -p chan ] && break; sleep 0.1; done
for f in half.bin flipped.bin forged.bin fecflip.bin; do cat $f > chan; done
"$FORGE" key "../escape" "x" > chan
head -c 100000 /dev/urandom > chan
cat plain.bin > chan
sleep 1
check "long-running receiver: still running after damaged, forged and random input" kill -0 $rpid
check "long-running receiver: the vault is complete and intact" d_same src v_long
check "long-running receiver: no staged leftovers" d_staging_empty "$T_TMP/v_long"
check_eq "long-running receiver: it is under a seccomp filter" "2" "$(awk '/^Seccomp:/{print $2}' /proc/$rpid/status)"
kill -TERM $rpid; wait $rpid; rc=$?
check_eq "long-running receiver: exits 0 on SIGTERM when complete" 0 $rc
check_contains "long-running receiver: counted bad packets" "$(cat long.err)" "bad "
check_contains "long-running receiver: a sender restart is seen as a new session" "$(cat long.err)" "new sender session"
t_done
