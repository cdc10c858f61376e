#!/usr/bin/env bash
# examples/docker/run-model.sh — start a model container that sees the
# sluicefs view read-only at /data and has no network at all.
#
#   run-model.sh [VIEW_DIR [IMAGE [COMMAND...]]]
#   defaults: /srv/sluice/view, python:3.11-slim, an interactive shell
#
# The command it runs (DOCKER=echo prints it instead):
#
#   docker run --rm --network none --read-only --tmpfs /tmp \
#       --cap-drop ALL --security-opt no-new-privileges --user 65534:65534 \
#       -v /srv/sluice/view:/data:ro,rslave IMAGE COMMAND
#
# Why rslave: Docker's bind mounts are rprivate by default, so the container
# gets a copy of what is mounted at VIEW_DIR at the moment it starts and
# nothing after. If sluicefs mounts later, or restarts (unmount + mount),
# the container keeps an empty directory or a dead FUSE connection ("Transport
# endpoint is not connected"). With rslave, mounts and unmounts under VIEW_DIR
# on the host propagate into the container, and nothing propagates back
# (rshared would let a mount made inside the container appear on the host).
# Propagation needs VIEW_DIR to sit on a *shared* mount on the host (systemd
# makes / shared at boot; elsewhere `mount --bind V V; mount --make-shared V`),
# which this script checks first. Layout: sluicefs@NAME mounts each view at
# VIEW_DIR/NAME (examples/systemd), the model reads /data/NAME.
# Must never start the container with a network or a writable /data.
set -euo pipefail

VIEW=${1:-/srv/sluice/view}
IMAGE=${2:-python:3.11-slim}
shift $(( $# < 2 ? $# : 2 ))
[ $# -gt 0 ] || set -- /bin/sh
DOCKER=${DOCKER:-docker}

die() { echo "run-model: $*" >&2; exit 2; }
[ -d "$VIEW" ] || die "$VIEW: not a directory"
prop=$(findmnt -n -o PROPAGATION --target "$VIEW") || die "$VIEW: findmnt failed"
case $prop in
    shared*) ;;
    *) die "$VIEW: on a $prop mount, so later sluicefs mounts cannot reach the container (mount --bind $VIEW $VIEW && mount --make-shared $VIEW)" ;;
esac
tty=(); [ -t 0 ] && tty=(-it)

exec "$DOCKER" run --rm "${tty[@]}" \
    --network none \
    --read-only --tmpfs /tmp:rw,nosuid,nodev,noexec,size=64m \
    --cap-drop ALL --security-opt no-new-privileges \
    --user 65534:65534 \
    -v "$VIEW:/data:ro,rslave" \
    "$IMAGE" "$@"
