/* bandit.c - the didactic bandit of Tajwar et al. 2024 (onpolicy_pref.md):
 * a one-token prompt drawn uniformly from the vocabulary, a 9-token response,
 * and a reward peaked at token 70 (r1: far from where the reference puts its
 * mass) or token 20 (r2: where the reference is likely). The reference
 * distribution p_data is the 100-bin histogram on [-1, 1] of tanh(X),
 * X ~ Cauchy(-0.7, 0.4), with exact bin masses from the CDF. */
#include <math.h>
#include <string.h>

#include "../taskutil.h"

static const lathe_opt_t opts[] = {
    {"reward", LATHE_STR, "r1", 0, 0, "r1|r2",
     "r1: peak at token 70, unlikely under the reference; r2: peak at 20, likely"},
    {"width", LATHE_NUM, "10", 0.1, 1e3, NULL, "reward exp(-((y - peak) / width)^2) per token"},
    {"response_len", LATHE_INT, "9", 1, 64, NULL, "tokens per response"},
    {"reward_over", LATHE_STR, "response", 0, 0, "response|sequence",
     "average the reward over the response, or over prompt and response as the "
     "reference code does"},
    {"prompt_salt", LATHE_INT, "0", 0, 1e18, NULL, "changes which token prompt i is"},
    {NULL}};

#define V 100

typedef struct {
  double peak, width;
  int len, over_seq;
  uint64_t salt;
  float pdata[V];
} bandit_t;

/* P(tanh(X) <= v) for X ~ Cauchy(loc, scale) */
static double cdf(double v, double loc, double scale) {
  if (v <= -1) return 0;
  if (v >= 1) return 1;
  return 0.5 + atan((atanh(v) - loc) / scale) / M_PI;
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  bandit_t *b = calloc(1, sizeof *b);
  if (!b) return h->fail(c, LATHE_ENOMEM, "out of memory");
  b->peak = strcmp(h->cfg_str(c, "reward"), "r1") ? 20 : 70;
  b->width = h->cfg_num(c, "width");
  b->len = (int)h->cfg_int(c, "response_len");
  b->over_seq = !strcmp(h->cfg_str(c, "reward_over"), "sequence");
  b->salt = (uint64_t)h->cfg_int(c, "prompt_salt");
  for (int i = 0; i < V; i++)
    b->pdata[i] = (float)(cdf(-1 + 0.02 * (i + 1), -0.7, 0.4) - cdf(-1 + 0.02 * i, -0.7, 0.4));
  *self = b;
  return 0;
}

static int spec(void *self, lathe_task_spec_t *s) {
  bandit_t *b = self;
  *s = (lathe_task_spec_t){V, 1, b->len, -1};
  return 0;
}

static int prompt(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, uint64_t i, int *p) {
  bandit_t *b = self;
  p[0] = (int)(task_mix(i ^ (b->salt * 0x632be59bd9b4e019ULL)) % V);
  return 0;
}

static double tok_reward(const bandit_t *b, int y) {
  double z = (y - b->peak) / b->width;
  return exp(-z * z);
}

static double reward(void *self, const int *p, const int *resp, int n) {
  bandit_t *b = self;
  double s = b->over_seq ? tok_reward(b, p[0]) : 0;
  for (int i = 0; i < n; i++) s += tok_reward(b, resp[i]);
  return n + b->over_seq ? s / (n + b->over_seq) : 0;
}

static int reference(void *self, const lathe_host_t *h, lathe_ctx_t *ctx, const int *p,
                     const int *resp, int t, float *probs) {
  memcpy(probs, ((bandit_t *)self)->pdata, sizeof(float) * V);
  return 0;
}

static void destroy(void *self) {
  free(self);
}

TASK_PLUGIN("bandit", "the didactic bandit of the on-policy preference paper (R1/R2 rewards)", NULL,
            destroy)
