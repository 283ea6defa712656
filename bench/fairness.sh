#!/usr/bin/env bash
# bench/fairness.sh - the fairness gate's false closures and power by
# simulation (bench/fairness_bench.c): closure rates at true gaps of 0, 2, 5,
# 8 and 12 points for several group layouts, the gate of src/eval/fairness.c
# beside the gate before issue 17 (bench/fairness_old.c with the old
# fairness.c, taken from git) on the same simulated tables.  Builds the
# library target of CMake, then the benchmark with gcc against libtg.a (it
# is not a CMake target), and runs it.  bench/FAIRNESS.md keeps the figures.
#
# Environment:
#   BENCH_BUILD_DIR  build directory holding libtg.a (default build/)
#   BENCH_OLD_REV    the commit of the old gate (default b48b6a5)
#   BENCH_OLD_SRC    or a source tree holding it (instead of git)
#   BENCH_SIMS       experiments per cell for the new gate (default 1000)
#   BENCH_OLD_SIMS   for the old gate, which is slower (default 200)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
old_rev=${BENCH_OLD_REV:-b48b6a5}
sims=${BENCH_SIMS:-1000}
old_sims=${BENCH_OLD_SIMS:-200}

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target tg -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
mkdir -p "$old/eval"
if [ -n "${BENCH_OLD_SRC:-}" ]; then
  cp "$BENCH_OLD_SRC/src/eval/fairness.h" "$old/eval/fairness.h"
  cp "$BENCH_OLD_SRC/src/eval/fairness.c" "$old/fairness.c"
else
  git -C "$root" show "$old_rev:src/eval/fairness.h" >"$old/eval/fairness.h"
  git -C "$root" show "$old_rev:src/eval/fairness.c" >"$old/fairness.c"
fi
rename="-Dtg_fairness_compute=old_tg_fairness_compute -Dtg_fairness_gate=old_tg_fairness_gate
  -Dtg_fairness_value_pseudonym=old_tg_fairness_value_pseudonym"
cflags="-std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror"
deps=$(pkg-config --cflags --libs jansson yaml-0.1 libpcre2-8 icu-uc icu-i18n libcrypto \
  libevent_core libcurl sqlite3)
# shellcheck disable=SC2086
gcc $cflags $rename -I"$old" -I"$root/src" -c "$old/fairness.c" -o "$old/old_fairness.o"
# shellcheck disable=SC2086
gcc $cflags $rename -I"$old" -I"$root/src" -c "$root/bench/fairness_old.c" -o "$old/old_gate.o"
# shellcheck disable=SC2046,SC2086
gcc $cflags -I"$root/src" "$root/bench/fairness_bench.c" "$old/old_gate.o" "$old/old_fairness.o" \
  "$build/libtg.a" -o "$build/fairness_bench" $deps -llinear -lpthread -lm

echo "trustgate fairness gate benchmark - commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
     "old gate from ${BENCH_OLD_SRC:-$old_rev}, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
"$build/fairness_bench" "$sims" "$old_sims"
