-- unfamiliar_nq.lua: the relabelling experiment of unfamiliar_facts.lua on
-- real questions, NQ-Open's dev split (3,610 questions with their accepted
-- answers; share/data/factual_qa/nq_open, CC BY-SA 3.0).
--
-- The scale, honestly: no model in lathe knows the world these questions ask
-- about, so familiarity is made by exposure. A base GPT (4 layers, width
-- 128, BPE 2,048) is pretrained from scratch on a corpus in which each
-- question with its first accepted answer ("QUESTION ? ANSWER .") appears k
-- in {0, 1, 3, 10} times (30% never, the rest in three equal shares, by a
-- seeded shuffle), plus general lines ("i don't know ."). Not 40% as in the
-- facts world: an NQ answer cannot be guessed, so 40% of the questions at 0
-- correct would put the 40th percentile at 0 and flag nothing (strict <),
-- as a first run here did. Familiarity is then
-- measured with that base exactly as in the facts world: 12 answers sampled
-- per question, matched against every accepted answer after SQuAD's
-- normalisation, unfamiliar = correct count below the 40th percentile over
-- the training questions (strict <). Questions alternate between train (odd
-- index) and test (even). SFT from the base on the train questions with the
-- unfamiliar examples' targets true or "i don't know" (`ft_steps`), `seeds`
-- seeds; each model answers the test questions (`eval_samples` samples);
-- IQM over seeds with a 95% bootstrap interval.
--
--   lathe run share/recipes/unfamiliar_nq.lua --threads 1 --workers 2
local seeds = lathe.opt("seeds", 3)
local pre_steps = lathe.opt("pre_steps", 4000)
local ft_steps = lathe.opt("ft_steps", 600)
local ft_lr = lathe.opt("ft_lr", 3e-4)
local eval_samples = lathe.opt("eval_samples", 4)
local file = lathe.opt("file", lathe.share_dir .. "/data/factual_qa/nq_open/NQ-open.dev.jsonl.gz")
local samples = 12

local nq = "nq_open_dev"
if not lathe.data.count(nq) then
  local n, err = lathe.data.import(file, nq, "any")
  assert(n, err)
end
local rng = 88172645463325252 -- xorshift64: the same exposure on every machine
local function rand(n)
  rng = rng ~ (rng << 13) rng = rng ~ (rng >> 7) rng = rng ~ (rng << 17)
  return 1 + (rng & 0x7fffffff) % n
