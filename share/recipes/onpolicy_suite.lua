-- onpolicy_suite.lua: what onpolicy_bandit.lua and onpolicy_length.lua share.
-- Every method of the on-policy preference paper (Tajwar et al. 2024) on one
-- task, several seeds, the same reward-query budget and the same number of
-- gradient steps; a table of the task reward and figures of reward against
-- steps and against KL(pi || pi_ref). Loaded with dofile; returns suite().

-- The methods, with the two axes of the paper: sampling (on-policy or data
-- collected once from pi_ref) and a negative gradient (pushing down worse
-- responses). Pref-FT is SFT on the best of N reference samples.
local methods = {
  {name = "Pref-FT", method = "sft", onpolicy = false, neg = false},
  {name = "DPO (offline)", method = "dpo", onpolicy = false, neg = true},
  {name = "IPO (offline)", method = "ipo", onpolicy = false, neg = true},
  {name = "BoN", method = "bon", onpolicy = true, neg = false},
  {name = "BoN + push-down", method = "bon", onpolicy = true, neg = true},
  {name = "RWR", method = "rwr", onpolicy = true, neg = false},
  {name = "REINFORCE", method = "reinforce", onpolicy = true, neg = true},
  {name = "PPO", method = "ppo", onpolicy = true, neg = true},
  {name = "DPO (on-policy)", method = "dpo", onpolicy = true, neg = true},
  {name = "IPO (on-policy)", method = "ipo", onpolicy = true, neg = true},
}

local function value_at(h, name, frac)
  local steps, values = lathe.metrics(h, name)
  if #steps == 0 then return 0 / 0 end
  local want = steps[1] + frac * (steps[#steps] - steps[1])
  for i = 1, #steps do if steps[i] >= want then return values[i] end end
  return values[#values]
end

-- spec: {title, prefix (figure file names), seeds, tasks = {{id, label, task, task_args,
--        reward_run (optional: a proxy reward model's run for every method on the task)}},
--        common = {pref config shared by every run}, only = "comma,separated,method names"}
return function(spec)
  local runs = {}
  for _, t in ipairs(spec.tasks) do
    for mi, m in ipairs(methods) do
      if not spec.only or spec.only:find(m.method, 1, true) then
        for s = 1, spec.seeds do
          local cfg = {task = t.task, task_args = t.task_args, method = m.method,
                       onpolicy = m.onpolicy, negative_gradient = m.neg, seed = s}
          for k, v in pairs(spec.common) do cfg[k] = v end
          if t.reward_run then cfg.reward_run = t.reward_run end
          if m.method == "ipo" then cfg.beta = spec.ipo_tau or 0.05 end
          local h = lathe.spawn("pref", cfg)
          runs[#runs + 1] = {task = t, m = m, mi = mi, h = h}
        end
      end
    end
  end
  local handles = {}
  for i, r in ipairs(runs) do handles[i] = r.h end
  lathe.wait(handles)

  print(spec.title)
  for _, t in ipairs(spec.tasks) do
    local rows, series = {}, {}
    for mi, m in ipairs(methods) do
      local early, final, kl, start, group, proxy = {}, {}, {}, {}, {}, {}
      for _, r in ipairs(runs) do
        if r.task == t and r.mi == mi and r.h.status == "done" then
          start[#start + 1] = value_at(r.h, "eval/reward", 0)
          early[#early + 1] = value_at(r.h, "eval/reward", 0.25)
          final[#final + 1] = r.h.summary["eval/reward"]
          kl[#kl + 1] = r.h.summary["eval/kl"]
          proxy[#proxy + 1] = r.h.summary["eval/proxy_reward"]
          group[#group + 1] = r.h
        end
      end
      if #group > 0 then
        rows[#rows + 1] = {m.name, m.onpolicy and "on" or "off", m.neg and "yes" or "no", #final,
                           string.format("%.3f", lathe.stats.mean(start)),
                           string.format("%.3f", lathe.stats.mean(early)),
                           string.format("%.3f +- %.3f", lathe.stats.mean(final), lathe.stats.sem(final)),
                           lathe.stats.cell(final, "%.3f"),
                           string.format("%.1f", lathe.stats.mean(kl))}
        if t.reward_run then rows[#rows][10] = string.format("%.3f", lathe.stats.mean(proxy)) end
        series[#series + 1] = {label = m.name, runs = group}
      end
    end
    print("")
    print(t.label .. ": task reward of one sample on held-out prompts (mean over seeds; the IQM "
          .. "with its 95% stratified-bootstrap interval, 2,000 resamples)"
          .. (t.reward_run and string.format("; trained on the proxy reward model of run %d "
                                             .. "(its final score beside the task's)", t.reward_run) or ""))
    local head = {"method", "sampling", "neg. grad", "seeds", "reference", "at 25%",
                  "final (+- sem)", "final IQM [95% CI]", "KL"}
    if t.reward_run then head[10] = "proxy reward" end
    lathe.table(head, rows)
    local base = spec.prefix .. "_" .. t.id
    lathe.plot{out = base .. ".svg", metric = "eval/reward", series = series,
               title = spec.title .. ": " .. t.label}
    lathe.plot{out = base .. "_kl.svg", metric = "eval/reward", x = "eval/kl", series = series,
               band = "none", title = spec.title .. ": " .. t.label .. ", reward against KL"}
    print("figures: " .. base .. ".svg, " .. base .. "_kl.svg")
  end
end
