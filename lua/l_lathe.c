/* l_lathe.c - the `lathe` Lua module and the recipe runner.
 *
 * The recipe's main chunk runs as a coroutine. lathe.run / lathe.wait yield
 * with the set of runs they wait for; when the worker reports that the last of
 * them ended (on_end, on the loop thread), the coroutine is resumed. Every call
 * into Lua goes through resume_recipe(), which turns errors into one message
 * with file:line and a traceback.
 */
#include "l_lathe.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/dataset.h"
#include "../ui/headless.h"
#include "../ui/plot.h"
#include "../workbench/nn/lm.h"
#include "../workbench/nn/rm.h"
#include "../workbench/error.h"
#include "../workbench/registry.h"

typedef struct recipe {
  lathe_session_t *s;
  lua_State *L, *co;
  int co_ref;
  int running; /* coroutine alive (suspended or running) */
  lathe_run_t **waiting;
  int nwaiting;
  int err; /* first failure code */
  char errmsg[4096];
  int err_code_hint; /* set by C functions before raising a Lua error */
  int stopped_by;    /* SIGINT/SIGTERM seen by the count hook */
} recipe_t;

static recipe_t *get_recipe(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "lathe.recipe");
  recipe_t *r = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return r;
}

/* "file:line" of the Lua caller, for messages. */
static void where(lua_State *L, char *buf, size_t n) {
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
    snprintf(buf, n, "%s:%d", ar.short_src, ar.currentline);
  else
    snprintf(buf, n, "recipe");
}

/* ---- JSON <-> Lua ---------------------------------------------------------------- */

static void push_json(lua_State *L, json_object *o) {
  switch (json_object_get_type(o)) {
  case json_type_null:
    lua_pushnil(L);
    break;
  case json_type_boolean:
    lua_pushboolean(L, json_object_get_boolean(o));
    break;
  case json_type_int:
    lua_pushinteger(L, json_object_get_int64(o));
    break;
  case json_type_double:
    lua_pushnumber(L, json_object_get_double(o));
    break;
  case json_type_string:
    lua_pushstring(L, json_object_get_string(o));
    break;
  case json_type_array:
    lua_createtable(L, (int)json_object_array_length(o), 0);
    for (size_t i = 0; i < json_object_array_length(o); i++) {
      push_json(L, json_object_array_get_idx(o, i));
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  case json_type_object:
    lua_newtable(L);
    json_object_object_foreach(o, k, v) {
      push_json(L, v);
      lua_setfield(L, -2, k);
    }
    break;
  }
}

static json_object *to_json(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    return json_object_new_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return json_object_new_int64(lua_tointeger(L, idx));
    return json_object_new_double(lua_tonumber(L, idx));
  case LUA_TSTRING:
    return json_object_new_string(lua_tostring(L, idx));
  case LUA_TTABLE: {
    if (depth > 32) return NULL;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n > 0) {
      json_object *a = json_object_new_array();
      for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        json_object_array_add(a, to_json(L, -1, depth + 1));
        lua_pop(L, 1);
      }
      return a;
    }
    json_object *o = json_object_new_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      if (lua_type(L, -2) == LUA_TSTRING)
        json_object_object_add(o, lua_tostring(L, -2), to_json(L, -1, depth + 1));
      lua_pop(L, 1);
    }
    return o;
  }
  default:
    return NULL;
  }
}

/* ---- run handles ----------------------------------------------------------------- */

/* Set id, plugin, status, step, summary, error on the table at idx. */
static void fill_handle(lua_State *L, int idx, lathe_run_t *r) {
  idx = lua_absindex(L, idx);
  lua_pushinteger(L, r->id), lua_setfield(L, idx, "id");
  lua_pushstring(L, r->plugin->name), lua_setfield(L, idx, "plugin");
  lua_pushinteger(L, (lua_Integer)r->seed), lua_setfield(L, idx, "seed");
  if (r->sess->check_only) {
    /* every run reads as done, at step 0 */
    lua_pushstring(L, "done"), lua_setfield(L, idx, "status");
    lua_pushinteger(L, 0), lua_setfield(L, idx, "step");
    /* results read as 0 so the rest of the recipe can be checked too */
    if (luaL_dostring(L, "return setmetatable({}, {__index = function() return 0 end})"))
      lua_pushnil(L);
    lua_setfield(L, idx, "summary");
    return;
  }
  lua_pushstring(L, lathe_status_name(atomic_load(&r->status)));
  lua_setfield(L, idx, "status");
  pthread_mutex_lock(&r->sess->mu);
  json_object *rec = r->record ? json_tokener_parse(r->record) : NULL;
  pthread_mutex_unlock(&r->sess->mu);
  json_object *v;
  if (rec && json_object_object_get_ex(rec, "step", &v))
    lua_pushinteger(L, json_object_get_int64(v)), lua_setfield(L, idx, "step");
  if (rec && json_object_object_get_ex(rec, "summary", &v))
    push_json(L, v);
  else
    lua_newtable(L);
  lua_setfield(L, idx, "summary");
  if (rec && json_object_object_get_ex(rec, "config", &v))
    push_json(L, v), lua_setfield(L, idx, "config");
  json_object *b, *bv; /* the main metric's best and its step */
  if (rec && json_object_object_get_ex(rec, "best", &b) &&
      json_object_object_get_ex(b, "value", &bv)) {
    lua_pushnumber(L, json_object_get_double(bv)), lua_setfield(L, idx, "best");
    if (json_object_object_get_ex(b, "step", &bv))
      lua_pushinteger(L, json_object_get_int64(bv)), lua_setfield(L, idx, "best_step");
  }
  if (rec && json_object_object_get_ex(rec, "main_metric", &v))
    lua_pushstring(L, json_object_get_string(v)), lua_setfield(L, idx, "main_metric");
  if (r->errmsg[0]) lua_pushstring(L, r->errmsg), lua_setfield(L, idx, "error");
  json_object_put(rec);
}

static lathe_run_t *find_run(lathe_session_t *s, uint32_t id) {
  for (int i = 0; i < s->nruns; i++)
    if (s->runs[i]->id == id) return s->runs[i];
  return NULL;
}

