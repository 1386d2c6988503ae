-- DPO from an SFT run (run 1 of the store: tests/lua/sft.lua) on the "tiny"
-- dataset with a test split (--set ts=FRACTION): eval/ is then the validation
-- pairs' and test/ the test pairs', each with its length-only baseline.
local ts = lathe.opt("ts", 0.5)
local d = lathe.run("pref", {dataset = "tiny", init_run = 1, onpolicy = false, steps = 20,
                             prompts = 4, eval_every = 10, holdout = 0.3, test_split = ts})
assert(d.status == "done", d.error)
local s = d.summary
assert(s["eval/rewards/accuracies"] and s["eval/length_baseline_accuracy"], "no validation metrics")
if ts > 0 then
  assert(s["test/rewards/accuracies"] and s["test/length_baseline_accuracy"] and s["test/loss"],
         "no test metrics")
  local vs = lathe.metrics(d, "eval/rewards/accuracies")
  local tsteps = lathe.metrics(d, "test/rewards/accuracies")
  assert(#vs == #tsteps and vs[#vs] == tsteps[#tsteps], "validation and test evaluated apart")
else
  assert(s["test/rewards/accuracies"] == nil, "test metrics without a test split")
end
print("split ok")
