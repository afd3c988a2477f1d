-- spillway.state: small routing state that survives restarts (kept in SQLite).
-- Here: remember the last deploy version seen per service and tag events after a change.
function process(ev)
  local svc, ver = ev.service, ev.version
  if svc and ver then
    local last = spillway.state.get("version:" .. svc)
    if last ~= ver then
      spillway.state.set("version:" .. svc, ver)
      ev.deploy_changed = true
      spillway.log("info", "new version of " .. svc .. ": " .. ver)
    end
  end
  return true
end