/* Create and start a run from (plugin, config) at stack 1, 2; push a handle. */
static lathe_run_t *start_run(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  const char *plugin = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  char at[256];
  where(L, at, sizeof at);
  const char *keys[256], *vals[256];
  char valbuf[256][64];
  int n = 0;
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (n == 256) luaL_error(L, "config of %s has too many keys", plugin);
      if (lua_type(L, -2) != LUA_TSTRING) {
        rc->err_code_hint = LATHE_ECONFIG;
        luaL_error(L, "%s: config keys must be strings", plugin);
      }
      keys[n] = lua_tostring(L, -2);
      switch (lua_type(L, -1)) {
      case LUA_TBOOLEAN:
        vals[n] = lua_toboolean(L, -1) ? "true" : "false";
        break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, -1))
          snprintf(valbuf[n], 64, "%lld", (long long)lua_tointeger(L, -1));
        else
          snprintf(valbuf[n], 64, "%.17g", lua_tonumber(L, -1));
        vals[n] = valbuf[n];
        break;
      case LUA_TSTRING:
        vals[n] = lua_tostring(L, -1);
        break;
      default:
        rc->err_code_hint = LATHE_ECONFIG;
        luaL_error(L, "%s: config key '%s' has a %s value (want number, string or bool)", plugin,
                   keys[n], luaL_typename(L, -1));
      }
      n++;
      lua_pop(L, 1); /* keys stay referenced by the table at 2 */
    }
  }
  lathe_run_t *r;
  int err = lathe_run_new(rc->s, plugin, keys, vals, n, at, &r);
  if (!err) err = lathe_run_start(r);
  if (err) { /* the message already names file:line */
    rc->err_code_hint = err;
    lua_pushstring(L, lathe_lasterr());
    lua_error(L);
  }
  lua_newtable(L);
  fill_handle(L, -1, r);
  return r;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx);

/* Yield until every run in rc->waiting has ended (unless already). */
static int wait_for(lua_State *L, int nresults_from) {
  recipe_t *rc = get_recipe(L);
  if (L != rc->co) /* a yield there would return to the recipe's coroutine.wrap, not the loop */
    luaL_error(L, "lathe.wait and lathe.run must be called from the recipe itself, not from inside "
                  "coroutine.wrap or coroutine.create (use lathe.spawn there, and wait outside)");
  int pending = 0;
  for (int i = 0; i < rc->nwaiting; i++) pending |= lathe_run_active(rc->waiting[i]);
  if (!pending || rc->s->check_only) return wait_k(L, LUA_OK, nresults_from);
  return lua_yieldk(L, 0, nresults_from, wait_k);
}

/* After the wait: refresh the handle tables from index ctx on, return them. */
static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  recipe_t *rc = get_recipe(L);
  int first = (int)ctx, top = lua_gettop(L);
  for (int i = first; i <= top; i++) {
    if (!lua_istable(L, i)) continue;
    lua_getfield(L, i, "id");
    lathe_run_t *r = find_run(rc->s, (uint32_t)lua_tointeger(L, -1));
    lua_pop(L, 1);
    if (r) fill_handle(L, i, r);
  }
  rc->nwaiting = 0;
  return top - first + 1;
}

static int l_run(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  lathe_run_t *r = start_run(L);
  rc->waiting = realloc(rc->waiting, sizeof *rc->waiting);
  rc->waiting[0] = r, rc->nwaiting = 1;
  return wait_for(L, lua_gettop(L));
}

static int l_spawn(lua_State *L) {
  start_run(L);
  return 1;
}

static int l_wait(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  /* lathe.wait{h1, h2} or lathe.wait(h1, h2) */
  if (lua_gettop(L) == 1 && lua_istable(L, 1) && lua_rawlen(L, 1) > 0) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    luaL_checkstack(L, (int)n + 4, "lathe.wait: too many runs"); /* room for every handle */
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, 1, i);
    lua_remove(L, 1);
  }
  int n = lua_gettop(L);
  rc->waiting = realloc(rc->waiting, (n ? n : 1) * sizeof *rc->waiting);
  rc->nwaiting = 0;
  for (int i = 1; i <= n; i++) {
    luaL_checktype(L, i, LUA_TTABLE);
    lua_getfield(L, i, "id");
    lathe_run_t *r = find_run(rc->s, (uint32_t)lua_tointeger(L, -1));
    lua_pop(L, 1);
    if (!r) luaL_argerror(L, i, "not a run handle of this recipe");
    rc->waiting[rc->nwaiting++] = r;
  }
  return wait_for(L, 1);
}

static int l_register(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "name");
  lua_getfield(L, 1, "so");
  const char *name = lua_tostring(L, -2), *so = lua_tostring(L, -1);
  char at[256];
  where(L, at, sizeof at);
  if (!so) luaL_error(L, "lathe.register: 'so' (the shared object) is required");
  if (lathe_registry_add(name, so, at)) {
    recipe_t *rc = get_recipe(L);
    if (rc) rc->err_code_hint = lathe_lasterr_code();
    luaL_error(L, "%s", lathe_lasterr());
  }
  return 0;
}

/* lathe.opt(name, default): the value of --set name=..., typed like default. */
static int l_opt(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  const char *name = luaL_checkstring(L, 1);
  size_t len = strlen(name);
  for (int i = rc->s->nsets - 1; i >= 0; i--) {
    const char *kv = rc->s->sets[i];
    if (strncmp(kv, name, len) || kv[len] != '=') continue;
    const char *val = kv + len + 1;
    rc->s->set_used[i] = 2;
    switch (lua_type(L, 2)) {
    case LUA_TNUMBER: {
      char *end;
      double x = strtod(val, &end);
      if (end == val || *end || isnan(x)) {
        rc->err_code_hint = LATHE_ECONFIG;
        luaL_error(L, "--set %s: '%s' is not a number", name, val);
      }
      if (lua_isinteger(L, 2)) { /* range-checked before it becomes an integer */
        if (!(fabs(x) < 9007199254740992.0) || x != floor(x)) {
          rc->err_code_hint = LATHE_ECONFIG;
          luaL_error(L, "--set %s: '%s' is not an integer (within +-2^53)", name, val);
        }
        lua_pushinteger(L, (lua_Integer)x);
      } else
        lua_pushnumber(L, x);
      return 1;
    }
    case LUA_TBOOLEAN:
      lua_pushboolean(L, !strcmp(val, "true") || !strcmp(val, "1"));
      return 1;
    default:
      lua_pushstring(L, val);
      return 1;
    }
  }
  lua_settop(L, 2);
  return 1;
}

