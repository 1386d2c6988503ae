-- The whole DQN loop on CartPole-v1 with CleanRL's hyperparameters, for
-- bench/run.sh: 50k environment steps (10k before learning starts, then an
-- update every 10 steps), no evaluation, one checkpoint at the end.
local steps = lathe.opt("steps", 50000)
local t0 = os.clock()
local h = lathe.run("dqn", {total_timesteps = steps, eval_every = 10 * steps, ckpt_every = 0,
                            seed = 1, critic_head = lathe.opt("head", "mse")})
assert(h.status == "done", h.error)
