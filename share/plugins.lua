-- The built-in plugins, declared the way a user declares their own:
-- lathe.register{name = ..., so = ...} with `so` relative to the plugin
-- directory (`lathe doctor` prints it). Loading is lazy: a plugin's shared
-- object is opened the first time a run, `lathe plugins` or another plugin
-- asks for it.
lathe.register{name = "regress", so = "regress.so"}
lathe.register{name = "cartpole", so = "cartpole.so"}
lathe.register{name = "acrobot", so = "acrobot.so"}
lathe.register{name = "mountaincar", so = "mountaincar.so"}
lathe.register{name = "pendulum", so = "pendulum.so"}
lathe.register{name = "dqn", so = "dqn.so"}
lathe.register{name = "bandit", so = "bandit.so"}
lathe.register{name = "length", so = "length.so"}
lathe.register{name = "pref", so = "pref.so"}
lathe.register{name = "sft", so = "sft.so"}
lathe.register{name = "pointmaze", so = "pointmaze.so"}
lathe.register{name = "mazedata", so = "mazedata.so"}
lathe.register{name = "sac", so = "calql.so"}
lathe.register{name = "cql", so = "calql.so"}
lathe.register{name = "calql", so = "calql.so"}
lathe.register{name = "prefworld", so = "prefworld.so"}
lathe.register{name = "taskprefs", so = "taskprefs.so"}
lathe.register{name = "rm", so = "rm.so"}
lathe.register{name = "rrm", so = "rm.so"}
lathe.register{name = "arith", so = "arith.so"}
lathe.register{name = "stepvalue", so = "stepneg.so"}
lathe.register{name = "stepneg", so = "stepneg.so"}
lathe.register{name = "scenes", so = "pr2l.so"}
lathe.register{name = "pr2l", so = "pr2l.so"}
lathe.register{name = "pr2lprobe", so = "pr2l.so"}
lathe.register{name = "twentyq", so = "games.so"}
lathe.register{name = "guessnum", so = "games.so"}
lathe.register{name = "guesscity", so = "games.so"}
lathe.register{name = "gameplay", so = "games.so"}
lathe.register{name = "archer", so = "archer.so"}
lathe.register{name = "factsworld", so = "facts.so"}
lathe.register{name = "factqa", so = "facts.so"}
lathe.register{name = "factrl", so = "facts.so"}
