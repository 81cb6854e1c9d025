#!/bin/sh
# Makes the Debian image the lab's Dockerfile starts from (`debian-base:bookworm`) with no
# container registry at all: a bookworm root filesystem from Debian's package mirror
# (debootstrap --variant=minbase, via tests/fixtures/mk-debian-base.sh), imported with
# `rcompose image import`. With a registry that has Debian, this is not needed: build with
# `--build-arg BASE=debian:bookworm` (or OS_LAB_BASE=debian:bookworm for `rcompose build`).
#
# Needs root and the `debootstrap` package; the first run downloads about 40 MB and takes a few
# minutes. The tarball is kept and reused by later runs (delete it for a fresh one).
#
# Usage: sudo ./make-base.sh [IMAGE]        (default: debian-base:bookworm)
# Environment:
#   OS_LAB_BASE_TARBALL  where the tarball is kept
#                        (default: ${XDG_CACHE_HOME:-$HOME/.cache}/rcompose/debian-bookworm-minbase.tar.gz)
#   RCOMPOSE             the rcompose binary (default: rcompose from PATH); RCOMPOSE_ROOT etc. apply
#   FORCE=1              import again even if IMAGE exists
#   MIRROR               the Debian mirror (default: the one apt uses on this machine)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mk="$here/../../tests/fixtures/mk-debian-base.sh"
IMAGE=${1:-debian-base:bookworm}
RCOMPOSE=${RCOMPOSE:-rcompose}
TARBALL=${OS_LAB_BASE_TARBALL:-${XDG_CACHE_HOME:-$HOME/.cache}/rcompose/debian-bookworm-minbase.tar.gz}

if [ ! -f "$mk" ]; then
    echo "make-base.sh: $mk not found (run it from an rcompose checkout)" >&2
    exit 1
fi

fresh=no
if [ -s "$TARBALL" ]; then
    echo "make-base.sh: reusing $TARBALL" >&2
else
    fresh=yes
    mkdir -p "$(dirname "$TARBALL")"
    # Written under a temporary name and renamed, so an interrupted run leaves no half tarball
    # for the next one to reuse.
    tmp="$TARBALL.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    trap 'exit 1' INT TERM
    sh "$mk" "$tmp"
    mv "$tmp" "$TARBALL"
fi

# Importing again would make a new image id (import time is part of it) and so invalidate every
# cached build step on top: keep an image that is there unless the tarball is new or FORCE=1.
if [ "$fresh" = no ] && [ "${FORCE:-0}" != 1 ] && "$RCOMPOSE" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "make-base.sh: $IMAGE exists (FORCE=1 imports it again)" >&2
    exit 0
fi

# debootstrap's tree has no image config: give it what Debian's official image has.
"$RCOMPOSE" image import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' \
    "$TARBALL" "$IMAGE"
