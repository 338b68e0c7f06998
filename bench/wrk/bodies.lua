-- Feeds every request its own body from a file (one body per line), each
-- sent once: never wrapped, so no signed envelope is replayed. When the
-- bodies run out the thread stops and done() says so (the caller treats
-- that as an error). Prints exact figures as one JSON line for bench/wrk.ts.
--
--   wrk -t1 -c64 -d10s -s bench/wrk/bodies.lua -H 'Content-Type: application/json' URL -- FILE [SKIP [stream] [pace=MS]]
--
-- SKIP: lines already sent by an earlier run over the same file. By default
-- every request is formatted in init, before wrk starts its clock, so the
-- run costs wrk one table lookup per request; `stream` reads and formats
-- one line per request instead (a few microseconds of wrk's own core), so a
-- run starts at once however large the file (back-to-back soak segments).
-- `pace=MS`: each connection waits a random whole number of milliseconds,
-- 0 to 2*MS (mean MS), after an answer before it sends its next request, so
-- C connections offer C*1000/(MS + latency) requests a second: still a
-- closed loop, but one where latency is small beside MS, so servers of
-- different speeds get nearly the same load (the table shows the rate each
-- got), not each its own saturation. Random, not fixed: connections sent in
-- step would arrive as bursts. wrk starts a request's clock when it writes
-- it, after the wait.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local skip = tonumber(args[2] or "0")
  used = 0
  exhausted = 0
  local stream = false
  for i = 3, #args do
    if args[i] == "stream" then stream = true end
    if string.sub(args[i], 1, 5) == "pace=" then
      pace = tonumber(string.match(args[i], "^pace=([%d.]+)$") or "")
      if not pace then error("unreadable " .. args[i]) end
    end
  end
  -- Defined only when pacing: wrk checks for delay() after init, and with it
  -- every request waits for a timer event, even a 0 ms one.
  if pace then
    function delay() return math.floor(math.random() * (2 * pace + 1)) end
  end
  if stream then
    file = assert(io.open(args[1], "r"))
    for _ = 1, skip do file:read("*l") end
    return
  end
  prepared = {}
  local seen = 0
  for line in io.lines(args[1]) do
    seen = seen + 1
    if seen > skip and #line > 0 then prepared[#prepared + 1] = wrk.format("POST", nil, nil, line) end
  end
end

local function next_request()
  if prepared then return prepared[used] end
  local line = file:read("*l")
  if line and #line > 0 then return wrk.format("POST", nil, nil, line) end
  return nil
end

function request()
  used = used + 1
  local r = next_request()
  if r then return r end
  -- Out of bodies: stop rather than resend one (a replay). wrk needs some
  -- request to write meanwhile; a health check is harmless.
  exhausted = 1
  used = used - 1
  wrk.thread:stop()
  return wrk.format("GET", "/healthz", {}, nil)
end

function done(summary, latency, requests)
  local used_total, exhausted_any = 0, 0
  for _, thread in ipairs(threads) do
    used_total = used_total + thread:get("used")
    exhausted_any = math.max(exhausted_any, thread:get("exhausted"))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"used":%d,"exhausted":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    latency.mean, used_total, exhausted_any))
end
