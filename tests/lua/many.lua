-- lathe.wait on more handles than Lua's C stack holds by default
local hs = {}
for i = 1, lathe.opt("n", 150) do hs[i] = lathe.spawn("regress", {steps = 2, seed = i, eval_every = 1}) end
local done = lathe.wait(hs)
local n = 0
for _, h in ipairs(hs) do if h.status == "done" then n = n + 1 end end
print("done runs", n)
assert(n == #hs)
