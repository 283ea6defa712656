#!/usr/bin/env bash
# bench/ladder.sh - what the degradation ladder costs and how fast it fails over.
#
# 1. Pass-through overhead, no faults: the same fake upstream behind
#      base         trustgate built from BENCH_BASELINE_REV (default: the
#                   last commit before src/dispatch existed),
#                   bench/passthrough.yaml (the route alone)
#      base-ladder  the same binary, bench/passthrough-ladder.yaml (only
#                   when that revision reads the file, i.e. has a ladder)
#      plain        this trustgate, bench/passthrough.yaml
#      ladder       this trustgate, bench/passthrough-ladder.yaml: a
#                   pass-through ladder (the client names the model) with
#                   the default breakers
#    wrk at 32 connections, BENCH_ROUNDS rounds of BENCH_DURATION seconds in
#    which the targets take turns; requests/s and CPU per request, and the
#    ratios ladder/base-ladder (this build's ladder against the baseline's)
#    and ladder/base round by round.  Target: ladder within 10% of base.
#    Baseline builds are kept in BENCH_BASELINE_CACHE (default
#    BENCH_BUILD_DIR/baseline) and reused.
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
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "${BENCH_JOBS:-2}" --target trustgate fake-upstream >/dev/null ||
    { echo "bench: building trustgate and fake-upstream in $build failed" >&2; exit 1; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-ladder.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

# the baseline binary, built once from the chosen revision (bench/baseline.sh)
rev=${BENCH_BASELINE_REV:-$(git log --diff-filter=A --format=%H -- src/dispatch/dispatch.c src/ladder/ladder.c | tail -n 1)^}
# shellcheck source=bench/baseline.sh
. bench/baseline.sh
baseline_build "$root" "$rev" "${BENCH_BASELINE_CACHE:-$build/baseline}" || exit 1
rev=$BASELINE_COMMIT

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
targets=(base)
start base "$BASELINE_BIN" bench/passthrough.yaml
if TG_BENCH_UPSTREAM=127.0.0.1:$up TG_BENCH_LOG_LEVEL=warn \
    "$BASELINE_BIN" config check bench/passthrough-ladder.yaml >/dev/null 2>&1; then
    start base_ladder "$BASELINE_BIN" bench/passthrough-ladder.yaml
    targets+=(base_ladder)
fi
start plain "$build/trustgate" bench/passthrough.yaml
start ladder "$build/trustgate" bench/passthrough-ladder.yaml
targets+=(plain ladder)
for t in "${targets[@]}"; do
    port_var=PORT_$t
    [ -n "${!port_var}" ] || { echo "bench: $t did not start: $(tail -n 5 "$tmp/$t.err")" >&2; exit 1; }
done

ticks() { local f; read -r -a f <<<"$(cut -d')' -f2- "/proc/$1/stat")"; echo $((f[11] + f[12])); }
declare -A REQ CPU SEC RPS_R CPU_R
for t in "${targets[@]}"; do REQ[$t]=0; CPU[$t]=0; SEC[$t]=0; RPS_R[$t]=""; CPU_R[$t]=""; done
for _ in $(seq "$rounds"); do
    for t in "${targets[@]}"; do
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
        RPS_R[$t]+=" $(awk -v n="$n" -v us="$us" 'BEGIN { printf "%.1f", n / (us / 1e6) }')"
        RPS_R[$t]=${RPS_R[$t]# }
        CPU_R[$t]+=" $((c1 - c0)) $n"
    done
done
hz=$(getconf CLK_TCK)
revision=$(git describe --always --dirty)
src_home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
if [ -n "$src_home" ] && ! [ "$src_home" -ef "$root" ]; then
    revision="the sources in $src_home"
fi
echo "pass-through, 32 connections, $rounds x ${duration}s rounds taking turns (trustgate: $revision; baseline ${rev})"
echo "load average before: $load_before; machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
for t in "${targets[@]}"; do
    awk -v n="${REQ[$t]}" -v us="${SEC[$t]}" -v c="${CPU[$t]}" -v hz="$hz" -v t="${t/_/-}" \
        'BEGIN { printf "  %-12s %8.0f req/s   %6.1f us CPU per request\n", t, n / (us / 1e6), c / hz * 1e6 / n }'
done
# vs A B: A's figures over B's, overall and round by round, and whether 1.0
# lies within the rounds' spread.
vs() {
    awk -v a="${RPS_R[$1]}" -v b="${RPS_R[$2]}" -v ca="${CPU_R[$1]}" -v cb="${CPU_R[$2]}" \
        -v ra="${REQ[$1]}" -v sa="${SEC[$1]}" -v rb="${REQ[$2]}" -v sb="${SEC[$2]}" \
        -v xa="${CPU[$1]}" -v xb="${CPU[$2]}" -v name="${1/_/-} / ${2/_/-}" '
        function verdict(lo, hi) { return (lo <= 1 && hi >= 1) ? "within the rounds'"'"' spread" : "outside the rounds'"'"' spread" }
        BEGIN {
            n = split(a, A, " "); split(b, B, " "); split(ca, CA, " "); split(cb, CB, " ")
            rl = 1e9; rh = 0; cl = 1e9; ch = 0; rr = ""; cr = ""
            for (i = 1; i <= n; i++) {
                r = A[i] / B[i]; c = (CA[2 * i - 1] / CA[2 * i]) / (CB[2 * i - 1] / CB[2 * i])
                rr = rr sprintf(" %.3f", r); cr = cr sprintf(" %.3f", c)
                if (r < rl) rl = r; if (r > rh) rh = r; if (c < cl) cl = c; if (c > ch) ch = c
            }
            printf "  %s: throughput %.3f (rounds%s: %s), CPU per request %.3f (rounds%s: %s)\n", name,
                (ra / sa) / (rb / sb), rr, verdict(rl, rh), (xa / ra) / (xb / rb), cr, verdict(cl, ch)
        }'
}
if [ -n "${REQ[base_ladder]:-}" ]; then
    vs ladder base_ladder
fi
vs ladder base
vs plain base
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
        # shellcheck disable=SC2154 # PORT_fo is set by start
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
