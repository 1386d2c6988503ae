/* l_runs.c - runs from Lua: lathe.run, lathe.spawn, lathe.wait (which yield
 * the recipe until runs end), lathe.runs, lathe.metrics, and run handles. */
#include "l_impl.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>

#include "../workbench/error.h"

/* ---- run handles ----------------------------------------------------------------- */

/* Set id, plugin, status, step, summary, error on the table at idx. */
/* Set id, plugin, status, step, summary, config, best, main_metric, error of
 * run r on the table at idx: what a handle reads. */
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
  /* errmsg is the worker's until the run leaves it (run.h): read it after */
  if (!lathe_run_active(r) && r->errmsg[0])
    lua_pushstring(L, r->errmsg), lua_setfield(L, idx, "error");
  json_object_put(rec);
}

/* Create and start a run from (plugin, config) at stack 1, 2; push a handle. */
/* ---- run handles: userdata "lathe.Run" over a run the session owns ---------- */

typedef struct {
  lathe_run_t *r; /* owned by the session, which outlives the Lua state */
} lrun_t;

static void push_handle(lua_State *L, lathe_run_t *r) {
  lrun_t *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->r = r;
  luaL_setmetatable(L, "lathe.Run");
}

/* The run of the handle at idx, NULL if idx holds none. */
static lathe_run_t *handle_run(lua_State *L, int idx) {
  lrun_t *h = luaL_testudata(L, idx, "lathe.Run");
  return h ? h->r : NULL;
}

/* h.field: read live from the run (its status, step, summary...). */
static int run_index(lua_State *L) {
  lathe_run_t *r = handle_run(L, 1);
  lua_createtable(L, 0, 12);
  fill_handle(L, -1, r);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int run_tostring(lua_State *L) {
  lathe_run_t *r = handle_run(L, 1);
  lua_pushfstring(L, "run %d (%s, %s)", (int)r->id, r->plugin->name,
                  lathe_status_name(atomic_load(&r->status)));
  return 1;
}

/* local h <close> = lathe.spawn(...): leaving the scope (an error included)
 * asks a still-running run to checkpoint and stop. Collection does nothing:
 * a spawned run whose handle is dropped runs on. */
static int run_close(lua_State *L) {
  lathe_run_t *r = handle_run(L, 1);
  if (r && lathe_run_active(r)) lathe_run_stop(r, LATHE_STOP_INTERRUPT, NULL);
  return 0;
}

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
  push_handle(L, r);
  return r;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx);

/* Yield until every run in rc->waiting has ended (unless already). */
int wait_for(lua_State *L, int nresults_from) {
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
/* After the wait: the handles from index ctx on (they read live). */
static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  get_recipe(L)->nwaiting = 0;
  return lua_gettop(L) - (int)ctx + 1;
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
  if (lua_gettop(L) == 1 && lua_istable(L, 1)) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    luaL_checkstack(L, (int)n + 4, "lathe.wait: too many runs"); /* room for every handle */
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, 1, i);
    lua_remove(L, 1);
  }
  int n = lua_gettop(L);
  rc->waiting = realloc(rc->waiting, (n ? n : 1) * sizeof *rc->waiting);
  rc->nwaiting = 0;
  for (int i = 1; i <= n; i++) {
    lathe_run_t *r = handle_run(L, i);
    if (!r) luaL_argerror(L, i, "not a run handle of this recipe");
    rc->waiting[rc->nwaiting++] = r;
  }
  return wait_for(L, 1);
}

/* a run given as a handle table or an id */
uint32_t run_id_at(lua_State *L, int idx, const char *fn, const char *what) {
  uint32_t id = 0;
  lathe_run_t *r = handle_run(L, idx);
  if (get_recipe(L)->s->check_only && (r || lua_istable(L, idx) || lua_isinteger(L, idx)))
    return 0; /* lathe check: handles have no ids yet */
  if (r)
    id = r->id;
  else if (lua_istable(L, idx)) { /* a record from lathe.runs() */
    lua_getfield(L, idx, "id");
    id = (uint32_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
  } else if (lua_isinteger(L, idx))
    id = (uint32_t)lua_tointeger(L, idx);
  if (!id) luaL_error(L, "%s: %s is not a run (a handle or an id)", fn, what);
  return id;
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

static const luaL_Reg funcs[] = {{"run", l_run},   {"spawn", l_spawn},     {"wait", l_wait},
                                 {"runs", l_runs}, {"metrics", l_metrics}, {NULL, NULL}};

void l_runs_open(lua_State *L) {
  luaL_newmetatable(L, "lathe.Run");
  lua_pushcfunction(L, run_index), lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, run_tostring), lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, run_close), lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
