#!/usr/bin/env bash
# Times rebuilds of the examples/os-lab image with the release build (as root):
#   - a no-op rebuild (`rcompose build`, every step from the cache),
#   - a label change (`rcompose build --build-arg LAB_REVISION=N`: a metadata step after the
#     RUN steps, nothing runs),
#   - a one-line change to the last RUN step of the Dockerfile (only that step runs again),
# each RUNS times (min / median / max), after one cold build that is timed too (it downloads the
# toolchain from the Debian mirror). The same with `docker build` when a docker engine answers
# (`docker info`); otherwise that is said and skipped.
#
# The Debian base comes from examples/os-lab/make-base.sh (debootstrap); its tarball is kept in
# target/tmp/os-lab-cache/, shared with tests/os_lab.rs. BENCH_ROOT=DIR keeps the state root
# (and so the build cache) between runs of this script; by default a temporary one is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
cargo build --release -p compose --quiet
BIN=$PWD/target/release/rcompose
TARBALL=${OS_LAB_BASE_TARBALL:-${CARGO_TARGET_DIR:-$PWD/target}/tmp/os-lab-cache/debian-bookworm-minbase.tar.gz}
if [ -n "${BENCH_ROOT:-}" ]; then
  ROOT=$BENCH_ROOT
  mkdir -p "$ROOT"
else
  ROOT=$(mktemp -d /tmp/rcompose-bench-XXXXXX)
fi
WORK=$(mktemp -d /tmp/os-lab-bench-XXXXXX)
export RCOMPOSE_ROOT=$ROOT
cleanup() {
  (cd "$WORK/os-lab" 2>/dev/null && "$BIN" down -t 1 >/dev/null 2>&1) || true
  [ -n "${BENCH_ROOT:-}" ] || rm -rf "$ROOT"
  rm -rf "$WORK"
}
trap cleanup EXIT

cp -r examples/os-lab "$WORK/os-lab"
LAB=$WORK/os-lab
RCOMPOSE=$BIN OS_LAB_BASE_TARBALL=$TARBALL examples/os-lab/make-base.sh >/dev/null

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
stats() { # "label" ms... -> min / median / max
  local label=$1; shift
  local sorted=($(printf '%s\n' "$@" | sort -n)) n=$#
  printf '%-44s %s runs: min %7.2f s, median %7.2f s, max %7.2f s\n' "$label" "$n" \
    "$(echo "${sorted[0]}/1000" | bc -l)" "$(echo "${sorted[$((n / 2))]}/1000" | bc -l)" \
    "$(echo "${sorted[$((n - 1))]}/1000" | bc -l)"
}
# The last RUN step of the Dockerfile, with "&& : N" appended: a different step each time.
LAST_RUN="RUN echo 'add-auto-load-safe-path /lab/.gdbinit' > /root/.gdbinit"
grep -qxF "$LAST_RUN" "$LAB/Dockerfile" || { echo "os-lab-build.sh: no line '$LAST_RUN' in the Dockerfile" >&2; exit 1; }
cp "$LAB/Dockerfile" "$WORK/Dockerfile.orig"
edit_last_run() { # N
  sed "s|^$(printf '%s' "$LAST_RUN" | sed 's/[][\\.*^$|/]/\\&/g')\$|& \&\& : edit $1|" \
    "$WORK/Dockerfile.orig" > "$LAB/Dockerfile"
}

run_build() { # LOG COMMAND...: runs in the lab dir; on failure shows the end of the log
  local log=$1; shift
  if ! (cd "$LAB" && "$@") >"$log" 2>&1; then
    echo "os-lab-build.sh: failed: $*" >&2; tail -n 40 "$log" >&2; exit 1
  fi
}

# bench NAME BUILD_COMMAND... : the three kinds of rebuild with one builder.
bench() {
  local name=$1; shift
  local s e t noop=() label=() edit=()
  cp "$WORK/Dockerfile.orig" "$LAB/Dockerfile"
  s=$(now_ms); run_build "$WORK/$name-cold.log" "$@"; e=$(now_ms)
  printf '%-44s %7.2f s\n' "$name: first build (downloads)" "$(echo "($e-$s)/1000" | bc -l)"
  for i in $(seq "$RUNS"); do
    s=$(now_ms); run_build "$WORK/$name.log" "$@"; e=$(now_ms); noop+=($((e - s)))
    if [ "$name" = rcompose ] && grep -q 'Running in' "$WORK/$name.log"; then echo "$name: a no-op rebuild ran a step" >&2; exit 1; fi
  done
  stats "$name: no-op rebuild" "${noop[@]}"
  for i in $(seq "$RUNS"); do
    s=$(now_ms); run_build "$WORK/$name.log" "$@" --build-arg "LAB_REVISION=bench-$i-$$"; e=$(now_ms)
    label+=($((e - s)))
  done
  stats "$name: LAB_REVISION label change" "${label[@]}"
  for i in $(seq "$RUNS"); do
    edit_last_run "$i-$$"
    s=$(now_ms); run_build "$WORK/$name.log" "$@"; e=$(now_ms); edit+=($((e - s)))
    if [ "$name" = rcompose ] && [ "$(grep -c 'Running in' "$WORK/$name.log" || true)" -ne 1 ]; then
      echo "$name: the one-line change did not run exactly one step" >&2; cat "$WORK/$name.log" >&2; exit 1
    fi
  done
  stats "$name: one-line change to the last RUN" "${edit[@]}"
  cp "$WORK/Dockerfile.orig" "$LAB/Dockerfile"
}

echo "os-lab image rebuilds ($(nproc) cores, RUNS=$RUNS)"
bench rcompose "$BIN" build
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' "$TARBALL" debian-base:bookworm >/dev/null
  trap 'docker rmi os-lab-bench debian-base:bookworm >/dev/null 2>&1 || true; cleanup' EXIT
  DOCKER_BUILDKIT=1 bench docker docker build --network host -t os-lab-bench .
else
  echo "docker build: no docker engine answers (docker info failed); not compared"
fi
