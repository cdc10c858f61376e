#!/usr/bin/env bash
# tests/examples/t_deploy.sh — everything in examples/{legal-pipeline,systemd,
# docker,compose,kubernetes} that can run on this machine runs; the rest is
# parsed and checked for the fields that make it safe.
#
#   1. legal pipeline end to end: no planted value reaches the review, the
#      ledger names every file read with its rule hits and verifies, the
#      tarball was refused at the diode, nothing is left mounted or behind;
#   2. systemd: `systemd-analyze verify` on the units against binaries
#      installed by `make install` into a temporary root; then the units'
#      own command lines (Environment=, EnvironmentFile=, %i, ExecStartPre/
#      Start/Post/Reload/StopPost) are run with their absolute paths moved
#      under that root: diode send -> recv -> sluicefs@legal -> a read ->
#      reload -> stop -> checkpoint -> ledger verify; every system call each
#      program made (strace) is allowed by its unit's SystemCallFilter=; the
#      sluicefs unit has no setting that would hide its mount in a private
#      namespace; each unit is more confined than a bare one
#      (systemd-analyze security);
#   3. docker: run-model.sh's command uses only flags `docker run` knows,
#      with --network none and :ro,rslave; it refuses a view on a private
#      mount; and rslave vs rprivate is shown on this kernel: a "container"
#      namespace started before sluicefs mounts sees the mount (and sees it
#      again after a restart) with rslave, never with rprivate;
#   4. every YAML file parses; compose and Kubernetes keep network none /
#      NetworkPolicy, read-only /data, the right propagation, subPath keys;
#      their sluicefs options exist; their policies pass `sluice rules lint`;
#      `kubectl kustomize` builds the Kubernetes set; the Dockerfile installs
#      the packages of every library the programs load.
# No Docker engine or Kubernetes cluster runs here: those parts are syntax
# and content checks only.
source "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] && [ -e /dev/fuse ] || { echo "needs root and /dev/fuse"; exit 77; }
for t in python3 sqlite3 unshare fusermount3 findmnt; do
    command -v "$t" >/dev/null || { echo "needs $t"; exit 77; }
done
python3 -c 'import yaml' 2>/dev/null || { echo "needs python3-yaml"; exit 77; }
cd "$ROOT"
EX=$ROOT/examples
policy=$ROOT/rules/default-policy.yaml

# A root to install into (binaries, rules, man pages), without rebuilding.
inst=$T_TMP/inst
make -s -o all B="$BUILD" install DESTDIR="$inst" PREFIX=/usr/local >"$T_TMP/install.log" 2>&1
IB=$inst/usr/local/bin
# A sanitizer build (make sanitize) links runtimes of its own, with system
# calls and libraries that release binaries do not have: the system-call and
# Dockerfile library checks are about release builds.
sanitized=0
ldd "$IB/sluicefs" 2>/dev/null | grep -Eq 'lib(asan|ubsan|tsan)' && sanitized=1
check "make install into a temporary root installs the programs" \
    test -x "$IB/sluice" -a -x "$IB/sluicefs" -a -x "$IB/sluice-diode" -a -f "$inst/usr/local/share/sluice/rules/pii.yaml"

# ---- 1. the legal pipeline ---------------------------------------------------
echo "# 1. examples/legal-pipeline/run.sh (at ${SECONDS}s)"
python3 "$EX/legal-pipeline/gen-contracts.py" "$T_TMP/gen"
before=$(ls -d /tmp/sluice-legal.* 2>/dev/null | wc -l)
SLUICE_BUILD=$BUILD bash "$EX/legal-pipeline/run.sh" >"$T_TMP/legal.out" 2>&1
check_eq "legal pipeline exits 0" 0 "$?"
out=$(cat "$T_TMP/legal.out")
review=$(sed -n '/^== 5\./,/^== 6\./p' "$T_TMP/legal.out")
n=0
while IFS=$'\t' read -r kind value file; do
    n=$((n + 1))
    grep -qF -- "$value" "$T_TMP/gen/$file" || not_ok "generated $file holds its planted $kind $value"
    if [[ $out == *"$value"* ]]; then not_ok "planted $kind '$value' ($file) never shown"; fi
done <"$T_TMP/gen/planted.tsv"
check "the generator planted IBANs, e-mail addresses and phone numbers" test "$n" -ge 30
check_eq "no planted value appears anywhere in the pipeline's output" 0 \
    "$(grep -cFf <(cut -f2 "$T_TMP/gen/planted.tsv") "$T_TMP/legal.out")"
check_contains "the review had no network" "$review" "-- network: lo (no route out)"
check_contains "the review reads pseudonymised e-mail addresses" "$review" "<email:"
check_contains "the review reads masked phone numbers" "$review" "tel. [REDACTED:phone]"
check_contains "the review reads IBANs masked but for the last 4" "$review" "IBAN: **** **** **** "
check_contains "the review still finds the clauses it greps for" "$review" "contracts/2025-002-services.txt"
check_eq "the review printed 6 payment clauses" 6 "$(grep -c 'Account holder:' <<<"$review")"
check_contains "the diode refused the tarball" "$out" "rejected  scans/originals-2024.tar.gz"
check_contains "the ledger records the refusal" "$out" "ingest-rejected  scans/originals-2024.tar.gz"
for f in $(cut -f3 "$T_TMP/gen/planted.tsv" | sort -u); do
    row=$(grep -E "^ +$f +" "$T_TMP/legal.out")
    check_contains "ledger: $f was read by grep and python3" "$row" "grep,python3"
    check_contains "ledger: $f had its IBAN hit" "$row" "iban=1"
    check_contains "ledger: $f had its e-mail hits" "$row" "email=2"
