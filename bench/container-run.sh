#!/usr/bin/env bash
# Times `rcompose container run --rm busybox true` with the image present (release build, as
# root), against `crun`/`runc` on an OCI bundle of the same rootfs and `docker run`/`podman run`
# when they are installed; prints min / median / max over RUNS runs and the ratios of medians.
# Also reports the VmRSS of the supervisor of a detached container.
# Target on the 2-core reference machine: under 25 ms median.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
cargo build --release -p compose --quiet
BIN=$PWD/target/release/rcompose
ROOT=$(mktemp -d /tmp/rcompose-bench-XXXXXX)
WORK=$(mktemp -d)
export RCOMPOSE_ROOT=$ROOT
cleanup() {
  for id in $("$BIN" container ls -aq --no-trunc 2>/dev/null); do "$BIN" container rm -f "$id" >/dev/null 2>&1 || true; done
  rm -rf "$ROOT" "$WORK"
}
trap cleanup EXIT

# A busybox image from the busybox-static package.
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc" "$WORK/rootfs/tmp"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in $("$WORK/rootfs/bin/busybox" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$WORK/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$WORK/rootfs/etc/passwd"
echo 'root:x:0:' >"$WORK/rootfs/etc/group"
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
"$BIN" image import -c 'CMD ["sh"]' "$WORK/rootfs.tar" busybox:latest >/dev/null

median_ms() { # runs "$@" RUNS times, prints "min median max" in ms
  local times=() s e
  "$@" >/dev/null 2>&1 # warm up
  for _ in $(seq "$RUNS"); do
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  local sorted=($(printf '%s\n' "${times[@]}" | sort -n)) n=${#times[@]}
  printf '%.1f %.1f %.1f\n' "$(echo "${sorted[0]}/1000" | bc -l)" \
    "$(echo "${sorted[$((n / 2))]}/1000" | bc -l)" "$(echo "${sorted[$((n - 1))]}/1000" | bc -l)"
}

read -r rmin rmed rmax < <(median_ms "$BIN" container run --rm busybox true)
printf 'rcompose container run --rm busybox true, %s runs: min %s ms, median %s ms, max %s ms\n' \
  "$RUNS" "$rmin" "$rmed" "$rmax"

compare() { # name, command...
  local name=$1; shift
  read -r min med max < <(median_ms "$@")
  printf '%-12s median %s ms (rcompose/%s = %.2f)\n' "$name" "$med" "$name" "$(echo "$rmed/$med" | bc -l)"
}
for rt in crun runc; do
  if command -v "$rt" >/dev/null; then
    mkdir -p "$WORK/bundle-$rt"
    cp -a "$WORK/rootfs" "$WORK/bundle-$rt/rootfs"
    (cd "$WORK/bundle-$rt" && "$rt" spec && sed -i 's/"sh"/"true"/; s/"terminal": true/"terminal": false/' config.json)
    compare "$rt" "$rt" run --bundle "$WORK/bundle-$rt" "bench-$$"
  fi
done
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker image inspect busybox >/dev/null 2>&1 && compare docker docker run --rm busybox true
fi
if command -v podman >/dev/null; then
  podman image exists busybox 2>/dev/null && compare podman podman run --rm busybox true
fi

# Supervisor memory.
id=$("$BIN" container run -d busybox sleep 60)
sleep 3
sup=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["supervisor_pid"])' "$ROOT/containers/$id/state.json")
grep -E 'VmRSS|RssAnon|RssFile' "/proc/$sup/status" | tr -s ' \t' ' ' | sed 's/^/supervisor /'
