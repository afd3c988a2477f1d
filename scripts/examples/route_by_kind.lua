-- Route by kind to different sinks: logs stay on this route's sinks, metrics and spans go
-- to their own (sinks named "metrics" and "traces" must exist in the config).
function process(ev)
  local kind = ev.kind
  if kind == "metric" then spillway.emit("metrics", ev) return false end
  if kind == "trace" then spillway.emit("traces", ev) return false end
  return true
end
