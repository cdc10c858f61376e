#!/usr/bin/env bash
# sluicefs records every open in the ledger before serving: who (pid, uid,
# process, exe, cgroup), what (path, SHA-256 of source and of the bytes
# served, size, type, policy, hits per rule), the decision and a request id;
# mount, policy load and unmount too. When the record cannot be written, the
# open is refused and nothing is served.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/fs_lib.sh"

printf 'SSN: 123-45-6789 and 234-56-7890, key tok_abcdefghijklmnop\n' >"$FS_SRC/a.txt"
cp /bin/true "$FS_SRC/prog.txt"
fs_mount -o session=audit-42,log_level=debug || { not_ok "mount"; t_done; }
ok "mount"

python3 - "$FS_MNT/a.txt" "$T_TMP/read.out" <<'PY'
import os, sys
data = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(data)
open(sys.argv[2] + ".pid", "w").write(str(os.getpid()))
open(sys.argv[2] + ".exe", "w").write(os.path.realpath("/proc/self/exe"))
open(sys.argv[2] + ".cgroup", "w").write(open("/proc/self/cgroup").read())
PY
reader_pid=$(cat "$T_TMP/read.out.pid")
row=$(fs_sql "select pid, uid, gid, process, exe, session, path, source_sha256, served_sha256, size_served, mime, policy_hash, hits, decision, request_id, cgroup is not null from records where event='open-served' and path='a.txt'")
IFS='|' read -r pid uid gid proc exe session path ssha vsha size mime phash hits decision rid hascg <<<"$row"
check_eq "one served row for the open" 1 "$(fs_sql "select count(*) from records where event='open-served' and path='a.txt'")"
check_eq "row: reader pid" "$reader_pid" "$pid"
check_eq "row: reader uid/gid" "$(id -u)/$(id -g)" "$uid/$gid"
check_eq "row: process name" "python3" "$proc"
check_eq "row: executable" "$(cat "$T_TMP/read.out.exe")" "$exe"
check_eq "row: cgroup recorded" 1 "$hascg"
# read for the confined daemon by its unmount helper, as exe and process are
check_eq "row: the reader's cgroup" "$(sed -n 's/^0:://p' "$T_TMP/read.out.cgroup")" \
    "$(fs_sql "select cgroup from records where event='open-served' and path='a.txt'")"
check_eq "row: session label" "audit-42" "$session"
check_eq "row: source SHA-256 is the source file's" "$(sha "$FS_SRC/a.txt")" "$ssha"
check_eq "row: served SHA-256 is what the reader got" "$(sha "$T_TMP/read.out")" "$vsha"
check_eq "row: size served is what the reader got" "$(stat -c %s "$T_TMP/read.out")" "$size"
check_eq "row: type" "text/plain" "$mime"
check_eq "row: policy hash is the mount's" "$(fs_sql "select policy_hash from records where event='mount'")" "$phash"
check_eq "row: hits per rule" '[{"rule":"us-ssn","count":2},{"rule":"test-token","count":1}]' "$hits"
check_eq "row: decision" "served" "$decision"
check_contains "row: request id also in the daemon's log" "$(cat "$FS_LOG")" "req=$rid"

cat "$FS_MNT/a.txt" >/dev/null; cat "$FS_MNT/a.txt" >/dev/null
check_eq "every open writes a row (cached view too)" 3 "$(fs_sql "select count(*) from records where event='open-served' and path='a.txt'")"
cat "$FS_MNT/prog.txt" 2>/dev/null
check_eq "refusal row" "refused|prog.txt|0|cat" \
    "$(fs_sql "select decision, path, size_served, process from records where event='open-refused'")"
check_eq "mount and policy-load rows" "policy-load|loaded mount|mounted" \
    "$(fs_sql "select event || '|' || decision from records where event in ('mount','policy-load') order by seq" | xargs)"
# Who the reader is is read afresh for every open, never remembered by pid:
# a process that renames itself and then execs another program (same pid)
# is recorded as what it is at each open. Readers that open at the same
# time share a question to the helper; each row must still get its own
# thread's answer (every thread names itself before opening).
/usr/bin/python3 - "$FS_MNT" "$T_TMP/ident.out" >/dev/null <<'PY'
import os, sys, threading
mnt, out = sys.argv[1], sys.argv[2]
open(os.path.join(mnt, "a.txt"), "rb").read()
with open("/proc/self/comm", "w") as f:
    f.write("renamed-rdr")
