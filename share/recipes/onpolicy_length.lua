-- onpolicy_length.lua: the synthetic length tasks of "Preference Fine-Tuning
-- of LLMs Should Leverage Suboptimal, On-Policy Data" (Tajwar et al. 2024), at
-- small scale: prompts of four word tokens, responses of up to 64 tokens ended
-- by <eos>, a reference fitted to a broad length distribution (8 to 63 words,
-- mode 32), and the gold reward on the length: Min Length (-|y|, optimum in
-- the reference's thin tail), Mode Length (-||y| - 32|, optimum at the
-- reference's mode) and Skew Length (Min Length, but offline data only from
-- responses of 32 words or more). Ten methods, equal budgets: 6,400 reward
-- queries and 400 gradient steps each. Rewards are the gold function itself
-- (the paper trains a proxy reward model first; lathe's reward models are a
-- separate issue).
--
--   lathe run share/recipes/onpolicy_length.lua --threads 1 --workers 2
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local suite = dofile(dir .. "onpolicy_suite.lua")
local seeds = lathe.opt("seeds", 3)
local queries = lathe.opt("queries", 6400)
local only = lathe.opt("methods", "")
suite{
  title = "Length tasks", prefix = "onpolicy_length", seeds = seeds,
  only = only ~= "" and only or nil,
  tasks = {{id = "min", label = "Min Length", task = "length", task_args = "variant=min"},
           {id = "mode", label = "Mode Length", task = "length", task_args = "variant=mode"},
           {id = "skew", label = "Skew Length", task = "length", task_args = "variant=skew"}},
  common = {queries = queries, samples = 4, prompts = 16, inner_steps = 4, lr = 1e-3,
            beta = 0.1, layers = 2, heads = 2, width = 32, ref_steps = 150, ref_lr = 3e-3,
            ref_batch = 32, eval_every = 20, eval_prompts = 64},
}
