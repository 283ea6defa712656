#!/usr/bin/env bash
# bench/ladder.sh - what the degradation ladder costs and how fast it fails over.
#
# 1. Pass-through overhead, no faults: the same fake upstream behind
#      base    trustgate built from BENCH_BASELINE_REV (default: the last
#              commit before src/dispatch existed), bench/passthrough.yaml
#      plain   this trustgate, bench/passthrough.yaml (the route alone)
#      ladder  this trustgate, bench/passthrough-ladder.yaml
#    wrk at 32 connections, BENCH_ROUNDS rounds of BENCH_DURATION seconds in
#    which the targets take turns; requests/s and CPU per request.
#    Target: ladder within 10% of base.
# 2. Time to fail over, BENCH_TURNS sequential turns each (curl):
#      header-wait  the primary never answers (header_timeout 200 ms)
#      stream-idle  the primary's stream stalls after 2 chunks (idle_timeout 200 ms)
#    the next rung answers; p50/p99 turn time and its excess over the timeout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
duration=${BENCH_DURATION:-5}
rounds=${BENCH_ROUNDS:-3}
turns=${BENCH_TURNS:-200}
cd "$root"
for tool in wrk curl awk git cmake; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found (scripts/install-deps.sh bench)" >&2; exit 1; }
done
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target trustgate fake-upstream >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-ladder.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

# the baseline binary, built from the chosen revision in a worktree
rev=${BENCH_BASELINE_REV:-$(git log --diff-filter=A --format=%H -- src/dispatch/dispatch.c | tail -n 1)^}
git worktree add -q --detach "$tmp/base-src" "$rev"
cmake -S "$tmp/base-src" -B "$tmp/base-build" -DCMAKE_BUILD_TYPE=Release -DTG_TESTS=OFF >/dev/null
cmake --build "$tmp/base-build" -j "$(nproc)" --target trustgate >/dev/null
git worktree remove --force "$tmp/base-src"

"$build/fake-upstream" --listen 127.0.0.1:0 >"$tmp/up.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/up.out" ] && break; sleep 0.1; done
up=$(head -n 1 "$tmp/up.out")

# start NAME BINARY CONFIG: a gateway on a free port; sets PORT_<NAME> and PID_<NAME>
start() {
    TG_BENCH_UPSTREAM=127.0.0.1:$up TG_BENCH_LOG_LEVEL=warn "$2" serve -c "$3" \
        --listen 127.0.0.1:0 --data "$tmp/data-$1" >"$tmp/$1.out" 2>"$tmp/$1.err" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do grep -q 'serving on' "$tmp/$1.out" 2>/dev/null && break; sleep 0.1; done
    printf -v "PORT_$1" '%s' "$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/$1.out")"
    printf -v "PID_$1" '%s' "$pid"
}
start base "$tmp/base-build/trustgate" bench/passthrough.yaml
start plain "$build/trustgate" bench/passthrough.yaml
start ladder "$build/trustgate" bench/passthrough-ladder.yaml

ticks() { local f; read -r -a f <<<"$(cut -d')' -f2- "/proc/$1/stat")"; echo $((f[11] + f[12])); }
declare -A REQ CPU SEC
for t in base plain ladder; do REQ[$t]=0; CPU[$t]=0; SEC[$t]=0; done
for r in $(seq "$rounds"); do
    for t in base plain ladder; do
        port_var=PORT_$t pid_var=PID_$t
        c0=$(ticks "${!pid_var}")
        line=$(TG_BENCH_KEY=tg-bench-key wrk -t2 -c32 -d"${duration}s" -s bench/chat.lua \
            "http://127.0.0.1:${!port_var}/v1/chat/completions" | grep '^TG_BENCH')
        c1=$(ticks "${!pid_var}")
        n=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
        us=$(sed -n 's/.* duration_us=\([0-9]*\).*/\1/p' <<<"$line")
        errs=$(sed -n 's/.*status_err=\([0-9]*\).*/\1/p' <<<"$line")
        [ "${errs:-1}" = 0 ] || { echo "bench: $t answered errors: $line" >&2; exit 1; }
        REQ[$t]=$((REQ[$t] + n)); SEC[$t]=$((SEC[$t] + us)); CPU[$t]=$((CPU[$t] + c1 - c0))
    done
done
hz=$(getconf CLK_TCK)
echo "pass-through, 32 connections, $rounds x ${duration}s rounds (revision $(git describe --always --dirty), baseline ${rev})"
for t in base plain ladder; do
    awk -v n="${REQ[$t]}" -v us="${SEC[$t]}" -v c="${CPU[$t]}" -v hz="$hz" -v t="$t" \
        'BEGIN { printf "  %-7s %8.0f req/s   %6.1f us CPU per request\n", t, n / (us / 1e6), c / hz * 1e6 / n }'
done
awk -v b="${REQ[base]}" -v bs="${SEC[base]}" -v l="${REQ[ladder]}" -v ls="${SEC[ladder]}" \
    'BEGIN { r = (l / ls) / (b / bs); ok = (r >= 0.9) ? "met" : "NOT met"; printf "  ladder / base throughput: %.3f  (target >= 0.90: %s)\n", r, ok }'

# --- time to fail over
cat >"$tmp/fo.yaml" <<YAML
server: {log_level: warn}
auth: {api_keys: [{name: b, key: tg-bench-key}]}
backends:
  - {name: primary, type: openai, base_url: "http://127.0.0.1:$up/v1", header_timeout: 200ms, idle_timeout: 200ms, first_token_timeout: 200ms}
  - {name: light, type: openai, base_url: "http://127.0.0.1:$up/v1", model: light-model}
route: {backend: primary}
ladder:
  breaker: {failures: 1000000}
  rungs: [{name: primary, backend: primary}, {name: light, backend: light}]
YAML
start fo "$build/trustgate" "$tmp/fo.yaml"
curl -s -o /dev/null -d '{"model":"fo-hang","default":{"hang":true}}' "http://127.0.0.1:$up/_control/model"
curl -s -o /dev/null -d '{"model":"fo-stall","default":{"stall_after":2}}' "http://127.0.0.1:$up/_control/model"
echo "time to fail over, $turns sequential turns each (next rung answers)"
for case in hang stall; do
    : >"$tmp/fo-$case.txt"
    for _ in $(seq "$turns"); do
        curl -s -o "$tmp/fo.body" -w '%{time_total}\n' -H 'Authorization: Bearer tg-bench-key' \
            -H 'Content-Type: application/json' \
            -d "{\"model\":\"fo-$case\",\"user\":\"u$RANDOM$RANDOM\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
            "http://127.0.0.1:$PORT_fo/v1/chat/completions" >>"$tmp/fo-$case.txt"
        grep -q '"rung":"light"' "$tmp/fo.body" || { echo "bench: $case did not fail over: $(head -c 300 "$tmp/fo.body")" >&2; exit 1; }
    done
    label=$([ "$case" = hang ] && echo "header-wait (200 ms)" || echo "stream-idle (200 ms)")
    sort -n "$tmp/fo-$case.txt" | awk -v l="$label" '{ v[NR] = $1 * 1000 } END {
        p50 = v[int(NR * 0.5 + 0.5)]; p99 = v[int(NR * 0.99 + 0.5)];
        printf "  %-22s p50 %6.1f ms  p99 %6.1f ms  (p99 past the timeout: %5.1f ms)\n", l, p50, p99, p99 - 200 }'
done
