#!/usr/bin/env bash
# allow_other: another user (the sandbox's) reads through the mount; the
# source's permissions apply to it (default_permissions), write bits never
# show, and its uid is what the ledger records.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"
command -v setpriv >/dev/null || { echo "no setpriv"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }

echo "public SSN 123-45-6789" >"$FS_SRC/public.txt"; chmod 644 "$FS_SRC/public.txt"
echo "root only" >"$FS_SRC/private.txt"; chmod 600 "$FS_SRC/private.txt"
chmod 755 "$T_TMP" "$FS_SRC" "$FS_MNT"
fs_mount -o allow_other || { not_ok "mount"; t_done; }
ok "mount"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
check_eq "another user reads the view" "public SSN [REDACTED:us-ssn]" "$(as_nobody cat "$FS_MNT/public.txt")"
check_fails "another user cannot read a file the source keeps from it" as_nobody cat "$FS_MNT/private.txt"
check_eq "root can" "root only" "$(cat "$FS_MNT/private.txt")"
check_eq "modes as in the source, without write bits" "-r--r--r-- -r--------" \
    "$(stat -c %A "$FS_MNT/public.txt" "$FS_MNT/private.txt" | xargs)"
check_eq "the ledger records the reader's uid" "65534|cat|public.txt" \
    "$(fs_sql "select uid || '|' || process || '|' || path from records where event='open-served' and uid=65534")"
t_done
