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

/* A lathe.sample call's work: the model and prompts in, the continuations
 * out; owned by the call until the recipe takes it back (sample_k), or
 * freed by sample_drop if it never does. */
typedef struct {
  nn_tok_t tok;
  nn_gpt_t gpt;
  int has, n, T, max_new, stop, rc;
  nn_gen_t g;
  uint64_t seed;
  int *prompt, *plen, *out, *olen;
} sample_job_t;

static void sample_drop(void *p) {
  sample_job_t *j = p;
  free(j->prompt), free(j->plen), free(j->out), free(j->olen);
  nn_tok_free(&j->tok), nn_gpt_free(&j->gpt);
  free(j);
}

static void sample_work(void *p) { /* on a worker thread */
  sample_job_t *j = p;
  if (j->has) j->g.stop = &j->stop, j->g.nstop = 1;
  nn_rng_t r;
  nn_rng_seed(&r, j->seed);
  j->rc = nn_lm_generate(&j->gpt, j->prompt, j->plen, j->n, j->T, j->max_new, &j->g, &r, j->out,
                         j->olen, NULL);
}

/* Back in the recipe: the continuations into the result table on top. */
static int sample_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  sample_job_t *j = (sample_job_t *)ctx;
  int max_new = j->max_new;
  char *text = NULL;
  const char *why = j->rc ? "generation failed (out of memory)" : NULL;
  if (!why && j->has && !(text = malloc((size_t)max_new * 64 + 1))) why = "out of memory";
  for (int i = 0; i < j->n && !why; i++) {
    const int *o = j->out + (size_t)i * max_new;
    if (j->has) {
      int k = j->olen[i] && o[j->olen[i] - 1] == NN_TOK_EOS ? j->olen[i] - 1 : j->olen[i];
      size_t len = nn_tok_decode(&j->tok, o, k, text, (size_t)max_new * 64 + 1);
      lua_pushlstring(L, text, len);
    } else {
      lua_createtable(L, j->olen[i], 0);
      for (int t = 0; t < j->olen[i]; t++) lua_pushinteger(L, o[t]), lua_rawseti(L, -2, t + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  free(text);
  sample_drop(j);
  if (why) luaL_error(L, "lathe.sample: %s", why);
  return 1;
}

/* lathe.sample(model, prompts, {max_tokens=, temperature=, top_k=, top_p=, seed=}):
 * continue each prompt with the model in a run's newest checkpoint (an sft or
 * pref run). Text models take and return strings (stopping at <eos>); task
 * models, which have no tokenizer, take and return lists of token ids. The
 * generation runs off the loop thread while the recipe waits (recipe_offloop). */
static int l_sample(lua_State *L) {
  recipe_t *rc = get_recipe(L);
  uint32_t id = run_id_at(L, 1, "lathe.sample", "argument #1 (the model's run)");
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 2);
  nn_gen_t g = {1.0f, 0, 1.0f, NULL, 0, 0, 0};
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
  sample_job_t *j = calloc(1, sizeof *j);
  if (!j) {
    lathe_buf_free(&b);
    luaL_error(L, "lathe.sample: out of memory");
  }
  int err = nn_lm_load(&j->tok, &j->has, &j->gpt, &b);
  lathe_buf_free(&b);
  if (err) {
    free(j);
    luaL_error(L, "lathe.sample: run %d (%s) holds no model", (int)id, plugin);
  }
  int T = j->gpt.cfg.ctx, has = j->has;
  j->n = n, j->T = T, j->max_new = max_new, j->g = g, j->seed = seed, j->stop = NN_TOK_EOS;
  j->prompt = calloc((size_t)n * T, sizeof *j->prompt), j->plen = calloc(n, sizeof *j->plen);
  j->out = calloc((size_t)n * max_new, sizeof *j->out), j->olen = calloc(n, sizeof *j->olen);
  int *prompt = j->prompt, *plen = j->plen;
  const char *why = !prompt || !plen || !j->out || !j->olen ? "out of memory" : NULL;
  for (int i = 0; i < n && !why; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (has && lua_isstring(L, -1)) { /* keep the end of a long prompt, as training did */
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      int k = nn_tok_encode(&j->tok, s, len, NULL, 0), *all = malloc(((size_t)k + 1) * sizeof *all);
      if (!all)
        why = "out of memory";
      else {
        nn_tok_encode(&j->tok, s, len, all, k);
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
        if (v < 0 || v >= j->gpt.cfg.vocab)
          why = "a prompt token is outside the model's vocabulary";
        prompt[(size_t)i * T + t] = v;
      }
    } else
      why = has ? "prompts must be strings for a text model"
                : "prompts must be lists of token ids (this model has no tokenizer)";
    if (!why && plen[i] < 1) why = "an empty prompt";
    lua_pop(L, 1);
  }
  if (why) {
    sample_drop(j);
    luaL_error(L, "lathe.sample: %s", why);
  }
  return recipe_offloop(L, sample_work, sample_drop, j, sample_k);
}

/* A lathe.score call's work: the reward model and copies of the texts in,
 * the scores out (ownership as sample_job_t's). */
typedef struct {
  nn_rm_t m;
  int n, err;
  char **prompt;
  int *k;       /* responses per item */
  char ***resp; /* resp[i][a] */
  double **out; /* out[i][a] */
} score_job_t;

static void score_drop(void *p) {
  score_job_t *j = p;
  for (int i = 0; i < j->n; i++) {
    for (int a = 0; j->resp && j->resp[i] && a < j->k[i]; a++) free(j->resp[i][a]);
    if (j->resp) free(j->resp[i]);
    if (j->out) free(j->out[i]);
    if (j->prompt) free(j->prompt[i]);
  }
  free(j->prompt), free(j->k), free(j->resp), free(j->out);
  nn_rm_free(&j->m);
  free(j);
}

static void score_work(void *p) { /* on a worker thread */
  score_job_t *j = p;
  for (int i = 0; i < j->n && !j->err; i++)
    j->err = nn_rm_rank(&j->m, j->prompt[i], (const char **)j->resp[i], j->k[i], j->out[i]);
}

static int score_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  score_job_t *j = (score_job_t *)ctx;
  int err = j->err;
  for (int i = 0; i < j->n && !err; i++) {
    lua_createtable(L, j->k[i], 0);
    for (int a = 0; a < j->k[i]; a++) lua_pushnumber(L, j->out[i][a]), lua_rawseti(L, -2, a + 1);
    lua_rawseti(L, -2, i + 1);
  }
  score_drop(j);
  if (err) luaL_error(L, "lathe.score: out of memory");
  return 1;
}

