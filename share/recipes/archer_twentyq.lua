-- archer_twentyq.lua: ArCHer (Zhou, Zanette, Pan, Levine, Kumar 2024;
-- specs/archer.md) against token-level PPO, online filtered BC and CHAI
-- at equal environment trajectories, on attribute twenty questions (16
-- objects, 4 binary attributes) and guess-the-number (1..64); with
-- `games`, also twenty questions over ArCHer's 157 objects (twentyq157:
-- table=objects, 113 attributes) and guess-my-city (guesscity, 91 cities),
-- whose scripted play asks questions with a rarer answer of at least a
-- quarter (ask=quarter), whose policy has a 600-token BPE and a 256-token
-- context, and whose evaluation (157 or 91 hidden states) runs every 10
-- iterations with one sampled pass; their threshold is midway between the
-- optimum and blind guessing.
--
--   1. warm start, per game: `bc_episodes` episodes of noisy scripted play
--      (`gameplay`: track the candidates, ask what splits them, guess the
--      last; a random valid utterance on 30% of turns), one sft record per
--      turn, a 2-layer width-64 GPT trained `bc_steps` steps;
--   2. every method from that policy, `seeds` seeds, `iterations`
--      iterations of 32 trajectories each (the same trajectories for all);
--      evaluation every 5 iterations: the greedy policy on every hidden
--      object (its exact value) and the sampling policy 8 times on every
--      hidden object (128 episodes: the value of the policy the methods
--      train, up to Monte-Carlo error);
--   3. reported: the sampled and greedy returns at the last evaluation
--      (IQM over seeds, 95% bootstrap CI, n stated), the trajectories each
--      seed needed before its sampled return first reached `threshold`,
--      the game's exact values (optimal, ask-until-identified, blind
--      guessing) from the plugin, and the critic check: ArCHer's V(s0)
--      against the sampled return of the same policy at each evaluation.
-- Settings per method (learning rates, steps) are the pilots' in
-- share/recipes/README.md; no checkpoint is chosen, each run reports its
-- last evaluation.
--
--   lathe run share/recipes/archer_twentyq.lua --threads 1 --workers 2
--   lathe run share/recipes/archer_twentyq.lua --set seeds=1 --set iterations=20   # quick
--   lathe run share/recipes/archer_twentyq.lua --set games=twentyq157 --set methods=archer,ppo \
--       --set iterations=30 --threads 1 --workers 2   # the 157-object game, ArCHer and PPO
--   lathe run share/recipes/archer_twentyq.lua --set tabulate=true   # tables and figures of
--       the finished archer runs already in the store (after `lathe resume`, say)
local tabulate = lathe.opt("tabulate", false)
local seeds = lathe.opt("seeds", 3)
local iters = lathe.opt("iterations", 60)
local bc_episodes = lathe.opt("bc_episodes", 2000)
local bc_steps = lathe.opt("bc_steps", 3000)
local threshold = lathe.opt("threshold", -5)
local only = lathe.opt("games", "twentyq,guessnum")
local which = lathe.opt("methods", "archer,ppo,filtered_bc,chai")
local gamma, envs = 0.95, 32

