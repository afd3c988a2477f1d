-- Logs to metrics: a request count and a latency histogram per service and status from access
-- logs, kept whole as metrics while the logs themselves are sampled at the route's rate (1% in
-- conf/examples/access-metrics.yaml). The aggregates are flushed every metrics.interval as metric
-- events to the route named by metrics.route (a prometheus_remote_write sink there).
function process(ev)
  local status = ev.status
  if status == nil then return false end                    -- not an access log
  local labels = {service = ev.service or "unknown", status = tostring(status)}
  spillway.metric.count("http_requests", labels)            -- http_requests_total in Prometheus
  local ms = tonumber(ev.latency_ms or ev.duration_ms)
  if ms then
    spillway.metric.observe("http_request_duration_seconds", labels, ms / 1000)
  end
  if ev.level == "ERROR" then return true end               -- every error log kept
  return spillway.sample(ev.trace_id)                       -- the rest at the route's rate
end
