-- SFT then offline DPO from it on a model large enough that every parallel
-- loop of the nn core splits (width 64, 4 heads, 16 x 64 tokens): the
-- e2e test runs this at --threads 1, 2 and 3 and compares the checkpoints.
-- (answers of about 60 tokens, so batches are 16 x 64 after truncation)
local words = {"red", "green", "blue", "stone", "river", "cloud", "seven", "lamp", "tree", "salt"}
local function text(i, n)
  local t = {}
  for k = 1, n do t[k] = words[(i * 7 + k * k) % #words + 1] end
  return table.concat(t, " ")
end
if not lathe.data.count("long") then
  local recs = {}
  for i = 1, 64 do
    recs[i] = {prompt = "Q: " .. i, chosen = " A: " .. text(i, 40), rejected = " A: " .. text(i + 1, 40)}
  end
  lathe.data.create("long", "prefs", recs)
end
local s = lathe.run("sft", {dataset = "long", vocab = 300, steps = 20, ctx = 64, width = 64,
                            heads = 4, layers = 2, eval_every = 10, batch = 16})
assert(s.status == "done", "SFT failed: " .. tostring(s.error))
local d = lathe.run("pref", {dataset = "long", init_run = s.id, onpolicy = false, steps = 10,
                             prompts = 16, eval_every = 5, lr = 1e-3})
assert(d.status == "done", "DPO failed: " .. tostring(d.error))
print("threads done", s.summary["eval/loss"], d.summary["eval/rewards/accuracies"])