open(os.path.join(mnt, "a.txt"), "rb").read()
barrier = threading.Barrier(6)
tids = {}
def reader(i):
    tid = threading.get_native_id()
    tids["thr%d" % i] = tid
    with open("/proc/thread-self/comm", "w") as f:
        f.write("thr%d" % i)
    barrier.wait()
    for _ in range(30):
        open(os.path.join(mnt, "a.txt"), "rb").read()
ts = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
for t in ts: t.start()
for t in ts: t.join()
with open(out, "w") as f:
    f.write("%d\n" % os.getpid())
    for name, tid in sorted(tids.items()):
        f.write("%s %d\n" % (name, tid))
os.execv("/bin/cat", ["cat", os.path.join(mnt, "a.txt")])
PY
ipid=$(head -1 "$T_TMP/ident.out")
check_eq "same pid: recorded by its name at each open, then by the program it exec'd" \
    "python3 renamed-rdr $(realpath /bin/cat)|cat" \
    "$(fs_sql "select group_concat(process, ' ') from (select process from records where pid=$ipid and event='open-served' and process != 'cat' order by seq)") $(fs_sql "select exe || '|' || process from records where pid=$ipid and event='open-served' order by seq desc limit 1")"
check_eq "before the exec: python's executable" "$(realpath /usr/bin/python3)" \
    "$(fs_sql "select exe from records where pid=$ipid and event='open-served' order by seq limit 1")"
wrong=0
while read -r name tid; do
    n=$(fs_sql "select count(*) from records where pid=$tid and process='$name' and event='open-served'")
    all=$(fs_sql "select count(*) from records where pid=$tid and event='open-served'")
    [ "$n" = 30 ] && [ "$all" = 30 ] || { wrong=1; echo "# $name (tid $tid): $n of $all rows named $name"; }
done < <(tail -n +2 "$T_TMP/ident.out")
check_eq "concurrent readers: every row names its own thread" 0 "$wrong"
fs_umount
check_contains "concurrent questions to the helper were shared" "$(cat "$FS_LOG")" "msg=\"reader identities\""
check_eq "unmount row" "unmounted" "$(fs_sql "select decision from records where event='unmount'")"
check_eq "sequence has no gaps" "$(fs_sql "select max(seq) from records")" "$(fs_sql "select count(*) from records")"

# A ledger that cannot take records: a full file system. Opens must fail and
# serve nothing; once space is back, opens work again.
if ! mkdir -p "$T_TMP/small" || ! mount -t tmpfs -o size=1m tmpfs "$T_TMP/small" 2>/dev/null; then
    skip "open refused when the ledger cannot record" "cannot mount a tmpfs"
    t_done
fi
t_at_exit "umount -l '$T_TMP/small'"
for i in $(seq 1 400); do printf 'file %d SSN 123-45-6789\n' "$i" >"$FS_SRC/f$i.txt"; done
FS_DB=$T_TMP/small/ledger.db
fs_mount || { not_ok "mount with ledger on a small tmpfs"; t_done; }
dd if=/dev/zero of="$T_TMP/small/filler" bs=4k 2>/dev/null
python3 - "$FS_MNT" >"$T_TMP/full.out" <<'PY'
import errno, os, sys
served = refused = other = 0
for i in range(1, 401):
    try:
        data = open(os.path.join(sys.argv[1], f"f{i}.txt"), "rb").read()
        served += 1
    except OSError as e:
        if e.errno == errno.EACCES:
            refused += 1
        else:
            other += 1
print(served, refused, other)
PY
read -r served refused other <"$T_TMP/full.out"
echo "# ledger full: $served served, $refused refused, $other other errors"
check "opens are refused (EACCES) once the ledger cannot record" test "$refused" -gt 0
check_eq "no other errors" 0 "$other"
check_contains "the daemon logs why" "$(cat "$FS_LOG")" "ledger append failed"
rm -f "$T_TMP/small/filler"
check_eq "with space back, opens are recorded and served again" "file 400 SSN [REDACTED:us-ssn]" "$(cat "$FS_MNT/f400.txt")"
fs_umount
served_rows=$(fs_sql "select count(*) from records where event='open-served' and path like 'f%'")
check "every served open has its row" test "$served_rows" -ge $((served + 1))
t_done
