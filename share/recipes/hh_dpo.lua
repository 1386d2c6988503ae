-- hh_dpo.lua: DPO on Anthropic's HH-RLHF (helpful-base test split, 2,354
-- pairs), end to end and small, with a checkpoint chosen on validation pairs
-- and judged on test pairs. The transcripts are split on import: the prompt
-- is the shared conversation through its last "Assistant:" turn, chosen and
-- rejected the two final replies. 20% of the pairs are held out (by index;
-- SFT and DPO hold out the same pairs), and half of those (by another hash of
-- the index) are the test split: DPO's eval/ metrics are the validation
-- pairs', its test/ metrics the test pairs'. For each of `seeds` seeds:
--   1. SFT: a BPE tokenizer (512 ids) trained on the training split and a
--      small GPT (3 layers, width 96, 128-token context: the reply keeps at
--      most 64 tokens, the prompt its last turns) trained on the chosen replies;
--   2. DPO (beta 0.1) from that SFT model, which is also the frozen reference,
--      evaluated every 50 steps;
--   3. the checkpoint selected: the evaluation with the best validation
--      preference accuracy (rewards/accuracies: the implicit reward of the
--      chosen reply strictly above the rejected one's); its test accuracy is
--      the result, set beside the length-only rule on the same test pairs (the
--      longer reply is the chosen one), with the IQM over seeds and a 95%
--      stratified-bootstrap interval.
--
--   lathe run share/recipes/hh_dpo.lua --threads 1 --workers 2
--   lathe run share/recipes/hh_dpo.lua --set seeds=1 --set sft_steps=200 --set dpo_steps=50   # quick
local file = lathe.opt("file", lathe.share_dir .. "/data/preference/hh-rlhf/helpful-base/test.jsonl.gz")
local name = lathe.opt("dataset", "hh_helpful")
local sft_steps = lathe.opt("sft_steps", 1500)
local dpo_steps = lathe.opt("dpo_steps", 400)
local beta = lathe.opt("beta", 0.1)
local seeds = lathe.opt("seeds", 5)
local holdout, test_split = 0.2, 0.5

if not lathe.data.count(name) then
  local n, err = lathe.data.import(file, name, "prefs")
  assert(n, err)
  print(string.format("imported %d pairs from %s as '%s'", n, file, name))
end

local sfts, dpos = {}, {}
for s = 1, seeds do
  sfts[s] = lathe.spawn("sft", {dataset = name, tokenizer = "bpe", vocab = 512, layers = 3,
                                heads = 4, width = 96, ctx = 128, batch = 16, steps = sft_steps,
                                lr = 1e-3, warmup = 100, eval_every = 250, ckpt_every = 500,
                                holdout = holdout, seed = s})
end
lathe.wait(sfts)
for s = 1, seeds do
  assert(sfts[s].status == "done", "SFT did not finish: " .. tostring(sfts[s].error))
  dpos[s] = lathe.spawn("pref", {dataset = name, init_run = sfts[s].id, onpolicy = false,
                                 method = "dpo", beta = beta, lr = 1e-4, prompts = 16,
                                 steps = dpo_steps, eval_every = 50, ckpt_every = 200,
                                 holdout = holdout, test_split = test_split, seed = s})
end
lathe.wait(dpos)
for s = 1, seeds do assert(dpos[s].status == "done", "DPO did not finish: " .. tostring(dpos[s].error)) end
if lathe.checking then return end -- `lathe check`: no metrics to select on

local first = dpos[1].summary
if first["eval/rewards/accuracies"] == nil or first["test/rewards/accuracies"] == nil then
  error(string.format("dataset '%s' left no held-out pairs to evaluate on (%d%% of %d records, half of them the test split)",
                      name, math.floor(holdout * 100), lathe.data.count(name) or 0), 0)
end

-- each seed's selection: the best validation accuracy (the earliest on a tie)
local rows, sel_test, final_test, sel_val = {}, {}, {}, {}
for s = 1, seeds do
  local steps, val = lathe.metrics(dpos[s], "eval/rewards/accuracies")
  local tsteps, test = lathe.metrics(dpos[s], "test/rewards/accuracies")
  local at = 1
  for i = 2, #val do if val[i] > val[at] then at = i end end
  assert(tsteps[at] == steps[at], "validation and test evaluations at different steps")
  sel_val[s], sel_test[s], final_test[s] = val[at], test[at], test[#test]
  rows[s] = {tostring(s), string.format("%.1f", sfts[s].summary["eval/perplexity"]),
             tostring(steps[at]), string.format("%.3f", val[at]), string.format("%.3f", test[at]),
             string.format("%.3f", test[#test])}
end
local base = first["test/length_baseline_accuracy"]
print(string.format("HH-RLHF helpful-base: %d seeds, SFT %d steps, DPO %d steps, beta %g; "
                    .. "validation pairs select, test pairs judge", seeds, sft_steps, dpo_steps, beta))
lathe.table({"seed", "SFT perplexity", "selected at step", "validation acc", "test acc (selected)", "test acc (final)"}, rows)
local iqm, lo, hi = lathe.stats.ci(sel_test, {seed = 1})
lathe.table({"test pairs", "value"}, {
  {"length-only rule (the longer reply is the chosen one)", string.format("%.3f", base)},
  {string.format("DPO, selected checkpoint: IQM [95%% CI], n = %d", seeds), lathe.stats.cell(sel_test)},
  {string.format("DPO, final checkpoint: IQM [95%% CI], n = %d", seeds), lathe.stats.cell(final_test)},
  {"validation accuracy of the selected checkpoints (IQM)", string.format("%.3f", lathe.stats.iqm(sel_val))},
})
local verdict = seeds < 2 and "one seed: no interval to judge by"
                or lo > base and "DPO beats the length-only rule on the test pairs"
                or hi < base and "DPO is below the length-only rule on the test pairs"
                or "DPO does not beat the length-only rule on the test pairs (the interval holds it)"
print(string.format("verdict: %s (selected-checkpoint IQM %.3f [%.3f, %.3f] against %.3f)",
                    verdict, iqm, lo, hi, base))
-- (the first evaluation is the SFT model itself: policy = reference, every
-- implicit reward 0, and a tie counts as wrong, as in TRL)
lathe.plot{out = "hh_dpo_accuracy.svg", metric = "test/rewards/accuracies",
           series = {{label = string.format("DPO, beta %g, test pairs", beta), runs = dpos}},
           hlines = {{y = base, label = "length-only rule"}},
           title = "DPO on HH-RLHF helpful: test preference accuracy"}
print("figure: hh_dpo_accuracy.svg")

-- what the two models of seed 1 write for a few held-out prompts
local prompts = {}
for i = 1, lathe.data.count(name) or 0 do
  local r = lathe.data.get(name, i)
  if #prompts < 3 and #r.prompt < 200 then prompts[#prompts + 1] = r.prompt end
end
local a = lathe.sample(sfts[1], prompts, {max_tokens = 48, temperature = 0.7, seed = 1})
local b = lathe.sample(dpos[1], prompts, {max_tokens = 48, temperature = 0.7, seed = 1})
for i, p in ipairs(prompts) do
  print(string.format("prompt %d: %q", i, p))
  print(string.format("  SFT: %q", a[i]))
  print(string.format("  DPO: %q", b[i]))
end
