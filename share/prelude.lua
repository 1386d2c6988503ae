-- prelude.lua - helpers written in Lua that every recipe's `lathe` module
-- carries: tables and statistics (lathe.stats: mean, sem, iqm, ci,
-- prob_improvement, profile, cross_entropy, kl; lathe.table). Loaded by
-- lua/l_lathe.c from the share directory with the module as its argument.
local lathe = ...
local stats = {}
-- arguments are checked here and blamed on the recipe's line (level 3)
local function nums(t, fn)
  if type(t) ~= 'table' then
    error(string.format('%s: bad argument #1 (a list of numbers expected, got %s)', fn,
      type(t)), 3) end
  for i, x in ipairs(t) do if type(x) ~= 'number' then
    error(string.format('%s: element %d is a %s, not a number', fn, i, type(x)), 3) end end
  return t end
function stats.mean(t) nums(t, 'lathe.stats.mean') local s = 0
  for _, x in ipairs(t) do s = s + x end return #t > 0 and s / #t or 0/0 end
function stats.sem(t) nums(t, 'lathe.stats.sem') local n = #t if n < 2 then return 0 end
  local m, s = stats.mean(t), 0 for _, x in ipairs(t) do s = s + (x - m)^2 end
  return math.sqrt(s / (n - 1)) / math.sqrt(n) end
-- interquartile mean as rliable (Agarwal et al. 2021) computes it: scipy's
-- trim_mean(x, 0.25), the mean after dropping floor(n/4) values at each end
function stats.iqm(t)
  nums(t, 'lathe.stats.iqm')
  local c = {} for i, x in ipairs(t) do c[i] = x end table.sort(c)
  local n = #c if n == 0 then return 0/0 end
  local k, s = n // 4, 0
  for i = k + 1, n - k do s = s + c[i] end
  return s / (n - 2 * k) end

-- resampling is reproducible: SplitMix64 over Lua's wrapping integers, a
-- uniform index in [1, n]
local function draws(seed)
  local x = math.tointeger(seed) or 0
  return function(n)
    x = x + 0x9e3779b97f4a7c15
    local z = x
    z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
    z = (z ~ (z >> 27)) * 0x94d049bb133111eb
    z = z ~ (z >> 31)
    return (z >> 11) % n + 1 end end

-- scores: a list of numbers (one task) or a list of such lists (tasks),
-- checked and returned as a list of tasks
local function tasks(t, fn)
  if type(t) ~= 'table' or #t == 0 then
    error(string.format('%s: bad argument #1 (scores: a list of numbers, or one per task)', fn), 3) end
  if type(t[1]) ~= 'table' then nums(t, fn) return {t} end
  for i, task in ipairs(t) do
    if type(task) ~= 'table' or #task == 0 then
      error(string.format('%s: task %d has no scores', fn, i), 3) end
    nums(task, fn) end
  return t end

