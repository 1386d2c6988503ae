-- ArCHer iterations for bench/run.sh, the same work as
-- bench/archer_iter_torch.py: 32 twentyq games (16 objects, 4 attributes)
-- played to the end with sampled utterances (at most 16 tokens, a 128-token
-- context), then 20 critic steps and 3 actor steps of 4 summed minibatches
-- of 8. The policy is a byte-level GPT (2 layers, width 64) after one sft
-- step, so practically untrained like the PyTorch side's: every utterance is
-- invalid and every game runs its 20 turns. The critic's encoder is a copy
-- of the policy's (critic_init = policy). Prints the mean seconds of each
-- phase over the iterations after the first.
local iters = lathe.opt("iterations", 4)
if not lathe.data.count("bench-play") then
  assert(lathe.data.generate("bench-play", "gameplay", {episodes = 20}))
end
local bc = lathe.run("sft", {dataset = "bench-play", tokenizer = "bytes", layers = 2, heads = 4,
                             width = 64, ctx = 128, batch = 1, steps = 1, lr = 1e-6, warmup = 0,
                             holdout = 0, eval_every = 1000, seed = 1})
assert(bc.status == "done", bc.error)
local r = lathe.run("archer", {init_run = bc.id, iterations = iters, envs = 32, batch = 8,
                               grad_accum = 4, critic_steps = 20, actor_steps = 3, warmup = 0,
                               max_new = 16, critic_init = "policy", eval_every = 1000000,
                               eval_samples = 1, ckpt_every = 0, seed = 1})
assert(r.status == "done", r.error)
local spent = {}
for _, k in ipairs{"collect", "critic", "actor"} do
  local _, v = lathe.metrics(r, "perf/" .. k .. "_s")
  spent[k] = 0
  for i = 2, #v do spent[k] = spent[k] + v[i] / (#v - 1) end
end
print(string.format("%.4f s/iteration: collect %.4f critic %.4f actor %.4f",
                    spent.collect + spent.critic + spent.actor, spent.collect, spent.critic,
                    spent.actor))
