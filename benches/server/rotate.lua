-- wrk script: POST the images listed in the file named by the first argument, one per request,
-- rotating; print one JSON line with throughput, latency percentiles and errors when done.
local bodies = {}
local next_body = 1

function init(args)
  for path in io.lines(args[1]) do
    local file = assert(io.open(path, "rb"))
    bodies[#bodies + 1] = file:read("*a")
    file:close()
  end
  -- Threads start at different images.
  next_body = (math.random(1, 1000) % #bodies) + 1
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/v1/classify", { ["Content-Type"] = "application/octet-stream" }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.1f, "p90_ms": %.1f, "p99_ms": %.1f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
