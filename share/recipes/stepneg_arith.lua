-- stepneg_arith.lua: per-step negatives on the arith task (Setlur et al. 2024;
-- specs/per_step_negatives.md), the data-multiplier experiment at small scale.
--
-- For each data scale n and seed:
--   1. SFT(n): a byte-level GPT trained on the first n teacher solutions
--      (10% of them spurious: a wrong intermediate line, the right answer);
--   2. stepvalue: from SFT(n), `samples` solutions to each of the first
--      `value_problems` training problems, Monte-Carlo values of every step
--      prefix of every negative (and positive: AWR uses both) from
--      `rollouts` rollouts, the first-pit critical step;
--   3. from SFT(n), `extra_steps` more steps of each method: sft (more of the
--      same data), rft, dpo_outcome, dpo_step, dpo_prefix, awr - the same
--      steps for every method (equal budget).
-- Every method is validated on a valid split and tested once, at its last
-- step, on a test split (no checkpoint is picked on test). Reported:
-- test pass@1 (greedy) per method and n (IQM over seeds with a 95%
-- stratified-bootstrap CI, n seeds stated), each method's effective data
-- multiplier from a least-squares fit of SFT's accuracy against log n, the
-- critical-step agreement with the first wrong line, the spurious-step rate
-- of greedy test traces, and V(s_0) against SFT's sampled pass@1.
--
--   lathe run share/recipes/stepneg_arith.lua --threads 1 --workers 2
--   lathe run share/recipes/stepneg_arith.lua --set sizes=1000,2000 --set seeds=1   # quick
local sizes_s = lathe.opt("sizes", "1000,2000,4000,8000,16000")
local seeds = lathe.opt("seeds", 3)
local mod = lathe.opt("mod", 97)
local sft_steps = lathe.opt("sft_steps", 3000)
local extra = lathe.opt("extra_steps", 300)
local value_problems = lathe.opt("value_problems", 500)
local samples = lathe.opt("samples", 4)
local rollouts = lathe.opt("rollouts", 8)
local eval_n = lathe.opt("eval_problems", 300)
local test_n = lathe.opt("test_problems", 1000)
local methods_s = lathe.opt("methods", "sft,rft,dpo_outcome,dpo_step,dpo_prefix,awr")
local nll_lr = lathe.opt("nll_lr", 3e-4) -- sft and rft
local dpo_lr = lathe.opt("dpo_lr", 1e-5) -- the DPO forms (1e-4 collapses them: README)
local awr_lr = lathe.opt("awr_lr", 1e-4)
local beta = lathe.opt("beta", 0.1)
local base = lathe.opt("figure", "stepneg_arith") -- the figures' file names start so