typedef struct {
  lua_State *L;
  int n;
} pts_args;
static int push_point(uint64_t step, double value, double time, void *arg) {
  pts_args *a = arg;
  a->n++;
  lua_pushinteger(a->L, (lua_Integer)step), lua_rawseti(a->L, -4, a->n);
  lua_pushnumber(a->L, value), lua_rawseti(a->L, -3, a->n);
  lua_pushnumber(a->L, time), lua_rawseti(a->L, -2, a->n);
  return 0;
}
typedef struct {
  uint32_t id;
  const char *name;
  pts_args pa;
} metric_args;
static int metric_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  metric_args *a = arg;
  char *rec;
  int rc = lathe_store_run_get(st, txn, a->id, &rec);
  if (rc) return rc == LATHE_ENOTFOUND ? lathe_seterr(rc, "no run %u in the store", a->id) : rc;
  free(rec);
  return lathe_store_metric_each(st, txn, a->id, a->name, push_point, &a->pa);
}

static uint32_t run_id_at(lua_State *L, int idx, const char *fn, const char *what);

/* lathe.metrics(run, name) -> steps, values, times; raises for a missing run */
static int l_metrics(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  uint32_t id = run_id_at(L, 1, "lathe.metrics", "argument #1");
  if (lua_type(L, 2) != LUA_TSTRING) luaL_argerror(L, 2, "a metric name (a string) expected");
  const char *name = lua_tostring(L, 2);
  lua_newtable(L), lua_newtable(L), lua_newtable(L);
  if (!rc->s->store || rc->s->check_only) return 3;
  metric_args a = {id, name, {L, 0}};
  if (lathe_store_read(rc->s->store, metric_txn, &a))
    luaL_error(L, "lathe.metrics: %s", lathe_lasterr());
  return 3;
}

/* a run given as a handle table or an id */
static uint32_t run_id_at(lua_State *L, int idx, const char *fn, const char *what) {
  uint32_t id = 0;
  if (get_recipe(L)->s->check_only && (lua_istable(L, idx) || lua_isinteger(L, idx)))
    return 0; /* lathe check: handles have no ids yet */
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "id");
    id = (uint32_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
  } else if (lua_isinteger(L, idx))
    id = (uint32_t)lua_tointeger(L, idx);
  if (!id) luaL_error(L, "%s: %s is not a run (a handle or an id)", fn, what);
  return id;
}

static const char *opt_str(lua_State *L, int t, const char *k, const char *def) {
  lua_getfield(L, t, k);
  const char *v = lua_isnil(L, -1) ? def : lua_tostring(L, -1);
  if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
    luaL_error(L, "lathe.plot: %s must be a string", k);
  lua_pop(L, 1); /* the string stays alive in the table */
  return v;
}

/* lathe.plot{out=, metric=, series={{label=, runs={...}}, ...} | runs={...}, smooth=,
 *            x="step"|"time"|METRIC, logy=, band=, title=, vlines={x | {x=, label=}, ...}} -> out
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
  /* marked x positions */
  lua_getfield(L, 1, "vlines");
  int nv = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0, vt = lua_gettop(L);
  double *vx = lua_newuserdatauv(L, (nv + 1) * sizeof *vx, 0);
  const char **vl = lua_newuserdatauv(L, (nv + 1) * sizeof *vl, 0);
  for (int i = 0; i < nv; i++) {
    lua_rawgeti(L, vt, i + 1);
    vl[i] = NULL;
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "x"), vx[i] = luaL_checknumber(L, -1), lua_pop(L, 1);
      vl[i] = opt_str(L, lua_gettop(L), "label", NULL);
    } else
      vx[i] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  o.vlines = vx, o.vlabels = vl, o.nvlines = nv;
  (void)total;
  if (rc->s->check_only || !rc->s->store) { /* lathe check: arguments checked, nothing drawn */
    lua_pushstring(L, o.out);
    return 1;
  }
  if (lathe_plot(rc->s->store, ser, n, &o)) luaL_error(L, "%s", lathe_lasterr());
  lua_pushstring(L, o.out);
  return 1;
}

/* lathe.sample(model, prompts, {max_tokens=, temperature=, top_k=, top_p=, seed=}):
 * continue each prompt with the model in a run's newest checkpoint (an sft or
 * pref run). Text models take and return strings (stopping at <eos>); task
 * models, which have no tokenizer, take and return lists of token ids. */
