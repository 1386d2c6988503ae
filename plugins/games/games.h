/* games.h - what the turn-based text games share (specs/archer.md,
 * "Small-scale faithful reproduction"): the dialogue kept as text, the
 * utterance cut and split into words, the -1-per-turn reward with a turn
 * limit, the blind-guessing value, the descriptor.
 *
 * A dialogue is the game's first line, then one line per turn: the
 * utterance (cut at its first newline) and the game's reply, e.g.
 * "Questions:\nask a2 1 ? yes\nguess o5 . no\n". Every turn costs -1 but a
 * right guess (0, the episode ends); max_turns turns truncate. An utterance
 * longer than max_utterance bytes, or not in the game's language, gets the
 * reply "invalid" and costs its turn. Included by the games; the attribute
 * tables below are table.c's. */
#ifndef LATHE_GAMES_H
#define LATHE_GAMES_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/lathe.h"
#include "../../workbench/nn/nn.h"

#define GM_MAX_UTT   64   /* max_utterance: bytes (after the cut at a newline) */
#define GM_MAX_TEXT  4096 /* the dialogue: intro + max_turns lines of at most 80 bytes */
#define GM_MAX_WORDS 8

typedef struct {
  nn_rng_t rng;
  int turn, done, max_turns;
  int64_t hidden; /* the secret: the object, the number */
  size_t len;
  char text[GM_MAX_TEXT];
} gm_dialogue_t;

/* Start a dialogue with its first line (ends with a newline). */
static inline void gm_start(gm_dialogue_t *d, const char *intro) {
  d->turn = d->done = 0;
  d->len = (size_t)snprintf(d->text, sizeof d->text, "%s", intro);
}

/* Split utterance (utt, n) into at most GM_MAX_WORDS words (cut at the first
 * newline; spaces separate): returns the count, or -1 when it is longer
 * than GM_MAX_UTT, has more words, or holds a byte outside printable ASCII.
 * buf receives the cut utterance (GM_MAX_UTT + 1 bytes) the words point into. */
static inline int gm_words(const char *utt, size_t n, char *buf, char **w) {
  const char *nl = memchr(utt, '\n', n);
  if (nl) n = (size_t)(nl - utt);
  if (n > GM_MAX_UTT) return -1;
  memcpy(buf, utt, n), buf[n] = 0;
  int k = 0;
  for (char *p = buf; *p;) {
    if ((unsigned char)*p < 32 || (unsigned char)*p > 126) return -1;
    if (*p == ' ') {
      *p++ = 0;
      continue;
    }
    if (k == GM_MAX_WORDS) return -1;
    w[k++] = p;
    while (*p && *p != ' ') {
      if ((unsigned char)*p < 32 || (unsigned char)*p > 126) return -1;
      p++;
    }
  }
  return k;
}

/* Digits w (no leading zero but "0" itself) -> their value when below n,
 * else -1. */
static inline int gm_number(const char *w, int n) {
  if (!*w || (w[0] == '0' && w[1])) return -1;
  int v = 0;
  for (const char *p = w; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
    if (v >= n) return -1;
  }
  return v;
}

/* A new episode about hidden state `hidden`: the dialogue's first line. */
static inline const char *gm_begin(gm_dialogue_t *d, int64_t hidden, const char *intro) {
  d->hidden = hidden;
  gm_start(d, intro);
  return d->text;
}

/* End a turn: append "utterance reply\n" (the k words as parsed, one space
 * apart; "<invalid>" for k < 0, bytes that cannot be shown), advance the
 * clock, set the flags. Returns the turn's reward: 0 for a win, else -1. */
