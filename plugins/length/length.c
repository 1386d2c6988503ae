/* length.c - the synthetic length tasks of Tajwar et al. 2024, at small scale
 * (onpolicy_pref.md): prompts of random word tokens, responses of words ended
 * by EOS (token 0), a reference whose response length is broad (min_len to
 * max_response - 1 words, mode at `mode`), and a gold reward on the length:
 *   min   -|y|            (the optimum is in the reference's low-density tail)
 *   mode  -||y| - mode|   (the optimum is the reference's mode)
 *   skew  -|y|, and offline preference data only from responses with
 *         |y| >= skew_min (the offline data miss the optimum)
 * |y| counts words, not the EOS; a response cut at max_response has no EOS. */
#include <math.h>
#include <string.h>

#include "../taskutil.h"

static const lathe_opt_t opts[] = {
    {"variant", LATHE_STR, "min", 0, 0, "min|mode|skew", "which length reward"},
    {"vocab", LATHE_INT, "32", 3, 4096, NULL, "tokens: 0 is EOS, the rest are words"},
    {"prompt_len", LATHE_INT, "4", 1, 64, NULL, "words per prompt"},
    {"max_response", LATHE_INT, "64", 4, 1024, NULL, "response tokens at most (EOS included)"},
    {"mode", LATHE_NUM, "32", 1, 1024, NULL, "the reference's most likely length"},
    {"spread", LATHE_NUM, "12", 0.5, 1024, NULL, "std of the reference's (Gaussian) length shape"},
    {"min_len", LATHE_INT, "8", 1, 1024, NULL, "the reference's shortest response"},
    {"skew_min", LATHE_INT, "32", 1, 1024, NULL, "skew: shortest response in offline data"},
    {NULL}};

typedef struct {
  int variant; /* 0 min, 1 mode, 2 skew */
  int vocab, plen, maxr, min_len, skew_min;
  double mode;
  double *hazard; /* P(EOS after t words | t words so far) */
} length_t;

static void destroy_length(length_t *l) {
  if (l) free(l->hazard);
  free(l);
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  length_t *l = calloc(1, sizeof *l);
  if (!l) return h->fail(c, LATHE_ENOMEM, "out of memory");
  const char *v = h->cfg_str(c, "variant");
  l->variant = !strcmp(v, "min") ? 0 : !strcmp(v, "mode") ? 1 : 2;
  l->vocab = (int)h->cfg_int(c, "vocab"), l->plen = (int)h->cfg_int(c, "prompt_len");
  l->maxr = (int)h->cfg_int(c, "max_response"), l->min_len = (int)h->cfg_int(c, "min_len");
  l->skew_min = (int)h->cfg_int(c, "skew_min"), l->mode = h->cfg_num(c, "mode");
  double sd = h->cfg_num(c, "spread");
  int maxw = l->maxr - 1; /* the longest response that still has its EOS */
  if (l->min_len > maxw) {
    int rc = h->fail(c, LATHE_ECONFIG, "length: min_len %d leaves no room under max_response %d",
                     l->min_len, l->maxr);
    destroy_length(l);
    return rc;
  }
  l->hazard = calloc(l->maxr + 1, sizeof *l->hazard);
  double *p = calloc(l->maxr + 1, sizeof *p), tail = 0;
  if (!l->hazard || !p) {
    free(p), destroy_length(l);
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  for (int n = l->min_len; n <= maxw; n++) p[n] = exp(-0.5 * pow((n - l->mode) / sd, 2));
  for (int n = maxw; n >= 0; n--) { /* hazard = P(L = n) / P(L >= n) */
    tail += p[n];
    l->hazard[n] = tail > 0 ? p[n] / tail : 0;
  }
  for (int n = maxw; n <= l->maxr; n++) l->hazard[n] = 1;
  free(p);
  *self = l;
  return 0;
}

static int spec(void *self, lathe_task_spec_t *s) {
  length_t *l = self;
  *s = (lathe_task_spec_t){l->vocab, l->plen, l->maxr, 0};
  return 0;
}

static int prompt(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t i, int *p) {
  length_t *l = self;
  for (int k = 0; k < l->plen; k++)
    p[k] = 1 + (int)(task_mix(i * 131 + (uint64_t)k) % (uint64_t)(l->vocab - 1));
  return 0;
}

static int words(const int *resp, int n) {
  return n > 0 && resp[n - 1] == 0 ? n - 1 : n;
}

static double reward(void *self, const int *p, const int *resp, int n) {
  length_t *l = self;
  int w = words(resp, n);
  return l->variant == 1 ? -fabs(w - l->mode) : -(double)w;
}

static int reference(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const int *p,
                     const int *resp, int t, float *probs) {
  length_t *l = self;
  double hz = t <= l->maxr ? l->hazard[t] : 1;
  probs[0] = (float)hz;
  for (int k = 1; k < l->vocab; k++) probs[k] = (float)((1 - hz) / (l->vocab - 1));
  return 0;
}

static int offline_ok(void *self, const int *p, const int *resp, int n) {
  length_t *l = self;
  return l->variant != 2 || words(resp, n) >= l->skew_min;
}

static void destroy(void *self) {
  destroy_length(self);
}

TASK_PLUGIN("length", "the Min / Mode / Skew Length tasks of the on-policy preference paper",
            offline_ok, destroy)
