#!/usr/bin/env bash
# Fuzzes the MSRP parser (services/msrp-relay/msrp_parser_fuzz.cc) with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer, for a bounded time, starting from the seed
# corpus in tests/fuzz/msrp/. Builds just that target with clang in its own build folder (the
# main build uses GCC). Exits non-zero when the fuzzer finds a crash, a sanitizer report, a
# broken invariant, a timeout or an out-of-memory; the input that caused it is kept in the
# build folder (crash-*, timeout-*, oom-*).
#   tests/fuzz.sh [seconds]     default 20, or DIMS_FUZZ_SECONDS
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DIMS_FUZZ_BUILD_DIR:-$ROOT/build/fuzz}"
RUN_SECONDS="${1:-${DIMS_FUZZ_SECONDS:-20}}"
CXX_CLANG="${DIMS_FUZZ_CXX:-clang++}"

command -v "$CXX_CLANG" >/dev/null || {
  echo "fuzz: $CXX_CLANG not found (deploy/install-deps.sh installs clang)" >&2
  exit 1
}

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX_CLANG" -DDIMS_WERROR=ON -DDIMS_BUILD_TESTS=OFF -DDIMS_FUZZ=ON \
  >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target msrp_parser_fuzz

# New inputs go to a scratch corpus; the seeds in the tree are only read.
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$BUILD/artifacts"
echo "fuzz: msrp_parser_fuzz for ${RUN_SECONDS} s"
"$BUILD/services/msrp-relay/msrp_parser_fuzz" \
  -max_total_time="$RUN_SECONDS" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" \
  "$corpus" "$ROOT/tests/fuzz/msrp"
