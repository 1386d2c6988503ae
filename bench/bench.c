/* bench.c - the nn core's benchmark workloads, one per invocation:
 *
 *   bench WORKLOAD THREADS [REPS]
 *
 * WORKLOAD is sac_cql, dqn_mse, dqn_hlgauss, gpt128, gpt256, gpt768 (GPT-2
 * small's width, depth, heads and context at batch 2, vocabulary 512), dpo, rm_bt,
 * rm_pairwise (reward-model training, pairs/s), or sampling:
 * sample_b1, sample_b32 (64 new tokens after a 16-token prompt with the KV
 * cache; _nocache recomputes every position each step). Prints one
 * JSON line: median seconds per step, the rate in the workload's unit, peak
 * resident memory, the matrix-product FLOPs of one step and the time the same
 * products take in OpenBLAS alone (replayed from a trace of the step), so the
 * harness can report the fraction of the sgemm limit reached. bench_torch.py
 * does the same work in PyTorch; run.sh runs both and prints the ratios.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../workbench/nn/nn.h"
#include "../workbench/nn/lm.h"
#include "../workbench/nn/rm.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static nn_rng_t rng;
static float *randn(size_t n, float s) {
  float *x = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = s * nn_rng_normal(&rng);
  return x;
}

/* ---- workload 2: DQN update on CartPole sizes ---------------------------- */

typedef struct {
  nn_mlp_t q, tq;
  nn_head_t head;
  nn_adamw_t opt;
  int B, A, K;
  float *obs, *next, *rew, *done, *y, *g, *dout, *gath;
  int *act;
} dqn_w;

static void dqn_init(dqn_w *w, int hl) {
  w->B = 128, w->A = 2, w->K = hl ? 51 : 1;
  nn_head_init(&w->head, hl ? NN_HEAD_HL_GAUSS : NN_HEAD_MSE, 51, -10, 110, 0.75f);
  int width[4] = {4, 120, 84, w->A * w->K};
  nn_mlp_init(&w->q, "q", 3, width, NN_RELU, 0, &rng);
  nn_mlp_init(&w->tq, "q", 3, width, NN_RELU, 0, &rng);
  w->opt = nn_adamw_default(), w->opt.lr = 2.5e-4f;
  w->obs = randn(w->B * 4, 1), w->next = randn(w->B * 4, 1), w->rew = randn(w->B, 1);
  w->done = calloc(w->B, sizeof(float)), w->act = malloc(w->B * sizeof(int));
  for (int b = 0; b < w->B; b++) w->act[b] = b % 2, w->rew[b] = 1;
  w->y = malloc(sizeof(float) * w->B * w->K), w->g = malloc(sizeof(float) * w->B * w->K);
  w->gath = malloc(sizeof(float) * w->B * w->K);
  w->dout = malloc(sizeof(float) * w->B * w->A * w->K);
}

static void dqn_step(dqn_w *w) {
  int B = w->B, A = w->A, K = w->K;
  float *tn = nn_mlp_forward(&w->tq, w->next, B);
  for (int b = 0; b < B; b++) {
    float best = -INFINITY;
    for (int a = 0; a < A; a++) {
      float v = nn_head_decode(&w->head, tn + (b * A + a) * K);
      best = v > best ? v : best;
    }
    float yv = w->rew[b] + 0.99f * (1 - w->done[b]) * best;
    if (K == 1)
      w->y[b] = yv;
    else
      nn_head_target(&w->head, yv, w->y + b * K);
  }
  float *out = nn_mlp_forward(&w->q, w->obs, B);
  for (int b = 0; b < B; b++) memcpy(w->gath + b * K, out + (b * A + w->act[b]) * K, 4 * K);
  nn_head_loss(&w->head, w->gath, w->y, B, w->g);
  memset(w->dout, 0, sizeof(float) * B * A * K);
  for (int b = 0; b < B; b++) memcpy(w->dout + (b * A + w->act[b]) * K, w->g + b * K, 4 * K);
  nn_params_zero_grad(&w->q.params);
  nn_mlp_backward(&w->q, w->dout, NULL);
  nn_adamw_step(&w->q.params, &w->opt, w->opt.lr);
}

