-- lathe.plot's points form: given points on a log x axis, with error bars;
-- mode "bad": a y list shorter than its x list.
local bad = lathe.opt("mode", "ok") == "bad"
lathe.plot{out = "points.svg", metric = "test pass@1", logx = true, xlabel = "problems n",
           points = {{label = "sft", x = {1000, 2000, 4000}, y = bad and {0.1, 0.2} or {0.1, 0.2, 0.3},
                      lo = {0.05, 0.15, 0.25}, hi = {0.15, 0.25, 0.35}},
                     {label = "per-step DPO", x = {1000, 2000}, y = {0.2, 0.3}}}}
print("wrote points.svg")
