#!/usr/bin/env bash
# Installs every Debian 12 package DIMS needs to build, test and run locally.
# Idempotent: does nothing when everything is present. Both README commands call it.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang-format
  # clang with its libFuzzer and sanitizer runtimes, for tests/fuzz.sh (only recommended by
  # clang-14, so named here)
  clang libclang-rt-14-dev
  # libraries (docs/dependencies.md says why each)
  libsofia-sip-ua-dev libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libhiredis-dev libpqxx-dev prometheus-cpp-dev libgtest-dev libgmock-dev libexpat1-dev
  libjemalloc-dev
  # servers and peers used by the local stack and the tests
  redis-server postgresql sip-tester
  # the baseline tests/bench/message_bench measures DIMS against (Kamailio's msilo)
  kamailio kamailio-postgres-modules
  # small tools the scripts use
  curl procps iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# The benchmark starts Kamailio itself; the system service Debian enables would take port 5060
# from the local stack's sip-edge.
if [[ " ${missing[*]} " == *" kamailio "* ]] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now kamailio.service >/dev/null 2>&1 || true
fi
