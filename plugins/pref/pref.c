/* pref.c - preference fine-tuning of a GPT policy on a task: the DPO family
 * offline and on-policy, and the baselines of the on-policy preference paper
 * (Tajwar et al. 2024; specs dpo.md and onpolicy_pref.md).
 *
 * A run has two phases, both counted in its steps:
 *  1. reference: ref_steps Adam steps fitting the policy to the task's
 *     reference distribution (soft cross-entropy at every response position of
 *     the policy's own samples); the result is frozen as pi_ref, and the policy
 *     starts from it with a fresh optimizer.
 *  2. training: `queries` reward queries in all. On-policy, every inner_steps
 *     gradient steps sample `samples` responses for each of `prompts` new
 *     prompts from the current policy and score them; offline, the same number
 *     of responses is sampled once from pi_ref (kept only where the task's
 *     offline filter allows) and minibatches of `prompts` groups are drawn from
 *     it. Both take the same number of gradient steps.
 * Losses per group of responses to one prompt (log-probabilities summed over
 * response tokens, the prompt masked, the logit at position t-1 scoring token t):
 *   dpo cdpo robust hinge ipo  pairs (best vs worst, or every ordered pair) whose
 *                              reward gap exceeds gap_threshold (nn_pref_pair)
 *   sft    -log pi(best)   (offline: Pref-FT)        bon  the same, on-policy,
 *          + neg_lambda log pi(worst) with a negative gradient
 *   rwr    -sum exp(r~ / rwr_temp) log pi(y), r~ normalised within the group
 *   reinforce  -sum_t [r~ log pi_t - kl_coef (log pi_t - log ref_t)], r~ from
 *              running reward statistics
 *   ppo    the clipped ratio to the sampling policy, per token, + kl_coef KL
 * negative_gradient = false removes every push-down: the rejected side of a
 * pair gets no gradient, BoN drops its worst term, and REINFORCE/PPO clip
 * negative advantages to zero.
 * With reward_run on a task, that run's reward model scores every training
 * response instead of the task (a proxy reward: it reads prompt and response
 * as task_text words, as the taskprefs generator writes its pairs);
 * evaluation keeps the task's gold reward (eval/reward) and reports a
 * Bradley-Terry proxy's beside it (eval/proxy_reward), so over-optimisation
 * shows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../taskutil.h"
#include "pref.h"

static const lathe_opt_t opts[] = {
    {"task", LATHE_STR, "bandit", 0, 0, NULL, "the task plugin (prompts, reward, reference)"},
    {"dataset", LATHE_STR, "", 0, 0, NULL,
     "a prefs dataset instead of a task (offline; needs init_run)"},
    {"reward_run", LATHE_INT, "0", 0, 4e9, NULL,
     "the rm/rrm run whose reward model scores samples: on a dataset it ranks on-policy samples "
     "(onpolicy = true); on a task it replaces the task's reward in training (a proxy reward "
     "model; evaluation keeps the task's)"},
    {"init_run", LATHE_INT, "0", 0, 4e9, NULL,
     "dataset mode: the run whose model starts policy "
     "and reference (an sft run)"},
    {"steps", LATHE_INT, "200", 1, 1e9, NULL, "dataset mode: gradient steps"},
    {"holdout", LATHE_NUM, "0.1", 0, 0.9, NULL, "dataset mode: held-out fraction (as sft's)"},
    {"test_split", LATHE_NUM, "0", 0, 0.9, NULL,
     "dataset mode: share of the held-out pairs kept as a test split (test/ metrics; eval/ is "
     "then the validation split to select on)"},
    {"task_args", LATHE_STR, "", 0, 0, NULL, "the task's options, \"key=value,key=value\""},
    {"method", LATHE_STR, "dpo", 0, 0, "dpo|cdpo|robust|hinge|ipo|sft|bon|rwr|reinforce|ppo",
     "the loss"},
    {"onpolicy", LATHE_BOOL, "true", 0, 0, NULL,
     "sample from the current policy each iteration (false: once, from the reference)"},
    {"negative_gradient", LATHE_BOOL, "true", 0, 0, NULL,
     "push down worse responses (rejected side, BoN worst, negative advantages)"},
    {"beta", LATHE_NUM, "0.1", 1e-6, 1e6, NULL, "DPO beta; IPO tau (target margin 1/(2 tau))"},
    {"label_smoothing", LATHE_NUM, "0.1", 0, 0.499, NULL, "cdpo / robust epsilon"},
    {"ipo_norm", LATHE_STR, "avg", 0, 0, "avg|sum",
     "IPO on per-token averages (TRL) or sequence sums (the paper)"},
    {"pairs", LATHE_STR, "best_worst", 0, 0, "best_worst|all",
     "pairs per group: best vs worst, or every ordered pair"},
    {"gap_threshold", LATHE_NUM, "0", 0, 1e9, NULL, "skip pairs whose reward gap is not above it"},
    {"neg_lambda", LATHE_NUM, "0.1", 0, 1e3, NULL, "bon: weight of the worst-response push-down"},
    {"rwr_temp", LATHE_NUM, "1", 1e-6, 1e6, NULL, "rwr: temperature of exp(r~ / T)"},
    {"kl_coef", LATHE_NUM, "0", 0, 1e6, NULL, "reinforce / ppo: per-token KL penalty weight"},
    {"ppo_clip", LATHE_NUM, "0.2", 0, 1, NULL, "ppo: ratio clip epsilon"},
    {"samples", LATHE_INT, "10", 2, 1024, NULL, "responses per prompt (N)"},
    {"prompts", LATHE_INT, "10", 1, 4096, NULL, "prompts per iteration / minibatch"},
    {"inner_steps", LATHE_INT, "10", 1, 1e6, NULL, "gradient steps per on-policy batch"},
    {"queries", LATHE_INT, "10000", 1, 1e9, NULL, "reward queries in all (equal across methods)"},
    {"lr", LATHE_NUM, "0.001", 0, 10, NULL, "Adam learning rate"},
    {"grad_clip", LATHE_NUM, "1", 0, 1e9, NULL, "gradient norm clip (0: off)"},
    {"temperature", LATHE_NUM, "1", 0, 100, NULL, "sampling temperature (0: greedy)"},
    {"layers", LATHE_INT, "3", 1, 64, NULL, "GPT layers"},
    {"heads", LATHE_INT, "3", 1, 64, NULL, "GPT attention heads"},
    {"width", LATHE_INT, "48", 4, 4096, NULL, "GPT width (a multiple of heads)"},
    {"ref_steps", LATHE_INT, "100", 0, 1e7, NULL, "Adam steps fitting the reference"},
    {"ref_lr", LATHE_NUM, "0.01", 0, 10, NULL, "learning rate of the reference fit"},
    {"ref_batch", LATHE_INT, "64", 1, 1e5, NULL, "sequences per reference-fit step"},
    {"eval_every", LATHE_INT, "20", 1, 1e9, NULL, "training steps between evaluations"},
    {"eval_prompts", LATHE_INT, "100", 1, 1e6, NULL, "held-out prompts, one sample each"},
    {NULL}};

/* ---- sets ---------------------------------------------------------------------- */

