#!/usr/bin/env bash
# Who a reader is (exe, process name, cgroup) is asked of the daemon's
# unmount helper at each open. A helper that stops answering must not hang
# the opens: after a bounded wait the open goes on with the reader recorded
# as unknown. When the helper answers again, its late answer to the old
# question is dropped: no later open is recorded as the earlier reader.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

printf 'card 4111 1111 1111 1111\n' >"$FS_SRC/a.txt"
fs_mount -o log_level=info || { not_ok "mount"; t_done; }
ok "mount"
helper=$(pgrep -P "$FS_PID" | head -1)
check "the daemon has its unmount helper" test -n "$helper"

cat "$FS_MNT/a.txt" >/dev/null
check_eq "a first open: the reader is known" "/usr/bin/cat" \
    "$(fs_sql "select exe from records where event='open-served' order by seq desc limit 1")"

kill -STOP "$helper"
s=$(date +%s)
out=$(timeout 30 /usr/bin/head -c 100 "$FS_MNT/a.txt"); rc=$?
took=$(($(date +%s) - s))
kill -CONT "$helper"
check_eq "with the helper stopped, the open still completes" 0 "$rc"
check_contains "and serves the view" "$out" "card"
check "and does not wait for ever (took ${took}s)" test "$took" -lt 30
check_eq "that reader is recorded as unknown (no exe, no name)" "NULL|''" \
    "$(fs_sql "select quote(exe) || '|' || quote(process) from records where event='open-served' order by seq desc limit 1")"
check_contains "the timeout is logged" "$(cat "$FS_LOG")" "no answer from the unmount helper"

# the helper now answers the old question first: that answer must not be
# taken for the next reader's
/usr/bin/tail -c 100 "$FS_MNT/a.txt" >/dev/null
check_eq "the next reader is itself, not the late answer's" "/usr/bin/tail" \
    "$(fs_sql "select exe from records where event='open-served' order by seq desc limit 1")"
/usr/bin/cat "$FS_MNT/a.txt" >/dev/null
check_eq "and the one after" "/usr/bin/cat" \
    "$(fs_sql "select exe from records where event='open-served' order by seq desc limit 1")"
check_eq "one row per open" 4 "$(fs_sql "select count(*) from records where event='open-served'")"
fs_umount
check_contains "the unmount logs one timeout and one late answer" "$(cat "$FS_LOG")" "timeouts=1 late=1"
check "no stale mount" bash -c "! awk -v m='$FS_MNT' '\$2 == m {f=1} END {exit !f}' /proc/mounts"
t_done
