-- onpolicy_length.lua: the synthetic length tasks of "Preference Fine-Tuning
-- of LLMs Should Leverage Suboptimal, On-Policy Data" (Tajwar et al. 2024), at
-- small scale: prompts of four word tokens, responses of up to 64 tokens ended
-- by <eos>, a reference fitted to a broad length distribution (8 to 63 words,
-- mode 32), and the gold reward on the length: Min Length (-|y|, optimum in
-- the reference's thin tail), Mode Length (-||y| - 32|, optimum at the
-- reference's mode) and Skew Length (Min Length, but offline data only from
-- responses of 32 words or more). Ten methods, equal budgets: 6,400 reward
-- queries and 400 gradient steps each. Pairs as the paper's code forms them
-- (every ordered pair of a group whose rewards differ; --set pairs=best_worst
-- for best against worst) and IPO's margin on summed log-ratios (--set
-- ipo_norm=avg for TRL's per-token averages).
--
-- reward=gold (the default) trains on the gold reward itself; reward=proxy
-- first trains a Bradley-Terry reward model per task on 4,000 pairs of
-- reference responses labelled by the gold reward (taskprefs; Skew's pairs
-- only from responses the skew admits) and trains every method on that
-- model's scores, as the paper does; evaluation is always the gold reward,
-- with the proxy's score beside it.
--
--   lathe run share/recipes/onpolicy_length.lua --threads 1 --workers 2
--   lathe run share/recipes/onpolicy_length.lua --threads 1 --workers 2 --set reward=proxy
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local suite = dofile(dir .. "onpolicy_suite.lua")
local seeds = lathe.opt("seeds", 3)
local queries = lathe.opt("queries", 6400)
local only = lathe.opt("methods", "")
local reward = lathe.opt("reward", "gold")
local rm_pairs = lathe.opt("rm_pairs", 4000)
local pairs = lathe.opt("pairs", "all")
local ipo_norm = lathe.opt("ipo_norm", "sum")
assert(reward == "gold" or reward == "proxy", "reward must be gold or proxy")
local tasks = {{id = "min", label = "Min Length", task = "length", task_args = "variant=min"},
               {id = "mode", label = "Mode Length", task = "length", task_args = "variant=mode"},
               {id = "skew", label = "Skew Length", task = "length", task_args = "variant=skew"}}
if reward == "proxy" then -- one reward model per task, trained before any method runs
  local rms = {}
  for _, t in ipairs(tasks) do
    local name = string.format("lengthprefs-%s-%d", t.id, rm_pairs)
    if not lathe.data.count(name) then
      local n, err = lathe.data.generate(name, "taskprefs", {task = t.task, task_args = t.task_args,
                                                           pairs = rm_pairs})
      if not n then error(err) end
    end
    t.rm = lathe.spawn("rm", {dataset = name, epochs = 2, batch = 32, lr = 1e-3, warmup = 50,
                              vocab = 400, ctx = 160, layers = 2, heads = 4, width = 64, seed = 1})
    rms[#rms + 1] = t.rm
  end
  lathe.wait(rms)
  for _, t in ipairs(tasks) do
    if t.rm.status ~= "done" then error("the reward model of " .. t.label .. " failed") end
    t.reward_run = t.rm.id
    print(string.format("%s: proxy reward model run %d, held-out pair accuracy %.3f", t.label,
                        t.rm.id, t.rm.summary["eval/accuracy"] or 0 / 0))
  end
end
suite{
  title = "Length tasks" .. (reward == "proxy" and " (proxy reward model)" or ""),
  prefix = "onpolicy_length" .. (reward == "proxy" and "_proxy" or ""), seeds = seeds,
  only = only ~= "" and only or nil, tasks = tasks,
  common = {queries = queries, samples = 4, prompts = 16, inner_steps = 4, lr = 1e-3,
            beta = 0.1, layers = 2, heads = 2, width = 32, ref_steps = 150, ref_lr = 3e-3,
            ref_batch = 32, eval_every = 20, eval_prompts = 64, pairs = pairs, ipo_norm = ipo_norm},
}