done
check_contains "the ledger query shows served opens of session legal-review" "$out" "open-served"
check "sluice ledger verify: ok" grep -Eq '/ledger.db: ok: [0-9]+ records' "$T_TMP/legal.out"
check_lacks "nothing left mounted" "$(cat /proc/mounts)" "sluice-legal"
check_eq "no temporary directory left" "$before" "$(ls -d /tmp/sluice-legal.* 2>/dev/null | wc -l)"

# ---- 2. systemd ---------------------------------------------------------------
echo "# 2. examples/systemd (at ${SECONDS}s)"
R=$T_TMP/root               # stands for / in the units' paths
U=$T_TMP/units
mkdir -p "$U" "$R"
# Units as installed: binaries from the temporary root.
for f in "$EX"/systemd/*.service "$EX"/systemd/*.timer; do
    sed "s#/usr/local/#$inst/usr/local/#g" "$f" >"$U/${f##*/}"
done
ln -s sluicefs@.service "$U/sluicefs@legal.service"
units=(sluicefs@legal.service sluice-diode-recv.service sluice-diode-send.service
       sluice-ledger-checkpoint.service sluice-ledger-checkpoint.timer)
if command -v systemd-analyze >/dev/null; then
    v=$(cd "$U" && systemd-analyze verify --man=no "${units[@]}" 2>&1)
    rc=$?
    check_eq "systemd-analyze verify: exit 0" 0 "$rc"
    check_eq "systemd-analyze verify: no warnings" "" "$v"
    # Confinement: each service against a bare unit running the same binary.
    printf '[Service]\nExecStart=%s/sluicefs\n' "$IB" >"$U/bare.service"
    bare=$(cd "$U" && systemd-analyze security --offline=true --no-pager bare.service 2>/dev/null |
           sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    for u in sluicefs@legal.service sluice-diode-recv.service sluice-diode-send.service sluice-ledger-checkpoint.service; do
        e=$(cd "$U" && systemd-analyze security --offline=true --no-pager "$u" 2>/dev/null |
            sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        echo "# systemd-analyze security: $u exposure $e (bare unit $bare)"
        check "$u is more confined than a bare unit ($e < $bare)" \
            python3 -c "import sys; sys.exit(not (float('${e:-99}') < float('${bare:-0}')))"
    done
    rm -f "$U/bare.service"
else
    skip "systemd-analyze verify" "systemd-analyze not installed"
fi

# sluicefs must not get a private mount namespace (its mount would be
# invisible to the host): none of the settings that create one.
ns=$(grep -E '^(PrivateMounts|PrivateTmp|PrivateDevices|ProtectSystem|ProtectHome|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|ExecPaths|NoExecPaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc|ProcSubset|RootDirectory|RootImage|MountAPIVFS|DynamicUser|MountFlags|PrivateUsers|LogsDirectory|StateDirectory|CacheDirectory|RuntimeDirectory|ConfigurationDirectory|LoadCredential|SetCredential)=' \
     "$EX/systemd/sluicefs@.service")
check_eq "sluicefs@.service sets nothing that creates a mount namespace" "" "$ns"
check "sluicefs@.service lets only /dev/fuse through the device cgroup" \
    grep -qx 'DeviceAllow=/dev/fuse rw' "$EX/systemd/sluicefs@.service"

# unit_cmds UNIT INSTANCE: the unit's commands, one per line as
# "Key<TAB>ignore-failure<TAB>shell-quoted argv", with Environment=,
# EnvironmentFile=, %i and $$ expanded as systemd does, and the absolute
# paths the units use moved under $R (binaries under $inst).
unit_cmds() {
    python3 - "$1" "$2" "$R" "$inst" <<'PY'
import os, re, shlex, sys
unit, inst_name, R, inst = sys.argv[1:]
MAP = [("/usr/local/", inst + "/usr/local/"), ("/srv/", R + "/srv/"), ("/etc/sluice", R + "/etc/sluice"),
       ("/var/lib/sluice", R + "/var/lib/sluice"), ("/var/log/sluice", R + "/var/log/sluice"),
       ("/run/sluice", R + "/run/sluice")]
def move(s):
    return re.sub(r"(^|[\s=,:'])(/usr/local/|/srv/|/etc/sluice|/var/lib/sluice|/var/log/sluice|/run/sluice)",
                  lambda m: m.group(1) + dict(MAP)[m.group(2)], s)
lines, cur = [], ""
for raw in open(unit, encoding="utf-8"):
    raw = raw.rstrip("\n")
    if raw.lstrip().startswith(("#", ";")) and not cur:
        continue
    if raw.endswith("\\"):
        cur += raw[:-1] + " "
        continue
    lines.append(cur + raw)
    cur = ""
spec = lambda s: s.replace("%i", inst_name).replace("%I", inst_name).replace("%%", "%")
env = {}
for l in lines:
    k, _, v = l.partition("=")
    if k == "Environment":
        for item in shlex.split(spec(v)):
            a, _, b = item.partition("=")
            env[a] = b
    elif k == "EnvironmentFile":
        path = move(spec(v.lstrip("-")))
        if os.path.exists(path):
            for fl in open(path):
                fl = fl.strip()
                if fl and not fl.startswith("#") and "=" in fl:
                    a, _, b = fl.partition("=")
                    env[a] = b.strip('"')
for l in lines:
    k, _, v = l.partition("=")
    if not k.startswith("Exec") and k != "StandardOutput":
        continue
    v = spec(v).strip()
    ignore = "0"
    while v and v[0] in "-@+!:|":
        ignore = "1" if v[0] == "-" else ignore
        v = v[1:]
    if k == "StandardOutput":
        print(f"{k}\t0\t{move(v)}")
        continue
    argv = []
    for a in shlex.split(v):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", a)
        if m:                                   # $VAR: split on whitespace
            argv += env.get(m.group(1), os.environ.get(m.group(1), "")).split()
            continue
        a = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), a)
        a = a.replace("$$", "$")
        argv.append(move(a))
    print(f"{k}\t{ignore}\t{shlex.join(argv)}")
PY
}
# run_step UNIT KEY: runs the unit's KEY commands in order (as systemd would,
# a failing command fails the step unless it was prefixed with -).
run_step() {
    local unit=$1 key=$2 k ign cmd rc=0
    while IFS=$'\t' read -r k ign cmd; do
        [ "$k" = "$key" ] || continue
        eval "$cmd" >>"$T_TMP/steps.log" 2>&1 || { [ "$ign" = 1 ] || rc=1; }
    done < <(unit_cmds "$EX/systemd/$unit" legal)
    return $rc
}
exec_start() { unit_cmds "$EX/systemd/$1" legal | awk -F'\t' '$1 == "ExecStart" {print $3}'; }
# unit_dirs UNIT: the directories systemd would create for it (LogsDirectory=...).
unit_dirs() {
    sed -n -e "s#^LogsDirectory=#$R/var/log/#p" -e "s#^StateDirectory=#$R/var/lib/#p" \
        -e "s#^RuntimeDirectory=#$R/run/#p" "$EX/systemd/$1"
}

