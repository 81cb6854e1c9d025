#!/usr/bin/env bash
# Cold pull + unpack of a Debian base image from a local registry: `rcompose image pull`
# (release build, fresh state root each run) against `skopeo copy docker://… oci:<fresh dir>`
# and `docker pull` (image removed before each run) when a docker engine answers.
# Prints every run, the medians and the ratios.
#
# The image: a Debian bookworm minbase rootfs made by tests/fixtures/mk-debian-base.sh
# (debootstrap, installed with apt-get when missing), as one gzip layer. If debootstrap cannot
# run, a synthetic rootfs of random and text files (~90 MB gzip) stands in. The tarball is
# cached in $BENCH_CACHE (default /tmp/rcompose-bench-cache); BENCH_SYNTHETIC=1 forces the
# synthetic image. It is pushed with skopeo to a `docker-registry` (Debian package) on a free
# 127.0.0.1 port with its own storage dir, stopped at exit.
#
# Needs root, docker-registry, skopeo. Usage: sudo bench/image-pull.sh   (RUNS=5 by default;
# SKIP_BUILD=1 skips the release build, RCOMPOSE_BIN=... times another binary)
# Target on the 2-core reference machine: rcompose under 1.0 s (docker ~3.5 s).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_DIR=$PWD
RUNS=${RUNS:-5}
CACHE=${BENCH_CACHE:-/tmp/rcompose-bench-cache}
mkdir -p "$CACHE"

for tool in docker-registry skopeo python3; do
  command -v "$tool" >/dev/null || { echo "image-pull.sh: $tool not found (apt-get install $tool)" >&2; exit 1; }
done

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p compose --quiet
BIN=${RCOMPOSE_BIN:-$REPO_DIR/target/release/rcompose}

