-- one run of the regress plugin; options come from --set / lathe.opt
local h = lathe.run("regress", {seed = lathe.opt("s", 1), steps = lathe.opt("steps", 300),
                                hidden = lathe.opt("hidden", 32), batch = lathe.opt("batch", 32),
                                ckpt_every = lathe.opt("every", 100), log_every = 1,
                                eval_every = 50, nan_at = lathe.opt("nan_at", 0),
                                fail_at = lathe.opt("fail_at", 0)})
print("status", h.status, "step", h.step)