/* lathe.score(run, {{prompt = P, responses = {R1, R2, ...}}, ...}): a reward
 * model's scores of every response, a list per item. Bradley-Terry: r(P, R);
 * pairwise: the mean symmetrised P(R beats R') over the item's other
 * responses (a round robin). The model is read once per call; the scoring
 * runs off the loop thread while the recipe waits. */
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
  score_job_t *j = calloc(1, sizeof *j);
  int err = j ? nn_rm_load(&j->m, &b) : LATHE_ENOMEM;
  lathe_buf_free(&b);
  if (err) {
    free(j);
    if (err == LATHE_ENOMEM) luaL_error(L, "lathe.score: out of memory");
    luaL_error(L, "lathe.score: run %d (%s) holds no reward model", (int)id, plugin);
  }
  j->n = n;
  j->prompt = calloc(n, sizeof *j->prompt), j->k = calloc(n, sizeof *j->k);
  j->resp = calloc(n, sizeof *j->resp), j->out = calloc(n, sizeof *j->out);
  err = j->prompt && j->k && j->resp && j->out ? 0 : LATHE_ENOMEM;
  for (int i = 0; i < n && !err; i++) { /* copies: the strings must outlive the stack */
    lua_rawgeti(L, 2, i + 1), lua_getfield(L, -1, "prompt"), lua_getfield(L, -2, "responses");
    int k = (int)lua_rawlen(L, -1);
    j->prompt[i] = strdup(lua_tostring(L, -2));
    j->resp[i] = calloc((size_t)k + 1, sizeof **j->resp);
    j->out[i] = calloc((size_t)k + 1, sizeof **j->out);
    err = j->prompt[i] && j->resp[i] && j->out[i] ? 0 : LATHE_ENOMEM;
    for (int a = 0; a < k && !err; a++) {
      lua_rawgeti(L, -1, a + 1);
      err = (j->resp[i][a] = strdup(lua_tostring(L, -1))) ? 0 : LATHE_ENOMEM;
      j->k[i] = a + 1;
      lua_pop(L, 1);
    }
    lua_pop(L, 3);
  }
  if (err) {
    score_drop(j);
    luaL_error(L, "lathe.score: out of memory");
  }
  return recipe_offloop(L, score_work, score_drop, j, score_k);
}

void l_models_open(lua_State *L) {
  lua_pushcfunction(L, l_sample), lua_setfield(L, -2, "sample");
  lua_pushcfunction(L, l_score), lua_setfield(L, -2, "score");
}
