#!/usr/bin/env bash
# Installs the Debian packages the test suites use (run as root):
#   docker-registry  the CNCF distribution registry, started on loopback by the e2e harness
#   skopeo           pushes the fixture images the harness builds into that registry
#   busybox-static   the static binary the fixture images are made of
#   nftables, iproute2, tmux  networking and terminal tests
#   libseccomp-dev, pkg-config  build deps of the container runtime (libcontainer seccomp)
#   debootstrap      the Debian base of the example tests (tests/tests/examples.rs)
#   tini             tini-static, the init `--init` / `init: true` mount into containers
set -euo pipefail
packages=(docker-registry skopeo busybox-static nftables iproute2 tmux bc libseccomp-dev pkg-config debootstrap tini)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
