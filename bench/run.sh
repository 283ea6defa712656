#!/usr/bin/env bash
# bench/run.sh - trustgate's overhead as a pass-through proxy, measured against
# nginx as a plain reverse proxy, both in front of the same fake upstream, in
# one run with wrk.  `make bench` runs it; see bench/README.md.
#
# Targets, each measured the same way with bench/chat.lua:
#   direct          the fake upstream itself (the baseline for added latency)
#   nginx           nginx -> fake upstream (bench/nginx.conf.in)
#   trustgate       trustgate -> fake upstream (bench/passthrough.yaml)
#   trustgate@REV   with BENCH_BASELINE_REV: trustgate built from revision
#                   REV, same config, same fake upstream
# For each: a warm-up at 32 connections; then 32 connections / 2 threads
# and 1 connection / 1 thread, BENCH_DURATION seconds each, split into
# rounds in which the targets take turns (so the targets are compared under
# the same background load).  Figures: requests/s, p50/p99 latency, CPU time
# per request of the serving process (utime+stime from /proc/PID/stat) and
# its peak RSS (VmHWM); with a baseline, this trustgate's ratios to it,
# overall and round by round.  Unmet targets do not fail the run (a
# benchmark reports); errors from any target do (a benchmark of error pages
# is worthless).
#
# Environment:
#   BENCH_BUILD_DIR  build directory with trustgate and fake-upstream (default build/)
#   BENCH_DURATION   seconds per target and connection count (default 10)
#   BENCH_WARMUP     seconds of warm-up per target (default 2)
#   BENCH_ROUNDS     rounds each connection count's time is split into (default 5)
#   BENCH_LOG_LEVEL  trustgate server.log_level (default warn: no per-turn lines)
#   BENCH_CONFIG     trustgate's config (default bench/passthrough.yaml)
#   BENCH_BASELINE_REV    also measure trustgate built from this git revision
#                    (default: none), e.g. the commit before a change
#   BENCH_BASELINE_CACHE  where baseline builds are kept and reused
#                    (default BENCH_BUILD_DIR/baseline)
#   BENCH_OUT        also write the figures as JSON to this file
#   BENCH_KEEP=1     keep the temp dir (logs, data) after a successful run
#   NGINX            the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-5}
log_level=${BENCH_LOG_LEVEL:-warn}
config=${BENCH_CONFIG:-$root/bench/passthrough.yaml}
baseline_rev=${BENCH_BASELINE_REV:-}
baseline_cache=${BENCH_BASELINE_CACHE:-$build/baseline}
conns_hi=32
threads_hi=2
api_key=tg-bench-key
body='{"model":"fake-model","messages":[{"role":"user","content":"What does my policy cover if my car is damaged in a hailstorm?"}]}'

# Targets (trustgate at 32 connections unless said otherwise).
goal_rps_ratio=0.8   # requests/s >= 0.8 x nginx's
goal_cpu_us=40       # CPU time per request
goal_p99_add_us=200  # p99 at 1 connection minus the direct upstream's
goal_rss_mib=64      # peak RSS

die() {
    echo "bench: FAILED: $*" >&2
    exit 1
}
note() { echo "bench: $*" >&2; }

