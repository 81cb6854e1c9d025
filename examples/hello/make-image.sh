#!/bin/sh
# Makes `busybox:latest` locally from Debian's busybox-static, so the example runs with no
# registry at all (rcompose pulls only what is missing). With network access to Docker Hub this
# script is not needed: `rcompose up` pulls busybox itself.
set -eu
BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || { echo "make-image.sh: $BUSYBOX not found (apt-get install busybox-static)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
cp "$BUSYBOX" "$dir/rootfs/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
rcompose image import -c 'CMD ["sh"]' "$dir/rootfs.tar" busybox:latest