static int l_sample(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  uint32_t id = run_id_at(L, 1, "lathe.sample", "argument #1 (the model's run)");
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2);
  nn_gen_t g = {1.0f, 0, 1.0f, NULL, 0, 0};
  int max_new = 64;
  uint64_t seed = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "temperature"), g.temperature = (float)luaL_optnumber(L, -1, 1);
    lua_getfield(L, 3, "top_k"), g.top_k = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 3, "top_p"), g.top_p = (float)luaL_optnumber(L, -1, 1);
    lua_getfield(L, 3, "max_tokens"), max_new = (int)luaL_optinteger(L, -1, 64);
    lua_getfield(L, 3, "seed"), seed = (uint64_t)luaL_optinteger(L, -1, 0);
    lua_pop(L, 5);
  }
  if (max_new < 1 || g.temperature < 0 || g.top_k < 0 || !(g.top_p > 0 && g.top_p <= 1))
    luaL_error(L, "lathe.sample: max_tokens >= 1, temperature >= 0, top_k >= 0, 0 < top_p <= 1");
  lua_newtable(L);
  if (rc->s->check_only || !rc->s->store || !n) return 1;
  lathe_buf_t b = {0};
  char plugin[64];
  if (lathe_run_state(rc->s->store, id, &b, plugin))
    luaL_error(L, "lathe.sample: %s", lathe_lasterr());
  nn_tok_t tok;
  nn_gpt_t gpt;
  int has, err = nn_lm_load(&tok, &has, &gpt, &b);
  lathe_buf_free(&b);
  if (err) luaL_error(L, "lathe.sample: run %d (%s) holds no model", (int)id, plugin);
  int T = gpt.cfg.ctx, *prompt = calloc((size_t)n * T, sizeof *prompt);
  int *plen = calloc(n, sizeof *plen), *out = calloc((size_t)n * max_new, sizeof *out);
  int *olen = calloc(n, sizeof *olen), stop = NN_TOK_EOS;
  char *text = NULL;
  const char *why = !prompt || !plen || !out || !olen ? "out of memory" : NULL;
  for (int i = 0; i < n && !why; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (has && lua_isstring(L, -1)) { /* keep the end of a long prompt, as training did */
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      int k = nn_tok_encode(&tok, s, len, NULL, 0), *all = malloc(((size_t)k + 1) * sizeof *all);
      if (!all)
        why = "out of memory";
      else {
        nn_tok_encode(&tok, s, len, all, k);
        plen[i] = k < T - 1 ? k : T - 1;
        memcpy(prompt + (size_t)i * T, all + (k - plen[i]), (size_t)plen[i] * sizeof *all);
        free(all);
      }
    } else if (!has && lua_istable(L, -1)) {
      plen[i] = (int)lua_rawlen(L, -1) < T - 1 ? (int)lua_rawlen(L, -1) : T - 1;
      for (int t = 0; t < plen[i]; t++) {
        lua_rawgeti(L, -1, t + 1);
        int v = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (v < 0 || v >= gpt.cfg.vocab) why = "a prompt token is outside the model's vocabulary";
        prompt[(size_t)i * T + t] = v;
      }
    } else
      why = has ? "prompts must be strings for a text model"
                : "prompts must be lists of token ids (this model has no tokenizer)";
    if (!why && plen[i] < 1) why = "an empty prompt";
    lua_pop(L, 1);
  }
  if (has) g.stop = &stop, g.nstop = 1;
  nn_rng_t r;
  nn_rng_seed(&r, seed);
  if (!why && nn_lm_generate(&gpt, prompt, plen, n, T, max_new, &g, &r, out, olen))
    why = "generation failed (out of memory)";
  if (!why && has && !(text = malloc((size_t)max_new * 64 + 1))) why = "out of memory";
  for (int i = 0; i < n && !why; i++) {
    if (has) {
      int k =
          olen[i] && out[(size_t)i * max_new + olen[i] - 1] == NN_TOK_EOS ? olen[i] - 1 : olen[i];
      size_t len =
          nn_tok_decode(&tok, out + (size_t)i * max_new, k, text, (size_t)max_new * 64 + 1);
      lua_pushlstring(L, text, len);
    } else {
      lua_createtable(L, olen[i], 0);
      for (int t = 0; t < olen[i]; t++)
        lua_pushinteger(L, out[(size_t)i * max_new + t]), lua_rawseti(L, -2, t + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  free(prompt), free(plen), free(out), free(olen), free(text);
  nn_tok_free(&tok), nn_gpt_free(&gpt);
  if (why) luaL_error(L, "lathe.sample: %s", why);
  return 1;
}

/* lathe.score(run, {{prompt = P, responses = {R1, R2, ...}}, ...}): a reward
 * model's scores of every response, a list per item. Bradley-Terry: r(P, R);
 * pairwise: the mean symmetrised P(R beats R') over the item's other
 * responses (a round robin). The model is read once per call. */
static int l_score(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  uint32_t id = run_id_at(L, 1, "lathe.score", "argument #1 (the reward model's run)");
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2), total = 0;
  for (int i = 1; i <= n; i++) { /* check the shape before any work */
    lua_rawgeti(L, 2, i);
    if (!lua_istable(L, -1)) luaL_error(L, "lathe.score: item %d is not a table", i);
    lua_getfield(L, -1, "prompt"), lua_getfield(L, -2, "responses");
    if (!lua_isstring(L, -2) || !lua_istable(L, -1))
      luaL_error(L, "lathe.score: item %d wants prompt (a string) and responses (a list)", i);
    for (int k = 1; k <= (int)lua_rawlen(L, -1); k++, total++) {
      lua_rawgeti(L, -1, k);
      if (!lua_isstring(L, -1))
        luaL_error(L, "lathe.score: item %d response %d is not a string", i, k);
      lua_pop(L, 1);
    }
    lua_pop(L, 3);
  }
  lua_newtable(L);
  if (rc->s->check_only || !rc->s->store || !total) return 1;
  lathe_buf_t b = {0};
  char plugin[64];
  if (lathe_run_state(rc->s->store, id, &b, plugin))
    luaL_error(L, "lathe.score: %s", lathe_lasterr());
  nn_rm_t m;
  int err = nn_rm_load(&m, &b);
  lathe_buf_free(&b);
  if (err) luaL_error(L, "lathe.score: run %d (%s) holds no reward model", (int)id, plugin);
  for (int i = 1; i <= n && !err; i++) {
    lua_rawgeti(L, 2, i), lua_getfield(L, -1, "prompt"), lua_getfield(L, -2, "responses");
    const char *prompt = lua_tostring(L, -2);
    int k = (int)lua_rawlen(L, -1), pushed = 0;
    const char **R = malloc(sizeof *R * (size_t)(k + 1));
    double *out = malloc(sizeof *out * (size_t)(k + 1));
    err = R && out ? 0 : LATHE_ENOMEM;
    for (int j = 0; j < k && !err; j++, pushed++)
      lua_rawgeti(L, -1 - j, j + 1), R[j] = lua_tostring(L, -1);
    if (!err) err = nn_rm_rank(&m, prompt, R, k, out);
    lua_pop(L, pushed);
    lua_createtable(L, k, 0);
    for (int a = 0; a < k && !err; a++) lua_pushnumber(L, out[a]), lua_rawseti(L, -2, a + 1);
    free(R), free(out);
    lua_rawseti(L, -5, i); /* into the result, under item, prompt, responses */
    lua_pop(L, 3);
  }
  nn_rm_free(&m);
  if (err) luaL_error(L, "lathe.score: out of memory");
  return 1;
}

static int push_record(uint32_t id, const char *json, size_t n, void *arg) {
  lua_State *L = arg;
  json_tokener *tok = json_tokener_new();
  json_object *o = json_tokener_parse_ex(tok, json, (int)n);
  json_tokener_free(tok);
  push_json(L, o);
  json_object_put(o);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}
static int runs_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  return lathe_store_run_each(st, txn, push_record, arg);
}
static int l_runs(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  lua_newtable(L);
  if (rc->s->store && lathe_store_read(rc->s->store, runs_txn, L))
    luaL_error(L, "%s", lathe_lasterr());
  return 1;
}

