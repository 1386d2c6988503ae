-- Cal-QL's online fine-tuning loop on pointmaze (open), for bench/run.sh, the
-- same work as bench/calql_loop_torch.py: STEPS environment steps, each
-- trajectory followed by as many gradient steps on 50/50 offline/online
-- batches; the recipe's sizes (64-64 networks, batch 64, 10 actions per CQL
-- source). No offline phase: the dataset is only mixed in.
local steps = lathe.opt("steps", 2000)
if not lathe.data.count("bench-open") then
  assert(lathe.data.generate("bench-open", "mazedata", {maze = "open", transitions = 30000}))
end
local h = lathe.run("calql", {env = "pointmaze", env_config = "maze=open", dataset = "bench-open",
                              offline_steps = 0, online_steps = steps, policy_arch = "64-64",
                              qf_arch = "64-64", batch_size = 64, soft_target_update_rate = 0.02,
                              eval_every = 10 * steps, eval_episodes = 1, ckpt_every = 0, seed = 1})
assert(h.status == "done", h.error)
