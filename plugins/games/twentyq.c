/* twentyq.c - twenty questions over an attribute table (specs/archer.md;
 * games.h's tables): the synthetic N objects o0..o{N-1} with K binary
 * attributes a0..a{K-1} (object i's a_j is bit j of i), ArCHer's 157 objects
 * (table=objects), or a table file; the hidden object is drawn uniformly.
 * Utterances: "ask <attr> <val> ?" (reply yes or no) and "guess <obj> ."
 * (yes, the episode ends with reward 0; or no); anything else is
 * "invalid". -1 a turn, 20 turns. guesscity is the same game over ArCHer's
 * 91 Guess-My-City cities (table=cities).
 *
 * Values (info) by the exact belief-state DP of table.c: `optimal` takes
 * the best action everywhere, `identify` guesses only once one candidate is
 * left, `blind` guesses the objects in order without asking. */
#include "games.h"

static const lathe_opt_t twentyq_opts[] = {
    {"objects", LATHE_INT, "16", 2, TB_MAX_OBJECTS, NULL, "N objects (the synthetic table)"},
    {"attributes", LATHE_INT, "4", 1, 8, NULL, "K binary attributes (N <= 2^K)"},
    {"table", LATHE_STR, "", 0, 0, NULL,
     "\"\" the synthetic N x K, objects (ArCHer's 157), cities, or a .tsv file"},
    {"max_turns", LATHE_INT, "20", 1, 200, NULL, "turn limit"},
    {NULL}};

static const lathe_opt_t guesscity_opts[] = {
    {"max_turns", LATHE_INT, "20", 1, 200, NULL, "turn limit"}, {NULL}};

typedef struct {
  int N;
  const char *game; /* the plugin's name, for messages */
  tb_table_t tb;
  gm_dialogue_t d;
} tq_t;

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self, const char *game,
                  const char *table, int N, int K) {
  tq_t *t = calloc(1, sizeof *t);
  if (!t) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = t;
  t->game = game;
  t->d.max_turns = (int)h->cfg_int(c, "max_turns");
  nn_rng_seed(&t->d.rng, 0);
  t->d.done = 1; /* nothing to step before a reset */
  int rc = tb_load(h, c, game, table, N, K, &t->tb);
  t->N = t->tb.n;
  return rc;
}

static int twentyq_create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  return create(h, c, self, "twentyq", h->cfg_str(c, "table"), (int)h->cfg_int(c, "objects"),
                (int)h->cfg_int(c, "attributes"));
}

static int guesscity_create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  return create(h, c, self, "guesscity", "cities", 0, 0);
}

static void twentyq_destroy(void *self) {
  tq_t *t = self;
  tb_free(&t->tb);
  free(t);
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
    return h->fail(c, LATHE_EUSAGE, "%s: hidden object %lld is not below %d", t->game, (long long)i,
                   t->N);
  *obs = gm_begin(&t->d, i, "Questions:\n");
  return 0;
}

static int twentyq_step(void *self, const lathe_host_t *h, lathe_ctx_t *c, const char *utt,
                        size_t n, const char **obs, double *reward, int *terminated,
                        int *truncated) {
  tq_t *t = self;
  if (t->d.done) return h->fail(c, LATHE_EUSAGE, "%s: the episode is over; reset() first", t->game);
  char buf[GM_MAX_UTT + 1], *w[GM_MAX_WORDS];
  int k = gm_words(utt, n, buf, w), win = 0;
  const char *reply = "invalid";
  if (k == 4 && !strcmp(w[0], "ask") && !strcmp(w[3], "?")) {
    int q = tb_test(&t->tb, w[1], w[2]);
    if (q >= 0) reply = tb_has(t->tb.test[q].has, (int)t->d.hidden) ? "yes" : "no";
  } else if (k == 3 && !strcmp(w[0], "guess") && !strcmp(w[2], ".")) {
    int o = tb_object(&t->tb, w[1]);
    if (o >= 0) win = o == t->d.hidden, reply = win ? "yes" : "no";
  }
  *reward = gm_turn(&t->d, w, k, reply, win, terminated, truncated);
  *obs = t->d.text;
  return 0;
}

static int twentyq_info(void *self, double gamma, lathe_textenv_info_t *in) {
  tq_t *t = self;
  int T = t->d.max_turns > 200 ? 200 : t->d.max_turns;
  if (tb_values(&t->tb, T, gamma, &in->optimal, &in->identify) ||
      tb_values(&t->tb, T, 1.0, &in->optimal_undiscounted, &in->identify_undiscounted))
    return LATHE_ENOMEM;
  in->blind = gm_blind(t->N, t->d.max_turns, gamma);
  in->blind_undiscounted = gm_blind(t->N, t->d.max_turns, 1.0);
  in->max_turns = t->d.max_turns, in->max_utterance = GM_MAX_UTT;
  return 0;
}

/* A table's game also saves the table's hash (the synthetic game's
 * checkpoint is the dialogue alone, as before tables). */
static int twentyq_save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  (void)h, (void)c;
  tq_t *t = self;
  gm_save(&t->d, b);
  if (t->tb.hash) LATHE_PUT(b, t->tb.hash);
  return b->err;
}

static int twentyq_load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  tq_t *t = self;
  const char *why = gm_load(&t->d, b, t->N);
  uint64_t hash = 0;
  if (!why && t->tb.hash) {
    LATHE_GET(b, hash);
    why = b->err               ? "truncated checkpoint (table)"
          : hash != t->tb.hash ? "checkpoint of another table"
                               : NULL;
  }
  return why ? h->fail(c, LATHE_ECKPT, "%s: %s", t->game, why) : 0;
}

TEXTENV_PLUGIN(twentyq, "twentyq",
               "twenty questions over an attribute table (N objects x K binary attributes, "
               "ArCHer's 157 objects, a file): ask or guess, -1 a turn; exact DP values")

#define guesscity_destroy    twentyq_destroy
#define guesscity_reset      twentyq_reset
#define guesscity_step       twentyq_step
#define guesscity_info       twentyq_info
#define guesscity_set_hidden twentyq_set_hidden
#define guesscity_save       twentyq_save
#define guesscity_load       twentyq_load
TEXTENV_PLUGIN(guesscity, "guesscity",
               "guess my city: twenty questions over ArCHer's 91 cities (country, continent, "
               "letters of the name); exact DP values")
