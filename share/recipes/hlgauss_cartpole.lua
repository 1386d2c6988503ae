-- hlgauss_cartpole.lua: "Stop Regressing" at small scale. DQN on CartPole-v1
-- with CleanRL's hyperparameters, identical except for the critic head (mse,
-- two_hot, hl_gauss), with clean rewards and with Gaussian reward noise.
-- Prints the final greedy evaluation return (10 episodes at the last step) per
-- head and condition: mean, standard error and interquartile mean over seeds.
-- Every curve stays in the store (lathe metrics RUN --metric eval/episodic_return).
--
--   lathe run share/recipes/hlgauss_cartpole.lua                    # full: 5 seeds x 500k steps
--   lathe run share/recipes/hlgauss_cartpole.lua --set seeds=2 --set steps=50000   # make demo
local seeds = lathe.opt("seeds", 5)
local steps = lathe.opt("steps", 500000)
local noise = lathe.opt("noise", 1.0)          -- std of the reward noise in the noisy condition
local only = lathe.opt("condition", "both")    -- "clean", "noisy" or "both"
local heads = {"mse", "two_hot", "hl_gauss"}
local conditions = {}
if only ~= "noisy" then conditions[#conditions + 1] = {name = "clean", noise = 0} end
if only ~= "clean" then conditions[#conditions + 1] = {name = "noise " .. noise, noise = noise} end

local groups, all = {}, {}
for _, cond in ipairs(conditions) do
  for _, head in ipairs(heads) do
    local g = {head = head, cond = cond.name, runs = {}}
    for s = 1, seeds do
      local r = lathe.spawn("dqn", {critic_head = head, seed = s, total_timesteps = steps,
                                    reward_noise = cond.noise, eval_every = math.min(10000, steps),
                                    ckpt_every = 50000})
      g.runs[#g.runs + 1] = r
      all[#all + 1] = r
    end
    groups[#groups + 1] = g
  end
end
lathe.wait(all)

local rows = {}
for _, g in ipairs(groups) do
  local finals, ids = {}, {}
  for _, r in ipairs(g.runs) do
    finals[#finals + 1] = r.summary["eval/episodic_return"] or 0 / 0
    ids[#ids + 1] = r.id
  end
  rows[#rows + 1] = {g.head, g.cond, #finals, lathe.stats.mean(finals), lathe.stats.sem(finals),
                     lathe.stats.iqm(finals), ids[1] .. "-" .. ids[#ids]}
end
print(string.format("DQN on CartPole-v1, %d steps, %d seeds: final greedy evaluation return", steps, seeds))
lathe.table({"head", "rewards", "seeds", "mean", "sem", "iqm", "runs"}, rows)
