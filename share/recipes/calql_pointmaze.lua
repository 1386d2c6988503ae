-- calql_pointmaze.lua: the fine-tuning dip of CQL and its absence with Cal-QL
-- (Nakamoto et al. 2023) at small scale. One offline dataset from a noisy
-- waypoint controller (mazedata), then CQL and Cal-QL with identical
-- hyperparameters and seeds: offline pre-training, then online fine-tuning
-- with 50/50 offline/online batches. Prints, per method, the normalised score
-- at the end of pre-training, the lowest score in the first 10% of
-- fine-tuning (the dip), the final score and the cumulative regret, and the
-- calibration at the end of pre-training (mean Q on data actions against the
-- mean Monte-Carlo return); writes calql_pointmaze.svg (with _MAZE for another
-- layout, _lagrange with --set lagrange=true) with both learning curves and the
-- phase boundary.
--
--   lathe run share/recipes/calql_pointmaze.lua --threads 1 --workers 2
--   lathe run share/recipes/calql_pointmaze.lua --set lagrange=true   # the official CQL weight
--   lathe run share/recipes/calql_pointmaze.lua --set seeds=2 --set offline=5000 --set online=5000
local seeds = lathe.opt("seeds", 5)
local maze = lathe.opt("maze", "open")
local offline = lathe.opt("offline", 10000)
local online = lathe.opt("online", 10000)
local data = {maze = maze, transitions = lathe.opt("transitions", 30000),
              noise = lathe.opt("noise", 0.5), trajectory_steps = lathe.opt("trajectory_steps", 0),
              seed = 0}
local dsname = string.format("pointmaze-%s-n%g-%d", maze, data.noise, data.transitions)
if not lathe.data.count(dsname) then
  local n, err = lathe.data.generate(dsname, "mazedata", data)
  if not n then error(err) end
  print(string.format("dataset %s: %d transitions", dsname, n))
end

-- small-scale hyperparameters, the same for both methods; everything else is
-- the official AntMaze default (max backup, 10 actions, rewards x10 - 5,
-- mixing 0.5, UTD 1) except the CQL weight: fixed at 5 (as CORL's fixed-weight
-- configs) instead of Lagrange with a 0.8 gap, whose alpha' grew past 500
-- here (2-D actions: the importance-sampled gap cannot fall near 0.8)
local common = {env = "pointmaze", env_config = "maze=" .. maze, dataset = dsname,
                offline_steps = offline, online_steps = online,
                policy_arch = lathe.opt("policy_arch", "64-64"), qf_arch = lathe.opt("qf_arch", "64-64"),
                batch_size = lathe.opt("batch_size", 64),
                soft_target_update_rate = lathe.opt("tau", 0.05),
                cql_lagrange = lathe.opt("lagrange", false), cql_min_q_weight = lathe.opt("cql_weight", 5),
                eval_every = lathe.opt("eval_every", 500), eval_episodes = lathe.opt("eval_episodes", 10),
                log_every = 500, ckpt_every = 5000}
local methods = {{name = "CQL", plugin = "cql"}, {name = "Cal-QL", plugin = "calql"}}
local all = {}
for _, m in ipairs(methods) do
  m.runs = {}
  for s = 1, seeds do
    local cfg = {seed = s}
    for k, v in pairs(common) do cfg[k] = v end
    local h = lathe.spawn(m.plugin, cfg)
    m.runs[#m.runs + 1] = h
    all[#all + 1] = h
  end
end
lathe.wait(all)

-- the value logged at the last step <= at (training metrics are logged every 500 updates)
local function at(h, name, step)
  local steps, values = lathe.metrics(h, name)
  local v = 0 / 0
  for i = 1, #steps do if steps[i] <= step then v = values[i] end end
  return v
end

local S = lathe.stats
local rows, series = {}, {}
for _, m in ipairs(methods) do
  local pre, dip, final, regret, qgap = {}, {}, {}, {}, {}
  for _, h in ipairs(m.runs) do
    if h.status == "done" then
      local steps, values = lathe.metrics(h, "evaluation/normalized_score")
      local lo = 1 / 0
      for i = 1, #steps do
        if steps[i] > offline and steps[i] <= offline + 0.1 * online then lo = math.min(lo, values[i]) end
      end
      pre[#pre + 1] = at(h, "evaluation/normalized_score", offline)
      dip[#dip + 1] = lo
      final[#final + 1] = values[#values]
      regret[#regret + 1] = h.summary["online/cumulative_regret"] or 0 / 0
      qgap[#qgap + 1] = at(h, "sac/average_qf1", offline) - at(h, "calql/mc_return", offline)
    end
  end
  local function ms(t) return string.format("%.1f ± %.1f", S.mean(t), S.sem(t)) end
  rows[#rows + 1] = {m.name, #pre, ms(pre), ms(dip), ms(final),
                     string.format("%.3f ± %.3f", S.mean(regret), S.sem(regret)), ms(qgap),
                     m.runs[1].id .. "-" .. m.runs[#m.runs].id}
  series[#series + 1] = {label = m.name, runs = m.runs}
end
print(string.format("pointmaze %s, %d offline steps then %d online steps, CQL weight %s, "
                    .. "normalised score (mean ± sem over seeds)", maze, offline, online,
                    common.cql_lagrange and "Lagrange (gap 0.8)" or tostring(common.cql_min_q_weight)))
lathe.table({"method", "seeds", "pre-trained", "dip (first 10%)", "final", "regret",
             "Q(data) - G", "runs"}, rows)
local name = "calql_pointmaze" .. (maze ~= "open" and "_" .. maze or "")
             .. (common.cql_lagrange and "_lagrange" or "") .. ".svg"
local out = lathe.plot{out = name, metric = "evaluation/normalized_score",
                       series = series, vlines = {{x = offline, label = "online fine-tuning"}},
                       title = string.format("CQL vs Cal-QL on pointmaze %s, CQL weight %s", maze,
                                             common.cql_lagrange and "Lagrange (gap 0.8)"
                                               or tostring(common.cql_min_q_weight))}
print("figure: " .. out)
