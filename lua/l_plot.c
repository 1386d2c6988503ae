/* l_plot.c - lathe.plot: curves of stored runs as an SVG figure (ui/plot.h). */
#include "l_impl.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "../workbench/error.h"
#include "../ui/plot.h"

const char *opt_str(lua_State *L, int t, const char *k, const char *def) {
  lua_getfield(L, t, k);
  const char *v = lua_isnil(L, -1) ? def : lua_tostring(L, -1);
  if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
    luaL_error(L, "lathe.plot: %s must be a string", k);
  lua_pop(L, 1); /* the string stays alive in the table */
  return v;
}

/* List field k of table t as n numbers (NULL when absent and not required;
 * *n < 0 takes the list's length). The numbers live in a userdata left on
 * the stack. Raises an error naming series i and k when it is not a list of
 * n numbers. */
static double *num_list(lua_State *L, int t, const char *k, int i, int *n, int required) {
  luaL_checkstack(L, 4, "lathe.plot");
  lua_getfield(L, t, k);
  if (lua_isnil(L, -1) && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "lathe.plot: points[%d].%s must be a list of numbers", i, k);
  int m = (int)lua_rawlen(L, -1);
  if (*n < 0) *n = m;
  if (m != *n || m < 1)
    luaL_error(L, "lathe.plot: points[%d].%s has %d numbers, want %d", i, k, m, *n);
  double *v = lua_newuserdatauv(L, m * sizeof *v, 0);
  for (int j = 1; j <= m; j++) {
    lua_rawgeti(L, -2, j);
    if (!lua_isnumber(L, -1))
      luaL_error(L, "lathe.plot: points[%d].%s[%d] is not a number", i, k, j);
    v[j - 1] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, -2);
  return v;
}

/* The points form (see l_plot): the series read from table `list`. */
static int plot_points(lua_State *L, recipe_t *rc, lathe_plot_opts_t *o, int list) {
  int n = (int)lua_rawlen(L, list);
  if (n < 1) luaL_error(L, "lathe.plot: points has no series");
  lathe_plot_points_t *ps = lua_newuserdatauv(L, n * sizeof *ps, 0);
  for (int i = 1; i <= n; i++) {
    luaL_checkstack(L, 8, "lathe.plot");
    lua_rawgeti(L, list, i);
    int item = lua_gettop(L), m = -1;
    luaL_checktype(L, item, LUA_TTABLE);
    ps[i - 1].label = opt_str(L, item, "label", NULL);
    ps[i - 1].x = num_list(L, item, "x", i, &m, 1);
    ps[i - 1].y = num_list(L, item, "y", i, &m, 1);
    ps[i - 1].lo = num_list(L, item, "lo", i, &m, 0);
    ps[i - 1].hi = num_list(L, item, "hi", i, &m, 0);
    ps[i - 1].n = m;
  }
  if (!rc->s->check_only && rc->s->store && lathe_plot_points(ps, n, o))
    luaL_error(L, "%s", lathe_lasterr());
  lua_pushstring(L, o->out);
  return 1;
}

/* The list field `key` of the argument table: numbers, or {KEY=, label=}
 * tables; positions and labels (entries may be NULL) into memory Lua owns
 * until the call returns; their count. */
static int marks(lua_State *L, const char *key, const char *coord, const double **pos,
                 const char *const **labels) {
  lua_getfield(L, 1, key);
  int n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0, t = lua_gettop(L);
  double *v = lua_newuserdatauv(L, (n + 1) * sizeof *v, 0);
  const char **l = lua_newuserdatauv(L, (n + 1) * sizeof *l, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, t, i + 1);
    l[i] = NULL;
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, coord), v[i] = luaL_checknumber(L, -1), lua_pop(L, 1);
      l[i] = opt_str(L, lua_gettop(L), "label", NULL);
    } else
      v[i] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  *pos = v, *labels = l;
  return n;
}

/* lathe.plot{out=, metric=, series={{label=, runs={...}}, ...} | runs={...}, smooth=,
 *            x="step"|"time"|METRIC, logy=, band=, title=, vlines={x | {x=, label=}, ...},
 *            hlines={y | {y=, label=}, ...}} -> out
 * or, for given points (a result against data scale; metric names the y axis),
 * lathe.plot{out=, metric=, points={{label=, x={...}, y={...}, lo=, hi=}, ...},
 *            logx=, logy=, xlabel=, title=} -> out
 */
