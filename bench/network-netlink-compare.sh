#!/bin/sh
# Compares one container attach/detach through the async `rtnetlink` crate and through netctl's
# blocking netlink handle (same messages, same kernel). Needs root and `ip`. Builds a separate
# workspace under bench/network-netlink-compare (own target dir and lock file).
set -eu
cd "$(dirname "$0")/network-netlink-compare"
cargo build --release -q
exec target/release/network-netlink-compare "$@"