/* ---- workload 1: SAC + CQL critic and actor update ----------------------- */
/* obs 29, act 8, twin Q 256-256-256, actor 256-256-256 -> (mean, log_std),
 * batch 256, 10 sampled actions per source (uniform, pi(s), pi(s')) for CQL. */

enum { S_OBS = 29, S_ACT = 8, S_B = 256, S_N = 10 };

typedef struct {
  nn_mlp_t q[2], tq[2], pi;
  nn_adamw_t opt;
  float *obs, *next, *act, *rew, *done;
  float *x, *dx, *qout, *dq, *noise, *api, *logp, *pre, *std, *dpi, *da;
  int rows; /* critic rows: B data + 3 N B sampled */
} sac_w;

static void sac_init(sac_w *w) {
  int qw[5] = {S_OBS + S_ACT, 256, 256, 256, 1}, pw[5] = {S_OBS, 256, 256, 256, 2 * S_ACT};
  for (int i = 0; i < 2; i++) {
    nn_mlp_init(&w->q[i], "q", 4, qw, NN_RELU, 0, &rng);
    nn_mlp_init(&w->tq[i], "q", 4, qw, NN_RELU, 0, &rng);
  }
  nn_mlp_init(&w->pi, "pi", 4, pw, NN_RELU, 0, &rng);
  w->opt = nn_adamw_default(), w->opt.lr = 3e-4f;
  w->rows = S_B * (1 + 3 * S_N);
  w->obs = randn(S_B * S_OBS, 1), w->next = randn(S_B * S_OBS, 1);
  w->act = randn(S_B * S_ACT, 0.5f), w->rew = randn(S_B, 1), w->done = calloc(S_B, 4);
  w->x = malloc(sizeof(float) * w->rows * (S_OBS + S_ACT));
  w->dx = malloc(sizeof(float) * S_B * (S_OBS + S_ACT));
  w->qout = malloc(sizeof(float) * w->rows * 2), w->dq = malloc(sizeof(float) * w->rows);
  w->noise = randn(S_B * S_N * S_ACT * 2, 1);
  w->api = malloc(sizeof(float) * 2 * S_B * S_N * S_ACT);
  w->logp = malloc(sizeof(float) * 2 * S_B * S_N), w->pre = malloc(sizeof(float) * S_B * S_ACT);
  w->std = malloc(sizeof(float) * S_B * S_ACT), w->dpi = malloc(sizeof(float) * S_B * 2 * S_ACT);
  w->da = malloc(sizeof(float) * S_B * S_ACT);
}

/* tanh-Gaussian samples from actor outputs out(B, 2A): n per row into a(B*n, A), logp(B*n) */
static void sample(const float *out, const float *eps, int n, float *a, float *logp) {
  for (int b = 0; b < S_B; b++)
    for (int k = 0; k < n; k++) {
      double lp = 0;
      for (int j = 0; j < S_ACT; j++) {
        float mu = out[b * 2 * S_ACT + j], ls = out[b * 2 * S_ACT + S_ACT + j];
        ls = ls < -5 ? -5 : (ls > 2 ? 2 : ls);
        float e = eps[(b * n + k) * S_ACT + j], u = mu + expf(ls) * e, t = tanhf(u);
        a[(b * n + k) * S_ACT + j] = t;
        lp += -0.5 * e * e - ls - 0.9189385 - log(1 - t * t + 1e-6);
      }
      logp[b * n + k] = (float)lp;
    }
}

static void fill_x(float *x, const float *obs, int reps, const float *a) {
  for (int b = 0; b < S_B; b++)
    for (int k = 0; k < reps; k++) {
      float *row = x + (b * reps + k) * (S_OBS + S_ACT);
      memcpy(row, obs + b * S_OBS, 4 * S_OBS);
      memcpy(row + S_OBS, a + (b * reps + k) * S_ACT, 4 * S_ACT);
    }
}

