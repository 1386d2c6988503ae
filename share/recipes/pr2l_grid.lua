-- pr2l_grid.lua: promptable representations for RL (PR2L; Chen, Mees, Kumar,
-- Levine; specs/pr2l.md) at small scale, with lathe's own frozen GPT in the
-- place of the vision-language model: lathe has no vision model, so the
-- observation reaches the model as text ("you 2 3 . key 4 1 . ball 0 0 .");
-- the policy never sees that text, only the model's hidden states.
--
--   1. world model: a GPT trained with sft on `world_records` scenes records
--      (a scene, a question, the world's answer: where, think, far, is,
--      here) over every kind of layout; frozen from then on;
--   2. offline prompt evaluation (pr2lprobe): for each candidate prompt, and
--      for generic and raw features, a linear probe of the mean-pooled
--      features for the target's direction, fitted on half the training
--      layouts and scored on the other half; the ranking is printed;
--   3. PPO (pr2l) on "go to the key and interact", `seeds` seeds per arm at
--      `steps` environment steps each: the task-relevant prompt, the
--      chain-of-thought prompt, an irrelevant prompt (about the ball), the
--      relevant prompt's states without its answer (max_gen = 0), generic
--      features (the description's own hidden states) and the raw
--      one-hot grid, plus the probe's best and worst prompts when they are
--      not among those; evaluated at the end on the 50 training layouts and
--      on 200 held-out layouts no training episode saw.
-- Reported: success and return (IQM over seeds, 95% stratified-bootstrap
-- CI, n stated), P(arm A beats arm B) on held-out layouts, the held-out /
-- training ratio of chain-of-thought against the relevant prompt, and
-- whether the probe's ranking predicted the RL ranking (Spearman's rho).
-- No checkpoint is chosen: every arm reports its last evaluation.
--
--   lathe run share/recipes/pr2l_grid.lua --threads 1 --workers 2
--   lathe run share/recipes/pr2l_grid.lua --set seeds=2 --set steps=100000   # quick
local seeds = lathe.opt("seeds", 5)
local steps = lathe.opt("steps", 300000)
local records = lathe.opt("world_records", 50000)
local world_steps = lathe.opt("world_steps", 8000)
local world_layers = lathe.opt("world_layers", 2)
local world_width = lathe.opt("world_width", 64)
local model = lathe.opt("model", 0) -- a world model's run to reuse (0: train one)
local lr = lathe.opt("lr", 1e-3)
local base = lathe.opt("figure", "pr2l_grid")

local target = "key"
local arms = {
  {name = "relevant", repr = "prompt", prompt = "where is the key ?"},
  {name = "cot", repr = "prompt", prompt = "think : where is the key ?"},
  {name = "irrelevant", repr = "prompt", prompt = "where is the ball ?"},
  {name = "no-answer", repr = "prompt", prompt = "where is the key ?", max_gen = 0},
  {name = "generic", repr = "generic", prompt = ""},
  {name = "raw", repr = "raw", prompt = ""},
}
local candidates = {"where is the key ?", "think : where is the key ?", "where is the ball ?",
                    "is there a key ?", "how far is the key ?", "what is here ?"}

-- 1. the frozen world model
if not lathe.data.count("scenes") then
  assert(lathe.data.generate("scenes", "scenes", {n = records, seed = 0}))
end
if model == 0 then
  local wm = lathe.run("sft", {dataset = "scenes", tokenizer = "bpe", vocab = 320,
                               layers = world_layers, heads = 4, width = world_width, ctx = 64,
                               batch = 32, steps = world_steps, lr = 1e-3, warmup = 200,
                               holdout = 0.02, eval_every = 1000, seed = 1})
  assert(wm.status == "done", wm.error)
  model = wm.id
  print(string.format("world model: run %d, held-out loss %.4f", model, wm.summary["eval/loss"]))
end

-- 2. offline prompt evaluation
local probes = {}
local function probe(repr, prompt)
  return lathe.spawn("pr2lprobe", {repr = repr, prompt = prompt, model_run = model, seed = 1})
