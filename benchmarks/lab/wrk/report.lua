-- Shared wrk done() hook for the lab (benchmarks/lab/loadgen.py): prints machine-readable lines.
--   RESULT requests=.. duration_us=.. bytes=.. connect=.. read=.. write=.. timeout=.. non2xx=..
--   LATENCY_US p50=.. p90=.. p95=.. p99=.. max=.. mean=.. stdev=..
--   CDF_US 1=.. 2=.. ... 99.9=..      (latency at each percentile, for the CDF plot)
-- non2xx is wrk's status-error counter (responses with status > 399, its "Non-2xx or 3xx responses").
local M = {}

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%.0f duration_us=%.0f bytes=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f non2xx=%.0f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status))
  io.write(string.format(
    "LATENCY_US p50=%.0f p90=%.0f p95=%.0f p99=%.0f max=%.0f mean=%.1f stdev=%.1f\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, latency.stdev))
  local points = {}
  for _, p in ipairs({1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97.5, 99, 99.5, 99.9}) do
    points[#points + 1] = string.format("%g=%.0f", p, latency:percentile(p))
  end
  io.write("CDF_US " .. table.concat(points, " ") .. "\n")
end

-- The bearer: WRK_KEY from the environment (default sk-test, the reference gateway's key).
-- model: "gpt-4o-mini" unless given ("paced-gpt-4o-mini": the double paces its chunks, each its own write)
function M.setup_chat(stream, model)
  local key = os.getenv("WRK_KEY") or "sk-test"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  local flag = stream and '"stream":true,' or ''
  wrk.body = '{"model":"' .. (model or "gpt-4o-mini") .. '",' .. flag ..
    '"messages":[{"role":"user","content":"Say hello in one short sentence please."}]}'
end

return M
