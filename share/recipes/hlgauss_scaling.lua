-- hlgauss_scaling.lua: "Stop Regressing"'s two claims at small scale:
-- classification critics gain from a wider network where regression does not,
-- and they hold up under noisy targets. DQN (CleanRL's hyperparameters) with
-- the critic head as the only difference (mse; two_hot and hl_gauss on the
-- same 51-bin support, as the paper sets both), hidden widths 1x, 2x and 4x
-- CleanRL's 120,84, clean rewards and Gaussian reward noise, `seeds` seeds
-- each, on CartPole-v1 (env=cartpole) or Acrobot-v1 (env=acrobot), every run
-- with the same step budget (heads= with c51 too, widths= of 1,2,4, depth=
-- hidden layers, noise= the noisy level and clean=false select a part).
-- Scores: the final greedy evaluation return (10
-- episodes) and the area under the evaluation curve (the mean of its points);
-- per head, width and noise the IQM over seeds with a 95% stratified
-- bootstrap interval. Figure: score against width per head, per noise level.
--
--   lathe run share/recipes/hlgauss_scaling.lua --threads 1 --workers 2 --set env=cartpole
--   lathe run share/recipes/hlgauss_scaling.lua --threads 1 --workers 2 --set env=acrobot
--   lathe run share/recipes/hlgauss_scaling.lua --set seeds=2 --set steps=20000   # quick
--   lathe run share/recipes/hlgauss_scaling.lua --set env=acrobot --set heads=mse,hl_gauss,c51 \
--     --set widths=1,4 --set noise=3     # C51 beside, a noise level that hurts MSE
--   lathe run share/recipes/hlgauss_scaling.lua --set tabulate=true ...   # the table and
--       figures again from the finished runs of that env and steps already in the store
local tabulate = lathe.opt("tabulate", false)
local env = lathe.opt("env", "cartpole")
local seeds = lathe.opt("seeds", 10)
local steps = lathe.opt("steps", 200000)
local noise = lathe.opt("noise", 1.0) -- std of the reward noise in the noisy condition
local function list(x)
  local t = {}
  for v in string.gmatch(x, "[^,]+") do t[#t + 1] = v end
  return t
end
local heads = list(lathe.opt("heads", "mse,two_hot,hl_gauss")) -- c51 too, on the same support
local depth = lathe.opt("depth", 2) -- hidden layers: CleanRL's two, or more of the second width
local base = {{mult = 1, w = {120, 84}}, {mult = 2, w = {240, 168}}, {mult = 4, w = {480, 336}}}
local widths = {}
for _, m in ipairs(list(lathe.opt("widths", "1,2,4"))) do
  for _, b in ipairs(base) do
    if b.mult == tonumber(m) then
      local h = {}
      for i = 1, depth do h[i] = b.w[math.min(i, 2)] end
      widths[#widths + 1] = {mult = b.mult, hidden = table.concat(h, ",")}
    end
  end
end
assert(#widths > 0 and depth >= 1, "widths: a list of 1, 2 and 4; depth >= 1")
local noises = lathe.opt("clean", true) and {0, noise} or {noise}
local function noise_name(nz) return nz == 0 and "clean" or nz == 1 and "noisy" or "noise" .. nz end
-- the value support: the returns' range under gamma 0.99 (CartPole +1 a step,
-- Acrobot -1 a step until the goal), with room on the outer side
local support = {cartpole = {-10, 110}, acrobot = {-110, 10}}
assert(support[env], "env must be cartpole or acrobot")

local cells, all, stored = {}, {}, {}
if tabulate then -- the finished runs in the store, by head, width and noise
  for _, r in ipairs(lathe.runs()) do
    local c = r.config
    if r.plugin == "dqn" and r.status == "done" and c.env == env and c.total_timesteps == steps then
      local key = c.critic_head .. "|" .. c.hidden .. "|" .. string.format("%g", c.reward_noise)
      stored[key] = stored[key] or {}
      table.insert(stored[key], r)
    end
  end
end
for _, nz in ipairs(noises) do
  for _, head in ipairs(heads) do
    for _, w in ipairs(widths) do
      local cell = {head = head, noise = nz, width = w.mult, runs = {}}
      if tabulate then
        cell.runs = stored[head .. "|" .. w.hidden .. "|" .. string.format("%g", nz)] or {}
      else
        for s = 1, seeds do
          local r = lathe.spawn("dqn", {env = env, critic_head = head, hidden = w.hidden, seed = s,
                                        total_timesteps = steps, reward_noise = nz,
                                        v_min = support[env][1], v_max = support[env][2],
                                        eval_every = math.min(10000, steps), ckpt_every = 50000})
          cell.runs[#cell.runs + 1], all[#all + 1] = r, r
        end
      end
      if #cell.runs > 0 then cells[#cells + 1] = cell end
    end
  end
end
lathe.wait(all)
if lathe.checking then return end -- `lathe check`: no curves to score

local function scores(cell)
  local final, auc = {}, {}
  for _, r in ipairs(cell.runs) do
    assert(r.status == "done", "run " .. r.id .. " " .. r.status .. ": " .. tostring(r.error))
    local _, v = lathe.metrics(r, "eval/episodic_return")
    local sum = 0
    for _, x in ipairs(v) do sum = sum + x end
    final[#final + 1], auc[#auc + 1] = v[#v], sum / #v
  end
  return final, auc
end

local rows, series = {}, {}
for _, cell in ipairs(cells) do
  cell.final, cell.auc = scores(cell)
  rows[#rows + 1] = {cell.head, cell.noise == 0 and "clean" or ("noise " .. cell.noise),
                     cell.width .. "x", lathe.stats.cell(cell.final, "%.1f"),
                     lathe.stats.cell(cell.auc, "%.1f"),
                     cell.runs[1].id .. "-" .. cell.runs[#cell.runs].id}
end
print(string.format("DQN on %s, %d steps, %d hidden layers, %d seeds: IQM [95%% CI] of the final "
                    .. "greedy return and of the area under the evaluation curve", env, steps,
                    depth, #cells[1].runs))
lathe.table({"head", "rewards", "width", "final return", "area under curve", "runs"}, rows)

-- score against width, per head, one figure per noise level and score
for _, nz in ipairs(noises) do
  for _, what in ipairs({"final", "auc"}) do
    local pts = {}
    for _, head in ipairs(heads) do
      local s = {label = head, x = {}, y = {}, lo = {}, hi = {}}
      for _, cell in ipairs(cells) do
        if cell.head == head and cell.noise == nz then
          local e, lo, hi = lathe.stats.ci(cell[what], {seed = 1})
          s.x[#s.x + 1], s.y[#s.y + 1], s.lo[#s.lo + 1], s.hi[#s.hi + 1] = cell.width, e, lo, hi
        end
      end
      pts[#pts + 1] = s
    end
    local name = string.format("hlgauss_scaling_%s_%s%s_%s.svg", env, noise_name(nz),
                               depth ~= 2 and "_d" .. depth or "", what)
    lathe.plot{out = name, points = pts, logx = true, xlabel = "network width (x CleanRL's 120,84)",
               metric = what == "final" and "final greedy return (IQM, 95% CI)"
                        or "area under the curve (IQM, 95% CI)",
               title = string.format("DQN, %s, %s rewards: %s", env,
                                     nz == 0 and "clean" or ("noise " .. nz),
                                     what == "final" and "final return" or "area under the curve")}
    print("figure: " .. name)
  end
end