have_strace=0; command -v strace >/dev/null && have_strace=1
[ $sanitized = 1 ] && have_strace=0      # LeakSanitizer fails under ptrace
stop_and_wait() { # PID...: SIGTERM each (traced) program as systemctl stop
    # does, reap them; SIGKILL after 30 s, as systemd's TimeoutStopSec= would.
    local p wd
    for p; do kill -TERM "$(child_of "$p")" 2>/dev/null; done
    (sleep 30; for p; do pkill -KILL -P "$p"; kill -KILL "$p"; done) 2>/dev/null &
    wd=$!
    for p; do wait "$p"; done
    kill "$wd" 2>/dev/null; wait "$wd" 2>/dev/null
}
# unit_priv UNIT: setpriv(1) arguments for the unit's CapabilityBoundingSet=
# and NoNewPrivileges=. For a root service, what remains permitted after
# exec is the bounding set, as under systemd: so the programs run here with
# no more capabilities than their units give them.
unit_priv() {
    local caps set=-all c
    caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$EX/systemd/$1" | tail -n1)
    for c in $caps; do c=${c#CAP_}; set+=",+${c,,}"; done
    printf '%s\n' "--bounding-set=$set" --inh-caps=-all
    grep -qx 'NoNewPrivileges=yes' "$EX/systemd/$1" && echo --no-new-privs
}
start_unit() { # OUT UNIT: start UNIT's ExecStart in the background (under
    # strace -f when available); LAST_PID is strace's pid or the program's.
    local out=$1 cmd d priv
    for d in $(unit_dirs "$2"); do mkdir -p "$d"; done
    mapfile -t priv < <(unit_priv "$2")
    cmd=$(exec_start "$2")
    eval "set -- $cmd"
    if [ $have_strace = 1 ]; then setpriv "${priv[@]}" strace -f -qq -o "$out" "$@" &
    else setpriv "${priv[@]}" "$@" & fi
    LAST_PID=$!
}
child_of() { # the traced program's pid (strace's child), or the pid itself
    local p=$1 c
    if [ $have_strace = 1 ]; then
        for _ in $(seq 50); do c=$(pgrep -P "$p" | head -n1); [ -n "$c" ] && { echo "$c"; return; }; sleep 0.1; done
    fi
    echo "$p"
}

mkdir -p "$R/etc/sluice" "$R/srv/export/legal" "$R/run/sluice" "$R/var/lib/sluice"
for k in ledger hash diode; do "$IB/sluice" keygen "$R/etc/sluice/$k.key" >/dev/null; done
cp -r "$T_TMP/gen/contracts" "$R/srv/export/legal/"
# A Word document too: sluicefs serves it as its extracted, masked text
# through the sluice-extract helper, which then also runs under the unit's
# capabilities and system-call filter.
mkdir -p "$R/srv/export/legal/letters"
python3 - "$R/srv/export/legal/letters/side-letter.docx" <<'DOCX'
import sys, zipfile
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
parts = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
    "word/document.xml": f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W}"><w:body>'
        '<w:p><w:r><w:t>SIDE LETTER. Notices to greta.holm@nordic-shipping.example, tel. +46 8 123 456 78.</w:t></w:r></w:p>'
        '<w:p><w:r><w:t>Pay to IBAN DE89 3704 0044 0532 0130 00.</w:t></w:r></w:p></w:body></w:document>',
}
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for name, data in parts.items():
        z.writestr(name, data)
DOCX
# What an operator writes into the units' environment files: a local fifo as
# the channel (the defaults are UDP between two hosts).
echo "DIODE_FROM=fifo:$R/run/sluice/diode.fifo" >"$R/etc/sluice/diode-recv.env"
printf 'DIODE_TO=fifo:%s/run/sluice/diode.fifo\nDIODE_RATE=0\nDIODE_FEC=16:0\n' "$R" >"$R/etc/sluice/diode-send.env"
export SLUICE_KEY_FILE=$R/etc/sluice/hash.key   # the installed policy names /etc/sluice/hash.key
: >"$T_TMP/steps.log"