static inline double gm_turn(gm_dialogue_t *d, char *const *w, int k, const char *reply, int win,
                             int *terminated, int *truncated) {
  char shown[GM_MAX_UTT + 1] = "<invalid>";
  if (k >= 0) shown[0] = 0;
  for (int i = 0, m = 0; i < k; i++)
    m += snprintf(shown + m, sizeof shown - (size_t)m, "%s%s", i ? " " : "", w[i]);
  int n = snprintf(d->text + d->len, sizeof d->text - d->len, "%s %s\n", shown, reply);
  if (n > 0)
    d->len += (size_t)n < sizeof d->text - d->len ? (size_t)n : sizeof d->text - d->len - 1;
  d->turn++;
  *terminated = win, *truncated = !win && d->turn >= d->max_turns;
  d->done = *terminated || *truncated;
  return win ? 0.0 : -1.0;
}

/* The expected return of guessing N equally likely candidates one by one in
 * a fixed order (no questions), max_turns turns at most: the k-th guess wins
 * with probability 1/N after k - 1 turns at -1 each. */
static inline double gm_blind(int64_t N, int max_turns, double gamma) {
  double v = 0.0;
  for (int64_t k = 1; k <= N; k++) {
    int64_t lost = k <= max_turns ? k - 1 : max_turns;
    v -= gamma == 1.0 ? (double)lost : (1.0 - pow(gamma, (double)lost)) / (1.0 - gamma);
  }
  return v / (double)N;
}

/* The dialogue's part of a checkpoint. */
static inline void gm_save(const gm_dialogue_t *d, lathe_buf_t *b) {
  uint64_t len = d->len;
  int32_t s[3] = {d->turn, d->done, d->max_turns};
  LATHE_PUT(b, d->rng), LATHE_PUT(b, s), LATHE_PUT(b, d->hidden), LATHE_PUT(b, len);
  lathe_buf_put(b, d->text, d->len);
}

/* Restore what gm_save wrote, checked against the game: hidden in [0,
 * count), the clock within the limit, the text within its buffer. NULL, or
 * what is wrong. */
static inline const char *gm_load(gm_dialogue_t *d, lathe_buf_t *b, int64_t count) {
  uint64_t len;
  int32_t s[3];
  LATHE_GET(b, d->rng), LATHE_GET(b, s), LATHE_GET(b, d->hidden), LATHE_GET(b, len);
  if (b->err) return "truncated checkpoint";
  if (s[2] != d->max_turns) return "checkpoint of another max_turns";
  if (s[0] < 0 || s[0] > d->max_turns || (s[1] != 0 && s[1] != 1) || d->hidden < 0 ||
      d->hidden >= count || len >= GM_MAX_TEXT)
    return "checkpoint fields out of range";
  lathe_buf_get(b, d->text, (size_t)len);
  if (b->err) return "truncated checkpoint (dialogue)";
  d->text[len] = 0, d->len = (size_t)len, d->turn = s[0], d->done = s[1];
  return NULL;
}

/* ---- attribute tables (table.c) -------------------------------------------
 * The question games are played over a table: objects with one value per
 * attribute, all words of [a-z0-9_]. "ask <attr> <val> ?" asks whether the
 * hidden object has that value; "guess <obj> ." names one. The synthetic
 * table of N objects o0..o{N-1} and K attributes a0..a{K-1} gives object i
 * the value bit j of i ("0" or "1") for a_j; a file's is tab-separated, a
 * header "object<TAB>attr..." then one row per object, every object told
 * apart by its values. */
#define TB_MAX_OBJECTS 256
#define TB_WORDS       (TB_MAX_OBJECTS / 64)
#define TB_MAX_ATTRS   256
#define TB_MAX_WORD    32
#define TB_MAX_FILE    (1 << 20)
#define TB_MAX_MEMO    ((size_t)1 << 25) /* DP states at most (about 1.5 GiB) */

typedef struct {
  uint64_t w[TB_WORDS];
} tb_set_t; /* a set of objects, bit i for object i */

typedef struct {
  int attr;  /* its attribute (column) */
  int split; /* 0: splits every set as another test of its attribute (skip in the DP) */
  char val[TB_MAX_WORD];
  tb_set_t has; /* the objects with this value */
} tb_test_t;