static int l_print(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  if (rc->s->check_only) return 0; /* lathe check: results are placeholders, print nothing */
  (rc->s->on_print ? rc->s->on_print : lathe_headless_print)(rc->s, lua_tostring(L, -1));
  return 0;
}

static int l_log(lua_State *L) {
  int n = lua_gettop(L);
  fputs("lathe: ", stderr);
  for (int i = 1; i <= n; i++) {
    if (i > 1) fputc(' ', stderr);
    fputs(luaL_tolstring(L, i, NULL), stderr);
    lua_pop(L, 1);
  }
  fputc('\n', stderr);
  return 0;
}

/* ---- datasets from Lua ---------------------------------------------------------- */

static int l_data_import(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  const char *file = luaL_checkstring(L, 1), *name = luaL_checkstring(L, 2),
             *schema = luaL_optstring(L, 3, "any");
  int64_t count;
  if (lathe_dataset_import(rc->s->check_only ? NULL : rc->s->store, file, name, schema, &count)) {
    lua_pushnil(L);
    lua_pushstring(L, lathe_lasterr());
    return 2;
  }
  lua_pushinteger(L, count);
  return 1;
}

static int l_data_create(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  const char *name = luaL_checkstring(L, 1), *schema = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  json_object *recs = json_object_new_array();
  lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 3, i);
    json_object_array_add(recs, to_json(L, -1, 0));
    lua_pop(L, 1);
  }
  char at[256];
  where(L, at, sizeof at);
  int err = lathe_dataset_create(rc->s->check_only ? NULL : rc->s->store, name, schema, recs, at);
  json_object_put(recs);
  if (err) {
    lua_pushnil(L);
    lua_pushstring(L, lathe_lasterr());
    return 2;
  }
  lua_pushinteger(L, n);
  return 1;
}

/* A Lua table of plugin options at idx ({maze = "open", noise = 0.5}) as "key=value"
 * strings in buf, pointed to by kv; returns how many. Raises a Lua error naming who
 * for a key that is not a string or more than 64 options. Nothing to free. */
typedef char opt_buf_t[64][256];
static int opts_kv(lua_State *L, int idx, const char *who, opt_buf_t buf, const char *kv[64]) {
  int n = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: option names must be strings", who);
    if (n == 64) luaL_error(L, "%s: more than 64 options", who);
    const char *key = lua_tostring(L, -2);
    if (lua_type(L, -1) == LUA_TNUMBER) /* exact: every float round-trips (17 digits) */
      lua_isinteger(L, -1)
          ? snprintf(buf[n], sizeof buf[n], "%s=%lld", key, (long long)lua_tointeger(L, -1))
          : snprintf(buf[n], sizeof buf[n], "%s=%.17g", key, lua_tonumber(L, -1));
    else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TBOOLEAN)
      snprintf(buf[n], sizeof buf[n], "%s=%s", key, luaL_tolstring(L, -1, NULL)), lua_pop(L, 1);
    else
      luaL_error(L, "%s: option '%s' has a %s value (want number, string or bool)", who, key,
                 luaL_typename(L, -1));
    lua_pop(L, 1); /* the value; the key stays for lua_next */
    kv[n] = buf[n], n++;
  }
  return n;
}

/* lathe.data.generate(name, plugin, {key = value, ...}) -> count, or nil, message */
static int l_data_generate(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  const char *name = luaL_checkstring(L, 1), *plugin = luaL_checkstring(L, 2), *kv[64];
  opt_buf_t buf;
  int nkv = opts_kv(L, 3, "lathe.data.generate", buf, kv);
  int64_t count;
  int err = lathe_dataset_generate(rc->s->check_only ? NULL : rc->s->store, plugin, kv, nkv, name,
                                   &count);
  if (err) {
    lua_pushnil(L);
    lua_pushstring(L, lathe_lasterr());
    return 2;
  }
  lua_pushinteger(L, count);
  return 1;
}

typedef struct {
  const char *name;
  int64_t i;
  lua_State *L;
  int found;
} dget_args;
static int dget_txn(lathe_store_t *st, MDB_txn *txn, void *arg) {
  dget_args *a = arg;
  if (a->i < 0) { /* count */
    int64_t n;
    if (lathe_dataset_count(st, txn, a->name, &n)) return 0;
    lua_pushinteger(a->L, n);
    a->found = 1;
    return 0;
  }
  MDB_val v;
  if (lathe_store_ds_get(st, txn, a->name, (uint64_t)a->i, &v)) return 0;
  json_tokener *tok = json_tokener_new();
  json_object *o = json_tokener_parse_ex(tok, v.mv_data, (int)v.mv_size);
  json_tokener_free(tok);
  push_json(a->L, o);
  json_object_put(o);
  a->found = 1;
  return 0;
}

