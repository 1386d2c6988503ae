-- one DQN run on CartPole-v1; head, steps and checkpoint cadence from --set;
-- need= bounds the mean of the last three evaluations (not the best one)
-- (recipe options are read before any run starts: unread --set keys go to run configs)
local need = lathe.opt("need", 0)
local h = lathe.run("dqn", {critic_head = lathe.opt("head", "mse"), seed = lathe.opt("s", 1),
                            total_timesteps = lathe.opt("steps", 100000),
                            ckpt_every = lathe.opt("every", 1000), eval_every = 10000})
local steps, values = lathe.metrics(h, "eval/episodic_return")
local best, late = -math.huge, 0
for i = 1, #steps do best = math.max(best, values[i]) end
for i = #values - 2, #values do late = late + values[i] / 3 end -- the last three evaluations
print(string.format("%s best_eval %.1f late_eval %.1f final_eval %.1f", h.status, best, late,
                    values[#values]))
assert(h.status == "done")
assert(late >= need, "DQN's last three evaluations average below the required return")
