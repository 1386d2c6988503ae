/* gameplay.c - the gameplay generator: noisy scripted play of a text game,
 * one sft record per turn (the dialogue so far as prompt, the utterance as
 * response), the warm start a multi-turn policy is behaviour-cloned from
 * before RL (specs/archer.md: "BC warm start on noisy scripted play").
 *
 * The script plays sensibly but not optimally. twentyq: keep the
 * candidates the replies leave; guess when one is left, else ask a random
 * attribute that splits them. guessnum: guess a random number of the
 * interval the replies leave. With probability `noise` a turn is instead a
 * random valid utterance (any attribute and value, any object, any
 * number), so the data shows mistakes and their consequences. The game
 * itself (a child textenv) answers, so the records are the game's own
 * dialogues; each episode starts from a seed drawn from the generator's. */
#include "games.h"
#include "../genutil.h"

static const lathe_opt_t gameplay_opts[] = {
    {"game", LATHE_STR, "twentyq", 0, 0, "twentyq|guessnum", "the text game"},
    {"episodes", LATHE_INT, "1000", 1, 1e7, NULL, "episodes to play"},
    {"noise", LATHE_NUM, "0.3", 0, 1, NULL, "probability of a random valid utterance"},
    {"objects", LATHE_INT, "16", 2, 64, NULL, "twentyq: N objects"},
    {"attributes", LATHE_INT, "4", 1, 6, NULL, "twentyq: K attributes"},
    {"numbers", LATHE_INT, "64", 2, 1024, NULL, "guessnum: N"},
    {"max_turns", LATHE_INT, "20", 1, 200, NULL, "turn limit"},
    {"seed", LATHE_INT, "0", 0, 1e18, NULL, "generator seed"},
    {NULL}};

typedef struct {
  const lathe_plugin_t *gp;
  void *game;
  int tq, N, K, live;
  double noise;
  int64_t episodes, played;
  nn_rng_t rng;
  uint64_t cand;   /* twentyq: candidates left */
  int lo, hi;      /* guessnum: the interval left */
  const char *obs; /* the dialogue so far (the game's) */
} gp_t;

static int gameplay_create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  gp_t *g = calloc(1, sizeof *g);
  if (!g) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = g;
  g->tq = !strcmp(h->cfg_str(c, "game"), "twentyq");
  g->N = (int)h->cfg_int(c, g->tq ? "objects" : "numbers"), g->K = (int)h->cfg_int(c, "attributes");
  g->noise = h->cfg_num(c, "noise"), g->episodes = h->cfg_int(c, "episodes");
  uint64_t x = (uint64_t)h->cfg_int(c, "seed") ^ 0x67616d65706c6179ULL;
  nn_rng_seed(&g->rng, nn_splitmix64(&x));
  char kv[4][48];
  const char *kvp[4];
  int n = 0;
  if (g->tq) {
    snprintf(kv[n++], 48, "objects=%d", g->N);
    snprintf(kv[n++], 48, "attributes=%d", g->K);
  } else
    snprintf(kv[n++], 48, "numbers=%d", g->N);
  snprintf(kv[n++], 48, "max_turns=%lld", (long long)h->cfg_int(c, "max_turns"));
  for (int i = 0; i < n; i++) kvp[i] = kv[i];
  return h->plugin_create(c, h->cfg_str(c, "game"), kvp, n, &g->gp, &g->game);
}

static void gameplay_destroy(void *self) {
  free(self); /* the game is a child of the context: the host frees it */
}

/* The script's utterance for the state it keeps. */
static void script(gp_t *g, char *u, size_t cap) {
  int noisy = nn_rng_uniform_d(&g->rng) < g->noise;
  if (g->tq) {
    if (noisy) {
      if (nn_rng_below(&g->rng, 2))
        snprintf(u, cap, "ask a%u %u ?", nn_rng_below(&g->rng, (uint32_t)g->K),
                 nn_rng_below(&g->rng, 2));
      else
        snprintf(u, cap, "guess o%u .", nn_rng_below(&g->rng, (uint32_t)g->N));
      return;
    }
    if (__builtin_popcountll(g->cand) == 1) {
      snprintf(u, cap, "guess o%d .", __builtin_ctzll(g->cand));
      return;
    }
    int split[6], ns = 0;
    for (int j = 0; j < g->K; j++) {
      uint64_t a = 0;
      for (int i = 0; i < g->N; i++) a |= (uint64_t)(i >> j & 1) << i;
      if ((g->cand & a) && (g->cand & ~a)) split[ns++] = j;
    }
    snprintf(u, cap, "ask a%d %u ?", split[nn_rng_below(&g->rng, (uint32_t)ns)],
             nn_rng_below(&g->rng, 2));
    return;
  }
  if (noisy)
    snprintf(u, cap, "guess %u .", 1 + nn_rng_below(&g->rng, (uint32_t)g->N));
  else
    snprintf(u, cap, "guess %u .", g->lo + nn_rng_below(&g->rng, (uint32_t)(g->hi - g->lo + 1)));
}

/* Keep what the reply to utterance u says. */
static void learn(gp_t *g, const char *u, const char *reply) {
  unsigned a, v;
  int k;
  if (g->tq && sscanf(u, "ask a%u %u ?", &a, &v) == 2 &&
      (!strcmp(reply, "yes") || !strcmp(reply, "no"))) {
    uint64_t m = 0;
    for (int i = 0; i < g->N; i++)
      if ((unsigned)(i >> a & 1) == (v ^ !strcmp(reply, "no"))) m |= 1ULL << i;
    g->cand &= m;
  } else if (g->tq && sscanf(u, "guess o%d .", &k) == 1 && !strcmp(reply, "no"))
    g->cand &= ~(1ULL << k);
  else if (!g->tq && sscanf(u, "guess %d .", &k) == 1) {
    if (!strcmp(reply, "higher") && k + 1 > g->lo) g->lo = k + 1;
    if (!strcmp(reply, "lower") && k - 1 < g->hi) g->hi = k - 1;
  }
}

static int gameplay_next(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *out) {
  gp_t *g = self;
  const lathe_textenv_t *t = g->gp->textenv;
  int rc;
  if (!g->live) {
    if (g->played == g->episodes) return LATHE_DONE;
    if ((rc = t->reset(g->game, h, c, nn_rng_u64(&g->rng) >> 1, &g->obs))) return rc;
    g->cand = g->N == 64 ? ~0ULL : (1ULL << g->N) - 1, g->lo = 1, g->hi = g->N, g->live = 1;
  }
  char u[64];
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