typedef struct {
  int n, k, ntest; /* objects, attributes, (attribute, value) tests */
  char (*obj)[TB_MAX_WORD], (*attr)[TB_MAX_WORD];
  tb_test_t *test;
  int *value;    /* value[i * k + a]: object i's test for attribute a */
  uint64_t hash; /* FNV-1a of the file's bytes; 0 for the synthetic table */
} tb_table_t;    /* owns its arrays: tb_free */

/* The synthetic table (N <= TB_MAX_OBJECTS, N <= 2^K). 0 or LATHE_ENOMEM. */
int tb_synthetic(tb_table_t *t, int N, int K);
/* Parse a table's text (len bytes, untrusted): 0, or -1 with a one-line
 * reason naming the line in why (cap bytes) and t left empty. */
int tb_parse(tb_table_t *t, const char *text, size_t len, char *why, size_t cap);
/* A game's table by its option: "" the synthetic N x K, "objects" ArCHer's
 * 157 Twenty Questions objects, "cities" its 91 Guess-My-City cities (both
 * built in from share/data/games/derived/), else the path of a table file
 * (at most 1 MiB). 0, or the error h->fail reported, prefixed by game. */
int tb_load(const lathe_host_t *h, lathe_ctx_t *c, const char *game, const char *table, int N,
            int K, tb_table_t *t);
void tb_free(tb_table_t *t);
/* The index of object word w / of test (attr, val); -1 if none. */
int tb_object(const tb_table_t *t, const char *w);
int tb_test(const tb_table_t *t, const char *attr, const char *val);
/* The expected returns from the full set at turn 0 (turn limit T, discount
 * g) of the best play (optimal) and of the best that guesses only once one
 * candidate is left (identify), by an exact branch-and-bound DP over
 * (candidate set, turn). 0, or LATHE_ENOMEM (memory, or more than
 * TB_MAX_MEMO states). */
int tb_values(const tb_table_t *t, int T, double g, double *opt, double *ident);

static inline tb_set_t tb_and(tb_set_t a, tb_set_t b) {
  for (int i = 0; i < TB_WORDS; i++) a.w[i] &= b.w[i];
  return a;
}
static inline tb_set_t tb_andnot(tb_set_t a, tb_set_t b) {
  for (int i = 0; i < TB_WORDS; i++) a.w[i] &= ~b.w[i];
  return a;
}
static inline int tb_count(tb_set_t a) {
  int n = 0;
  for (int i = 0; i < TB_WORDS; i++) n += __builtin_popcountll(a.w[i]);
  return n;
}
static inline int tb_empty(tb_set_t a) {
  uint64_t x = 0;
  for (int i = 0; i < TB_WORDS; i++) x |= a.w[i];
  return !x;
}
static inline int tb_equal(tb_set_t a, tb_set_t b) {
  return !memcmp(&a, &b, sizeof a);
}
static inline int tb_has(tb_set_t a, int i) {
  return (int)(a.w[i >> 6] >> (i & 63) & 1);
}
/* The set of objects 0..n-1. */
static inline tb_set_t tb_all(int n) {
  tb_set_t s = {{0}};
  for (int i = 0; i < n; i++) s.w[i >> 6] |= 1ULL << (i & 63);
  return s;
}

#define TEXTENV_PLUGIN(ID, NAME, DOC)                                                              \
  static const lathe_textenv_t ID##_if = {                                                         \
      .reset = ID##_reset, .step = ID##_step, .info = ID##_info, .set_hidden = ID##_set_hidden};   \
  static const lathe_plugin_t ID##_plugin = {.major = LATHE_API_MAJOR,                             \
                                             .minor = LATHE_API_TARGET,                            \
                                             .name = NAME,                                         \
                                             .kind = LATHE_TEXTENV,                                \
                                             .version = "1.0.0",                                   \
                                             .doc = DOC,                                           \
                                             .opts = ID##_opts,                                    \
                                             .nn_abi = NN_ABI,                                     \
                                             .create = ID##_create,                                \
                                             .destroy = ID##_destroy,                              \
                                             .save = ID##_save,                                    \
                                             .load = ID##_load,                                    \
                                             .textenv = &ID##_if};                                 \
  LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_##ID, ID##_plugin)

#endif
