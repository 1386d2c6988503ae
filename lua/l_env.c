/* l_env.c - environments from Lua: lathe.env(name, {opts}) returns a
 * lathe.Env (reset, set_state, step, spaces, close; closed by __gc/__close).
 * A text environment's Env resets to text, steps with a string, and adds
 * info(gamma) and set_hidden(i) (hidden_count()). */
#include "l_impl.h"

#include <lauxlib.h>
#include <math.h>
#include <lua.h>
#include <string.h>

#include "../workbench/error.h"

/* ---- environments from Lua: lathe.env(name, {opts}) ----------------------------- */

typedef struct {
  lathe_child_t *e; /* NULL once closed */
  int nobs, nact, discrete;
  int was_reset; /* step() before the first reset() is an error, as in Gymnasium */
  int text;      /* a text environment (textenv) */
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
  if (v->e->p->kind != LATHE_ENVIRONMENT && v->e->p->kind != LATHE_TEXTENV) {
    const char *kind = lathe_kind_name(v->e->p->kind);
    lathe_instance_free(v->e);
    v->e = NULL;
    luaL_error(L, "lathe.env: '%s' is not an environment (kind: %s)", name, kind);
  }
  if ((v->text = v->e->p->kind == LATHE_TEXTENV)) return 1;
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
  if (v->text) {
    const char *o = NULL;
    if (v->e->p->textenv->reset(v->e->self, lathe_host(), &v->e->ctx, seed, &o))
      luaL_error(L, "%s", lathe_lasterr());
    v->was_reset = 1;
    lua_pushstring(L, o ? o : "");
    return 1;
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
  if (v->text)
    luaL_error(L, "%s: a text environment has set_hidden(i), not set_state", v->e->p->name);
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
  if (v->text) {
    size_t n;
    const char *u = luaL_checklstring(L, 2, &n), *o = NULL;
    double r;
    int term, trunc;
    if (v->e->p->textenv->step(v->e->self, lathe_host(), &v->e->ctx, u, n, &o, &r, &term, &trunc))
      luaL_error(L, "%s", lathe_lasterr());
    lua_pushstring(L, o ? o : "");
    lua_pushnumber(L, r), lua_pushboolean(L, term), lua_pushboolean(L, trunc);
    return 4;
  }
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

/* env:info(gamma) -> {optimal=, identify=, blind= (each also _undiscounted),
 * max_turns=, max_utterance=} of a text environment (NaN: unknown) */
static int env_info(lua_State *L) {
  lenv_t *v = check_env(L);
  double gamma = luaL_checknumber(L, 2);
  if (!v->text) luaL_error(L, "%s: info() is a text environment's", v->e->p->name);
  if (!(gamma >= 0 && gamma <= 1)) luaL_argerror(L, 2, "gamma must lie in [0, 1]");
  lathe_textenv_info_t in = {NAN, NAN, NAN, NAN, NAN, NAN, 0, 0};
  if (v->e->p->textenv->info && v->e->p->textenv->info(v->e->self, gamma, &in))
    luaL_error(L, "%s", lathe_lasterr());
  lua_createtable(L, 0, 8);
  lua_pushnumber(L, in.optimal), lua_setfield(L, -2, "optimal");
  lua_pushnumber(L, in.optimal_undiscounted), lua_setfield(L, -2, "optimal_undiscounted");
  lua_pushnumber(L, in.identify), lua_setfield(L, -2, "identify");
  lua_pushnumber(L, in.identify_undiscounted), lua_setfield(L, -2, "identify_undiscounted");
  lua_pushnumber(L, in.blind), lua_setfield(L, -2, "blind");
  lua_pushnumber(L, in.blind_undiscounted), lua_setfield(L, -2, "blind_undiscounted");
  lua_pushinteger(L, in.max_turns), lua_setfield(L, -2, "max_turns");
  lua_pushinteger(L, in.max_utterance), lua_setfield(L, -2, "max_utterance");
  return 1;
}

/* env:set_hidden(i) -> obs (an episode about hidden state i, 0-based);
 * env:hidden_count() -> how many there are */
static int hidden(lua_State *L, int count) {
  lenv_t *v = check_env(L);
  const lathe_textenv_t *t = v->text ? v->e->p->textenv : NULL;
  if (!t || !t->set_hidden) luaL_error(L, "%s: no enumerable hidden state", v->e->p->name);
  int64_t n = 0, i = count ? -1 : luaL_checkinteger(L, 2);
  const char *o = NULL;
  if (t->set_hidden(v->e->self, lathe_host(), &v->e->ctx, -1, &n, &o))
    luaL_error(L, "%s", lathe_lasterr());
  if (count) return lua_pushinteger(L, n), 1;
  if (i < 0 || i >= n)
    luaL_argerror(
        L, 2,
        lua_pushfstring(L, "hidden state %I is outside 0..%I", (lua_Integer)i, (lua_Integer)n - 1));
  if (t->set_hidden(v->e->self, lathe_host(), &v->e->ctx, i, &n, &o))
    luaL_error(L, "%s", lathe_lasterr());
  v->was_reset = 1;
  lua_pushstring(L, o ? o : "");
  return 1;
}
static int env_set_hidden(lua_State *L) {
  return hidden(L, 0);
}
static int env_hidden_count(lua_State *L) {
  return hidden(L, 1);
}

static int env_spaces(lua_State *L) {
  lenv_t *v = check_env(L);
  if (v->text) luaL_error(L, "%s: a text environment has no spaces", v->e->p->name);
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

static const luaL_Reg env_methods[] = {{"reset", env_reset},
                                       {"set_state", env_set_state},
                                       {"step", env_step},
                                       {"spaces", env_spaces},
                                       {"info", env_info},
                                       {"set_hidden", env_set_hidden},
                                       {"hidden_count", env_hidden_count},
                                       {"close", env_close},
                                       {NULL, NULL}};

void l_env_open(lua_State *L) {
  luaL_newmetatable(L, "lathe.Env");
  luaL_newlib(L, env_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, env_close), lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, env_close), lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_pushcfunction(L, env_new), lua_setfield(L, -2, "env");
}
