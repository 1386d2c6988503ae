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
 * reply "invalid" and costs its turn. Header-only; included by the games. */
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
