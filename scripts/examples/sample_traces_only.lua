-- Samples spans only, a whole trace at a time, at the route's rate; logs and metrics are always
-- kept (returning true keeps an event without sampling it). Dial: spillway ctl sample ROUTE 0.1
function process(ev)
  if ev.kind == "trace" then return spillway.sample(ev.trace_id) end
  return true
end