-- numpy's percentile (linear interpolation) of the sorted list c at q in [0, 1]
local function quantile(c, q)
  local h = (#c - 1) * q local i = math.floor(h)
  if i + 1 >= #c then return c[#c] end
  return c[i + 1] + (h - i) * (c[i + 2] - c[i + 1]) end

local function opts_of(o, fn)
  o = o or {}
  if type(o) ~= 'table' then error(fn .. ': options must be a table', 3) end
  local reps, level = o.reps or 2000, o.level or 0.95
  if math.type(reps) ~= 'integer' or reps < 1 then error(fn .. ': reps must be a positive integer', 3) end
  if type(level) ~= 'number' or level <= 0 or level >= 1 then error(fn .. ': level must lie in (0, 1)', 3) end
  return reps, level, draws(o.seed or 0) end

-- stats.ci(scores, {stat=, reps=2000, level=0.95, seed=0}): the point
-- estimate and a percentile confidence interval from the stratified
-- bootstrap (runs resampled with replacement within each task, as rliable):
-- returns estimate, lo, hi. stat (default stats.iqm) takes the flat list of
-- every task's scores.
function stats.ci(scores, o)
  local ts = tasks(scores, 'lathe.stats.ci')
  local reps, level, draw = opts_of(o, 'lathe.stats.ci')
  local stat = (o and o.stat) or stats.iqm
  local function flat(pick)
    local f = {} for _, task in ipairs(ts) do
      for j = 1, #task do f[#f + 1] = task[pick(#task, j)] end end
    return f end
  local est = stat(flat(function(_, j) return j end))
  local bs = {} for r = 1, reps do bs[r] = stat(flat(function(n) return draw(n) end)) end
  table.sort(bs)
  return est, quantile(bs, (1 - level) / 2), quantile(bs, 1 - (1 - level) / 2) end

-- stats.cell(scores, fmt='%.3f'): a table cell "IQM [lo, hi]" with the 95%
-- interval of stats.ci (seed 1); one score alone, without an interval; "-"
-- for none.
function stats.cell(scores, fmt)
  fmt = fmt or '%.3f'
  if #scores == 0 then return '-' end
  local e, lo, hi = stats.ci(scores, {seed = 1})
  if #scores == 1 then return string.format(fmt, e) end
  return string.format(fmt .. ' [' .. fmt .. ', ' .. fmt .. ']', e, lo, hi) end

-- stats.column(runs, key): summary[key] of each run of `runs` that finished
-- ("done"), in order: the scores of one arm at its last step.
function stats.column(runs, key)
  local t = {}
  for _, r in ipairs(runs) do
    if r.status == 'done' then t[#t + 1] = r.summary[key] end
  end
  return t
end

-- P(X > Y) as rliable computes it: per task, the Mann-Whitney U of x over y
-- divided by #x #y (ties count a half), averaged over tasks.
local function p_improve(xs, ys)
  local p = 0
  for m = 1, #xs do local x, y, u = xs[m], ys[m], 0
    for _, a in ipairs(x) do for _, b in ipairs(y) do
      u = u + (a > b and 1 or a == b and 0.5 or 0) end end
    p = p + u / (#x * #y) end
  return p / #xs end

-- stats.prob_improvement(x, y, {reps=, level=, seed=}): the probability that
-- a run of X beats a run of Y on the same task, with its stratified
-- bootstrap interval (X's and Y's runs resampled independently): p, lo, hi.
function stats.prob_improvement(x, y, o)
  local xs, ys = tasks(x, 'lathe.stats.prob_improvement'), tasks(y, 'lathe.stats.prob_improvement')
  if #xs ~= #ys then error('lathe.stats.prob_improvement: x and y have different task counts', 2) end
  local reps, level, draw = opts_of(o, 'lathe.stats.prob_improvement')
  local function resample(ts) local out = {}
    for m, task in ipairs(ts) do out[m] = {}
      for j = 1, #task do out[m][j] = task[draw(#task)] end end
    return out end
  local bs = {} for r = 1, reps do bs[r] = p_improve(resample(xs), resample(ys)) end
  table.sort(bs)
  return p_improve(xs, ys), quantile(bs, (1 - level) / 2), quantile(bs, 1 - (1 - level) / 2) end

-- stats.profile(scores, taus): the performance profile (rliable's score
-- distribution): for each tau, the fraction of all runs scoring above it.
function stats.profile(scores, taus)
  local ts = tasks(scores, 'lathe.stats.profile')
  nums(taus, 'lathe.stats.profile')
  local out = {} for i, tau in ipairs(taus) do local above, n = 0, 0
    for _, task in ipairs(ts) do for _, v in ipairs(task) do
      n = n + 1 above = above + (v > tau and 1 or 0) end end
    out[i] = above / n end
  return out end
-- Histograms are tables from a category (any key) to a count or a mass.
local function hist(h, fn, arg)
  if type(h) ~= 'table' then
    error(string.format('%s: bad argument #%d (a histogram table expected, got %s)', fn, arg,
      type(h)), 3) end
  local tot = 0 for k, v in pairs(h) do
    if type(v) ~= 'number' or v < 0 then
      error(string.format('%s: argument #%d: the count of %s is not a number >= 0', fn, arg,
        tostring(k)), 3) end tot = tot + v end
  return tot end
-- stats.cross_entropy(target, pred): -sum_c t(c) log p(c) in nats, both
-- normalised to sum 1 (a category p lacks is mass 0: inf when t has it).
function stats.cross_entropy(t, p)
  local tt, tp = hist(t, 'lathe.stats.cross_entropy', 1), hist(p, 'lathe.stats.cross_entropy', 2)
  local ce = 0 for c, v in pairs(t) do if v > 0 then
    ce = ce - v / tt * math.log((p[c] or 0) / tp) end end
  return ce end
-- stats.kl(p, q, alpha): KL(p || q) in nats between two count histograms
-- after adding alpha (default 0.5, Jeffreys) to every category of either.
function stats.kl(p, q, alpha)
  hist(p, 'lathe.stats.kl', 1) hist(q, 'lathe.stats.kl', 2)
  alpha = alpha or 0.5
  local cats, sp, sq = {}, 0, 0
  for c in pairs(p) do cats[c] = true end for c in pairs(q) do cats[c] = true end
  for c in pairs(cats) do sp = sp + (p[c] or 0) + alpha sq = sq + (q[c] or 0) + alpha end
  local kl = 0 for c in pairs(cats) do
    local a, b = ((p[c] or 0) + alpha) / sp, ((q[c] or 0) + alpha) / sq
    kl = kl + a * math.log(a / b) end
  return kl end
lathe.stats = stats
function lathe.table(header, rows) -- print aligned columns
  if type(header) ~= 'table' or type(rows) ~= 'table' then
    error(string.format('lathe.table: bad arguments (a header list and a list of rows '
      .. 'expected, got %s and %s)', type(header), type(rows)), 2) end
  for i, r in ipairs(rows) do if type(r) ~= 'table' then
    error(string.format('lathe.table: row %d is a %s, not a list', i, type(r)), 2) end end
  local w = {} local function cell(v) if type(v) == 'number' then
    return v == math.floor(v) and math.abs(v) < 1e15 and string.format('%d', v)
      or string.format('%.4g', v) end return tostring(v) end
  local all = {header} for _, r in ipairs(rows) do all[#all + 1] = r end
  for _, r in ipairs(all) do for i, v in ipairs(r) do
    w[i] = math.max(w[i] or 0, #cell(v)) end end
  for k, r in ipairs(all) do local parts = {} for i, v in ipairs(r) do
    local c = cell(v) parts[i] = type(v) == 'number' and string.rep(' ', w[i] - #c) .. c
      or c .. string.rep(' ', w[i] - #c) end print(table.concat(parts, '  '))
    if k == 1 then local d = {} for i = 1, #r do d[i] = string.rep('-', w[i]) end
      print(table.concat(d, '  ')) end end end
