lathe.register{name = "hello", so = lathe.opt("so", "")}
local h = lathe.run("hello", {steps = 50, seed = 4})
assert(h.status == "done" and h.step == 50, h.status)
print("hello position", h.summary.position)
