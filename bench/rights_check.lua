-- wrk script for bench/rights_check.py: POST one JSON body per request, cycling through a file of bodies.
--
--   BENCH_BODIES=bench/out/rights-bodies-….jsonl BENCH_PATH=/api/v1/rights/check BENCH_TOKEN=rmp_… \
--   BENCH_START=0.0 wrk -t2 -c16 -d30s --latency -s bench/rights_check.lua http://127.0.0.1:8765
--
-- BENCH_TOKEN is optional (the bare lookup needs none); BENCH_START (0..1) is where in the file the
-- first thread starts, the others are spread evenly after it. When the run ends, one line
-- "BENCH_JSON {…}" gives the figures bench/rights_check.py reads (latencies in microseconds).

local bodies = {}
local count = 0
local next_index = 0
local threads = {}

local function load_bodies()
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  count = #bodies
end

function setup(thread)
  thread:set("thread_number", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  load_bodies()
  local start = tonumber(os.getenv("BENCH_START") or "0")
  local total = tonumber(os.getenv("BENCH_THREADS") or "1")
  next_index = math.floor((start + thread_number / total) * count) % count
  non2xx = 0
  no_match = 0
  answers = 0
  wrk.method = "POST"
  wrk.path = os.getenv("BENCH_PATH")
  wrk.headers["Content-Type"] = "application/json"
  local token = os.getenv("BENCH_TOKEN") or ""
  if #token > 0 then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  next_index = next_index + 1
  if next_index > count then
    next_index = 1
  end
  return wrk.format(nil, nil, nil, bodies[next_index])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  else
    answers = answers + 1
    if string.find(body, "no_match", 1, true) then
      no_match = no_match + 1
    end
  end
end

function done(summary, latency, requests)
  local non2xx_total, no_match_total, answers_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + (thread:get("non2xx") or 0)
    no_match_total = no_match_total + (thread:get("no_match") or 0)
    answers_total = answers_total + (thread:get("answers") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f,' ..
    '"non2xx":%d,"answers":%d,"no_match":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean,
    non2xx_total, answers_total, no_match_total,
    e.connect, e.read, e.write, e.status, e.timeout))
end
