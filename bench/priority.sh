#!/usr/bin/env bash
# bench/priority.sh - fair shares of a busy model under a VIP flood.
#
# One primary rung with 4 calls in flight and 16 queue places in front of a
# fake upstream that answers in 100 ms (so it serves about 40 turns/s), a
# script rung behind.  BENCH_VIP (24) clients flood it as VIP while
# BENCH_CUSTOMERS (6) ordinary customers ask too, for BENCH_DURATION (20) s,
# against two gateways in the same run:
#   base  trustgate built from BENCH_BASELINE_REV (default: the last commit
#         before classes came from API keys), where a request's metadata
#         "tier": "vip" makes it VIP and VIP strictly goes first
#   now   this build: the VIP channel's API key is `class: vip`, the
#         customers' key `customer`, shared out by weight (ladder.shares,
#         default vip 6, customer 3, internal 1)
# Per class: turns, the share the model answered (not the script),
# the share of the model's capacity, and p50/p99 turn time.  The figure
# that matters: customers' share of the model's capacity (target ≥ 0.30).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
duration=${BENCH_DURATION:-20}
vip=${BENCH_VIP:-24}
customers=${BENCH_CUSTOMERS:-6}
cd "$root"
for tool in python3 curl git cmake; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found" >&2; exit 1; }
done
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "${BENCH_JOBS:-2}" --target trustgate fake-upstream >/dev/null ||
    { echo "bench: building trustgate and fake-upstream in $build failed" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-priority.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

rev=${BENCH_BASELINE_REV:-$(git log --format=%H -S'class_from_metadata' -- src/config/config.c | tail -n 1)^}
# shellcheck source=bench/baseline.sh
. bench/baseline.sh
baseline_build "$root" "$rev" "${BENCH_BASELINE_CACHE:-$build/baseline}" || exit 1
rev=$BASELINE_COMMIT

"$build/fake-upstream" --listen 127.0.0.1:0 >"$tmp/up.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/up.out" ] && break; sleep 0.1; done
up=127.0.0.1:$(head -n 1 "$tmp/up.out")
curl -sf -X POST "http://$up/_control/model" \
    -d '{"model":"m-slow","default":{"delay_ms":100}}' >/dev/null

# config NAME KEYS: a gateway config whose auth.api_keys are KEYS
config() {
    cat >"$tmp/$1.yaml" <<YAML
server: {log_level: warn}
auth:
  api_keys:
$2
backends:
  - {name: primary, type: openai, base_url: "http://$up/v1", stream: false}
  - {name: holding, type: script, reply: 您好，系统繁忙，请稍候。}
route: {backend: primary}
ladder:
  budget: 10s
  max_attempts: 1
  rungs:
    - {name: primary, backend: primary, max_inflight: 4, queue: 16, queue_timeout: 2s}
    - {name: script, backend: holding}
YAML
}
config base "    - {name: channel, key: tg-vip}
    - {name: web, key: tg-cust}"
config now "    - {name: channel, key: tg-vip, class: vip}
    - {name: web, key: tg-cust}"

start() {
    "$2" serve -c "$tmp/$1.yaml" --listen 127.0.0.1:0 --data "$tmp/data-$1" \
        >"$tmp/$1.out" 2>"$tmp/$1.err" &
    pids+=($!)
    for _ in $(seq 100); do grep -q 'serving on' "$tmp/$1.out" 2>/dev/null && break; sleep 0.1; done
    sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/$1.out"
}
echo "a VIP flood: $vip VIP clients and $customers customers for ${duration}s;" \
    "4 calls in flight, 16 queue places, the model answers in 100 ms"
echo "(trustgate: $(git describe --always --dirty); baseline $rev)"
printf '%-6s %-9s %7s %12s %15s %8s %8s\n' build class turns "by the model" "model capacity" p50_ms p99_ms
for t in base now; do
    bin=$build/trustgate
    [ "$t" = base ] && bin=$BASELINE_BIN
    port=$(start "$t" "$bin")
    [ -n "$port" ] || { echo "bench: $t did not start: $(tail -n 3 "$tmp/$t.err")" >&2; exit 1; }
    python3 bench/priority.py "$port" "$duration" "$vip" tg-vip "$customers" tg-cust |
        while read -r class n share cap p50 p99; do
            printf '%-6s %-9s %7s %12s %15s %8s %8s\n' "$t" "$class" "$n" "$share" "$cap" "$p50" "$p99"
        done
done
