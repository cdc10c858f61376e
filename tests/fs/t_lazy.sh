#!/usr/bin/env bash
# Listing a directory of thousands of files sanitizes none of them: readdir
# and find never build views; stat of one file builds that one view only.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

mkdir -p "$FS_SRC/many"
for i in $(seq 1 3000); do echo "file $i SSN 123-45-6789" >"$FS_SRC/many/f$i.txt"; done
fs_mount -o log_level=debug || { not_ok "mount"; t_done; }
ok "mount"
builds() { grep -c 'msg="view built"' "$FS_LOG"; }
check_eq "ls of 3000 files" 3000 "$(ls "$FS_MNT/many" | wc -l)"
check_eq "find of 3000 files" 3000 "$(find "$FS_MNT/many" -type f | wc -l)"
stat "$FS_MNT/many" >/dev/null
check_eq "ls, find and stat of the directory built no view" 0 "$(builds)"
check_eq "stat of one file: its view's size" 29 "$(stat -c %s "$FS_MNT/many/f7.txt")"
check_eq "... and only that view was built" 1 "$(builds)"
check_eq "no opens were recorded" 0 "$(fs_sql "select count(*) from records where event like 'open%'")"
t_done