static int l_plot(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lathe_plot_opts_t o = {0};
  o.out = opt_str(L, 1, "out", NULL), o.metric = opt_str(L, 1, "metric", NULL);
  o.title = opt_str(L, 1, "title", NULL), o.band = opt_str(L, 1, "band", NULL);
  const char *x = opt_str(L, 1, "x", "step");
  if (!o.out || !o.metric) luaL_error(L, "lathe.plot: out= and metric= are required");
  o.xtime = !strcmp(x, "time");
  if (strcmp(x, "step") && !o.xtime) o.xmetric = x; /* another metric */
  lua_getfield(L, 1, "smooth"), o.smooth = luaL_optnumber(L, -1, 0), lua_pop(L, 1);
  lua_getfield(L, 1, "logy"), o.logy = lua_toboolean(L, -1), lua_pop(L, 1);
  lua_getfield(L, 1, "points");
  if (lua_istable(L, -1)) {
    lua_getfield(L, 1, "logx"), o.logx = lua_toboolean(L, -1), lua_pop(L, 1);
    o.xlabel = opt_str(L, 1, "xlabel", NULL);
    return plot_points(L, rc, &o, lua_gettop(L));
  }
  lua_pop(L, 1);
  /* series: explicit groups, or one series per run */
  lua_getfield(L, 1, "series");
  int grouped = lua_istable(L, -1);
  if (!grouped) {
    lua_pop(L, 1);
    lua_getfield(L, 1, "runs");
    if (!lua_istable(L, -1)) luaL_error(L, "lathe.plot: series= or runs= is required");
  }
  int list = lua_gettop(L), n = (int)lua_rawlen(L, list), total = 0;
  if (n < 1) luaL_error(L, "lathe.plot: no runs to plot");
  lathe_plot_series_t *ser = lua_newuserdatauv(L, n * sizeof *ser, 0);
  uint32_t *ids = NULL;
  for (int pass = 0; pass < 2; pass++) { /* count, then fill */
    int k = 0;
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, list, i);
      int item = lua_gettop(L);
      if (grouped) {
        luaL_checktype(L, item, LUA_TTABLE);
        lua_getfield(L, item, "runs");
        if (!lua_istable(L, -1)) luaL_error(L, "lathe.plot: series[%d].runs must be a list", i);
        int m = (int)lua_rawlen(L, -1);
        if (m < 1) luaL_error(L, "lathe.plot: series[%d] has no runs", i);
        if (pass) {
          ser[i - 1].runs = ids + k, ser[i - 1].nruns = m;
          ser[i - 1].label = opt_str(L, item, "label", NULL);
          for (int j = 1; j <= m; j++) {
            lua_rawgeti(L, -1, j);
            ids[k + j - 1] = run_id_at(L, -1, "lathe.plot", "a series entry");
            lua_pop(L, 1);
          }
        }
        k += m;
        lua_pop(L, 1);
      } else {
        if (pass) {
          ids[k] = run_id_at(L, item, "lathe.plot", "a runs entry");
          ser[i - 1] = (lathe_plot_series_t){NULL, ids + k, 1};
        }
        k++;
      }
      lua_pop(L, 1);
    }
    if (!pass) total = k, ids = lua_newuserdatauv(L, total * sizeof *ids, 0);
  }
  /* marked x positions and reference levels */
  o.nvlines = marks(L, "vlines", "x", &o.vlines, &o.vlabels);
  o.nhlines = marks(L, "hlines", "y", &o.hlines, &o.hlabels);
  (void)total;
  if (rc->s->check_only || !rc->s->store) { /* lathe check: arguments checked, nothing drawn */
    lua_pushstring(L, o.out);
    return 1;
  }
  if (lathe_plot(rc->s->store, ser, n, &o)) luaL_error(L, "%s", lathe_lasterr());
  lua_pushstring(L, o.out);
  return 1;
}

void l_plot_open(lua_State *L) {
  lua_pushcfunction(L, l_plot), lua_setfield(L, -2, "plot");
}
