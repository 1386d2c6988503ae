-- The loop keeps working while lathe.sample computes: a run spawned before
-- the call streams its metric events between "sample start" and "sample
-- end" (the generation runs on libuv's thread pool, the recipe waits).
local bg_steps, nprompts = lathe.opt("bg_steps", 400000), lathe.opt("prompts", 48)
if not lathe.data.count("p") then assert(lathe.data.generate("p", "gameplay", {episodes = 20})) end
local m = lathe.run("sft", {dataset = "p", tokenizer = "bytes", layers = 2, heads = 4, width = 64,
                            ctx = 256, batch = 4, steps = 2, holdout = 0, eval_every = 1000})
assert(m.status == "done", m.error)
local bg = lathe.spawn("regress", {steps = bg_steps, hidden = 8, batch = 4, data = 16})
local prompts = {}
for i = 1, nprompts do prompts[i] = "Questions:\n" .. string.rep("ask a1 0 ? no\n", 8) end
print("sample start")
local out = lathe.sample(m, prompts, {max_tokens = 120, seed = 1})
print("sample end")
assert(#out == #prompts)
lathe.wait(bg)
