#!/bin/sh
# Per-container network attach/detach time of netctl (target: under 5 ms each). Needs root,
# `ip` (iproute2) and `nft`. BENCH_N namespaces (default 50) on one bridge network.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q -p netctl --example attach_bench
exec target/release/examples/attach_bench "$@"
