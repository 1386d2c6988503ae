-- calql_pointmaze.lua: the fine-tuning dip of CQL and its absence with Cal-QL
-- (Nakamoto et al. 2023) at small scale. One offline dataset from a noisy
-- waypoint controller (mazedata), then CQL and Cal-QL with identical
-- hyperparameters and seeds: offline pre-training, then online fine-tuning
-- with 50/50 offline/online batches. Prints, per method (IQM over seeds with a
-- 95% stratified-bootstrap interval): the normalised score at the end of
-- pre-training, the lowest score in the first dip_window of fine-tuning and
-- the drop to it, the final score, the cumulative regret; the calibration at
-- the switch (the critics' value of the learnt policy's first action against
-- that policy's discounted Monte-Carlo return, both in the transformed reward's
-- units) and the drop of that value in the window; and mean Q on data actions
-- against the data's returns. Writes calql_pointmaze[_MAZE][_STARTS][_lagrange]
-- [_wWEIGHT].svg (scores) and the same with _q (values), with the phase boundary.
--
--   lathe run share/recipes/calql_pointmaze.lua --threads 1 --workers 2
--   lathe run share/recipes/calql_pointmaze.lua --set lagrange=true   # the official CQL weight
--   lathe run share/recipes/calql_pointmaze.lua --set maze=umaze --set starts=fixed --set noise=0.2 \
--     --set online=5000 --set eval_every=250     # near-expert data: both methods pre-train to 100
local seeds = lathe.opt("seeds", 5)
local maze = lathe.opt("maze", "open")
local offline = lathe.opt("offline", 10000)
local online = lathe.opt("online", 10000)
local window = lathe.opt("dip_window", 0.5) -- the share of online steps the dip is looked for in
local data = {maze = maze, transitions = lathe.opt("transitions", 30000),
              noise = lathe.opt("noise", 0.5), trajectory_steps = lathe.opt("trajectory_steps", 0),
              starts = lathe.opt("starts", "diverse"), seed = 0}
local dsname = string.format("pointmaze-%s-%s-n%g-%d", maze, data.starts, data.noise, data.transitions)
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
  local pre, dip, drop, final, regret, qgap, pgap, qdrop = {}, {}, {}, {}, {}, {}, {}, {}
  for _, h in ipairs(m.runs) do
    if h.status == "done" then
      local steps, values = lathe.metrics(h, "evaluation/normalized_score")
      local qs, qv = lathe.metrics(h, "evaluation/q_policy")
      local lo, qlo = 1 / 0, 1 / 0
      for i = 1, #steps do
        if steps[i] > offline and steps[i] <= offline + window * online then
          lo, qlo = math.min(lo, values[i]), math.min(qlo, qv[i])
        end
      end
      pre[#pre + 1] = at(h, "evaluation/normalized_score", offline)
      dip[#dip + 1] = lo
      drop[#drop + 1] = pre[#pre] - lo
      final[#final + 1] = values[#values]
      regret[#regret + 1] = h.summary["online/cumulative_regret"] or 0 / 0
      qgap[#qgap + 1] = at(h, "sac/average_qf1", offline) - at(h, "calql/mc_return", offline)
      local q0 = at(h, "evaluation/q_policy", offline)
      pgap[#pgap + 1] = q0 - at(h, "evaluation/mc_return", offline)
      qdrop[#qdrop + 1] = q0 - qlo
    end
  end
  local function c(t, f) return S.cell(t, f or "%.1f") end
  rows[#rows + 1] = {m.name, #pre, c(pre), c(dip), c(drop), c(final), c(regret, "%.3f"), c(pgap),
                     c(qdrop), c(qgap), m.runs[1].id .. "-" .. m.runs[#m.runs].id}
  series[#series + 1] = {label = m.name, runs = m.runs}
end
print(string.format("pointmaze %s (%s starts, noise %g), %d offline steps then %d online steps, "
                    .. "CQL weight %s; IQM [95%% stratified-bootstrap CI] over seeds; dip and drops "
                    .. "within the first %g%% of online steps", maze, data.starts, data.noise,
                    offline, online,
                    common.cql_lagrange and "Lagrange (gap 0.8)" or tostring(common.cql_min_q_weight),
                    100 * window))
lathe.table({"method", "seeds", "pre-trained", "lowest online", "score drop", "final", "regret",
             "Q(pi) - G(pi) at switch", "Q(pi) drop", "Q(data) - G", "runs"}, rows)
local suffix = (maze ~= "open" and "_" .. maze or "") .. (data.starts ~= "diverse" and "_" .. data.starts or "")
               .. (common.cql_lagrange and "_lagrange" or "")
               .. (common.cql_min_q_weight ~= 5 and "_w" .. common.cql_min_q_weight or "")
local title = string.format("CQL vs Cal-QL on pointmaze %s (%s starts), CQL weight %s", maze, data.starts,
                            common.cql_lagrange and "Lagrange (gap 0.8)" or tostring(common.cql_min_q_weight))
local out = lathe.plot{out = "calql_pointmaze" .. suffix .. ".svg", metric = "evaluation/normalized_score",
                       series = series, vlines = {{x = offline, label = "online fine-tuning"}},
                       title = title}
local qout = lathe.plot{out = "calql_pointmaze" .. suffix .. "_q.svg", metric = "evaluation/q_policy",
                        series = series, vlines = {{x = offline, label = "online fine-tuning"}},
                        title = string.format("%s (%s), weight %s: Q(s0, pi(s0))", maze,
                                              data.starts, common.cql_lagrange and "Lagrange"
                                                or tostring(common.cql_min_q_weight))}
print("figures: " .. out .. ", " .. qout)
