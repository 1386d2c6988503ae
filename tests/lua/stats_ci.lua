-- lathe.stats against values computed independently: IQM as scipy's
-- trim_mean(x, 0.25), P(X > Y) as Mann-Whitney U / (nx ny), the performance
-- profile, and bootstrap intervals against a 40,000-resample Python
-- bootstrap of the same data (IQM of 1..20: [7.1, 13.9]; the stratified mean
-- of {1,2,3} and {10,20,30,40}: [9.14, 21.14]); the hedge cross-entropy of
-- specs/unfamiliar.md (1.59405 and 2.30259) and a smoothed KL by hand.
local s = lathe.stats
local function near(a, b, tol, what) assert(math.abs(a - b) <= tol, what .. ": " .. a .. " vs " .. b) end
near(s.iqm({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), 5.5, 0, "iqm of 1..10")
near(s.iqm({1, 2, 3, 4, 100}), 3, 0, "iqm of 5 drops one at each end")
near(s.iqm({1, 2, 9}), 4, 0, "iqm of 3 drops none")
near(s.prob_improvement({3, 4, 5}, {1, 2, 4}), 7.5 / 9, 1e-12, "P(X > Y)")
near(s.prob_improvement({{3, 4, 5}, {1}}, {{1, 2, 4}, {1}}), (7.5 / 9 + 0.5) / 2, 1e-12, "over tasks")
local prof = s.profile({{1, 2, 3}, {4, 5}}, {0, 2, 4.5, 9})
assert(prof[1] == 1 and prof[2] == 0.6 and prof[3] == 0.2 and prof[4] == 0, "profile")
local e, lo, hi = s.ci({5, 5, 5, 5})
assert(e == 5 and lo == 5 and hi == 5, "a constant's interval is the point")
local xs = {} for i = 1, 20 do xs[i] = i end
e, lo, hi = s.ci(xs, {reps = 5000, seed = 1})
near(e, 10.5, 0, "iqm of 1..20")
near(lo, 7.1, 0.5, "iqm interval, low end") near(hi, 13.9, 0.5, "iqm interval, high end")
local e2, lo2, hi2 = s.ci(xs, {reps = 5000, seed = 1})
assert(lo == lo2 and hi == hi2, "a seed gives the same interval")
e, lo, hi = s.ci({{1, 2, 3}, {10, 20, 30, 40}}, {stat = s.mean, reps = 5000, seed = 2})
near(e, 106 / 7, 1e-12, "stratified mean")
near(lo, 9.14, 0.6, "stratified interval, low end") near(hi, 21.14, 0.6, "stratified interval, high end")
local p, plo, phi = s.prob_improvement({3, 4, 5}, {1, 2, 4}, {reps = 2000})
assert(plo <= p and p <= phi and plo >= 0 and phi <= 1, "P(X > Y) inside its interval")
assert(s.cell({}) == "-" and s.cell({0.25}) == "0.250", "a cell of none and of one")
assert(s.cell({5, 5, 5, 5}, "%.1f") == "5.0 [5.0, 5.0]", "a cell with its interval")
local col = s.column({{status = "done", summary = {x = 1}}, {status = "failed", summary = {x = 9}},
                      {status = "done", summary = {x = 3}}}, "x")
assert(#col == 2 and col[1] == 1 and col[2] == 3, "a column of the finished runs only")
-- the unfamiliar-examples spec's hedge: targets 60% IDK + 40% uniform over 10
-- answers; the best constant predictor is the targets themselves (CE 1.59405)
local target, uni = {idk = 0.6}, {}
for i = 1, 10 do target["a" .. i], uni["a" .. i] = 0.04, 1 end
near(s.cross_entropy(target, target), 1.59405, 5e-6, "hedge CE at the optimum")
near(s.cross_entropy(uni, uni), 2.30259, 5e-6, "uniform over 10 answers")
assert(s.cross_entropy(target, uni) == math.huge, "a predictor without IDK")
near(s.kl({a = 3, b = 1}, {a = 3, b = 1}), 0, 1e-15, "kl of equal histograms")
near(s.kl({a = 4}, {b = 4}, 0.5), 0.9 * math.log(9) + 0.1 * math.log(1 / 9), 1e-12, "kl, smoothed")
assert(not pcall(s.kl, {a = -1}, {}), "a negative count")
print("stats ok")