/* lathe.data.count(name) -> n or nil; lathe.data.get(name, i) (1-based) -> table or nil */
static int l_data_count(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  dget_args a = {luaL_checkstring(L, 1), -1, L, 0};
  if (rc->s->store) lathe_store_read(rc->s->store, dget_txn, &a);
  if (!a.found) lua_pushnil(L);
  return 1;
}
static int l_data_get(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  dget_args a = {luaL_checkstring(L, 1), luaL_checkinteger(L, 2) - 1, L, 0};
  if (a.i >= 0 && rc->s->store) lathe_store_read(rc->s->store, dget_txn, &a);
  if (!a.found) lua_pushnil(L);
  return 1;
}

/* ---- environments from Lua: lathe.env(name, {opts}) ----------------------------- */

typedef struct {
  lathe_child_t *e; /* NULL once closed */
  int nobs, nact, discrete;
  int was_reset; /* step() before the first reset() is an error, as in Gymnasium */
} lenv_t;

static lenv_t *check_env(lua_State *L) {
  lenv_t *v = luaL_checkudata(L, 1, "lathe.Env");
  if (!v->e) luaL_error(L, "environment is closed");
  return v;
}

static void push_obs(lua_State *L, const float *obs, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) lua_pushnumber(L, obs[i]), lua_rawseti(L, -2, i + 1);
}

static int env_new(lua_State *L) {
  const char *name = luaL_checkstring(L, 1), *kv[64];
  opt_buf_t buf;
  int n = lua_istable(L, 2) ? opts_kv(L, 2, "lathe.env", buf, kv) : 0;
  lenv_t *v = lua_newuserdatauv(L, sizeof *v, 0); /* created closed, then opened */
  memset(v, 0, sizeof *v);
  luaL_setmetatable(L, "lathe.Env");
  if (lathe_instance_new(name, kv, n, NULL, &v->e)) luaL_error(L, "lathe.env: %s", lathe_lasterr());
  if (v->e->p->kind != LATHE_ENVIRONMENT) {
    const char *kind = lathe_kind_name(v->e->p->kind);
    lathe_instance_free(v->e);
    v->e = NULL;
    luaL_error(L, "lathe.env: '%s' is not an environment (kind: %s)", name, kind);
  }
  lathe_space_t os, as; /* checked at creation: box spaces within LATHE_SPACE_MAX */
  v->e->p->env->spaces(v->e->self, &os, &as);
  v->nobs = os.n, v->nact = as.n, v->discrete = as.discrete;
  return 1;
}

static int env_reset(lua_State *L) {
  lenv_t *v = check_env(L);
  uint64_t seed = LATHE_NO_SEED;
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_isinteger(L, 2) || lua_tointeger(L, 2) < 0)
      luaL_argerror(L, 2, "the seed must be a non-negative integer (or nil: keep the RNG stream)");
    seed = (uint64_t)lua_tointeger(L, 2);
  }
  float obs[LATHE_SPACE_MAX];
  if (v->e->p->env->reset(v->e->self, lathe_host(), &v->e->ctx, seed, obs))
    luaL_error(L, "%s", lathe_lasterr());
  v->was_reset = 1;
  push_obs(L, obs, v->nobs);
  return 1;
}

