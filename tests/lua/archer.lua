-- ArCHer end to end, small: noisy scripted twentyq play (made when the
-- store lacks it), a byte-level BC policy (run 1), then archer (run 2) with
-- `method` (archer, filtered_bc, chai, ppo), on `game` (twentyq 8/3, or
-- guesscity).
-- Bad input: mode "notlm" (init_run is not a language model), "notok" (a
-- policy without a tokenizer: a task policy of pref), "notgame" (the game
-- is not a text environment).
local mode, every = lathe.opt("mode", "train"), lathe.opt("every", 1000)
local method = lathe.opt("method", "archer")
local head, cinit = lathe.opt("head", "mse"), lathe.opt("cinit", "scratch")
local plot = lathe.opt("plot", 0)
local game = lathe.opt("game", "twentyq") -- or guesscity: 91 cities, words of a real table
if not lathe.data.count("play") then
  local play = {episodes = 100, objects = 8, attributes = 3, game = game}
  assert(lathe.data.generate("play", "gameplay", play))
end
local bc = lathe.run("sft", {dataset = "play", tokenizer = "bytes", layers = 1, heads = 2, width = 32,
                             ctx = 160, batch = 8, steps = 20, lr = 3e-3, warmup = 2, holdout = 0,
                             eval_every = 1000})
assert(bc.status == "done", bc.error)
local args = {init_run = bc.id, game_config = "objects=8,attributes=3", iterations = 6, envs = 4,
              batch = 4, grad_accum = 2, critic_steps = 2, actor_steps = 1, warmup = 2,
              eval_every = 3, critic_width = 16, max_new = 12, ckpt_every = every, method = method,
              candidates = 3, critic_head = head, critic_init = cinit, game = game}
if game == "guesscity" then args.game_config, args.eval_samples, args.max_new = "", 1, 28 end
if mode == "notlm" then args.init_run = lathe.run("regress", {steps = 2}).id end
if mode == "notok" then
  args.init_run = lathe.run("pref", {queries = 4, ref_steps = 2, samples = 2, prompts = 2,
                                     layers = 1, heads = 1, width = 8, eval_every = 1000}).id
end
if mode == "notgame" then args.game, args.game_config = "cartpole", "" end
local r = lathe.run("archer", args)
assert(r.status == "done", r.error)
print(string.format("archer %s: eval return %.4f win %.3f v_s0 %s critic loss %s", method,
                    r.summary["eval/return"], r.summary["eval/win_rate"],
                    tostring(r.summary["critic/v_s0"]), tostring(r.summary["critic/loss"])))
if plot == 1 then -- the curve with the game's exact values as reference lines
  local e <close> = lathe.env("twentyq", {objects = 8, attributes = 3})
  local i = e:info(0.95)
  lathe.plot{out = "archer.svg", metric = "eval/return", runs = {r},
             hlines = {{y = i.optimal, label = "optimal"}, i.blind}}
  print("wrote archer.svg")
end
