lathe.run("regress", {stpes = 20})
