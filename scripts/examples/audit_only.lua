-- Only audit events (audit: true, or kind "audit"): meant for a route with `stop: true`, so
-- they go to the audit sink and no later route sees them.
function process(ev)
  return ev.audit == true or ev.kind == "audit"
end