FS_PID= RECV_PID= SEND_PID=
view=$R/srv/sluice/view/legal
stop_all() {
    local p
    for p in $FS_PID $SEND_PID $RECV_PID; do kill -TERM "$(child_of "$p")" 2>/dev/null; done
    mountpoint -q "$view" 2>/dev/null && { fusermount3 -u -z "$view" 2>/dev/null || umount -l "$view"; }
    for p in $FS_PID $SEND_PID $RECV_PID; do wait "$p" 2>/dev/null; done
}
t_at_exit stop_all

check "sluice-diode-recv: ExecStartPre" run_step sluice-diode-recv.service ExecStartPre
start_unit "$T_TMP/trace.recv" sluice-diode-recv.service 2>"$T_TMP/recv.log"
RECV_PID=$LAST_PID
start_unit "$T_TMP/trace.send" sluice-diode-send.service 2>"$T_TMP/send.log"
SEND_PID=$LAST_PID
want=$(ls "$R/srv/export/legal/contracts" | wc -l)
for _ in $(seq 300); do
    [ "$(ls "$R/srv/sluice/vault/legal/contracts" 2>/dev/null | wc -l)" -ge "$want" ] && break
    sleep 0.1
done
check_eq "diode units: every contract reached the vault" "$want" \
    "$(ls "$R/srv/sluice/vault/legal/contracts" 2>/dev/null | wc -l)"
for _ in $(seq 100); do [ -f "$R/srv/sluice/vault/legal/letters/side-letter.docx" ] && break; sleep 0.1; done
echo "# diode units: vault complete at ${SECONDS}s"
check "diode units: the files are the exported bytes" \
    diff -r "$R/srv/export/legal" "$R/srv/sluice/vault/legal"