static void set_free(set_t *s) {
  free(s->tok), free(s->rlen), free(s->mask), free(s->reward), free(s->ref_tok), free(s->old_tok);
  memset(s, 0, sizeof *s);
}

static int set_alloc(set_t *s, int M, int n, int T) {
  set_free(s);
  s->M = M, s->n = n, s->T = T;
  size_t MT = (size_t)M * T;
  s->tok = calloc(MT, sizeof *s->tok), s->rlen = calloc(M, sizeof *s->rlen);
  s->mask = calloc(MT, sizeof *s->mask), s->reward = calloc(M, sizeof *s->reward);
  s->ref_tok = calloc(MT, sizeof *s->ref_tok), s->old_tok = calloc(MT, sizeof *s->old_tok);
  return s->tok && s->rlen && s->mask && s->reward && s->ref_tok && s->old_tok ? 0 : LATHE_ENOMEM;
}

static void set_save(const set_t *s, lathe_buf_t *b) {
  LATHE_PUT(b, s->M), LATHE_PUT(b, s->n), LATHE_PUT(b, s->T);
  size_t MT = (size_t)s->M * s->T;
  lathe_buf_put(b, s->tok, MT * sizeof *s->tok), lathe_buf_put(b, s->rlen, s->M * sizeof(int));
  lathe_buf_put(b, s->mask, MT * sizeof(float)), lathe_buf_put(b, s->reward, s->M * sizeof(double));
  lathe_buf_put(b, s->ref_tok, MT * sizeof(float));
  lathe_buf_put(b, s->old_tok, MT * sizeof(float));
}

/* Read a batch back: its sequence length must be the config's (T), every
 * token an id below V and every response length at most R, and the bytes
 * must be there before anything is allocated (found by fuzzing: a count of
 * 2^26 rows asked for gigabytes). */
static int set_load(set_t *s, lathe_buf_t *b, int Tcfg, int V, int R, int N, int groups) {
  int M, n, T;
  LATHE_GET(b, M), LATHE_GET(b, n), LATHE_GET(b, T);
  if (b->err || M < 0 || M > (1 << 26) || T < 0 || T > (1 << 16)) return LATHE_ECKPT;
  if (!M) { /* no batch yet */
    set_free(s);
    return 0;
  }
  /* groups of the config's N samples, at least the groups a step reads */
  if (T != Tcfg || n != N || M % n || M < n * groups) return LATHE_ECKPT;
  size_t MT = (size_t)M * T;
  /* 16 bytes per token (id, mask, two log-probs), 12 per row (length, reward) */
  if (lathe_buf_left(b) / 16 < MT || lathe_buf_left(b) - 16 * MT < 12 * (size_t)M)
    return LATHE_ECKPT;
  if (set_alloc(s, M, n, T)) return LATHE_ENOMEM;
  lathe_buf_get(b, s->tok, MT * sizeof *s->tok), lathe_buf_get(b, s->rlen, M * sizeof(int));
  lathe_buf_get(b, s->mask, MT * sizeof(float)), lathe_buf_get(b, s->reward, M * sizeof(double));
  lathe_buf_get(b, s->ref_tok, MT * sizeof(float));
  lathe_buf_get(b, s->old_tok, MT * sizeof(float));
  if (b->err) return LATHE_ECKPT;
  for (size_t i = 0; i < MT; i++)
    if (s->tok[i] < 0 || s->tok[i] >= V) return LATHE_ECKPT;
  for (int i = 0; i < M; i++)
    if (s->rlen[i] < 0 || s->rlen[i] > R) return LATHE_ECKPT;
  return 0;
}

/* ---- the model ------------------------------------------------------------------ */

static float *scratch(pref_t *p, size_t n) {
  if (n > p->nbuf) {
    float *nb = realloc(p->buf, n * sizeof *nb);
    if (!nb) return NULL;
    p->buf = nb, p->nbuf = n;
  }
  return p->buf;
}

/* Backward of sum_b,t w[b,t] * logp[b,t] (w at response tokens) through g's last forward. */
static void backward_weighted(pref_t *p, nn_gpt_t *g, int M, const float *w) {
  float *ones = scratch(p, (size_t)M);
  for (int b = 0; b < M; b++) ones[b] = 1;
  nn_gpt_logprobs_backward(g, ones, w);
}

/* ---- sampling ------------------------------------------------------------------ */

/* Decode responses for sequences [b0, b1) of s (prompts already in place). */
static int decode(pref_t *p, nn_gpt_t *g, nn_rng_t *rng, set_t *s, int b0, int b1) {
  int M = b1 - b0, P = p->P, T = p->T, R = p->R, rc = LATHE_ENOMEM;
  int *plen = malloc(M * sizeof *plen), *olen = malloc(M * sizeof *olen);
  int *out = malloc((size_t)M * R * sizeof *out);
  nn_gen_t gen = {(float)p->temp, 0, 1.0f, &p->spec.eos, p->spec.eos >= 0, 0};
  if (plen && olen && out) {
    for (int b = 0; b < M; b++) plen[b] = P;
    rc = nn_lm_generate(g, s->tok + (size_t)b0 * T, plen, M, T, R, &gen, rng, out, olen, NULL);
  }
  for (int b = 0; b < M && !rc; b++) {
    size_t at = (size_t)(b0 + b) * T + P;
    for (int j = 0; j < olen[b]; j++) s->tok[at + j] = out[(size_t)b * R + j], s->mask[at + j] = 1;
    s->rlen[b0 + b] = olen[b];
  }
  free(plen), free(olen), free(out);
  return rc;
}

