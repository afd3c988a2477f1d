-- The default route: keeps every event at the route's sampling rate (1.0 unless dialed down),
-- deciding per trace so a trace is kept or dropped whole. Edit and save: spillway reloads it.
function process(ev)
  return spillway.sample(ev.trace_id)
end
