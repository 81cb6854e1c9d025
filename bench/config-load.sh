#!/usr/bin/env bash
# Times `rcompose config -q` on a generated 500-service project (extends chains, anchors,
# interpolation, an override file). Release build; prints min / median / max over RUNS runs.
# Target on the 2-core reference machine: under 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
SERVICES=${SERVICES:-500}
cargo build --release -p compose --quiet
BIN=$PWD/target/release/rcompose
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
python3 bench/gen-compose-project.py "$DIR" "$SERVICES"
cd "$DIR"
"$BIN" config -q   # warm the page cache; also fails loudly if the project does not load
times=()
for _ in $(seq "$RUNS"); do
  start=$(date +%s%N)
  "$BIN" config -q
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
n=${#sorted[@]}
printf 'rcompose config -q, %s services, %s runs: min %.1f ms, median %.1f ms, max %.1f ms\n' \
  "$SERVICES" "$n" \
  "$(echo "${sorted[0]} / 1000" | bc -l)" \
  "$(echo "${sorted[$((n / 2))]} / 1000" | bc -l)" \
  "$(echo "${sorted[$((n - 1))]} / 1000" | bc -l)"
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  start=$(date +%s%N); docker compose config -q; end=$(date +%s%N)
  echo "docker compose config -q: $(( (end - start) / 1000000 )) ms"
fi
