/* twentyq.c - attribute twenty questions (specs/archer.md): N objects
 * o0..o{N-1} with K binary attributes a0..a{K-1}, object i having attribute
 * j equal to bit j of i (so every object is told apart by its attributes);
 * the hidden object is drawn uniformly. Utterances: "ask a<j> <0|1> ?"
 * (reply yes or no) and "guess o<i> ." (yes, the episode ends with reward
 * 0; or no); anything else is "invalid". -1 a turn, 20 turns.
 *
 * Values (info) by dynamic programming over the belief state, the set of
 * candidates still consistent with the dialogue (a 64-bit mask) and the
 * turn: a question splits the set by the attribute, a wrong guess removes
 * its object, a right one ends with 0, and the turn limit ends with what
 * was paid. `optimal` takes the best action everywhere (branch and bound:
 * guessing from a set is skipped when an upper bound on its value, the
 * value of ideal splits and guesses for a set of that size, cannot beat
 * the best question; the bound is exact where it prunes, so the result is
 * the exact optimum); `identify` guesses only once one candidate is left;
 * `blind` guesses o0, o1, ... without asking. */
#include "games.h"

static const lathe_opt_t twentyq_opts[] = {
    {"objects", LATHE_INT, "16", 2, 64, NULL, "N objects"},
    {"attributes", LATHE_INT, "4", 1, 6, NULL, "K binary attributes (N <= 2^K)"},
    {"max_turns", LATHE_INT, "20", 1, 200, NULL, "turn limit"},
    {NULL}};

typedef struct {
  int N, K;
  gm_dialogue_t d;
} tq_t;

static int twentyq_create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  tq_t *t = calloc(1, sizeof *t);
  if (!t) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = t;
  t->N = (int)h->cfg_int(c, "objects"), t->K = (int)h->cfg_int(c, "attributes");
  t->d.max_turns = (int)h->cfg_int(c, "max_turns");
  if (t->N > 1 << t->K)
    return h->fail(c, LATHE_ECONFIG, "twentyq: %d objects cannot be told apart by %d attributes",
                   t->N, t->K);
  nn_rng_seed(&t->d.rng, 0);
  t->d.done = 1; /* nothing to step before a reset */
  return 0;
}

static void twentyq_destroy(void *self) {
  free(self);
}

static int twentyq_reset(void *self, const lathe_host_t *h, lathe_ctx_t *c, uint64_t seed,
                         const char **obs) {
  (void)h, (void)c;
  tq_t *t = self;
  if (seed != LATHE_NO_SEED) nn_rng_seed(&t->d.rng, seed);
  *obs = gm_begin(&t->d, nn_rng_below(&t->d.rng, (uint32_t)t->N), "Questions:\n");
  return 0;
}

static int twentyq_set_hidden(void *self, const lathe_host_t *h, lathe_ctx_t *c, int64_t i,
                              int64_t *count, const char **obs) {
  tq_t *t = self;
  *count = t->N;
  if (i < 0) return 0;
  if (i >= t->N)
    return h->fail(c, LATHE_EUSAGE, "twentyq: hidden object %lld is not below %d", (long long)i,
                   t->N);
  *obs = gm_begin(&t->d, i, "Questions:\n");
  return 0;
}

static int twentyq_step(void *self, const lathe_host_t *h, lathe_ctx_t *c, const char *utt,
                        size_t n, const char **obs, double *reward, int *terminated,
                        int *truncated) {
  tq_t *t = self;
  if (t->d.done) return h->fail(c, LATHE_EUSAGE, "twentyq: the episode is over; reset() first");
  char buf[GM_MAX_UTT + 1], *w[GM_MAX_WORDS];
  int k = gm_words(utt, n, buf, w), win = 0;
  const char *reply = "invalid";
  if (k == 4 && !strcmp(w[0], "ask") && !strcmp(w[3], "?") &&
      (!strcmp(w[2], "0") || !strcmp(w[2], "1"))) {
    int a = w[1][0] == 'a' ? gm_number(w[1] + 1, t->K) : -1;
    if (a >= 0) reply = (int)(t->d.hidden >> a & 1) == w[2][0] - '0' ? "yes" : "no";
  } else if (k == 3 && !strcmp(w[0], "guess") && !strcmp(w[2], ".")) {
    int o = w[1][0] == 'o' ? gm_number(w[1] + 1, t->N) : -1;
    if (o >= 0) win = o == t->d.hidden, reply = win ? "yes" : "no";
  }
  *reward = gm_turn(&t->d, w, k, reply, win, terminated, truncated);
  *obs = t->d.text;
  return 0;
}

/* ---- the belief-state DP ------------------------------------------------- */

typedef struct {
  uint64_t *key; /* mask, or 0 for an empty slot (a state's mask is never 0) */
  uint32_t *tag; /* turn << 1 | identify */
  double *val;
  size_t cap, n;
} memo_t;

typedef struct {
  int N, K, T;
  double g;
  uint64_t attr[6]; /* objects with attribute j = 1 */
  double U[65][201];
  memo_t m;
} dp_t;

static int memo_find(memo_t *m, uint64_t key, uint32_t tag, size_t *slot) {
  uint64_t x = key * 0x9e3779b97f4a7c15ULL ^ tag * 0xbf58476d1ce4e5b9ULL;
  size_t i = (size_t)(x ^ x >> 29) & (m->cap - 1);
  while (m->key[i] && !(m->key[i] == key && m->tag[i] == tag)) i = (i + 1) & (m->cap - 1);
  *slot = i;
  return m->key[i] != 0;
}

