-- Only metric events (kind "metric": statsd, OTLP metrics, Prometheus remote write and scrapes,
-- logs-to-metrics aggregates): for a route whose sink takes metrics alone, such as a
-- prometheus_remote_write sink; with `stop: true`, later routes see everything else.
function process(ev)
  return ev.kind == "metric"
end