for tool in wrk curl awk cmake; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (scripts/install-deps.sh bench installs it)"
done
nginx_bin=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx_bin" ] || die "nginx not found at $nginx_bin (scripts/install-deps.sh bench installs it)"
[[ $duration =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a whole number of seconds"
[[ $warmup =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a whole number of seconds"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a whole number"
[ -f "$config" ] || die "no config file $config"
if [ -n "$baseline_rev" ]; then
    command -v git >/dev/null 2>&1 || die "'git' not found (BENCH_BASELINE_REV needs it)"
fi
clk_tck=$(getconf CLK_TCK)
ncpu=$(getconf _NPROCESSORS_ONLN)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
revision=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

# ------------------------------------------------------------------ build
tg_bin=$build/trustgate
up_bin=$build/fake-upstream
# Configure a release build when there is none; then always let the build
# tool bring the two binaries up to date (quick when they are), so that the
# figures belong to the sources named in the report.
if [ ! -f "$build/CMakeCache.txt" ]; then
    note "configuring a release build in $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
if ! build_log=$(cmake --build "$build" -j2 --target trustgate fake-upstream 2>&1); then
    tail -n 30 <<<"$build_log" >&2
    die "building trustgate and fake-upstream in $build failed"
fi
if [ ! -x "$tg_bin" ] || [ ! -x "$up_bin" ]; then
    die "no $tg_bin or $up_bin after the build"
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
sanitize=$(sed -n 's/^TG_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
# A build directory may belong to other sources than this checkout's.
src_home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if [ -n "$src_home" ] && ! [ "$src_home" -ef "$root" ]; then
    revision="the sources in $src_home"
fi
if [ "$build_type" != Release ] || [ "${sanitize:-OFF}" != OFF ]; then
    note "WARNING: $build is not a plain Release build (type '${build_type:-?}', sanitize '${sanitize:-?}')"
fi
# The baseline: an earlier revision's trustgate, built once per commit.
base_label=""
if [ -n "$baseline_rev" ]; then
    # shellcheck source=bench/baseline.sh
    . "$root/bench/baseline.sh"
    baseline_build "$root" "$baseline_rev" "$baseline_cache" || die "no baseline binary for '$baseline_rev'"
    base_bin=$BASELINE_BIN
    base_label="trustgate@$BASELINE_COMMIT"
fi

# ------------------------------------------------------------------ processes
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-bench.XXXXXX")
chmod 711 "$tmp" # nginx workers run as nobody when started by root
free_kib=$(df -Pk "$tmp" | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((4 * 1024 * 1024)) ]; then
    note "WARNING: $((free_kib / 1024)) MiB free in $tmp; trustgate stores about 3 KiB per turn"
fi
pids=()
wrk_pid=""
ok=0

cleanup() {
    local pid i
    if [ -n "$wrk_pid" ]; then
        kill -TERM "$wrk_pid" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        note "logs and data kept in $tmp"
    elif [ "$ok" = 1 ]; then
        rm -rf "$tmp"
    else
        rm -rf "$tmp"/*-data # hundreds of MiB; BENCH_KEEP=1 keeps it
        note "logs kept in $tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A TCP port on 127.0.0.1 that nothing answers on, for nginx (which cannot
# report a port it picked), below the ephemeral range so that wrk's own
# outgoing connections cannot be holding it.
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free TCP port found"
}

# wait_for FILE REGEX PID WHAT: until a line of FILE matches, or PID dies.
wait_for() {
    local i
    for ((i = 0; i < 150; i++)); do
        if grep -Eq "$2" "$1" 2>/dev/null; then
            return 0
        fi
        kill -0 "$3" 2>/dev/null || { tail -n 20 "$1" "${1%.out}.err" >&2 2>/dev/null || true; die "$4 exited during start-up"; }
        sleep 0.1
    done
    die "$4 did not become ready within 15 s"
}

# chat PORT: POST the benchmark body once; prints the HTTP status (000: no
# answer), the body goes to $tmp/chat.body.
chat() {
    : >"$tmp/chat.body"
    curl -sS --max-time 10 -o "$tmp/chat.body" -w '%{http_code}' \
        -H 'Content-Type: application/json' -H "Authorization: Bearer $api_key" \
        --data-binary "$body" "http://127.0.0.1:$1/v1/chat/completions" || true
}

# check_chat NAME PORT WHEN: one request must give 200 and a chat.completion.
check_chat() {
    local code
    code=$(chat "$2")
    if [ "$code" != 200 ] || ! grep -q '"chat.completion"' "$tmp/chat.body"; then
        note "$1 answered HTTP $code $3:"
        head -c 600 "$tmp/chat.body" >&2 || true
        echo >&2
        die "$1 does not answer chat completions ($3)"
    fi
}

# cpu_ticks PID...: utime+stime of all the processes, in clock ticks.
cpu_ticks() {
    local pid st sum=0
    local -a f
    for pid in "$@"; do
        st=$(<"/proc/$pid/stat") || die "process $pid is gone"
        read -r -a f <<<"${st##*) }" # fields from 3 (state) on; utime is 14, stime 15
        sum=$((sum + f[11] + f[12]))
    done
    echo "$sum"
}

# vm_kib PID FIELD: VmHWM or VmRSS of a process, in KiB.
vm_kib() {
    awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

upstream_completions() {
    curl -sS --max-time 5 "http://127.0.0.1:$up_port/_control/stats" |
        sed -n 's/.*"completions":\([0-9]*\).*/\1/p'
}

# The fake upstream.
"$up_bin" --listen 127.0.0.1:0 >"$tmp/upstream.out" 2>"$tmp/upstream.err" &
up_pid=$!
pids+=("$up_pid")
wait_for "$tmp/upstream.out" '^[0-9]+$' "$up_pid" "fake-upstream"
up_port=$(head -n 1 "$tmp/upstream.out")
check_chat "fake-upstream" "$up_port" "before the run"

# nginx, one worker, everything in its own directory.  start_nginx sets
# ngx_pid, ngx_worker and ngx_port, or fails when nginx exits at once (the
# port it was given may have been taken meanwhile: try another).
ngx_dir=$tmp/nginx
mkdir -p "$ngx_dir"
chmod 755 "$ngx_dir"
start_nginx() {
    local i
    ngx_port=$(free_port)
    sed -e "s|@DIR@|$ngx_dir|g" -e "s|@PORT@|$ngx_port|g" -e "s|@UPSTREAM@|127.0.0.1:$up_port|g" \
        "$root/bench/nginx.conf.in" >"$ngx_dir/nginx.conf"
    "$nginx_bin" -p "$ngx_dir" -c "$ngx_dir/nginx.conf" -e "$ngx_dir/error.log" \
        >"$tmp/nginx.out" 2>"$tmp/nginx.err" &
    ngx_pid=$!
    pids+=("$ngx_pid")
    ngx_worker=""
    for ((i = 0; i < 150; i++)); do
        kill -0 "$ngx_pid" 2>/dev/null || return 1
        ngx_worker=$(awk '{ print $1 }' "/proc/$ngx_pid/task/$ngx_pid/children" 2>/dev/null || true)
        if [ -n "$ngx_worker" ] && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$ngx_port/"; then
            pids+=("$ngx_worker")
            return 0
        fi
        sleep 0.1
    done
    die "nginx did not become ready within 15 s"
}
for attempt in 1 2 3; do
    if start_nginx; then
        break
    fi
    cat "$tmp/nginx.err" "$ngx_dir/error.log" >&2 2>/dev/null || true
    [ "$attempt" -lt 3 ] || die "nginx exited during start-up"
done
check_chat "nginx" "$ngx_port" "before the run"

# start_trustgate NAME BINARY: trustgate with policies and audit on, data in
# the temp dir ($tmp/NAME-data); port 0: it picks a free one and names it in
# its "serving on" line.  Sets tg_pid and tg_port.
start_trustgate() {
    TG_BENCH_UPSTREAM=127.0.0.1:$up_port TG_BENCH_LOG_LEVEL=$log_level \
        "$2" serve -c "$config" --listen 127.0.0.1:0 \
        --data "$tmp/$1-data" >"$tmp/$1.out" 2>"$tmp/$1.err" &
    tg_pid=$!
    pids+=("$tg_pid")
    wait_for "$tmp/$1.out" 'serving on http://' "$tg_pid" "$1"
    tg_port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$tmp/$1.out" | head -n 1)
    [ -n "$tg_port" ] || die "cannot read $1's port from: $(head -n 1 "$tmp/$1.out")"
    check_chat "$1" "$tg_port" "before the run"
}
if [ -n "$baseline_rev" ]; then
    start_trustgate base "$base_bin"
    base_pid=$tg_pid
    base_port=$tg_port
fi
start_trustgate trustgate "$tg_bin"

# ------------------------------------------------------------------ measure
declare -A R # R[target.tag.metric]; tags: 32, 1 (aggregated), 1.rN (round N)

# fail_target NAME WHAT: stop with what is known when a target misbehaves.
fail_target() {
    local name=$1 what=$2
    note "$name: $what"
    if [ "$name" = trustgate ] || [ "$name" = base ]; then
        note "$name stderr (last 30 lines):"
        tail -n 30 "$tmp/$name.err" >&2 || true
    elif [ "$name" = nginx ]; then
        tail -n 30 "$ngx_dir/error.log" >&2 || true
    fi
    die "$name misbehaved under load; see above"
}

# run_wrk NAME PORT CONNS THREADS SECONDS TAG PID...: one wrk run against
# NAME, its figures into R[NAME.TAG.*] (CPU time summed over the PIDs).
# Any error response, socket error, dead process, or a response that never
# reached the upstream ends the benchmark.
run_wrk() {
    local name=$1 port=$2 c=$3 t=$4 secs=$5 tag=$6
    shift 6
    local out=$tmp/wrk-$name-$tag.txt
    local cpu0 cpu1 up0 up1 line kv k pid errs
    local -A m=()
    cpu0=$(cpu_ticks "$@")
    up0=$(upstream_completions)
    # In the background, so that a signal reaches the cleanup trap at once.
    TG_BENCH_BODY=$body TG_BENCH_KEY=$api_key \
        wrk -t"$t" -c"$c" -d"${secs}s" --timeout 5s --latency -s "$root/bench/chat.lua" \
        "http://127.0.0.1:$port" >"$out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid" || { wrk_pid=""; cat "$out" >&2; fail_target "$name" "wrk failed"; }
    wrk_pid=""
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; fail_target "$name" "process $pid died during the run"; }
    done
    cpu1=$(cpu_ticks "$@")
    up1=$(upstream_completions)
    line=$(grep '^TG_BENCH ' "$out") || { cat "$out" >&2; fail_target "$name" "wrk printed no summary"; }
    for kv in ${line#TG_BENCH }; do
        m[${kv%%=*}]=${kv#*=}
    done
    errs=$((m[connect_err] + m[read_err] + m[write_err] + m[timeout_err]))
    if [ "${m[status_err]}" != 0 ] || [ "$errs" != 0 ] || [ "${m[requests]}" = 0 ]; then
        cat "$out" >&2
        fail_target "$name" "$c connections, ${secs}s: ${m[requests]} responses, ${m[status_err]} of them not 2xx; socket errors: connect ${m[connect_err]}, read ${m[read_err]}, write ${m[write_err]}, timeout ${m[timeout_err]}"
    fi
    if [ $((up1 - up0)) -lt "${m[requests]}" ]; then
        fail_target "$name" "answered ${m[requests]} requests but the upstream completed only $((up1 - up0))"
    fi
    for k in requests duration_us rps p50_us p90_us p99_us max_us; do
        R[$name.$tag.$k]=${m[$k]}
    done
    R[$name.$tag.cpu_ticks]=$((cpu1 - cpu0))
    R[$name.$tag.cpu_us]=$(awk -v d=$((cpu1 - cpu0)) -v n="${m[requests]}" -v hz="$clk_tck" \
        'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
}

median() {
    printf '%s\n' "$@" | sort -n |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

targets=(direct nginx trustgate)
declare -A port=([direct]=$up_port [nginx]=$ngx_port [trustgate]=$tg_port)
# The processes whose CPU time counts; the first is the one whose peak RSS is
# reported (for nginx: its worker; the master's RSS is reported apart).
declare -A procs=([direct]="$up_pid" [nginx]="$ngx_worker $ngx_pid" [trustgate]="$tg_pid")
if [ -n "$baseline_rev" ]; then
    targets+=(base)
    port[base]=$base_port
    procs[base]=$base_pid
fi

# Each connection count's time is split into rounds in which the targets
# take turns, so that every target is measured under the same background
# load as the others a few seconds apart: a proxy's latency is compared
# with the direct upstream's of the same round, and this trustgate with the
# baseline's of the same round.  p50/p99 are the median of the rounds; the
# added latency is the median of the per-round differences.
round_secs=$(((duration + rounds / 2) / rounds))
[ "$round_secs" -ge 1 ] || round_secs=1
if [ "$warmup" -gt 0 ]; then
    for n in "${targets[@]}"; do
        note "$n: warm-up ${warmup}s at ${conns_hi} connections"
        # shellcheck disable=SC2086 # procs holds a list of PIDs
        run_wrk "$n" "${port[$n]}" "$conns_hi" "$threads_hi" "$warmup" warm ${procs[$n]}
    done
fi
for c in "$conns_hi" 1; do
    t=$threads_hi
    [ "$c" -gt 1 ] || t=1
    note "$c connection(s): ${rounds} round(s) of ${round_secs}s, the targets taking turns"
    for ((r = 1; r <= rounds; r++)); do
        for n in "${targets[@]}"; do
            # shellcheck disable=SC2086
            run_wrk "$n" "${port[$n]}" "$c" "$t" "$round_secs" "$c.r$r" ${procs[$n]}
        done
    done
done

# per_round_ratio TAG METRIC: this trustgate's METRIC over the baseline's,
# round by round (space-separated).
per_round_ratio() {
    local r out=()
    for ((r = 1; r <= rounds; r++)); do
        out+=("$(awk -v a="${R[trustgate.$1.r$r.$2]}" -v b="${R[base.$1.r$r.$2]}" \
            'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "-" }')")
    done
    echo "${out[*]}"
}

for c in "$conns_hi" 1; do
    for n in "${targets[@]}"; do
        req=0 dur=0 ticks=0 p50s=() p99s=() adds50=() adds99=()
        for ((r = 1; r <= rounds; r++)); do
            req=$((req + R[$n.$c.r$r.requests]))
            dur=$((dur + R[$n.$c.r$r.duration_us]))
            ticks=$((ticks + R[$n.$c.r$r.cpu_ticks]))
            p50s+=("${R[$n.$c.r$r.p50_us]}")
            p99s+=("${R[$n.$c.r$r.p99_us]}")
            adds50+=("$((${R[$n.$c.r$r.p50_us]} - ${R[direct.$c.r$r.p50_us]}))")
            adds99+=("$((${R[$n.$c.r$r.p99_us]} - ${R[direct.$c.r$r.p99_us]}))")
        done
        R[$n.$c.requests]=$req
        R[$n.$c.rps]=$(awk -v n="$req" -v d="$dur" 'BEGIN { printf "%.1f", n * 1e6 / d }')
        R[$n.$c.cpu_us]=$(awk -v t="$ticks" -v n="$req" -v hz="$clk_tck" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
        R[$n.$c.p50_us]=$(median "${p50s[@]}")
        R[$n.$c.p99_us]=$(median "${p99s[@]}")
        R[$n.$c.p99_rounds]=${p99s[*]}
        R[$n.$c.added_p50_us]=$(median "${adds50[@]}")
        R[$n.$c.added_p99_us]=$(median "${adds99[@]}")
    done
    if [ -n "$baseline_rev" ]; then
        R[vs.$c.rps_rounds]=$(per_round_ratio "$c" rps)
        R[vs.$c.cpu_rounds]=$(per_round_ratio "$c" cpu_us)
        d99s=()
        for ((r = 1; r <= rounds; r++)); do
            d99s+=("$((${R[trustgate.$c.r$r.p99_us]} - ${R[base.$c.r$r.p99_us]}))")
        done
        R[vs.$c.p99_diff_rounds]=${d99s[*]}
        R[vs.$c.p99_diff_us]=$(median "${d99s[@]}")
    fi
done

for n in "${targets[@]}"; do
    check_chat "$n" "${port[$n]}" "after the run"
    first=${procs[$n]%% *}
    R[$n.rss_kib]=$(vm_kib "$first" VmHWM)
done
R[nginx.master_rss_kib]=$(vm_kib "$ngx_pid" VmHWM)
R[trustgate.db_kib]=$(du -sk "$tmp/trustgate-data" | awk '{ print $1 }')

# ------------------------------------------------------------------ report
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
met() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "NOT MET"; fi; }
ratio() { if awk "BEGIN { exit !($2 > 0) }"; then calc "$3" "$1 / $2"; else echo "-"; fi; }

rps_ratio=$(ratio "${R[trustgate.32.rps]}" "${R[nginx.32.rps]}" %.2f)
cpu_ratio=$(ratio "${R[trustgate.32.cpu_us]}" "${R[nginx.32.cpu_us]}" %.1f)
add_p99_tg=${R[trustgate.1.added_p99_us]}
add_p99_ngx=${R[nginx.1.added_p99_us]}
rss_mib() { calc %.1f "$1 / 1024"; }
met_rps=$(met "${R[trustgate.32.rps]} >= $goal_rps_ratio * ${R[nginx.32.rps]}")
met_cpu=$(met "${R[trustgate.32.cpu_us]} <= $goal_cpu_us")
met_p99=$(met "$add_p99_tg <= $goal_p99_add_us")
met_rss=$(met "${R[trustgate.rss_kib]} <= $goal_rss_mib * 1024")
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
shared="wrk, the fake upstream and the proxy under test share the machine's $ncpu cores (no pinning)"
tg_version=$("$tg_bin" version 2>/dev/null | head -n 1)
ngx_version=$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')

has_base=0
[ -z "$baseline_rev" ] || has_base=1
# row LABEL DIRECT NGINX TRUSTGATE BASELINE TG/NGINX TG/BASELINE TARGET: the
# baseline's columns only when there is one.
row() {
    if [ "$has_base" = 1 ]; then
        printf '%-30s %10s %10s %10s %17s %9s %12s   %s\n' "$@"
    else
        printf '%-30s %10s %10s %10s %9s   %s\n' "$1" "$2" "$3" "$4" "$6" "$8"
    fi
}
# b METRIC [FORMAT]: the baseline's figure, and vsb: this trustgate's over it.
b() { if [ "$has_base" = 1 ]; then echo "${R[base.$1]}"; else echo "-"; fi; }
vsb() { if [ "$has_base" = 1 ]; then ratio "${R[trustgate.$1]}" "${R[base.$1]}" %.3fx; else echo "-"; fi; }
echo
echo "trustgate pass-through benchmark, $date_utc"
echo "machine: $ncpu cores ($cpu_model); $shared"
echo "load average before the run: $load_before (anything else running skews the figures)"
echo "$tg_version at $revision (${build_type:-?} build, log_level $log_level), $ngx_version, fake-upstream"
echo "config: ${config#"$root"/}"
if [ "$has_base" = 1 ]; then
    echo "baseline: $base_label, trustgate built from revision $BASELINE_COMMIT (Release), the same config"
fi
echo "32 connections: wrk -t2 -c32 after a ${warmup}s warm-up; 1 connection: wrk -t1 -c1; ${duration}s each,"
echo "in ${rounds} round(s) of ${round_secs}s in which the targets take turns; latencies: median of the rounds"
echo
row "" direct nginx trustgate "$base_label" "tg/nginx" "tg/baseline" "target (trustgate)"
row "requests/s @32 conns" "${R[direct.32.rps]}" "${R[nginx.32.rps]}" "${R[trustgate.32.rps]}" "$(b 32.rps)" \
    "${rps_ratio}x" "$(vsb 32.rps)" ">= ${goal_rps_ratio}x nginx: $met_rps"
row "p50 latency @32 (us)" "${R[direct.32.p50_us]}" "${R[nginx.32.p50_us]}" "${R[trustgate.32.p50_us]}" \
    "$(b 32.p50_us)" "$(ratio "${R[trustgate.32.p50_us]}" "${R[nginx.32.p50_us]}" %.1fx)" "$(vsb 32.p50_us)" ""
row "p99 latency @32 (us)" "${R[direct.32.p99_us]}" "${R[nginx.32.p99_us]}" "${R[trustgate.32.p99_us]}" \
    "$(b 32.p99_us)" "$(ratio "${R[trustgate.32.p99_us]}" "${R[nginx.32.p99_us]}" %.1fx)" "$(vsb 32.p99_us)" ""
row "CPU per request @32 (us)" "${R[direct.32.cpu_us]}" "${R[nginx.32.cpu_us]}" "${R[trustgate.32.cpu_us]}" \
    "$(b 32.cpu_us)" "${cpu_ratio}x" "$(vsb 32.cpu_us)" "<= $goal_cpu_us us: $met_cpu"
row "requests/s @1 conn" "${R[direct.1.rps]}" "${R[nginx.1.rps]}" "${R[trustgate.1.rps]}" "$(b 1.rps)" \
    "$(ratio "${R[trustgate.1.rps]}" "${R[nginx.1.rps]}" %.2fx)" "$(vsb 1.rps)" ""
row "p50 latency @1 (us)" "${R[direct.1.p50_us]}" "${R[nginx.1.p50_us]}" "${R[trustgate.1.p50_us]}" \
    "$(b 1.p50_us)" "" "$(vsb 1.p50_us)" ""
row "p99 latency @1 (us)" "${R[direct.1.p99_us]}" "${R[nginx.1.p99_us]}" "${R[trustgate.1.p99_us]}" \
    "$(b 1.p99_us)" "" "$(vsb 1.p99_us)" ""
row "added p50 @1 vs direct (us)" "-" "${R[nginx.1.added_p50_us]}" "${R[trustgate.1.added_p50_us]}" \
    "$(b 1.added_p50_us)" "$(ratio "${R[trustgate.1.added_p50_us]}" "${R[nginx.1.added_p50_us]}" %.1fx)" \
    "$(vsb 1.added_p50_us)" ""
row "added p99 @1 vs direct (us)" "-" "$add_p99_ngx" "$add_p99_tg" "$(b 1.added_p99_us)" \
    "$(ratio "$add_p99_tg" "$add_p99_ngx" %.1fx)" "$(vsb 1.added_p99_us)" "<= $goal_p99_add_us us: $met_p99"
row "CPU per request @1 (us)" "${R[direct.1.cpu_us]}" "${R[nginx.1.cpu_us]}" "${R[trustgate.1.cpu_us]}" \
    "$(b 1.cpu_us)" "$(ratio "${R[trustgate.1.cpu_us]}" "${R[nginx.1.cpu_us]}" %.1fx)" "$(vsb 1.cpu_us)" ""
row "peak RSS (MiB)" "$(rss_mib "${R[direct.rss_kib]}")" "$(rss_mib "${R[nginx.rss_kib]}")" \
    "$(rss_mib "${R[trustgate.rss_kib]}")" "$([ "$has_base" = 1 ] && rss_mib "${R[base.rss_kib]}" || echo -)" \
    "$(ratio "${R[trustgate.rss_kib]}" "${R[nginx.rss_kib]}" %.1fx)" "$(vsb rss_kib)" \
    "<= $goal_rss_mib MiB: $met_rss"
echo
echo "p99 @1 per round (us): direct ${R[direct.1.p99_rounds]}; nginx ${R[nginx.1.p99_rounds]}; trustgate ${R[trustgate.1.p99_rounds]}"
if [ "$has_base" = 1 ]; then
    # spread WHAT ROUNDS BETTER: where 1.0 lies among the per-round ratios.
    spread() {
        awk -v what="$1" -v better="$3" '{
            lo = hi = $1; up = down = 0
            for (i = 1; i <= NF; i++) {
                if ($i < lo) lo = $i
                if ($i > hi) hi = $i
                if ($i > 1) up++; else if ($i < 1) down++
            }
            w = (better == "up") ? up : down
            if (lo <= 1 && hi >= 1)
                printf "%s: rounds %.3f to %.3f, %d of %d better: within the round-to-round spread\n", what, lo, hi, w, NF
            else
                printf "%s: rounds %.3f to %.3f, every round %s\n", what, lo, hi, w == NF ? "better" : "worse"
        }' <<<"$2"
    }
    echo
    echo "trustgate against $base_label, round by round (this build's figure over the baseline's):"
    echo "  requests/s @32:       ${R[vs.32.rps_rounds]}"
    echo "  CPU per request @32:  ${R[vs.32.cpu_rounds]}"
    echo "  requests/s @1:        ${R[vs.1.rps_rounds]}"
    echo "  CPU per request @1:   ${R[vs.1.cpu_rounds]}"
    echo "  p99 @1, difference (us): ${R[vs.1.p99_diff_rounds]} (median ${R[vs.1.p99_diff_us]})"
    echo "  $(spread "requests/s @32" "${R[vs.32.rps_rounds]}" up)"
    echo "  $(spread "CPU per request @32" "${R[vs.32.cpu_rounds]}" down)"
    echo "  $(spread "CPU per request @1" "${R[vs.1.cpu_rounds]}" down)"
fi
echo "CPU = utime+stime of the serving process(es) / requests completed: the fake upstream"
echo "(direct), nginx's master + worker, trustgate's process (all its threads).  Peak RSS = VmHWM"
echo "of the fake upstream, nginx's worker (master: $(rss_mib "${R[nginx.master_rss_kib]}") MiB), trustgate."
echo "Every trustgate turn ran all pipeline stages and was written to SQLite and the audit log"
echo "($(rss_mib "${R[trustgate.db_kib]}") MiB of data after the run).  All measured responses of every target"
echo "were 2xx and reached the upstream; a chat.completion was checked before and after."
for n in trustgate base; do
    if [ -s "$tmp/$n.err" ]; then
        echo "$n wrote $(wc -l <"$tmp/$n.err") line(s) to stderr during the run; the first:"
        head -n 5 "$tmp/$n.err" | cut -c 1-300
    fi
done

if [ -n "${BENCH_OUT:-}" ]; then
    target_json() {
        local n=$1 c
        printf '"%s": {' "$n"
        for c in 32 1; do
            printf '"c%s": {"requests": %s, "rps": %s, "p50_us": %s, "p99_us": %s, "cpu_us_per_request": %s}, ' \
                "$c" "${R[$n.$c.requests]}" "${R[$n.$c.rps]}" "${R[$n.$c.p50_us]}" "${R[$n.$c.p99_us]}" \
                "${R[$n.$c.cpu_us]}"
        done
        printf '"c1_p99_rounds_us": [%s], ' "${R[$n.1.p99_rounds]// /, }"
        printf '"peak_rss_kib": %s}' "${R[$n.rss_kib]}"
    }
    json_met() { if [ "$1" = met ]; then echo true; else echo false; fi; }
    vsb_json() {
        local v
        v=$(vsb "$1")
        v=${v%x}
        if [ "$v" = "-" ]; then echo null; else echo "$v"; fi
    }
    {
        printf '{\n  "date": "%s",\n  "machine": {"cores": %s, "cpu": "%s", "shared": "%s", "load_average_before": "%s"},\n' \
            "$date_utc" "$ncpu" "${cpu_model//\"/}" "$shared" "$load_before"
        printf '  "trustgate": "%s", "revision": "%s", "build_type": "%s", "log_level": "%s", "nginx": "%s",\n' \
            "$tg_version" "$revision" "$build_type" "$log_level" "$ngx_version"
        printf '  "duration_s": %s, "warmup_s": %s, "rounds": %s, "round_s": %s,\n' \
            "$duration" "$warmup" "$rounds" "$round_secs"
        printf '  "targets": {\n    %s,\n    %s,\n    %s' \
            "$(target_json direct)" "$(target_json nginx)" "$(target_json trustgate)"
        if [ "$has_base" = 1 ]; then
            printf ',\n    %s' "$(target_json base)"
        fi
        printf '\n  },\n'
        if [ "$has_base" = 1 ]; then
            printf '  "baseline": {"label": "%s", "revision": "%s",\n' "$base_label" "$BASELINE_COMMIT"
            printf '    "trustgate_over_baseline": {"rps32": %s, "cpu32": %s, "rps1": %s, "cpu1": %s, "p99_1_diff_us": %s},\n' \
                "$(vsb_json 32.rps)" "$(vsb_json 32.cpu_us)" "$(vsb_json 1.rps)" \
                "$(vsb_json 1.cpu_us)" "${R[vs.1.p99_diff_us]}"
            printf '    "rounds": {"rps32": [%s], "cpu32": [%s], "rps1": [%s], "cpu1": [%s], "p99_1_diff_us": [%s]}},\n' \
                "${R[vs.32.rps_rounds]// /, }" "${R[vs.32.cpu_rounds]// /, }" "${R[vs.1.rps_rounds]// /, }" \
                "${R[vs.1.cpu_rounds]// /, }" "${R[vs.1.p99_diff_rounds]// /, }"
        fi
        printf '  "nginx_master_peak_rss_kib": %s,\n' "${R[nginx.master_rss_kib]}"
        printf '  "trustgate_data_kib": %s,\n' "${R[trustgate.db_kib]}"
        printf '  "ratios": {"rps32_trustgate_over_nginx": %s, "cpu32_trustgate_over_nginx": %s},\n' \
            "$rps_ratio" "$cpu_ratio"
        printf '  "added_at_1_us": {"nginx": {"p50": %s, "p99": %s}, "trustgate": {"p50": %s, "p99": %s}},\n' \
            "${R[nginx.1.added_p50_us]}" "$add_p99_ngx" "${R[trustgate.1.added_p50_us]}" "$add_p99_tg"
        printf '  "goals": {\n'
        printf '    "rps32_ratio": {"value": %s, "min": %s, "met": %s},\n' \
            "$rps_ratio" "$goal_rps_ratio" "$(json_met "$met_rps")"
        printf '    "cpu_us_per_request": {"value": %s, "max": %s, "met": %s},\n' \
            "${R[trustgate.32.cpu_us]}" "$goal_cpu_us" "$(json_met "$met_cpu")"
        printf '    "added_p99_at_1_us": {"value": %s, "max": %s, "met": %s},\n' \
            "$add_p99_tg" "$goal_p99_add_us" "$(json_met "$met_p99")"
        printf '    "peak_rss_mib": {"value": %s, "max": %s, "met": %s}\n' \
            "$(rss_mib "${R[trustgate.rss_kib]}")" "$goal_rss_mib" "$(json_met "$met_rss")"
        printf '  }\n}\n'
    } >"$BENCH_OUT"
    note "figures written to $BENCH_OUT"
fi
ok=1
