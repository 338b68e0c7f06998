-- Feeds every request its own body from a file (one body per line), each
-- sent once: never wrapped, so no signed envelope is replayed. When the
-- bodies run out the thread stops and done() says so (the caller treats
-- that as an error). Prints exact figures as one JSON line for bench/wrk.ts.
--
--   wrk -t1 -c64 -d10s -s bench/wrk/bodies.lua -H 'Content-Type: application/json' URL -- FILE [SKIP [stream] [pace=MS] [connections=N]]
--
-- SKIP: lines already sent by an earlier run over the same file. By default
-- every request is formatted in init, before wrk starts its clock, so the
-- run costs wrk one table lookup per request; `stream` reads and formats
-- one line per request instead (a few microseconds of wrk's own core), so a
-- run starts at once however large the file (back-to-back soak segments).
-- `connections=N`: wrk's -c, for undoing its latency correction in done() (below).
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
    if string.sub(args[i], 1, 12) == "connections=" then connections = tonumber(string.sub(args[i], 13)) end
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

-- wrk 4 "corrects" its latency histogram for coordinated omission before done() sees it: every latency
-- longer than twice the mean interval between one connection's requests (runtime / (requests /
-- connections)) adds copies of itself less 1, 2, ... intervals, down to one interval (stats_correct in
-- wrk's stats.c). A stall of S ms over C connections thus adds about C * S / interval samples that no
-- request had, and at saturation a handful of stalls sets the p99. The requests' own latencies are
-- recovered here by undoing that, exactly, from the top down: a bin's added count is the sum of the
-- recovered counts one, two, ... intervals above it. The histogram is read through LuaJIT's FFI (wrk's
-- stats struct: count, limit, min, max, then a count per microsecond), checked against wrk's min and max,
-- and the recovered total against the requests answered; any mismatch leaves the measured figures out
-- (null) rather than guess.
local function measured(summary, latency)
  local ok, ffi = pcall(require, "ffi")
  local connections = tonumber(threads[1] and threads[1]:get("connections") or nil)
  if not ok or not connections then return nil end
  pcall(ffi.cdef, "typedef struct { uint64_t count, limit, min, max; uint64_t data[?]; } smcp_wrk_stats;")
  local s = ffi.cast("smcp_wrk_stats **", latency)[0]
  local min, max = tonumber(s.min), tonumber(s.max)
  if min ~= latency.min or max ~= latency.max or max >= tonumber(s.limit) then return nil end
  local per = math.floor(summary.requests / connections)
  -- Fewer requests than connections: wrk corrected nothing (no interval), the histogram is the requests' own.
  local interval = per >= 1 and math.floor(summary.duration / per) or math.huge
  local counts, above = {}, {}
  local corrected = 0
  -- From 0: wrk's correction can add below the smallest latency seen (it leaves min as it was).
  for n = max, 0, -1 do
    local c = tonumber(s.data[n])
    corrected = corrected + c
    if n > interval then
      local r = n % interval
      c = c - (above[r] or 0)
      above[r] = (above[r] or 0) + c
    end
    if c < 0 then return nil end
    counts[n] = c
  end
  if corrected ~= tonumber(s.count) then return nil end
  local total, sum = 0, 0
  for n = 0, max do
    total = total + counts[n]
    sum = sum + n * counts[n]
  end
  -- What was recorded is every answered request but those past --timeout: a wrong interval or layout would
  -- leave another total (wrk's count above holds whatever the inversion did, so it proves nothing alone).
  local answered = summary.requests
  if total == 0 or total > answered or total < answered - summary.errors.timeout then return nil end
  local function percentile(p)
    local rank, seen = math.floor(p / 100 * total + 0.5 + 0.5), 0
    for n = 0, max do
      seen = seen + counts[n]
      if seen >= rank then return n end
    end
    return max
  end
  return string.format('"measured_count":%d,"measured_p50_us":%d,"measured_p90_us":%d,"measured_p99_us":%d,' ..
    '"measured_p999_us":%d,"measured_mean_us":%.1f', total, percentile(50), percentile(90), percentile(99),
    percentile(99.9), sum / total)
end

function done(summary, latency, requests)
  local used_total, exhausted_any = 0, 0
  for _, thread in ipairs(threads) do
    used_total = used_total + thread:get("used")
    exhausted_any = math.max(exhausted_any, thread:get("exhausted"))
  end
  local e = summary.errors
  -- An error in measured() must not cost the whole line: wrk prints nothing after a failing done().
  local ok, own = pcall(measured, summary, latency)
  if not ok or not own then own = '"measured_count":null' end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"used":%d,"exhausted":%d,%s}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    latency.mean, used_total, exhausted_any, own))
end
