#!/usr/bin/env bash
# sluicefs refuses what it cannot serve safely: symlinks leading out of SOURCE
# (relative and absolute), denied types (an ELF binary named .txt), special
# files, files over the size limit. Each refusal is EACCES and recorded;
# with hide_denied none of them is listed. Links that stay inside work.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

mkdir -p "$FS_SRC/docs/inner" "$T_TMP/outside"
echo "SSN: 123-45-6789" >"$FS_SRC/docs/a.txt"
echo "deep" >"$FS_SRC/docs/inner/deep.txt"
echo "outside secret 123-45-6789" >"$T_TMP/outside/secret.txt"
ln -s ../a.txt "$FS_SRC/docs/inner/up.txt"             # inside, via ..
ln -s inner "$FS_SRC/docs/innerlink"                     # directory link, inside
ln -s ../../outside/secret.txt "$FS_SRC/docs/escape.txt" # .. out of SOURCE
ln -s "$T_TMP/outside/secret.txt" "$FS_SRC/abs.txt"      # absolute
ln -s "$FS_SRC/docs/a.txt" "$FS_SRC/abs-inside.txt"      # absolute, even if pointing inside
ln -s ../outside "$FS_SRC/outdir"                        # directory outside
ln -s loop1 "$FS_SRC/loop2"; ln -s loop2 "$FS_SRC/loop1"
cp /bin/true "$FS_SRC/program.txt"                       # ELF named .txt
mkfifo "$FS_SRC/pipe"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$FS_SRC/sock"
mknod "$FS_SRC/null" c 1 3
head -c 3000000 /dev/zero | tr '\0' 'a' >"$FS_SRC/large.txt"

errno_of() { # path -> errno name of open()+read(), or OK
    python3 -c '
import errno, sys
try:
    open(sys.argv[1], "rb").read(); print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno))' "$1"
}

fs_mount -o max_file_size=2M || { not_ok "mount"; t_done; }
ok "mount"
check_eq "link inside SOURCE (via ..) is followed" "SSN: [REDACTED:us-ssn]" "$(cat "$FS_MNT/docs/inner/up.txt")"
check_eq "directory link inside SOURCE is followed" "deep" "$(cat "$FS_MNT/docs/innerlink/deep.txt")"
check_eq "relative link escaping SOURCE: EACCES" EACCES "$(errno_of "$FS_MNT/docs/escape.txt")"
check_eq "absolute link: EACCES" EACCES "$(errno_of "$FS_MNT/abs.txt")"
check_eq "absolute link to inside is not followed either: EACCES" EACCES "$(errno_of "$FS_MNT/abs-inside.txt")"
check_fails "directory link escaping SOURCE cannot be entered" ls "$FS_MNT/outdir/secret.txt"
check_eq "symlink loop: refused" EACCES "$(errno_of "$FS_MNT/loop1")"
check_eq "ELF binary named .txt: EACCES" EACCES "$(errno_of "$FS_MNT/program.txt")"
check_eq "FIFO: EACCES (never opened, no hang)" EACCES "$(timeout 10 bash -c "$(declare -f errno_of); errno_of '$FS_MNT/pipe'")"
check_eq "socket: EACCES" EACCES "$(errno_of "$FS_MNT/sock")"
check_eq "device: EACCES" EACCES "$(errno_of "$FS_MNT/null")"
check_eq "file over max_file_size: EACCES" EACCES "$(errno_of "$FS_MNT/large.txt")"
check_eq "refused files show size 0" "0 0 0" "$(stat -c %s "$FS_MNT/program.txt" "$FS_MNT/pipe" "$FS_MNT/large.txt" | xargs)"
check_fails "grep -r never shows the outside secret" grep -rqs "outside secret" "$FS_MNT"

rows=$(fs_sql "select path || '|' || decision || '|' || coalesce(mime,'') || '|' || reason from records where event='open-refused' order by seq")
check_contains "ledger: escape refused" "$rows" "docs/escape.txt|refused||symlink leads outside the source"
check_contains "ledger: absolute link refused" "$rows" "abs.txt|refused||symlink leads outside the source"
check_contains "ledger: ELF refused with its type" "$rows" "program.txt|refused|application/x-"
check_contains "ledger: FIFO refused" "$rows" "pipe|refused||not a regular file"
check_contains "ledger: large file refused" "$rows" "large.txt|refused||larger than the size limit"
fs_umount

fs_mount -o hide_denied || { not_ok "mount hide_denied"; t_done; }
listing=$(cd "$FS_MNT" && find . | sort | xargs)
check_eq "hide_denied lists only what can be served" \
    ". ./docs ./docs/a.txt ./docs/inner ./docs/inner/deep.txt ./docs/inner/up.txt ./docs/innerlink ./docs/innerlink/deep.txt ./docs/innerlink/up.txt ./large.txt" "$listing"
check_eq "hide_denied: denied file is not there (ENOENT)" ENOENT "$(errno_of "$FS_MNT/program.txt")"
check_eq "hide_denied: escaping link is not there" ENOENT "$(errno_of "$FS_MNT/abs.txt")"
check_eq "hide_denied: FIFO is not there" ENOENT "$(errno_of "$FS_MNT/pipe")"
check_eq "hide_denied: served files still served" "deep" "$(cat "$FS_MNT/docs/inner/deep.txt")"
t_done
