-- stepneg_gsm8k.lua: the per-step negatives pipeline on real data, GSM8K, at
-- a scale two cores afford. It shows the pipeline end to end, not the
-- paper's numbers: a small GPT learns GSM8K's format long before its
-- arithmetic, so expect a pass@1 near zero.
--   1. import GSM8K's train and test splits (share/data, MIT) as math records;
--   2. SFT: BPE (`vocab` ids, trained on the training solutions) and a small
--      GPT (`ctx` tokens: a longer question is skipped, a longer solution cut);
--   3. stepvalue on the first `value_problems` training problems;
--   4. from the SFT model, `extra_steps` of each method;
--   5. test pass@1 (greedy and sampled) on the first `test_problems` of the
--      test split; validation on the last `eval_problems` training problems
--      (never used for training: SFT sees the first `train_problems`).
--
--   lathe run share/recipes/stepneg_gsm8k.lua --threads 1 --workers 2
local dir = lathe.share_dir .. "/data/math/gsm8k/"
local train_n = lathe.opt("train_problems", 7000)
local eval_n = lathe.opt("eval_problems", 200)
local test_n = lathe.opt("test_problems", 300)
local sft_steps = lathe.opt("sft_steps", 3000)
local extra = lathe.opt("extra_steps", 200)
local value_problems = lathe.opt("value_problems", 60)
local ctx = lathe.opt("ctx", 256)
local vocab = lathe.opt("vocab", 1024)
local methods_s = lathe.opt("methods", "sft,rft,dpo_outcome,dpo_step,dpo_prefix,awr")

for _, split in ipairs{"train", "test"} do
  if not lathe.data.count("gsm8k_" .. split) then
    assert(lathe.data.import(dir .. split .. ".jsonl.gz", "gsm8k_" .. split, "math"))
  end
end
local total = lathe.data.count("gsm8k_train") or 7473 -- (nil under `lathe check`)
assert(train_n + eval_n <= total, string.format("train_problems + eval_problems > %d", total))
if not lathe.data.count("gsm8k_valid") then -- the last eval_n training problems
  local recs = {}
  for i = total - eval_n + 1, total do recs[#recs + 1] = lathe.data.get("gsm8k_train", i) end
  assert(lathe.data.create("gsm8k_valid", "math", recs))
end

local sft = lathe.run("sft", {dataset = "gsm8k_train", records = train_n, tokenizer = "bpe",
                              vocab = vocab, layers = 4, heads = 4, width = 128, ctx = ctx,
                              batch = 16, steps = sft_steps, lr = 1e-3, warmup = 100, holdout = 0,
                              eval_every = sft_steps, ckpt_every = 500})
assert(sft.status == "done", "SFT did not finish")
local sv = lathe.run("stepvalue", {dataset = "gsm8k_train", init_run = sft.id,
                                   problems = value_problems, samples = 4, rollouts = 4, bok = 4,
                                   positives = true, chunk = 4, batch = 128,
                                   out = "gsm8k_sv_r" .. sft.id, ckpt_every = 5})
assert(sv.status == "done", "stepvalue did not finish")
local rows = {}
for m in methods_s:gmatch("[^,]+") do
  local r = lathe.run("stepneg", {dataset = "gsm8k_sv_r" .. sft.id, init_run = sft.id, method = m,
                                  steps = extra, batch = 8,
                                  lr = (m == "sft" or m == "rft") and 3e-4 or 1e-4,
                                  eval_dataset = "gsm8k_valid", eval_problems = eval_n,
                                  eval_every = extra, test_dataset = "gsm8k_test",
                                  test_problems = test_n, ckpt_every = 100})
  if r.status == "done" then
    rows[#rows + 1] = {m, string.format("%.3f", r.summary["test/pass1"]),
                       string.format("%.3f", r.summary["test/pass1_sampled"]),
                       string.format("%.3f", r.summary["eval/pass1"])}
  else -- no example for this method (say, no successful rollout for dpo_prefix)
    rows[#rows + 1] = {m, "-", "-", r.error or r.status}
  end
end
print(string.format("GSM8K: SFT %d steps on %d problems (BPE %d, ctx %d); stepvalue on %d problems: "
                    .. "sampled pass@1 %.3f, mean V(s_0) %.3f, %d rollouts", sft_steps, train_n,
                    vocab, ctx, value_problems, sv.summary.pass1_sampled, sv.summary.v0 or 0/0,
                    math.floor(sv.summary.rollouts)))
lathe.table({"method (+" .. extra .. " steps)", "test pass@1 greedy", "test pass@1 sampled",
             "valid pass@1"}, rows)
