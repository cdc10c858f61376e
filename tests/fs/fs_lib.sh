# tests/fs/fs_lib.sh — mounting helpers for the sluicefs integration tests
# (sourced after tests/lib.sh). Every mount registers its own cleanup, so a
# failing test never leaves a mount behind; every wait is bounded.

[ -x "$SLUICEFS" ] || { echo "sluicefs not built ($SLUICEFS)"; exit 77; }
[ -c /dev/fuse ] || { echo "no /dev/fuse"; exit 77; }
command -v fusermount3 >/dev/null || { echo "no fusermount3"; exit 77; }

FS_SRC=$T_TMP/src
FS_MNT=$T_TMP/mnt
FS_DB=$T_TMP/ledger.db
FS_KEY=$T_TMP/ledger.key
FS_POLICY=$T_TMP/policy.yaml
FS_LOG=$T_TMP/sluicefs.log
FS_PID=
mkdir -p "$FS_SRC" "$FS_MNT"
openssl rand -hex 32 >"$FS_KEY" && chmod 600 "$FS_KEY"

# The test policy, with the pack named by absolute path (the policy lives in
# $T_TMP so that reload tests can rewrite it).
fs_write_policy() { # [extra pack yaml path]
    sed "s#^packs: .*#packs: [$ROOT/tests/fs/pack.yaml${1:+, $1}]#" "$ROOT/tests/fs/policy.yaml" >"$FS_POLICY.new"
    mv "$FS_POLICY.new" "$FS_POLICY"
}
fs_write_policy

fs_is_mounted() { awk -v m="$FS_MNT" '$2 == m {f=1} END {exit !f}' /proc/mounts; }

# fs_mount [-o extra,options]: mount SOURCE on MOUNTPOINT in the foreground
# (logging to $FS_LOG) and wait until the mount is live.
fs_mount() {
    local extra=
    [ "${1:-}" = -o ] && extra=,$2
    "$SLUICEFS" -f -o "policy=$FS_POLICY,ledger=$FS_DB,ledger_key=$FS_KEY,session=test$extra" \
        "$FS_SRC" "$FS_MNT" >>"$FS_LOG" 2>&1 &
    FS_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if fs_is_mounted && stat "$FS_MNT/." >/dev/null 2>&1; then return 0; fi
        kill -0 "$FS_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "# sluicefs did not mount; log:"; sed 's/^/#   /' "$FS_LOG"
    return 1
}

# Wait (bounded) for the daemon to exit; 0 when it did.
fs_wait_exit() {
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$FS_PID" 2>/dev/null || { wait "$FS_PID" 2>/dev/null; return 0; }
        sleep 0.1
    done
    return 1
}

fs_umount() {
    [ -n "$FS_PID" ] || return 0
    if fs_is_mounted && ! fusermount3 -u "$FS_MNT" 2>"$T_TMP/fusermount.err"; then
        echo "# fusermount3 -u: $(cat "$T_TMP/fusermount.err")"
    fi
    # A process that entered a new mount namespace meanwhile (ip netns exec,
    # unshare -m: other tests on this machine) keeps a copy of the mount and
    # so the FUSE connection: then stop the daemon with SIGTERM.
    if ! fs_wait_exit; then
        echo "# sluicefs still running after unmount (mount held elsewhere?): SIGTERM"
        kill -TERM "$FS_PID" 2>/dev/null
    fi
    if ! fs_wait_exit; then
        echo "# sluicefs did not exit; log tail:"; tail -n 5 "$FS_LOG" | sed 's/^/#   /'
        kill -9 "$FS_PID" 2>/dev/null
        fusermount3 -uz "$FS_MNT" 2>/dev/null
        umount -l "$FS_MNT" 2>/dev/null
    fi
    FS_PID=
}
t_at_exit fs_umount

fs_sql() { sqlite3 -batch -noheader "$FS_DB" "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
