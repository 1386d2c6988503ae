lathe.run("regress", {activation = "sigmoid"})
