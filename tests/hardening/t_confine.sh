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
# the probe's target next to SOURCE is outside it. The policy too, naming a
# second pack in a third: the daemon may read those directories (a reload
# reads them again), not $T_TMP, where a pack outside waits.
mkdir -p "$T_TMP/ledger" "$T_TMP/etc" "$T_TMP/packs" "$T_TMP/elsewhere"
FS_DB=$T_TMP/ledger/ledger.db
FS_POLICY=$T_TMP/etc/policy.yaml
printf 'ssn %s in a text file\n' "$SSN" >"$FS_SRC/note.txt"
printf 'Project Nightjar, ssn %s\n' "$SSN" >"$FS_SRC/codename.txt"
/usr/bin/python3 - "$FS_SRC/memo.docx" "$SSN" <<'EOF'
import sys, docx
d = docx.Document(); d.add_paragraph("Employee SSN " + sys.argv[2]); d.save(sys.argv[1])
EOF
# codename_pack FILE LABEL: a pack masking project code names as LABEL,
# written beside and renamed over (a new file, as editors save)
codename_pack() {
    printf '%s\n' 'pack: confine-codename' 'version: 1' 'rules:' '  - id: codename' \
        '    description: project code names' \
        "    pattern: '\\bProject (?<secret>[A-Z][a-z]+)\\b'" \
        "    action: {type: replace, label: '$2'}" >"$1.new"
    mv "$1.new" "$1"
}
# policy_with PACK: the test policy naming PACK too, extracting documents
policy_with() {
    fs_write_policy "$1"
    printf "documents:\n  extract: ['application/vnd.openxmlformats-officedocument.*']\n" >>"$FS_POLICY"
}
# wait_count PATTERN N: bounded wait for the N-th log line matching PATTERN
wait_count() {
    local i
    for ((i = 0; i < 100; i++)); do [ "$(grep -c "$1" "$FS_LOG")" -ge "$2" ] && return 0; sleep 0.1; done
    return 1
}
codename_pack "$T_TMP/packs/codename.yaml" '[CODENAME]'
policy_with "$T_TMP/packs/codename.yaml"
export SLUICE_EXTRACT=$BUILD/sluice-extract
probe=$T_TMP/next-to-source.probe
export SLUICE_TEST_PROBE=$probe
fs_mount || { not_ok "sluicefs mounted with the probe"; t_done; }
unset SLUICE_TEST_PROBE
check_probe "sluicefs: create a file next to SOURCE (Landlock)" "$FS_LOG" create-outside \
    "refused Permission denied"
check_probe "sluicefs: read /etc/shadow (Landlock)" "$FS_LOG" read-outside \
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
check "sluicefs confined: SIGHUP reloads the policy" wait_count 'msg="policy reloaded"' 1
check_eq "sluicefs confined: the second pack masks" "Project [CODENAME], ssn [REDACTED:us-ssn]" \
    "$(cat "$FS_MNT/codename.txt")"
# A reload reads what the confinement set at mount allows: an edited pack
# (a new file) in a directory allowed then is read...
codename_pack "$T_TMP/packs/codename.yaml" '[PROJECT]'
kill -HUP "$FS_PID"
check "sluicefs confined: a reload after editing a pack" wait_count 'msg="policy reloaded"' 2
check_eq "sluicefs confined: the edited pack in force" "Project [PROJECT], ssn [REDACTED:us-ssn]" \
    "$(cat "$FS_MNT/codename.txt")"
# ...a pack anywhere else is refused by name, and the policy in force stays.
outside=$T_TMP/elsewhere/codename.yaml
codename_pack "$outside" '[ELSEWHERE]'
policy_with "$outside"
kill -HUP "$FS_PID"
check "sluicefs confined: a reload naming a pack outside is rejected" \
    wait_count 'msg="policy reload rejected, previous policy stays in force"' 1
check_contains "sluicefs confined: the rejection names the pack and why" "$(cat "$FS_LOG")" \
    "error=\"$outside: lies outside the confinement set at mount"
