/* l_models.c - models from Lua: lathe.sample continues prompts with a run's
 * language model, lathe.score scores texts with a run's reward model. */
#include "l_impl.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "../workbench/error.h"
#include "../workbench/nn/lm.h"
#include "../workbench/nn/rm.h"

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
  if (!why && nn_lm_generate(&gpt, prompt, plen, n, T, max_new, &g, &r, out, olen, NULL))
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

void l_models_open(lua_State *L) {
  lua_pushcfunction(L, l_sample), lua_setfield(L, -2, "sample");
  lua_pushcfunction(L, l_score), lua_setfield(L, -2, "score");
}