end
local N = lathe.data.count(nq) or 0 -- (nil under `lathe check`)
local order = {}
for i = 1, N do order[i] = i end
for i = N, 2, -1 do local j = rand(i) order[i], order[j] = order[j], order[i] end
local k_of, Q = {}, {}
for r, i in ipairs(order) do -- the first 30% of the shuffle never seen, then 1, 3, 10 in equal shares
  local z = N * 3 // 10
  k_of[i] = r <= z and 0 or ({1, 3, 10})[1 + (r - z - 1) * 3 // (N - z)]
end
local corpus, questions = "nq_corpus", "nq_questions"
local lines, qrecs = {}, {}
for i = 1, N do
  local r = lathe.data.get(nq, i)
  Q[i] = {prompt = r.question .. " ?", answer = r.answer, k = k_of[i],
          split = i % 2 == 1 and "train" or "test"}
  for _ = 1, k_of[i] do lines[#lines + 1] = {text = Q[i].prompt .. " " .. r.answer[1] .. " ."} end
  qrecs[i] = Q[i]
end
local general = {"i don't know .", "that is true .", "i know that ."}
for j = 1, #lines // 25 do lines[#lines + 1] = {text = general[1 + j % #general]} end
for i = #lines, 2, -1 do local j = rand(i) lines[i], lines[j] = lines[j], lines[i] end
if N > 0 and not lathe.data.count(corpus) then
  assert(lathe.data.create(corpus, "text", lines))
  assert(lathe.data.create(questions, "any", qrecs))
end

local base = lathe.run("sft", {dataset = corpus, response_only = false, vocab = 2048, layers = 4,
                               heads = 4, width = 128, ctx = 64, batch = 32, steps = pre_steps,
                               lr = 3e-3, warmup = 100, holdout = 0,
                               eval_every = pre_steps, seed = 1, ckpt_every = 1000})
assert(base.status == "done", "pretraining did not finish")
local fam_name = string.format("nq_fam_r%d", base.id)
if not lathe.data.count(fam_name) then
  local f = lathe.run("factqa", {dataset = questions, init_run = base.id, samples = samples,
                                 temperature = 1, max_tokens = 16, chunk = 128, out = fam_name,
                                 seed = 1})
  assert(f.status == "done", "familiarity did not finish")
end
local n_unf, n_train = 0, 0
for i = 1, N do
  local f = lathe.data.get(fam_name, i)
  Q[i].nc, Q[i].unfamiliar = f.correct, f.unfamiliar
  if Q[i].split == "train" then
    n_train, n_unf = n_train + 1, n_unf + (f.unfamiliar and 1 or 0)
  end
end
do
  local rows = {}
  for _, k in ipairs{0, 1, 3, 10} do
    local c, n, u = 0, 0, 0
    for i = 1, N do
      if Q[i].k == k then c, n, u = c + Q[i].nc, n + 1, u + (Q[i].unfamiliar and 1 or 0) end
    end
    if n > 0 then rows[#rows + 1] = {k, n, string.format("%.3f", c / (n * samples)),
                                     string.format("%.3f", u / n)} end
  end
  print(string.format("base model (run %d) on NQ-Open dev: sampled accuracy by exposure, %d answers "
                      .. "per question; %d of %d training questions unfamiliar", base.id, samples,
                      n_unf, n_train))
  lathe.table({"k", "questions", "accuracy", "unfamiliar"}, rows)
end

local variants = {{name = "true"}, {name = "idk", idk = true}}
local test_name, test_idx = "nq_questions_test", {}
do
  local recs = {}
  for i = 1, N do
    if Q[i].split == "test" then
      test_idx[#test_idx + 1] = i
      recs[#recs + 1] = {prompt = Q[i].prompt, answer = Q[i].answer, k = Q[i].k, split = "test"}
    end
  end
  if #recs > 0 and not lathe.data.count(test_name) then assert(lathe.data.create(test_name, "any", recs)) end
end
local ft, all = {}, {}
for _, v in ipairs(variants) do
  local name = string.format("nq_sft_%s_r%d", v.name, base.id)
  local recs = {}
  for i = 1, N do
    if Q[i].split == "train" then
      recs[#recs + 1] = {prompt = Q[i].prompt,
                         response = (v.idk and Q[i].unfamiliar) and " i don't know ."
                                    or " " .. Q[i].answer[1] .. " ."}
    end
  end
  if #recs > 0 and not lathe.data.count(name) then assert(lathe.data.create(name, "sft", recs)) end
  ft[v.name] = {}
  for s = 1, seeds do
    ft[v.name][s] = lathe.spawn("sft", {dataset = name, init_run = base.id, steps = ft_steps,
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
                                           max_tokens = 24, chunk = 128, seed = s,
                                           out = string.format("nq_eval_r%d", ft[v.name][s].id)})
    all[#all + 1] = ev[v.name][s]
  end
end
lathe.wait(all)
local classes = {"correct", "wrong", "abstain", "malformed"}
local res = {}
for _, v in ipairs(variants) do
  res[v.name] = {}
  for s = 1, seeds do
    assert(ev[v.name][s].status == "done", "evaluation did not finish")
    local g = {unf = {n = 0}, fam = {n = 0}}
    for j, i in ipairs(test_idx) do
      local r, t = lathe.data.get(string.format("nq_eval_r%d", ft[v.name][s].id), j),
                   g[Q[i].unfamiliar and "unf" or "fam"]
      for _, c in ipairs(classes) do t[c] = (t[c] or 0) + r[c] end
      t.n = t.n + r.n
    end
    local o = {}
    for key, t in pairs(g) do
      o[key] = {}
      for _, c in ipairs(classes) do o[key][c] = t.n > 0 and (t[c] or 0) / t.n or 0/0 end
    end
    res[v.name][s] = o
  end
end
local cell = lathe.stats.cell
local function col(v, grp, c)
  local t = {}
  for s = 1, seeds do t[#t + 1] = res[v][s][grp][c] end
  return cell(t)
end
print(string.format("\nNQ-Open: answers on the %d test questions (%d sampled each), fine-tuned %d "
                    .. "steps; IQM over n = %d seeds [95%% CI]", #test_idx, eval_samples, ft_steps,
                    seeds))
local rows = {}
for _, v in ipairs(variants) do
  rows[#rows + 1] = {v.name, col(v.name, "fam", "correct"), col(v.name, "fam", "abstain"),
                     col(v.name, "unf", "correct"), col(v.name, "unf", "wrong"),
                     col(v.name, "unf", "abstain"), col(v.name, "unf", "malformed")}
end
lathe.table({"unfamiliar targets", "familiar: correct", "familiar: abstain", "unfamiliar: correct",
             "unfamiliar: wrong", "unfamiliar: abstain", "unfamiliar: malformed"}, rows)
