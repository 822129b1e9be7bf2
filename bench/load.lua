-- One workload for wrk: `wrk -s bench/load.lua URL -- METHOD PATH STATUS BODIES TOKEN RUN [CONTENT_TYPE]`.
-- BODIES is a file of JSON bodies, one per line, sent in rotation so that
-- each body gets an equal share (the verify pools stay under the attempt
-- limit). A "%d" in a body becomes a number no other request of the run
-- uses, nor any other RUN (fresh addresses for sends). Answers other than STATUS are counted,
-- and `done` prints one JSON line that bench/bench.py reads.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  method, path, expect = args[1], args[2], tonumber(args[3])
  bodies = {}
  if args[4] and args[4] ~= "" then
    for line in io.lines(args[4]) do
      if line ~= "" then table.insert(bodies, line) end
    end
  end
  -- CONTENT_TYPE (args[7]) for the OAuth endpoints' form bodies.
  local content_type = "application/json"
  if args[7] and args[7] ~= "" then content_type = args[7] end
  headers = { ["content-type"] = content_type }
  if args[5] and args[5] ~= "" then headers["authorization"] = "Bearer " .. args[5] end
  run = args[6] or "0"
  -- Threads start far apart in the rotation.
  n = math.floor(tid * #bodies / 2)
  unexpected = 0
end

function request()
  if #bodies == 0 then
    return wrk.format(method, path, headers)
  end
  n = n + 1
  local body = bodies[(n % #bodies) + 1]
  if body:find("%d", 1, true) then
    body = body:gsub("%%d", run .. "x" .. tid .. "x" .. n)
  end
  return wrk.format(method, path, headers, body)
end

function response(status)
  if status ~= expect then unexpected = unexpected + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"unexpected":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
