/* gameplay.c - the gameplay generator: noisy scripted play of a text game,
 * one sft record per turn (the dialogue so far as prompt, the utterance as
 * response), the warm start a multi-turn policy is behaviour-cloned from
 * before RL (specs/archer.md: "BC warm start on noisy scripted play").
 *
 * The script plays sensibly but not optimally. twentyq and guesscity: keep
 * the candidates the replies leave; guess when one is left, else ask about a
 * random attribute on which they differ, naming one of their values at
 * random (ask=any), or ask a random question whose rarer answer holds at
 * least a quarter of them (ask=quarter; any question that splits them when
 * none does: on a big table most questions single out a few objects). guessnum: guess a random
 * number of the interval the replies leave. With probability `noise` a turn is instead a random
 * valid utterance (any attribute and value, any object, any number), so the data shows mistakes and
 * their consequences. The game itself (a child textenv) answers, so the records are the game's own
 * dialogues; each episode starts from a seed drawn from the generator's. */
#include <limits.h>

#include "games.h"
#include "../genutil.h"

static const lathe_opt_t gameplay_opts[] = {
    {"game", LATHE_STR, "twentyq", 0, 0, "twentyq|guessnum|guesscity", "the text game"},
    {"episodes", LATHE_INT, "1000", 1, 1e7, NULL, "episodes to play"},
    {"noise", LATHE_NUM, "0.3", 0, 1, NULL, "probability of a random valid utterance"},
    {"objects", LATHE_INT, "16", 2, TB_MAX_OBJECTS, NULL, "twentyq: N objects"},
    {"attributes", LATHE_INT, "4", 1, 8, NULL, "twentyq: K attributes"},
    {"table", LATHE_STR, "", 0, 0, NULL, "twentyq: its table (objects, cities, a .tsv file)"},
    {"ask", LATHE_STR, "any", 0, 0, "any|quarter",
     "twentyq, guesscity: which questions the script asks (see the header)"},
    {"numbers", LATHE_INT, "64", 2, 1024, NULL, "guessnum: N"},
    {"max_turns", LATHE_INT, "20", 1, 200, NULL, "turn limit"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "generator seed"},
    {NULL}};

typedef struct {
  const lathe_plugin_t *gp;
  void *game;
  int tq, N, live, quarter;
  double noise;
  int64_t episodes, played;
  nn_rng_t rng;
  tb_table_t tb;   /* twentyq, guesscity: the game's table */
  tb_set_t cand;   /* the candidates left */
  int lo, hi;      /* guessnum: the interval left */
  const char *obs; /* the dialogue so far (the game's) */
} gp_t;

static int gameplay_create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  gp_t *g = calloc(1, sizeof *g);
  if (!g) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = g;
  const char *game = h->cfg_str(c, "game"), *table = h->cfg_str(c, "table");
  int city = !strcmp(game, "guesscity");
  g->tq = city || !strcmp(game, "twentyq");
  g->quarter = !strcmp(h->cfg_str(c, "ask"), "quarter");
  g->noise = h->cfg_num(c, "noise"), g->episodes = h->cfg_int(c, "episodes");
  uint64_t x = (uint64_t)h->cfg_int(c, "seed") ^ 0x67616d65706c6179ULL;
  nn_rng_seed(&g->rng, nn_splitmix64(&x));
  char kv[3][48], tkv[PATH_MAX + 8];
  const char *kvp[4];
  int n = 0, rc;
  if (g->tq) {
    int N = (int)h->cfg_int(c, "objects"), K = (int)h->cfg_int(c, "attributes");
    if ((rc = tb_load(h, c, "gameplay", city ? "cities" : table, N, K, &g->tb))) return rc;
    g->N = g->tb.n;
    if (!city) {
      snprintf(kv[0], 48, "objects=%d", N), kvp[n++] = kv[0];
      snprintf(kv[1], 48, "attributes=%d", K), kvp[n++] = kv[1];
      snprintf(tkv, sizeof tkv, "table=%s", table), kvp[n++] = tkv;
    }
  } else {
    g->N = (int)h->cfg_int(c, "numbers");
    snprintf(kv[0], 48, "numbers=%d", g->N), kvp[n++] = kv[0];
  }
  snprintf(kv[2], 48, "max_turns=%lld", (long long)h->cfg_int(c, "max_turns")), kvp[n++] = kv[2];
  return h->plugin_create(c, game, kvp, n, &g->gp, &g->game);
}

