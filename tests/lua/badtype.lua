lathe.run("regress", {steps = "many"})
