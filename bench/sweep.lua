-- a sweep of small DQN runs (--set runs=N --set steps=S), for bench/mpi_sweep.sh
local n, steps = lathe.opt("runs", 12), lathe.opt("steps", 20000)
local hs = {}
for s = 1, n do
  hs[s] = lathe.spawn("dqn", {seed = s, total_timesteps = steps, learning_starts = 2000,
                              eval_every = steps // 2})
end
lathe.wait(hs)
for _, h in ipairs(hs) do assert(h.status == "done", h.error) end