static void gameplay_destroy(void *self) {
  gp_t *g = self;
  tb_free(&g->tb);
  free(g); /* the game is a child of the context: the host frees it */
}

/* The tests of attribute a in table order: how many (n), the i-th's index. */
static int nth_value(const tb_table_t *t, int a, int i, int *n) {
  int k = 0, q = -1;
  for (int j = 0; j < t->ntest; j++)
    if (t->test[j].attr == a && k++ == i) q = j;
  *n = k;
  return q;
}

/* Whether question q splits the m candidates cand (both answers possible),
 * with its rarer answer holding at least a quarter of them when quarter. */
static int splits(const tb_table_t *t, tb_set_t cand, int q, int m, int quarter) {
  int c1 = tb_count(tb_and(cand, t->test[q].has)), r = c1 < m - c1 ? c1 : m - c1;
  return r > 0 && (!quarter || 4 * r >= m);
}

/* The script's utterance for the state it keeps. A coin drawn before the
 * attribute picks the value of a two-valued one: the draws of the first,
 * synthetic-only version, so its data (and the recipe's measured runs) are
 * reproduced byte for byte. */
static void script(gp_t *g, char *u, size_t cap) {
  int noisy = nn_rng_uniform_d(&g->rng) < g->noise;
  const tb_table_t *t = &g->tb;
  if (g->tq) {
    if (noisy) {
      if (nn_rng_below(&g->rng, 2)) {
        uint32_t coin = nn_rng_below(&g->rng, 2);
        int a = (int)nn_rng_below(&g->rng, (uint32_t)t->k), nv;
        nth_value(t, a, 0, &nv);
        int q =
            nth_value(t, a, nv == 2 ? (int)coin : (int)nn_rng_below(&g->rng, (uint32_t)nv), &nv);
        snprintf(u, cap, "ask %s %s ?", t->attr[a], t->test[q].val);
      } else
        snprintf(u, cap, "guess %s .", t->obj[nn_rng_below(&g->rng, (uint32_t)g->N)]);
      return;
    }
    if (tb_count(g->cand) == 1) {
      for (int i = 0; i < t->n; i++)
        if (tb_has(g->cand, i)) snprintf(u, cap, "guess %s .", t->obj[i]);
      return;
    }
    if (g->quarter) { /* uniform over the eligible questions, in table order */
      int m = tb_count(g->cand), any = 0, nq = 0, pick;
      for (int q = 0; q < t->ntest && !any; q++) any = splits(t, g->cand, q, m, 1);
      for (int q = 0; q < t->ntest; q++) nq += splits(t, g->cand, q, m, any);
      pick = (int)nn_rng_below(&g->rng, (uint32_t)nq);
      for (int q = 0; q < t->ntest; q++)
        if (splits(t, g->cand, q, m, any) && pick-- == 0) {
          snprintf(u, cap, "ask %s %s ?", t->attr[t->test[q].attr], t->test[q].val);
          break;
        }
      return;
    }
    /* the attributes whose values differ among the candidates, and for the
     * one drawn, the values they have */
    int split[TB_MAX_ATTRS], ns = 0, vals[TB_MAX_OBJECTS], nv = 0;
    for (int a = 0; a < t->k; a++) {
      int first = -1, differ = 0;
      for (int i = 0; i < t->n && !differ; i++)
        if (tb_has(g->cand, i)) {
          if (first < 0) first = t->value[i * t->k + a];
          differ = t->value[i * t->k + a] != first;
        }
      if (differ) split[ns++] = a;
    }
    uint32_t coin = nn_rng_below(&g->rng, 2);
    int a = split[nn_rng_below(&g->rng, (uint32_t)ns)];
    for (int q = 0; q < t->ntest; q++)
      if (t->test[q].attr == a && !tb_empty(tb_and(g->cand, t->test[q].has))) vals[nv++] = q;
    int v = nv == 2 ? (int)coin : (int)nn_rng_below(&g->rng, (uint32_t)nv);
    snprintf(u, cap, "ask %s %s ?", t->attr[a], t->test[vals[v]].val);
    return;
  }
  if (noisy)
    snprintf(u, cap, "guess %u .", 1 + nn_rng_below(&g->rng, (uint32_t)g->N));
  else
    snprintf(u, cap, "guess %u .", g->lo + nn_rng_below(&g->rng, (uint32_t)(g->hi - g->lo + 1)));
}

