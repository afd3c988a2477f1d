-- Drop debug noise; keep everything else.
function process(ev)
  local level = ev.level
  if level == "DEBUG" or level == "debug" or level == "TRACE" then return false end
  return true
end
