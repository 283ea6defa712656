#!/usr/bin/env bash
# bench/governance.sh - do whole-log reads (an experiment's report, the
# fairness gate, audit proofs) hold up customers?  They run on a background
# worker with its own store handle; this measures /healthz on one connection
# with nothing else running (the baseline, same run) and while the reports
# of an experiment over N turns are asked for back to back, and how long
# one report takes.
#
#   bench/governance.sh      (BENCH_TURNS_SECONDS of traffic first, default 3)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
fill=${BENCH_TURNS_SECONDS:-3}
cd "$root"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target trustgate >/dev/null
work=$(mktemp -d)
pid= loop=
cleanup() {
    [ -n "$loop" ] && kill "$loop" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cat > "$work/g.yaml" <<'YAML'
server: {log_level: warn}
auth:
  api_keys: [{name: bench, key: tg-bench-key}]
users: [{name: sue, role: supervisor, token: tg-sue}]
backends: [{name: s, type: script, reply: 您好，这是测试回答。}]
route: {backend: s}
experiments:
  - name: e
    variants: [{name: control, share: 1}, {name: b, share: 1}]
YAML
"$build/trustgate" serve -c "$work/g.yaml" --listen 127.0.0.1:0 --data "$work/data" \
    > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q "serving on" "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*serving on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
[ -n "$port" ] || { cat "$work/err"; echo "governance bench: trustgate did not start" >&2; exit 1; }
base=http://127.0.0.1:$port
field() { sed "s/.*$1=\([0-9.]*\).*/\1/" <<<"$2"; }

# the traffic: every request a new customer, split by the experiment
export TG_BENCH_BODY='{"model":"trustgate","messages":[{"role":"user","content":"你好"}]}'
line=$(TG_BENCH_USERS=1 wrk -t2 -c16 -d"${fill}s" -s bench/chat.lua "$base" | grep '^TG_BENCH')
grep -q 'status_err=0 ' <<<"$line " || { echo "governance bench: errors: $line" >&2; exit 1; }
turns=$(field requests "$line")

healthz() {
    TG_BENCH_METHOD=GET TG_BENCH_PATH=/healthz wrk -t1 -c1 -d5s -s bench/chat.lua "$base" |
        grep '^TG_BENCH'
}
report() { curl -s -o /dev/null -w '%{time_total}\n' -H 'Authorization: Bearer tg-sue' \
    "$base/v1/experiments/e"; }

quiet=$(healthz)
one=$(report)
( while :; do report >> "$work/reports"; done ) &
loop=$!
busy=$(healthz)
kill "$loop" 2>/dev/null; wait "$loop" 2>/dev/null || true; loop=
n=$(wc -l < "$work/reports")
median=$(sort -n "$work/reports" | awk '{a[NR]=$1} END {print NR ? a[int((NR+1)/2)] : "-"}')
echo "trustgate governance bench: $turns turns in experiment e ($(date -u +%FT%TZ), $(nproc) cores)"
printf '%-44s %10s %10s %10s\n' "" "req/s" "p50 (us)" "p99 (us)"
printf '%-44s %10s %10s %10s\n' "/healthz, nothing else (baseline)" "$(field rps "$quiet")" \
    "$(field p50_us "$quiet")" "$(field p99_us "$quiet")"
printf '%-44s %10s %10s %10s\n' "/healthz while reports run back to back" "$(field rps "$busy")" \
    "$(field p50_us "$busy")" "$(field p99_us "$busy")"
echo "one report of the experiment: ${one}s (first), median ${median}s over $n run during the second measurement"
