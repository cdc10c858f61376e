#!/usr/bin/env bash
# Who a reader is (exe, process name, cgroup) is asked of the daemon's
# unmount helper at each open. A helper that stops answering must neither
# hang the opens nor let them through unnamed: after a bounded wait each
# open is refused, and recorded so, and no further question is sent while
# one is owed (questions piling up in the socket would block the daemon
# for good). When the helper answers again, its late answer is drained and
# never taken for a later reader's. Unmounting does not wait for ever for a
# stopped helper either.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

printf 'card 4111 1111 1111 1111\n' >"$FS_SRC/a.txt"
fs_mount -o log_level=info || { not_ok "mount"; t_done; }
ok "mount"
helper=$(pgrep -P "$FS_PID" | head -1)
check "the daemon has its unmount helper" test -n "$helper"
stopped() { [[ $(ps -o stat= -p "$helper") == T* ]]; }
last() { fs_sql "select $1 from records where event like 'open-%' order by seq desc limit 1"; }

cat "$FS_MNT/a.txt" >/dev/null
check_eq "a first open: the reader is known" "/usr/bin/cat" "$(last exe)"

kill -STOP "$helper"
check "the helper is stopped" stopped
for i in 1 2 3 4; do
    timeout 30 /usr/bin/head -c 100 "$FS_MNT/a.txt" >"$T_TMP/stopped.$i.out" 2>"$T_TMP/stopped.$i.err"
    echo $? >"$T_TMP/stopped.$i.rc"
done
check "the helper was stopped all along" stopped
for i in 1 2 3 4; do
    # 1: refused; a hang would be timeout's 124
    check_eq "open $i with the helper stopped: refused, not hung" 1 "$(cat "$T_TMP/stopped.$i.rc")"
    check_contains "open $i: permission denied" "$(cat "$T_TMP/stopped.$i.err")" "Permission denied"
    check_eq "open $i: nothing served" 0 "$(wc -c <"$T_TMP/stopped.$i.out")"
done
check_eq "each refusal is recorded, with pid and uid" 4 \
    "$(fs_sql "select count(*) from records where event='open-refused' and reason like '%unmount helper did not answer%' and pid > 0 and uid = $(id -u)")"
check_contains "the timeout is logged" "$(cat "$FS_LOG")" "no answer from the unmount helper"
kill -CONT "$helper"

# the helper now answers the question it owed: drained, never taken for the
# next reader's
/usr/bin/tail -c 100 "$FS_MNT/a.txt" >"$T_TMP/after.out"
check_eq "once it answers again, opens are served" 0 "$?"
check_contains "with the view" "$(cat "$T_TMP/after.out")" "card"
check_eq "the next reader is itself, not the late answer's" "/usr/bin/tail" "$(last exe)"
/usr/bin/cat "$FS_MNT/a.txt" >/dev/null
check_eq "and the one after" "/usr/bin/cat" "$(last exe)"
check_eq "one row per open" 7 "$(fs_sql "select count(*) from records where event like 'open-%'")"

# unmounting with the helper stopped: the daemon still exits (bounded)
kill -STOP "$helper"
fusermount3 -u "$FS_MNT"
s=$(date +%s)
fs_wait_exit; fs_wait_exit; fs_wait_exit # up to 30 s
check "the daemon exits with its helper stopped ($(($(date +%s) - s))s)" bash -c "! kill -0 $FS_PID 2>/dev/null"
kill -CONT "$helper"
check_contains "one question asked and timed out, three not asked, one late answer" "$(cat "$FS_LOG")" \
    "timeouts=1 late=1 unasked=3"
check_contains "the unmount says it did not wait for the helper" "$(cat "$FS_LOG")" "unmount helper has not finished"
FS_PID=
check "no stale mount" bash -c "! awk -v m='$FS_MNT' '\$2 == m {f=1} END {exit !f}' /proc/mounts"
t_done
