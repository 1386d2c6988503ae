-- a run spawned, then a pure-Lua loop that never yields (--set pcall=true
-- wraps it in pcall, which must not swallow the stop)
local use_pcall = lathe.opt("pcall", false)
local h = lathe.spawn("regress", {seed = 1, steps = 3000, hidden = 128, batch = 128, ckpt_every = 100000,
                                  log_every = 1, eval_every = 50}) -- as one.lua (ref.lmdb)
local x = 0
local function spin() while true do x = x + 1 end end
if use_pcall then
  while true do pcall(spin) end
end
spin()
