-- One service's events: enriched, e-mail masked, every error kept, the rest sampled per trace
-- at the route's rate (dial it with spillway ctl sample ROUTE RATE --for 15m).
function process(ev)
  if ev.service ~= "checkout" then return false end   -- not for this route
  ev.env = "prod"                                     -- enrich
  ev.email = spillway.mask(ev.email)                  -- nil stays nil
  if ev.level == "ERROR" then return true end         -- keep every error, bypassing sampling
  return spillway.sample(ev.trace_id)                 -- whole traces at the route's rate
end
