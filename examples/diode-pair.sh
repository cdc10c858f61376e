# examples/diode-pair.sh — sourced by the examples that run sluice-diode's
# sender and receiver side by side on one machine (a fifo as the channel).
#
# diode_wait_pair SEND_PID RECV_PID: wait for both, whichever ends first,
# and set send_rc and recv_rc. A side that failed before opening the fifo
# would leave the other waiting for it for ever, so it is stopped (past its
# open, a side sees the end of the stream by itself). Sender exit 1 means
# some files were refused, not a failure.
diode_wait_pair() {
    local send=$1 recv=$2
    while kill -0 "$send" 2>/dev/null && kill -0 "$recv" 2>/dev/null; do sleep 0.05; done
    if ! kill -0 "$send" 2>/dev/null; then
        wait "$send"; send_rc=$?
        [ "$send_rc" -le 1 ] || kill "$recv" 2>/dev/null
        wait "$recv"; recv_rc=$?
    else
        wait "$recv"; recv_rc=$?
        [ "$recv_rc" -eq 0 ] || kill "$send" 2>/dev/null
        wait "$send"; send_rc=$?
    fi
    return 0
}
