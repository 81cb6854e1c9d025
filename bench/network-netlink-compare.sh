#!/bin/sh
# Compares one container attach/detach through the async `rtnetlink` crate and through netctl's
# blocking netlink handle (same messages, same kernel). Needs root and `ip`. The crate under
# bench/network-netlink-compare is its own workspace (own lock file) so the main workspace never
# compiles tokio + rtnetlink for it; it builds into the ignored top-level target/ directory.
set -eu
cd "$(dirname "$0")/network-netlink-compare"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-../../target/network-netlink-compare}"
cargo build --release -q
exec "$CARGO_TARGET_DIR/release/network-netlink-compare" "$@"