check_eq "sluicefs confined: the ledger records the rejection" "rejected|$outside" \
    "$(fs_sql "select decision || '|' || substr(reason, 1, ${#outside}) from records
               where event='policy-load' order by seq desc limit 1")"
check "sluicefs confined: still serving" kill -0 "$FS_PID"
check_eq "sluicefs confined: the previous policy still masks" \
    "Project [PROJECT], ssn [REDACTED:us-ssn]" "$(cat "$FS_MNT/codename.txt")"
check_eq "sluicefs confined: nothing more was reloaded" 2 "$(grep -c 'msg="policy reloaded"' "$FS_LOG")"
policy_with "$T_TMP/packs/codename.yaml"
fs_umount
check_eq "sluicefs confined: the unmount is in the ledger" "unmounted|clean" \
    "$(fs_sql "select decision || '|' || reason from records where event='unmount' order by seq desc limit 1")"
check_fails "sluicefs confined: no mount left" fs_is_mounted

# user=NAME: once set up, the daemon runs as that user, confined as above.
# The policy is the user's to read, the ledger's directory its to write, and
# SOURCE its own (sources are opened O_NOATIME, which needs the owner: as
# in a vault that a receiver running as the same --user fills).
if ! "$SLUICEFS" --help | grep -q 'user=NAME'; then
    not_ok "sluicefs --help lists user=NAME"
else
    chmod o+x "$T_TMP"
    chown nobody "$T_TMP/ledger"
    chown -R nobody "$FS_SRC"
    : >"$FS_LOG"
    fs_mount -o user=nobody || { not_ok "sluicefs mounted with user=nobody"; t_done; }
    check_eq "sluicefs user=nobody: runs as nobody" "$(id -u nobody)" \
        "$(awk '/^Uid:/{print $2}' /proc/$FS_PID/status)"
    check_eq "sluicefs user=nobody: no supplementary groups" "$(id -g nobody)" \
        "$(awk '/^Groups:/{print $2}' /proc/$FS_PID/status)"
    check_eq "sluicefs user=nobody: serves masked" "ssn [REDACTED:us-ssn] in a text file" \
        "$(cat "$FS_MNT/note.txt")"
    check_contains "sluicefs user=nobody: documents through the helper" \
        "$(cat "$FS_MNT/memo.docx.txt" 2>&1)" "Employee SSN [REDACTED:us-ssn]"
    check_eq "sluicefs user=nobody: confined too" 2 "$(awk '/^Seccomp:/{print $2}' /proc/$FS_PID/status)"
    fs_umount
    check_fails "sluicefs user=nobody: unmounted (by the helper, which kept root)" fs_is_mounted
    check_eq "sluicefs user=nobody: the unmount is in the ledger" "unmounted|clean" \
        "$(fs_sql "select decision || '|' || reason from records where event='unmount' order by seq desc limit 1")"
fi

# no_sandbox (debugging only) really turns the filter off: the Seccomp line
# above is the filter's doing, and the refused reload the confinement's:
# unconfined, the same reload reads the pack outside.
: >"$FS_LOG"
fs_mount -o no_sandbox || { not_ok "sluicefs mounted with no_sandbox"; t_done; }
check_eq "sluicefs no_sandbox: no seccomp filter" "0" "$(awk '/^Seccomp:/{print $2}' /proc/$FS_PID/status)"
policy_with "$outside"
kill -HUP "$FS_PID"
check "sluicefs no_sandbox: a reload naming the pack outside is applied" \
    wait_count 'msg="policy reloaded"' 1
check_eq "sluicefs no_sandbox: the pack outside masks" "Project [ELSEWHERE], ssn [REDACTED:us-ssn]" \
    "$(cat "$FS_MNT/codename.txt")"
fs_umount

# In the background (libfuse's daemonize moves to "/"), a policy named
# relative to where sluicefs was started is still the one it confines itself
# to and reloads.
policy_with "$T_TMP/packs/codename.yaml"
# The ledger and its key are named relative to that directory too.
(cd "$T_TMP/etc" && "$SLUICEFS" -o "policy=policy.yaml,ledger=$(realpath --relative-to=. "$FS_DB"),ledger_key=$(realpath --relative-to=. "$FS_KEY"),session=bg" \
    "$FS_SRC" "$FS_MNT")
check_eq "sluicefs in the background, relative policy and ledger: started" 0 $?
for ((i = 0; i < 100; i++)); do fs_is_mounted && stat "$FS_MNT/." >/dev/null 2>&1 && break; sleep 0.1; done
FS_PID=$(fs_sql "select pid from records where event='mount' order by seq desc limit 1")
check_eq "sluicefs in the background, relative policy: serves" \
    "Project [PROJECT], ssn [REDACTED:us-ssn]" "$(cat "$FS_MNT/codename.txt")"
check_eq "sluicefs in the background: confined" 2 "$(awk '/^Seccomp:/{print $2}' /proc/$FS_PID/status)"
codename_pack "$T_TMP/packs/codename.yaml" '[BACKGROUND]'
kill -HUP "$FS_PID"
for ((i = 0; i < 100; i++)); do
    [ "$(fs_sql "select count(*) from records where reason='SIGHUP reload' and pid=$FS_PID")" = 1 ] && break
    sleep 0.1
done
check_eq "sluicefs in the background, relative policy: a reload reads it again" \
    "Project [BACKGROUND], ssn [REDACTED:us-ssn]" "$(cat "$FS_MNT/codename.txt")"
fs_umount
check_fails "sluicefs in the background: unmounted" fs_is_mounted

# ---- sluice-diode send and recv ------------------------------------------------------------
# The probe ends with a reversal of the channel's direction, which the filter
# answers by killing the process (SIGSYS: exit status 128 + 31).
D=$T_TMP/diode
mkdir -p "$D/src/sub" "$D/vault" "$D/ledger"
(umask 077; openssl rand -hex 32 >"$D/key")
printf 'ssn %s\n' "$SSN" >"$D/src/sub/a.txt"
printf 'not beside SOURCE\n' >"$D/neighbour.txt"
port=$((20000 + RANDOM % 20000))
SLUICE_TEST_PROBE=$D/next-to-vault.probe timeout 20 "$DIODE" recv --from "udp:127.0.0.1:$port" \
    --vault "$D/vault" --key "$D/key" --idle-exit 5 2>"$D/recv-probe.log"
rrc=$?
if ! grep -q 'msg="confinement probe" phase=after' "$D/recv-probe.log"; then
    not_ok "sluice-diode recv confines itself (no probe after confinement: $(tail -n1 "$D/recv-probe.log"))"
else
    check_probe "recv: create a file beside the vault (Landlock)" "$D/recv-probe.log" create-outside \
        "refused Permission denied"
    check_probe "recv: read /etc/shadow (Landlock)" "$D/recv-probe.log" read-outside \
        "refused Permission denied"
    check_probe "recv: open an IPv4 socket (seccomp allowlist)" "$D/recv-probe.log" socket-inet \
        "refused Operation not permitted"
    check_probe "recv: run a program (seccomp allowlist)" "$D/recv-probe.log" exec-other \
        "refused Operation not permitted"
    check_eq "recv: a datagram on its channel works before confinement" "allowed none" \
        "$(probe_outcome "$D/recv-probe.log" before send-channel)"
    check_eq "recv: sending on its channel once confined kills it (SIGSYS)" 159 "$rrc"
    check_contains "recv: it was attempting to send when it died" \
        "$(tail -n1 "$D/recv-probe.log")" "phase=after attempt=send-channel outcome=attempting"
    check "recv: the probe left nothing behind" test ! -e "$D/next-to-vault.probe"

    SLUICE_TEST_PROBE=$D/next-to-source.probe timeout 20 "$DIODE" send --no-policy --key "$D/key" \
        "$D/src" --to "udp:127.0.0.1:$port" 2>"$D/send-probe.log"
    src=$?
    check_probe "send: create a file beside SOURCE_DIR (Landlock)" "$D/send-probe.log" \
        create-outside "refused Permission denied"
    check_probe "send: read /etc/shadow (Landlock)" "$D/send-probe.log" read-outside \
        "refused Permission denied"
    check_probe "send: open an IPv4 socket (seccomp allowlist)" "$D/send-probe.log" socket-inet \
        "refused Operation not permitted"
    check_probe "send: run a program other than sluice-extract (Landlock)" "$D/send-probe.log" \
        exec-other "refused Permission denied"
    check_contains "send: reading its channel works before confinement" \
        "$(probe_outcome "$D/send-probe.log" before read-channel)" "allowed"
    check_eq "send: reading its channel once confined kills it (SIGSYS)" 159 "$src"

    # Confined, both sides still do their job: a fifo (reopened by the
    # receiver when the sender goes), a policy that extracts documents (the
    # sender may still run the helper), a report and ledgers, and the
    # receiver running as an unprivileged user.
    /usr/bin/python3 - "$D/src/memo.docx" <<'EOF'
import sys, docx
d = docx.Document(); d.add_paragraph("quarterly memo"); d.save(sys.argv[1])
EOF
    sed "s#^packs: .*#packs: [$ROOT/tests/fs/pack.yaml]#" "$ROOT/tests/fs/policy.yaml" >"$D/policy.yaml"
    printf "documents:\n  extract: ['application/vnd.openxmlformats-officedocument.*']\n" >>"$D/policy.yaml"
    openssl rand -hex 32 >"$D/ledger/l.key"; chmod 600 "$D/ledger/l.key"
    # nobody reaches the vault, its staging directory and the fifo (which
    # the receiver opens again by path) and owns the first two
    mkdir -p "$D/.vault.sluice-staging"
    chown -R nobody "$D/vault" "$D/.vault.sluice-staging"
    chmod o+x "$T_TMP" "$D"
    mkfifo "$D/chan"
    "$DIODE" recv --from "fifo:$D/chan" --vault "$D/vault" --key "$D/key" --user nobody \
        --log-level info 2>"$D/recv.log" &
    rpid=$!
    t_at_exit '[ -n "$rpid" ] && kill $rpid 2>/dev/null'
    timeout 60 "$DIODE" send --policy "$D/policy.yaml" --prescan --key "$D/key" --report "$D/report.jsonl" \
        --ledger "$D/ledger/send.db" --ledger-key "$D/ledger/l.key" --log-level info \
        "$D/src" --to "fifo:$D/chan" 2>"$D/send.log"
    check_eq "send confined: exits 0" 0 $?
    for ((i = 0; i < 100; i++)); do [ -f "$D/vault/memo.docx" ] && [ -f "$D/vault/sub/a.txt" ] && break; sleep 0.1; done
    check "recv confined: the text file is published" cmp "$D/src/sub/a.txt" "$D/vault/sub/a.txt"
    check "recv confined: the document (approved through the helper) is published" \
        cmp "$D/src/memo.docx" "$D/vault/memo.docx"
    check_eq "recv confined: runs as the --user" "$(id -u nobody)" \
        "$(awk '/^Uid:/{print $2}' /proc/$rpid/status)"
    check_eq "recv confined: its files belong to the --user" nobody "$(stat -c %U "$D/vault/sub/a.txt")"
    check_eq "recv confined: under a seccomp filter" 2 "$(awk '/^Seccomp:/{print $2}' /proc/$rpid/status)"
    # a second sender: the receiver opens the fifo again under Landlock
    printf 'second\n' >"$D/src/b.txt"
    timeout 60 "$DIODE" send --no-policy --key "$D/key" "$D/src" --to "fifo:$D/chan" 2>>"$D/send.log"
    for ((i = 0; i < 100; i++)); do [ -f "$D/vault/b.txt" ] && break; sleep 0.1; done
    check "recv confined: a second sender on the reopened fifo is received" cmp "$D/src/b.txt" "$D/vault/b.txt"
    kill -TERM $rpid; wait $rpid
    check_eq "recv confined: exits 0 on SIGTERM" 0 $?
    rpid=
    check_contains "send confined: logged" "$(cat "$D/send.log")" 'msg="confined" side=send'
    check_contains "recv confined: logged" "$(cat "$D/recv.log")" 'msg="confined" side=recv'
    check "send confined: the report was written" test -s "$D/report.jsonl"
fi

# ---- a document-extraction child ------------------------------------------------------------
out=$("$BUILD/sluice-extract" --check-sandbox)
check_eq "extract child: the sandbox check passes" 0 $?
for what in execve fork socket "open for writing" "open read-write" unlink mkdir kill; do
    check_contains "extract child: $what works unconfined" "$out" "unconfined $what: allowed"
    check_contains "extract child: $what refused once confined" "$out" "$what: denied"
done
check_contains "extract child: still reads files" "$out" "open read-only: allowed"

t_done
