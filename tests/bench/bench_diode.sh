#!/usr/bin/env bash
# tests/bench/bench_diode.sh — sluice-diode against its baselines, in one
# run, on the same tree of mixed documents (1 GiB by default):
#   1. local channel: `sluice-diode send ... --to fd:3 3>&1 | sluice-diode recv --from fd:0`
#      against `tar c | tar x` (+ sync: the receiver's files are durable too);
#   2. UDP on loopback, FEC 32:8 on, against `udp-sender --async --fec`/`udp-receiver`
#      (Debian udpcast, the same one-way mode) at the same FEC overhead (25%);
#   3. the same over a veth pair between two network namespaces with 2%
#      random loss on the receiving side.
# Prints goodput (source bytes / wall time until the receiver is done), how
# many transfers of each arrived intact, and the ratios. Asserts no timing.
# Knobs: BENCH_DIODE_MB (1024), BENCH_DIODE_RUNS (3), BENCH_DIODE_RATE
# (Mbit/s on loopback, 3000), BENCH_DIODE_VETH_RATE (1500), BENCH_DIODE_BASE
# (path of an older sluice-diode: every diode transfer is run with it too,
# side by side, as "... (base)", for before/after figures from one run).
#
# Destination trees are moved aside and deleted only when the bench ends: on
# an ext4 without a journal (these machines), each new inode skips every
# inode of its group deleted in the last minutes (find_inode_bit ->
# recently_deleted), so a transfer started right after deleting the previous
# 9,000-file copy spends most of its CPU allocating inodes. That is the
# cleanup's cost, not the copy's, and it would fall on whichever program
# happened to run next. The copies' page cache is dropped instead.
set -u
ROOT=${SLUICE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${SLUICE_BUILD:-$ROOT/build}
WORK=${BENCH_WORK:-/var/tmp/sluice-bench}/diode
MB=${BENCH_DIODE_MB:-1024}
RUNS=${BENCH_DIODE_RUNS:-3}
RATE=${BENCH_DIODE_RATE:-3000}
VRATE=${BENCH_DIODE_VETH_RATE:-1500}
# udpcast's --max-bitrate overflows above 2^31 bit/s: cap its rate there.
CRATE=$(( RATE > 2000 ? 2000 : RATE ))
CVRATE=$(( VRATE > 2000 ? 2000 : VRATE ))
TMO=$(( 120 + MB / 5 ))   # every transfer is bounded in time
# GNU time (Debian `time`) for CPU seconds; without it, a no-op wrapper.
if [ -x /usr/bin/time ]; then TIMEX=/usr/bin/time; else TIMEX=$WORK/notime; fi
mkdir -p "$WORK"
cd "$WORK" || exit 1
# Our own copy: a rebuild of the tree during the bench must not swap binaries.
cp "$BUILD/sluice-diode" ./sluice-diode || exit 1
BASE=${BENCH_DIODE_BASE:-}
if [ -n "$BASE" ]; then cp "$BASE" ./sluice-diode-base || exit 1; fi
printf '#!/bin/sh\nshift 4; exec "$@"\n' > notime; chmod +x notime
D=$WORK/sluice-diode
[ -s key ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > key)

# ---- the tree: ~60% text documents of log-normal sizes, ~40% incompressible
# "scans"; deterministic, regenerated only when the size changes.
if [ "$(cat src.mb 2>/dev/null)" != "$MB" ]; then
    rm -rf src
    python3 - "$MB" <<'PY'
import os, random, sys
target = int(sys.argv[1]) << 20
r = random.Random(5)
words = ("the quarterly report lists revenue costs margin customer region forecast contract "
         "invoice meeting summary policy review audit budget project delivery schedule risk").split()
text = " ".join(r.choice(words) for _ in range(4_000_000)).encode()
total = i = 0
while total < target:
    d = os.path.join("src", "dept%02d" % (i % 20), "y%d" % (i % 4))
    os.makedirs(d, exist_ok=True)
    if r.random() < 0.6:
        size = min(int(r.lognormvariate(10, 1.5)), 8 << 20, len(text) - 1)
        off = r.randrange(0, len(text) - size)
        data, name = text[off:off + size], "doc%05d.txt" % i
    else:
        size = min(int(r.lognormvariate(11, 1.5)), 32 << 20)
        data, name = r.randbytes(size), "scan%05d.pdf" % i
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    total += len(data); i += 1
PY
    echo "$MB" > src.mb
fi
BYTES=$(du -sb src | cut -f1)
NFILES=$(find src -type f | wc -l)
echo "udpcast rates: loopback ${CRATE} Mbit/s, veth ${CVRATE} Mbit/s; diode: ${RATE} / ${VRATE} Mbit/s"
echo "tree: $NFILES files, $BYTES bytes (BENCH_DIODE_MB=$MB), $RUNS runs each, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

now() { date +%s.%N; }
gbit() { python3 -c "import sys; print('%.3f' % ($BYTES * 8 / float(sys.argv[1]) / 1e9))" "$1"; }
median() { awk 'NF' | sort -g | awk '{a[NR]=$1} END{if (NR==0) print "n/a"; else print a[int((NR+1)/2)]}'; }
intact() { diff -r src "$1" >/dev/null 2>&1; }
# See the top: old copies go to the trash, emptied when the bench ends;
# their page cache is dropped (they are synced first) so that a dozen
# copies of the tree do not fill the memory: writing into a full page cache
# costs the next transfer its reclaim.
mkdir -p trash
dropcache() {
    python3 - "$1" <<'PY'
import os, sys
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        try:
            fd = os.open(os.path.join(d, f), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
}
fresh() {
    local t
    t="trash/$(basename "$1").$(date +%s%N)"
    [ -e "$1" ] && mv "$1" "$t"
    rm -rf "$(dirname "$1")/.$(basename "$1").sluice-staging"; sync
    [ -e "$t" ] && dropcache "$t"
}
NS_S= NS_R=
cleanup() {
    [ -n "$NS_S" ] && ip netns del "$NS_S" 2>/dev/null; [ -n "$NS_R" ] && ip netns del "$NS_R" 2>/dev/null
    rm -rf "$WORK/trash" "$WORK/udst" "$WORK/cdst" "$WORK/dst" "$WORK/tdst"
}
trap cleanup EXIT
# Diode binaries to compare: this build, and the baseline when given.
DS=("$D"); DN=("")
[ -n "$BASE" ] && DS+=("$WORK/sluice-diode-base") && DN+=(" (base)")

declare -A OK GP
record() { # NAME SECONDS INTACT(0/1)
    OK[$1]=$(( ${OK[$1]:-0} + $3 ))
    [ "$3" = 1 ] && GP[$1]="${GP[$1]:-} $(gbit "$2")"
    printf '  %-27s run: %6.2f s  %s Gbit/s  %s\n' "$1" "$2" "$(gbit "$2")" "$([ "$3" = 1 ] && echo intact || echo BROKEN)"
}

# CPU seconds of each side (files PREFIX.send, PREFIX.recv): on a machine
# shared with other work the wall time says little, the CPU cost per byte
# says what one core per side could carry.
cpu_line() {
    [ "$TIMEX" = /usr/bin/time ] || return 0
    local cs cr
    cs=$(tail -n 1 "$1.send" | awk '{print $1 + $2}'); cr=$(tail -n 1 "$1.recv" | awk '{print $1 + $2}')
    printf '    cpu: sender %.2f s, receiver %.2f s -> ceiling with one idle core per side %s Gbit/s\n' \
        "$cs" "$cr" "$(gbit "$(echo "if ($cs > $cr) $cs else $cr" | bc)")"
}

# ---- 1. local channel vs tar | tar
for run in $(seq "$RUNS"); do
    for i in "${!DS[@]}"; do
        fresh "$WORK/dst"
        t0=$(now)
        $TIMEX -o fcpu.send -f "%U %S" "${DS[$i]}" send --no-policy --key key src --to fd:3 3>&1 2>/dev/null |
            $TIMEX -o fcpu.recv -f "%U %S" "${DS[$i]}" recv --from fd:0 --vault "$WORK/dst" --key key 2>/dev/null
        t1=$(now)
        intact dst && ok=1 || ok=0
        record "diode fd:${DN[$i]}" "$(echo "$t1 - $t0" | bc)" $ok
        cpu_line fcpu
    done
    fresh "$WORK/tdst"; mkdir tdst
    t0=$(now)
    $TIMEX -o fcpu.send -f "%U %S" tar c -C src . | $TIMEX -o fcpu.recv -f "%U %S" tar x -C tdst && sync
    t1=$(now)
    intact tdst && ok=1 || ok=0
    record "tar c | tar x + sync" "$(echo "$t1 - $t0" | bc)" $ok
    cpu_line fcpu
done

# ---- UDP helpers. diode_udp NAME NS_SEND NS_RECV ADDR RATE
nsx() { if [ -n "$1" ]; then shift; ip netns exec "$NSX" "$@"; else shift; "$@"; fi; }
diode_udp() { # NAME NS_SEND NS_RECV ADDR RATE [BINARY]
    local name=$1 nss=$2 nsr=$3 addr=$4 rate=$5 D=${6:-$D}
    fresh "$WORK/udst"
    NSX=$nsr nsx "$nsr" $TIMEX -o ucpu.recv -f "%U %S" timeout $TMO "$D" recv \
        --from "udp:$addr:47400" --vault "$WORK/udst" --key key --once --idle-exit 30 2>urecv.err &
    local rpid=$!
    # the sender starts once the receiver's socket is bound (up to 10 s;
    # what it sends before is lost, and a loaded machine starts it late)
    for _ in $(seq 200); do
        NSX=$nsr nsx "$nsr" ss -Hlun "sport = :47400" 2>/dev/null | grep -q . && break
        kill -0 $rpid 2>/dev/null || break
        sleep 0.05
    done
    local t0; t0=$(now)
    NSX=$nss nsx "$nss" $TIMEX -o ucpu.send -f "%U %S" timeout $TMO "$D" send --no-policy \
        --key key --fec 32:8 --rate "$rate" src --to "udp:$addr:47400" 2>/dev/null
    wait $rpid
    local t1; t1=$(now)
    intact udst && ok=1 || ok=0
    record "$name" "$(echo "$t1 - $t0" | bc)" $ok
    [ $ok = 1 ] || sed 's/^/    /' urecv.err | tail -n 1
    cpu_line ucpu
}
# udpcast carries one stream: tar c | udp-sender ... udp-receiver | tar x.
udpcast_udp() { # NAME NS_SEND NS_RECV IFACE_S IFACE_R RATE [EXTRA OPTION...]
    local name=$1 nss=$2 nsr=$3 ifs=$4 ifr=$5 rate=$6
    shift 6
    fresh "$WORK/cdst"; mkdir cdst
    # --rcvbuf: as much as the host grants through SO_RCVBUF (2 x rmem_max, 8 MiB here);
    # with its stock buffer udpcast delivers no 1 GiB transfer intact.
    (NSX=$nsr nsx "$nsr" timeout $TMO udp-receiver --nokbd --interface "$ifr" --portbase 9400 "$@" \
        --rcvbuf 8388608 \
        --start-timeout 20 --receive-timeout 10 \
        2>/dev/null | tar x -C cdst 2>/dev/null; sync) &
    local rpid=$!
    sleep 0.5
    local t0; t0=$(now)
    tar c -C src . | NSX=$nss nsx "$nss" timeout $TMO udp-sender --async --fec 8x16/64 \
        --max-bitrate "${rate}m" --autostart 3 --rexmit-hello-interval 100 --nokbd \
        --interface "$ifs" --portbase 9400 "$@" 2>/dev/null
    wait $rpid
    local t1; t1=$(now)
    intact cdst && ok=1 || ok=0
    record "$name" "$(echo "$t1 - $t0" | bc)" $ok
}

# ---- 2. loopback
for run in $(seq "$RUNS"); do
    for i in "${!DS[@]}"; do
        diode_udp "diode udp loopback${DN[$i]}" "" "" 127.0.0.1 "$RATE" "${DS[$i]}"
    done
    udpcast_udp "udpcast loopback" "" "" lo lo "$CRATE"
done

# ---- 3. veth pair with 2% random loss on the receiving side
id=$$
NS_S=sdb-s-$id NS_R=sdb-r-$id VS=sdb${id}s VR=sdb${id}r NET=10.231.$((id % 250 + 1)).
if ip netns add "$NS_S" 2>/dev/null && ip netns add "$NS_R"; then
    ip link add "$VS" netns "$NS_S" type veth peer name "$VR" netns "$NS_R"
    for ns in "$NS_S" "$NS_R"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_S" addr add "${NET}1/24" dev "$VS"; ip -n "$NS_R" addr add "${NET}2/24" dev "$VR"
    ip -n "$NS_S" link set "$VS" up; ip -n "$NS_R" link set "$VR" up
    # udpcast's default multicast group must route over the veth
    ip -n "$NS_S" route add 224.0.0.0/4 dev "$VS"; ip -n "$NS_R" route add 224.0.0.0/4 dev "$VR"
    ip netns exec "$NS_R" iptables -A INPUT -i "$VR" -p udp -m statistic --mode random --probability 0.02 -j DROP
    for run in $(seq "$RUNS"); do
        for i in "${!DS[@]}"; do
            diode_udp "diode veth 2% loss${DN[$i]}" "$NS_S" "$NS_R" "${NET}2" "$VRATE" "${DS[$i]}"
        done
        udpcast_udp "udpcast veth 2% loss" "$NS_S" "$NS_R" "$VS" "$VR" "$CVRATE" \
            --mcast-rdv-address 239.1.1.1
    done
    echo "  (veth: $(ip netns exec "$NS_R" iptables -L INPUT -v -x -n | awk 'NR==3{print $1}') datagrams dropped on purpose)"
else
    echo "  veth: cannot create network namespaces; skipped"
fi

# ---- summary
echo
printf '%-27s %8s %16s\n' "transfer" "intact" "goodput Gbit/s"
for n in "diode fd:" "diode fd: (base)" "tar c | tar x + sync" "diode udp loopback" \
         "diode udp loopback (base)" "udpcast loopback" "diode veth 2% loss" \
         "diode veth 2% loss (base)" "udpcast veth 2% loss"; do
    [ -n "${OK[$n]+x}" ] || continue
    printf '%-27s %5s/%-3s %12s\n' "$n" "${OK[$n]}" "$RUNS" "$(echo ${GP[$n]:-} | tr ' ' '\n' | median)"
done
ratio() { # A B
    local a b; a=$(echo ${GP[$1]:-} | tr ' ' '\n' | median); b=$(echo ${GP[$2]:-} | tr ' ' '\n' | median)
    if [ "$a" = n/a ] || [ "$b" = n/a ]; then echo "n/a (no intact transfer of one side)"; else
        python3 -c "import sys; print('%.2fx' % (float(sys.argv[1]) / float(sys.argv[2])))" "$a" "$b"; fi
}
echo "ratio diode fd: / tar|tar (target >= 0.8):          $(ratio "diode fd:" "tar c | tar x + sync")"
echo "ratio diode / udpcast, loopback:                     $(ratio "diode udp loopback" "udpcast loopback")"
echo "ratio diode / udpcast, veth 2% loss:                 $(ratio "diode veth 2% loss" "udpcast veth 2% loss")"
if [ -n "$BASE" ]; then
    echo "ratio diode / base, fd:                            $(ratio "diode fd:" "diode fd: (base)")"
    echo "ratio diode / base, loopback:                      $(ratio "diode udp loopback" "diode udp loopback (base)")"
    echo "ratio diode / base, veth 2% loss:                  $(ratio "diode veth 2% loss" "diode veth 2% loss (base)")"
fi
echo "diode udp loopback goodput (target >= 2 Gbit/s, FEC 32:8 on): $(echo ${GP["diode udp loopback"]:-} | tr ' ' '\n' | median)"
