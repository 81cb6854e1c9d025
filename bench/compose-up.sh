#!/usr/bin/env bash
# Times `rcompose up -d` and `down` on generated projects of 1, 10 and 30 busybox services, and
# `rcompose ps -a` on a 500-service project (containers created, not started). Release build,
# as root, image present, a private state root. Prints min / median over ROUNDS rounds and a
# summary against the issue's targets: up -d of 10 services < 0.25 s, of 30 < 0.6 s, ps on 500
# < 100 ms. docker compose / docker-compose / podman-compose are compared when one works.
# Env: ROUNDS (default 5), PS_RUNS (default 20), PS_SERVICES (default 500), SIZES ("1 10 30"),
# BENCH_TOOL=loop to time with a bash loop even when hyperfine is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
PS_RUNS=${PS_RUNS:-20}
PS_SERVICES=${PS_SERVICES:-500}
SIZES=${SIZES:-1 10 30}
[ "$(id -u)" = 0 ] || { echo "compose-up.sh: needs root" >&2; exit 1; }
cargo build --release -p compose --quiet
BIN=$PWD/target/release/rcompose
WORK=$(mktemp -d /tmp/rcompose-bench-up-XXXXXX)
ROOT=$WORK/root
# Every link a root creates starts with `rc` + 4 hex of sha256(root path + NUL)
# (netctl/src/names.rs); that is how leftovers of this run are told from anyone else's.
PREFIX=rc$(printf '%s\0' "$ROOT" | sha256sum | cut -c1-4)
PROJECTS=()  # project dirs to take down on exit
OTHER_DOWN=() # commands tearing down the comparison tool's projects

rc() { "$BIN" --root "$ROOT" "$@"; }

