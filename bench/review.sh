#!/usr/bin/env bash
# bench/review.sh - the review queue with 10,000 pending tasks: memory,
# claim/decision latency through the API against a same-run /healthz
# baseline, and how late SLA expiry fires.  See bench/review.mjs and
# bench/REVIEW.md.  BENCH_TASKS, BENCH_DECIDE, BENCH_SLA (seconds) adjust it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
cd "$root"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target trustgate >/dev/null
BENCH_BUILD_DIR="$build" exec node bench/review.mjs
