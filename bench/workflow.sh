#!/usr/bin/env bash
# bench/workflow.sh - what a workflow adds to a chat turn, measured in one
# run against the same daemon: (a) a plain turn (builtin backend), (b) a
# turn whose trigger starts a workflow of three steps that call nothing
# (decide, decide, reply: the engine's own cost, every step committed with
# its audit leaf before the next), (c) the same with a tool step first (a
# POST to the test suite's fake policy-lookup tool on this machine).
# One keep-alive connection, requests taken in turns round by round so the
# three see the same background load; prints p50/p99 and the overhead per
# step ((b) - (a)) / 3.
#
#   bench/workflow.sh        (BENCH_N requests per target, default 600; BENCH_ROUNDS 6)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build}
n=${BENCH_N:-600}
rounds=${BENCH_ROUNDS:-6}
cd "$root"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target trustgate fake-upstream >/dev/null
work=$(mktemp -d)
pid= fake=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$fake" ] && kill "$fake" 2>/dev/null && wait "$fake" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
"$build/fake-upstream" > "$work/fake.port" 2> "$work/fake.err" &
fake=$!
for _ in $(seq 50); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
fport=$(head -1 "$work/fake.port")
cat > "$work/engine.yaml" <<'YAML'
name: engine_only
input: [question]
trigger: {keywords: [引擎], input: {question: "{{turn.text}}"}}
steps:
  - {id: first, kind: decide, cases: [{when: {path: input.question, mentions: 引擎}, next: second}], otherwise: second}
  - {id: second, kind: decide, cases: [{when: {path: input.question, exists: true}, next: answer}], otherwise: answer}
  - {id: answer, kind: reply, text: "已处理：{{input.question}}"}
YAML
cat > "$work/tool.yaml" <<YAML
name: with_tool
input: [question, policy]
trigger: {entities: [policy_no], keywords: [保单], input: {question: "{{turn.text}}", policy: "{{entities.policy_no}}"}}
steps:
  - {id: lookup, kind: tool, url: "http://127.0.0.1:$fport/tools/policy_lookup", args: {policy: "{{input.policy}}"}, timeout: 2s}
  - {id: check, kind: decide, cases: [{when: {path: input.question, mentions: "{{lookup.exclusions}}"}, next: answer}], otherwise: answer}
  - {id: answer, kind: reply, text: "{{lookup.product}}：见{{lookup.clause}}"}
YAML
cat > "$work/trustgate.yaml" <<YAML
server: {listen: "127.0.0.1:0", data_dir: $work/data, log_level: warn}
auth: {api_keys: [{name: b, key: sk-bench}]}
backends: [{name: b, type: builtin}]
route: {backend: b}
understand: {policy_number: "P[0-9]{10}"}
workflows: [engine.yaml, tool.yaml]
YAML
"$build/trustgate" serve -c "$work/trustgate.yaml" > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q "serving on" "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*serving on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
[ -n "$port" ] || { cat "$work/err"; echo "workflow bench: trustgate did not start" >&2; exit 1; }
echo "workflow bench: $(nproc) cores, $n requests per target in $rounds rounds, one connection"
python3 - "$port" "$n" "$rounds" <<'PY'
import http.client, json, sys, time
port, n, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
targets = [
    ("plain turn", "滑雪受伤了怎么办"),
    ("workflow, 3 steps", "引擎测试：滑雪受伤了怎么办"),
    ("workflow, tool + 2", "我的保单P2024000001滑雪受伤了怎么办"),
]
conn = http.client.HTTPConnection("127.0.0.1", port)
times = {t[0]: [] for t in targets}
def turn(i, text):
    body = json.dumps({"user": "bench-%d" % i, "messages": [{"role": "user", "content": text}]})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body,
                 {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        sys.exit("status %d: %s" % (r.status, data[:200]))
    return dt, json.loads(data)
# the three must do what they say before any is timed
for name, text in targets:
    _, j = turn(0, text)
    wf = j.get("trustgate", {}).get("workflow")
    if (name == "plain turn") != (wf is None):
        sys.exit("%s: workflow %r" % (name, wf))
k = 0
for r in range(rounds):
    for name, text in targets:
        for _ in range(n // rounds):
            k += 1
            dt, _ = turn(k, text)
            times[name].append(dt * 1e6)
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]
base = pct(times["plain turn"], 50)
print("%-22s %10s %10s %12s" % ("target", "p50 (us)", "p99 (us)", "p50 vs (a)"))
for name, _ in targets:
    p50, p99 = pct(times[name], 50), pct(times[name], 99)
    print("%-22s %10.0f %10.0f %11.2fx" % (name, p50, p99, p50 / base))
eng = pct(times["workflow, 3 steps"], 50)
print("engine overhead per step at p50: %.0f us ((b - a) / 3)" % ((eng - base) / 3))
PY
