#!/usr/bin/env bash
# fuzz.sh - fuzz every target in tests/fuzz with libFuzzer (clang), each for
# SECONDS (default 60), then print each target's executions per second.
#
# Each target fuzzes a scratch copy of its corpus, tests/fuzz/corpus/<name>/,
# in the build directory; afterwards only inputs that reach code the corpus
# did not are merged back, so the committed corpus stays small.  With
# FUZZ_MINIMIZE=1 the corpus is instead rebuilt from scratch as the fewest
# inputs that cover the same code (edges, not hit counts).  Crashes are
# written to the build directory as crash-*; commit a minimized reproducer to
# the corpus so `make check` replays it from then on.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Environment: CC (default clang), FUZZ_BUILD (default build-fuzz),
# FUZZ_EXCLUDE (passed to CMake as TG_EXCLUDE), FUZZ_MINIMIZE.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
shift || true
build=${FUZZ_BUILD:-build-fuzz}
case $build in /*) ;; *) build=$root/$build ;; esac
CC=${CC:-clang} cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTG_FUZZ=ON \
  -DTG_EXCLUDE="${FUZZ_EXCLUDE:-}" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
summary=()
failed=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus=$root/tests/fuzz/corpus/$name
  scratch=$build/corpus-$name
  mkdir -p "$corpus"
  rm -rf "$scratch" && mkdir -p "$scratch"
  cp -r "$corpus"/. "$scratch"/
  echo "== $t for ${secs}s"
  log=$build/fuzz-$name.log
  rc=0
  (cd "$build" && ./"$t" -max_total_time="$secs" -max_len=8192 -timeout=10 -print_final_stats=1 \
     -artifact_prefix="$build/crash-$name-" "$scratch") >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    tail -40 "$log"
    failed=1
  fi
  if [ "${FUZZ_MINIMIZE:-0}" = 1 ]; then
    fresh=$build/min-$name
    rm -rf "$fresh" && mkdir -p "$fresh"
    "$build/$t" -merge=1 -use_counters=0 -max_len=8192 "$fresh" "$scratch" >/dev/null 2>&1 || true
    if [ -n "$(ls -A "$fresh")" ]; then
      rm -rf "$corpus" && mv "$fresh" "$corpus"
    fi
  else
    "$build/$t" -merge=1 -use_counters=0 -max_len=8192 "$corpus" "$scratch" >/dev/null 2>&1 || true
  fi
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  state=$([ $rc -eq 0 ] && echo ok || echo "FAILED ($log)")
  summary+=("$(printf '%-24s %8s exec/s  %4d inputs  %s' "$t" "${eps:-?}" "$(ls "$corpus" | wc -l)" "$state")")
done
printf '%s\n' "${summary[@]}"
exit $failed
