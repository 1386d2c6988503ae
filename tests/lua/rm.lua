-- reward models on a small synthetic preference world (prefworld) that the
-- recipe generates when the store lacks it (a fresh store works: the
-- kill-and-resume tests start from nothing). mode "rm": one model; "rrm":
-- the baseline, then RRM filtered by it, then lathe.score with both;
-- "dpo": the model as the reward of on-policy DPO from a small SFT policy;
-- "badlabel": a dataset whose label is out of range; "proxy": a model trained
-- on Min Length's taskprefs pairs as the proxy reward of on-policy DPO on
-- Mode Length (it must pull the responses below the mode the gold reward
-- keeps them at).
local mode = lathe.opt("mode", "rm")
local baseline = lathe.opt("baseline", 0) -- rrm: 0 is the rm run made here
local reward = lathe.opt("reward", 0) -- dpo: the reward_run, 0 for the rm run made here
local dpo_steps = lathe.opt("dpo_steps", 12)
if mode == "proxy" then
  if not lathe.data.count("lp") then
    assert(lathe.data.generate("lp", "taskprefs", {task = "length", task_args = "variant=min",
                                                   pairs = lathe.opt("pairs", 1000)}))
  end
  local ties = 0
  for i = 1, lathe.data.count("lp") do -- the gold reward's choice: the shorter reply
    local r, n = lathe.data.get("lp", i), {}
    for k, f in ipairs({"chosen", "rejected"}) do n[k] = select(2, string.gsub(r[f], "%S+", "")) end
    assert(r.label == 1 and n[1] < n[2] or r.label == 0.5 and n[1] == n[2],
           string.format("record %d: %d words chosen over %d (label %g)", i, n[1], n[2], r.label))
    assert(r.r_chosen == -n[1], "record " .. i .. ": r_chosen is not minus the words")
    if r.label == 0.5 then ties = ties + 1 end
  end
  local rm = lathe.run("rm", {dataset = "lp", epochs = 2, batch = 32, lr = 1e-3, warmup = 10,
                              vocab = 320, ctx = 160, layers = 1, heads = 2, width = 32, seed = 1,
                              ckpt_every = lathe.opt("every", 1000)})
  assert(rm.status == "done", rm.error)
  local cfg = {task = "length", task_args = "variant=mode", queries = lathe.opt("queries", 1280),
               samples = 4, prompts = 8, inner_steps = 2, lr = 1e-3, layers = 1, heads = 2,
               width = 32, ref_steps = 100, ref_lr = 3e-3, ref_batch = 32, eval_every = 20,
               eval_prompts = 32, seed = 1, reward_run = reward > 0 and reward or rm.id, ckpt_every = lathe.opt("every", 1000)}
  local proxy = lathe.run("pref", cfg)
  assert(proxy.status == "done", proxy.error)
  cfg.reward_run = nil
  local gold = lathe.run("pref", cfg)
  assert(gold.status == "done", gold.error)
  local _, len = lathe.metrics(proxy, "eval/length")
  local _, tg = lathe.metrics(proxy, "train/gold_reward")
  assert(#tg > 0 and proxy.summary["eval/proxy_reward"], "the proxy run lacks its metrics")
  assert(gold.summary["eval/proxy_reward"] == nil, "a gold-reward run reports a proxy reward")
  print(string.format("proxy: rm accuracy %.3f (%d ties), length %.1f -> %.1f with the proxy, "
                      .. "%.1f with the gold reward", rm.summary["eval/accuracy"], ties, len[1],
                      len[#len], gold.summary["eval/length"]))
  assert(len[#len] < len[1] - 5 and len[#len] < gold.summary["eval/length"] - 5,
         "the proxy reward model did not drive the policy")
  return
end
if not lathe.data.count("w") then
  local rho = lathe.opt("rho", 0.9)
  lathe.data.generate("w", "prefworld", {pairs = lathe.opt("pairs", 600), rho = rho})
  lathe.data.generate("w_iid", "prefworld", {set = "iid", pairs = 200, rho = rho, seed = 1})
  lathe.data.generate("w_art", "prefworld", {set = "art", pairs = 200, seed = 1})
end
local common = {dataset = "w", tests = "w_iid,w_art", type = lathe.opt("type", "bt"),
                epochs = lathe.opt("epochs", 2), steps = lathe.opt("steps", 1000), batch = 32, lr = 1e-3, warmup = 10, vocab = 600,
                ctx = 64, layers = 2, heads = 4, width = 32, eval_every = lathe.opt("eval_every", 1000),
                log_every = 5, ckpt_every = lathe.opt("every", 1000), seed = lathe.opt("seed", 1)}
if mode == "badlabel" then
  assert(lathe.data.create("bad", "prefs", {{prompt = "a", chosen = "b", rejected = "c"},
                                            {prompt = "a", chosen = "b", rejected = "c", label = 1.5}}))
  common.dataset, common.tests = "bad", ""
end
local rm = lathe.run("rm", common)
assert(rm.status == "done", rm.error)
local function ar(h) return 2 * h.summary["test/w_art/tie_dev"] end
print(string.format("rm accuracy %.3f iid %.3f AR %.3f", rm.summary["eval/accuracy"],
                    rm.summary["test/w_iid/accuracy"], ar(rm)))
if mode == "dpo" then
  local sft = lathe.run("sft", {dataset = "w", vocab = 300, ctx = 48, width = 32, heads = 2,
                                layers = 1, batch = 16, steps = 30, eval_every = 30})
  assert(sft.status == "done", sft.error)
  local dpo = lathe.run("pref", {dataset = "w", init_run = sft.id, reward_run = reward > 0 and reward or rm.id, onpolicy = true,
                                 prompts = 4, samples = 4, steps = dpo_steps,
                                 eval_every = 6, ckpt_every = lathe.opt("every", 1000)})
  assert(dpo.status == "done", dpo.error)
  -- the pairs are ranked by the reward model: at every step the chosen (best)
  -- sample of each group scores at least the mean of all samples, and above it somewhere
  local _, means = lathe.metrics(dpo, "rm/reward_mean")
  local _, bests = lathe.metrics(dpo, "rm/reward_best")
  local above = false
  for i = 1, #means do
    assert(bests[i] >= means[i] - 1e-9, "step " .. i .. ": the chosen samples score below the mean")
    above = above or bests[i] > means[i] + 1e-9
  end
  assert(#means > 0 and above, "the reward model's ranking never separated the samples")
  print(string.format("dpo with reward_run: reward %.3f best %.3f length %.1f", dpo.summary["rm/reward_mean"],
                      dpo.summary["rm/reward_best"], dpo.summary["samples/length_bytes"]))
  return
end
if mode ~= "rrm" then return end
common.baseline_run = baseline > 0 and baseline or rm.id
local rrm = lathe.run("rrm", common)
assert(rrm.status == "done", rrm.error)
print(string.format("rrm accuracy %.3f iid %.3f AR %.3f kept %d+%d of %d", rrm.summary["eval/accuracy"],
                    rrm.summary["test/w_iid/accuracy"], ar(rrm), rrm.summary["rrm/kept_wins"],
                    rrm.summary["rrm/kept_ties"], rrm.summary["rrm/subsampled"]))
print("rrm relies on the artifact less: " .. tostring(ar(rrm) < ar(rm)))
local items = {{prompt = "t3 k3", responses = {"t3w1 t3w2 t3w3 t3w4", "fmt f1 f2 f3 f4 f5 f6 f7 f8"}},
               {prompt = "t4 k4", responses = {"t4w1", "f2", "t4w2 f3"}}}
for _, h in ipairs({rm, rrm}) do
  local s = lathe.score(h, items)
  assert(#s == 2 and #s[1] == 2 and #s[2] == 3, "lathe.score: one list per item")
  print(string.format("score %d %.4f %.4f", h.id, s[1][1], s[1][2]))
end
