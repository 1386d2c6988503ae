/* l_lathe.c - the `lathe` Lua module and the recipe runner.
 *
 * The recipe's main chunk runs as a coroutine. lathe.run / lathe.wait yield
 * with the set of runs they wait for; when the worker reports that the last of
 * them ended (on_end, on the loop thread), the coroutine is resumed. Every call
 * into Lua goes through resume_recipe(), which turns errors into one message
 * with file:line and a traceback. The module's libraries live one per file:
 * l_runs.c, l_data.c, l_env.c, l_models.c, l_plot.c (l_impl.h), its Lua
 * helpers in share/prelude.lua.
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

#include "../ui/headless.h"
#include "../workbench/nn/nn.h"
#include "../workbench/error.h"
#include "../workbench/registry.h"
#include "l_impl.h"

recipe_t *get_recipe(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "lathe.recipe");
  recipe_t *r = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return r;
}

/* "file:line" of the Lua caller, for messages. */
void where(lua_State *L, char *buf, size_t n) {
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
    snprintf(buf, n, "%s:%d", ar.short_src, ar.currentline);
  else
    snprintf(buf, n, "recipe");
}

/* ---- JSON <-> Lua ---------------------------------------------------------------- */

void push_json(lua_State *L, json_object *o) {
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

json_object *to_json(lua_State *L, int idx, int depth) {
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

static const luaL_Reg lathe_funcs[] = {
    {"register", l_register}, {"opt", l_opt}, {"log", l_log}, {NULL, NULL}};

/* The lathe module: this file's functions, each library's, then the prelude
 * (share/prelude.lua) run with the module as its argument. */
static int open_lathe(lua_State *L) {
  luaL_newlib(L, lathe_funcs);
  l_runs_open(L), l_data_open(L), l_env_open(L), l_models_open(L), l_plot_open(L);
  lua_pushstring(L, LATHE_VERSION), lua_setfield(L, -2, "version");
  lua_pushstring(L, lathe_share_dir()), lua_setfield(L, -2, "share_dir");
  char path[4200];
  snprintf(path, sizeof path, "%s/prelude.lua", lathe_share_dir());
  if (luaL_loadfile(L, path)) return lua_error(L);
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

typedef struct offloop {
  uv_work_t req;
  recipe_t *rc; /* NULL once the recipe has ended (the job is dropped) */
  void (*work)(void *), (*drop)(void *);
  void *job;
} offloop_t;

static void off_work(uv_work_t *w) {
  offloop_t *o = w->data;
  nn_thread_init(); /* the numerics' floating-point mode, as on the run workers */
  o->work(o->job);
}

static void off_after(uv_work_t *w, int status) {
  offloop_t *o = w->data;
  recipe_t *rc = o->rc;
  if (rc) rc->offloop = NULL;
  if (rc && status == 0 && rc->running && !rc->s->signal && !rc->stopped_by) {
    free(o);
    resume_recipe(rc, 0); /* k takes the job */
  } else {
    o->drop(o->job);
    free(o);
  }
  if (rc) maybe_stop(rc);
}

int recipe_offloop(lua_State *L, void (*work)(void *), void (*drop)(void *), void *job,
                   lua_KFunction k) {
  recipe_t *rc = get_recipe(L);
  offloop_t *o = L == rc->co ? calloc(1, sizeof *o) : NULL;
  if (o) {
    o->rc = rc, o->work = work, o->drop = drop, o->job = job, o->req.data = o;
    if (!uv_queue_work(&rc->s->loop, &o->req, off_work, off_after)) {
      rc->offloop = o;
      return lua_yieldk(L, 0, (lua_KContext)job, k);
    }
    free(o);
  }
  work(job); /* not the recipe's coroutine: here and now */
  return k(L, LUA_OK, (lua_KContext)job);
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
  if (rc.offloop) rc.offloop->rc = NULL; /* still computing (a signal): dropped when done */
  luaL_unref(rc.L, LUA_REGISTRYINDEX, rc.co_ref);
  lua_close(rc.L);
  free(rc.waiting);
  s->lua = NULL;
  s->on_end = NULL;
  return result;
}