static void sac_step(sac_w *w) {
  const int D = S_OBS + S_ACT, N = S_N, R = w->rows;
  /* policy at s and s' (10 samples each; the first sample of s' is the backup action) */
  float *po = nn_mlp_forward(&w->pi, w->next, S_B);
  float *a_next = w->api + S_B * N * S_ACT, *lp_next = w->logp + S_B * N;
  sample(po, w->noise + S_B * N * S_ACT, N, a_next, lp_next);
  po = nn_mlp_forward(&w->pi, w->obs, S_B);
  sample(po, w->noise, N, w->api, w->logp);
  /* TD target from the target critics on (s', a') */
  float *xn = w->x, y[S_B];
  for (int b = 0; b < S_B; b++) {
    memcpy(xn + b * D, w->next + b * S_OBS, 4 * S_OBS);
    memcpy(xn + b * D + S_OBS, a_next + b * N * S_ACT, 4 * S_ACT);
  }
  float *t0 = nn_mlp_forward(&w->tq[0], xn, S_B), tmin[S_B];
  memcpy(tmin, t0, sizeof tmin);
  float *t1 = nn_mlp_forward(&w->tq[1], xn, S_B);
  for (int b = 0; b < S_B; b++)
    y[b] = w->rew[b] + 0.99f * (1 - w->done[b]) * (fminf(tmin[b], t1[b]) - 0.2f * lp_next[b * N]);
  /* critic rows: data | uniform | pi(s) | pi(s'), all scored at s */
  for (int b = 0; b < S_B; b++) {
    memcpy(w->x + b * D, w->obs + b * S_OBS, 4 * S_OBS);
    memcpy(w->x + b * D + S_OBS, w->act + b * S_ACT, 4 * S_ACT);
  }
  float *ur = w->x + S_B * D;
  fill_x(ur, w->obs, N, w->noise); /* stands in for uniform actions: same shapes */
  fill_x(ur + S_B * N * D, w->obs, N, w->api);
  fill_x(ur + 2 * S_B * N * D, w->obs, N, a_next);
  for (int i = 0; i < 2; i++) {
    float *q = nn_mlp_forward(&w->q[i], w->x, R);
    /* TD part on data rows, CQL logsumexp over the 3N samples minus the data value */
    memset(w->dq, 0, sizeof(float) * R);
    nn_mse_loss(w->dq, q, y, S_B);
    for (int b = 0; b < S_B; b++) {
      float v[3 * S_N], mx = -INFINITY, sum = 0;
      for (int s = 0; s < 3; s++)
        for (int k = 0; k < N; k++) {
          float lw = s == 0 ? -logf(0.5f) * S_ACT : -w->logp[(s == 1 ? 0 : S_B * N) + b * N + k];
          v[s * N + k] = q[S_B + (s * S_B + b) * N + k] + lw;
          mx = v[s * N + k] > mx ? v[s * N + k] : mx;
        }
      for (int j = 0; j < 3 * N; j++) sum += expf(v[j] - mx);
      for (int s = 0; s < 3; s++)
        for (int k = 0; k < N; k++)
          w->dq[S_B + (s * S_B + b) * N + k] = 5.0f * expf(v[s * N + k] - mx) / sum / S_B;
      w->dq[b] -= 5.0f / S_B;
    }
    nn_params_zero_grad(&w->q[i].params);
    nn_mlp_backward(&w->q[i], w->dq, NULL);
    nn_adamw_step(&w->q[i].params, &w->opt, w->opt.lr);
  }
  /* actor: min_i Q_i(s, pi(s)) through the critics into the policy */
  po = nn_mlp_forward(&w->pi, w->obs, S_B);
  float a1[S_B * S_ACT], lp1[S_B];
  sample(po, w->noise, 1, a1, lp1);
  fill_x(w->x, w->obs, 1, a1);
  float qa[2][S_B], dq1[S_B];
  memset(w->dx, 0, sizeof(float) * S_B * D);
  for (int i = 0; i < 2; i++) memcpy(qa[i], nn_mlp_forward(&w->q[i], w->x, S_B), sizeof qa[i]);
  for (int i = 0; i < 2; i++) { /* the gradient of min(Q0, Q1) goes to the smaller */
    for (int b = 0; b < S_B; b++) {
      int smaller = i == 0 ? qa[0][b] <= qa[1][b] : qa[1][b] < qa[0][b];
      dq1[b] = smaller ? -1.0f / S_B : 0.0f;
    }
    nn_params_zero_grad(&w->q[i].params);
    nn_mlp_backward(&w->q[i], dq1, w->dx);
  }
  /* through tanh and the reparameterisation into (mean, log_std) */
  for (int b = 0; b < S_B; b++)
    for (int j = 0; j < S_ACT; j++) {
      float t = a1[b * S_ACT + j], da = w->dx[b * D + S_OBS + j] * (1 - t * t);
      float ls = po[b * 2 * S_ACT + S_ACT + j];
      w->dpi[b * 2 * S_ACT + j] = da;
      w->dpi[b * 2 * S_ACT + S_ACT + j] = da * expf(ls) * w->noise[b * N * S_ACT + j] - 0.2f / S_B;
    }
  nn_params_zero_grad(&w->pi.params);
  nn_mlp_backward(&w->pi, w->dpi, NULL);
  nn_adamw_step(&w->pi.params, &w->opt, w->opt.lr);
  for (int i = 0; i < 2; i++) nn_params_polyak(&w->tq[i].params, &w->q[i].params, 0.005f);
}

