lathe.run("regress", {lr = -1})