static int memo_grow(memo_t *m) {
  memo_t o = *m;
  m->cap = o.cap ? 2 * o.cap : 1 << 12, m->n = 0;
  m->key = calloc(m->cap, sizeof *m->key), m->tag = malloc(m->cap * sizeof *m->tag);
  m->val = malloc(m->cap * sizeof *m->val);
  if (!m->key || !m->tag || !m->val) return LATHE_ENOMEM;
  for (size_t i = 0; i < o.cap; i++)
    if (o.key[i]) {
      size_t s;
      memo_find(m, o.key[i], o.tag[i], &s);
      m->key[s] = o.key[i], m->tag[s] = o.tag[i], m->val[s] = o.val[i], m->n++;
    }
  free(o.key), free(o.tag), free(o.val);
  return 0;
}

/* The best value of candidate set S at turn t (identify: guesses only from
 * one candidate). NAN: out of memory. */
static double value(dp_t *d, uint64_t S, int t, int identify) {
  if (t >= d->T) return 0.0;
  int m = __builtin_popcountll(S);
  if (m == 1) return 0.0; /* guess it */
  size_t slot;
  uint32_t tag = (uint32_t)t << 1 | (uint32_t)identify;
  if (memo_find(&d->m, S, tag, &slot)) return d->m.val[slot];
  double best = -INFINITY;
  for (int j = 0; j < d->K; j++) {
    uint64_t s1 = S & d->attr[j], s0 = S & ~d->attr[j];
    if (!s1 || !s0) continue;
    double v1 = value(d, s1, t + 1, identify), v0 = value(d, s0, t + 1, identify);
    if (v1 != v1 || v0 != v0) return NAN;
    double v = -1.0 + d->g * (__builtin_popcountll(s1) * v1 + __builtin_popcountll(s0) * v0) / m;
    best = v > best ? v : best;
  }
  /* guessing: every guess's value is at most the bound; skip them all
   * when it cannot beat the best question */
  double bound = (m - 1.0) / m * (-1.0 + d->g * d->U[m - 1][t + 1]);
  if (!identify && bound > best)
    for (uint64_t r = S; r; r &= r - 1) {
      double v = value(d, S & ~(r & -r), t + 1, 0);
      if (v != v) return NAN;
      v = (m - 1.0) / m * (-1.0 + d->g * v);
      best = v > best ? v : best;
    }
  if (best == -INFINITY) best = -1.0 + d->g * value(d, S, t + 1, identify); /* nothing splits */
  if (2 * (d->m.n + 1) > d->m.cap && memo_grow(&d->m)) return NAN;
  memo_find(&d->m, S, tag, &slot);
  d->m.key[slot] = S, d->m.tag[slot] = tag, d->m.val[slot] = best, d->m.n++;
  return best;
}

/* optimal and identify values of the full set under discount g. */
static int tq_values(int N, int K, int T, double g, double *opt, double *ident) {
  dp_t *d = calloc(1, sizeof *d);
  if (!d || memo_grow(&d->m)) {
    if (d) free(d->m.key), free(d->m.tag), free(d->m.val);
    free(d);
    return LATHE_ENOMEM;
  }
  d->N = N, d->K = K, d->T = T, d->g = g;
  for (int j = 0; j < K; j++)
    for (int i = 0; i < N; i++)
      if (i >> j & 1) d->attr[j] |= 1ULL << i;
  /* U[m][t]: the best any set of m candidates could do at turn t, were
   * every split of it possible: an upper bound on value() */
  for (int t = T; t >= 0; t--)
    for (int m = 1; m <= N; m++) {
      if (t == T || m == 1) {
        d->U[m][t] = 0.0;
        continue;
      }
      double u = (m - 1.0) / m * (-1.0 + g * d->U[m - 1][t + 1]);
      for (int a = 1; a < m; a++) {
        double v = -1.0 + g * (a * d->U[a][t + 1] + (m - a) * d->U[m - a][t + 1]) / m;
        u = v > u ? v : u;
      }
      d->U[m][t] = u;
    }
  uint64_t all = N == 64 ? ~0ULL : (1ULL << N) - 1;
  *opt = value(d, all, 0, 0), *ident = value(d, all, 0, 1);
  free(d->m.key), free(d->m.tag), free(d->m.val), free(d);
  return *opt != *opt || *ident != *ident ? LATHE_ENOMEM : 0;
}

static int twentyq_info(void *self, double gamma, lathe_textenv_info_t *in) {
  tq_t *t = self;
  int T = t->d.max_turns > 200 ? 200 : t->d.max_turns;
  if (tq_values(t->N, t->K, T, gamma, &in->optimal, &in->identify) ||
      tq_values(t->N, t->K, T, 1.0, &in->optimal_undiscounted, &in->identify_undiscounted))
    return LATHE_ENOMEM;
  in->blind = gm_blind(t->N, t->d.max_turns, gamma);
  in->blind_undiscounted = gm_blind(t->N, t->d.max_turns, 1.0);
  in->max_turns = t->d.max_turns, in->max_utterance = GM_MAX_UTT;
  return 0;
}

static int twentyq_save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  (void)h, (void)c;
  gm_save(&((tq_t *)self)->d, b);
  return b->err;
}

static int twentyq_load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  tq_t *t = self;
  const char *why = gm_load(&t->d, b, t->N);
  return why ? h->fail(c, LATHE_ECKPT, "twentyq: %s", why) : 0;
}

TEXTENV_PLUGIN(twentyq, "twentyq",
               "attribute twenty questions: N objects, K binary attributes, ask or guess, -1 a "
               "turn; exact DP values")