/* ---- workloads 3 and 4: GPT step, DPO step -------------------------------- */

typedef struct {
  nn_gpt_t pol, ref;
  nn_adamw_t opt;
  int B, T, V, dpo;
  int *tok, *tgt;
  float *mask, *dl;
} gpt_w;

static void gpt_init(gpt_w *w, int width, int layers, int heads, int T, int B, int dpo) {
  nn_gpt_config_t cfg = {512, T, layers, heads, width};
  w->V = 512, w->T = T, w->B = B, w->dpo = dpo;
  nn_gpt_init(&w->pol, cfg, &rng);
  if (dpo) nn_gpt_init(&w->ref, cfg, &rng);
  w->opt = (nn_adamw_t){3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f};
  int n = w->B * w->T;
  w->tok = malloc(sizeof(int) * n), w->tgt = malloc(sizeof(int) * n);
  w->mask = malloc(sizeof(float) * n), w->dl = malloc(sizeof(float) * n * w->V);
  for (int i = 0; i < n; i++) {
    w->tok[i] = nn_rng_below(&rng, 512), w->tgt[i] = nn_rng_below(&rng, 512);
    w->mask[i] = dpo ? (i % w->T >= 32) : 1.0f; /* DPO: 32 prompt tokens */
  }
}

static void gpt_step(gpt_w *w) {
  int B = w->B, T = w->T;
  if (!w->dpo) {
    float *logits = nn_gpt_forward(&w->pol, w->tok, B, T);
    nn_token_ce_loss(w->dl, logits, w->tgt, w->mask, B, T, w->V);
    nn_params_zero_grad(&w->pol.params);
    nn_gpt_backward(&w->pol, w->dl);
  } else { /* 8 pairs: rows 0..7 chosen, 8..15 rejected, one batch of 16 */
    float ref[16], lp[16], dlp[16];
    nn_gpt_logprobs(&w->ref, ref, w->tok, w->mask, B, T);
    nn_gpt_logprobs(&w->pol, lp, w->tok, w->mask, B, T);
    for (int p = 0; p < 8; p++) {
      float z = 0.1f * ((lp[p] - ref[p]) - (lp[8 + p] - ref[8 + p]));
      float s = 1.0f / (1.0f + expf(z)); /* d(-log sigmoid z)/dz = -sigmoid(-z) */
      dlp[p] = -0.1f * s / 8, dlp[8 + p] = 0.1f * s / 8;
    }
    nn_params_zero_grad(&w->pol.params);
    nn_gpt_logprobs_backward(&w->pol, dlp, w->mask);
  }
  nn_clip_grad_norm(&w->pol.params, 1.0f);
  nn_adamw_step(&w->pol.params, &w->opt, w->opt.lr);
}

/* ---- sampling: 64 new tokens after 16-token prompts, batch 1 or 32 --------- */

typedef struct {
  gpt_w g;
  int B, prompt[32 * 16], plen[32], out[32 * 64], olen[32];
  nn_gen_t gen;
} sample_w;

static void sample_init(sample_w *w, int B, int nocache) {
  gpt_init(&w->g, 128, 4, 4, 128, 16, 0);
  w->B = B;
  for (int i = 0; i < B * 16; i++) w->prompt[i] = nn_rng_below(&rng, 512);
  for (int b = 0; b < B; b++) w->plen[b] = 16;
  w->gen = (nn_gen_t){1.0f, 0, 1.0f, NULL, 0, nocache};
}

