#!/usr/bin/env bash
# Unmounting with fusermount3 -u and stopping with SIGTERM are both clean:
# the daemon exits 0, the ledger gets its unmount record, nothing is left in
# /proc/mounts. --help and --version work; bad options are refused clearly.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

echo "hello" >"$FS_SRC/a.txt"
check_contains "--help shows the options" "$("$SLUICEFS" --help)" "policy=FILE"
check_contains "--version" "$("$SLUICEFS" --version)" "sluicefs"
out=$("$SLUICEFS" -f -o "policy=$FS_POLICY" "$FS_SRC" "$FS_MNT" 2>&1); rc=$?
check "no ledger: refused (exit non-zero)" test $rc -ne 0
check_contains "no ledger: says why" "$out" "ledger"
printf 'policy: x\nversion: 1\npacks: [nope.yaml]\ntypes: {allow: [text/*]}\n' >"$T_TMP/bad.yaml"
out=$("$SLUICEFS" -f -o "policy=$T_TMP/bad.yaml,ledger=$FS_DB,ledger_key=$FS_KEY" "$FS_SRC" "$FS_MNT" 2>&1); rc=$?
check "bad policy: refused" test $rc -ne 0
check_contains "bad policy: names the file" "$out" "nope.yaml"
check_fails "nothing mounted after refusals" fs_is_mounted

fs_mount || { not_ok "mount"; t_done; }
cat "$FS_MNT/a.txt" >/dev/null
fusermount3 -u "$FS_MNT"
check "fusermount3 -u: daemon exits" fs_wait_exit
check_fails "fusermount3 -u: no stale mount" fs_is_mounted
check_eq "fusermount3 -u: unmount recorded" "unmounted|clean" \
    "$(fs_sql "select decision || '|' || reason from records where event='unmount' order by seq desc limit 1")"
FS_PID=

fs_mount || { not_ok "mount again"; t_done; }
cat "$FS_MNT/a.txt" >/dev/null
# A file still open when SIGTERM comes: its release never reaches the
# daemon, which frees the handle at exit all the same (make sanitize's leak
# check would fail the exit status otherwise).
exec 3<"$FS_MNT/a.txt"
pid=$FS_PID
kill -TERM "$pid"
check "SIGTERM: daemon exits" fs_wait_exit
wait "$pid" 2>/dev/null; rc=$?
exec 3<&-
check_eq "SIGTERM: exit status 0" 0 "$rc"
check_fails "SIGTERM: no stale mount" fs_is_mounted
check_eq "SIGTERM: unmount recorded" 2 "$(fs_sql "select count(*) from records where event='unmount'")"
check "mountpoint usable again" ls "$FS_MNT"
FS_PID=

# A daemon killed outright leaves no dead mount behind: its helper unmounts.
fs_mount || { not_ok "mount for SIGKILL"; t_done; }
check_contains "the daemon confined itself (Landlock)" "$(cat "$FS_LOG")" 'msg="confined"'
cat "$FS_MNT/a.txt" >/dev/null
kill -KILL "$FS_PID"; wait "$FS_PID" 2>/dev/null
for ((i = 0; i < 50; i++)); do fs_is_mounted || break; sleep 0.1; done
check_fails "SIGKILL: no stale mount" fs_is_mounted
check "SIGKILL: mountpoint usable again" ls "$FS_MNT"
FS_PID=

# Background mode: daemonizes, logs to syslog, unmounts cleanly.
"$SLUICEFS" -o "policy=$FS_POLICY,ledger=$FS_DB,ledger_key=$FS_KEY" "$FS_SRC" "$FS_MNT"; rc=$?
check_eq "background: the launcher exits 0" 0 "$rc"
for ((i = 0; i < 50; i++)); do fs_is_mounted && break; sleep 0.1; done
check_eq "background: serves" "hello" "$(cat "$FS_MNT/a.txt")"
fusermount3 -u "$FS_MNT"
for ((i = 0; i < 50; i++)); do fs_is_mounted || break; sleep 0.1; done
check_fails "background: unmounted cleanly" fs_is_mounted
for ((i = 0; i < 50; i++)); do [ "$(fs_sql "select count(*) from records where event='unmount'")" = 3 ] && break; sleep 0.1; done
check_eq "background: unmount recorded" 3 "$(fs_sql "select count(*) from records where event='unmount'")"
t_done