end
for _, p in ipairs(candidates) do probes[#probes + 1] = {label = p, run = probe("prompt", p)} end
probes[#probes + 1] = {label = "(generic)", run = probe("generic", "")}
probes[#probes + 1] = {label = "(raw grid)", run = probe("raw", "")}
local runs = {}
for _, p in ipairs(probes) do runs[#runs + 1] = p.run end
lathe.wait(runs)
local score = {} -- probe accuracy by prompt text, "(generic)", "(raw grid)"
for _, p in ipairs(probes) do
  assert(p.run.status == "done", p.run.error)
  p.acc, p.answer = p.run.summary["probe/accuracy"], p.run.summary["probe/answer_accuracy"]
  score[p.label] = p.acc
end
table.sort(probes, function(a, b) return a.acc > b.acc end)
print("offline prompt evaluation: a linear probe of mean-pooled features for the key's direction "
      .. "(9 classes), held-out layouts")
local rows = {}
for i, p in ipairs(probes) do
  rows[#rows + 1] = {tostring(i), p.label, string.format("%.3f", p.acc),
                     p.answer and string.format("%.3f", p.answer) or "-"}
end
lathe.table({"rank", "representation", "probe accuracy", "model's answer exact"}, rows)
local best, worst
for _, p in ipairs(probes) do
  if p.label:sub(1, 1) ~= "(" then
    best = best or p.label
    worst = p.label
  end
end
local have = {}
for _, a in ipairs(arms) do have[a.prompt] = have[a.prompt] or not a.max_gen end
if not have[best] then arms[#arms + 1] = {name = "probe-best", repr = "prompt", prompt = best} end
if not have[worst] then arms[#arms + 1] = {name = "probe-worst", repr = "prompt", prompt = worst} end

-- 3. PPO on every arm at equal environment steps
runs = {}
for _, a in ipairs(arms) do
  a.runs = {}
  for seed = 1, seeds do
    local r = lathe.spawn("pr2l", {repr = a.repr, prompt = a.prompt ~= "" and a.prompt or nil,
                                   model_run = a.repr ~= "raw" and model or nil, target = target,
                                   max_gen = a.max_gen,
                                   total_timesteps = steps, learning_rate = lr, eval_every = 20,
                                   seed = seed, ckpt_every = 50})
    a.runs[#a.runs + 1], runs[#runs + 1] = r, r
  end
end
lathe.wait(runs)
local function col(a, k) return lathe.stats.column(a.runs, k) end
local cell = lathe.stats.cell
print(string.format("PPO, %d environment steps per run, IQM over %d seed(s) [95%% bootstrap CI]; "
                    .. "success and return at the last evaluation (100 episodes per layout set)",
                    steps, seeds))
rows = {}
for _, a in ipairs(arms) do
  rows[#rows + 1] = {a.name, a.prompt ~= "" and a.prompt or "-",
                     cell(col(a, "eval/train_success")), cell(col(a, "eval/heldout_success")),
                     cell(col(a, "eval/train_return")), cell(col(a, "eval/heldout_return"))}
end
lathe.table({"arm", "prompt", "success (train layouts)", "success (held-out)",
             "return (train)", "return (held-out)"}, rows)

local by = {}
for _, a in ipairs(arms) do by[a.name] = a end
print("P(a run of A beats a run of B), held-out success [95% CI]")
rows = {}
for _, pair in ipairs{{"relevant", "generic"}, {"relevant", "irrelevant"}, {"relevant", "raw"},
                      {"relevant", "no-answer"}, {"cot", "relevant"}, {"generic", "raw"}} do
  local x, y = col(by[pair[1]], "eval/heldout_success"), col(by[pair[2]], "eval/heldout_success")
  if #x > 0 and #y > 0 then
    local p, lo, hi = lathe.stats.prob_improvement(x, y, {seed = 1})
    rows[#rows + 1] = {pair[1] .. " > " .. pair[2], string.format("%.2f [%.2f, %.2f]", p, lo, hi)}
  end
end
lathe.table({"comparison", "P(A > B)"}, rows)

local function iqm(t) return #t > 0 and lathe.stats.iqm(t) or 0/0 end
local function gain(name)
  return iqm(col(by[name], "eval/heldout_success")) / iqm(col(by["relevant"], "eval/heldout_success"))
end
print(string.format("chain-of-thought / relevant, held-out success: %.2fx (the paper: 1.5x in "
                    .. "novel scenes); training layouts: %.2fx", gain("cot"),
                    iqm(col(by.cot, "eval/train_success")) / iqm(col(by.relevant, "eval/train_success"))))

-- did the probe's ranking predict the RL ranking? Spearman's rho over the arms
local xs, ys = {}, {}
for _, a in ipairs(arms) do
  local s = not a.max_gen and
            score[a.prompt ~= "" and a.prompt or a.repr == "raw" and "(raw grid)" or "(generic)"]
  if s then xs[#xs + 1], ys[#ys + 1] = s, iqm(col(a, "eval/heldout_success")) end
end
local function ranks(v)
  local idx, r = {}, {}
  for i = 1, #v do idx[i] = i end
  table.sort(idx, function(a, b) return v[a] < v[b] end)
  local i = 1
  while i <= #idx do -- ties share their mean rank
    local j = i
    while j < #idx and v[idx[j + 1]] == v[idx[i]] do j = j + 1 end
    for k = i, j do r[idx[k]] = (i + j) / 2 end
    i = j + 1
  end
  return r
end
local rx, ry = ranks(xs), ranks(ys)
local mx, my, sxy, sxx, syy = 0, 0, 0, 0, 0
for i = 1, #rx do mx, my = mx + rx[i] / #rx, my + ry[i] / #ry end
for i = 1, #rx do
  sxy, sxx, syy = sxy + (rx[i] - mx) * (ry[i] - my), sxx + (rx[i] - mx) ^ 2, syy + (ry[i] - my) ^ 2
end
print(string.format("probe accuracy against RL held-out success over %d arms: Spearman rho = %.2f",
                    #rx, sxy / math.sqrt(sxx * syy)))

-- figures: success against environment steps (mean over seeds, band: min..max)
local series = {}
for _, a in ipairs(arms) do series[#series + 1] = {label = a.name, runs = a.runs} end
for _, m in ipairs{{"heldout", "held-out layouts"}, {"train", "training layouts"}} do
  lathe.plot{out = base .. "_" .. m[1] .. ".svg", metric = "eval/" .. m[1] .. "_success",
             x = "charts/env_steps", series = series, band = "minmax",
             title = string.format("PR2L grid: success on %s, %d seed(s) per arm", m[2], seeds)}
end
