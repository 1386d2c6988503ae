-- lathe.env from a recipe: a hand-written policy and an exact replay
local env <close> = lathe.env("cartpole")
local sp = env:spaces()
assert(sp.obs == 4 and sp.actions == 2 and sp.discrete)
local obs = env:set_state({0.01, -0.02, 0.03, 0.04})
local o, r, term, trunc = env:step(1)
assert(math.abs(o[2] - 0.1746792) < 1e-6 and r == 1 and not term and not trunc)
-- a bang-bang controller on the pole angle balances for the whole episode
local total = 0
obs = env:reset(7)
repeat
  local a = (obs[3] + 0.5 * obs[4] > 0) and 1 or 0
  obs, r, term, trunc = env:step(a)
  total = total + r
until term or trunc
print("hand-written policy return", total)
assert(total == 500 and trunc)
local pend = lathe.env("pendulum", {max_episode_steps = 3})
pend:reset(1)
local _, pr = pend:step({1.5})
assert(pr <= 0)
local ok, err = pcall(function() return lathe.env("cartpol") end)
assert(not ok and err:find("did you mean 'cartpole'"), err)
print("env ok")
