-- onpolicy_bandit.lua: the didactic bandit of "Preference Fine-Tuning of LLMs
-- Should Leverage Suboptimal, On-Policy Data" (Tajwar et al. 2024) at its own
-- scale: a one-token prompt, nine response tokens over a 100-token vocabulary,
-- a gpt-nano policy (3 layers, 3 heads, width 48) whose reference is fitted to
-- the tanh-Cauchy histogram p_data, and two rewards: R1 peaks at token 70,
-- where the reference has 4% of its mass; R2 peaks at token 20, where it is
-- likely. Ten methods, equal budgets: 10,000 reward queries and 1,000
-- gradient steps each (on-policy: 100 rounds of 10 prompts x 10 samples and
-- 10 steps; offline: the same 10,000 samples drawn once from pi_ref).
--
--   lathe run share/recipes/onpolicy_bandit.lua --threads 1 --workers 2
--   lathe run share/recipes/onpolicy_bandit.lua --set seeds=1 --set queries=2000   # quick
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local suite = dofile(dir .. "onpolicy_suite.lua")
local seeds = lathe.opt("seeds", 3)
local queries = lathe.opt("queries", 10000)
local only = lathe.opt("methods", "")
local lr = lathe.opt("lr", 1e-4)
local ipo_norm = lathe.opt("ipo_norm", "sum")
local pairs = lathe.opt("pairs", "all")
suite{
  title = "Didactic bandit", prefix = "onpolicy_bandit", seeds = seeds,
  only = only ~= "" and only or nil,
  tasks = {{id = "r1", label = "R1 (peak unlikely under pi_ref)", task = "bandit",
            task_args = "reward=r1"},
           {id = "r2", label = "R2 (peak likely under pi_ref)", task = "bandit",
            task_args = "reward=r2"}},
  -- IPO's tau 0.05 is a target margin of 10 on the summed log-ratio, as
  -- the paper's code applies it (ipo_norm = sum; --set ipo_norm=avg gives
  -- TRL's per-token averages). DPO's beta is the code's 0.05. The
  -- contrastive methods pair every two responses of a group whose rewards
  -- differ, as the paper does (--set pairs=best_worst: best against worst)
  common = {queries = queries, samples = 10, prompts = 10, inner_steps = 10, lr = lr,
            beta = 0.05, eval_every = 50, eval_prompts = 100, ipo_norm = ipo_norm,
            pairs = pairs},
}