static void sample_step(sample_w *w) {
  nn_lm_generate(&w->g.pol, w->prompt, w->plen, w->B, 16, 64, &w->gen, &rng, w->out, w->olen, NULL);
}

/* ---- Monte-Carlo rollouts: stepvalue's sampling ---------------------------- */
/* The arith policy's GPT (byte vocab 258, ctx 96, 4 layers, width 128, 4
 * heads): 256 rollouts from 40-token prefixes, 48 new tokens each at
 * temperature 1 (no stop: every rollout runs its full length), as stepvalue
 * samples them: nn_lm_generate_sharded, two shards on THREADS threads. */

typedef struct {
  nn_gpt_t g;
  int *prompt, *plen, *out, *olen;
  nn_rng_t rngs[2];
  int threads;
} roll_w;

static void roll_init(roll_w *w, int threads) {
  nn_gpt_config_t cfg = {258, 96, 4, 4, 128};
  nn_gpt_init(&w->g, cfg, &rng);
  w->prompt = malloc(sizeof(int) * 256 * 40), w->plen = malloc(sizeof(int) * 256);
  w->out = malloc(sizeof(int) * 256 * 48), w->olen = malloc(sizeof(int) * 256);
  for (int i = 0; i < 256 * 40; i++) w->prompt[i] = 2 + nn_rng_below(&rng, 256);
  for (int b = 0; b < 256; b++) w->plen[b] = 40;
  nn_rng_seed(&w->rngs[0], 1), nn_rng_seed(&w->rngs[1], 2);
  w->threads = threads;
}

static void roll_step(roll_w *w) {
  nn_gen_t o = {1.0f, 0, 1.0f, NULL, 0, 0};
  nn_lm_generate_sharded(&w->g, w->prompt, w->plen, 256, 40, 48, &o, w->rngs, 2, w->threads, w->out,
                         w->olen, NULL);
}

/* ---- familiarity: factqa's sampling in unfamiliar_facts ------------------- */
/* The facts world's base GPT (BPE vocab 1024, ctx 64, 4 layers, width 128,
 * 4 heads): 128 questions (6-token clozes), 12 answers each of 6 tokens at
 * temperature 1, as factqa samples them: the 1,536 rows in one call of
 * nn_lm_generate_sharded, two shards on THREADS threads. */

typedef struct {
  nn_gpt_t g;
  int *prompt, *plen, *out, *olen;
  nn_rng_t rngs[2];
  int threads;
} fam_w;

static void fam_init(fam_w *w, int threads) {
  nn_gpt_config_t cfg = {1024, 64, 4, 4, 128};
  nn_gpt_init(&w->g, cfg, &rng);
  int B = 128 * 12;
  w->prompt = malloc(sizeof(int) * B * 6), w->plen = malloc(sizeof(int) * B);
  w->out = malloc(sizeof(int) * B * 6), w->olen = malloc(sizeof(int) * B);
  for (int q = 0; q < 128; q++)
    for (int t = 0; t < 6; t++) {
      int id = 2 + (int)nn_rng_below(&rng, 1022);
      for (int j = 0; j < 12; j++) w->prompt[(q * 12 + j) * 6 + t] = id;
    }
  for (int b = 0; b < B; b++) w->plen[b] = 6;
  nn_rng_seed(&w->rngs[0], 1), nn_rng_seed(&w->rngs[1], 2);
  w->threads = threads;
}

static void fam_step(fam_w *w) {
  nn_gen_t o = {1.0f, 0, 1.0f, NULL, 0, 0};
  nn_lm_generate_sharded(&w->g, w->prompt, w->plen, 128 * 12, 6, 6, &o, w->rngs, 2, w->threads,
                         w->out, w->olen, NULL);
}

/* ---- reward-model training: the rrm_artifacts recipe's model --------------- */
/* GPT vocab 800, width 64, 2 layers, 4 heads, scalar head at the last non-pad
 * position; 32 pairs (64 right-padded sequences of 24..48 ids, or 48..96 for
 * pairwise inputs), soft-target loss, clip 1, Adam lr 1e-3. */

