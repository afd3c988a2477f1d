-- Enrich with a static lookup: which team owns the service, and the environment.
local owners = {
  checkout = "payments", cart = "payments", search = "discovery", auth = "identity",
}

function process(ev)
  ev.team = owners[ev.service] or "unowned"
  ev.env = "prod"
  return true
end
