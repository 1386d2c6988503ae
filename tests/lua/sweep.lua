-- three seeds side by side, then a table of results read back from the store
local hs = {}
for s = 1, 3 do hs[s] = lathe.spawn("regress", {seed = s, steps = 200, eval_every = 100}) end
lathe.wait(hs)
local rows = {}
for _, h in ipairs(hs) do
  local steps, values = lathe.metrics(h, "eval_loss")
  assert(#steps == 2 and steps[2] == 200, "two evaluations per run")
  assert(values[2] == h.summary.eval_loss, "metrics and summary agree")
  rows[#rows + 1] = {h.id, h.status, h.summary.eval_loss}
end
lathe.table({"run", "status", "eval_loss"}, rows)
assert(#lathe.runs() >= 3)
local n = lathe.data.create("tiny", "sft", {{prompt = "a", response = "b"}, {prompt = "c", response = "d"}})
assert(n == 2 and lathe.data.count("tiny") == 2 and lathe.data.get("tiny", 2).prompt == "c")
print("sweep ok")
