#!/usr/bin/env bash
# tests/hardening/t_confine.sh — each confined process refuses what its
# confinement forbids (issue 8): sluicefs, sluice-diode send and recv, and a
# document-extraction child.
#
# Each process has a test-only hook (SLUICE_TEST_PROBE=PATH, see
# fs/sandbox.c and diode/sandbox.c; sluice-extract --check-sandbox) that makes
# the same attempts twice, just before confining itself and right after, and
# logs each outcome. Every check asserts both: the attempt worked before
# (so the check can fail) and was refused after (EACCES from Landlock, EPERM
# from the seccomp allowlist, or death by SIGSYS for a diode direction
# reversal). Then the confined daemon is shown to still do its job.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/fs/fs_lib.sh"
SSN=536-22-8451

# probe_outcome LOG PHASE ATTEMPT -> "outcome err" of that probe line
probe_outcome() {
    grep -a "msg=\"confinement probe\" phase=$2 attempt=$3 " "$1" | tail -n1 |
        sed -n 's/.* outcome=\([a-z]*\) err="\([^"]*\)".*/\1 \2/p'
}
# check_probe NAME LOG ATTEMPT EXPECTED-AFTER: allowed before, EXPECTED after
check_probe() {
    check_eq "$1: works before confinement" "allowed none" "$(probe_outcome "$2" before "$3")"
    check_eq "$1: refused once confined" "$4" "$(probe_outcome "$2" after "$3")"
}

# ---- sluicefs ----------------------------------------------------------------------------
# The ledger in a directory of its own: the daemon's only writable place, so
# the probe's target next to SOURCE is outside it.
mkdir -p "$T_TMP/ledger"
FS_DB=$T_TMP/ledger/ledger.db
printf 'ssn %s in a text file\n' "$SSN" >"$FS_SRC/note.txt"
/usr/bin/python3 - "$FS_SRC/memo.docx" "$SSN" <<'EOF'
import sys, docx
d = docx.Document(); d.add_paragraph("Employee SSN " + sys.argv[2]); d.save(sys.argv[1])
EOF
cat >>"$FS_POLICY" <<'EOF'
documents:
  extract: ['application/vnd.openxmlformats-officedocument.*']
EOF
export SLUICE_EXTRACT=$BUILD/sluice-extract
probe=$T_TMP/next-to-source.probe
export SLUICE_TEST_PROBE=$probe
fs_mount || { not_ok "sluicefs mounted with the probe"; t_done; }
unset SLUICE_TEST_PROBE
check_probe "sluicefs: create a file next to SOURCE (Landlock)" "$FS_LOG" create-outside \
    "refused Permission denied"
check_probe "sluicefs: open an IPv4 socket (seccomp allowlist)" "$FS_LOG" socket-inet \
    "refused Operation not permitted"
check_probe "sluicefs: run a program other than sluice-extract (Landlock)" "$FS_LOG" exec-other \
    "refused Permission denied"
check "sluicefs: the probe left nothing behind" test ! -e "$probe"
check_eq "sluicefs: under a seccomp filter" "2" "$(awk '/^Seccomp:/{print $2}' /proc/$FS_PID/status)"
check_contains "sluicefs: the allowlist is logged" "$(cat "$FS_LOG")" 'msg="seccomp allowlist installed"'
# Confined, it still serves: text masked, a document through the extraction
# helper (which it may still execute), a policy reload, a clean unmount.
check_eq "sluicefs confined: text served masked" "ssn [REDACTED:us-ssn] in a text file" \
    "$(cat "$FS_MNT/note.txt")"
check_contains "sluicefs confined: a document served as masked text" \
    "$(cat "$FS_MNT/memo.docx.txt" 2>&1)" "Employee SSN [REDACTED:us-ssn]"
kill -HUP "$FS_PID"
for ((i = 0; i < 50; i++)); do grep -q 'msg="policy reloaded"' "$FS_LOG" && break; sleep 0.1; done
check_contains "sluicefs confined: SIGHUP reloads the policy" "$(cat "$FS_LOG")" 'msg="policy reloaded"'
fs_umount
check_eq "sluicefs confined: the unmount is in the ledger" "unmounted|clean" \
    "$(fs_sql "select decision || '|' || reason from records where event='unmount' order by seq desc limit 1")"
check_fails "sluicefs confined: no mount left" fs_is_mounted

# no_sandbox (debugging only) really turns the filter off: the Seccomp line
# above is the filter's doing.
: >"$FS_LOG"
fs_mount -o no_sandbox || { not_ok "sluicefs mounted with no_sandbox"; t_done; }
check_eq "sluicefs no_sandbox: no seccomp filter" "0" "$(awk '/^Seccomp:/{print $2}' /proc/$FS_PID/status)"
fs_umount

t_done