WORK=$(mktemp -d /tmp/rcompose-bench-pull-XXXXXX)
REG_PID=
cleanup() {
  [ -z "$REG_PID" ] || { kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------------ the base rootfs tarball
make_synthetic() { # $1: output .tar.gz, ~90 MB gzip: 64 MB random (incompressible) + text
  local root=$WORK/synthetic
  mkdir -p "$root/usr/share/random" "$root/usr/share/text" "$root/etc"
  for i in $(seq 1 64); do
    head -c 1048576 /dev/urandom >"$root/usr/share/random/blob-$i.bin"
  done
  # Text compresses ~4-5x: ~120 MB of it adds ~26 MB of gzip.
  for i in $(seq 1 120); do
    python3 - "$root/usr/share/text/doc-$i.txt" "$i" <<'PY'
import random, sys
random.seed(int(sys.argv[2]))
words = [w.strip() for w in open("/usr/share/dict/words")] if __import__("os").path.exists("/usr/share/dict/words") else \
    ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
     "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "debian",
     "package", "kernel", "library", "version", "config", "network", "service", "daemon", "file"]
with open(sys.argv[1], "w") as f:
    n = 0
    while n < 1_000_000:
        line = " ".join(random.choice(words) for _ in range(12)) + "\n"
        f.write(line)
        n += len(line)
PY
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" -czf "$1" .
  rm -rf "$root"
}

KIND=debian
TARBALL=$CACHE/debian-bookworm-minbase.tar.gz
if [ -n "${BENCH_SYNTHETIC:-}" ]; then
  KIND=synthetic
  TARBALL=$CACHE/synthetic-90mb.tar.gz
fi
if [ ! -s "$TARBALL" ] && [ "$KIND" = debian ]; then
  if ! command -v debootstrap >/dev/null; then
    apt-get install -y debootstrap >/dev/null 2>&1 || echo "image-pull.sh: could not install debootstrap" >&2
  fi
  if ! tests/fixtures/mk-debian-base.sh "$TARBALL.part" >"$WORK/debootstrap.log" 2>&1; then
    echo "image-pull.sh: debootstrap failed (log tail below); using a synthetic image" >&2
    tail -n 5 "$WORK/debootstrap.log" >&2 || true
    rm -f "$TARBALL.part"
    KIND=synthetic
    TARBALL=$CACHE/synthetic-90mb.tar.gz
  else
    mv "$TARBALL.part" "$TARBALL"
  fi
fi
if [ ! -s "$TARBALL" ] && [ "$KIND" = synthetic ]; then
  make_synthetic "$TARBALL.part"
  mv "$TARBALL.part" "$TARBALL"
fi

# ------------------------------------------------------------------ OCI layout with one gzip layer
LAYOUT=$WORK/layout
mkdir -p "$LAYOUT/blobs/sha256"
put_blob() { # file -> prints digest hex, stores it in the layout
  local hex
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$LAYOUT/blobs/sha256/$hex"
  echo "$hex"
}
LAYER_HEX=$(put_blob "$TARBALL")
LAYER_SIZE=$(stat -c %s "$TARBALL")
DIFF_HEX=$(gzip -dc "$TARBALL" | sha256sum | cut -d' ' -f1)
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
printf '{"architecture":"%s","os":"linux","created":"2024-01-01T00:00:00Z","config":{"Cmd":["bash"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"bench: %s rootfs"}]}' \
  "$ARCH" "$DIFF_HEX" "$KIND" >"$WORK/config.json"
CONFIG_HEX=$(put_blob "$WORK/config.json")
CONFIG_SIZE=$(stat -c %s "$WORK/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$CONFIG_HEX" "$CONFIG_SIZE" "$LAYER_HEX" "$LAYER_SIZE" >"$WORK/manifest.json"
MANIFEST_HEX=$(put_blob "$WORK/manifest.json")
MANIFEST_SIZE=$(stat -c %s "$WORK/manifest.json")
echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bookworm"}}]}' \
  "$MANIFEST_HEX" "$MANIFEST_SIZE" >"$LAYOUT/index.json"

# ------------------------------------------------------------------ local registry
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
mkdir -p "$WORK/registry"
cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: "$WORK/registry/storage"
http:
  addr: "127.0.0.1:$PORT"
  secret: rcompose-bench-not-secret
EOF
docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/')" 2>/dev/null && break
  sleep 0.1
done
IMAGE=127.0.0.1:$PORT/bench/debian:bookworm
skopeo copy --quiet --preserve-digests --dest-tls-verify=false --dest-no-creds \
  "oci:$LAYOUT:bookworm" "docker://$IMAGE"

UNPACKED=$(gzip -dc "$TARBALL" | wc -c)
echo "image: $KIND rootfs, one gzip layer of $((LAYER_SIZE / 1000000)) MB ($((UNPACKED / 1000000)) MB unpacked), $IMAGE"
echo "machine: $(nproc) cores; $RUNS cold runs each"

# ------------------------------------------------------------------ timing
now_ns() { date +%s%N; }
declare -A MEDIAN
time_runs() { # name prepare-fn run-fn
  local name=$1 prep=$2 run=$3 times=() s e
  for i in $(seq "$RUNS"); do
    "$prep"
    sync
    s=$(now_ns)
    if ! "$run" >"$WORK/$name.out" 2>&1; then
      echo "$name failed:" >&2; cat "$WORK/$name.out" >&2; return 1
    fi
    e=$(now_ns)
    times+=($(( (e - s) / 1000000 )))
  done
  local sorted
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  MEDIAN[$name]=${sorted[$(( ${#sorted[@]} / 2 ))]}
  printf '%-10s runs (ms): %s   median %d ms\n' "$name" "${times[*]}" "${MEDIAN[$name]}"
}

# Every run gets a fresh directory and nothing is deleted until all runs are done: on ext4
# without a journal (this VM's root filesystem) the inode allocator skips inodes deleted in the
# last minutes, one buffer lookup each, so creating files right after deleting thousands (the
# previous run's image) costs ~0.5 ms per file and would time the deletion, not the pull.
RUN_NO=0
printf '{}\n' >"$WORK/rc-config.json"
mkdir -p "$WORK/docker-config"
rc_prep() { RUN_NO=$((RUN_NO + 1)); RC_ROOT=$WORK/rc-root-$RUN_NO; mkdir -p "$RC_ROOT"; }
rc_run() {
  RCOMPOSE_CONFIG=$WORK/rc-config.json DOCKER_CONFIG=$WORK/docker-config \
    "$BIN" --root "$RC_ROOT" image pull -q "$IMAGE"
}
time_runs rcompose rc_prep rc_run
# Sanity: the image is whole.
RCOMPOSE_CONFIG=$WORK/rc-config.json "$BIN" --root "$RC_ROOT" image ls | sed 's/^/  /'

sk_prep() { RUN_NO=$((RUN_NO + 1)); SK_DIR=$WORK/skopeo-dest-$RUN_NO; }
sk_run() { skopeo copy --quiet --src-tls-verify=false --src-no-creds "docker://$IMAGE" "oci:$SK_DIR:bookworm"; }
time_runs skopeo sk_prep sk_run

if command -v docker >/dev/null && timeout 5 docker info >/dev/null 2>&1; then
  dk_prep() { docker rmi -f "$IMAGE" >/dev/null 2>&1 || true; }
  dk_run() { docker pull -q "$IMAGE"; }
  time_runs docker dk_prep dk_run
  dk_prep
else
  echo "docker     (no docker engine answers; skipped)"
fi

echo
for other in skopeo docker; do
  [ -n "${MEDIAN[$other]:-}" ] || continue
  awk -v a="${MEDIAN[rcompose]}" -v b="${MEDIAN[$other]}" -v o="$other" \
    'BEGIN { printf "rcompose %.3f s vs %s %.3f s: %s takes %.2fx the time of rcompose\n", a/1000, o, b/1000, o, b/a }'
done