-- per game: the textenv and its options, the scripted play, the policy's
-- tokenizer and context, and the evaluation's cost (the table games have
-- 157 and 91 hidden states: fewer sampled passes, less often)
local small = {vocab = 300, ctx = 128, max_new = 16, eval_every = 5, eval_samples = 8}
local big = {vocab = 600, ctx = 256, max_new = 24, eval_every = 10, eval_samples = 1}
local games = {
  {name = "twentyq", env = "twentyq", config = "objects=16,attributes=4", set = small,
   play = {game = "twentyq", objects = 16, attributes = 4}},
  {name = "guessnum", env = "guessnum", config = "", set = small, play = {game = "guessnum"}},
  {name = "twentyq157", env = "twentyq", config = "table=objects", set = big,
   play = {game = "twentyq", table = "objects", ask = "quarter"}},
  {name = "guesscity", env = "guesscity", config = "", set = big,
   play = {game = "guesscity", ask = "quarter"}},
}
local all_methods = {
  {name = "archer", cfg = {method = "archer", actor_lr = 1e-4, actor_steps = 3, critic_steps = 20,
                           warmup = 10, critic_init = "policy"}},
  {name = "ppo", cfg = {method = "ppo", actor_lr = 1e-5, batch = 32, critic_lr = 1e-4,
                        critic_init = "policy"}},
  {name = "filtered_bc", cfg = {method = "filtered_bc", actor_lr = 1e-3, actor_steps = 10}},
  {name = "chai", cfg = {method = "chai", critic_steps = 20, critic_init = "policy"}},
}
local methods = {}
for _, m in ipairs(all_methods) do
  if which:find(m.name, 1, true) then methods[#methods + 1] = m end
end

local cell = lathe.stats.cell
for _, g in ipairs(games) do
  local listed = false
  for w in only:gmatch("[^,]+") do listed = listed or w == g.name end
  if listed then
    local opts = {}
    for k, v in g.config:gmatch("(%w+)=(%w+)") do opts[k] = tonumber(v) or v end
    local env <close> = lathe.env(g.env, opts)
    local info = env:info(gamma)
    -- the threshold: the spec's -5 on the small games; on the table games,
    -- midway between the optimum and blind guessing
    local threshold = g.set == big and (info.optimal + info.blind) / 2 or threshold
    print(string.format("%s: exact values (gamma %.2f): optimal %.4f, ask until identified %.4f, "
                        .. "blind guessing %.4f", g.name, gamma, info.optimal, info.identify,
                        info.blind))
    for _, m in ipairs(methods) do m.runs = {} end
    if tabulate then -- the store's finished runs of this game and budget, by method
      for _, r in ipairs(lathe.runs()) do
        local c = r.config
        if r.plugin == "archer" and r.status == "done" and c.game == g.env and
           c.game_config == g.config and c.iterations == iters then
          for _, m in ipairs(methods) do
            if m.cfg.method == c.method then m.runs[#m.runs + 1] = r end
          end
        end
      end
    else
      -- 1. the warm start
      local ds = "play_" .. g.name
      if not lathe.data.count(ds) then
        local args = {episodes = bc_episodes, noise = 0.3, seed = 1}
        for k, v in pairs(g.play) do args[k] = v end
        assert(lathe.data.generate(ds, "gameplay", args))
      end
      local bc = lathe.run("sft", {dataset = ds, tokenizer = "bpe", vocab = g.set.vocab,
                                   layers = 2, heads = 4, width = 64, ctx = g.set.ctx, batch = 32,
                                   steps = bc_steps,
                                   lr = 1e-3, warmup = 50, holdout = 0.05, eval_every = 1000,
                                   seed = 1})
      assert(bc.status == "done", bc.error)
      print(string.format("%s: BC run %d, held-out loss %.3f", g.name, bc.id,
                          bc.summary["eval/loss"]))

      -- 2. the methods at equal trajectories
      local runs = {}
      for _, m in ipairs(methods) do
        for seed = 1, seeds do
          local cfg = {init_run = bc.id, game = g.env, game_config = g.config,
                       iterations = iters, envs = envs, eval_every = g.set.eval_every,
                       eval_samples = g.set.eval_samples, max_new = g.set.max_new, seed = seed,
                       gamma = gamma, ckpt_every = 10}
          for k, v in pairs(m.cfg) do cfg[k] = v end
          local r = lathe.spawn("archer", cfg)
          m.runs[#m.runs + 1], runs[#runs + 1] = r, r
        end
      end
      lathe.wait(runs)
    end

    -- 3. the table
    local function col(m, k) return lathe.stats.column(m.runs, k) end
    local function reached(r) -- trajectories before the sampled return first reached the threshold
      local steps, vals = lathe.metrics(r, "eval/sampled_return")
      for i = 1, #steps do
        if vals[i] >= threshold then return steps[i] * envs end
      end
      return nil
    end
    print(string.format("%s, %d iterations x %d trajectories, IQM over %d seed(s) [95%% bootstrap "
                        .. "CI]; the last evaluation", g.name, iters, envs, seeds))
    local rows = {}
    for _, m in ipairs(methods) do
      local hit, n = {}, 0
      for _, r in ipairs(m.runs) do
        local t = r.status == "done" and reached(r)
        hit[#hit + 1] = t and tostring(math.floor(t)) or "-"
        if t then n = n + 1 end
      end
      rows[#rows + 1] = {m.name, cell(col(m, "eval/sampled_return")),
                         cell(col(m, "eval/sampled_win_rate")), cell(col(m, "eval/return")),
                         string.format("%d/%d: %s", n, #m.runs, table.concat(hit, " "))}
    end
    lathe.table({"method", "sampled return", "sampled win rate", "greedy return (exact)",
                 string.format("reached %g (trajectories)", threshold)}, rows)

    -- the critic check: V(s0) against the sampled return at each evaluation
    rows = {}
    for _, m in ipairs(methods) do
      if m.name == "archer" or m.name == "chai" then
        for i, r in ipairs(m.runs) do
          local st, v0 = {}, {}
          if r.status == "done" then st, v0 = lathe.metrics(r, "critic/v_s0") end
          local sr = {}
          if r.status == "done" then sr = select(2, lathe.metrics(r, "eval/sampled_return")) end
          local gap, last = 0, #st
          for k = 1, last do gap = gap + math.abs(v0[k] - sr[k]) / last end
          if last > 0 then
            rows[#rows + 1] = {m.name, tostring(i), string.format("%.3f", v0[last]),
                               string.format("%.3f", sr[last]), string.format("%.3f", gap)}
          end
        end
      end
    end
    lathe.table({"method", "seed", "V(s0), last", "sampled return, last",
                 "mean |V(s0) - return| over evaluations"}, rows)

    -- the figure: sampled return against trajectories, the exact values as lines
    local lines = {{y = info.optimal, label = "optimal"}, {y = info.blind, label = "blind guessing"}}
    if math.abs(info.identify - info.optimal) > 1e-9 then
      lines[#lines + 1] = {y = info.identify, label = "ask until identified"}
    else
      lines[1].label = "optimal = ask until identified"
    end
    local series = {}
    for _, m in ipairs(methods) do series[#series + 1] = {label = m.name, runs = m.runs} end
    lathe.plot{out = "archer_" .. g.name .. ".svg", metric = "eval/sampled_return",
               x = "charts/trajectories", series = series, band = "minmax",
               title = string.format("%s: sampled return, %d seed(s) per method", g.name,
                                     #methods[1].runs),
               hlines = lines}
  end
end
