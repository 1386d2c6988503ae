-- The text games from Lua: reference values, a scripted dialogue, the exact
-- value of a scripted policy by enumerating the hidden object. mode "spaces"
-- (a text environment has none) and "run" (a textenv is not an algorithm)
-- are refusals.
local mode = lathe.opt("mode", "play")
if mode == "tables" then -- the built-in tables: ArCHer's 157 objects and 91 cities
  for _, g in ipairs{{"twentyq", {table = "objects"}}, {"guesscity", {}}} do
    local t <close> = lathe.env(g[1], g[2])
    local i = t:info(0.95)
    print(string.format("%s %d: optimal %.6f identify %.6f blind %.6f", g[1], t:hidden_count(),
                        i.optimal, i.identify, i.blind))
  end
  local t <close> = lathe.env("twentyq", {table = lathe.opt("table", "objects")})
  local obs = t:set_hidden(0)
  for _, u in ipairs{"ask category sports ?", "ask round 1 ?", "ask color orange ?", "guess basketball ."} do
    obs = t:step(u)
  end
  print((obs:gsub("\n", "|")))
  return
end
local e <close> = lathe.env("twentyq", {objects = 16, attributes = 4})
if mode == "spaces" then e:spaces() end
if mode == "run" then lathe.run("twentyq", {}) end
local i = e:info(0.95)
print(string.format("twentyq 16/4: optimal %.6f identify %.6f blind %.6f (undiscounted %.2f %.2f %.2f)",
                    i.optimal, i.identify, i.blind, i.optimal_undiscounted,
                    i.identify_undiscounted, i.blind_undiscounted))
local obs = e:reset(1)
local r, term, trunc
for _, u in ipairs{"ask a0 1 ?", "ask a9 0 ?"} do obs, r, term, trunc = e:step(u) end
print((obs:gsub("\n", "|")))
-- ask a0..a3, then guess what the answers spell: exact value over all 16 objects
local total = 0
for h = 0, e:hidden_count() - 1 do
  obs = e:set_hidden(h)
  local o, disc, ret = 0, 1, 0
  for j = 0, 3 do
    obs, r = e:step(string.format("ask a%d 1 ?", j))
    if obs:sub(-4) == "yes\n" then o = o | (1 << j) end
    ret, disc = ret + disc * r, disc * 0.95
  end
  obs, r, term = e:step(string.format("guess o%d .", o))
  assert(term and r == 0, "the spelled object is the hidden one")
  total = total + ret / e:hidden_count()
end
print(string.format("identify policy exact value %.6f", total))
local g <close> = lathe.env("guessnum")
print(string.format("guessnum: optimal %.6f blind %.6f", g:info(0.95).optimal, g:info(0.95).blind))
