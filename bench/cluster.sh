#!/usr/bin/env bash
# bench/cluster.sh - trustgate nodes sharing one PostgreSQL store behind nginx
# (round robin), against one node on SQLite, in one run with wrk; see
# bench/CLUSTER.md.  Every node runs bench/passthrough.yaml (all pipeline
# stages, the store and the audit log) in front of the same fake upstream.
#
# Targets:
#   sqlite      (a) one node, SQLite in its data directory
#   pg-direct   one node on PostgreSQL, no nginx (nginx's cost = pg-1 minus this)
#   pg-1        (b) nginx -> one node on PostgreSQL
#   pg-2        (c) nginx -> two nodes, round robin
#   pg-3        (d) nginx -> three nodes, round robin
# All processes run for the whole benchmark and the targets take turns in
# rounds (as bench/run.sh does), so they are compared under the same
# background load.  32 connections / 2 threads and 1 connection / 1 thread:
# turns/s, p50/p99 (median of the rounds), CPU per turn of every process
# group at 32 connections (/proc/PID/stat; wrk from the shell's `times`).
#
# Environment: BENCH_BUILD_DIR (build/), BENCH_DURATION (10 s per target and
# connection count), BENCH_WARMUP (2 s), BENCH_ROUNDS (5), BENCH_KEEP=1
# keeps the temp dir, NGINX (nginx on PATH, else /usr/sbin/nginx).
# Needs wrk, nginx, curl and postgresql (scripts/install-deps.sh bench, cluster).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-5}
round_s=$(( (duration + rounds - 1) / rounds ))
nginx_bin=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
pgbin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export TG_BENCH_KEY=tg-bench-key
export TG_BENCH_BODY='{"model":"fake-model","messages":[{"role":"user","content":"What does my policy cover if my car is damaged in a hailstorm?"}]}'
die() { echo "cluster bench: FAILED: $*" >&2; exit 1; }
note() { echo "cluster bench: $*" >&2; }
cd "$root"

# The same build rule as bench/run.sh: configure when there is none, then
# bring both binaries up to date, so the figures belong to these sources.
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target trustgate fake-upstream >/dev/null || die "build failed in $build"
[ -x "$nginx_bin" ] && [ -x "$pgbin/psql" ] && command -v wrk >/dev/null || die "needs wrk, nginx and postgresql (scripts/install-deps.sh bench, cluster)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-cluster-bench.XXXXXX")
chmod 711 "$tmp" # PostgreSQL (user postgres) and nginx's worker (nobody) when we are root
pids=()
cleanup() {
    local pid i
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    scripts/pg-test.sh stop "$tmp/pg" >/dev/null 2>&1 || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then note "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_line FILE REGEX PID WHAT
wait_line() {
    for ((i = 0; i < 150; i++)); do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || { tail -n 20 "$1" "${1%.out}.err" >&2 || true; die "$4 exited during start-up"; }
        sleep 0.1
    done
    die "$4 did not start within 15 s"
}
free_port() { # below the ephemeral range, as in bench/run.sh
    local p
    for ((i = 0; i < 100; i++)); do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    die "no free TCP port"
}

"$build/fake-upstream" --listen 127.0.0.1:0 >"$tmp/upstream.out" 2>"$tmp/upstream.err" &
up_pid=$!
pids+=("$up_pid")
wait_line "$tmp/upstream.out" '^[0-9]+$' "$up_pid" fake-upstream
TG_BENCH_UPSTREAM=127.0.0.1:$(head -n 1 "$tmp/upstream.out")
export TG_BENCH_UPSTREAM TG_BENCH_LOG_LEVEL=warn

uri=$(scripts/pg-test.sh start "$tmp/pg" | tail -n 1)
"$pgbin/psql" -X -q "$uri" -c 'create database trustgate'
store=${uri/@\/postgres\?/@\/trustgate\?}
pg_pid=$(head -n 1 "$(cat "$tmp/pg/home")/data/postmaster.pid")

declare -A port pid
# node NAME [STORE]: start a node on port 0; sets port[NAME], pid[NAME]
node() {
    local args=(serve -c bench/passthrough.yaml --listen 127.0.0.1:0 --data "$tmp/$1")
    [ -z "${2:-}" ] || args+=(--store "$2")
    "$build/trustgate" "${args[@]}" >"$tmp/$1.out" 2>"$tmp/$1.err" &
    pid[$1]=$!
    pids+=("$!")
    wait_line "$tmp/$1.out" 'serving on http://' "$!" "node $1"
    port[$1]=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/$1.out" | head -n 1)
}
node sqlite
node pg1 "$store"
for n in pg2 pg3; do # one deployment, one set of keys (see scripts/demo-cluster.sh)
    mkdir -p "$tmp/$n"
    cp -p "$tmp/pg1/pseudonym.key" "$tmp/pg1/audit-ed25519.pem" "$tmp/$n/"
    node "$n" "$store"
done

# nginx: one worker, as bench/nginx.conf.in, and the proxy settings of
# scripts/demo-cluster.sh; one listening port per group of nodes.
mkdir -p "$tmp/nginx"
ngx_server() { # PORT NODES...
    local p=$1 n
    shift
    printf '    upstream g%s {\n' "$p"
    for n in "$@"; do printf '        server 127.0.0.1:%s;\n' "${port[$n]}"; done
    printf '        keepalive 64;\n        keepalive_requests 1000000;\n    }\n'
    printf '    server { listen 127.0.0.1:%s; location / { proxy_pass http://g%s; } }\n' "$p" "$p"
}
for t in pg-1 pg-2 pg-3; do port[$t]=$(free_port); done
port[pg-direct]=${port[pg1]}
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_buffering off;
    proxy_read_timeout 1h;
$(ngx_server "${port[pg-1]}" pg1)
$(ngx_server "${port[pg-2]}" pg1 pg2)
$(ngx_server "${port[pg-3]}" pg1 pg2 pg3)
}
EOF
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr" &
ngx_pid=$!
pids+=("$ngx_pid")
sleep 0.5
kill -0 "$ngx_pid" 2>/dev/null || { cat "$tmp/nginx/stderr" "$tmp/nginx/error.log" >&2; die "nginx did not start"; }