static int env_set_state(lua_State *L) {
  lenv_t *v = check_env(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  double st[LATHE_SPACE_MAX];
  int n = (int)lua_rawlen(L, 2);
  if (n > LATHE_SPACE_MAX) luaL_argerror(L, 2, "state too long");
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (lua_type(L, -1) != LUA_TNUMBER) luaL_argerror(L, 2, "state entries must be numbers");
    st[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  float obs[LATHE_SPACE_MAX];
  v->was_reset = 1;
  if (v->e->p->env->set_state(v->e->self, lathe_host(), &v->e->ctx, st, n, obs))
    luaL_error(L, "%s", lathe_lasterr());
  push_obs(L, obs, v->nobs);
  return 1;
}

static int env_step(lua_State *L) {
  lenv_t *v = check_env(L);
  float a[LATHE_SPACE_MAX], obs[LATHE_SPACE_MAX];
  if (!v->was_reset) luaL_error(L, "%s: reset() first (step before any reset)", v->e->p->name);
  if (v->discrete) {
    lua_Integer k = luaL_checkinteger(L, 2);
    if (k < 0 || k >= v->nact)
      luaL_argerror(L, 2, lua_pushfstring(L, "action %I is outside 0..%d", k, v->nact - 1));
    a[0] = (float)k;
  } else if (lua_istable(L, 2)) {
    if ((int)lua_rawlen(L, 2) != v->nact)
      luaL_argerror(L, 2, lua_pushfstring(L, "a box action has %d numbers", v->nact));
    for (int i = 0; i < v->nact; i++) {
      lua_rawgeti(L, 2, i + 1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_argerror(L, 2, lua_pushfstring(L, "entry %d is not a number", i + 1));
      a[i] = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    if (v->nact != 1)
      luaL_argerror(L, 2, lua_pushfstring(L, "a box action has %d numbers", v->nact));
    a[0] = (float)luaL_checknumber(L, 2);
  }
  double r;
  int term, trunc;
  if (v->e->p->env->step(v->e->self, lathe_host(), &v->e->ctx, a, obs, &r, &term, &trunc))
    luaL_error(L, "%s", lathe_lasterr());
  push_obs(L, obs, v->nobs);
  lua_pushnumber(L, r), lua_pushboolean(L, term), lua_pushboolean(L, trunc);
  return 4;
}

static int env_spaces(lua_State *L) {
  lenv_t *v = check_env(L);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, v->nobs), lua_setfield(L, -2, "obs");
  lua_pushinteger(L, v->nact), lua_setfield(L, -2, "actions");
  lua_pushboolean(L, v->discrete), lua_setfield(L, -2, "discrete");
  return 1;
}

static int env_close(lua_State *L) {
  lenv_t *v = luaL_checkudata(L, 1, "lathe.Env");
  lathe_instance_free(v->e);
  v->e = NULL;
  return 0;
}

static const luaL_Reg env_methods[] = {{"reset", env_reset}, {"set_state", env_set_state},
                                       {"step", env_step},   {"spaces", env_spaces},
                                       {"close", env_close}, {NULL, NULL}};

/* Helpers written in Lua: tables and statistics for recipes. */
static const char *prelude =
    "local lathe = ...\n"
    "local stats = {}\n"
    "-- arguments are checked here and blamed on the recipe's line (level 3)\n"
    "local function nums(t, fn)\n"
    "  if type(t) ~= 'table' then\n"
    "    error(string.format('%s: bad argument #1 (a list of numbers expected, got %s)', fn,\n"
    "      type(t)), 3) end\n"
    "  for i, x in ipairs(t) do if type(x) ~= 'number' then\n"
    "    error(string.format('%s: element %d is a %s, not a number', fn, i, type(x)), 3) end end\n"
    "  return t end\n"
    "function stats.mean(t) nums(t, 'lathe.stats.mean') local s = 0\n"
    "  for _, x in ipairs(t) do s = s + x end return #t > 0 and s / #t or 0/0 end\n"
    "function stats.sem(t) nums(t, 'lathe.stats.sem') local n = #t if n < 2 then return 0 end\n"
    "  local m, s = stats.mean(t), 0 for _, x in ipairs(t) do s = s + (x - m)^2 end\n"
    "  return math.sqrt(s / (n - 1)) / math.sqrt(n) end\n"
    "function stats.iqm(t) -- interquartile mean: mean of the middle 50%\n"
    "  nums(t, 'lathe.stats.iqm')\n"
    "  local c = {} for i, x in ipairs(t) do c[i] = x end table.sort(c)\n"
    "  local n = #c if n == 0 then return 0/0 end\n"
    "  local lo, hi = n * 0.25, n * 0.75 local s, w = 0, 0\n"
    "  for i = 1, n do local a, b = math.max(i - 1, lo), math.min(i, hi)\n"
    "    if b > a then s = s + c[i] * (b - a) w = w + (b - a) end end\n"
    "  return s / w end\n"
    "lathe.stats = stats\n"
    "function lathe.table(header, rows) -- print aligned columns\n"
    "  if type(header) ~= 'table' or type(rows) ~= 'table' then\n"
    "    error(string.format('lathe.table: bad arguments (a header list and a list of rows '\n"
    "      .. 'expected, got %s and %s)', type(header), type(rows)), 2) end\n"
    "  for i, r in ipairs(rows) do if type(r) ~= 'table' then\n"
    "    error(string.format('lathe.table: row %d is a %s, not a list', i, type(r)), 2) end end\n"
    "  local w = {} local function cell(v) if type(v) == 'number' then\n"
    "    return v == math.floor(v) and math.abs(v) < 1e15 and string.format('%d', v)\n"
    "      or string.format('%.4g', v) end return tostring(v) end\n"
    "  local all = {header} for _, r in ipairs(rows) do all[#all + 1] = r end\n"
    "  for _, r in ipairs(all) do for i, v in ipairs(r) do\n"
    "    w[i] = math.max(w[i] or 0, #cell(v)) end end\n"
    "  for k, r in ipairs(all) do local parts = {} for i, v in ipairs(r) do\n"
    "    local c = cell(v) parts[i] = type(v) == 'number' and string.rep(' ', w[i] - #c) .. c\n"
    "      or c .. string.rep(' ', w[i] - #c) end print(table.concat(parts, '  '))\n"
    "    if k == 1 then local d = {} for i = 1, #r do d[i] = string.rep('-', w[i]) end\n"
    "      print(table.concat(d, '  ')) end end end\n";

static const luaL_Reg lathe_funcs[] = {
    {"run", l_run},   {"spawn", l_spawn},     {"wait", l_wait},     {"register", l_register},
    {"opt", l_opt},   {"metrics", l_metrics}, {"runs", l_runs},     {"log", l_log},
    {"env", env_new}, {"plot", l_plot},       {"sample", l_sample}, {"score", l_score},
    {NULL, NULL}};
static const luaL_Reg data_funcs[] = {{"import", l_data_import},     {"create", l_data_create},
                                      {"generate", l_data_generate}, {"count", l_data_count},
                                      {"get", l_data_get},           {NULL, NULL}};

static int open_lathe(lua_State *L) {
  luaL_newmetatable(L, "lathe.Env");
  luaL_newlib(L, env_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, env_close), lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, env_close), lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newlib(L, lathe_funcs);
  luaL_newlib(L, data_funcs);
  lua_setfield(L, -2, "data");
  lua_pushstring(L, LATHE_VERSION), lua_setfield(L, -2, "version");
  lua_pushstring(L, lathe_share_dir()), lua_setfield(L, -2, "share_dir");
  if (luaL_loadstring(L, prelude)) return lua_error(L);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  return 1;
}

static lua_State *new_state(recipe_t *rc) {
  lua_State *L = luaL_newstate();
  if (!L) return NULL;
  luaL_openlibs(L);
  lua_pushlightuserdata(L, rc);
  lua_setfield(L, LUA_REGISTRYINDEX, "lathe.recipe");
  luaL_requiref(L, "lathe", open_lathe, 1);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_print);
  lua_setglobal(L, "print");
  return L;
}

static int declare(lua_State *L) {
  char path[4200];
  snprintf(path, sizeof path, "%s/plugins.lua", lathe_share_dir());
  if (luaL_dofile(L, path)) {
    int code = lathe_lasterr_code();
    lathe_seterr(code ? code : LATHE_EPLUGIN, "%s", lua_tostring(L, -1));
    return code ? code : LATHE_EPLUGIN;
  }
  return lathe_registry_add_env();
}

int lathe_declare_builtins(void) {
  static int done;
  if (done) return 0;
  recipe_t rc = {0};
  lua_State *L = new_state(&rc);
  if (!L) return lathe_seterr(LATHE_ENOMEM, "cannot create a Lua state");
  int err = declare(L);
  lua_close(L);
  if (!err) done = 1;
  return err;
}

/* ---- running the recipe ------------------------------------------------------- */

static void fail(recipe_t *rc, int code, const char *msg) {
  if (rc->err) return;
  rc->err = code;
  snprintf(rc->errmsg, sizeof rc->errmsg, "%s", msg);
}

/* Stop the loop once nothing can happen: the recipe ended (or a signal
 * abandoned it) and the worker holds no run. */
static void maybe_stop(recipe_t *rc) {
  if ((!rc->running || rc->s->signal) && lathe_session_active(rc->s) == 0) uv_stop(&rc->s->loop);
}

/* Every 1000 VM instructions: a pending SIGINT/SIGTERM stops a recipe stuck in
 * pure Lua within milliseconds. In the recipe's own coroutine the hook yields
 * (no pcall can catch that) and the recipe is never resumed; in a coroutine
 * it created, it raises, which unwinds back to the recipe's. Runs then
 * checkpoint and stop as for a waiting recipe (exit 130/143). */
static void signal_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  int sig = lathe_signal_pending();
  if (!sig) return;
  recipe_t *rc = get_recipe(L);
  if (rc && L == rc->co) {
    rc->stopped_by = sig;
    lua_yield(L, 0); /* in a hook this returns: the yield happens when the hook does */
    return;
  }
  luaL_error(L, "recipe stopped by %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Resume the coroutine; on error record file:line + traceback. */
static void resume_recipe(recipe_t *rc, int nargs) {
  int nres;
  rc->err_code_hint = 0;
  int st = lua_resume(rc->co, rc->L, nargs, &nres);
  if (st == LUA_YIELD && !rc->stopped_by) {
    lua_pop(rc->co, nres);
    return;
  }
  rc->running = 0;
  if (rc->stopped_by) { /* the signal hook stopped it: not a failure, never resumed */
    lathe_session_signal_seen(rc->s, rc->stopped_by);
    return;
  }
  if (st != LUA_OK) {
    const char *msg = lua_tostring(rc->co, -1);
    luaL_traceback(rc->L, rc->co, msg ? msg : "(error object is not a string)", 0);
    /* configuration, plugin and store errors keep their exit status; any other
     * error at run time is a failed recipe (exit 1) */
    int code = rc->err_code_hint;
    if (code != LATHE_ECONFIG && code != LATHE_ENOPLUGIN && code != LATHE_EPLUGIN &&
        code != LATHE_EAPIVER && code != LATHE_ESTORE)
      code = LATHE_ERUN;
    fail(rc, code, lua_tostring(rc->L, -1));
    lua_pop(rc->L, 1);
    /* runs the recipe started and still running are affected: stop them */
    for (int i = 0; i < rc->s->nruns; i++)
      if (lathe_run_active(rc->s->runs[i]))
        lathe_run_stop(rc->s->runs[i], LATHE_STOP_FAIL, "stopped: the recipe failed");
  }
}

static void on_end(lathe_session_t *s, lathe_run_t *r) {
  recipe_t *rc = s->lua;
  int out = s->signal ? 0 : lathe_run_outcome(r); /* stopped runs are not failures */
  if (out) fail(rc, out, lathe_lasterr());
  if (rc->running && rc->nwaiting && !s->signal) {
    int pending = 0;
    for (int i = 0; i < rc->nwaiting; i++) pending |= lathe_run_active(rc->waiting[i]);
    if (!pending) resume_recipe(rc, 0);
  }
  maybe_stop(rc);
}

int lathe_recipe_run(lathe_session_t *s, const char *path) {
  recipe_t rc = {0};
  rc.s = s;
  s->lua = &rc;
  s->on_end = on_end;
  FILE *f = fopen(path, "rb");
  if (!f) return lathe_seterr(LATHE_ERECIPE, "cannot open recipe %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc(n > 0 ? n : 1);
  if (!text || (n > 0 && fread(text, 1, n, f) != (size_t)n)) {
    fclose(f);
    free(text);
    return lathe_seterr(LATHE_ERECIPE, "cannot read recipe %s", path);
  }
  fclose(f);
  snprintf(s->recipe_path, sizeof s->recipe_path, "%s", path);
  lathe_hash_hex(text, n, s->recipe_hash);
  free(s->recipe_text);
  if ((s->recipe_text = malloc(n > 0 ? n : 1))) memcpy(s->recipe_text, text, n), s->recipe_len = n;
  rc.L = new_state(&rc);
  if (!rc.L) {
    free(text);
    return lathe_seterr(LATHE_ENOMEM, "cannot create a Lua state");
  }
  lua_getglobal(rc.L, "lathe"); /* lathe.checking: true under `lathe check` */
  lua_pushboolean(rc.L, s->check_only), lua_setfield(rc.L, -2, "checking");
  lua_pop(rc.L, 1);
  char chunk[4200];
  snprintf(chunk, sizeof chunk, "@%s", path);
  int err = luaL_loadbufferx(rc.L, text, n, chunk, "t");
  free(text);
  if (err) {
    lathe_seterr(LATHE_ERECIPE, "%s", lua_tostring(rc.L, -1));
    lua_close(rc.L);
    return LATHE_ERECIPE;
  }
  rc.co = lua_newthread(rc.L);
  lua_sethook(rc.co, signal_hook, LUA_MASKCOUNT, 1000); /* threads it creates inherit it */
  rc.co_ref = luaL_ref(rc.L, LUA_REGISTRYINDEX);
  lua_xmove(rc.L, rc.co, 1); /* the chunk */
  rc.running = 1;
  resume_recipe(&rc, 0);
  if (rc.running || lathe_session_active(s)) uv_run(&s->loop, UV_RUN_DEFAULT);
  /* a coroutine still suspended here was abandoned (signal) */
  int result = rc.err;
  if (s->signal) result = LATHE_EINTR;
  if (result)
    lathe_seterr(result, "%s", rc.err ? rc.errmsg : "stopped by a signal");
  else
    lathe_clearerr();
  /* --set keys nobody used are a mistake the user wants to hear about */
  for (int i = 0; !result && i < s->nsets; i++)
    if (!s->set_used[i])
      result =
          lathe_seterr(LATHE_ECONFIG, "--set %s: no run or lathe.opt used this key", s->sets[i]);
  luaL_unref(rc.L, LUA_REGISTRYINDEX, rc.co_ref);
  lua_close(rc.L);
  free(rc.waiting);
  s->lua = NULL;
  s->on_end = NULL;
  return result;
}
