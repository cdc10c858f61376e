#!/usr/bin/env bash
# sluicefs is read-only for real: every call that would change anything fails
# with EROFS, and the source is left exactly as it was.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

mkdir -p "$FS_SRC/dir"
echo "hello" >"$FS_SRC/f.txt"
echo "other" >"$FS_SRC/dir/g.txt"
tree_state() { (cd "$FS_SRC" && find . -printf '%p %m %s %T@ %C@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
before=$(tree_state)

fs_mount || { not_ok "mount"; t_done; }
ok "mount"

python3 - "$FS_MNT" <<'PY'
import errno, os, sys
m = sys.argv[1]
f, d = os.path.join(m, "f.txt"), os.path.join(m, "dir")
def expect_erofs(name, fn):
    try:
        fn()
    except OSError as e:
        if e.errno == errno.EROFS:
            print(f"ok - {name} fails with EROFS")
        else:
            print(f"not ok - {name} fails with EROFS (got {errno.errorcode.get(e.errno)})")
        return
    print(f"not ok - {name} fails with EROFS (it succeeded)")
calls = [
    ("create", lambda: os.open(os.path.join(m, "new.txt"), os.O_CREAT | os.O_WRONLY, 0o644)),
    ("open O_WRONLY", lambda: os.open(f, os.O_WRONLY)),
    ("open O_RDWR", lambda: os.open(f, os.O_RDWR)),
    ("open O_TRUNC", lambda: os.open(f, os.O_RDONLY | os.O_TRUNC)),
    ("write (append)", lambda: open(f, "a").write("x")),
    ("truncate", lambda: os.truncate(f, 0)),
    ("unlink", lambda: os.unlink(f)),
    ("rename", lambda: os.rename(f, os.path.join(m, "moved.txt"))),
    ("mkdir", lambda: os.mkdir(os.path.join(m, "newdir"))),
    ("rmdir", lambda: os.rmdir(d)),
    ("link", lambda: os.link(f, os.path.join(m, "hard"))),
    ("symlink", lambda: os.symlink("f.txt", os.path.join(m, "soft"))),
    ("chmod", lambda: os.chmod(f, 0o777)),
    ("chown", lambda: os.chown(f, 1, 1)),
    ("utime", lambda: os.utime(f, (0, 0))),
    ("setxattr", lambda: os.setxattr(f, "user.x", b"1")),
    ("removexattr", lambda: os.removexattr(f, "user.x")),
    ("mknod", lambda: os.mkfifo(os.path.join(m, "fifo"))),
]
for name, fn in calls:
    expect_erofs(name, fn)
PY
check_eq "reading still works" "hello" "$(cat "$FS_MNT/f.txt")"
fs_umount
check_eq "the source tree is unchanged (names, modes, sizes, times, content)" "$before" "$(tree_state)"
t_done