typedef struct {
  nn_rm_t m;
  int T, pw, tok[64 * 96], len[64];
  float out[64], dout[64];
  nn_adamw_t opt;
} rm_w;

static void rm_init(rm_w *w, int pw) {
  nn_tok_t t;
  nn_tok_init_bytes(&t);
  t.vocab = 800; /* only the size matters here */
  w->pw = pw, w->T = pw ? 96 : 48;
  nn_rm_init(&w->m, pw ? NN_RM_PAIRWISE : NN_RM_BT, &t, (nn_gpt_config_t){0, w->T, 2, 4, 64}, &rng);
  for (int b = 0; b < 64; b++) {
    w->len[b] = w->T / 2 + (int)nn_rng_below(&rng, (uint32_t)w->T / 2 + 1);
    for (int i = 0; i < w->T; i++)
      w->tok[b * w->T + i] = i < w->len[b] ? 2 + (int)nn_rng_below(&rng, 798) : 1;
  }
  w->opt = nn_adamw_default();
}

static void rm_step(rm_w *w) {
  nn_rm_forward(&w->m, w->tok, w->len, 64, w->T, w->out);
  for (int i = 0; i < 32; i++) {
    double dz, dz2;
    if (w->pw) {
      nn_rm_soft_ce(w->out[2 * i], 1, &dz), nn_rm_soft_ce(w->out[2 * i + 1], 0, &dz2);
      w->dout[2 * i] = (float)dz / 64, w->dout[2 * i + 1] = (float)dz2 / 64;
    } else {
      nn_rm_soft_ce((double)w->out[2 * i] - w->out[2 * i + 1], 1, &dz);
      w->dout[2 * i] = (float)dz / 32, w->dout[2 * i + 1] = (float)-dz / 32;
    }
  }
  nn_params_zero_grad(&w->m.gpt.params), nn_params_zero_grad(&w->m.head);
  nn_rm_backward(&w->m, w->dout);
  nn_rm_clip(&w->m, 1.0f);
  nn_adamw_step(&w->m.gpt.params, &w->opt, w->opt.lr),
      nn_adamw_step(&w->m.head, &w->opt, w->opt.lr);
}

