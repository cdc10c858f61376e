#!/usr/bin/env bash
# tests/diode/t_udp.sh — sluice-diode over UDP between two network
# namespaces joined by a veth pair, with 2% of packets dropped at random on
# the receiving side (iptables statistic match; netem is not available).
# Every file must arrive intact, and the sender's side must see zero packets
# from the receiver. Addresses live only inside our own namespaces.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/diode_lib.sh"
[ -x "$DIODE" ] || { echo "no $DIODE"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "needs root for network namespaces"; exit 77; }
command -v iptables >/dev/null || { echo "no iptables"; exit 77; }
cd "$T_TMP"
id=$$
NS_S=sdiode-s-$id NS_R=sdiode-r-$id
VS=sdv${id}s VR=sdv${id}r
NET=10.231.$((id % 250)).
ip netns add $NS_S || { echo "cannot create network namespaces"; exit 77; }
t_at_exit "ip netns del $NS_S 2>/dev/null"
ip netns add $NS_R
t_at_exit "ip netns del $NS_R 2>/dev/null"
ip link add $VS netns $NS_S type veth peer name $VR netns $NS_R
for ns in $NS_S $NS_R; do
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n $ns link set lo up
done
ip -n $NS_S addr add ${NET}1/24 dev $VS
ip -n $NS_R addr add ${NET}2/24 dev $VR
ip -n $NS_S link set $VS up
ip -n $NS_R link set $VR up
# Static neighbours: no ARP exchange is needed in either direction.
mac_r=$(ip -n $NS_R -br link show $VR | awk '{print $3}')
mac_s=$(ip -n $NS_S -br link show $VS | awk '{print $3}')
ip -n $NS_S neigh replace ${NET}2 lladdr "$mac_r" dev $VS nud permanent
ip -n $NS_R neigh replace ${NET}1 lladdr "$mac_s" dev $VR nud permanent
# Receiving side: count everything, drop 2% at random.
ip netns exec $NS_R iptables -A INPUT -i $VR -p udp
ip netns exec $NS_R iptables -A INPUT -i $VR -p udp -m statistic --mode random --probability 0.02 -j DROP
# Sending side: count every packet that arrives from the receiver's side.
ip netns exec $NS_S iptables -A INPUT -i $VS
ip netns exec $NS_S iptables -A OUTPUT -o $VS
counter() { ip netns exec "$1" iptables -L "$2" -v -x -n | awk -v n="$3" 'NR>2 && NR-2==n {print $1}'; }

d_key key
d_tree src 300
ip netns exec $NS_R "$DIODE" recv --from udp:${NET}2:47110 --vault "$T_TMP/vault" --key key \
    --once --idle-exit 20 2>recv.err &
rpid=$!
sleep 0.5
check_eq "receiver runs under a seccomp filter" "2" "$(awk '/^Seccomp:/{print $2}' /proc/$rpid/status 2>/dev/null)"
ip netns exec $NS_S "$DIODE" send --no-policy --key key --fec 16:4 --rate 400 --repeat 1 \
    src --to udp:${NET}2:47110 2>send.err
check_eq "sender exits 0" 0 $?
wait $rpid; rc=$?
check_eq "receiver exits 0 (every announced file arrived)" 0 $rc
check "every file arrives intact over the lossy link" d_same src vault
check "no staged leftovers" d_staging_empty "$T_TMP/vault"
dropped=$(counter $NS_R INPUT 2)
recvd=$(counter $NS_R INPUT 1)
check "the link really lost packets (dropped $dropped of $recvd)" test "${dropped:-0}" -gt 0
sent_pk=$(counter $NS_S OUTPUT 1)
check "the sender sent packets ($sent_pk)" test "${sent_pk:-0}" -gt 0
check_eq "zero packets from the receiver reached the sender's side" 0 "$(counter $NS_S INPUT 1)"
grep 'recv: published' recv.err | sed 's/^/# /'
# Compare with the ends of the veth too: nothing transmitted by the receiver's interface.
tx=$(ip -n $NS_R -s link show $VR | awk '/TX:/{getline; print $2}')
check_eq "the receiver's interface transmitted 0 packets" 0 "$tx"

# ---- packets that fit the MTU: sent with UDP GSO, received with GRO
ip netns exec $NS_R "$DIODE" recv --from udp:${NET}2:47112 --vault "$T_TMP/gvault" --key key \
    --once --idle-exit 20 2>grecv.err &
rpid=$!
sleep 0.5
ip netns exec $NS_S "$DIODE" send --no-policy --key key --packet-size 1472 --rate 400 --repeat 1 \
    src --to udp:${NET}2:47112 2>/dev/null
check_eq "MTU-sized packets (GSO): sender exits 0" 0 $?
wait $rpid; rc=$?
check_eq "MTU-sized packets (GSO): receiver exits 0" 0 $rc
check "MTU-sized packets (GSO): every file arrives intact" d_same src gvault
check_eq "still zero packets from the receiver" 0 "$(counter $NS_S INPUT 1)"

# ---- multicast to the same namespace pair: one sender could feed many receivers
ip -n $NS_S route add 239.0.0.0/8 dev $VS
ip -n $NS_R route add 239.0.0.0/8 dev $VR
ip netns exec $NS_R "$DIODE" recv --from udp:239.1.2.3:47111 --vault "$T_TMP/mvault" --key key \
    --once --idle-exit 20 2>mrecv.err &
rpid=$!
sleep 0.5
ip netns exec $NS_S "$DIODE" send --no-policy --key key --fec 16:4 --rate 400 --repeat 1 \
    src --to udp:239.1.2.3:47111 2>/dev/null
wait $rpid; rc=$?
check_eq "multicast: receiver exits 0" 0 $rc
check "multicast: every file arrives intact" d_same src mvault
t_done
