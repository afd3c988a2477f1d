-- Mask e-mail addresses and card numbers before events leave the machine.
function process(ev)
  if ev.email then ev.email = spillway.mask(ev.email) end          -- "j***@example.com"
  local msg = ev.message
  if msg then
    -- 13 to 19 digit card numbers, with optional spaces or dashes between groups.
    msg = spillway.mask(msg, "%d%d%d%d[ -]?%d%d%d%d[ -]?%d%d%d%d[ -]?%d%d?%d?%d?%d?%d?%d?")
    msg = spillway.mask(msg, "[%w%.%-_]+@[%w%.%-]+%.%a+")
    ev.message = msg
  end
  return true
end