check "sluicefs@legal: ExecStartPre" run_step sluicefs@.service ExecStartPre
start_unit "$T_TMP/trace.fs" sluicefs@.service 2>"$T_TMP/fs.log"
FS_PID=$LAST_PID
check "sluicefs@legal: ExecStartPost sees the mount (readiness)" run_step sluicefs@.service ExecStartPost
seen=$(cat "$view"/contracts/*.txt 2>/dev/null)
check_contains "sluicefs@legal: the view is masked" "$seen" "[REDACTED:phone]"
check_eq "sluicefs@legal: no planted value is served" 0 \
    "$(grep -cFf <(cut -f2 "$T_TMP/gen/planted.tsv") <<<"$seen")"
check_contains "sluicefs@legal: mounted read-only with the unit's options" \
    "$(grep " $view " /proc/mounts)" "fuse.sluice ro,"
# (served under the name the policy gives extracted text, side-letter.docx.txt)
letter=$(cat "$view"/letters/side-letter.docx* 2>&1)
check_contains "sluicefs@legal: a Word document is served as its text" "$letter" "SIDE LETTER. Notices to <email:"
check_contains "sluicefs@legal: its phone number is masked" "$letter" "tel. [REDACTED:phone]"
for v in greta.holm@nordic-shipping.example '+46 8 123 456 78' 'DE89 3704 0044 0532 0130 00'; do
    check_lacks "sluicefs@legal: the document's $v is not served" "$letter" "$v"
done
# The model reads as another user (allow_other): the ledger must still name
# its executable, which takes CAP_SYS_PTRACE (kept in the bounding set).
chmod 0711 "$T_TMP"
check_contains "sluicefs@legal: another uid reads the view" \
    "$(setpriv --reuid 65534 --regid 65534 --clear-groups cat "$view/contracts/2025-003-lease.txt" 2>&1)" "<email:"
check_eq "sluicefs@legal: its ledger record names uid 65534's executable" "65534 $(readlink -f "$(command -v cat)")" \
    "$(sqlite3 "$R/var/lib/sluice/ledger.db" "SELECT uid || ' ' || coalesce(exe, 'NULL') FROM records WHERE event = 'open-served' AND uid = 65534")"
check "sluicefs@legal: runs with no capability outside its bounding set" \
    grep -qx 'CapPrm:[[:space:]]*0000000000280000' "/proc/$(child_of "$FS_PID")/status"
export MAINPID=$(child_of "$FS_PID")
check "sluicefs@legal: ExecReload (SIGHUP: policy reload)" run_step sluicefs@.service ExecReload
sleep 0.5
check_contains "sluicefs@legal: still serves after the reload" "$(cat "$view/contracts/2025-001-nda.txt" 2>&1)" "<email:"
kill -TERM "$MAINPID"                     # systemctl stop
for _ in $(seq 300); do kill -0 "$MAINPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$MAINPID" 2>/dev/null; then kill -KILL "$MAINPID"; fi
wait "$FS_PID"; rc=$?
check_eq "sluicefs@legal: SIGTERM is a clean exit" 0 "$rc"
FS_PID=
check "sluicefs@legal: ExecStopPost" run_step sluicefs@.service ExecStopPost
check_fails "sluicefs@legal: unmounted after stop" mountpoint -q "$view"
stop_and_wait "$SEND_PID" "$RECV_PID"
SEND_PID= RECV_PID=

# The checkpoint unit appends to its StandardOutput= file.
cp_out=$(unit_cmds "$EX/systemd/sluice-ledger-checkpoint.service" legal | awk -F'\t' '$1 == "StandardOutput" {print $3}')
cp_file=${cp_out#append:}
mkdir -p "$(dirname "$cp_file")"
eval "set -- $(exec_start sluice-ledger-checkpoint.service)"
mapfile -t priv < <(unit_priv sluice-ledger-checkpoint.service)
if [ $have_strace = 1 ]; then set -- strace -f -qq -o "$T_TMP/trace.ckpt" "$@"; fi
setpriv "${priv[@]}" "$@" >>"$cp_file"
check "checkpoint unit: wrote a checkpoint line" grep -q '^sluice-ledger-checkpoint v1 seq=' "$cp_file"
v=$("$IB/sluice" ledger verify --ledger "$R/var/lib/sluice/ledger.db" --key "$R/etc/sluice/ledger.key" \
     --checkpoint "$cp_file" 2>&1)
check_eq "units' ledger verifies against the checkpoint" 0 "$?"
echo "# $v"
rows=$(sqlite3 "$R/var/lib/sluice/ledger.db" \
    "SELECT event || ' ' || coalesce(session, '-') FROM records" | sort | uniq -c)
check_contains "units' ledger: recv recorded the ingests" "$rows" "ingest-accepted"
check_contains "units' ledger: sluicefs@legal recorded opens as session legal" "$rows" "open-served legal"
check_eq "units' ledger: the reload is recorded" 1 \
    "$(sqlite3 "$R/var/lib/sluice/ledger.db" "SELECT count(*) FROM records WHERE event = 'policy-load' AND reason LIKE '%SIGHUP%'")"

# Every system call each program made is allowed by its unit's filter.
if [ $sanitized = 1 ]; then
    skip "system calls against SystemCallFilter=" "sanitizer build"
elif [ $have_strace = 1 ] && command -v systemd-analyze >/dev/null; then
    expand() {
        systemd-analyze syscall-filter "$1" 2>/dev/null | awk '/^ +[@a-z_0-9]/{print $1}' |
            while read -r s; do case $s in @*) expand "$s" ;; *) echo "$s" ;; esac; done
    }
    for pair in sluicefs@.service:fs sluice-diode-recv.service:recv sluice-diode-send.service:send \
                sluice-ledger-checkpoint.service:ckpt; do
        unit=${pair%%:*} tr=$T_TMP/trace.${pair##*:}
        : >"$T_TMP/allowed"
        for s in $(sed -n 's/^SystemCallFilter=//p' "$EX/systemd/$unit"); do
            case $s in @*) expand "$s" ;; ~*) echo "deny-list filters are not checked: $s" >&2 ;; *) echo "$s" ;; esac
        done | sort -u >"$T_TMP/allowed"
        sed -E 's/^[0-9]+ +//' "$tr" | grep -oE '^[a-z_0-9]+\(' | tr -d '(' | sort -u >"$T_TMP/used"
        missing=$(comm -23 "$T_TMP/used" "$T_TMP/allowed" | tr '\n' ' ')
        echo "# $unit: $(wc -l <"$T_TMP/used") distinct system calls traced"
        check "$unit: the trace is not empty" test -s "$T_TMP/used"
        check_eq "$unit: every system call made is in SystemCallFilter=" "" "$missing"
    done
else
    skip "system calls against SystemCallFilter=" "needs strace and systemd-analyze"
fi
check_lacks "systemd run: nothing left mounted" "$(cat /proc/mounts)" "$T_TMP"

# ---- 3. docker ----------------------------------------------------------------
echo "# 3. examples/docker (at ${SECONDS}s)"
check "run-model.sh parses (bash -n)" bash -n "$EX/docker/run-model.sh"
mkdir -p "$T_TMP/anchor" "$T_TMP/private"
# In a private namespace of our own: one shared anchor, one private dir.
cmd=$(unshare --mount --propagation private bash -c "
    mount --bind '$T_TMP/anchor' '$T_TMP/anchor' && mount --make-shared '$T_TMP/anchor' &&
    DOCKER=echo '$EX/docker/run-model.sh' '$T_TMP/anchor' python:3.11-slim python3 -V" 2>&1)
check_eq "run-model.sh accepts a view on a shared mount" 0 "$?"
check_contains "docker run: --network none" "$cmd" "run --rm --network none"
check_contains "docker run: /data read-only with rslave propagation" "$cmd" "-v $T_TMP/anchor:/data:ro,rslave"
check_contains "docker run: read-only root" "$cmd" "--read-only"
check_contains "docker run: no capabilities" "$cmd" "--cap-drop ALL"
err=$(unshare --mount --propagation private bash -c "mount --bind '$T_TMP/private' '$T_TMP/private' && mount --make-private '$T_TMP/private' &&
    DOCKER=echo '$EX/docker/run-model.sh' '$T_TMP/private'" 2>&1 >/dev/null)
check_eq "run-model.sh refuses a view on a private mount" 2 "$?"
check_contains "run-model.sh says why" "$err" "private mount"
if command -v docker >/dev/null; then
    dh=$(docker run --help 2>&1)
    for f in $(grep -oE '(^| )--[a-z-]+' <<<"$cmd" | tr -d ' ' | sort -u) -v; do
        check_contains "docker run knows $f" "$dh" " $f"
    done
else
    skip "docker run flags" "no docker client"
fi

# rslave vs rprivate on this kernel, with sluicefs itself, inside a mount
# namespace of our own (the host's mounts are not touched). The "containers"
# are mount namespaces started BEFORE sluicefs mounts, each holding a
# recursive bind of the shared anchor made rslave or rprivate, as Docker does.
echo "# propagation: containers started before the mount (at ${SECONDS}s)"
P=$T_TMP/prop
mkdir -p "$P/anchor/legal" "$P/c/slave" "$P/c/private" "$P/vault"
cp -r "$T_TMP/gen/contracts" "$P/vault/"
"$IB/sluice" keygen "$P/lk" >/dev/null
cat >"$P/run.sh" <<'PROP'
# $1 = the test's directory, $2 = sluicefs, $3 = policy
P=$1 FS=$2 POLICY=$3
mount --bind "$P/anchor" "$P/anchor" && mount --make-shared "$P/anchor" || exit 1
container() { # MODE: at each go-N, count REDACTED in a contract under /data/legal
    unshare --mount --propagation unchanged bash -c '
        P=$1 mode=$2
        mount --make-rslave /
        mount --rbind "$P/anchor" "$P/c/$mode" && mount --make-r$mode "$P/c/$mode" || exit 1
        touch "$P/ready-$mode"
        for n in 1 2 3; do
            for i in $(seq 300); do [ -e "$P/go-$n" ] && break; sleep 0.1; done
            c=$(grep -c REDACTED "$P/c/$mode/legal/contracts/2025-001-nda.txt" 2>/dev/null)
            echo "$n: ${c:-0}"
            touch "$P/done-$mode-$n"
        done' _ "$P" "$1" >"$P/out-$1" 2>&1 &
}
fs_up() {
    "$FS" -f -o "policy=$POLICY,ledger=$P/l.db,ledger_key=$P/lk,session=prop" "$P/vault" "$P/anchor/legal" 2>>"$P/fs.log" &
    FS_PID=$!
    for _ in $(seq 100); do mountpoint -q "$P/anchor/legal" && { echo up >>"$P/fs.status"; return; }; sleep 0.1; done
    echo "no mount" >>"$P/fs.status"
}
step() {
    touch "$P/go-$1"
    for _ in $(seq 300); do [ -e "$P/done-slave-$1" ] && [ -e "$P/done-private-$1" ] && return; sleep 0.1; done
}
container slave; container private
for _ in $(seq 100); do [ -e "$P/ready-slave" ] && [ -e "$P/ready-private" ] && break; sleep 0.1; done
step 1                                      # nothing mounted yet
fs_up; step 2                               # mounted after the containers started
kill -TERM $FS_PID; wait $FS_PID
fs_up; step 3                               # after a restart (unmount + mount)
kill -TERM $FS_PID; wait $FS_PID
wait
PROP
SLUICE_KEY_FILE=$SLUICE_KEY_FILE timeout 120 unshare --mount --propagation private bash "$P/run.sh" "$P" "$IB/sluicefs" "$policy"
check_eq "propagation experiment ran" 0 "$?"
check "containers were up before sluicefs mounted" test -e "$P/ready-slave" -a -e "$P/ready-private"
check_eq "sluicefs mounted twice on the shared anchor" "up up" "$(paste -sd' ' "$P/fs.status" 2>/dev/null)"
s=$(paste -sd' ' "$P/out-slave") p=$(paste -sd' ' "$P/out-private")
echo "# REDACTED lines seen by the rslave container: $s; by the rprivate one: $p"
check "rslave: nothing before the mount, the view once mounted, again after a restart" \
    grep -Eqx '1: 0 2: [1-9][0-9]* 3: [1-9][0-9]*' <<<"$s"
check_eq "rprivate: the container never sees the view" "1: 0 2: 0 3: 0" "$p"
check_lacks "propagation experiment: nothing left mounted" "$(cat /proc/mounts)" "$P"

# The Dockerfile: its runtime stage installs (directly or as dependencies)
# the package of every shared library the three programs load.
df=$EX/docker/Dockerfile
check_eq "Dockerfile: two stages, both Debian 12" "FROM debian:12 AS build|FROM debian:12-slim" \
    "$(grep '^FROM' "$df" | paste -sd'|')"
bad=$(grep -E '^[A-Z]+ ' "$df" | awk '{print $1}' | grep -vxE 'FROM|RUN|COPY|WORKDIR|ENTRYPOINT|CMD|ENV|ARG|LABEL|USER|EXPOSE|VOLUME' | sort -u)
check_eq "Dockerfile: only known instructions" "" "$bad"
runtime=$(sed -n '/^FROM debian:12-slim/,/rm -rf/p' "$df" | grep -oE '^ +[a-z0-9][a-z0-9.+ -]+' | tr -s ' \n' ' ')
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
          --no-replaces --no-enhances $runtime 2>/dev/null | grep -v '^ ' | sed 's/:.*//' | sort -u)
# One dpkg -S for every library (it reads its whole database each time).
for b in "$IB"/*; do
    check_contains "Dockerfile installs ${b##*/} (make install does)" "$(grep 'install -m 0755' "$df")" "build/${b##*/} "
done
libs=$(for b in "$IB"/*; do ldd "$b" | awk '$3 ~ /^\// {print $3}'; done | sort -u)
cands=$(for l in $libs; do r=$(readlink -f "$l"); printf '%s\n' "$l" "$r" "${r#/usr}"; done | sort -u)
owners=$(dpkg -S $cands 2>/dev/null)
[ $sanitized = 1 ] && { skip "Dockerfile runtime libraries" "sanitizer build"; libs=; }
for l in $libs; do
    r=$(readlink -f "$l")
    pkg=$(awk -F': ' -v a="$l" -v b="$r" -v c="${r#/usr}" '$2 == a || $2 == b || $2 == c {print $1; exit}' <<<"$owners" | sed 's/:.*//')
    if [ -n "$pkg" ] && grep -qx "$pkg" <<<"$closure"; then ok "Dockerfile runtime provides ${l##*/} ($pkg)"
    else not_ok "Dockerfile runtime provides ${l##*/} (${pkg:-no package})"; fi
done

# ---- 4. YAML: compose, Kubernetes -----------------------------------------------
echo "# 4. YAML (at ${SECONDS}s)"
"$IB/sluicefs" --help >"$T_TMP/fs.help" 2>&1
export EX T_TMP IB inst
python3 - <<'PY'
import glob, os, re, subprocess, sys, yaml
EX, T, IB, inst = os.environ["EX"], os.environ["T_TMP"], os.environ["IB"], os.environ["inst"]
def ok(n): print(f"ok - {n}")
def not_ok(n, why=""):
    print(f"not ok - {n}")
    if why: print(f"#   {why}")
def check(n, cond, why=""): (ok(n) if cond else not_ok(n, why))

docs = {}
for f in sorted(glob.glob(f"{EX}/**/*.y*ml", recursive=True)):
    rel = os.path.relpath(f, EX)
    try:
        docs[rel] = [d for d in yaml.safe_load_all(open(f, encoding="utf-8")) if d is not None]
        ok(f"{rel} parses")
    except yaml.YAMLError as e:
        not_ok(f"{rel} parses", str(e).replace("\n", " "))
check("compose and kubernetes files were found", "compose/compose.yaml" in docs and
      "kubernetes/sluicefs-daemonset.yaml" in docs)

help_text = open(f"{T}/fs.help").read()
block = help_text.split("options (-o):")[1].split("general options")[0] if "options (-o):" in help_text else ""
check("sluicefs --help lists its -o options", bool(block), help_text[:200])
fs_onames = set(re.findall(r"^\s+([a-z_]+)(?:=|\s)", block, re.M))
def onames_of(args):
    """-o names given to sluicefs in an argument list (values may hold ${...})."""
    names, it = [], iter(args)
    for a in it:
        if a == "-o":
            names += [kv.split("=")[0] for kv in next(it).split(",")]
    return names

def lint_policy(text, name, packs_from):
    p = f"{T}/{name}.yaml"
    text = text.replace("/usr/local/share/sluice/rules", packs_from)
    open(p, "w").write(text)
    r = subprocess.run([f"{IB}/sluice", "rules", "lint", p], capture_output=True, text=True)
    check(f"{name}: sluice rules lint passes", r.returncode == 0, (r.stdout + r.stderr).strip())

# --- compose
c = docs.get("compose/compose.yaml", [{}])[0]
svc = c.get("services", {})
model, fs = svc.get("model", {}), svc.get("sluicefs", {})
check("compose: model has network_mode none", model.get("network_mode") == "none")
check("compose: model root file system read-only", model.get("read_only") is True)
check("compose: model drops every capability", model.get("cap_drop") == ["ALL"])
data = [v for v in model.get("volumes", []) if isinstance(v, dict) and v.get("target") == "/data"]
check("compose: model binds the view at /data", len(data) == 1 and data[0].get("type") == "bind"
      and data[0].get("source") == "/srv/sluice/view")
check("compose: /data is read-only", bool(data) and data[0].get("read_only") is True)
check("compose: /data propagation is rslave", bool(data) and data[0].get("bind", {}).get("propagation") == "rslave")
view = [v for v in fs.get("volumes", []) if isinstance(v, dict) and v.get("source") == "/srv/sluice/view"]
check("compose: sluicefs's view bind is rshared (its mount reaches the host)",
      bool(view) and view[0].get("bind", {}).get("propagation") == "rshared")
check("compose: sluicefs gets /dev/fuse", any(str(d).startswith("/dev/fuse") for d in fs.get("devices", [])))
check("compose: sluicefs is privileged (mount(2))", fs.get("privileged") is True)
check("compose: the model waits for sluicefs to be healthy (mounted)",
      model.get("depends_on", {}).get("sluicefs", {}).get("condition") == "service_healthy")
for n in onames_of(fs.get("command", [])):
    check(f"compose: sluicefs -o {n} exists (sluicefs --help)", n in fs_onames)
# The policy sluicefs is given must exist in its container: find the bind
# that holds it, and lint the file on this side of the bind.
pol = next((kv.split("=", 1)[1] for a in fs.get("command", []) for kv in a.split(",")
            if kv.startswith("policy=")), None)
src = None
for v in fs.get("volumes", []):
    if isinstance(v, dict) and pol and pol.startswith(v.get("target", "//") + "/"):
        src = os.path.normpath(os.path.join(EX, "compose", v["source"], pol[len(v["target"]) + 1:]))
check("compose: sluicefs's policy comes from a bind of this tree", src is not None and os.path.isfile(src),
      f"policy={pol}")
if src:
    r = subprocess.run([f"{IB}/sluice", "rules", "lint", src], capture_output=True, text=True)
    check("compose: that policy passes sluice rules lint", r.returncode == 0, (r.stdout + r.stderr).strip())

# --- kubernetes
k = [d for f, ds in docs.items() if f.startswith("kubernetes/") for d in ds]
kinds = {}
for d in k:
    kinds.setdefault(d.get("kind"), []).append(d)
    if d.get("kind") == "Kustomization":
        continue
    check(f"k8s: {d.get('kind')}/{d.get('metadata', {}).get('name')} has apiVersion, kind, metadata.name",
          bool(d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name")))
ds = (kinds.get("DaemonSet") or [{}])[0]
spec = ds.get("spec", {}).get("template", {}).get("spec", {})
ctr = (spec.get("containers") or [{}])[0]
vols = {v["name"]: v for v in spec.get("volumes", [])}
mounts = ctr.get("volumeMounts", [])
check("k8s: DaemonSet container is privileged", ctr.get("securityContext", {}).get("privileged") is True)
bidi = [m for m in mounts if m.get("mountPropagation") == "Bidirectional"]
check("k8s: DaemonSet mounts the view with mountPropagation Bidirectional", len(bidi) == 1)
view_path = vols.get(bidi[0]["name"], {}).get("hostPath", {}).get("path") if bidi else None
check("k8s: the Bidirectional mount is a hostPath", view_path is not None)
check("k8s: DaemonSet gets /dev/fuse", any(v.get("hostPath", {}).get("path") == "/dev/fuse" and
      v["hostPath"].get("type") == "CharDevice" for v in vols.values()))
check("k8s: DaemonSet vault hostPath is mounted read-only",
      any(m.get("mountPath") == "/srv/sluice/vault" and m.get("readOnly") for m in mounts))
for m in mounts:
    v = vols.get(m["name"], {})
    if "secret" in v:
        check(f"k8s: key {m['mountPath']} is mounted with subPath (sluice opens keys O_NOFOLLOW)", "subPath" in m)
        check(f"k8s: key secret defaultMode is 0400", v["secret"].get("defaultMode") == 0o400)
script = " ".join(ctr.get("args", []) + ctr.get("command", []))
for n in re.findall(r"-o\s+\"?([^\s\"]+)", script):
    for kv in n.split(","):
        name = kv.split("=")[0]
        check(f"k8s: sluicefs -o {name} exists (sluicefs --help)", name in fs_onames)
if ctr.get("command", [])[:2] == ["/bin/sh", "-c"]:
    r = subprocess.run(["sh", "-n", "-c", ctr["args"][0]], capture_output=True, text=True)
    check("k8s: the DaemonSet's start script parses (sh -n)", r.returncode == 0, r.stderr.strip())
pod = (kinds.get("Pod") or [{}])[0]
pspec = pod.get("spec", {})
pc = (pspec.get("containers") or [{}])[0]
pv = {v["name"]: v for v in pspec.get("volumes", [])}
dm = [m for m in pc.get("volumeMounts", []) if m.get("mountPath") == "/data"]
check("k8s: model mounts /data read-only", len(dm) == 1 and dm[0].get("readOnly") is True)
check("k8s: /data has mountPropagation HostToContainer", bool(dm) and dm[0].get("mountPropagation") == "HostToContainer")
check("k8s: /data is the DaemonSet's view hostPath", bool(dm) and
      pv.get(dm[0]["name"], {}).get("hostPath", {}).get("path") == view_path)
if pc.get("command") == ["python3", "-c"]:
    try:
        compile(pc["args"][0], "model-pod.yaml", "exec"); ok("k8s: the model's script compiles")
    except SyntaxError as e:
        not_ok("k8s: the model's script compiles", str(e))
sc = pc.get("securityContext", {})
check("k8s: model root is read-only, no privilege escalation, no capabilities",
      sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
      and sc.get("capabilities", {}).get("drop") == ["ALL"])
check("k8s: model is not privileged and not on the host network",
      not sc.get("privileged") and not pspec.get("hostNetwork"))
np = [d for d in kinds.get("NetworkPolicy", [])
      if all(pod["metadata"].get("labels", {}).get(a) == b
             for a, b in d["spec"]["podSelector"].get("matchLabels", {}).items())
      and d["metadata"].get("namespace") == pod["metadata"].get("namespace")]
check("k8s: a NetworkPolicy selects the model pod", len(np) >= 1)
check("k8s: it denies all ingress and egress", bool(np) and sorted(np[0]["spec"].get("policyTypes", [])) == ["Egress", "Ingress"]
      and not np[0]["spec"].get("ingress") and not np[0]["spec"].get("egress"))
sec = (kinds.get("Secret") or [{}])[0]
check("k8s: the Secret lives in the daemon's namespace, not the model's",
      sec.get("metadata", {}).get("namespace") == ds.get("metadata", {}).get("namespace")
      != pod.get("metadata", {}).get("namespace"))
for key, val in sec.get("stringData", {}).items():
    check(f"k8s: placeholder {key} is too short to be accepted as a key", len(val.encode()) < 32)
cm = (kinds.get("ConfigMap") or [{}])[0]
for name, text in cm.get("data", {}).items():
    if name.endswith(".yaml"):
        lint_policy(text, "k8s-" + name[:-5], f"{inst}/usr/local/share/sluice/rules")
pol_mount = next((m["mountPath"] for m in mounts if "configMap" in vols.get(m["name"], {})), "")
check("k8s: sluicefs reads the ConfigMap's policy", f"policy={pol_mount}/policy.yaml" in script)
PY
[ $? -eq 0 ] || T_FAILED=1
# The Compose schema itself: docker-compose (Debian's, v1) or the v2 plugin.
dc=
if command -v docker-compose >/dev/null; then dc=(docker-compose)
elif docker compose version >/dev/null 2>&1; then dc=(docker compose); fi
if [ -n "$dc" ]; then
    (cd "$EX/compose" && "${dc[@]}" -f compose.yaml config >"$T_TMP/dc.out" 2>"$T_TMP/dc.err")
    check_eq "${dc[*]} config accepts compose.yaml" 0 "$?"
    check_eq "${dc[*]} config: no warnings (nothing ignored)" "" "$(cat "$T_TMP/dc.err")"
else
    skip "compose schema" "neither docker-compose nor the compose plugin is installed"
fi
if command -v kubectl >/dev/null; then
    out=$(kubectl kustomize "$EX/kubernetes" 2>&1)
    check_eq "kubectl kustomize examples/kubernetes builds" 0 "$?"
    check_eq "kustomize: 7 resources" 7 "$(grep -c '^kind: ' <<<"$out")"
else
    skip "kubectl kustomize" "kubectl not installed"
fi
t_done