/* Sample n responses for each of G prompts (indices prompt0..) from g with
 * rng. With score, also ask the task for rewards (counted as queries) and
 * record the per-token log-probs under pi_ref and under g (the sampling
 * policy). */
static int sample_with(pref_t *p, nn_gpt_t *g, nn_rng_t *rng, uint64_t prompt0, int G, int n,
                       set_t *s, int score) {
  int M = G * n, P = p->P, T = p->T, rc;
  if ((rc = set_alloc(s, M, n, T))) return rc;
  int prompt[64];
  for (int gi = 0; gi < G; gi++) {
    p->tp->task->prompt(p->task, p->h, p->c, prompt0 + gi, prompt);
    for (int j = 0; j < n; j++) memcpy(s->tok + (size_t)(gi * n + j) * T, prompt, P * sizeof(int));
  }
  const int chunk = 512; /* bounds the KV cache */
  for (int b0 = 0; b0 < M; b0 += chunk)
    if ((rc = decode(p, g, rng, s, b0, b0 + chunk < M ? b0 + chunk : M))) return rc;
  if (!score) return 0;
  for (int b = 0; b < M; b++)
    s->reward[b] = p->tp->task->reward(p->task, s->tok + (size_t)b * T, s->tok + (size_t)b * T + P,
                                       s->rlen[b]);
  p->queries += M;
  for (int b0 = 0; b0 < M; b0 += chunk) {
    int m = b0 + chunk < M ? chunk : M - b0;
    if ((rc = nn_gpt_token_logprobs(&p->ref, s->tok + (size_t)b0 * T, m, T,
                                    s->ref_tok + (size_t)b0 * T)) ||
        (rc = nn_gpt_token_logprobs(g, s->tok + (size_t)b0 * T, m, T, s->old_tok + (size_t)b0 * T)))
      return rc;
  }
  for (size_t i = 0; i < (size_t)M * T; i++)
    if (!s->mask[i]) s->ref_tok[i] = s->old_tok[i] = 0;
  return 0;
}

/* x holds an integer in [lo, hi] (a gathered id or length) */
static int o_ok(const float *x, int lo, int hi) {
  return *x >= lo && *x <= hi && *x == (float)(int)*x;
}

nn_rng_t *pref_shard_rng(pref_t *p, nn_rng_t *own) {
  if (p->nshards < 2) return &p->rng;
  uint64_t base = nn_rng_u64(&p->rng);
  nn_rng_seed(own, base + 0x9e3779b97f4a7c15ULL * (uint64_t)(p->shard + 1));
  return own;
}

int pref_sum_stats(pref_t *p, double *x, int n, nn_pref_stats_t *ps) {
  if (p->nshards < 2) return 0;
  float v[16] = {(float)ps->chosen,     (float)ps->rejected,     (float)ps->margins,
                 (float)ps->accuracies, (float)ps->logps_chosen, (float)ps->logps_rejected,
                 (float)ps->pairs};
  for (int i = 0; i < n && i < 8; i++) v[7 + i] = (float)x[i];
  int rc = p->h->allreduce(p->c, v, (size_t)(7 + n));
  ps->chosen = v[0], ps->rejected = v[1], ps->margins = v[2], ps->accuracies = v[3];
  ps->logps_chosen = v[4], ps->logps_rejected = v[5], ps->pairs = (int)v[6];
  for (int i = 0; i < n && i < 8; i++) x[i] = v[7 + i];
  return rc;
}

/* sample_with for G groups split over the shards: shard k samples groups
 * [k G/N, (k+1) G/N) with its own stream, and every shard gets the whole set
 * (an all-gather: each shard's rows in a zeroed buffer, summed; ids, lengths
 * and log-probs are exact in float, a reward is carried as two floats).
 * G must divide by the shard count. */
static int sample(pref_t *p, nn_gpt_t *g, uint64_t prompt0, int G, int n, set_t *s, int score) {
  nn_rng_t own, *rng = pref_shard_rng(p, &own);
  if (p->nshards < 2) return sample_with(p, g, rng, prompt0, G, n, s, score);
  int Gl = G / p->nshards, T = p->T, M = G * n, Ml = Gl * n, row0 = p->shard * Ml;
  set_t loc = {0};
  int rc = sample_with(p, g, rng, prompt0 + (uint64_t)(p->shard * Gl), Gl, n, &loc, score);
  size_t per = 4 * (size_t)T + 3; /* a row: tok, mask, ref_tok, old_tok (T each), rlen, reward */
  float *x = rc ? NULL : calloc((size_t)M * per, sizeof *x);
  if (!rc && !x) rc = LATHE_ENOMEM;
  if (!rc && (rc = set_alloc(s, M, n, T))) rc = LATHE_ENOMEM;
  for (int b = 0; b < Ml && !rc; b++) {
    float *o = x + (size_t)(row0 + b) * per;
    for (int t = 0; t < T; t++) {
      size_t i = (size_t)b * T + t;
      o[t] = (float)loc.tok[i], o[T + t] = loc.mask[i];
      o[2 * T + t] = loc.ref_tok[i], o[3 * T + t] = loc.old_tok[i];
    }
    float hi = (float)loc.reward[b];
    o[4 * T] = (float)loc.rlen[b], o[4 * T + 1] = hi;
    o[4 * T + 2] = isfinite(loc.reward[b]) ? (float)(loc.reward[b] - hi) : 0;
  }
  if (!rc) rc = p->h->allreduce(p->c, x, (size_t)M * per);
  /* the other shards' ids and lengths will index the model: in range, or no batch */
  for (int b = 0; b < M && !rc; b++) {
    const float *o = x + (size_t)b * per;
    int ok = o_ok(o + 4 * T, 0, p->R);
    for (int t = 0; t < T && ok; t++) ok = o_ok(o + t, 0, p->V - 1);
    if (!ok)
      rc = p->h->fail(p->c, LATHE_EIO, "pref: a shard's samples hold an id or length out of range");
  }
  for (int b = 0; b < M && !rc; b++) {
    const float *o = x + (size_t)b * per;
    for (int t = 0; t < T; t++) {
      size_t i = (size_t)b * T + t;
      s->tok[i] = (int)o[t], s->mask[i] = o[T + t];
      s->ref_tok[i] = o[2 * T + t], s->old_tok[i] = o[3 * T + t];
    }
    s->rlen[b] = (int)o[4 * T], s->reward[b] = (double)o[4 * T + 1] + (double)o[4 * T + 2];
  }
  if (!rc && score) p->queries += M - Ml; /* the other shards' queries */
  free(x);
  set_free(&loc);
  return rc;
}

