-- PR2L end to end, small: scenes records (made when the store lacks them), a
-- byte-level world model (run 1), then pr2l (run 2) with `repr`, or the
-- prompt probe (mode "probe"). Bad input: mode "notlm" (model_run is not a
-- language model), "empty" (an empty prompt), "layer" (a layer the model
-- does not have).
local mode, repr = lathe.opt("mode", "train"), lathe.opt("repr", "prompt")
local every, iters = lathe.opt("every", 1000), lathe.opt("iters", 12)
if not lathe.data.count("sc") then assert(lathe.data.generate("sc", "scenes", {n = 400})) end
local wm = lathe.run("sft", {dataset = "sc", tokenizer = "bytes", layers = 1, heads = 2, width = 32,
                             ctx = 96, batch = 16, steps = 40, lr = 3e-3, warmup = 5, holdout = 0,
                             eval_every = 1000})
assert(wm.status == "done", wm.error)
local args = {repr = repr, model_run = wm.id, max_gen = 8, num_envs = 4, num_steps = 16,
              num_minibatches = 2, update_epochs = 2, total_timesteps = 64 * iters,
              layouts = 6, heldout_layouts = 6, eval_every = 4, eval_episodes = 12,
              ckpt_every = every}
if mode == "notlm" then args.model_run = lathe.run("regress", {steps = 2}).id end
if mode == "empty" then args.prompt = "" end
if mode == "layer" then args.layer = 5 end
if mode == "probe" then
  local p = lathe.run("pr2lprobe", {repr = repr, model_run = wm.id, max_gen = 8, layouts = 6,
                                    examples = 60, steps = 50})
  assert(p.status == "done", p.error)
  print(string.format("pr2lprobe %s: accuracy %.3f answer %s", repr, p.summary["probe/accuracy"],
                      tostring(p.summary["probe/answer_accuracy"])))
  return
end
local r = lathe.run("pr2l", args)
assert(r.status == "done", r.error)
print(string.format("pr2l %s: success %.3f held-out %.3f hit rate %s", repr,
                    r.summary["eval/train_success"], r.summary["eval/heldout_success"],
                    tostring(r.summary["perf/cache_hit_rate"])))
