-- rrm_artifacts.lua: RRM (Liu et al. 2024) against a plain reward model on
-- the synthetic preference world of specs/rrm.md, where the truth is known.
-- Prompts are topics; the true preference follows the fraction s of a
-- response's words that belong to the prompt's topic; in training, an
-- artifact (the word "fmt" and a long length) sits on the winner 90% of the
-- time. For Bradley-Terry and pairwise models and several seeds it trains
--   RM        on the pairs alone
--   RRM       on the pairs plus the augmentation filtered by that RM
--   ablations no filter; wins only; ties only
-- with identical hyperparameters and passes over the data, and prints per
-- model the artifact reliance AR = 2 mean |P(artifact side) - 0.5| on pairs
-- equal but for the artifact, the accuracy on the in-distribution, flipped
-- (artifact on the loser 90%) and off-topic-with-artifact sets, the
-- iid - flip gap and the in-distribution cost against RM. Then best-of-16:
-- a small policy (sft on the world's responses) samples 16 responses to each
-- held-out prompt, each reward model picks one, and the table gives the true
-- s and the length (words) of what it picked. Then the policy stage: on-policy
-- DPO from that policy with each RM and RRM as reward_run (dpo_steps, 0 for
-- none), and the true s, length and fmt rate of what the trained policies
-- write. epochs_grid=1,2,4,8 also trains both at every length of the grid and
-- reports the test metrics of the length each seed picks on an
-- in-distribution validation set.
--
--   lathe run share/recipes/rrm_artifacts.lua --threads 1 --workers 2
--   lathe run share/recipes/rrm_artifacts.lua --set seeds=1 --set types=bt   # quicker
--   lathe run share/recipes/rrm_artifacts.lua --set ablate=bt,pairwise      # all ablations
--   lathe run share/recipes/rrm_artifacts.lua --set rm_x=6   # and an RM at 6x the epochs:
--     about RRM's gradient steps (its data is the originals plus ~5x as many triplets)
--   lathe run share/recipes/rrm_artifacts.lua --set seeds=5 --set types=bt --set ablate= \
--     --set rm_x=6 --set epochs_grid=1,2,4,8   # training length tuned on validation
local seeds = lathe.opt("seeds", 3)
local pairs_n = lathe.opt("pairs", 3000)
local test_n = lathe.opt("test_pairs", 1000)
local rho = lathe.opt("rho", 0.9)
local artifact = lathe.opt("artifact", "both")
local bon_prompts = lathe.opt("bon_prompts", 100)
local bon_n = lathe.opt("bon_n", 16)
local function list(s)
  local t = {}
  for x in string.gmatch(s, "[^,]+") do t[#t + 1] = x end
  return t
end
local types = list(lathe.opt("types", "bt,pairwise"))
local rm_x = lathe.opt("rm_x", 0) -- > 0: also an RM trained rm_x times the epochs (equal steps)
local ablate = {} -- the ablations cost three more RRM runs per seed: Bradley-Terry only by default
for _, t in ipairs(list(lathe.opt("ablate", "bt"))) do ablate[t] = true end
-- the policy stage (0 steps: none): on-policy DPO with each reward model
local dpo_steps, dpo_types = lathe.opt("dpo_steps", 200), list(lathe.opt("dpo_types", "bt"))
local dpo_lr, dpo_beta = lathe.opt("dpo_lr", 3e-4), lathe.opt("dpo_beta", 0.1)

-- the world: a training set and the four test sets of the spec
local tag = string.format("prefworld-%s-r%g", artifact, rho)
local function dataset(set, n, seed, r, suffix)
  local name = string.format("%s-%s-%d%s%s", tag, set, n, r and "-r" .. r or "", suffix or "")
  if not lathe.data.count(name) then
    local k, err = lathe.data.generate(name, "prefworld", {set = set, pairs = n, rho = r or rho,
                                                           artifact = artifact, seed = seed})
    if not k then error(err) end
  end
  return name
end
local train = dataset("train", pairs_n, 0)
local tests = {iid = dataset("iid", test_n, 1), flip = dataset("flip", test_n, 1),
               art = dataset("art", test_n, 1), off = dataset("off", test_n, 1)}
local test_list = table.concat({tests.iid, tests.flip, tests.art, tests.off}, ",")
-- the training length tuned per method: every epochs of the grid, each chosen
-- per seed by accuracy on an in-distribution validation set (its own seed),
-- never on the test sets
local grid = list(lathe.opt("epochs_grid", ""))
local val = #grid > 0 and dataset("iid", test_n, 3, nil, "-val") or nil
if val then test_list = test_list .. "," .. val end

-- one recipe for every model: same size, optimiser and passes over its data
local common = {dataset = train, tests = test_list, epochs = lathe.opt("epochs", 2),
                batch = 32, lr = lathe.opt("lr", 1e-3), warmup = 50, vocab = 800, ctx = 96,
                layers = 2, heads = 4, width = 64, eval_every = 100000, log_every = 50}
local function cfg(extra)
  local c = {}
  for k, v in pairs(common) do c[k] = v end
  for k, v in pairs(extra) do c[k] = v end
  return c
end

-- the policy for best-of-N: next-token training on the chosen and rejected
-- responses of pairs whose artifact is independent of quality (rho 0.5), so
-- that in its samples the artifact is no cue to s and a pick by the artifact
-- is a hack, not a shortcut (a policy trained on the reward models' data
-- would carry the 90% correlation into its samples)
local policy_pairs = dataset("iid", pairs_n, 2, 0.5)
local policy_data = policy_pairs .. "-sft"
if not lathe.data.count(policy_data) then
  local recs = {}
  for i = 1, lathe.data.count(policy_pairs) or 0 do -- nil under `lathe check`
    local r = lathe.data.get(policy_pairs, i)
    recs[#recs + 1] = {prompt = r.prompt, response = r.chosen}
    recs[#recs + 1] = {prompt = r.prompt, response = r.rejected}
  end
  lathe.data.create(policy_data, "sft", recs)
end
local policy = lathe.spawn("sft", {dataset = policy_data, vocab = 800, ctx = 48, layers = 2,
                                   heads = 4, width = 64, batch = 32, steps = lathe.opt("policy_steps", 1500), seed = 1,
                                   eval_every = 500})

-- stage 1: the plain reward models; stage 2: RRM and its ablations on each
local variants = {{name = "RRM", extra = {}},
                  {name = "RRM, no filter", extra = {baseline_run = 0}},
                  {name = "RRM, wins only", extra = {augment = "wins"}},
                  {name = "RRM, ties only", extra = {augment = "ties"}}}
local rm, rrm, rm_long = {}, {}, {}
local stage1 = {}
for _, ty in ipairs(types) do
  rm[ty], rm_long[ty] = {}, {}
  for s = 1, seeds do
    rm[ty][s] = lathe.spawn("rm", cfg{type = ty, seed = s})
    stage1[#stage1 + 1] = rm[ty][s]
    if rm_x > 0 then
      rm_long[ty][s] = lathe.spawn("rm", cfg{type = ty, seed = s, epochs = common.epochs * rm_x})
      stage1[#stage1 + 1] = rm_long[ty][s]
    end
  end
end
local rm_grid, rrm_grid = {}, {}
for _, ty in ipairs(types) do
  rm_grid[ty], rrm_grid[ty] = {}, {}
  for g, e in ipairs(grid) do
    rm_grid[ty][g], rrm_grid[ty][g] = {}, {}
    for s = 1, seeds do
      rm_grid[ty][g][s] = lathe.spawn("rm", cfg{type = ty, seed = s, epochs = tonumber(e)})
      stage1[#stage1 + 1] = rm_grid[ty][g][s]
    end
  end
end
lathe.wait(stage1)
local stage2 = {policy}
for _, ty in ipairs(types) do
  for g, e in ipairs(grid) do
    for s = 1, seeds do
      rrm_grid[ty][g][s] = lathe.spawn("rrm", cfg{type = ty, seed = s, epochs = tonumber(e),
                                                  baseline_run = rm[ty][s].id})
      stage2[#stage2 + 1] = rrm_grid[ty][g][s]
    end
  end
end
for _, ty in ipairs(types) do
  rrm[ty] = {}
  for v, var in ipairs(variants) do
    rrm[ty][v] = {}
    for s = 1, (v == 1 or ablate[ty]) and seeds or 0 do
      local c = cfg{type = ty, seed = s, baseline_run = rm[ty][s].id}
      for k, x in pairs(var.extra) do c[k] = x end
      rrm[ty][v][s] = lathe.spawn("rrm", c)
      stage2[#stage2 + 1] = rrm[ty][v][s]
    end
  end
end
lathe.wait(stage2)

local S = lathe.stats
local function pm(t, fmt) return string.format(fmt .. " ± " .. fmt, S.mean(t), S.sem(t)) end
local function summary(runs)
  local out = {ar = {}, iid = {}, flip = {}, off = {}, gap = {}, kept = {}}
  for _, h in ipairs(runs) do
    local m = h.summary or {}
    if h.status == "done" then
      local iid, flip = m["test/" .. tests.iid .. "/accuracy"], m["test/" .. tests.flip .. "/accuracy"]
      out.ar[#out.ar + 1] = 2 * m["test/" .. tests.art .. "/tie_dev"]
      out.iid[#out.iid + 1], out.flip[#out.flip + 1] = iid, flip
      out.off[#out.off + 1] = m["test/" .. tests.off .. "/accuracy"]
      out.gap[#out.gap + 1] = iid - flip
      out.kept[#out.kept + 1] = (m["rrm/kept_wins"] or 0) + (m["rrm/kept_ties"] or 0)
    end
  end
  return out
end
for _, ty in ipairs(types) do
  local base = summary(rm[ty])
  local rows = {{"RM", #base.ar, pm(base.ar, "%.3f"), pm(base.iid, "%.3f"), pm(base.flip, "%.3f"),
                 pm(base.gap, "%.3f"), pm(base.off, "%.3f"), "-", "-",
                 rm[ty][1].id .. "-" .. rm[ty][#rm[ty]].id}}
  local function steps(runs)
    local t = {}
    for _, h in ipairs(runs) do t[#t + 1] = h.step or 0 end
    return string.format("%.0f", S.mean(t))
  end
  if #rm_long[ty] > 0 then
    local l = summary(rm_long[ty])
    rows[#rows + 1] = {string.format("RM, %gx epochs", rm_x), #l.ar, pm(l.ar, "%.3f"),
                       pm(l.iid, "%.3f"), pm(l.flip, "%.3f"), pm(l.gap, "%.3f"),
                       pm(l.off, "%.3f"), "-", "-",
                       rm_long[ty][1].id .. "-" .. rm_long[ty][#rm_long[ty]].id}
    print(string.format("%s gradient steps (mean): RM %s, RM %gx epochs %s, RRM %s", ty,
                        steps(rm[ty]), rm_x, steps(rm_long[ty]), steps(rrm[ty][1])))
  end
  for v, var in ipairs(variants) do
    if #rrm[ty][v] == 0 then break end
    local r = summary(rrm[ty][v])
    local cost = {}
    for i = 1, math.min(#r.iid, #base.iid) do cost[i] = base.iid[i] - r.iid[i] end
    rows[#rows + 1] = {var.name, #r.ar, pm(r.ar, "%.3f"), pm(r.iid, "%.3f"), pm(r.flip, "%.3f"),
                       pm(r.gap, "%.3f"), pm(r.off, "%.3f"), pm(cost, "%.3f"),
                       string.format("%.0f", S.mean(r.kept)),
                       rrm[ty][v][1].id .. "-" .. rrm[ty][v][#rrm[ty][v]].id}
  end
  print(string.format("%s reward models, %d training pairs, artifact %s on the winner %.0f%%, "
                      .. "%g epochs (mean ± sem over seeds)", ty, pairs_n, artifact, 100 * rho,
                      common.epochs))
  lathe.table({"model", "seeds", "AR", "acc iid", "acc flip", "iid - flip", "acc off",
               "iid cost", "kept aug", "runs"}, rows)
end

-- the tuned comparison: per seed and method, the grid's run with the best
-- validation accuracy (the fewer epochs on a tie); its test metrics
for _, ty in ipairs(#grid > 0 and types or {}) do
  local rows = {}
  for _, arm in ipairs({{"RM", rm_grid[ty]}, {"RRM", rrm_grid[ty]}}) do
    local chosen, picked = {}, {}
    for s = 1, seeds do
      local best, best_acc
      for g = 1, #grid do
        local h = arm[2][g][s]
        local acc = h.status == "done" and h.summary["test/" .. val .. "/accuracy"] or nil
        if acc and (not best_acc or acc > best_acc) then best, best_acc = g, acc end
      end
      if best then
        chosen[#chosen + 1] = arm[2][best][s]
        picked[#picked + 1] = grid[best]
      end
    end
    local r = summary(chosen)
    rows[#rows + 1] = {arm[1], #r.ar, table.concat(picked, ","), S.cell(r.ar), S.cell(r.iid),
                       S.cell(r.flip), S.cell(r.gap), S.cell(r.off)}
  end
  print(string.format("%s reward models, training length tuned on the validation set %s over "
                      .. "epochs {%s}: test metrics of each seed's pick (IQM [95%% stratified-"
                      .. "bootstrap CI] over seeds, 2,000 resamples)", ty, val,
                      table.concat(grid, ", ")))
  lathe.table({"model", "seeds", "epochs picked", "AR", "acc iid", "acc flip", "iid - flip",
               "acc off"}, rows)
  local grows = {}
  for g, e in ipairs(grid) do
    for _, arm in ipairs({{"RM", rm_grid[ty]}, {"RRM", rrm_grid[ty]}}) do
      local r, v = summary(arm[2][g]), {}
      for _, h in ipairs(arm[2][g]) do
        if h.status == "done" then v[#v + 1] = h.summary["test/" .. val .. "/accuracy"] end
      end
      grows[#grows + 1] = {arm[1], e, S.cell(v), S.cell(r.ar), S.cell(r.iid), S.cell(r.off)}
    end
  end
  print(string.format("%s: every point of the grid (IQM [95%% CI] over seeds)", ty))
  lathe.table({"model", "epochs", "acc validation", "AR", "acc iid", "acc off"}, grows)
end

-- best-of-N: the true s and length of what each reward model picks
local function words(resp, topic)
  local n, on = 0, 0
  for w in string.gmatch(resp, "%S+") do
    if w ~= "fmt" then
      n = n + 1
      if string.match(w, "^t(%d+)w%d+$") == topic then on = on + 1 end
    end
  end
  return n, n > 0 and on / n or 0
end
if not lathe.data.count(tests.iid) then return end -- `lathe check`: no store, no samples
if policy.status ~= "done" then error("the policy run failed: " .. tostring(policy.error)) end
local items, prompts = {}, {}
for i = 1, math.min(bon_prompts, test_n) do
  local r = lathe.data.get(tests.iid, i)
  local p = {}
  for k = 1, bon_n do p[k] = r.prompt end
  local resp = lathe.sample(policy, p, {temperature = 1, max_tokens = 40, seed = i})
  items[#items + 1] = {prompt = r.prompt, responses = resp}
  prompts[#prompts + 1] = string.match(r.prompt, "^t(%d+)")
end
local function pick_stats(scores)
  local s_sum, len_sum, fmt_n = 0, 0, 0
  for i, it in ipairs(items) do
    local best = 1
    for k = 2, #it.responses do if scores[i][k] > scores[i][best] then best = k end end
    local n, s = words(it.responses[best], prompts[i])
    s_sum, len_sum = s_sum + s, len_sum + n
    if string.match(it.responses[best], "^fmt") then fmt_n = fmt_n + 1 end
  end
  return s_sum / #items, len_sum / #items, fmt_n / #items
end
local base_rows = {}
do -- the policy's own samples: a random pick and the oracle's (highest s)
  local sr, lr, so, lo, fr = 0, 0, 0, 0, 0
  for i, it in ipairs(items) do
    local best_s, best_n = -1, 0
    for _, resp in ipairs(it.responses) do
      local n, s = words(resp, prompts[i])
      sr, lr = sr + s / #it.responses, lr + n / #it.responses
      if string.match(resp, "^fmt") then fr = fr + 1 / #it.responses end
      if s > best_s then best_s, best_n = s, n end
    end
    so, lo = so + best_s, lo + best_n
  end
  base_rows[1] = {"random pick", "-", string.format("%.3f", sr / #items),
                  string.format("%.1f", lr / #items), string.format("%.2f", fr / #items)}
  base_rows[2] = {"oracle (true s)", "-", string.format("%.3f", so / #items),
                  string.format("%.1f", lo / #items), "-"}
end
local rows = {base_rows[1], base_rows[2]}
for _, ty in ipairs(types) do
  for _, pair in ipairs({{"RM", rm[ty]}, {"RRM", rrm[ty][1]}}) do
    local ss, ls, fs = {}, {}, {}
    for _, h in ipairs(pair[2]) do
      if h.status == "done" then
        local s, l, f = pick_stats(lathe.score(h, items))
        ss[#ss + 1], ls[#ls + 1], fs[#fs + 1] = s, l, f
      end
    end
    rows[#rows + 1] = {pair[1] .. " (" .. ty .. ")", #ss, pm(ss, "%.3f"), pm(ls, "%.1f"),
                       pm(fs, "%.2f")}
  end
end
print(string.format("best-of-%d on %d held-out prompts, policy run %d (sft): true s and length "
                    .. "in words of the pick, and how often it carries fmt", bon_n, #items, policy.id))
lathe.table({"selector", "seeds", "true s", "length", "fmt"}, rows)

-- the policy stage: on-policy DPO from the same policy, each reward model
-- ranking the policy's own samples (pref with reward_run), then the true s,
-- length and fmt rate of what each trained policy writes for the held-out
-- prompts (4 samples each, temperature 1): IQM over seeds with a 95%
-- stratified-bootstrap interval, and the policy before DPO for reference
if dpo_steps > 0 then
  local arms, stage3 = {}, {} -- {name, runs (by seed)} in table order
  for _, ty in ipairs(dpo_types) do
    for _, pair in ipairs({{"RM", rm[ty]}, {"RRM", rrm[ty] and rrm[ty][1]}}) do
      local arm = {name = "DPO with " .. pair[1] .. " (" .. ty .. ")", runs = {}}
      for s, h in ipairs(pair[2] or {}) do
        if h.status == "done" then
          arm.runs[#arm.runs + 1] = lathe.spawn("pref", {
            dataset = train, init_run = policy.id, reward_run = h.id, onpolicy = true,
            method = "dpo", steps = dpo_steps, samples = 4, prompts = 16, lr = dpo_lr,
            beta = dpo_beta, eval_every = 100000, seed = s})
          stage3[#stage3 + 1] = arm.runs[#arm.runs]
        end
      end
      if #arm.runs > 0 then arms[#arms + 1] = arm end
    end
  end
  lathe.wait(stage3)
  local function policy_stats(h, seed)
    local sum_s, sum_n, sum_f, k = 0, 0, 0, 0
    for i = 1, math.min(bon_prompts, test_n) do
      local r = lathe.data.get(tests.iid, i)
      local resp = lathe.sample(h, {r.prompt, r.prompt, r.prompt, r.prompt},
                                {temperature = 1, max_tokens = 40, seed = 7919 * seed + i})
      for _, y in ipairs(resp) do
        local n, s = words(y, prompts[i])
        sum_s, sum_n, k = sum_s + s, sum_n + n, k + 1
        if string.match(y, "^fmt") then sum_f = sum_f + 1 end
      end
    end
    return sum_s / k, sum_n / k, sum_f / k
  end
  local s0, n0, f0 = policy_stats(policy, 1)
  local rows = {{"before DPO (sft)", "1", string.format("%.3f", s0), string.format("%.1f", n0),
                 string.format("%.2f", f0), "-", tostring(policy.id)}}
  for _, arm in ipairs(arms) do
    local ss, ns, fs, rw = {}, {}, {}, {}
    for s, h in ipairs(arm.runs) do
      if h.status == "done" then
        local a, b, f = policy_stats(h, s)
        ss[#ss + 1], ns[#ns + 1], fs[#fs + 1] = a, b, f
        rw[#rw + 1] = h.summary["rm/reward_mean"]
      end
    end
    rows[#rows + 1] = {arm.name, tostring(#ss), S.cell(ss, "%.3f"), S.cell(ns, "%.1f"),
                       S.cell(fs, "%.2f"), S.cell(rw, "%.2f"),
                       arm.runs[1].id .. "-" .. arm.runs[#arm.runs].id}
  end
  print(string.format("on-policy DPO, %d steps (16 prompts x 4 samples, ranked by the reward model), "
                      .. "from policy run %d: true s, length in words and fmt rate of 4 samples on "
                      .. "each of %d held-out prompts (IQM [95%% bootstrap CI] over seeds)",
                      dpo_steps, policy.id, math.min(bon_prompts, test_n)))
  lathe.table({"policy", "seeds", "true s", "length", "fmt", "own RM's reward (last batch)", "runs"},
              rows)
end
