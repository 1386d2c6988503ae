-- rrm_hh.lua: RM against RRM on real preferences. Anthropic's HH-RLHF
-- helpful test split (2,354 pairs, share/data) is split by record index
-- into training and held-out pairs; a Bradley-Terry reward model trains on
-- the training pairs, and RRM on the same pairs plus the augmentation that
-- model filters, with the same recipe. Printed per model: held-out accuracy,
-- the reward's correlation with response length on the held-out pairs, and,
-- out of distribution, the accuracy and tie deviation on PandaLM's
-- human-labelled test set (999 pairs, 105 ties) - both imported with
-- `lathe data import` when the store lacks them.
--
--   lathe run share/recipes/rrm_hh.lua --threads 1 --workers 2
--   lathe run share/recipes/rrm_hh.lua --set seeds=1 --set epochs=1   # quicker
local seeds = lathe.opt("seeds", 3)
local data = lathe.opt("data", lathe.share_dir .. "/data/preference")
local function import(name, file)
  if lathe.data.count(name) then return end
  local n, err = lathe.data.import(data .. "/" .. file, name, "prefs")
  if not n then error(err) end
  print(string.format("imported %s: %d pairs", name, n))
end
import("hh_helpful", "hh-rlhf/helpful-base/test.jsonl.gz") -- the name hh_dpo.lua uses
import("pandalm-test", "pandalm/testset-v1.json.gz")

local common = {dataset = "hh_helpful", tests = "pandalm-test", holdout = 0.2, type = "bt",
                epochs = lathe.opt("epochs", 2), batch = 32, lr = lathe.opt("lr", 3e-4), warmup = 50,
                vocab = 2000, ctx = lathe.opt("ctx", 128), layers = 2, heads = 4, width = 64,
                eval_every = 100000, log_every = 20}
local function cfg(extra)
  local c = {}
  for k, v in pairs(common) do c[k] = v end
  for k, v in pairs(extra) do c[k] = v end
  return c
end
local rm = {}
for s = 1, seeds do rm[s] = lathe.spawn("rm", cfg{seed = s}) end
lathe.wait(rm)
local rrm = {}
for s = 1, seeds do rrm[s] = lathe.spawn("rrm", cfg{seed = s, baseline_run = rm[s].id}) end
lathe.wait(rrm)

local S = lathe.stats
local function pm(t) return string.format("%.3f ± %.3f", S.mean(t), S.sem(t)) end
local rows = {}
for _, m in ipairs({{"RM", rm}, {"RRM", rrm}}) do
  local acc, corr, pacc, ptie, kept = {}, {}, {}, {}, {}
  for _, h in ipairs(m[2]) do
    if h.status == "done" then
      local s = h.summary
      acc[#acc + 1], corr[#corr + 1] = s["eval/accuracy"], s["eval/length_corr"]
      pacc[#pacc + 1], ptie[#ptie + 1] = s["test/pandalm-test/accuracy"], s["test/pandalm-test/tie_dev"]
      kept[#kept + 1] = (s["rrm/kept_wins"] or 0) + (s["rrm/kept_ties"] or 0)
    end
  end
  rows[#rows + 1] = {m[1], #acc, pm(acc), pm(corr), pm(pacc), pm(ptie),
                     m[1] == "RRM" and string.format("%.0f", S.mean(kept)) or "-",
                     m[2][1].id .. "-" .. m[2][#m[2]].id}
end
print(string.format("HH-RLHF helpful (test split; %.0f%% held out), Bradley-Terry, %g epochs, "
                    .. "mean ± sem over seeds", 100 * common.holdout, common.epochs))
lathe.table({"model", "seeds", "held-out acc", "reward-length corr", "PandaLM acc",
             "PandaLM tie |P-0.5|", "kept aug", "runs"}, rows)