local function list(s, num)
  local t = {}
  for x in tostring(s):gmatch("[^,]+") do t[#t + 1] = num and tonumber(x) or x end
  return t
end
local sizes, methods = list(sizes_s, true), list(methods_s)
table.sort(sizes)
local nmax = sizes[#sizes]

local function data(name, o)
  if not lathe.data.count(name) then assert(lathe.data.generate(name, "arith", o)) end
end
local tag = string.format("arith%d", mod)
data(tag .. "_train", {n = nmax, split = "train", mod = mod, spurious = 0.1})
data(tag .. "_valid", {n = eval_n, split = "valid", mod = mod, spurious = 0})
data(tag .. "_test", {n = test_n, split = "test", mod = mod, spurious = 0})

-- three phases, each spawned whole, so `--workers 2` runs two at a time:
-- SFT for every (n, seed), then stepvalue, then every method
local acc, spur = {}, {} -- [method][n] = list over seeds
local agree, v0, pass_s = {}, {}, {}
for _, m in ipairs(methods) do acc[m], spur[m] = {}, {} end
local sft, sv, all = {}, {}, {}
for _, n in ipairs(sizes) do
  for _, m in ipairs(methods) do acc[m][n], spur[m][n] = {}, {} end
  agree[n], v0[n], pass_s[n], sft[n], sv[n] = {}, {}, {}, {}, {}
  for seed = 1, seeds do
    sft[n][seed] = lathe.spawn("sft", {dataset = tag .. "_train", records = n, tokenizer = "bytes",
                                       layers = 4, heads = 4, width = 128, ctx = 96, batch = 32,
                                       steps = sft_steps, lr = 1e-3, warmup = 100, holdout = 0,
                                       eval_every = sft_steps, seed = seed, ckpt_every = 1000})
    all[#all + 1] = sft[n][seed]
  end
end
lathe.wait(all)
local function sv_name(n, seed) return string.format("%s_sv_n%d_s%d_r%d", tag, n, seed, sft[n][seed].id) end
all = {}
for _, n in ipairs(sizes) do
  for seed = 1, seeds do
    assert(sft[n][seed].status == "done", "SFT did not finish")
    sv[n][seed] = lathe.spawn("stepvalue", {dataset = tag .. "_train", init_run = sft[n][seed].id,
                                            problems = math.min(n, value_problems), samples = samples,
                                            rollouts = rollouts, positives = true, mod = mod,
                                            out = sv_name(n, seed), seed = seed, ckpt_every = 10})
    all[#all + 1] = sv[n][seed]
  end
end
lathe.wait(all)
local runs = {}
all = {}
for _, n in ipairs(sizes) do
  runs[n] = {}
  for seed = 1, seeds do
    local h = sv[n][seed]
    assert(h.status == "done", "stepvalue did not finish")
    for t, k in pairs{[agree[n]] = "critical_agreement", [v0[n]] = "v0",
                      [pass_s[n]] = "pass1_sampled"} do
      if h.summary[k] then t[#t + 1] = h.summary[k] end -- (absent: no negative to check)
    end
    runs[n][seed] = {}
    for _, m in ipairs(methods) do
      local r = lathe.spawn("stepneg", {dataset = sv_name(n, seed), init_run = sft[n][seed].id,
                                        method = m, steps = extra, batch = 32, beta = beta,
                                        lr = (m == "sft" or m == "rft") and nll_lr
                                             or m == "awr" and awr_lr or dpo_lr,
                                        eval_dataset = tag .. "_valid", eval_problems = eval_n,
                                        eval_every = extra, test_dataset = tag .. "_test",
                                        test_problems = test_n, mod = mod, seed = seed,
                                        ckpt_every = 100})
      runs[n][seed][m], all[#all + 1] = r, r
    end
  end
end
lathe.wait(all)
for _, n in ipairs(sizes) do
  for seed = 1, seeds do
    for _, m in ipairs(methods) do
      local r = runs[n][seed][m]
      if r.status == "done" then
        acc[m][n][#acc[m][n] + 1], spur[m][n][#spur[m][n] + 1] = r.summary["test/pass1"],
                                                                 r.summary["test/spurious"]
      else -- (dpo_prefix without a successful rollout has no example): an empty cell
        print(string.format("n=%d seed %d: %s did not finish: %s", n, seed, m, r.error or r.status))
      end
    end
  end
end

-- SFT's accuracy against log n: acc = a + b ln n (least squares over every seed)
local sx, sy, sxx, sxy, k = 0, 0, 0, 0, 0
for _, n in ipairs(sizes) do
  for _, a in ipairs(acc.sft and acc.sft[n] or {}) do
    local x = math.log(n)
    sx, sy, sxx, sxy, k = sx + x, sy + a, sxx + x * x, sxy + x * a, k + 1
  end
end
local b = k > 1 and (k * sxy - sx * sy) / (k * sxx - sx * sx) or 0/0
local a0 = k > 0 and (sy - b * sx) / k or 0/0
local function multiplier(a, n) -- n_SFT(a) / n
  if not (b > 0) then return 0/0 end
  return math.exp((a - a0) / b) / n
end

local cell = lathe.stats.cell
print(string.format("arith mod %d: SFT %d steps, then %d steps of each method (lr %g for sft and "
                    .. "rft, %g for DPO (beta %g), %g for awr); test pass@1 (greedy), IQM over %d "
                    .. "seed(s) [95%% bootstrap CI]", mod, sft_steps, extra, nll_lr, dpo_lr, beta,
                    awr_lr, seeds))
local header = {"method"}
for _, n in ipairs(sizes) do header[#header + 1] = "n=" .. n end
local function by_method(t, fmt) -- one row per method, one column per n
  local rows = {}
  for _, m in ipairs(methods) do
    local row = {m}
    for _, n in ipairs(sizes) do row[#row + 1] = fmt(t[m][n], n) end
    rows[#rows + 1] = row
  end
  lathe.table(header, rows)
end
by_method(acc, cell)

print(string.format("effective data multiplier (SFT fit: pass@1 = %.4f + %.4f ln n)", a0, b))
by_method(acc, function(t, n) -- "-": no result, or SFT's fit does not rise with n
  local v = multiplier(#t > 0 and lathe.stats.iqm(t) or 0/0, n)
  return v == v and string.format("%.2f", v) or "-"
end)

print("spurious-step rate of greedy test traces (right answer, a wrong line)")
by_method(spur, cell)

print(string.format("value estimation (M = %d rollouts; first pit vs the first wrong line)", rollouts))
local rows = {}
for _, n in ipairs(sizes) do
  rows[#rows + 1] = {"n=" .. n, cell(agree[n]), cell(v0[n]), cell(pass_s[n])}
end
lathe.table({"scale", "critical = first wrong line", "mean V(s_0)", "SFT sampled pass@1"}, rows)

-- figures: IQM over seeds with the bootstrap interval as error bars (log n)
local function series(t)
  local out = {}
  for _, m in ipairs(methods) do
    local s = {label = m, x = {}, y = {}, lo = {}, hi = {}}
    for _, n in ipairs(sizes) do
      if #t[m][n] > 0 then
        local e, lo, hi = lathe.stats.ci(t[m][n], {seed = 1})
        s.x[#s.x + 1], s.y[#s.y + 1], s.lo[#s.lo + 1], s.hi[#s.hi + 1] = n, e, lo, hi
      end
    end
    if #s.x > 0 then out[#out + 1] = s end
  end
  return out
end
lathe.plot{out = base .. "_accuracy.svg", metric = "test pass@1 (greedy)", logx = true,
           xlabel = "training problems n", points = series(acc),
           title = string.format("arith mod %d: accuracy against data, IQM of %d seed(s)", mod, seeds)}
lathe.plot{out = base .. "_spurious.svg", metric = "spurious-step rate", logx = true,
           xlabel = "training problems n", points = series(spur),
           title = "right answer, a wrong line: greedy test traces"}
print(string.format("figures: %s_accuracy.svg, %s_spurious.svg", base, base))
