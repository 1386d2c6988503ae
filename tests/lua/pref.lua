-- one pref run on a task; options from --set. need: the final evaluation
-- reward must reach need times the reference's (the first evaluation).
local need = lathe.opt("need", 0) -- read before any run starts
local sample = lathe.opt("sample", false)
local h = lathe.run("pref", {method = lathe.opt("method", "dpo"),
                             task = lathe.opt("task", "bandit"),
                             task_args = lathe.opt("targs", "reward=r2"),
                             onpolicy = lathe.opt("on", true), queries = lathe.opt("q", 1000),
                             seed = lathe.opt("s", 1), eval_every = 20, eval_prompts = 50,
                             ref_batch = 32, ckpt_every = lathe.opt("every", 1000)})
local _, v = lathe.metrics(h, "eval/reward")
print(string.format("%s reward %.3f -> %.3f", h.status, v[1], v[#v]))
assert(h.status == "done")
assert(v[#v] >= need * v[1], "the policy did not reach " .. need .. "x the reference's reward")
if sample then -- a task policy speaks token ids
  local out = lathe.sample(h, {{20}, {7}}, {max_tokens = 100, temperature = 0})
  print("sampled", table.concat(out[1], " "))
  assert(#out == 2 and #out[1] == 9 and math.type(out[1][1]) == "integer")
end
