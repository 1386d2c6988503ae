/* guessnum.c - guess the number (specs/archer.md): a hidden number in
 * 1..N (64), drawn uniformly; the utterance "guess <k> ." gets "correct"
 * (reward 0, the episode ends), "higher" (the number is higher) or
 * "lower"; anything else is "invalid". -1 a turn, 20 turns.
 *
 * Values (info) by dynamic programming over the interval of numbers still
 * possible and the turn: a guess inside it wins with 1/m, else keeps the
 * side it points to (guesses outside give nothing and are never better);
 * the optimum is a balanced binary search (7 turns at most for 64).
 * `identify` is the same policy (a guess is the only action); `blind`
 * guesses 1, 2, ... in order. */
#include "games.h"

static const lathe_opt_t guessnum_opts[] = {
    {"numbers", LATHE_INT, "64", 2, 1024, NULL, "N: the number lies in 1..N"},
    {"max_turns", LATHE_INT, "20", 1, 200, NULL, "turn limit"},
    {NULL}};

typedef struct {
  int N;
  gm_dialogue_t d;
} gn_t;

static int guessnum_create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  gn_t *g = calloc(1, sizeof *g);
  if (!g) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = g;
  g->N = (int)h->cfg_int(c, "numbers"), g->d.max_turns = (int)h->cfg_int(c, "max_turns");
  nn_rng_seed(&g->d.rng, 0);
  g->d.done = 1;
  return 0;
}

static void guessnum_destroy(void *self) {
  free(self);
}

static int guessnum_reset(void *self, const lathe_host_t *h, lathe_ctx_t *c, uint64_t seed,
                          const char **obs) {
  (void)h, (void)c;
  gn_t *g = self;
  if (seed != LATHE_NO_SEED) nn_rng_seed(&g->d.rng, seed);
  *obs = gm_begin(&g->d, nn_rng_below(&g->d.rng, (uint32_t)g->N), "Guess the number:\n");
  return 0;
}

static int guessnum_set_hidden(void *self, const lathe_host_t *h, lathe_ctx_t *c, int64_t i,
                               int64_t *count, const char **obs) {
  gn_t *g = self;
  *count = g->N;
  if (i < 0) return 0;
  if (i >= g->N)
    return h->fail(c, LATHE_EUSAGE, "guessnum: hidden number index %lld is not below %d",
                   (long long)i, g->N);
  *obs = gm_begin(&g->d, i, "Guess the number:\n");
  return 0;
}

static int guessnum_step(void *self, const lathe_host_t *h, lathe_ctx_t *c, const char *utt,
                         size_t n, const char **obs, double *reward, int *terminated,
                         int *truncated) {
  gn_t *g = self;
  if (g->d.done) return h->fail(c, LATHE_EUSAGE, "guessnum: the episode is over; reset() first");
  char buf[GM_MAX_UTT + 1], *w[GM_MAX_WORDS];
  int k = gm_words(utt, n, buf, w), win = 0;
  const char *reply = "invalid";
  int v = k == 3 && !strcmp(w[0], "guess") && !strcmp(w[2], ".") ? gm_number(w[1], g->N + 1) : -1;
  if (v >= 1) {
    long x = g->d.hidden + 1;
    win = v == x, reply = win ? "correct" : x > v ? "higher" : "lower";
  }
  *reward = gm_turn(&g->d, w, k, reply, win, terminated, truncated);
  *obs = g->d.text;
  return 0;
}

/* V[m][t]: the best value of m consecutive candidates at turn t (only the
 * count matters); the optimum of N at turn 0. */
static double gn_value(int N, int T, double g) {
  double *V = calloc((size_t)(N + 1) * (T + 1), sizeof *V);
  if (!V) return NAN;
  for (int t = T - 1; t >= 0; t--)
    for (int m = 1; m <= N; m++) {
      double best = -INFINITY;
      for (int k = 1; k <= m; k++) { /* guess the k-th: k - 1 below, m - k above */
        double v = 0.0;
        if (k > 1) v += (k - 1.0) / m * (-1.0 + g * V[(size_t)(k - 1) * (T + 1) + t + 1]);
        if (k < m) v += (double)(m - k) / m * (-1.0 + g * V[(size_t)(m - k) * (T + 1) + t + 1]);
        best = v > best ? v : best;
      }
      V[(size_t)m * (T + 1) + t] = best;
    }
  double v = V[(size_t)N * (T + 1)];
  free(V);
  return v;
}

static int guessnum_info(void *self, double gamma, lathe_textenv_info_t *in) {
  gn_t *g = self;
  in->optimal = in->identify = gn_value(g->N, g->d.max_turns, gamma);
  in->optimal_undiscounted = in->identify_undiscounted = gn_value(g->N, g->d.max_turns, 1.0);
  if (in->optimal != in->optimal || in->optimal_undiscounted != in->optimal_undiscounted)
    return LATHE_ENOMEM;
  in->blind = gm_blind(g->N, g->d.max_turns, gamma);
  in->blind_undiscounted = gm_blind(g->N, g->d.max_turns, 1.0);
  in->max_turns = g->d.max_turns, in->max_utterance = GM_MAX_UTT;
  return 0;
}

static int guessnum_save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  (void)h, (void)c;
  gm_save(&((gn_t *)self)->d, b);
  return b->err;
}

static int guessnum_load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  gn_t *g = self;
  const char *why = gm_load(&g->d, b, g->N);
  return why ? h->fail(c, LATHE_ECKPT, "guessnum: %s", why) : 0;
}

TEXTENV_PLUGIN(guessnum, "guessnum",
               "guess a number in 1..N with higher/lower replies, -1 a turn; exact DP values")
