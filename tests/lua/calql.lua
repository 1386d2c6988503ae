-- sac / cql / calql runs for the end-to-end tests (options from --set):
--   mode=pendulum  SAC online on Pendulum-v1; fails below need (the final evaluation return)
--   mode=maze      offline then online on a small generated umaze dataset (kill-and-resume)
--   mode=calib     CQL and Cal-QL pre-trained offline on the same data: prints mean Q on
--                  data actions minus the mean Monte-Carlo return of each
local mode = lathe.opt("mode", "maze")
local every = lathe.opt("every", 100)
if mode == "pendulum" then
  local h = lathe.run("sac", {env = "pendulum", online_steps = lathe.opt("steps", 10000),
                              offline_steps = 0, learning_starts = 1000, policy_arch = "64-64",
                              qf_arch = "64-64", batch_size = 128, policy_lr = 1e-3, qf_lr = 1e-3,
                              eval_every = 2500, eval_episodes = 10, log_every = 500, seed = 1,
                              ckpt_every = every})
  local steps, values = lathe.metrics(h, "evaluation/average_return")
  print(string.format("%s final_return %.1f", h.status, values[#values]))
  assert(values[#values] > lathe.opt("need", -250), "SAC did not learn Pendulum")
  return
end
if not lathe.data.count("um") then
  assert(lathe.data.generate("um", "mazedata", {maze = "umaze", transitions = lathe.opt("n", 5000)}))
end
local common = {env = "pointmaze", env_config = "maze=umaze", dataset = "um", policy_arch = "32-32",
                qf_arch = "32-32", batch_size = 32, n_actions = 4, eval_every = 200,
                eval_episodes = 2, log_every = 50, ckpt_every = every, seed = 3,
                critic_head = lathe.opt("head", "mse"), v_min = -600, v_max = 100, bins = 51}
if mode == "maze" then
  common.offline_steps, common.online_steps = lathe.opt("offline", 300), lathe.opt("online", 700)
  local h = lathe.run(lathe.opt("algo", "calql"), common)
  assert(h.status == "done")
  return
end
-- calibration: near-expert data (the controller with little noise) from the start cell, so
-- the learnt policy cannot beat the data's returns by much; fixed CQL weight 5
assert(lathe.data.generate("near", "mazedata", {maze = "umaze", starts = "fixed", noise = 0.1,
                                                 transitions = 5000}))
common.dataset, common.offline_steps, common.online_steps = "near", 2500, 0
common.soft_target_update_rate, common.batch_size, common.log_every = 0.05, 64, 250
common.cql_lagrange, common.cql_min_q_weight, common.eval_every = false, 5, 2500
local hs = {lathe.spawn("cql", common), lathe.spawn("calql", common)}
lathe.wait(hs)
local gap = {}
for i, name in ipairs{"cql", "calql"} do
  -- mean over the logged points from step 1000 on of Q(s, a_data) - G
  local s, q = lathe.metrics(hs[i], "sac/average_qf1")
  local _, g = lathe.metrics(hs[i], "calql/mc_return")
  local d, n = 0, 0
  for j = 1, #s do if s[j] >= 1000 then d, n = d + q[j] - g[j], n + 1 end end
  gap[i] = d / n
  print(string.format("%s mean Q(data) - G %.2f", name, gap[i]))
end
assert(gap[1] < 0, "CQL's values are not below the Monte-Carlo returns")
assert(gap[2] >= 0, "Cal-QL's values fall below the Monte-Carlo returns")
