-- prelude.lua - helpers written in Lua that every recipe's `lathe` module
-- carries: tables and statistics (lathe.stats, lathe.table). Loaded by
-- lua/l_lathe.c from the share directory with the module as its argument.
local lathe = ...
local stats = {}
-- arguments are checked here and blamed on the recipe's line (level 3)
local function nums(t, fn)
  if type(t) ~= 'table' then
    error(string.format('%s: bad argument #1 (a list of numbers expected, got %s)', fn,
      type(t)), 3) end
  for i, x in ipairs(t) do if type(x) ~= 'number' then
    error(string.format('%s: element %d is a %s, not a number', fn, i, type(x)), 3) end end
  return t end
function stats.mean(t) nums(t, 'lathe.stats.mean') local s = 0
  for _, x in ipairs(t) do s = s + x end return #t > 0 and s / #t or 0/0 end
function stats.sem(t) nums(t, 'lathe.stats.sem') local n = #t if n < 2 then return 0 end
  local m, s = stats.mean(t), 0 for _, x in ipairs(t) do s = s + (x - m)^2 end
  return math.sqrt(s / (n - 1)) / math.sqrt(n) end
function stats.iqm(t) -- interquartile mean: mean of the middle 50%
  nums(t, 'lathe.stats.iqm')
  local c = {} for i, x in ipairs(t) do c[i] = x end table.sort(c)
  local n = #c if n == 0 then return 0/0 end
  local lo, hi = n * 0.25, n * 0.75 local s, w = 0, 0
  for i = 1, n do local a, b = math.max(i - 1, lo), math.min(i, hi)
    if b > a then s = s + c[i] * (b - a) w = w + (b - a) end end
  return s / w end
lathe.stats = stats
function lathe.table(header, rows) -- print aligned columns
  if type(header) ~= 'table' or type(rows) ~= 'table' then
    error(string.format('lathe.table: bad arguments (a header list and a list of rows '
      .. 'expected, got %s and %s)', type(header), type(rows)), 2) end
  for i, r in ipairs(rows) do if type(r) ~= 'table' then
    error(string.format('lathe.table: row %d is a %s, not a list', i, type(r)), 2) end end
  local w = {} local function cell(v) if type(v) == 'number' then
    return v == math.floor(v) and math.abs(v) < 1e15 and string.format('%d', v)
      or string.format('%.4g', v) end return tostring(v) end
  local all = {header} for _, r in ipairs(rows) do all[#all + 1] = r end
  for _, r in ipairs(all) do for i, v in ipairs(r) do
    w[i] = math.max(w[i] or 0, #cell(v)) end end
  for k, r in ipairs(all) do local parts = {} for i, v in ipairs(r) do
    local c = cell(v) parts[i] = type(v) == 'number' and string.rep(' ', w[i] - #c) .. c
      or c .. string.rep(' ', w[i] - #c) end print(table.concat(parts, '  '))
    if k == 1 then local d = {} for i = 1, #r do d[i] = string.rep('-', w[i]) end
      print(table.concat(d, '  ')) end end end
