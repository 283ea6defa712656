#!/usr/bin/env bash
# bench/instructions.sh - instructions per pass-through turn, counted by
# valgrind's callgrind, for this trustgate and, with BENCH_BASELINE_REV, for
# one built from an earlier revision: a figure other work on the machine
# cannot move, to read beside bench/run.sh's times.
#
# Each gateway runs under callgrind in front of the same fake upstream with
# the same config (BENCH_CONFIG, default bench/passthrough.yaml); after a
# warm-up the counters are zeroed, wrk sends turns over one connection for
# BENCH_SECONDS, and the counters are dumped.  Figures: instructions (Ir)
# per turn, all threads (the event loop and the store's writer), and with a
# baseline the ratio and the functions whose own count per turn changed
# most.  Kernel work is not counted; see bench/README.md.
#
# Environment: BENCH_BUILD_DIR (default build/), BENCH_CONFIG,
# BENCH_SECONDS (default 20), BENCH_BASELINE_REV, BENCH_BASELINE_CACHE
# (default BENCH_BUILD_DIR/baseline), BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
config=${BENCH_CONFIG:-$root/bench/passthrough.yaml}
secs=${BENCH_SECONDS:-20}
for tool in valgrind callgrind_control callgrind_annotate wrk curl awk; do
    command -v "$tool" >/dev/null || { echo "bench: '$tool' not found (apt-get install valgrind)" >&2; exit 1; }
done
if [ ! -x "$build/trustgate" ] || [ ! -x "$build/fake-upstream" ]; then
    echo "bench: no trustgate and fake-upstream in $build (bench/run.sh builds them)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tg-instr.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

targets=(trustgate)
declare -A bin=([trustgate]=$build/trustgate)
if [ -n "${BENCH_BASELINE_REV:-}" ]; then
    # shellcheck source=bench/baseline.sh
    . "$root/bench/baseline.sh"
    baseline_build "$root" "$BENCH_BASELINE_REV" "${BENCH_BASELINE_CACHE:-$build/baseline}" || exit 1
    targets=(base trustgate)
    bin[base]=$BASELINE_BIN
fi

"$build/fake-upstream" --listen 127.0.0.1:0 >"$tmp/up.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/up.out" ] && break; sleep 0.1; done
up=$(head -n 1 "$tmp/up.out")

# count NAME: one gateway under callgrind; sets IR[NAME] and N[NAME], leaves
# the per-function self counts per turn in $tmp/NAME.fn.
declare -A IR N
count() {
    local name=$1 vg port dump n i
    TG_BENCH_UPSTREAM=127.0.0.1:$up TG_BENCH_LOG_LEVEL=warn valgrind --tool=callgrind \
        --callgrind-out-file="$tmp/$name.cg.%p" "${bin[$name]}" serve -c "$config" \
        --listen 127.0.0.1:0 --data "$tmp/$name-data" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    vg=$!
    pids+=("$vg")
    for ((i = 0; i < 600; i++)); do
        grep -q 'serving on' "$tmp/$name.out" 2>/dev/null && break
        kill -0 "$vg" 2>/dev/null || { tail -n 20 "$tmp/$name.err" >&2; exit 1; }
        sleep 0.1
    done
    port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$tmp/$name.out")
    [ -n "$port" ] || { echo "bench: $name did not start" >&2; exit 1; }
    TG_BENCH_KEY=tg-bench-key wrk -t1 -c1 -d5s -s "$root/bench/chat.lua" "http://127.0.0.1:$port" >/dev/null
    callgrind_control -z "$vg" >/dev/null 2>&1
    TG_BENCH_KEY=tg-bench-key wrk -t1 -c1 -d"${secs}s" -s "$root/bench/chat.lua" \
        "http://127.0.0.1:$port" >"$tmp/$name.wrk"
    callgrind_control -d "$vg" >/dev/null 2>&1
    n=$(sed -n 's/^TG_BENCH.* requests=\([0-9]*\).*/\1/p' "$tmp/$name.wrk")
    if ! grep -q 'status_err=0$' "$tmp/$name.wrk" || [ "${n:-0}" -eq 0 ]; then
        cat "$tmp/$name.wrk" >&2
        echo "bench: $name answered errors" >&2
        exit 1
    fi
    kill "$vg"
    wait "$vg" 2>/dev/null || true
    dump=$(ls "$tmp/$name".cg.*.1)
    N[$name]=$n
    IR[$name]=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$dump")
    callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null |
        sed -nE 's/^ *([0-9,]+) \([^)]*\) +([^ ].*)$/\1\t\2/p' | sed -E 's/,//g; s/ \[[^]]*\]$//' |
        awk -F'\t' -v n="$n" '$2 != "PROGRAM TOTALS" && $2 !~ /main|tg_cli_serve|event_base_dispatch|start_thread|clone|^[?]+:0x/ {
            printf "%s\t%.0f\n", $2, $1 / n }' |
        sort -t "$(printf '\t')" -k1,1 >"$tmp/$name.fn"
}
for t in "${targets[@]}"; do count "$t"; done

echo "instructions per pass-through turn (callgrind, all threads, user space), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
revision=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
src_home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
if [ -n "$src_home" ] && ! [ "$src_home" -ef "$root" ]; then
    revision="the sources in $src_home"
fi
echo "config: ${config#"$root"/}; one connection, ${secs}s after a 5s warm-up; trustgate: $revision"
for t in "${targets[@]}"; do
    label=$t
    [ "$t" = base ] && label="trustgate@$BASELINE_COMMIT"
    awk -v l="$label" -v ir="${IR[$t]}" -v n="${N[$t]}" \
        'BEGIN { printf "  %-20s %9.0f instructions per turn (%d turns)\n", l, ir / n, n }'
done
if [ "${#targets[@]}" = 2 ]; then
    awk -v a="${IR[trustgate]}" -v na="${N[trustgate]}" -v b="${IR[base]}" -v nb="${N[base]}" \
        'BEGIN { printf "  trustgate / trustgate@%s: %.3f (%+.0f per turn)\n", "'"$BASELINE_COMMIT"'", (a / na) / (b / nb), a / na - b / nb }'
    echo "  functions whose own instructions per turn changed most (baseline, this build, change):"
    join -t "$(printf '\t')" -a1 -a2 -e 0 -o 0,1.2,2.2 "$tmp/base.fn" "$tmp/trustgate.fn" |
        awk -F'\t' '{ d = $3 - $2; printf "%d\t%8d %8d %+8d  %s\n", d < 0 ? -d : d, $2, $3, d, $1 }' |
        sort -n -r | head -n 12 | cut -f2-
fi
