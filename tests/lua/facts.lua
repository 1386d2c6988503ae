-- the facts world end to end, small: a world of 48 entities (made when the
-- store lacks it), a base model pretrained on its corpus (run 1), the base's
-- familiarity (run 2: factqa, 12 samples per question), a judge's P(true) on
-- statements (run 3: factqa, mode judge, the base as judge; run 4 the same
-- in the negation form), a bio policy (run 5: sft on the bios), its bios
-- checked (run 6: factqa, mode bio), and factrl from that policy with the
-- base as judge (run 7, the negation form with rlform = negation), then
-- free-text records (answer lists, as NQ-Open's) sampled. mode "fam" stops
-- after run 2. Bad input: mode "noanswer" (questions without answers),
-- "notlm" (init_run is not a language model), "badattr" (an attr that is
-- not one of the world's), "emptyanswers" (a free-text record whose answer
-- list holds a number), "badentity" (a bio record of an entity outside
-- the world), "notjudge" (factrl's judge_run is not a language model).
local mode = lathe.opt("mode", "all")
local every = lathe.opt("every", 1000)
local rlform = lathe.opt("rlform", "statement")
for _, set in ipairs{"corpus", "questions", "statements", "bios"} do
  if not lathe.data.count("f_" .. set) then
    assert(lathe.data.generate("f_" .. set, "factsworld", {set = set, entities = 48, seed = 3}))
  end
end
local base = lathe.run("sft", {dataset = "f_corpus", response_only = false, vocab = 300,
                               layers = 1, heads = 2, width = 32, ctx = 64, batch = 16, steps = 40,
                               lr = 3e-3, warmup = 5, holdout = 0, eval_every = 1000,
                               ckpt_every = every})
assert(base.status == "done", base.error)
local fam = {dataset = "f_questions", init_run = base.id, samples = 12, max_tokens = 4,
             chunk = 16, out = "fam", ckpt_every = every}
if mode == "noanswer" then
  assert(lathe.data.create("noans", "any", {{prompt = "x lives in", attr = "city"}}))
  fam.dataset = "noans"
elseif mode == "badattr" then
  assert(lathe.data.create("badattr", "any", {{prompt = "x lives in", attr = "planet", answer = "mars"}}))
  fam.dataset = "badattr"
elseif mode == "notlm" then
  fam.init_run = lathe.run("regress", {steps = 2}).id
end
-- free text (a real QA set's records): answer as a list of accepted strings
local function free_text()
  assert(lathe.data.create("freeqa", "any", {{prompt = "who sang it ?", answer = {"The Band", "band"}},
                                             {prompt = "x ?", answer = mode == "emptyanswers" and {1} or {"y"}}}))
  local fr = lathe.run("factqa", {dataset = "freeqa", init_run = base.id, samples = 2,
                                  max_tokens = 4, out = "freeout"})
  if fr.status ~= "done" then error(fr.error, 0) end
  local fo = lathe.data.get("freeout", 1)
  assert(fo.correct + fo.wrong + fo.abstain + fo.malformed == 2 and #fo.answers == 2, "free-text counts")
  for _, a in ipairs(fo.answers) do
    assert(({["<correct>"] = 1, ["<wrong>"] = 1, ["<idk>"] = 1, ["<malformed>"] = 1})[a], a)
  end
  print("free text: ok")
end
local f = lathe.run("factqa", fam)
if f.status ~= "done" then error(f.error, 0) end
local n, first = lathe.data.count("fam"), lathe.data.get("fam", 1)
assert(n == 192 and first.n == 12 and #first.answers == 12 and first.attr == "city", "fam records")
assert(first.correct + first.wrong + first.abstain + first.malformed == 12, "classes add up")
print(string.format("familiarity: %d records, p40 %s, unfamiliar %.3f", n,
                    tostring(f.summary["familiarity/p40"]), f.summary["familiarity/unfamiliar"]))
if mode == "emptyanswers" then free_text() end
if mode == "fam" then return end
local j = lathe.run("factqa", {dataset = "f_statements", init_run = base.id, mode = "judge",
                               chunk = 64, out = "judged", ckpt_every = every})
assert(j.status == "done", j.error)
local r = lathe.data.get("judged", 2)
assert(r.correct == false and r.p_true > 0 and r.p_true < 1, "judge records")
print(string.format("judge: %d records, accuracy %.3f", lathe.data.count("judged"),
                    j.summary["judge/accuracy"]))
local jn = lathe.run("factqa", {dataset = "f_statements", init_run = base.id, mode = "judge",
                                judge_form = "negation", chunk = 64, out = "judged_neg",
                                records = 16})
assert(jn.status == "done", jn.error)
local rn = lathe.data.get("judged_neg", 2)
assert(rn.correct == false and rn.p_true > 0 and rn.p_true < 1, "negation judge records")
local policy = lathe.run("sft", {dataset = "f_bios", init_run = base.id, steps = 200, lr = 3e-3,
                                 warmup = 3, batch = 16, holdout = 0, eval_every = 1000})
assert(policy.status == "done", policy.error)
local bio = {dataset = "f_bios", init_run = policy.id, mode = "bio", samples = 2, max_tokens = 40,
             entities = 48, world = 3, chunk = 16, out = "biochk", records = 32}
if mode == "badentity" then
  assert(lathe.data.create("badent", "any", {{prompt = "bio of x :", entity = 48}}))
  bio.dataset = "badent"
end
local b = lathe.run("factqa", bio)
if b.status ~= "done" then error(b.error, 0) end
local br = lathe.data.get("biochk", 1)
assert(#br.bios == 2 and br.n == 2 and br["true"] + br["false"] >= #br.facts, "bio records")
print(string.format("bios: %d records, true %.3f false %.3f malformed %.3f", lathe.data.count("biochk"),
                    b.summary["bio/true_facts"], b.summary["bio/false_facts"],
                    b.summary["bio/malformed"]))
local rl = {init_run = policy.id, judge_run = base.id, judge_form = rlform,
            entities = 48, world = 3, steps = 6,
            prompts = 4, samples = 2, max_tokens = 40, eval_every = 3, eval_samples = 1,
            lr = 1e-3, out = "rlout", ckpt_every = every}
if mode == "notjudge" then rl.judge_run = lathe.run("regress", {steps = 2}).id end
local x = lathe.run("factrl", rl)
if x.status ~= "done" then error(x.error, 0) end
assert(lathe.data.count("rlout") == 12, "one record per test entity")
print(string.format("factrl: reward_judge %.3f reward_true %.3f", x.summary["eval/reward_judge"],
                    x.summary["eval/reward_true"]))
free_text()
