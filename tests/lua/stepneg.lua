-- per-step negatives end to end, small: arith problems (made when the store
-- lacks them), an SFT policy (run 1), stepvalue (run 2), then stepneg (run 3)
-- with `method`. mode "value" stops after stepvalue. Bad input: mode
-- "nomath" (stepvalue on a dataset without answers), "notlm" (init_run is
-- not a language model), "zero" (rollouts = 0), "badsteps" (a stepvalue
-- record whose step count disagrees with its text).
local mode = lathe.opt("mode", "train")
local every = lathe.opt("every", 1000)
local sft_steps, problems = lathe.opt("sft_steps", 120), lathe.opt("problems", 12)
local rollouts = mode == "zero" and 0 or lathe.opt("rollouts", 4)
local method, steps = lathe.opt("method", "dpo_step"), lathe.opt("steps", 20)
if not lathe.data.count("ar") then
  assert(lathe.data.generate("ar", "arith", {n = 48, mod = 7, min_ops = 2, max_ops = 3}))
  assert(lathe.data.generate("ar_valid", "arith", {n = 16, mod = 7, split = "valid", min_ops = 2, max_ops = 3}))
end
local sft = lathe.run("sft", {dataset = "ar", tokenizer = "bytes", layers = 1, heads = 2, width = 32,
                              ctx = 48, batch = 16, steps = sft_steps, lr = 3e-3,
                              warmup = 5, holdout = 0, eval_every = 1000, ckpt_every = every})
assert(sft.status == "done", sft.error)
local sv_args = {dataset = "ar", init_run = sft.id, problems = problems, chunk = 2,
                 samples = 3, rollouts = rollouts, bok = 2, positives = true,
                 mod = 7, batch = 64, out = "sv", ckpt_every = every}
if mode == "nomath" then
  assert(lathe.data.create("plain", "text", {{text = "no answer here"}}))
  sv_args.dataset = "plain"
elseif mode == "notlm" then
  local r = lathe.run("regress", {steps = 2})
  sv_args.init_run = r.id
end
if mode == "badsteps" then -- a stepvalue record whose step count disagrees with its text
  assert(lathe.data.create("sv", "any", {{question = "1+1", solution = "1+1=2\nans=2",
    samples = {{text = "1+1=2\nans=2", correct = false, steps = 5, critical = 1,
                advantages = {0, 0, 0, 0, 0}}}}}))
  local r = lathe.run("stepneg", {dataset = "sv", init_run = sft.id, method = "awr", steps = 2})
  error(r.error, 0)
end
local sv = lathe.run("stepvalue", sv_args)
assert(sv.status == "done", sv.error)
print(string.format("stepvalue: %d records, agreement %s", lathe.data.count("sv"),
                    tostring(sv.summary.critical_agreement)))
if mode == "value" then return end
local r = lathe.run("stepneg", {dataset = "sv", init_run = sft.id, method = method,
                                steps = steps, batch = 8, lr = 1e-3, warmup = 2,
                                eval_dataset = "ar_valid", eval_problems = 16, eval_every = 10,
                                mod = 7, ckpt_every = every})
assert(r.status == "done", r.error)
print(string.format("stepneg %s: loss %.4f pass1 %.3f", r.plugin or "", r.summary.loss,
                    r.summary["eval/pass1"]))