targets=(sqlite pg-direct pg-1 pg-2 pg-3)
for t in "${targets[@]}"; do
    out=$(curl -sS --max-time 10 -H "Authorization: Bearer $TG_BENCH_KEY" -H 'Content-Type: application/json' \
        --data-binary "$TG_BENCH_BODY" "http://127.0.0.1:${port[$t]}/v1/chat/completions") || die "$t: no answer"
    grep -q '"chat.completion"' <<<"$out" || die "$t answered: $out"
done

# CPU ticks (utime+stime, and of waited-for children) of PIDs and their
# children: PostgreSQL's backends and nginx's worker are children.
ticks() {
    local p q sum=0 t
    for p in "$@"; do
        for q in "$p" $(ps -o pid= --ppid "$p"); do
            t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$q/stat" 2>/dev/null) || t=0
            sum=$((sum + ${t:-0}))
        done
    done
    echo "$sum"
}
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; } # user nice system irq softirq
psql() { "$pgbin/psql" -X -At -F ' ' "$store" -c "$1"; }
# the store's transactions and rows written (cumulative; PostgreSQL
# publishes them within a second, which the summing over rounds evens out)
pgstat() { psql "select xact_commit, tup_inserted + tup_updated + tup_deleted from pg_stat_database where datname = 'trustgate'"; }
snap() { echo "$(ticks "${pid[sqlite]}" "${pid[pg1]}" "${pid[pg2]}" "${pid[pg3]}") $(ticks "$pg_pid") $(ticks "$ngx_pid") $(ticks "$up_pid") $(busy) ${EPOCHREALTIME/./} $(pgstat)"; }
# Mid-run, 20 looks at the nodes' connections: how many wait for a lock
# (the audit log's head row, which every commit with a leaf locks first).
sample_locks() {
    sleep "$(awk -v s="$1" 'BEGIN { print s / 4 }')"
    for ((k = 0; k < 20; k++)); do
        psql "select count(*) filter (where wait_event_type = 'Lock'), count(*) filter (where state = 'active')
              from pg_stat_activity where datname = 'trustgate' and pid <> pg_backend_pid()"
        sleep 0.05
    done | awk '{ w += $1; a += $2 } END { print w, a }' >"$tmp/locks"
}
declare -A R
# measure TARGET CONNS THREADS SECONDS: one wrk run, added to R[TARGET.CONNS.*]
measure() {
    local t=$1 c=$2 s0 s1 out line wrk_t i sampler=
    read -ra s0 <<<"$(snap)"
    if [ "$c" = 32 ] && [ "$t" != sqlite ]; then sample_locks "$4" & sampler=$!; fi
    # `times` in the subshell (not in a pipe: a fork starts from zero) gives
    # the user and system time of its children, wrk (and grep)
    out=$( (wrk -t"$3" -c"$c" -d"${4}s" --timeout 5s -s bench/chat.lua "http://127.0.0.1:${port[$t]}" \
            | grep '^TG_BENCH'; times) )
    read -ra s1 <<<"$(snap)"
    if [ -n "$sampler" ]; then
        wait "$sampler"
        read -r w a <"$tmp/locks"
        R[$t.$c.lockwait]=$(( ${R[$t.$c.lockwait]:-0} + w )) R[$t.$c.active]=$(( ${R[$t.$c.active]:-0} + a ))
        R[$t.$c.looks]=$(( ${R[$t.$c.looks]:-0} + 20 ))
    fi
    line=$(grep '^TG_BENCH' <<<"$out") || die "$t at $c connections: no figures from wrk"
    grep -q 'connect_err=0 read_err=0 write_err=0 timeout_err=0 status_err=0' <<<"$line" ||
        die "$t at $c connections: $line"
    R[$t.$c.req]=$(( ${R[$t.$c.req]:-0} + $(field requests) ))
    R[$t.$c.us]=$(( ${R[$t.$c.us]:-0} + $(field duration_us) ))
    R[$t.$c.p50s]+="$(field p50_us) "
    R[$t.$c.p99s]+="$(field p99_us) "
    # cpu0-3 the groups, cpu4 the machine (ticks), cpu5 wall clock (us),
    # cpu6 PostgreSQL's commits, cpu7 its rows written
    for i in 0 1 2 3 4 5 6 7; do
        R[$t.$c.cpu$i]=$(( ${R[$t.$c.cpu$i]:-0} + ${s1[$i]} - ${s0[$i]} ))
    done
    wrk_t=$(tail -n 1 <<<"$out" | awk -v hz="$hz" '{ split($1, u, "m"); split($2, s, "m")
                                                      print (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }')
    R[$t.$c.wrk]=$(awk -v a="${R[$t.$c.wrk]:-0}" -v b="$wrk_t" 'BEGIN { print a + b }')
}
field() { tr ' ' '\n' <<<"$line" | sed -n "s/^$1=//p"; } # NAME: from wrk's TG_BENCH line
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

hz=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
note "warm-up ${warmup}s per target, then $rounds rounds of ${round_s}s per target at 32 and at 1 connection"
for t in "${targets[@]}"; do
    [ "$warmup" = 0 ] || wrk -t2 -c32 -d"${warmup}s" -s bench/chat.lua "http://127.0.0.1:${port[$t]}" >/dev/null
done
for c in 32 1; do
    for ((r = 0; r < rounds; r++)); do
        for t in "${targets[@]}"; do measure "$t" "$c" $((c == 1 ? 1 : 2)) "$round_s"; done
    done
done

rps() { awk -v n="${R[$1.$2.req]}" -v us="${R[$1.$2.us]}" 'BEGIN { printf "%.0f", n * 1e6 / us }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
row() { printf '%-30s' "$1"; shift; printf '%12s' "$@"; echo; }
echo
echo "trustgate $(git describe --always --dirty 2>/dev/null || echo ?), bench/passthrough.yaml (fake upstream); $("$nginx_bin" -v 2>&1 | sed 's/.*: //'); PostgreSQL $("$pgbin/postgres" --version | awk '{ print $3 }') (fsync off)"
echo "$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), shared by wrk, nginx, the nodes, PostgreSQL and the upstream, unpinned; load before: $load_before"
echo "(a) sqlite: 1 node on SQLite   pg-direct: 1 node on PostgreSQL, no nginx   (b)-(d) pg-N: nginx round robin over N nodes on PostgreSQL"
row "" sqlite pg-direct pg-1 pg-2 pg-3
v=() r=()
for t in "${targets[@]}"; do v+=("$(rps "$t" 32)"); r+=("$(ratio "$(rps "$t" 32)" "$(rps sqlite 32)")"); done
row "turns/s @32" "${v[@]}"; row "  vs (a)" "${r[@]}"
for c in 32 1; do
    for p in p50 p99; do
        v=() r=()
        for t in "${targets[@]}"; do v+=("$(median "${R[$t.$c.${p}s]}")"); done
        for x in "${v[@]}"; do r+=("$(ratio "$x" "${v[0]}")"); done
        row "$p @$c (us)" "${v[@]}"; row "  vs (a)" "${r[@]}"
    done
done
v=()
for t in "${targets[@]}"; do v+=("$(rps "$t" 1)"); done
row "turns/s @1" "${v[@]}"
echo
echo "CPU at 32 connections, in cores busy (CPU seconds / wall seconds; the machine has $(nproc)):"
names=(nodes postgres nginx upstream)
for i in 0 1 2 3; do
    v=()
    for t in "${targets[@]}"; do
        v+=("$(awk -v k="${R[$t.32.cpu$i]}" -v us="${R[$t.32.cpu5]}" -v hz="$hz" 'BEGIN { printf "%.2f", k / hz / (us / 1e6) }')")
    done
    row "  ${names[$i]}" "${v[@]}"
done
v=() w=() u=()
for t in "${targets[@]}"; do
    s=$(awk -v us="${R[$t.32.cpu5]}" 'BEGIN { print us / 1e6 }')
    v+=("$(awk -v k="${R[$t.32.wrk]}" -v s="$s" -v hz="$hz" 'BEGIN { printf "%.2f", k / hz / s }')")
    w+=("$(awk -v k="${R[$t.32.cpu4]}" -v s="$s" -v hz="$hz" 'BEGIN { printf "%.2f", k / hz / s }')")
    u+=("$(awk -v a="${R[$t.32.cpu0]}" -v b="${R[$t.32.cpu1]}" -v c="${R[$t.32.cpu2]}" -v d="${R[$t.32.cpu3]}" \
        -v e="${R[$t.32.wrk]}" -v n="${R[$t.32.req]}" -v hz="$hz" 'BEGIN { printf "%.0f", (a + b + c + d + e) / hz * 1e6 / n }')")
done
row "  wrk" "${v[@]}"
row "  whole machine (all processes)" "${w[@]}"
row "CPU per turn, all of ours (us)" "${u[@]}"
echo "PostgreSQL at 32 connections (the nodes' writers; sqlite: none):"
v=(-) w=(-) u=(-)
for t in "${targets[@]:1}"; do
    v+=("$(awk -v x="${R[$t.32.cpu6]}" -v n="${R[$t.32.req]}" 'BEGIN { if (x > 0) printf "%.1f", n / x; else print "-" }')")
    w+=("$(awk -v x="${R[$t.32.cpu7]}" -v n="${R[$t.32.req]}" 'BEGIN { if (x > 0) printf "%.1f", x / n; else print "-" }')")
    u+=("$(awk -v l="${R[$t.32.lockwait]:-0}" -v a="${R[$t.32.active]:-0}" -v k="${R[$t.32.looks]:-1}" \
        'BEGIN { printf "%.1f/%.1f", l / k, a / k }')")
done
row "  turns per commit" "${v[@]}"
row "  rows written per turn" "${w[@]}"
row "  waiting on a lock/active" "${u[@]}"
convs=$("$pgbin/psql" -X -At "$store" -c 'select count(*) || $$ conversations, at most $$ || max(turns) || $$ turns each$$ from conversations')
echo "On PostgreSQL after the run: $convs (bench/chat.lua names no customer)."
echo "Every run: 0 errors and 0 non-2xx; a chat.completion was checked from each target first."