/* A failed sample's code, its message set: out of memory here; the
 * all-reduce and the check of the shards' samples set their own. */
static int sample_fail(const lathe_host_t *h, lathe_ctx_t *c, int rc) {
  return rc == LATHE_ENOMEM ? h->fail(c, rc, "pref: sampling failed (out of memory)") : rc;
}

/* The proxy reward model's scores of the responses of s (groups of s->n
 * responses to one prompt) into out(M), as task_text words. Returns 0 or a
 * code, its message set. */
static int proxy_score(pref_t *p, const set_t *s, double *out) {
  int n = s->n, T = p->T, rc = 0;
  size_t cap = (size_t)(p->P > p->R ? p->P : p->R) * 9 + 1;
  char *pt = malloc(cap), *buf = malloc(cap * (size_t)n);
  const char **resp = malloc(sizeof *resp * (size_t)n);
  if (!pt || !buf || !resp) rc = LATHE_ENOMEM;
  for (int g = 0; g < s->M / n && !rc; g++) {
    task_text(s->tok + (size_t)g * n * T, p->P, -1, pt, cap);
    for (int k = 0; k < n; k++) {
      const int *r = s->tok + (size_t)(g * n + k) * T + p->P;
      resp[k] = buf + cap * (size_t)k;
      task_text(r, s->rlen[g * n + k], p->spec.eos, buf + cap * (size_t)k, cap);
    }
    rc = nn_rm_rank(&p->rm, pt, resp, n, out + (size_t)g * n);
  }
  free(pt), free(buf), free(resp);
  return rc ? p->h->fail(p->c, rc, "pref: the proxy reward model could not score the samples") : 0;
}

/* Training rewards from the proxy reward model instead of the task's (whose
 * mean is logged as train/gold_reward); nothing without one. */
static int use_proxy(pref_t *p, set_t *s) {
  if (!p->has_rm) return 0;
  double gold = 0;
  for (int b = 0; b < s->M; b++) gold += s->reward[b];
  p->h->metric(p->c, "train/gold_reward", s->M ? gold / s->M : 0);
  return proxy_score(p, s, s->reward);
}

/* Mean and variance of the finite values of r[0..n) (-inf marks a response
 * the offline data excludes); returns how many there are. */
static int finite_stats(const double *r, int n, double *mean, double *var) {
  int k = 0;
  double m = 0, v = 0;
  for (int i = 0; i < n; i++) k += isfinite(r[i]) != 0;
  for (int i = 0; i < n; i++) m += isfinite(r[i]) ? r[i] / k : 0;
  for (int i = 0; i < n; i++) v += isfinite(r[i]) ? (r[i] - m) * (r[i] - m) / k : 0;
  *mean = m, *var = v;
  return k;
}

/* ---- losses ---------------------------------------------------------------------- */

typedef struct {
  double loss, logit_c, logit_r; /* logits: summed over pairs, like ps */
  nn_pref_stats_t ps;
} stats_t;

static double seq_sum(const float *x, const float *mask, int T) {
  double s = 0;
  for (int t = 0; t < T; t++) s += mask[t] * x[t];
  return s;
}

/* mean logit over the vocabulary at the positions scoring a response: row mb
 * of g's last forward, mask the response's */
static double mean_logit(const pref_t *p, const nn_gpt_t *g, int mb, const float *mask) {
  double sum = 0;
  int n = 0;
  for (int t = 1; t < p->T; t++)
    if (mask[t]) {
      const float *z = g->logits + ((size_t)mb * p->T + t - 1) * p->V;
      for (int k = 0; k < p->V; k++) sum += z[k];
      n += p->V;
    }
  return n ? sum / n : 0;
}

/* Loss and per-token weights w (d loss / d logp) for the groups listed in
 * gidx[0..G) of s, given the policy's per-token log-probs lpt, as sums, and
 * *denom what they are averaged over (pairs, groups or sequences; then
 * group_mean); data-parallel shards add the sums up first. */
