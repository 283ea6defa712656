#!/usr/bin/env bash
# bench/turn.sh - a full embedded turn through `trustgate serve`: the demo
# deployment (examples/insurance) answers from its knowledge base with the
# builtin backend, no model server: admit, understand (normalization,
# entities, intent classifier), retrieve (BM25), generate (builtin),
# record (SQLite + Merkle audit leaf), reply.  wrk at 32 connections and at
# 1 connection; prints turns/s, p50/p99 latency, CPU per turn and peak RSS.
# Target for now: p99 under 2 ms.
#
# The scheduler places wrk and trustgate (its event loop and its store
# writer); BENCH_PIN=1 pins trustgate to core 1 and wrk to core 0 instead
# (the event loop then shares its core with the writer).
#
# BENCH_EMBED=1 adds dense retrieval (kb.embeddings) served by the test
# suite's fake upstream on this machine (deterministic vectors, no model):
# the turn then waits for one /v1/embeddings round trip and fuses the
# rankings, which is what the option costs besides the model's own time.
#
#   bench/turn.sh            (BENCH_DURATION seconds per run, default 10)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
duration=${BENCH_DURATION:-10}
pin_server=() pin_wrk=()
if [ "${BENCH_PIN:-0}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c 1) pin_wrk=(taskset -c 0)
fi
cd "$root"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target trustgate >/dev/null
work=$(mktemp -d)
pid= fake=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$fake" ] && kill "$fake" 2>/dev/null && wait "$fake" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
sed -e 's/^  log_level: .*/  log_level: warn/' examples/insurance/trustgate.yaml > "$work/trustgate.yaml"
if [ "${BENCH_EMBED:-0}" = 1 ]; then
    cmake --build "$build" -j "$(nproc)" --target fake-upstream >/dev/null
    "$build/fake-upstream" > "$work/fake.port" 2> "$work/fake.err" &
    fake=$!
    for _ in $(seq 50); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
    fport=$(head -1 "$work/fake.port")
    awk -v u="http://127.0.0.1:$fport/v1" '{ print }
        /^  top_k:/ { print "  embeddings:\n    base_url: " u "\n    model: bench-embed\n    dimensions: 256" }' \
        "$work/trustgate.yaml" > "$work/t.yaml" && mv "$work/t.yaml" "$work/trustgate.yaml"
fi
# the deployment's files are resolved against the config's folder
ln -s "$root/examples/insurance/kb" "$work/kb"
ln -s "$root/examples/insurance/intents.tsv" "$work/intents.tsv"
ln -s "$root/examples/insurance/glossary.yaml" "$work/glossary.yaml"
ln -s "$root/examples/insurance/policies.yaml" "$work/policies.yaml"
"${pin_server[@]}" "$build/trustgate" serve -c "$work/trustgate.yaml" --listen 127.0.0.1:0 --data "$work/data" \
    > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q "serving on" "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*serving on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
[ -n "$port" ] || { cat "$work/err"; echo "turn bench: trustgate did not start" >&2; exit 1; }
url=http://127.0.0.1:$port/v1/chat/completions
export TG_BENCH_KEY=tg-demo-key
export TG_BENCH_BODY='{"model":"trustgate","messages":[{"role":"user","content":"意外险理赔需要哪些材料？"}]}'
answer=$(curl -s "$url" -H "Authorization: Bearer $TG_BENCH_KEY" -d "$TG_BENCH_BODY")
grep -q '身份证' <<<"$answer" || { echo "turn bench: unexpected answer: $answer" >&2; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
run() { # conns threads
    local t0 t1 line
    t0=$(ticks)
    line=$("${pin_wrk[@]}" wrk -t"$2" -c"$1" -d"${duration}s" -s bench/chat.lua "$url" | grep '^TG_BENCH')
    t1=$(ticks)
    grep -q 'status_err=0 ' <<<"$line " || { echo "turn bench: errors: $line" >&2; exit 1; }
    local req rps p50 p99
    req=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
    rps=$(sed 's/.* rps=\([0-9.]*\).*/\1/' <<<"$line")
    p50=$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")
    p99=$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$line")
    local cpu
    cpu=$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) * 1e6 / $hz / $req }")
    printf '%-14s %10s %10s %10s %12s\n' "$1 conn(s)" "$rps" "$p50" "$p99" "$cpu"
    echo "$p99" > "$work/p99.$1"
    echo "$p50" > "$work/p50.$1"
}
wrk -t2 -c32 -d2s -s bench/chat.lua "$url" >/dev/null
echo "full embedded turn (demo knowledge base, policies, builtin answerer$([ -n "$fake" ] && echo ", dense retrieval via a local /v1/embeddings")); $(nproc) cores;" \
     "${pin_server[*]:-unpinned} trustgate, ${pin_wrk[*]:-unpinned} wrk; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %10s %10s %10s %12s\n' "" "turns/s" "p50 (us)" "p99 (us)" "CPU/turn (us)"
run 32 2
run 1 1
# Baseline in the same run: the same server answering GET /healthz over one
# connection (HTTP, wrk and scheduling, no turn), so the turn's own share of
# the latency is the difference.
to_us() { awk '{ v = $1; if (v ~ /ms$/) v = v * 1000; else if (v ~ /us$/) v = v + 0;
                 else if (v ~ /s$/) v = v * 1000000; printf "%d", v }'; }
hz_out=$("${pin_wrk[@]}" wrk -t1 -c1 -d"${duration}s" --latency "http://127.0.0.1:$port/healthz")
hz_rps=$(awk '/Requests\/sec/ {print $2}' <<<"$hz_out")
hz_p50=$(awk '$1 == "50%" {print $2}' <<<"$hz_out" | to_us)
hz_p99=$(awk '$1 == "99%" {print $2}' <<<"$hz_out" | to_us)
printf '%-14s %10s %10s %10s\n' "baseline /healthz, 1 conn" "$hz_rps" "$hz_p50" "$hz_p99"
echo "turn minus baseline at 1 connection: p50 +$(( $(cat "$work/p50.1") - hz_p50 )) us," \
     "p99 +$(( $(cat "$work/p99.1") - hz_p99 )) us"
rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
# The server's own view: the turn-duration histogram (admit to reply, no
# network, no waiting to be scheduled before the request is read).
curl -s "http://127.0.0.1:$port/metrics" | awk '
    /^trustgate_turn_duration_seconds_bucket/ {
        match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); n[++k] = $2; b[k] = le }
    END { total = n[k]; for (i = 1; i <= k; i++) if (n[i] >= 0.99 * total) {
              printf "server-side turn time, all %d turns: p99 <= %s s (histogram bucket)\n", total, b[i]; break } }'
echo "peak RSS: $rss MiB"
p99_1=$(cat "$work/p99.1")
if [ "$p99_1" -lt 2000 ]; then verdict=met; else verdict="NOT MET"; fi
echo "target p99 < 2000 us at 1 connection: $verdict ($p99_1 us)"
