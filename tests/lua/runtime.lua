local h = lathe.run("regress", {steps = 20})
local function boom(t) return t.missing.field end
boom(h)
