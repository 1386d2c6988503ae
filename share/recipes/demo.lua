-- demo.lua: what `make demo` runs until the first algorithm plugin lands:
-- the runtime's regression plugin over three seeds, side by side.
local seeds = lathe.opt("seeds", 3)
local steps = lathe.opt("steps", 1500)
local runs = {}
for s = 1, seeds do
  runs[s] = lathe.spawn("regress", {seed = s, steps = steps, hidden = 64})
end
lathe.wait(runs)
local rows, finals = {}, {}
for _, r in ipairs(runs) do
  rows[#rows + 1] = {r.id, r.seed, r.status, r.summary.eval_loss}
  finals[#finals + 1] = r.summary.eval_loss
end
lathe.table({"run", "seed", "status", "eval_loss"}, rows)
print(string.format("mean eval_loss %.4f +- %.4f (sem)", lathe.stats.mean(finals),
                    lathe.stats.sem(finals)))
