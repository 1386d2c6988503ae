/* l_data.c - datasets from Lua: the lathe.data library (import, create,
 * generate, count, get). */
#include "l_impl.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/dataset.h"
#include "../workbench/error.h"

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
int opts_kv(lua_State *L, int idx, const char *who, opt_buf_t buf, const char *kv[64]) {
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

/* A lathe.data.generate call's work: copies of its arguments in, the count
 * or the error out (ownership as recipe_offloop's jobs). */
typedef struct {
  lathe_store_t *st;
  char name[256], plugin[256];
  opt_buf_t buf;
  const char *kv[64];
  int nkv, err;
  int64_t count;
  char why[1024];
} gen_job_t;

static void gen_drop(void *p) {
  free(p);
}

static void gen_work(void *p) { /* on a worker thread: the error is this thread's, so copied */
  gen_job_t *j = p;
  j->err = lathe_dataset_generate(j->st, j->plugin, j->kv, j->nkv, j->name, &j->count);
  if (j->err) snprintf(j->why, sizeof j->why, "%s", lathe_lasterr());
}

static int gen_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  gen_job_t *j = (gen_job_t *)ctx;
  if (j->err) {
    lathe_seterr(j->err, "%s", j->why);
    lua_pushnil(L);
    lua_pushstring(L, j->why);
  } else
    lua_pushinteger(L, j->count);
  int n = j->err ? 2 : 1;
  gen_drop(j);
  return n;
}

/* lathe.data.generate(name, plugin, {key = value, ...}) -> count, or nil,
 * message. The generator runs off the loop thread while the recipe waits. */
static int l_data_generate(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  const char *name = luaL_checkstring(L, 1), *plugin = luaL_checkstring(L, 2), *kv[64];
  opt_buf_t buf;
  int nkv = opts_kv(L, 3, "lathe.data.generate", buf, kv); /* may raise: before any allocation */
  if (strlen(name) >= 256 || strlen(plugin) >= 256)
    luaL_error(L, "lathe.data.generate: a name or plugin of over 255 bytes");
  gen_job_t *j = calloc(1, sizeof *j);
  if (!j) luaL_error(L, "lathe.data.generate: out of memory");
  snprintf(j->name, sizeof j->name, "%s", name),
      snprintf(j->plugin, sizeof j->plugin, "%s", plugin);
  memcpy(j->buf, buf, sizeof buf);
  for (int i = 0; i < nkv; i++) j->kv[i] = j->buf[i];
  j->nkv = nkv;
  j->st = rc->s->check_only ? NULL : rc->s->store; /* NULL: only checks the generator */
  return recipe_offloop(L, gen_work, gen_drop, j, gen_k);
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

static const luaL_Reg funcs[] = {{"import", l_data_import},     {"create", l_data_create},
                                 {"generate", l_data_generate}, {"count", l_data_count},
                                 {"get", l_data_get},           {NULL, NULL}};

void l_data_open(lua_State *L) {
  luaL_newlib(L, funcs);
  lua_setfield(L, -2, "data");
}