cleanup() {
  local status=$?
  set +e
  for cmd in "${OTHER_DOWN[@]}"; do eval "$cmd" >/dev/null 2>&1; done
  for d in "${PROJECTS[@]}"; do rc -f "$d/compose.yaml" down -v -t 0 >/dev/null 2>&1; done
  # Anything left (a project that failed half-way under another name): force it out.
  for id in $(rc container ls -aq --no-trunc 2>/dev/null); do rc container rm -f "$id" >/dev/null 2>&1; done
  rc network prune -f >/dev/null 2>&1
  # The DNS resolver exits by itself once no network is left; a mount still under the root
  # (a container whose removal failed) would make `rm -rf` fail or cross into the mount.
  if grep -q " $ROOT/" /proc/self/mounts; then
    echo "LEFT BEHIND: mounts under $ROOT:" >&2
    grep " $ROOT/" /proc/self/mounts >&2
    status=1
  else
    rm -rf "$WORK"
  fi
  local links
  links=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$PREFIX" || true)
  if [ -n "$links" ]; then
    echo "LEFT BEHIND: links with this root's prefix $PREFIX:" $links >&2
    status=1
  fi
  if pgrep -f -- "--root $ROOT( |$)" >/dev/null || pgrep -f -- "__supervise $ROOT " >/dev/null; then
    echo "LEFT BEHIND: processes of $ROOT:" >&2
    pgrep -a -f -- "$ROOT" >&2
    status=1
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A busybox image built here (no network needed): Debian's busybox-static and the applets the
# services use, plus the passwd/group files the engine resolves the user from.
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc" "$WORK/rootfs/tmp"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
for a in sh sleep true cat ls ps; do ln -s busybox "$WORK/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$WORK/rootfs/etc/passwd"
echo 'root:x:0:' >"$WORK/rootfs/etc/group"
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .
rc image import "$WORK/busybox.tar" bench-busybox:latest >/dev/null

# free_subnet LEN: the first /LEN in 10.218.0.0/16 (from 10.218.10.0) that overlaps no host
# route (another root's bridge included: the network create would fail, or shadow a route) and
# no subnet this script took already.
TAKEN=()
free_subnet() {
  local n
  n=$( { ip -4 route show | awk '{print $1}'; printf '%s\n' "${TAKEN[@]}"; } | python3 -c '
import ipaddress, sys
used = [ipaddress.ip_network(l.strip(), strict=False) for l in sys.stdin
        if l.strip() and l.strip() != "default"]
for n in ipaddress.ip_network("10.218.0.0/16").subnets(new_prefix=int(sys.argv[1])):
    if n.network_address >= ipaddress.ip_address("10.218.10.0") and \
            not any(n.overlaps(u) for u in used):
        print(n)
        break
' "$1")
  [ -n "$n" ] || { echo "no free /$1 left in 10.218.0.0/16" >&2; return 1; }
  TAKEN+=("$n")
  SUBNET=$n
}

# gen NAME SERVICES: a project dir (in $d) with SERVICES busybox services on one network with its
# own subnet (a /24, or a /22 past 250 services: one address per container). SIGKILL as stop signal so `down` measures our work, not a grace period. Not run in
# $(…): it records the project for the clean-up.
gen() {
  local i
  d=$WORK/$1
  if [ "$2" -gt 250 ]; then free_subnet 22; else free_subnet 24; fi
  mkdir -p "$d"
  {
    echo "name: $1"
    echo "services:"
    for i in $(seq "$2"); do
      printf '  s%d:\n    image: bench-busybox:latest\n    command: ["sleep", "100000"]\n    stop_signal: SIGKILL\n' "$i"
    done
    printf 'networks:\n  default:\n    ipam:\n      config:\n        - subnet: %s\n' \
      "$SUBNET"
  } >"$d/compose.yaml"
  PROJECTS+=("$d")
}

USE_HYPERFINE=0
if [ "${BENCH_TOOL:-}" != loop ] && command -v hyperfine >/dev/null; then USE_HYPERFINE=1; fi

# measure RUNS PREPARE COMMAND: prints "min median" in ms of COMMAND (a shell string), each
# run preceded by PREPARE (untimed) so every `up` starts from nothing and every `down` from a
# running project. One untimed warm-up round first (page cache, the first network's nftables
# table).
measure() {
  local runs=$1 prep=$2 cmd=$3
  if [ "$USE_HYPERFINE" = 1 ]; then
    hyperfine --style none --warmup 1 --runs "$runs" --prepare "$prep" \
      --export-json "$WORK/h.json" "$cmd" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]
print("%.0f %.0f" % (r["min"]*1000, r["median"]*1000))' "$WORK/h.json"
  else
    local times=() s e i
    for i in $(seq 0 "$runs"); do
      bash -c "$prep" >/dev/null 2>&1
      s=$(date +%s%N)
      bash -c "$cmd" >/dev/null 2>&1 || { echo "failed: $cmd" >&2; return 1; }
      e=$(date +%s%N)
      [ "$i" = 0 ] || times+=($(((e - s) / 1000000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[1], a[int((NR+1)/2)]}'
  fi
}

declare -A RESULT # "up 10" -> "min median"
q() { printf '%q' "$1"; }
for n in $SIZES; do
  gen "benchup$n" "$n"
  base="$(q "$BIN") --root $(q "$ROOT") -f $(q "$d/compose.yaml")"
  RESULT["up $n"]=$(measure "$ROUNDS" "$base down -v -t 0" "$base up -d")
  RESULT["down $n"]=$(measure "$ROUNDS" "$base up -d" "$base down -v -t 0")
  rc -f "$d/compose.yaml" down -v -t 0 >/dev/null 2>&1
  printf 'rcompose, %2d services: up -d min %s ms median %s ms; down min %s ms median %s ms\n' "$n" \
    ${RESULT["up $n"]} ${RESULT["down $n"]}
done

# `ps` on a big project: created only (no process per service), which is what `ps -a` reads.
gen "benchps$PS_SERVICES" "$PS_SERVICES"
s=$(date +%s%N)
rc -f "$d/compose.yaml" create >/dev/null 2>"$WORK/create.log" ||
  { tail -5 "$WORK/create.log" >&2; exit 1; }
e=$(date +%s%N)
CREATE_MS=$(((e - s) / 1000000))
got=$(rc -f "$d/compose.yaml" ps -a -q | wc -l)
[ "$got" = "$PS_SERVICES" ] || { echo "ps -a listed $got containers, expected $PS_SERVICES" >&2; exit 1; }
base="$(q "$BIN") --root $(q "$ROOT") -f $(q "$d/compose.yaml")"
RESULT[ps]=$(measure "$PS_RUNS" true "$base ps -a")
s=$(date +%s%N)
rc -f "$d/compose.yaml" down -v -t 0 >/dev/null 2>&1
e=$(date +%s%N)
DOWN_BIG_MS=$(((e - s) / 1000000))
printf 'rcompose, %d services: create %d ms, ps -a min %s ms median %s ms, down %d ms\n' \
  "$PS_SERVICES" "$CREATE_MS" ${RESULT[ps]} "$DOWN_BIG_MS"

# The same with another compose implementation, when one is installed and its engine answers.
OTHER=()
if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
  if docker compose version >/dev/null 2>&1; then
    OTHER=(docker compose) ENGINE=docker
  elif command -v docker-compose >/dev/null; then
    OTHER=(docker-compose) ENGINE=docker
  fi
fi
if [ ${#OTHER[@]} = 0 ] && command -v podman-compose >/dev/null && command -v podman >/dev/null &&
  timeout 10 podman info >/dev/null 2>&1; then
  OTHER=(podman-compose) ENGINE=podman
fi
declare -A OTHER_RESULT
if [ ${#OTHER[@]} = 0 ]; then
  echo "comparison: docker compose, docker-compose and podman-compose are not available (not installed or no daemon answering)"
else
  "$ENGINE" import "$WORK/busybox.tar" bench-busybox:latest >/dev/null
  OTHER_DOWN+=("$ENGINE image rm -f bench-busybox:latest")
  for n in $SIZES; do
    d=$WORK/benchup$n
    base="${OTHER[*]} -f $(q "$d/compose.yaml")"
    OTHER_DOWN=("$base down -v -t 0" "${OTHER_DOWN[@]}")
    OTHER_RESULT["up $n"]=$(measure "$ROUNDS" "$base down -v -t 0" "$base up -d")
    OTHER_RESULT["down $n"]=$(measure "$ROUNDS" "$base up -d" "$base down -v -t 0")
    eval "$base down -v -t 0" >/dev/null 2>&1
  done
fi

ratio() { # rcompose median / other median
  local a=$2 b=$3
  if [ -n "$b" ]; then awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}'; else echo -; fi
}
med() { echo "${1#* }"; }
echo
printf '%-22s %9s %12s %10s %12s %s\n' measurement "min ms" "median ms" target verdict \
  "${OTHER[*]:+rcompose/${OTHER[*]} (median)}"
row() { # label key target-ms
  local label=$1 key=$2 target=$3 r=${RESULT[$2]} verdict=-
  local min=${r% *} md=${r#* }
  if [ -n "$target" ]; then
    if [ "$md" -lt "$target" ]; then verdict=met; else verdict=MISSED; fi
  fi
  local o=${OTHER_RESULT[$key]:-}
  printf '%-22s %9s %12s %10s %12s %s\n' "$label" "$min" "$md" "${target:+<$target}" "$verdict" \
    "${o:+$(ratio "$key" "$md" "$(med "$o")")}"
}
for n in $SIZES; do
  case $n in 10) t=250 ;; 30) t=600 ;; *) t= ;; esac
  row "up -d, $n services" "up $n" "$t"
  row "down, $n services" "down $n" ""
done
row "ps -a, $PS_SERVICES services" ps 100
echo "(verdicts on the median; $ROUNDS rounds for up/down, $PS_RUNS for ps; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
