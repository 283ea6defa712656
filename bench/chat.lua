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

-- $TG_BENCH_PATH with $TG_BENCH_METHOD=GET measures another route instead
-- (bench/governance.sh: /healthz); $TG_BENCH_USERS=1 sends every request as
-- a new customer ("user": "bench-<thread>-<n>"), so experiments split them.
local path = os.getenv("TG_BENCH_PATH") or "/v1/chat/completions"
local method = os.getenv("TG_BENCH_METHOD") or "POST"
local users = os.getenv("TG_BENCH_USERS") == "1"

wrk.method = method
wrk.path = path
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
if method ~= "GET" then wrk.body = body end

-- each wrk thread gets its own number (setup runs in the main state), so
-- customers never repeat across threads
local threads = 0
function setup(thread)
   threads = threads + 1
   thread:set("tid", threads)
end

local n = 0
if users then
   function request()
      n = n + 1
      local b = body:gsub('^{', '{"user":"bench-' .. tostring(tid) .. '-' .. n .. '",', 1)
      return wrk.format(nil, nil, nil, b)
   end
end

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
