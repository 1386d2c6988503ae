/* l_impl.h - what the files of the `lathe` Lua module share (lua/l_*.c); not
 * a public header (l_lathe.h is). Everything here runs on the loop thread. */
#ifndef LATHE_L_IMPL_H
#define LATHE_L_IMPL_H

#include <json-c/json.h>
#include <lua.h>

#include "l_lathe.h"

typedef struct recipe {
  lathe_session_t *s;
  lua_State *L, *co;
  int co_ref;
  int running; /* coroutine alive (suspended or running) */
  lathe_run_t **waiting;
  int nwaiting;
  int err; /* first failure code */
  char errmsg[4096];
  int err_code_hint;       /* set by C functions before raising a Lua error */
  int stopped_by;          /* SIGINT/SIGTERM seen by the count hook */
  struct offloop *offloop; /* the computation the recipe waits for, if any */
} recipe_t;

/* The recipe a Lua state runs (l_lathe.c). */
recipe_t *get_recipe(lua_State *L);
/* "file:line" of the Lua caller, for messages. */
void where(lua_State *L, char *buf, size_t n);
/* JSON to Lua (pushed) and Lua to JSON (new reference; NULL for what JSON
 * cannot hold, or nesting past 32 levels). */
void push_json(lua_State *L, json_object *o);
json_object *to_json(lua_State *L, int idx, int depth);

/* l_runs.c: the run at idx (a handle, a record of lathe.runs() or an id; 0
 * under lathe check) or a Lua error naming fn and what; yield until every
 * run in the recipe's wait list has ended. */
uint32_t run_id_at(lua_State *L, int idx, const char *fn, const char *what);
int wait_for(lua_State *L, int nresults_from);

/* l_lathe.c: run work(job) off the loop thread (libuv's thread pool) while
 * the recipe's coroutine waits, then continue it with k(L, LUA_OK, job),
 * which takes the job back (frees it) and returns the Lua function's
 * results; the loop meanwhile draws, streams events and steps runs. Called
 * from the recipe's own coroutine only; elsewhere (inside coroutine.wrap)
 * the work runs right here. A job the recipe will never take back (it was
 * stopped meanwhile) goes to drop(job). Returns what k returns (or yields). */
int recipe_offloop(lua_State *L, void (*work)(void *), void (*drop)(void *), void *job,
                   lua_KFunction k);

/* l_plot.c: the string field k of the table at t, or def. */
const char *opt_str(lua_State *L, int t, const char *k, const char *def);

/* l_data.c: the table at idx as "key=value" strings into buf (at most 64). */
typedef char opt_buf_t[64][256];
int opts_kv(lua_State *L, int idx, const char *who, opt_buf_t buf, const char *kv[64]);

/* Each library adds its functions to the module table on top of the stack. */
void l_runs_open(lua_State *L);
void l_data_open(lua_State *L);
void l_env_open(lua_State *L);
void l_models_open(lua_State *L);
void l_plot_open(lua_State *L);

#endif