static void group_sums(pref_t *p, const set_t *s, const int *gidx, int G, const float *lpt,
                       float *w, stats_t *st, double *denom_out) {
  int n = s->n, T = p->T;
  memset(st, 0, sizeof *st);
  memset(w, 0, (size_t)G * n * T * sizeof *w);
  double denom = 0;
  for (int gi = 0; gi < G; gi++) {
    int base = gidx[gi] * n;            /* the group's first sequence in s */
    const double *r = s->reward + base; /* -inf: excluded from the data (offline filter) */
    int best = -1, worst = -1, ok = 0;
    for (int j = 0; j < n; j++) {
      if (!isfinite(r[j])) continue;
      ok++;
      if (best < 0 || r[j] > r[best]) best = j;
      if (worst < 0 || r[j] < r[worst]) worst = j;
    }
    if (!ok) continue;
    double lp[1024], ref[1024];
    for (int j = 0; j < n; j++) {
      lp[j] = seq_sum(lpt + (size_t)(gi * n + j) * T, s->mask + (size_t)(base + j) * T, T);
      ref[j] = seq_sum(s->ref_tok + (size_t)(base + j) * T, s->mask + (size_t)(base + j) * T, T);
    }
#define W(j)    (w + (size_t)(gi * n + (j)) * T)
#define MASK(j) (s->mask + (size_t)(base + (j)) * T)
    if (p->method < M_SFT) { /* the DPO family on pairs */
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
          if (!p->all_pairs && (i != best || j != worst)) continue;
          if (!isfinite(r[i]) || !isfinite(r[j]) || !(r[i] - r[j] > p->gap)) continue;
          double dw, dl;
          st->loss += nn_pref_pair(&p->pref, lp[i], lp[j], ref[i], ref[j], s->rlen[base + i],
                                   s->rlen[base + j], &dw, &dl);
          if (!p->neg) dl = 0;
          for (int t = 0; t < T; t++)
            W(i)[t] += (float)dw * MASK(i)[t], W(j)[t] += (float)dl * MASK(j)[t];
          nn_pref_stats_add(&st->ps, p->pref.beta, lp[i], lp[j], ref[i], ref[j]);
          st->logit_c += mean_logit(p, &p->pol, gi * n + i, MASK(i));
          st->logit_r += mean_logit(p, &p->pol, gi * n + j, MASK(j));
        }
      continue;
    }
    switch (p->method) {
    case M_SFT:
    case M_BON: {
      int push = p->method == M_BON && p->neg && worst != best && r[worst] < r[best];
      double gb, gw;
      st->loss += nn_bon_loss(lp[best], push ? lp[worst] : 0, push ? p->neg_lambda : 0, &gb, &gw);
      denom += 1;
      for (int t = 0; t < T; t++) W(best)[t] += (float)gb * MASK(best)[t];
      if (push)
        for (int t = 0; t < T; t++) W(worst)[t] += (float)gw * MASK(worst)[t];
      break;
    }
    case M_RWR: {
      double m, v;
      finite_stats(r, n, &m, &v);
      for (int j = 0; j < n; j++) {
        if (!isfinite(r[j])) continue;
        double wt = nn_rwr_weight((r[j] - m) / (sqrt(v) + 1e-8), p->rwr_temp);
        st->loss -= wt * lp[j];
        for (int t = 0; t < T; t++) W(j)[t] -= (float)wt * MASK(j)[t];
      }
      denom += ok;
      break;
    }
    default: /* reinforce, ppo: token losses with the running-normalised reward */
      for (int j = 0; j < n; j++) {
        if (!isfinite(r[j])) continue;
        double adv = (r[j] - p->rmean) / (sqrt(p->rvar) + 1e-8);
        if (!p->neg && adv < 0) adv = 0;
        const float *lt = lpt + (size_t)(gi * n + j) * T;
        const float *rt = s->ref_tok + (size_t)(base + j) * T,
                    *ot = s->old_tok + (size_t)(base + j) * T;
        for (int t = 0; t < T; t++) {
          if (!MASK(j)[t]) continue;
          double g;
          st->loss += p->method == M_PPO
                          ? nn_pg_ppo_token(lt[t], ot[t], rt[t], adv, p->clip, p->kl, &g)
                          : nn_pg_reinforce_token(lt[t], rt[t], adv, p->kl, &g);
          W(j)[t] = (float)g;
        }
      }
      denom += ok;
    }
#undef W
#undef MASK
  }
  *denom_out = p->method < M_SFT ? st->ps.pairs : denom;
}

/* The mean: the loss and the weights of k sequences divided by denom. */
static void group_mean(pref_t *p, stats_t *st, double denom, float *w, size_t k) {
  if (denom > 0) { /* mean over pairs / groups / sequences */
    st->loss /= denom;
    for (size_t i = 0; i < k * p->T; i++) w[i] /= (float)denom;
  }
  if (st->ps.pairs) st->logit_c /= st->ps.pairs, st->logit_r /= st->ps.pairs;
}

/* ---- the plugin ----------------------------------------------------------------- */

int pref_load_rm(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  uint32_t rrun = (uint32_t)h->cfg_int(c, "reward_run");
  lathe_buf_t rb = {0};
  char made_by[64];
  int rc = h->run_checkpoint(c, rrun, &rb, made_by);
  if (rc) return h->fail(c, rc, "pref: reward_run %u has no checkpoint", rrun);
  rc = nn_rm_load(&p->rm, &rb);
  lathe_buf_free(&rb);
  if (rc)
    return h->fail(c, LATHE_ECONFIG, "pref: reward_run %u (%s) holds no reward model", rrun,
                   made_by);
  p->has_rm = 1;
  return 0;
}

static void destroy(void *self) {
  pref_t *p = self;
  if (!p) return;
  /* the task is the host's: freed with the run */
  pairs_free(p);
  nn_rm_free(&p->rm);
  nn_tok_free(&p->tok);
  nn_gpt_free(&p->pol), nn_gpt_free(&p->ref);
  set_free(&p->cur);
  free(p->lpt), free(p->w), free(p->buf);
  free(p);
}

/* The method the config names, as run: Pref-FT on-policy is BoN, BoN offline Pref-FT. */
static int config_method(const lathe_host_t *h, lathe_ctx_t *c) {
  const char *m = h->cfg_str(c, "method");
  static const char *base[] = {"sft", "bon", "rwr", "reinforce", "ppo"};
  int method = nn_pref_parse(m), onpolicy = (int)h->cfg_int(c, "onpolicy");
  for (int i = 0; i < 5; i++)
    if (!strcmp(m, base[i])) method = M_SFT + i;
  if (method == M_SFT && onpolicy) method = M_BON;
  if (method == M_BON && !onpolicy) method = M_SFT;
  return method;
}

/* Rules across keys, checked before any run starts (pairs_create and create
 * check the same again against the store and the task). */
