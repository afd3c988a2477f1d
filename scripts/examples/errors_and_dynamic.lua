-- Keep every warning and error; thin the rest per service so a chatty service cannot drown
-- a quiet one: each service keeps at most ~50 events/s (times the route's rate).
function process(ev)
  local level = ev.level
  if level == "ERROR" or level == "WARN" or level == "FATAL" then return true end
  return spillway.dynsample(ev.service, 50)
end
