-- short DQN runs side by side (4, or --set runs=N), for the --workers and
-- --mpi determinism tests
local n = lathe.opt("runs", 4)
local hs = {}
for s = 1, n do
  hs[s] = lathe.spawn("dqn", {seed = s, total_timesteps = 12000, learning_starts = 2000,
                              eval_every = 6000, critic_head = s % 2 == 0 and "hl_gauss" or "mse"})
end
lathe.wait(hs)
for _, h in ipairs(hs) do assert(h.status == "done", h.error) end
