-- hlgauss_cartpole.lua: "Stop Regressing" at small scale. DQN on CartPole-v1
-- with CleanRL's hyperparameters, identical except for the critic head (mse,
-- two_hot, hl_gauss), with clean rewards and with Gaussian reward noise.
-- Prints the final greedy evaluation return (10 episodes at the last step) per
-- head and condition: mean, standard error and interquartile mean over seeds.
-- Every curve stays in the store (lathe metrics RUN --metric eval/episodic_return);
-- the figures hlgauss_cartpole_<condition>.svg (mean and one standard deviation
-- over seeds, per head) are written to the working directory.
--
--   lathe run share/recipes/hlgauss_cartpole.lua                    # full: 5 seeds x 500k steps
--   lathe run share/recipes/hlgauss_cartpole.lua --set seeds=2 --set steps=50000   # make demo
--   lathe run share/recipes/hlgauss_cartpole.lua --set tabulate=true   # table of the finished
--       DQN runs already in the store (after `lathe resume` of interrupted ones, say)
local tabulate = lathe.opt("tabulate", false)
local seeds = lathe.opt("seeds", 5)
local steps = lathe.opt("steps", 500000)
local noise = lathe.opt("noise", 1.0)          -- std of the reward noise in the noisy condition
local only = lathe.opt("condition", "both")    -- "clean", "noisy" or "both"
local heads = {"mse", "two_hot", "hl_gauss"}
local conditions = {}
if only ~= "noisy" then conditions[#conditions + 1] = {name = "clean", noise = 0} end
if only ~= "clean" then conditions[#conditions + 1] = {name = "noise " .. noise, noise = noise} end

local function row(head, cond, finals, ids)
  return {head, cond, #finals, lathe.stats.mean(finals), lathe.stats.sem(finals),
          lathe.stats.iqm(finals), ids}
end

local rows = {}
if tabulate then
  -- every finished DQN run of this length in the store, grouped by head and noise
  local groups, order = {}, {}
  for _, r in ipairs(lathe.runs()) do
    local c = r.config
    if r.plugin == "dqn" and r.status == "done" and c.total_timesteps == steps then
      local key = c.critic_head .. "|" .. c.reward_noise
      if not groups[key] then
        groups[key] = {head = c.critic_head, noise = c.reward_noise, finals = {}, ids = {}}
        order[#order + 1] = key
      end
      local g = groups[key]
      g.finals[#g.finals + 1] = r.summary["eval/episodic_return"]
      g.ids[#g.ids + 1] = r.id
    end
  end
  table.sort(order, function(a, b)
    local ga, gb = groups[a], groups[b]
    if ga.noise ~= gb.noise then return ga.noise < gb.noise end
    local rank = {mse = 1, huber = 2, two_hot = 3, hl_gauss = 4, c51 = 5}
    return (rank[ga.head] or 9) < (rank[gb.head] or 9)
  end)
  for _, k in ipairs(order) do
    local g = groups[k]
    rows[#rows + 1] = row(g.head, g.noise == 0 and "clean" or ("noise " .. g.noise), g.finals,
                          g.ids[1] .. "-" .. g.ids[#g.ids])
  end
else
  local groups, all = {}, {}
  for _, cond in ipairs(conditions) do
    for _, head in ipairs(heads) do
      local g = {head = head, cond = cond.name, runs = {}}
      for s = 1, seeds do
        local r = lathe.spawn("dqn", {critic_head = head, seed = s, total_timesteps = steps,
                                      reward_noise = cond.noise,
                                      eval_every = math.min(10000, steps), ckpt_every = 50000})
        g.runs[#g.runs + 1] = r
        all[#all + 1] = r
      end
      groups[#groups + 1] = g
    end
  end
  lathe.wait(all)
  for _, g in ipairs(groups) do
    local finals = {}
    for _, r in ipairs(g.runs) do finals[#finals + 1] = r.summary["eval/episodic_return"] or 0 / 0 end
    rows[#rows + 1] = row(g.head, g.cond, finals, g.runs[1].id .. "-" .. g.runs[#g.runs].id)
  end
  for _, cond in ipairs(conditions) do
    local series = {}
    for _, g in ipairs(groups) do
      if g.cond == cond.name then series[#series + 1] = {label = g.head, runs = g.runs} end
    end
    local out = lathe.plot{out = "hlgauss_cartpole_" .. cond.name:gsub("[^%w]+", "_") .. ".svg",
                           metric = "eval/episodic_return", series = series,
                           title = "DQN on CartPole-v1, " .. cond.name .. " rewards"}
    print("figure: " .. out)
  end
end
print(string.format("DQN on CartPole-v1, %d steps: final greedy evaluation return (10 episodes)", steps))
lathe.table({"head", "rewards", "seeds", "mean", "sem", "iqm", "runs"}, rows)
