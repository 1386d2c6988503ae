-- hh_dpo.lua: DPO on Anthropic's HH-RLHF (helpful-base test split, 2,354
-- pairs), end to end and small. The transcripts are split on import: the
-- prompt is the shared conversation through its last "Assistant:" turn, chosen
-- and rejected the two final replies. A 10% split of the pairs is held out
-- (by index; SFT and DPO hold out the same pairs). Then:
--   1. SFT: a BPE tokenizer (512 ids) trained on the training split and a
--      small GPT (3 layers, width 96, 128-token context: the reply keeps at
--      most 64 tokens, the prompt its last turns) trained on the chosen replies;
--   2. DPO (beta 0.1) from the SFT model, which is also the frozen reference;
--   3. held-out preference accuracy (rewards/accuracies: the implicit reward of
--      the chosen reply strictly above the rejected one's) beside the
--      length-only baseline (the longer reply is the chosen one), and a few
--      held-out prompts answered by both models.
--
--   lathe run share/recipes/hh_dpo.lua --threads 2
--   lathe run share/recipes/hh_dpo.lua --set sft_steps=200 --set dpo_steps=50   # quick
local file = lathe.opt("file", lathe.share_dir .. "/data/preference/hh-rlhf/helpful-base/test.jsonl.gz")
local name = lathe.opt("dataset", "hh_helpful")
local sft_steps = lathe.opt("sft_steps", 1500)
local dpo_steps = lathe.opt("dpo_steps", 400)
local beta = lathe.opt("beta", 0.1)

if not lathe.data.count(name) then
  local n, err = lathe.data.import(file, name, "prefs")
  assert(n, err)
  print(string.format("imported %d pairs from %s as '%s'", n, file, name))
end

local sft = lathe.run("sft", {dataset = name, tokenizer = "bpe", vocab = 512, layers = 3,
                              heads = 4, width = 96, ctx = 128, batch = 16, steps = sft_steps,
                              lr = 1e-3, warmup = 100, eval_every = 250, ckpt_every = 500})
assert(sft.status == "done", "SFT did not finish")
local dpo = lathe.run("pref", {dataset = name, init_run = sft.id, onpolicy = false,
                               method = "dpo", beta = beta, lr = 1e-4, prompts = 16,
                               steps = dpo_steps, eval_every = 50, ckpt_every = 200})
assert(dpo.status == "done", "DPO did not finish")

local s = dpo.summary
if s["eval/rewards/accuracies"] == nil then
  error(string.format("dataset '%s' left no held-out pairs to evaluate on (10%% of %d records)",
                      name, lathe.data.count(name) or 0), 0)
end
local _, acc = lathe.metrics(dpo, "eval/rewards/accuracies")
local best = 0
for _, a in ipairs(acc) do best = math.max(best, a) end
print(string.format("HH-RLHF helpful-base: SFT %d steps (held-out perplexity %.1f), DPO %d steps, beta %g",
                    sft_steps, sft.summary["eval/perplexity"], dpo_steps, beta))
lathe.table({"held-out pairs", "value"}, {
  {"length baseline accuracy (longer reply chosen)", string.format("%.3f", s["eval/length_baseline_accuracy"])},
  {"DPO rewards/accuracies, final", string.format("%.3f", s["eval/rewards/accuracies"])},
  {"DPO rewards/accuracies, best evaluation", string.format("%.3f", best)},
  {"DPO rewards/margins, final", string.format("%.4f", s["eval/rewards/margins"])},
  {"DPO rewards/chosen, final", string.format("%.4f", s["eval/rewards/chosen"])},
  {"DPO rewards/rejected, final", string.format("%.4f", s["eval/rewards/rejected"])},
  {"training rewards/accuracies, last batch", string.format("%.3f", s["rewards/accuracies"])},
})
-- (the first evaluation is the SFT model itself: policy = reference, every
-- implicit reward 0, and a tie counts as wrong, as in TRL)
lathe.plot{out = "hh_dpo_accuracy.svg", metric = "eval/rewards/accuracies",
           series = {{label = string.format("DPO, beta %g (length baseline %.3f)", beta,
                                             s["eval/length_baseline_accuracy"]), runs = {dpo}}},
           title = "DPO on HH-RLHF helpful: held-out preference accuracy"}
print("figure: hh_dpo_accuracy.svg")

-- what the two models write for a few held-out prompts
local prompts = {}
for i = 1, lathe.data.count(name) or 0 do
  local r = lathe.data.get(name, i)
  if #prompts < 3 and #r.prompt < 200 then prompts[#prompts + 1] = r.prompt end
end
local a = lathe.sample(sft, prompts, {max_tokens = 48, temperature = 0.7, seed = 1})
local b = lathe.sample(dpo, prompts, {max_tokens = 48, temperature = 0.7, seed = 1})
for i, p in ipairs(prompts) do
  print(string.format("prompt %d: %q", i, p))
  print(string.format("  SFT: %q", a[i]))
  print(string.format("  DPO: %q", b[i]))
end
