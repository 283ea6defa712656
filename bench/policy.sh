#!/usr/bin/env bash
# bench/policy.sh - policy evaluation per turn: a demo-like set of 15 rules
# plus a 10,000-term keyword library on the insurance demo's customer
# messages (bench/policy_bench.c).  Builds the library target of CMake, then
# the benchmark with gcc against libtg.a (it is not a CMake target), and
# runs it.  bench/POLICY.md keeps the figures and what they mean.
#
# Environment:
#   BENCH_BUILD_DIR  build directory holding libtg.a (default build/)
#   BENCH_EVALS      evaluations timed per stage (default 100000)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
evals=${BENCH_EVALS:-100000}

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target tg -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

# shellcheck disable=SC2046
gcc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root/src" \
  "$root/bench/policy_bench.c" "$build/libtg.a" -o "$build/policy_bench" \
  $(pkg-config --cflags --libs jansson yaml-0.1 libpcre2-8 icu-uc icu-i18n libcrypto \
    libevent_core libcurl sqlite3) -llinear -lpthread -lm

echo "trustgate policy benchmark - commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
     "$(nproc 2>/dev/null || echo '?') cores, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
cd "$root"
"$build/policy_bench" examples/insurance/intents.tsv "$evals"
