-- PR2L's feature extraction with and without the cache (bench/README.md):
-- pr2l on promptable features from world model run `model` (a pr2l_grid.lua
-- store), `iters` PPO iterations of 8 environments x 64 steps, once with the
-- cache and once without, interleaved `reps` times. Reported per arm: the
-- median over iterations (the first, which fills the cache, left out) of
-- environment steps per second while collecting (features, policy forward,
-- environment) and of whole iterations (collection and the PPO update), and
-- the paired ratio of the medians, median over reps.
--   lathe run bench/pr2l_cache.lua --store STORE --set model=1 --threads 1
local model = lathe.opt("model", 1)
local iters, reps = lathe.opt("iters", 30), lathe.opt("reps", 3)
local prompt = lathe.opt("prompt", "think : where is the key ?")
local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or (t[n / 2] + t[n / 2 + 1]) / 2
end
local function series(id, name)
  local _, v = lathe.metrics(id, name)
  local out = {}
  for i = 2, #v do out[#out + 1] = v[i] end
  return median(out)
end
local res = {[true] = {c = {}, w = {}}, [false] = {c = {}, w = {}}}
local ratio_c, ratio_w = {}, {}
for rep = 1, reps do
  local m = {}
  for _, cache in ipairs{true, false} do
    local r = lathe.run("pr2l", {repr = "prompt", model_run = model, prompt = prompt, cache = cache,
                                 total_timesteps = 512 * iters, eval_every = 1e9,
                                 eval_episodes = 1, heldout_layouts = 1, ckpt_every = 0, seed = rep})
    assert(r.status == "done", r.error)
    m[cache] = {series(r.id, "perf/env_steps_per_sec"), series(r.id, "perf/steps_per_sec")}
    table.insert(res[cache].c, m[cache][1])
    table.insert(res[cache].w, m[cache][2])
  end
  ratio_c[#ratio_c + 1] = m[true][1] / m[false][1]
  ratio_w[#ratio_w + 1] = m[true][2] / m[false][2]
end
print(string.format("pr2l, prompt '%s', world model run %d, %d iterations x %d reps", prompt, model,
                    iters, reps))
lathe.table({"cache", "collection env steps/s", "iteration env steps/s"},
            {{"on", string.format("%.0f", median(res[true].c)), string.format("%.0f", median(res[true].w))},
             {"off", string.format("%.0f", median(res[false].c)), string.format("%.0f", median(res[false].w))},
             {"ratio (paired median)", string.format("%.1fx", median(ratio_c)),
              string.format("%.1fx", median(ratio_w))}})