/* ---- harness -------------------------------------------------------------- */

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* median seconds of the recorded products replayed alone */
static double sgemm_alone(int reps, double *flops) {
  const nn_gemm_t *g;
  int n = nn_gemm_traced(&g);
  size_t big = 0;
  *flops = 0;
  for (int i = 0; i < n; i++) {
    size_t a = (size_t)(g[i].ta ? g[i].K : g[i].M) * g[i].lda,
           b = (size_t)(g[i].tb ? g[i].N : g[i].K) * g[i].ldb, c = (size_t)g[i].M * g[i].ldc;
    big = a > big ? a : big, big = b > big ? b : big, big = c > big ? c : big;
    *flops += 2.0 * g[i].M * g[i].N * g[i].K;
  }
  float *A = randn(big, 0.1f), *Bm = randn(big, 0.1f), *C = randn(big, 0.1f);
  double t[64];
  for (int r = 0; r < reps + 2; r++) {
    double t0 = now();
    for (int i = 0; i < n; i++)
      nn_sgemm(g[i].ta, g[i].tb, g[i].M, g[i].N, g[i].K, 1.0f, A, g[i].lda, Bm, g[i].ldb, g[i].beta,
               C, g[i].ldc);
    if (r >= 2) t[r - 2] = now() - t0;
  }
  qsort(t, reps, sizeof *t, cmpd);
  free(A), free(Bm), free(C);
  return t[reps / 2];
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: bench "
            "sac_cql|dqn_mse|dqn_hlgauss|gpt128|gpt256|gpt768|dpo|rm_bt|rm_pairwise|sample_b1|"
            "sample_b32[_nocache]|rollouts|familiarity THREADS [REPS]\n");
    return 2;
  }
  const char *core = nn_blas_better_core(); /* as lathe does (workbench/main.c) */
  if (core) {
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
  }
  nn_blas_setup(); /* as lathe */
  const char *wl = argv[1];
  int threads = atoi(argv[2]), reps = argc > 3 ? atoi(argv[3]) : 20;
  if (reps > 60) reps = 60;
  nn_set_threads(threads);
  nn_thread_init(); /* as lathe's worker threads */
  nn_rng_seed(&rng, 1);
  dqn_w dw;
  sac_w sw;
  gpt_w gw;
  void (*fn)(void *);
  void *arg;
  const char *unit = "updates/s";
  double per = 1; /* units per step */
  if (!strcmp(wl, "dqn_mse") || !strcmp(wl, "dqn_hlgauss")) {
    dqn_init(&dw, !strcmp(wl, "dqn_hlgauss"));
    fn = (void (*)(void *))dqn_step, arg = &dw, reps *= 20;
  } else if (!strcmp(wl, "sac_cql")) {
    sac_init(&sw);
    fn = (void (*)(void *))sac_step, arg = &sw;
  } else if (!strcmp(wl, "gpt128") || !strcmp(wl, "gpt256")) {
    int big = !strcmp(wl, "gpt256");
    gpt_init(&gw, big ? 256 : 128, big ? 6 : 4, 4, 128, 16, 0);
    fn = (void (*)(void *))gpt_step, arg = &gw, unit = "tokens/s", per = 16 * 128;
  } else if (!strcmp(wl, "gpt768")) { /* GPT-2 small's body: 85M parameters, 2 x 256 tokens */
    gpt_init(&gw, 768, 12, 12, 256, 2, 0);
    fn = (void (*)(void *))gpt_step, arg = &gw, unit = "tokens/s", per = 2 * 256;
    if (reps > 5) reps = 5;
  } else if (!strcmp(wl, "dpo")) {
    gpt_init(&gw, 128, 4, 4, 128, 16, 1);
    fn = (void (*)(void *))gpt_step, arg = &gw, unit = "pairs/s", per = 8;
  } else if (!strcmp(wl, "rm_bt") || !strcmp(wl, "rm_pairwise")) {
    static rm_w rw;
    rm_init(&rw, !strcmp(wl, "rm_pairwise"));
    fn = (void (*)(void *))rm_step, arg = &rw, unit = "pairs/s", per = 32;
    reps *= 5;
  } else if (!strcmp(wl, "familiarity")) {
    static fam_w fw;
    fam_init(&fw, threads);
    fn = (void (*)(void *))fam_step, arg = &fw, unit = "questions/s", per = 128;
    if (reps > 10) reps = 10;
  } else if (!strcmp(wl, "rollouts")) {
    static roll_w rl;
    roll_init(&rl, threads);
    fn = (void (*)(void *))roll_step, arg = &rl, unit = "rollouts/s", per = 256;
    if (reps > 10) reps = 10;
  } else if (!strncmp(wl, "sample_b", 8) && (atoi(wl + 8) == 1 || atoi(wl + 8) == 32)) {
    static sample_w smp;
    sample_init(&smp, atoi(wl + 8), strstr(wl, "nocache") != NULL);
    fn = (void (*)(void *))sample_step, arg = &smp, unit = "tokens/s", per = smp.B * 64;
    if (reps > 10) reps = 10;
  } else {
    fprintf(stderr, "bench: no workload '%s'\n", wl);
    return 2;
  }
  if (reps > 1200) reps = 1200;
  double *t = malloc(sizeof(double) * reps);
  for (int i = 0; i < 3; i++) fn(arg); /* warm-up */
  for (int i = 0; i < reps; i++) {
    double t0 = now();
    fn(arg);
    t[i] = now() - t0;
  }
  qsort(t, reps, sizeof *t, cmpd);
  double med = t[reps / 2], flops;
  nn_gemm_trace(1);
  fn(arg);
  nn_gemm_trace(0);
  double alone = sgemm_alone(reps < 60 ? reps : 60, &flops);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"impl\":\"lathe\",\"workload\":\"%s\",\"threads\":%d,\"median_s\":%.6e,\"rate\":%.6g,"
         "\"unit\":\"%s\",\"peak_rss_mb\":%.1f,\"gemm_flops\":%.6g,\"gemm_alone_s\":%.6e}\n",
         wl, threads, med, per / med, unit, ru.ru_maxrss / 1024.0, flops, alone);
  return 0;
}
