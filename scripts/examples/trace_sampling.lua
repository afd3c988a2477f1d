-- Consistent trace sampling at the route's rate: every span of a trace gets the same answer,
-- so traces stay whole. Dial the rate at runtime: spillway ctl sample ROUTE 0.05
function process(ev)
  return spillway.sample(ev.trace_id)
end
