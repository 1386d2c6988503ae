lathe.run("regres", {})
