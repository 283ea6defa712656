#!/usr/bin/env bash
# bench/durability.sh - the kill -9 test at length: the demo daemon under
# concurrent customers, a reviewer and an auditor, killed with SIGKILL at
# random moments and restarted on its data KILLS times (default 20), then
# every acknowledged turn, review task, decision and audit index checked in
# the store and every checkpoint handed out checked with `audit check --old`.
# Prints one line of figures; exits non-zero on any loss.
#   BENCH_BUILD_DIR  a build with tests (default build/, as `make check` leaves it)
#   KILLS            how many kills (default 20)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
if [ ! -x "$build/itest_durability" ]; then
  echo "durability: $build/itest_durability is missing; run make check first" >&2
  exit 2
fi
cd "$root"
rc=0
out=$(TG_KILLS=${KILLS:-20} TG_BINARY_DIR="$build" "$build/itest_durability" 2>&1) || rc=$?
grep -E '^durability:|FAILED|ERROR' <<<"$out" || true
exit $rc
