-- run handles are userdata that read their run live; `<close>` stops a run
-- still going when its scope ends, and a dropped handle does not
local held
do
  local h <close> = lathe.spawn("regress", {steps = 100000000, seed = 1, ckpt_every = 0})
  assert(tostring(h):match("^run %d+ %(regress, "), tostring(h))
  assert(h.plugin == "regress" and h.id > 0 and h.config.steps == 100000000)
  held = h
  lathe.spawn("regress", {steps = 300, seed = 2}) -- its handle dropped at once: it runs on
end
local done = lathe.wait(held)
assert(done == held and held.status == "interrupted", held.status)
collectgarbage()
print("closed", held.status)
