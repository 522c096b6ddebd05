-- wrk's summary as one JSON line for bench/lib/load.ts (latencies in µs). wrk counts a
-- response with a status >= 400 as a "status" error.

-- A paced run (BENCH_WRK_DELAY_MS): each connection waits about that long before each
-- request, so the server is not saturated and latencies are not queueing behind a burst. The
-- waits are random (exponential, mean BENCH_WRK_DELAY_MS): with a fixed one the connections
-- would stay in step and arrive as one burst of 50. wrk leaves the wait out of latencies.
local pause = tonumber(os.getenv("BENCH_WRK_DELAY_MS") or "")
if pause then
  math.randomseed(os.time())
  delay = function()
    return math.min(10 * pause, math.floor(-math.log(1 - math.random()) * pause))
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationMicros":%d,"p50":%d,"p99":%d,"max":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
