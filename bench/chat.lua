-- bench/chat.lua - wrk script for bench/run.sh: every request is the same
-- non-streaming OpenAI chat completion, POSTed to /v1/chat/completions with
-- a Bearer key (the fake upstream and nginx ignore it; trustgate checks it).
-- The body comes from $TG_BENCH_BODY when set (run.sh sets it, so curl's
-- sanity check sends exactly what wrk sends), else the default below.
--
-- When wrk finishes, done() prints one machine-readable line that run.sh
-- parses:
--   TG_BENCH requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N
--            max_us=N connect_err=N read_err=N write_err=N timeout_err=N
--            status_err=N
-- status_err counts responses that were not 2xx/3xx; latencies are in
-- microseconds as wrk measures them (request written -> response complete).

local key = os.getenv("TG_BENCH_KEY") or "tg-bench-key"
local body = os.getenv("TG_BENCH_BODY")
if body == nil or body == "" then
   body = '{"model":"fake-model","messages":[{"role":"user",' ..
          '"content":"What does my policy cover if my car is damaged in a hailstorm?"}]}'
end

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = body

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "TG_BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
      "max_us=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d status_err=%d\n",
      summary.requests, summary.duration, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
