-- Drop repeats: the same service + message within 30 seconds is kept once.
-- (Per partition: set pipeline.partition_key to the field you dedup on for a global view.)
function process(ev)
  local key = (ev.service or "") .. "|" .. (ev.message or "")
  return spillway.dedup(key, 30)
end