static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  int method = config_method(h, c), onpolicy = (int)h->cfg_int(c, "onpolicy");
  if (method == M_PPO && !onpolicy)
    return h->fail(c, LATHE_ECONFIG,
                   "pref: ppo needs onpolicy = true (its ratio is to the sampler)");
  if (h->cfg_int(c, "width") % h->cfg_int(c, "heads"))
    return h->fail(c, LATHE_ECONFIG, "pref: width %lld is not a multiple of heads %lld",
                   (long long)h->cfg_int(c, "width"), (long long)h->cfg_int(c, "heads"));
  if (!*h->cfg_str(c, "dataset")) return 0;
  if (!h->cfg_int(c, "init_run"))
    return h->fail(c, LATHE_ECONFIG, "pref: a dataset needs init_run (the SFT run to start from)");
  if (onpolicy && !h->cfg_int(c, "reward_run"))
    return h->fail(c, LATHE_ECONFIG,
                   "pref: a dataset is offline data: set onpolicy = false, or reward_run = an "
                   "rm run to rank on-policy samples");
  if (onpolicy && method >= M_SFT)
    return h->fail(c, LATHE_ECONFIG,
                   "pref: on-policy on a dataset the methods are dpo, cdpo, robust, hinge and ipo");
  if (method > M_SFT)
    return h->fail(c, LATHE_ECONFIG,
                   "pref: on a dataset the methods are dpo, cdpo, robust, hinge, ipo and sft");
  return 0;
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  pref_t *p = calloc(1, sizeof *p);
  if (!p) return h->fail(c, LATHE_ENOMEM, "out of memory");
  *self = p;
  p->h = h, p->c = c;
  /* the loss */
  int rc = validate(h, c);
  if (rc) return rc;
  p->method = config_method(h, c);
  p->onpolicy = (int)h->cfg_int(c, "onpolicy"), p->neg = (int)h->cfg_int(c, "negative_gradient");
  p->pref = (nn_pref_t){p->method < M_SFT ? (nn_pref_loss_t)p->method : NN_PREF_DPO,
                        h->cfg_num(c, "beta"), h->cfg_num(c, "label_smoothing"),
                        !strcmp(h->cfg_str(c, "ipo_norm"), "avg")};
  p->all_pairs = !strcmp(h->cfg_str(c, "pairs"), "all");
  p->gap = h->cfg_num(c, "gap_threshold"), p->neg_lambda = h->cfg_num(c, "neg_lambda");
  p->rwr_temp = h->cfg_num(c, "rwr_temp"), p->kl = h->cfg_num(c, "kl_coef");
  p->clip = h->cfg_num(c, "ppo_clip"), p->lr = h->cfg_num(c, "lr");
  p->grad_clip = h->cfg_num(c, "grad_clip"), p->temp = h->cfg_num(c, "temperature");
  p->N = (int)h->cfg_int(c, "samples"), p->M_groups = (int)h->cfg_int(c, "prompts");
  p->inner = (int)h->cfg_int(c, "inner_steps");
  p->ref_steps = h->cfg_int(c, "ref_steps"), p->ref_lr = h->cfg_num(c, "ref_lr");
  p->ref_batch = h->cfg_int(c, "ref_batch");
  p->eval_every = h->cfg_int(c, "eval_every"), p->eval_prompts = h->cfg_int(c, "eval_prompts");
  nn_rng_seed(&p->rng, h->seed(c));
  if (*h->cfg_str(c, "dataset")) { /* dataset mode: pairs.c */
    p->text = 1;
    rc = pairs_create(p, h, c);
    if (!rc) h->set_total(c, p->train_steps);
    return rc;
  }
  p->shard = h->shard(c, &p->nshards);
  if (p->M_groups % p->nshards || p->ref_batch % p->nshards)
    return h->fail(c, LATHE_ECONFIG,
                   "pref: prompts %d and ref_batch %lld must both split over %d data-parallel "
                   "shards",
                   p->M_groups, (long long)p->ref_batch, p->nshards);
  /* the task, with its options */
  if ((rc = task_create(h, c, "pref", &p->tp, &p->task))) return rc;
  p->tp->task->spec(p->task, &p->spec);
  if (h->cfg_int(c, "reward_run") && (rc = pref_load_rm(p, h, c))) return rc; /* a proxy */
  p->P = p->spec.prompt_len, p->R = p->spec.max_response, p->V = p->spec.vocab;
  p->T = p->P + p->R;
  if (p->P > 64) return h->fail(c, LATHE_ECONFIG, "pref: prompts of over 64 tokens");
  int64_t per_iter = (int64_t)p->M_groups * p->N, iters = h->cfg_int(c, "queries") / per_iter;
  if (iters < 1)
    return h->fail(c, LATHE_ECONFIG,
                   "pref: queries %lld is below one batch (prompts x samples = %lld)",
                   (long long)h->cfg_int(c, "queries"), (long long)per_iter);
  p->train_steps = iters * p->inner;
  /* the two models */
  nn_gpt_config_t gc = {p->V, p->T, (int)h->cfg_int(c, "layers"), (int)h->cfg_int(c, "heads"),
                        (int)h->cfg_int(c, "width")};
  if (nn_gpt_init(&p->pol, gc, &p->rng) || nn_gpt_init(&p->ref, gc, &p->rng))
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  nn_params_copy(&p->ref.params, &p->pol.params);
  size_t big = (size_t)per_iter * p->T; /* one minibatch */
  p->lpt = malloc(big * sizeof *p->lpt), p->w = malloc(big * sizeof *p->w);
  if (!p->lpt || !p->w) return h->fail(c, LATHE_ENOMEM, "out of memory");
  h->set_total(c, p->ref_steps + p->train_steps);
  return 0;
}

/* Clip (grad_clip > 0) and take an Adam step; *norm gets the norm before clipping. */
static int adam(pref_t *p, double lr, double *norm) {
  *norm = nn_clip_grad_norm(&p->pol.params, p->grad_clip > 0 ? (float)p->grad_clip : 0);
  nn_adamw_t o = nn_adamw_default();
  return nn_adamw_step(&p->pol.params, &o, (float)lr);
}