/* Keep what the reply to utterance u says. */
static void learn(gp_t *g, const char *u, const char *reply) {
  char buf[GM_MAX_UTT + 1], *w[GM_MAX_WORDS];
  int k = gm_words(u, strlen(u), buf, w), yes = !strcmp(reply, "yes"), no = !strcmp(reply, "no");
  if (g->tq && k == 4 && !strcmp(w[0], "ask") && (yes || no)) {
    int q = tb_test(&g->tb, w[1], w[2]);
    if (q >= 0)
      g->cand = yes ? tb_and(g->cand, g->tb.test[q].has) : tb_andnot(g->cand, g->tb.test[q].has);
  } else if (g->tq && k == 3 && !strcmp(w[0], "guess") && no) {
    int o = tb_object(&g->tb, w[1]);
    if (o >= 0) g->cand.w[o >> 6] &= ~(1ULL << (o & 63));
  } else if (!g->tq && k == 3 && !strcmp(w[0], "guess")) {
    int v = atoi(w[1]);
    if (!strcmp(reply, "higher") && v + 1 > g->lo) g->lo = v + 1;
    if (!strcmp(reply, "lower") && v - 1 < g->hi) g->hi = v - 1;
  }
}

static int gameplay_next(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *out) {
  gp_t *g = self;
  const lathe_textenv_t *t = g->gp->textenv;
  int rc;
  if (!g->live) {
    if (g->played == g->episodes) return LATHE_DONE;
    if ((rc = t->reset(g->game, h, c, nn_rng_u64(&g->rng) >> 1, &g->obs))) return rc;
    g->cand = tb_all(g->tq ? g->N : 0), g->lo = 1, g->hi = g->N, g->live = 1;
  }
  char u[GM_MAX_UTT + 1];
  script(g, u, sizeof u);
  lathe_buf_put(out, "{\"prompt\":\"", 11);
  gen_put_json(out, g->obs);
  lathe_buf_put(out, "\",\"response\":\"", 14);
  gen_put_json(out, u);
  lathe_buf_put(out, "\"}", 2);
  double r;
  int term, trunc;
  if ((rc = t->step(g->game, h, c, u, strlen(u), &g->obs, &r, &term, &trunc))) return rc;
  const char *end = g->obs + strlen(g->obs) - 1,
             *sp = end; /* the reply: the last line's last word */
  while (sp > g->obs && sp[-1] != ' ') sp--;
  char reply[16];
  snprintf(reply, sizeof reply, "%.*s", (int)(end - sp), sp);
  learn(g, u, reply);
  if (term || trunc) g->live = 0, g->played++;
  return out->err ? out->err : LATHE_CONTINUE;
}

static const lathe_generator_t gameplay_if = {.schema = "sft", .next = gameplay_next};
static const lathe_plugin_t gameplay_plugin = {.major = LATHE_API_MAJOR,
                                               .minor = LATHE_API_TARGET,
                                               .name = "gameplay",
                                               .kind = LATHE_GENERATOR,
                                               .version = "1.0.0",
                                               .doc = "noisy scripted play of a text game, one sft "
                                                      "record per turn (a BC warm start)",
                                               .opts = gameplay_opts,
                                               .nn_abi = NN_ABI,
                                               .create = gameplay_create,
                                               .destroy = gameplay_destroy,
                                               .generator = &gameplay_if};
LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_gameplay, gameplay_plugin)
