lathe.run("dqn", {critic_head = "hl_gauss", v_min = 100, v_max = 0})
