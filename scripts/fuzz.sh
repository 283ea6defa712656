#!/usr/bin/env bash
# fuzz.sh - fuzz every target in tests/fuzz with libFuzzer (clang), each for
# SECONDS (default 60), growing its corpus in tests/fuzz/corpus/<name>/.
# Crashes are written to build-fuzz/crash-*; commit a minimized reproducer
# to the corpus so `make check` replays it from then on.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTG_FUZZ=ON -DTG_EXCLUDE="${FUZZ_EXCLUDE:-}" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"
for t in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/${t#fuzz_}
  mkdir -p "$corpus"
  echo "== $t for ${secs}s"
  (cd build-fuzz && ./"$t" -max_total_time="$secs" -max_len=8192 -timeout=10 \
     -artifact_prefix=./crash- "../$corpus")
done
