-- the text pipeline end to end on a small prefs dataset (--set ds=NAME):
-- SFT with a BPE tokenizer, offline DPO from it, and lathe.sample of both.
local ds = lathe.opt("ds", "tiny")
local s = lathe.run("sft", {dataset = ds, vocab = 300, steps = 40, ctx = 48, width = 32,
                            heads = 2, layers = 2, eval_every = 20, batch = 8, ckpt_every = 20})
assert(s.status == "done", "SFT failed: " .. tostring(s.error))
local d = lathe.run("pref", {dataset = ds, init_run = s.id, onpolicy = false, steps = 20,
                             prompts = 4, eval_every = 10, lr = 1e-3})
local out = lathe.sample(s, {"Q: 1", "Q: 2"}, {max_tokens = 8, seed = 3})
local again = lathe.sample(s, {"Q: 1", "Q: 2"}, {max_tokens = 8, seed = 3})
local dout = lathe.sample(d, {"Q: 1"}, {max_tokens = 8, temperature = 0})
print(s.status, d.status, string.format("%q", out[1]), d.summary["eval/rewards/accuracies"])
assert(s.status == "done" and d.status == "done")
assert(#out == 2 and type(out[1]) == "string" and out[1] == again[1] and #dout == 1)
assert(d.summary["eval/length_baseline_accuracy"] ~= nil)
-- the first evaluation is before any update: policy = reference, every pair a
-- tie, and ties count as wrong (TRL's strict >)
local _, acc = lathe.metrics(d, "eval/rewards/accuracies")
assert(acc[1] == 0, "accuracy at the start: " .. tostring(acc[1]))
