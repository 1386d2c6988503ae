-- the facts world end to end, small: a world of 48 entities (made when the
-- store lacks it), a base model pretrained on its corpus (run 1), the base's
-- familiarity (run 2: factqa, 12 samples per question), then a judge's
-- P(true) on statements (run 3: factqa, mode judge, with the base as judge).
-- mode "fam" stops after run 2. Bad input: mode "noanswer" (questions
-- without answers), "notlm" (init_run is not a language model), "badattr"
-- (an attr that is not one of the world's).
local mode = lathe.opt("mode", "all")
local every = lathe.opt("every", 1000)
for _, set in ipairs{"corpus", "questions", "statements"} do
  if not lathe.data.count("f_" .. set) then
    assert(lathe.data.generate("f_" .. set, "factsworld", {set = set, entities = 48, seed = 3}))
  end
end
local base = lathe.run("sft", {dataset = "f_corpus", response_only = false, vocab = 300,
                               layers = 1, heads = 2, width = 32, ctx = 48, batch = 16, steps = 40,
                               lr = 3e-3, warmup = 5, holdout = 0, eval_every = 1000,
                               ckpt_every = every})
assert(base.status == "done", base.error)
local fam = {dataset = "f_questions", init_run = base.id, field = "cloze", samples = 12,
             max_tokens = 4, chunk = 16, out = "fam", ckpt_every = every}
if mode == "noanswer" then
  assert(lathe.data.create("noans", "any", {{cloze = "x lives in", attr = "city"}}))
  fam.dataset = "noans"
elseif mode == "badattr" then
  assert(lathe.data.create("badattr", "any", {{cloze = "x lives in", attr = "planet", answer = "mars"}}))
  fam.dataset = "badattr"
elseif mode == "notlm" then
  fam.init_run = lathe.run("regress", {steps = 2}).id
end
local f = lathe.run("factqa", fam)
if f.status ~= "done" then error(f.error, 0) end
local n, first = lathe.data.count("fam"), lathe.data.get("fam", 1)
assert(n == 192 and first.n == 12 and #first.answers == 12 and first.attr == "city", "fam records")
assert(first.correct + first.wrong + first.abstain + first.malformed == 12, "classes add up")
print(string.format("familiarity: %d records, p40 %s, unfamiliar %.3f", n,
                    tostring(f.summary["familiarity/p40"]), f.summary["familiarity/unfamiliar"]))
if mode == "fam" then return end
local j = lathe.run("factqa", {dataset = "f_statements", init_run = base.id, mode = "judge",
                               chunk = 64, out = "judged", ckpt_every = every})
assert(j.status == "done", j.error)
local r = lathe.data.get("judged", 2)
assert(r.correct == false and r.p_true > 0 and r.p_true < 1, "judge records")
print(string.format("judge: %d records, accuracy %.3f", lathe.data.count("judged"),
                    j.summary["judge/accuracy"]))