/* Phase 1: fit the policy to the task's reference distribution. */
static int ref_step(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  set_t s = {0};
  nn_rng_t own, *rng = pref_shard_rng(p, &own);
  /* data-parallel: this shard's rows, its loss weighted by its share of the
   * batch's response tokens */
  int B = (int)p->ref_batch / p->nshards, T = p->T, V = p->V, rows = 0;
  int rc = sample_with(p, &p->pol, rng, (uint64_t)p->next_prompt + (uint64_t)(p->shard * B), B, 1,
                       &s, 0);
  p->next_prompt += p->ref_batch;
  if (rc) {
    set_free(&s);
    return sample_fail(h, c, rc);
  }
  for (int b = 0; b < B; b++) rows += s.rlen[b];
  float *logits = nn_gpt_forward(&p->pol, s.tok, B, T);
  float *dl = scratch(p, (size_t)B * T * V + 3 * (size_t)rows * V);
  if (!logits || !dl) {
    set_free(&s);
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  float *x = dl + (size_t)B * T * V, *tg = x + (size_t)rows * V, *gx = tg + (size_t)rows * V;
  memset(dl, 0, (size_t)B * T * V * sizeof *dl);
  for (int b = 0, k = 0; b < B; b++) /* the logit at P+t-1 predicts response token t */
    for (int t = 0; t < s.rlen[b]; t++, k++) {
      const int *row = s.tok + (size_t)b * T;
      memcpy(x + (size_t)k * V, logits + ((size_t)b * T + p->P + t - 1) * V, V * sizeof *x);
      p->tp->task->reference(p->task, h, c, row, row + p->P, t, tg + (size_t)k * V);
    }
  float loss = nn_soft_ce_loss(gx, x, tg, rows, V), all = (float)rows;
  if (p->nshards > 1 && (rc = p->h->allreduce(p->c, &all, 1))) {
    set_free(&s);
    return rc;
  }
  if (p->nshards > 1) { /* (all >= rows > 0 when this shard has tokens) */
    float wgt = all > 0 ? rows / all : 0;
    for (size_t i = 0; i < (size_t)rows * V; i++) gx[i] *= wgt;
    loss *= wgt;
  }
  for (int b = 0, k = 0; b < B; b++)
    for (int t = 0; t < s.rlen[b]; t++, k++)
      memcpy(dl + ((size_t)b * T + p->P + t - 1) * V, gx + (size_t)k * V, V * sizeof *gx);
  nn_params_zero_grad(&p->pol.params);
  nn_gpt_backward(&p->pol, dl);
  set_free(&s);
  if (p->nshards > 1 && ((rc = h->allreduce(c, p->pol.params.g, p->pol.params.total)) ||
                         (rc = h->allreduce(c, &loss, 1))))
    return rc;
  double gn;
  if ((rc = adam(p, p->ref_lr, &gn))) return h->fail(c, rc, "pref: optimizer failed");
  h->metric(c, "ref/cross_entropy", loss);
  if (p->step + 1 == p->ref_steps) { /* freeze pi_ref; the policy starts over its optimizer */
    nn_params_copy(&p->ref.params, &p->pol.params);
    nn_params_reset_opt(&p->pol.params);
    h->log(c, "reference fitted: %lld steps, cross-entropy %.4f", (long long)p->ref_steps, loss);
  }
  return 0;
}

/* One sample per held-out prompt: the task reward, length and KL to pi_ref. */
static int evaluate(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  set_t s = {0};
  int64_t q = p->queries;
  /* (data-parallel: every shard evaluates, so the run's stream moves alike) */
  int E = (int)p->eval_prompts, rc = sample_with(p, &p->pol, &p->rng, 1000000000ull, E, 1, &s, 1);
  p->queries = q; /* evaluation is not part of the query budget */
  if (rc) {
    set_free(&s);
    return sample_fail(h, c, rc);
  }
  double r = 0, len = 0, kl = 0;
  for (int b = 0; b < E; b++) {
    r += s.reward[b], len += s.rlen[b];
    kl += seq_sum(s.old_tok + (size_t)b * p->T, s.mask + (size_t)b * p->T, p->T) -
          seq_sum(s.ref_tok + (size_t)b * p->T, s.mask + (size_t)b * p->T, p->T);
  }
  h->metric(c, "eval/reward", r / E), h->metric(c, "eval/length", len / E);
  h->metric(c, "eval/kl", kl / E);
  if (p->has_rm && p->rm.kind == NN_RM_BT) { /* (a pairwise model ranks, one alone is 0.5) */
    double *pr = malloc(sizeof *pr * (size_t)E), sum = 0;
    rc = pr ? proxy_score(p, &s, pr) : h->fail(c, LATHE_ENOMEM, "out of memory");
    for (int b = 0; b < E && !rc; b++) sum += pr[b];
    if (!rc) h->metric(c, "eval/proxy_reward", sum / E);
    free(pr);
  }
  set_free(&s);
  return rc;
}

/* Phase 2: one gradient step of the method. */
static int train_step(pref_t *p, const lathe_host_t *h, lathe_ctx_t *c) {
  int64_t k = p->step - p->ref_steps, rc;
  if (k % p->eval_every == 0 && (rc = evaluate(p, h, c))) return (int)rc;
  int n = p->N, G;
  int gidx[4096];
  if (p->onpolicy) {
    if (k % p->inner == 0) {
      if ((rc = sample(p, &p->pol, (uint64_t)p->next_prompt, p->M_groups, n, &p->cur, 1)))
        return sample_fail(h, c, (int)rc);
      p->next_prompt += p->M_groups;
      if ((rc = use_proxy(p, &p->cur))) return (int)rc;
      double m, v;
      finite_stats(p->cur.reward, p->cur.M, &m, &v);
      if (!p->rstats) p->rmean = m, p->rvar = v, p->rstats = 1;
      p->rmean = 0.9 * p->rmean + 0.1 * m, p->rvar = 0.9 * p->rvar + 0.1 * v;
      h->metric(c, "train/reward", m);
    }
    G = p->M_groups;
    for (int i = 0; i < G; i++) gidx[i] = i;
  } else {
    if (!p->cur.M) { /* the offline data: the whole budget, once, from pi_ref */
      int groups = (int)(p->train_steps / p->inner) * p->M_groups;
      set_t all = {0};
      if ((rc = sample(p, &p->ref, (uint64_t)p->next_prompt, groups, n, &all, 1))) {
        set_free(&all);
        return sample_fail(h, c, (int)rc);
      }
      p->next_prompt += groups;
      if ((rc = use_proxy(p, &all))) {
        set_free(&all);
        return (int)rc;
      }
      if (p->tp->task->offline_ok) /* a skewed data distribution: drop what it excludes */
        for (int b = 0; b < all.M; b++)
          if (!p->tp->task->offline_ok(p->task, all.tok + (size_t)b * p->T,
                                       all.tok + (size_t)b * p->T + p->P, all.rlen[b]))
            all.reward[b] = -INFINITY; /* never enters a comparison or a loss */
      double m, v;
      int cnt = finite_stats(all.reward, all.M, &m, &v);
      p->rmean = m, p->rvar = v, p->rstats = 1;
      set_free(&p->cur);
      p->cur = all;
      h->metric(c, "train/reward", m);
      h->log(c, "offline data: %d responses to %d prompts from pi_ref (%d kept by the task)", all.M,
             groups, cnt);
    }
    G = p->M_groups;
    for (int i = 0; i < G; i++) gidx[i] = (int)nn_rng_below(&p->rng, (uint32_t)(p->cur.M / n));
  }
  /* data-parallel: this shard's groups of the minibatch, their sums added up */
  int Gl = G / p->nshards;
  memmove(gidx, gidx + p->shard * Gl, (size_t)Gl * sizeof *gidx);
  G = Gl;
  /* the minibatch's sequences, contiguous */
  int T = p->T, Mb = G * n;
  int *tok = malloc((size_t)Mb * T * sizeof *tok);
  float *mask = malloc((size_t)Mb * T * sizeof *mask);
  if (!tok || !mask) {
    free(tok), free(mask);
    return h->fail(c, LATHE_ENOMEM, "out of memory");
  }
  for (int g = 0; g < G; g++) {
    memcpy(tok + (size_t)g * n * T, p->cur.tok + (size_t)gidx[g] * n * T,
           (size_t)n * T * sizeof *tok);
    memcpy(mask + (size_t)g * n * T, p->cur.mask + (size_t)gidx[g] * n * T,
           (size_t)n * T * sizeof *mask);
  }
  stats_t st;
  rc = nn_gpt_token_logprobs(&p->pol, tok, Mb, p->T, p->lpt);
  if (!rc) {
    /* excluded (offline-filtered) responses: rewards of -inf drop out of every comparison */
    double denom;
    group_sums(p, &p->cur, gidx, G, p->lpt, p->w, &st, &denom);
    double sums[4] = {denom, st.loss, st.logit_c, st.logit_r};
    rc = pref_sum_stats(p, sums, 4, &st.ps);
    denom = sums[0], st.loss = sums[1], st.logit_c = sums[2], st.logit_r = sums[3];
    group_mean(p, &st, denom, p->w, (size_t)Mb);
    for (size_t i = 0; i < (size_t)Mb * T; i++)
      if (!isfinite(p->w[i])) p->w[i] = 0;
    nn_params_zero_grad(&p->pol.params);
    backward_weighted(p, &p->pol, Mb, p->w);
    if (!rc) rc = h->allreduce(c, p->pol.params.g, p->pol.params.total);
    double gn;
    if (rc) {
      free(tok), free(mask);
      return (int)rc; /* the allreduce said why */
    }
    rc = adam(p, p->lr, &gn);
    h->metric(c, "loss", st.loss), h->metric(c, "grad_norm", gn);
  }
  if (!rc && p->method < M_SFT) {
    pref_report(h, c, "", &st.ps);
    if (st.ps.pairs) { /* TRL's logits/: the mean logit over the vocabulary */
      h->metric(c, "logits/chosen", st.logit_c), h->metric(c, "logits/rejected", st.logit_r);
    }
    h->metric(c, "pairs", st.ps.pairs);
  }
  h->metric(c, "task/queries", (double)p->queries);
  free(tok), free(mask);
  if (rc) return h->fail(c, (int)rc, "optimizer failed");
  if (k + 1 == p->train_steps) return evaluate(p, h, c);
  return 0;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  pref_t *p = self;
  int rc = p->text                  ? pairs_step(p, h, c)
           : p->step < p->ref_steps ? ref_step(p, h, c)
                                    : train_step(p, h, c);
  if (rc) return rc;
  p->step++;
  return p->step >= p->ref_steps + p->train_steps ? LATHE_DONE : LATHE_CONTINUE;
}

/* The policy's model block first (lathe.sample and init_run read it), then
 * the rest of the state. */
static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  pref_t *p = self;
  nn_lm_save(p->text ? &p->tok : NULL, &p->pol, b, 1);
  uint32_t version = 2;
  LATHE_PUT(b, version), LATHE_PUT(b, p->step), LATHE_PUT(b, p->rng), LATHE_PUT(b, p->queries);
  LATHE_PUT(b, p->next_prompt), LATHE_PUT(b, p->rmean), LATHE_PUT(b, p->rvar);
  LATHE_PUT(b, p->rstats);
  if (!p->text) { /* in dataset mode pi_ref is init_run's model, re-read at create */
    nn_params_save(&p->ref.params, b, 0);
    set_save(&p->cur, b);
  }
  return 0;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  pref_t *p = self;
  int rc = nn_lm_restore(p->text ? &p->tok : NULL, &p->pol, b);
  if (rc) return h->fail(c, LATHE_ECKPT, "pref: %s", nn_lm_restore_error(rc));
  uint32_t version;
  LATHE_GET(b, version);
  if (b->err || version != 2)
    return h->fail(c, LATHE_ECKPT, "pref: checkpoint version %u", version);
  LATHE_GET(b, p->step), LATHE_GET(b, p->rng), LATHE_GET(b, p->queries);
  LATHE_GET(b, p->next_prompt), LATHE_GET(b, p->rmean), LATHE_GET(b, p->rvar);
  LATHE_GET(b, p->rstats);
  rc = b->err ? LATHE_ECKPT : 0;
  if (!rc && (p->step < 0 || p->step > p->ref_steps + p->train_steps || p->queries < 0 ||
              p->next_prompt < 0))
    return h->fail(c, LATHE_ECKPT, "pref: checkpoint counters out of range (step %lld)",
                   (long long)p->step);
  if (!rc && !p->text) rc = nn_params_load(&p->ref.params, b);
  if (!rc && !p->text)
    rc = set_load(&p->cur, b, p->T, p->V, p->R, p->N, p->onpolicy ? p->M_groups : 1);
  return rc ? h->fail(c, rc, "pref: bad checkpoint") : 0;
}

static const lathe_algorithm_t algorithm = {
    .step = step, .main_metric = "eval/reward", .data_parallel = 1};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "pref",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "DPO / IPO / cDPO / hinge, offline and on-policy, "
           "and BoN, RWR, REINFORCE, PPO on a task",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY(plugin)
