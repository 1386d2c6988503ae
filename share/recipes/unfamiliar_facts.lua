-- unfamiliar_facts.lua: how the supervision of unfamiliar fine-tuning
-- examples sets what a model says about what it does not know (Kang et al.,
-- "Unfamiliar finetuning examples control how language models hallucinate";
-- specs/unfamiliar.md), in a facts world whose every fact is checkable.
--
--   1. the world (factsworld, `entities` entities, world seed `world`): a
--      corpus in which each entity appears k in {0, 1, 3, 10, 30} times (40%
--      at 0), questions, True/False statements;
--   2. a base model pretrained from scratch on the corpus (sft: 4 layers,
--      width 128, BPE 1024, `pre_steps` steps): one base for every seed, as
--      the paper has one pretrained model;
--   3. familiarity, measured with the base model only: 12 answers sampled
--      per question from its cloze ("NAME lives in"), n_correct counted;
--      unfamiliar = n_correct below the 40th percentile over the training
--      questions (strict <);
--   4. SFT relabelling (experiment 1): fine-tune the base on the questions
--      of the train entities (half) with the unfamiliar examples' targets
--      true (standard), "i don't know" (idk), or the decoy value (decoy),
--      and idk on a random subset of the same size (idk_random, the paper's
--      other style); each fine-tuned model's answers to the held-out test
--      entities' questions (`eval_samples` sampled each) are classified as
--      correct, wrong, abstain or malformed per familiarity bin, and the
--      prediction histogram on unfamiliar test questions is compared with
--      the target histogram of the unfamiliar fine-tuning examples (KL,
--      Jeffreys-smoothed);
--   5. reward models (experiment 2): generative True/False judges fine-tuned
--      from the base on statements of the train entities, standard (every
--      question's true and false statement, labelled by truth) or
--      conservative (unfamiliar questions: only the false statement), read
--      on the test entities' statements in the form `judge_form`: negation
--      (the cloze continued by " paris ." or " not paris .", the default)
--      or statement (the sentence continued by " true" or " false": the
--      spec's form, which this base cannot learn; recipes README);
--   6. long-form factuality RL (experiment 3): a bio policy (true bios of
--      the familiar train entities, cut after 1 to 4 sentences), REINFORCE
--      with a KL penalty and +2/-3 per fact as a judge calls it (factrl),
--      the standard judge of 5 against a conservative one trained on the
--      policy's own facts; true and false facts per bio on the test
--      entities.
-- Seeds vary the fine-tuning, the judges, RL and the sampling; n = `seeds`
-- per cell, IQM with a 95% bootstrap interval. No checkpoint is selected:
-- every model is evaluated once, at its last step, on test entities.
-- `parts` picks experiments (sft, rm, rl), `base_run` reuses a pretrained
-- base of this world.
--
--   lathe run share/recipes/unfamiliar_facts.lua --threads 1 --workers 2   # about 36 min
--   lathe run share/recipes/unfamiliar_facts.lua --set entities=200 --set pre_steps=300 \
--       --set seeds=1 --set ft_steps=50 --set rm_steps=50 --set bio_steps=50 \
--       --set rl_steps=4                                             # a smoke run
local entities = lathe.opt("entities", 2000)
local world = lathe.opt("world", 1)
local seeds = lathe.opt("seeds", 3)
local pre_steps = lathe.opt("pre_steps", 8000)
local pre_lr = lathe.opt("pre_lr", 3e-3)
local ft_steps = lathe.opt("ft_steps", 600)
local ft_lr = lathe.opt("ft_lr", 3e-4)
local rm_steps = lathe.opt("rm_steps", 600)
local samples = lathe.opt("samples", 12)
local eval_samples = lathe.opt("eval_samples", 4)
local bio_steps = lathe.opt("bio_steps", 600)
local rl_steps = lathe.opt("rl_steps", 300)
local rl_lr = lathe.opt("rl_lr", 5e-4)
local kl_coef = lathe.opt("kl_coef", 0.05)
local judge_form = lathe.opt("judge_form", "negation") -- how a judge reads a claim (section 5)
local judge_reward = lathe.opt("judge_reward", "verdict") -- a fact's reward in RL: verdict | expected
local parts_s = lathe.opt("parts", "sft,rm,rl") -- the experiments to run (rl runs rm's judges too)
local base_run = lathe.opt("base_run", 0) -- reuse a pretrained base (an sft run on this world's corpus)
local base_name = lathe.opt("figure", "unfamiliar_facts")

local tag = string.format("facts%d_w%d", entities, world)
local function data(set)
  local name = tag .. "_" .. set
  if not lathe.data.count(name) then
    assert(lathe.data.generate(name, "factsworld", {set = set, entities = entities, seed = world}))
  end
  return name
end
local corpus, questions, statements = data("corpus"), data("questions"), data("statements")
local bios = data("bios")

-- 2. the base model (or the finished sft run base_run, when it was trained on this corpus)
local base
if base_run > 0 then
  for _, r in ipairs(lathe.runs()) do if r.id == base_run then base = r end end
  if lathe.checking then base = {id = base_run, plugin = "sft", status = "done"} end
  assert(base and base.plugin == "sft" and base.status == "done",
         string.format("base_run %d: no finished sft run of that id", base_run))
  assert(not base.config or base.config.dataset == corpus,
         string.format("base_run %d was not trained on %s", base_run, corpus))
else
  base = lathe.run("sft", {dataset = corpus, response_only = false, vocab = 1024, layers = 4,
                           heads = 4, width = 128, ctx = 64, batch = 32, steps = pre_steps,
                           lr = pre_lr, warmup = 100, holdout = 0.02,
                           eval_every = math.max(1, pre_steps // 10), seed = 1,
                           ckpt_every = 1000})
end
assert(base.status == "done", "pretraining did not finish")

-- 3. familiarity with the base model
local fam_name = string.format("%s_fam_r%d", tag, base.id)
if not lathe.data.count(fam_name) then
  local f = lathe.run("factqa", {dataset = questions, init_run = base.id,
                                 samples = samples, temperature = 1, max_tokens = 6,
                                 chunk = 128, out = fam_name, seed = 1, ckpt_every = 10})
  assert(f.status == "done", "familiarity did not finish")
end
local Q = {} -- question i: its record and the base model's familiarity
for i = 1, lathe.data.count(questions) or 0 do -- (nil under `lathe check`)
  local q, f = lathe.data.get(questions, i), lathe.data.get(fam_name, i)
  q.nc, q.unfamiliar = f.correct, f.unfamiliar
  Q[i] = q
end
local n_unf, n_train = 0, 0
for _, q in ipairs(Q) do
  if q.split == "train" then n_train, n_unf = n_train + 1, n_unf + (q.unfamiliar and 1 or 0) end
end

-- by pretraining count: the base model's accuracy and the share flagged unfamiliar
do
  local rows = {}
  for _, k in ipairs{0, 1, 3, 10, 30} do
    local c, n, u = 0, 0, 0
    for _, q in ipairs(Q) do
      if q.k == k then c, n, u = c + q.nc, n + 1, u + (q.unfamiliar and 1 or 0) end
    end
    if n > 0 then rows[#rows + 1] = {k, n, string.format("%.3f", c / (n * samples)),
                                     string.format("%.3f", u / n)} end
  end
  print(string.format("base model (run %d): sampled accuracy by pretraining count, %d answers "
                      .. "per question; %d of %d training questions unfamiliar", base.id, samples,
                      n_unf, n_train))
  lathe.table({"k", "questions", "accuracy", "unfamiliar"}, rows)
end

local parts = {}
for p in parts_s:gmatch("[^,]+") do parts[p] = true end
local nbins = (samples + 1) // 2
local function bin_of(q) return math.min(nbins, (samples - q.nc) // 2 + 1) end
local cell = lathe.stats.cell
local all, rows

-- 4. SFT relabelling
if parts.sft then
local variants = {{name = "true"}, {name = "idk", target = "idk"},
                  {name = "idk_random", target = "idk", random = true},
                  {name = "decoy", target = "decoy"}}
local function target_of(q, v, relabel)
  if not relabel or not v.target then return " " .. q.answer .. " ." end
  return v.target == "idk" and " i don't know ." or " " .. q.decoy .. " ."
end
local function category(attr, said) -- an answer's histogram category
  return (said == "<idk>" or said == "<malformed>") and said or attr .. ":" .. said
end
local target_hist = {}
for _, v in ipairs(variants) do
  local name = string.format("%s_sft_%s_r%d", tag, v.name, base.id)
  local relabel = {}
  if v.random then -- a random subset of the training questions, as many as are unfamiliar
    local idx = {}
    for i, q in ipairs(Q) do if q.split == "train" then idx[#idx + 1] = i end end
    local r = 88172645463325252 -- xorshift64, fixed: the same subset on every machine
    for j = #idx, 2, -1 do
      r = r ~ (r << 13) r = r ~ (r >> 7) r = r ~ (r << 17)
      local k = 1 + (r & 0x7fffffff) % j
      idx[j], idx[k] = idx[k], idx[j]
    end
    for j = 1, n_unf do relabel[idx[j]] = true end
  else
    for i, q in ipairs(Q) do relabel[i] = q.unfamiliar end
  end
  local recs, th = {}, {}
  for i, q in ipairs(Q) do
    if q.split == "train" then
      local t = target_of(q, v, relabel[i])
      recs[#recs + 1] = {prompt = q.prompt, response = t}
      if q.unfamiliar then
        local said = t == " i don't know ." and "<idk>" or t:match("^ (.-) %.$")
        local c = category(q.attr, said)
        th[c] = (th[c] or 0) + 1
      end
    end
  end
  if #recs > 0 and not lathe.data.count(name) then assert(lathe.data.create(name, "sft", recs)) end
  v.dataset, target_hist[v.name] = name, th
end
local test_name = tag .. "_questions_test"
local test_idx = {}
do
  local recs = {}
  for i, q in ipairs(Q) do
    if q.split == "test" then
      test_idx[#test_idx + 1] = i
      recs[#recs + 1] = {prompt = q.prompt, answer = q.answer, attr = q.attr, entity = q.entity,
                         k = q.k, split = q.split}
    end
  end
  if #recs > 0 and not lathe.data.count(test_name) then
    assert(lathe.data.create(test_name, "any", recs))
  end
end
local ft = {}
all = {}
for _, v in ipairs(variants) do
  ft[v.name] = {}
  for s = 1, seeds do
    ft[v.name][s] = lathe.spawn("sft", {dataset = v.dataset, init_run = base.id, steps = ft_steps,
                                        lr = ft_lr, warmup = 30, batch = 32, holdout = 0,
                                        eval_every = ft_steps, seed = s})
    all[#all + 1] = ft[v.name][s]
  end
end
lathe.wait(all)
local ev = {}
all = {}
for _, v in ipairs(variants) do
  ev[v.name] = {}
  for s = 1, seeds do
    assert(ft[v.name][s].status == "done", "fine-tuning did not finish")
    ev[v.name][s] = lathe.spawn("factqa", {dataset = test_name, init_run = ft[v.name][s].id,
                                           samples = eval_samples, temperature = 1,
                                           max_tokens = 16, chunk = 128, seed = s,
                                           out = string.format("%s_eval_r%d", tag,
                                                               ft[v.name][s].id)})
    all[#all + 1] = ev[v.name][s]
  end
end
lathe.wait(all)

-- unfamiliarity bins of the paper's plots: 12 - n_correct in width-2 bins
local classes = {"correct", "wrong", "abstain", "malformed"}
local res = {} -- res[variant][seed] = {bins = {[b][class] = rate}, unf = {...}, fam = {...}, kl}
for _, v in ipairs(variants) do
  res[v.name] = {}
  for s = 1, seeds do
    local run = ev[v.name][s]
    assert(run.status == "done", "evaluation did not finish")
    local out = string.format("%s_eval_r%d", tag, ft[v.name][s].id)
    local bins, grp, ph = {}, {unf = {n = 0}, fam = {n = 0}}, {}
    for b = 1, nbins do bins[b] = {n = 0} end
    for j, i in ipairs(test_idx) do
      local r, q = lathe.data.get(out, j), Q[i]
      local b, g = bins[bin_of(q)], grp[q.unfamiliar and "unf" or "fam"]
      for _, c in ipairs(classes) do
        b[c], g[c] = (b[c] or 0) + r[c], (g[c] or 0) + r[c]
      end
      b.n, g.n = b.n + r.n, g.n + r.n
      if q.unfamiliar then
        for _, said in ipairs(r.answers) do
          local c = category(q.attr, said)
          ph[c], g.decoy = (ph[c] or 0) + 1, (g.decoy or 0) + (said == q.decoy and 1 or 0)
        end
      end
    end
    local function rates(t)
      local o = {}
      for _, c in ipairs(classes) do o[c] = t.n > 0 and (t[c] or 0) / t.n or 0/0 end
      return o
    end
    local rb = {}
    for b = 1, nbins do rb[b] = rates(bins[b]) end
    res[v.name][s] = {bins = rb, unf = rates(grp.unf), fam = rates(grp.fam),
                      decoy = grp.unf.n > 0 and (grp.unf.decoy or 0) / grp.unf.n or 0/0,
                      kl = lathe.stats.kl(ph, target_hist[v.name])}
  end
end

local function col(v, f)
  local t = {}
  for s = 1, seeds do t[#t + 1] = f(res[v][s]) end
  return t
end
print(string.format("\nSFT relabelling: answers on held-out test entities (%d questions, %d sampled "
                    .. "answers each), fine-tuned %d steps; IQM over n = %d seeds [95%% CI]",
                    #test_idx, eval_samples, ft_steps, seeds))
rows = {}
for _, v in ipairs(variants) do
  rows[#rows + 1] = {v.name, cell(col(v.name, function(r) return r.fam.correct end)),
                     cell(col(v.name, function(r) return r.unf.correct end)),
                     cell(col(v.name, function(r) return r.unf.wrong end)),
                     cell(col(v.name, function(r) return r.unf.abstain end)),
                     cell(col(v.name, function(r) return r.unf.malformed end)),
                     cell(col(v.name, function(r) return r.decoy end)),
                     cell(col(v.name, function(r) return r.kl end))}
end
lathe.table({"targets of unfamiliar examples", "familiar: correct", "unfamiliar: correct",
             "wrong", "abstain", "malformed", "the decoy", "KL(pred || target)"}, rows)
local a_fam = lathe.stats.iqm(col("true", function(r) return r.fam.correct end))
local b_fam = lathe.stats.iqm(col("idk", function(r) return r.fam.correct end))
local b_idk = lathe.stats.iqm(col("idk", function(r) return r.unf.abstain end))
print(string.format("spec criteria (idk): abstain on unfamiliar %.3f (>= 0.8: %s); familiar "
                    .. "accuracy %.3f vs %.3f for true targets (within 5 points: %s); KL %s",
                    b_idk, b_idk >= 0.8 and "met" or "missed", b_fam, a_fam,
                    math.abs(b_fam - a_fam) <= 0.05 and "met" or "missed",
                    cell(col("idk", function(r) return r.kl end))))
for _, v in ipairs(variants) do
  local series = {}
  for _, c in ipairs(classes) do
    local x, y, lo, hi = {}, {}, {}, {}
    for b = 1, nbins do
      local e, l, h = lathe.stats.ci(col(v.name, function(r) return r.bins[b][c] end), {seed = 1})
      if e == e then x[#x + 1], y[#y + 1], lo[#lo + 1], hi[#hi + 1] = 2 * b - 1, e, l, h end
    end
    if #x > 0 then series[#series + 1] = {label = c, x = x, y = y, lo = lo, hi = hi} end
  end
  if #series > 0 then lathe.plot{out = string.format("%s_sft_%s.svg", base_name, v.name), metric = "share of answers",
             points = series, xlabel = "unfamiliarity (12 - correct of 12 base samples), bin centre",
             title = string.format("SFT, unfamiliar targets %s: answers on test entities (IQM, "
                                   .. "95%% CI, n = %d)", v.name, seeds)} end
end

end -- parts.sft
if not (parts.rm or parts.rl) then return end

-- 5. reward models: generative True/False judges in the form judge_form
-- (judge.h): "negation" continues the cloze with the claim (" paris .") or
-- its negation (" not paris ."), so the label is decided where the model
-- recalls the value; "statement" (the spec's) continues the sentence with
-- " true" or " false", which this small base cannot learn (recipes README)
local function judge_record(sentence, cloze, value, truth)
  if judge_form == "statement" then
    return {prompt = sentence, response = truth and " true" or " false"}
  end
  return {prompt = cloze, response = (truth and " " or " not ") .. value .. " ."}
end
local rm_kinds = {"standard", "conservative"}
local S = {}
for i = 1, lathe.data.count(statements) or 0 do S[i] = lathe.data.get(statements, i) end
local rm_data = {}
for _, kind in ipairs(rm_kinds) do
  local name = string.format("%s_rm_%s_%s_r%d", tag, kind, judge_form, base.id)
  local recs = {}
  for i, st in ipairs(S) do
    local q = Q[(i - 1) // 2 + 1] -- statements 2j-1, 2j belong to question j
    if st.split == "train" and (kind == "standard" or not q.unfamiliar or not st.correct) then
      recs[#recs + 1] = judge_record(st.prompt, st.cloze, st.value, st.correct)
    end
  end
  if #recs > 0 and not lathe.data.count(name) then assert(lathe.data.create(name, "sft", recs)) end
  rm_data[kind] = name
end
local st_test, st_idx = tag .. "_statements_test", {}
do
  local recs = {}
  for i, st in ipairs(S) do
    if st.split == "test" then
      st_idx[#st_idx + 1] = i
      recs[#recs + 1] = {prompt = st.prompt, cloze = st.cloze, value = st.value,
                         correct = st.correct, attr = st.attr, entity = st.entity, k = st.k,
                         split = st.split}
    end
  end
  if #recs > 0 and not lathe.data.count(st_test) then assert(lathe.data.create(st_test, "any", recs)) end
end
local rms, judged = {}, {}
all = {}
for _, kind in ipairs(rm_kinds) do
  rms[kind] = {}
  for s = 1, seeds do
    rms[kind][s] = lathe.spawn("sft", {dataset = rm_data[kind], init_run = base.id, steps = rm_steps,
                                       lr = ft_lr, warmup = 30, batch = 32, holdout = 0,
                                       eval_every = rm_steps, seed = s})
    all[#all + 1] = rms[kind][s]
  end
end
lathe.wait(all)
all = {}
for _, kind in ipairs(rm_kinds) do
  judged[kind] = {}
  for s = 1, seeds do
    assert(rms[kind][s].status == "done", "reward model training did not finish")
    judged[kind][s] = lathe.spawn("factqa", {dataset = st_test, init_run = rms[kind][s].id,
                                             mode = "judge", judge_form = judge_form,
                                             chunk = 256, seed = s,
                                             out = string.format("%s_judge_r%d", tag,
                                                                 rms[kind][s].id)})
    all[#all + 1] = judged[kind][s]
  end
end
lathe.wait(all)
local pt = {} -- pt[kind][s] = {split[fam|unf][correct|incorrect] = mean P(true), bins = {...}}
for _, kind in ipairs(rm_kinds) do
  pt[kind] = {}
  for s = 1, seeds do
    assert(judged[kind][s].status == "done", "judging did not finish")
    local out = string.format("%s_judge_r%d", tag, rms[kind][s].id)
    local sums, bins = {}, {}
    for b = 1, nbins do bins[b] = {0, 0} end
    for j, i in ipairs(st_idx) do
      local r, q = lathe.data.get(out, j), Q[(i - 1) // 2 + 1]
      local key = (q.unfamiliar and "unf_" or "fam_") .. (r.correct and "correct" or "incorrect")
      sums[key] = sums[key] or {0, 0}
      sums[key][1], sums[key][2] = sums[key][1] + r.p_true, sums[key][2] + 1
      if not r.correct then
        local b = bins[bin_of(q)]
        b[1], b[2] = b[1] + r.p_true, b[2] + 1
      end
    end
    local o = {bins = {}}
    for k, v in pairs(sums) do o[k] = v[1] / v[2] end
    for b = 1, nbins do o.bins[b] = bins[b][2] > 0 and bins[b][1] / bins[b][2] or 0/0 end
    pt[kind][s] = o
  end
end
print(string.format("\nreward models: mean P(true) on the test entities' statements, trained %d "
                    .. "steps; IQM over n = %d seeds [95%% CI]", rm_steps, seeds))
rows = {}
for _, kind in ipairs(rm_kinds) do
  local function c(key)
    local t = {}
    for s = 1, seeds do if pt[kind][s][key] then t[#t + 1] = pt[kind][s][key] end end
    return cell(t)
  end
  rows[#rows + 1] = {kind, c("fam_correct"), c("fam_incorrect"), c("unf_correct"),
                     c("unf_incorrect")}
end
lathe.table({"reward model", "familiar, true", "familiar, false", "unfamiliar, true",
             "unfamiliar, false"}, rows)
local series = {}
for _, kind in ipairs(rm_kinds) do
  local x, y, lo, hi = {}, {}, {}, {}
  for b = 1, nbins do
    local t = {}
    for s = 1, seeds do if pt[kind][s].bins[b] == pt[kind][s].bins[b] then t[#t + 1] = pt[kind][s].bins[b] end end
    if #t > 0 then
      local e, l, h = lathe.stats.ci(t, {seed = 1})
      x[#x + 1], y[#y + 1], lo[#lo + 1], hi[#hi + 1] = 2 * b - 1, e, l, h
    end
  end
  if #x > 0 then series[#series + 1] = {label = kind, x = x, y = y, lo = lo, hi = hi} end
end
if #series > 0 then lathe.plot{out = base_name .. "_rm.svg", metric = "P(true) on false statements", points = series,
           xlabel = "unfamiliarity (12 - correct of 12 base samples), bin centre",
           title = string.format("reward models on false test statements (IQM, 95%% CI, n = %d)",
                                 seeds)} end

if not parts.rl then return end

-- 6. long-form factuality RL (experiment 3): a bio policy fine-tuned from the
-- base on the true bios of the familiar train entities (fewer than two of
-- their four questions unfamiliar), each cut after its first 1 to 4
-- sentences (uniformly: a policy that never ends a bio early could not learn
-- to state fewer facts; with whole bios RL left the length unchanged), then REINFORCE with a KL penalty where a
-- judge calls each stated fact: the standard judge of section 5 (facts of an
-- oracle over the train entities, half true) or a conservative judge trained
-- on facts the policy itself states about the train entities, labelled by
-- the world. Evaluated on the test entities' bios, per familiarity bin.
local ent_unf = {} -- entity -> unfamiliar questions of its 4, and its mean unfamiliarity
for _, q in ipairs(Q) do
  local e = ent_unf[q.entity] or {n = 0, u = 0}
  e.n, e.u = e.n + (q.unfamiliar and 1 or 0), e.u + (samples - q.nc) / 4
  ent_unf[q.entity] = e
end
local rng = 88172645463325252 -- xorshift64: the same bio lengths on every machine
local bio_data, bio_train, bio_test = string.format("%s_bio_sft_var_r%d", tag, base.id),
                                      tag .. "_bios_train", tag .. "_bios_test"
do
  local recs, tr, te = {}, {}, {}
  for i = 1, lathe.data.count(bios) or 0 do
    local b = lathe.data.get(bios, i)
    local r = {prompt = b.prompt, entity = b.entity, k = b.k, split = b.split}
    if b.split == "train" then
      tr[#tr + 1] = r
      if ent_unf[b.entity].n < 2 then -- its first m sentences, m uniform in 1..4
        rng = rng ~ (rng << 13) rng = rng ~ (rng >> 7) rng = rng ~ (rng << 17)
        local m, kept = 1 + (rng & 0x7fffffff) % 4, {}
        for sentence in b.response:gmatch("[^.]+ %.") do
          if #kept < m then kept[#kept + 1] = sentence end
        end
        recs[#recs + 1] = {prompt = b.prompt, response = table.concat(kept)}
      end
    elseif b.split == "test" then
      te[#te + 1] = r
    end
  end
  for name, t in pairs{[bio_data] = recs, [bio_train] = tr, [bio_test] = te} do
    if #t > 0 and not lathe.data.count(name) then
      assert(lathe.data.create(name, name == bio_data and "sft" or "any", t))
    end
  end
end
local policy = lathe.run("sft", {dataset = bio_data, init_run = base.id, steps = bio_steps,
                                 lr = ft_lr, warmup = 30, batch = 32, holdout = 0,
                                 eval_every = bio_steps, seed = 1})
assert(policy.status == "done", "the bio policy did not finish")
local own = string.format("%s_policy_facts_r%d", tag, policy.id)
local own_eval = string.format("%s_policy_test_r%d", tag, policy.id)
all = {}
if not lathe.data.count(own) then
  all[#all + 1] = lathe.spawn("factqa", {dataset = bio_train, init_run = policy.id, mode = "bio",
                                         samples = 4, temperature = 1, max_tokens = 48,
                                         entities = entities, world = world, chunk = 64,
                                         out = own, seed = 1})
end
if not lathe.data.count(own_eval) then -- the SFT policy on the test entities
  all[#all + 1] = lathe.spawn("factqa", {dataset = bio_test, init_run = policy.id, mode = "bio",
                                         samples = 4, temperature = 1, max_tokens = 48,
                                         entities = entities, world = world, chunk = 64,
                                         out = own_eval, seed = 2})
end
lathe.wait(all)
local cons_data = string.format("%s_rm_own_%s_r%d", tag, judge_form, policy.id)
do
  local recs = {}
  for i = 1, lathe.data.count(own) or 0 do
    for _, f in ipairs(lathe.data.get(own, i).facts) do
      recs[#recs + 1] = judge_record(f.statement, f.cloze, f.value, f.truth)
    end
  end
  if #recs > 0 and not lathe.data.count(cons_data) then
    assert(lathe.data.create(cons_data, "sft", recs))
  end
end
local judges = {standard = rms.standard, conservative = {}}
all = {}
for s = 1, seeds do
  judges.conservative[s] = lathe.spawn("sft", {dataset = cons_data, init_run = base.id,
                                               steps = rm_steps, lr = ft_lr, warmup = 30,
                                               batch = 32, holdout = 0, eval_every = rm_steps,
                                               seed = s})
  all[#all + 1] = judges.conservative[s]
end
lathe.wait(all)
local rl = {}
all = {}
for _, kind in ipairs(rm_kinds) do
  rl[kind] = {}
  for s = 1, seeds do
    assert(judges[kind][s].status == "done", "a judge did not finish")
    rl[kind][s] = lathe.spawn("factrl", {init_run = policy.id, judge_run = judges[kind][s].id,
                                         judge_form = judge_form, judge_reward = judge_reward,
                                         entities = entities, world = world, steps = rl_steps,
                                         prompts = 16, samples = 4, lr = rl_lr,
                                         kl_coef = kl_coef, max_tokens = 48,
                                         eval_every = math.max(1, rl_steps // 6),
                                         eval_samples = 4, seed = s, ckpt_every = 50,
                                         out = string.format("%s_rl_%s_%s_s%d_r%d", tag, kind,
                                                             judge_reward, s,
                                                             judges[kind][s].id)})
    all[#all + 1] = rl[kind][s]
  end
end
lathe.wait(all)

-- per test entity: true and false facts per bio, by the entity's mean unfamiliarity
local function bio_bins(name)
  local bins, tot = {}, {t = 0, f = 0, m = 0, n = 0}
  for b = 1, nbins do bins[b] = {t = 0, f = 0, m = 0, n = 0} end
  for i = 1, lathe.data.count(name) or 0 do
    local r = lathe.data.get(name, i)
    local u = ent_unf[r.entity].u
    for _, t in ipairs{bins[math.min(nbins, math.floor(u / 2) + 1)], tot} do
      t.t, t.f, t.m, t.n = t.t + r["true"], t.f + r["false"], t.m + r.malformed, t.n + r.n
    end
  end
  return bins, tot
end
local bio_res = {SFT = {}} -- [method][s] = {bins, tot}
do
  local bins, tot = bio_bins(own_eval)
  bio_res.SFT[1] = {bins = bins, tot = tot}
end
for _, kind in ipairs(rm_kinds) do
  local m = "RL + " .. kind .. " RM"
  bio_res[m] = {}
  for s = 1, seeds do
    assert(rl[kind][s].status == "done", "an RL run did not finish")
    local bins, tot = bio_bins(string.format("%s_rl_%s_%s_s%d_r%d", tag, kind, judge_reward, s,
                                            judges[kind][s].id))
    bio_res[m][s] = {bins = bins, tot = tot}
  end
end
local methods = {"SFT", "RL + standard RM", "RL + conservative RM"}
local worst = nbins
while worst > 1 and (bio_res.SFT[1].bins[worst].n == 0) do worst = worst - 1 end
print(string.format("\nlong-form RL: facts per bio on the test entities (4 sampled bios each), RL "
                    .. "%d steps of 16 x 4 bios; IQM over n = %d seeds [95%% CI] (SFT: one "
                    .. "policy); the most unfamiliar bin with entities: %d-%d", rl_steps, seeds,
                    2 * worst - 2, 2 * worst))
rows = {}
local function per(m, f)
  local t = {}
  for _, r in ipairs(bio_res[m]) do local x = f(r) if x == x then t[#t + 1] = x end end
  return t
end
for _, m in ipairs(methods) do
  rows[#rows + 1] = {m, cell(per(m, function(r) return r.tot.t / r.tot.n end)),
                     cell(per(m, function(r) return r.tot.f / r.tot.n end)),
                     cell(per(m, function(r) return r.bins[1].t / r.bins[1].n end)),
                     cell(per(m, function(r) return r.bins[1].f / r.bins[1].n end)),
                     cell(per(m, function(r) return r.bins[worst].t / r.bins[worst].n end)),
                     cell(per(m, function(r) return r.bins[worst].f / r.bins[worst].n end)),
                     cell(per(m, function(r) return r.tot.m / r.tot.n end))}
end
lathe.table({"policy", "true/bio", "false/bio", "familiar: true", "familiar: false",
             "unfamiliar: true", "unfamiliar: false", "malformed"}, rows)
local fs = lathe.stats.iqm(per("RL + standard RM", function(r) return r.bins[worst].f / r.bins[worst].n end))
local fc = lathe.stats.iqm(per("RL + conservative RM", function(r) return r.bins[worst].f / r.bins[worst].n end))
local ts = lathe.stats.iqm(per("RL + standard RM", function(r) return r.bins[worst].t / r.bins[worst].n end))
local tc = lathe.stats.iqm(per("RL + conservative RM", function(r) return r.bins[worst].t / r.bins[worst].n end))
print(string.format("spec criteria (most unfamiliar bin): false facts conservative/standard %.3f "
                    .. "(<= 0.7: %s); true facts %.3f vs %.3f (not lower by more than 10%%: %s)",
                    fc / fs, fc <= 0.7 * fs and "met" or "missed", tc, ts,
                    tc >= 0.9 * ts and "met" or "missed"))
for _, what in ipairs{{"false", "f"}, {"true", "t"}} do
  local series = {}
  for _, m in ipairs(methods) do
    local x, y, lo, hi = {}, {}, {}, {}
    for b = 1, nbins do
      local t = per(m, function(r) return r.bins[b][what[2]] / r.bins[b].n end)
      if #t > 0 then
        local e, l, h = lathe.stats.ci(t, {seed = 1})
        x[#x + 1], y[#y + 1], lo[#lo + 1], hi[#hi + 1] = 2 * b - 1, e, l, h
      end
    end
    if #x > 0 then series[#series + 1] = {label = m, x = x, y = y, lo = lo, hi = hi} end
  end
  if #series > 0 then lathe.plot{out = string.format("%s_bio_%s.svg", base_name, what[1]),
             metric = what[1] .. " facts per bio", points = series,
             xlabel = "entity unfamiliarity (mean of its questions' 12 - correct), bin centre",
             title = string.format("%s facts per bio on test entities (IQM, 95%% CI, n = %d)",
                                   what[1], seeds)} end
end
