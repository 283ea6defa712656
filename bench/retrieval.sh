#!/usr/bin/env bash
# bench/retrieval.sh - the knowledge base's retrieval quality and speed,
# against SQLite FTS5 (trigram tokenizer, bm25()) over the same passages in
# the same run, on two public datasets read as they ship:
#   insqabench_clause_zh  960 questions over 886 distinct insurance-clause
#                         passages (Simplified Chinese)
#   esun_faq_zh_tw        25 dev queries over 617 bank FAQ documents
#                         (Traditional Chinese)
# For each dataset it compares the three tokenizer settings (words, bigrams,
# words+bigrams) and then measures search latency (p50/p99 over
# BENCH_REPEAT passes of all queries) and index build throughput with the
# default setting.  bench/RETRIEVAL.md keeps the figures and what they mean.
#
# Environment:
#   BENCH_BUILD_DIR  build directory with trustgate (default build/)
#   BENCH_REPEAT     passes over the queries for the latency figures (default 20)
#   TG_DATASETS      the datasets folder (default ../shared/datasets beside the repo)
#   BENCH_OUT        also write the latency runs as JSON lines to this file
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
repeat=${BENCH_REPEAT:-20}
data=${TG_DATASETS:-$root/../shared/datasets}
insqa=$data/insqabench_clause_zh/clause_objective.jsonl
esun_kb=$data/esun_faq_zh_tw/faq_kb.jsonl
esun_q=$data/esun_faq_zh_tw/queries_dev.jsonl

if [ ! -f "$insqa" ] || [ ! -f "$esun_kb" ] || [ ! -f "$esun_q" ]; then
  echo "bench/retrieval.sh: datasets not found under $data; skipping"
  exit 0
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target trustgate -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
tg=$build/trustgate

echo "trustgate retrieval benchmark - commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
     "$(nproc 2>/dev/null || echo '?') cores, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
[ -n "${BENCH_OUT:-}" ] && : >"$BENCH_OUT"

run() { # name, eval arguments...
  local name=$1
  shift
  echo
  echo "== $name"
  "$tg" eval retrieval "$@"
}

for tokens in words bigrams words+bigrams; do
  run "insqabench_clause_zh, tokens $tokens" --kb "$insqa" --queries "$insqa" --tokens "$tokens"
  run "esun_faq_zh_tw, tokens $tokens" --kb "$esun_kb" --queries "$esun_q" --tokens "$tokens"
done

run "insqabench_clause_zh, default tokens, latency over $repeat passes" \
  --kb "$insqa" --queries "$insqa" --repeat "$repeat"
run "esun_faq_zh_tw, default tokens, latency over $repeat passes" \
  --kb "$esun_kb" --queries "$esun_q" --repeat "$repeat"

if [ -n "${BENCH_OUT:-}" ]; then
  "$tg" eval retrieval --kb "$insqa" --queries "$insqa" --repeat "$repeat" --json |
    tr -d '\n ' >>"$BENCH_OUT"
  echo >>"$BENCH_OUT"
  "$tg" eval retrieval --kb "$esun_kb" --queries "$esun_q" --repeat "$repeat" --json |
    tr -d '\n ' >>"$BENCH_OUT"
  echo >>"$BENCH_OUT"
fi
