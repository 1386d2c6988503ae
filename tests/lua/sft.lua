-- one sft run on a small prefs dataset the recipe creates when the store lacks it
-- (so a fresh store works: the kill-and-resume test starts from nothing)
if not lathe.data.count("tiny") then
  local recs = {}
  for i = 1, 60 do
    recs[i] = {prompt = "Q: " .. i, chosen = " A: yes " .. i, rejected = " A: no"}
  end
  lathe.data.create("tiny", "prefs", recs)
end
local h = lathe.run("sft", {dataset = "tiny", vocab = 300, steps = lathe.opt("steps", 200),
                            ctx = 48, width = 32, heads = 2, layers = 2, eval_every = 50,
                            batch = 8, ckpt_every = lathe.opt("every", 1000)})
print(h.status, h.summary["eval/loss"])
assert(h.status == "done")
