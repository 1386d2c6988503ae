/* test_nn.c - the nn core: finite-difference checks of every backward pass,
 * optimizer and serialization checks, KV-cache parity, and known-answer
 * training tests for the MLP and the GPT.
 *
 * Gradient checks use central differences in float32 with eps = 1e-3 on a
 * scalar loss L = sum_i r_i * out_i accumulated in double; an element passes when
 * |analytic - numeric| <= 2e-2 * max(1e-2, |analytic|, |numeric|) + 2e-4.
 * Up to 48 elements of each checked array are sampled.
 */
#include "../workbench/nn/nn.h"
#include "../workbench/nn/rm.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

typedef double (*loss_fn)(void *ctx);
static float gc_eps = 1e-3f; /* the GPT check uses 1e-2: its loss is float32 */

static void fill(float *x, size_t n, float scale, nn_rng_t *r) {
  for (size_t i = 0; i < n; i++) x[i] = scale * nn_rng_normal(r);
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* Compare analytic gradient g of x (n values) with central differences of f. */
static void gradcheck(const char *what, float *x, const float *g, size_t n, loss_fn f, void *ctx) {
  const float eps = gc_eps;
  size_t step = n > 48 ? n / 48 : 1;
  double worst = 0;
  for (size_t i = 0; i < n; i += step) {
    float old = x[i];
    x[i] = old + eps;
    double lp = f(ctx);
    x[i] = old - eps;
    double lm = f(ctx);
    x[i] = old;
    double num = (lp - lm) / (2 * eps), an = g[i];
    double scale = fmax(1e-2, fmax(fabs(an), fabs(num)));
    double err = fabs(an - num);
    if (err > 2e-2 * scale + 2e-4)
      test_fail(__FILE__, __LINE__, "%s[%zu]: analytic %.6g numeric %.6g", what, i, an, num);
    worst = fmax(worst, err / scale);
  }
  (void)worst;
}

TEST(fast_exp_accuracy) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.001373f) {
    double want = exp((double)x), got = nn_expf(x);
    worst = fmax(worst, fabs(got - want) / want);
  }
  if (!(worst < 3.0e-7)) test_fail(__FILE__, __LINE__, "worst relative error %.3g", worst);
  ASSERT(nn_expf(-1000.0f) > 0.0f && nn_expf(-1000.0f) < 1e-37f);
  ASSERT(isinf(nn_expf(1000.0f)) == 0 && nn_expf(1000.0f) > 1e38f);
  ASSERT(isnan(nn_expf(NAN)));
  ASSERT_NEAR(nn_expf(0.0f), 1.0, 0);
}

/* ---- linear ---- */
typedef struct {
  int N, IC, OC;
  float *x, *w, *b, *out, *r;
} lin_ctx;
static double lin_loss(void *p) {
  lin_ctx *c = p;
  nn_linear_forward(c->out, c->x, c->w, c->b, c->N, c->IC, c->OC);
  return dot(c->out, c->r, (size_t)c->N * c->OC);
}
TEST(grad_linear) {
  nn_rng_t r;
  nn_rng_seed(&r, 1);
  lin_ctx c = {5, 7, 3};
  float x[35], w[21], b[3], out[15], rr[15], dx[35] = {0}, dw[21] = {0}, db[3] = {0};
  c.x = x, c.w = w, c.b = b, c.out = out, c.r = rr;
  fill(x, 35, 1, &r), fill(w, 21, 1, &r), fill(b, 3, 1, &r), fill(rr, 15, 1, &r);
  lin_loss(&c);
  nn_linear_backward(dx, dw, db, rr, x, w, 5, 7, 3);
  gradcheck("x", x, dx, 35, lin_loss, &c);
  gradcheck("w", w, dw, 21, lin_loss, &c);
  gradcheck("b", b, db, 3, lin_loss, &c);
}

/* ---- activations ---- */
typedef struct {
  nn_act_t a;
  float *x, *out, *r;
  size_t n;
} act_ctx;
static double act_loss(void *p) {
  act_ctx *c = p;
  nn_act_forward(c->a, c->out, c->x, c->n);
  return dot(c->out, c->r, c->n);
}
TEST(grad_activations) {
  const char *names[] = {"relu", "gelu", "tanh", "silu", "identity"};
  for (int a = 0; a < 5; a++) {
    ASSERT_EQ(nn_act_parse(names[a]), a);
    nn_rng_t r;
    nn_rng_seed(&r, 2 + a);
    float x[40], out[40], rr[40], dx[40] = {0};
    fill(x, 40, 1.5f, &r), fill(rr, 40, 1, &r);
    for (int i = 0; i < 40; i++)
      if (fabsf(x[i]) < 0.01f) x[i] = 0.5f; /* keep off relu's kink */
    act_ctx c = {a, x, out, rr, 40};
    act_loss(&c);
    nn_act_backward(a, dx, rr, x, 40);
    gradcheck(names[a], x, dx, 40, act_loss, &c);
  }
  ASSERT_EQ(nn_act_parse("swish"), -1);
}

/* ---- layernorm ---- */
typedef struct {
  int N, C;
  float *x, *w, *b, *out, *mean, *rstd, *r;
} ln_ctx;
static double ln_loss(void *p) {
  ln_ctx *c = p;
  nn_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
  return dot(c->out, c->r, (size_t)c->N * c->C);
}
TEST(grad_layernorm) {
  nn_rng_t r;
  nn_rng_seed(&r, 3);
  float x[24], w[8], b[8], out[24], mean[3], rstd[3], rr[24], dx[24] = {0}, dw[8] = {0},
                                                              db[8] = {0};
  fill(x, 24, 2, &r), fill(w, 8, 1, &r), fill(b, 8, 1, &r), fill(rr, 24, 1, &r);
  ln_ctx c = {3, 8, x, w, b, out, mean, rstd, rr};
  ln_loss(&c);
  nn_layernorm_backward(dx, dw, db, rr, x, w, mean, rstd, 3, 8);
  gradcheck("x", x, dx, 24, ln_loss, &c);
  gradcheck("w", w, dw, 8, ln_loss, &c);
  gradcheck("b", b, db, 8, ln_loss, &c);
}

/* ---- embedding ---- */
typedef struct {
  int *tok;
  float *wte, *wpe, *out, *r;
} emb_ctx;
static double emb_loss(void *p) {
  emb_ctx *c = p;
  nn_embed_forward(c->out, c->tok, c->wte, c->wpe, 2, 3, 4);
  return dot(c->out, c->r, 24);
}
TEST(grad_embedding) {
  nn_rng_t r;
  nn_rng_seed(&r, 4);
  int tok[6] = {1, 4, 1, 0, 2, 4};
  float wte[20], wpe[12], out[24], rr[24], dwte[20] = {0}, dwpe[12] = {0};
  fill(wte, 20, 1, &r), fill(wpe, 12, 1, &r), fill(rr, 24, 1, &r);
  emb_ctx c = {tok, wte, wpe, out, rr};
  emb_loss(&c);
  nn_embed_backward(dwte, dwpe, rr, tok, 2, 3, 4);
  gradcheck("wte", wte, dwte, 20, emb_loss, &c);
  gradcheck("wpe", wpe, dwpe, 12, emb_loss, &c);
}

/* ---- attention ---- */
typedef struct {
  int B, T, C, H;
  float *qkv, *out, *att, *r;
} att_ctx;
static double att_loss(void *p) {
  att_ctx *c = p;
  nn_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->H);
  return dot(c->out, c->r, (size_t)c->B * c->T * c->C);
}
TEST(grad_attention) {
  nn_rng_t r;
  nn_rng_seed(&r, 5);
  enum { B = 2, T = 5, C = 8, H = 2 };
  float qkv[B * T * 3 * C], out[B * T * C], att[B * H * T * T], rr[B * T * C],
      dqkv[B * T * 3 * C] = {0}, datt[B * H * T * T];
  fill(qkv, B * T * 3 * C, 1, &r), fill(rr, B * T * C, 1, &r);
  att_ctx c = {B, T, C, H, qkv, out, att, rr};
  att_loss(&c);
  /* causality: row t of att has zeros beyond t and sums to one */
  for (int t = 0; t < T; t++) {
    double s = 0;
    for (int u = 0; u < T; u++) s += att[t * T + u];
    ASSERT_NEAR(s, 1.0, 1e-5);
    if (t + 1 < T) ASSERT(att[t * T + t + 1] == 0.0f);
  }
  nn_attention_backward(dqkv, datt, rr, qkv, att, B, T, C, H);
  gradcheck("qkv", qkv, dqkv, B * T * 3 * C, att_loss, &c);
}

/* ---- softmax and log-softmax ---- */
typedef struct {
  int log;
  float *x, *y, *r;
} sm_ctx;
static double sm_loss(void *p) {
  sm_ctx *c = p;
  if (c->log)
    nn_log_softmax(c->y, c->x, 3, 5);
  else
    nn_softmax(c->y, c->x, 3, 5);
  return dot(c->y, c->r, 15);
}
TEST(grad_softmax) {
  for (int lg = 0; lg < 2; lg++) {
    nn_rng_t r;
    nn_rng_seed(&r, 20 + lg);
    float x[15], y[15], rr[15], dx[15] = {0};
    fill(x, 15, 2, &r), fill(rr, 15, 1, &r);
    sm_ctx c = {lg, x, y, rr};
    sm_loss(&c);
    if (lg)
      nn_log_softmax_backward(dx, rr, y, 3, 5);
    else
      nn_softmax_backward(dx, rr, y, 3, 5);
    gradcheck(lg ? "log_softmax" : "softmax", x, dx, 15, sm_loss, &c);
  }
}

/* ---- losses ---- */
typedef struct {
  int kind, N, K;
  float *x, *t, *d;
  int *tgt;
  float *mask;
} loss_ctx;
static double loss_loss(void *p) {
  loss_ctx *c = p;
  switch (c->kind) {
  case 0:
    return nn_mse_loss(NULL, c->x, c->t, c->N);
  case 1:
    return nn_huber_loss(NULL, c->x, c->t, c->N, 1.0f);
  case 2:
    return nn_soft_ce_loss(NULL, c->x, c->t, c->N, c->K);
  default:
    return nn_token_ce_loss(NULL, c->x, c->tgt, c->mask, 2, c->N / 2, c->K);
  }
}
TEST(grad_losses) {
  nn_rng_t r;
  nn_rng_seed(&r, 6);
  float x[40], t[40], d[40];
  fill(x, 40, 2, &r), fill(t, 40, 2, &r);
  loss_ctx c = {0, 40, 1, x, t, d};
  nn_mse_loss(d, x, t, 40);
  gradcheck("mse", x, d, 40, loss_loss, &c);
  c.kind = 1;
  nn_huber_loss(d, x, t, 40, 1.0f);
  gradcheck("huber", x, d, 40, loss_loss, &c);
  /* soft targets: rows normalised */
  for (int i = 0; i < 40; i++) t[i] = fabsf(t[i]);
  for (int n = 0; n < 8; n++) {
    float s = 0;
    for (int k = 0; k < 5; k++) s += t[n * 5 + k];
    for (int k = 0; k < 5; k++) t[n * 5 + k] /= s;
  }
  c.kind = 2, c.N = 8, c.K = 5;
  nn_soft_ce_loss(d, x, t, 8, 5);
  gradcheck("soft_ce", x, d, 40, loss_loss, &c);
  /* soft CE against a one-hot equals -log softmax */
  float onehot[5] = {0, 0, 1, 0, 0}, lp[5];
  nn_log_softmax(lp, x, 1, 5);
  ASSERT_NEAR(nn_soft_ce_loss(NULL, x, onehot, 1, 5), -lp[2], 1e-5);
  int tgt[8] = {0, 4, 2, 1, 3, 3, 0, 1};
  float mask[8] = {1, 1, 0, 1, 0, 1, 1, 1};
  c.kind = 3, c.tgt = tgt, c.mask = mask;
  nn_token_ce_loss(d, x, tgt, mask, 2, 4, 5);
  gradcheck("token_ce", x, d, 40, loss_loss, &c);
}

typedef struct {
  float *x, *lp, *w;
  int *tgt;
  float *mask;
} slp_ctx;
static double slp_loss(void *p) {
  slp_ctx *c = p;
  nn_seq_logprob(c->lp, c->x, c->tgt, c->mask, 2, 4, 5);
  return c->w[0] * c->lp[0] + c->w[1] * c->lp[1];
}
TEST(grad_seq_logprob) {
  nn_rng_t r;
  nn_rng_seed(&r, 7);
  float x[40], d[40] = {0}, lp[2], w[2] = {0.7f, -1.3f};
  int tgt[8] = {0, 4, 2, 1, 3, 3, 0, 1};
  float mask[8] = {0, 1, 1, 1, 0, 0, 1, 1};
  fill(x, 40, 2, &r);
  slp_ctx c = {x, lp, w, tgt, mask};
  slp_loss(&c);
  /* lp[0] equals the masked sum of per-token log-softmax */
  float ls[40];
  nn_log_softmax(ls, x, 8, 5);
  ASSERT_NEAR(lp[0], ls[5 + 4] + ls[10 + 2] + ls[15 + 1], 1e-5);
  nn_seq_logprob_backward(d, w, x, tgt, mask, 2, 4, 5);
  gradcheck("logits", x, d, 40, slp_loss, &c);
}

typedef struct {
  float *x, *out, *mask, *r;
} drop_ctx;
static double drop_loss(void *p) {
  drop_ctx *c = p;
  for (int i = 0; i < 30; i++) c->out[i] = c->x[i] * c->mask[i]; /* fixed mask */
  return dot(c->out, c->r, 30);
}
TEST(grad_dropout) {
  nn_rng_t r, r2;
  nn_rng_seed(&r, 8);
  float x[30], out[30], mask[30], out2[30], mask2[30], rr[30], dx[30] = {0};
  fill(x, 30, 1, &r), fill(rr, 30, 1, &r);
  nn_rng_seed(&r, 9), nn_rng_seed(&r2, 9);
  nn_dropout_forward(out, mask, x, 30, 0.25f, &r);
  nn_dropout_forward(out2, mask2, x, 30, 0.25f, &r2);
  ASSERT(memcmp(out, out2, sizeof out) == 0); /* seeded: identical */
  int zeros = 0;
  for (int i = 0; i < 30; i++) {
    zeros += mask[i] == 0.0f;
    ASSERT(mask[i] == 0.0f || fabsf(mask[i] - 1.0f / 0.75f) < 1e-6f);
  }
  ASSERT(zeros > 0 && zeros < 30);
  drop_ctx c = {x, out, mask, rr};
  nn_dropout_backward(dx, rr, mask, 30, 0.25f);
  gradcheck("x", x, dx, 30, drop_loss, &c);
}

/* ---- MLP end to end ---- */
typedef struct {
  nn_mlp_t *m;
  float *x, *y;
  int N;
} mlp_ctx;
static double mlp_loss(void *p) {
  mlp_ctx *c = p;
  float *out = nn_mlp_forward(c->m, c->x, c->N);
  return nn_mse_loss(NULL, out, c->y, c->N);
}
TEST(grad_mlp) {
  for (int ln = 0; ln < 2; ln++) {
    nn_rng_t r;
    nn_rng_seed(&r, 10 + ln);
    nn_mlp_t m;
    int w[4] = {3, 6, 5, 1};
    ASSERT_EQ(nn_mlp_init(&m, "q", 3, w, ln ? NN_TANH : NN_GELU, ln, &r), 0);
    float x[12], y[4], dx[12] = {0}, d[4];
    fill(x, 12, 1, &r), fill(y, 4, 1, &r);
    mlp_ctx c = {&m, x, y, 4};
    float *out = nn_mlp_forward(&m, x, 4);
    nn_mse_loss(d, out, y, 4);
    nn_params_zero_grad(&m.params);
    nn_mlp_backward(&m, d, dx);
    float *g = malloc(m.params.total * sizeof(float));
    memcpy(g, m.params.g, m.params.total * sizeof(float));
    gradcheck("params", m.params.w, g, m.params.total, mlp_loss, &c);
    gradcheck("x", x, dx, 12, mlp_loss, &c);
    free(g);
    ASSERT(nn_params_find(&m.params, "q.1.w") >= 0);
    if (ln) ASSERT(nn_params_find(&m.params, "q.0.ln.w") >= 0);
    nn_mlp_free(&m);
  }
}

/* ---- GPT end to end ---- */
typedef struct {
  nn_gpt_t *g;
  int *tok, *tgt;
  float *mask;
} gpt_ctx;
static double gpt_loss(void *p) {
  gpt_ctx *c = p;
  float *logits = nn_gpt_forward(c->g, c->tok, 2, 6);
  return nn_token_ce_loss(NULL, logits, c->tgt, c->mask, 2, 6, c->g->cfg.vocab);
}
static double gpt_lp_loss(void *p) {
  gpt_ctx *c = p;
  float lp[2];
  nn_gpt_logprobs(c->g, lp, c->tok, c->mask, 2, 6);
  return 0.8 * lp[0] - 1.1 * lp[1];
}
TEST(grad_gpt) {
  nn_rng_t r;
  nn_rng_seed(&r, 12);
  nn_gpt_t g;
  ASSERT_EQ(nn_gpt_init(&g, (nn_gpt_config_t){11, 8, 2, 2, 8}, &r), 0);
  /* larger weights than the 0.02 init so every path carries signal */
  for (size_t i = 0; i < g.params.total; i++) g.params.w[i] += 0.2f * nn_rng_normal(&r);
  int tok[12], tgt[12];
  float mask[12] = {0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1};
  for (int i = 0; i < 12; i++) tok[i] = nn_rng_below(&r, 11), tgt[i] = nn_rng_below(&r, 11);
  gpt_ctx c = {&g, tok, tgt, mask};
  gc_eps = 1e-2f;
  size_t V = 11, n = 12 * V;
  float *dl = malloc(n * sizeof(float)), *ga = malloc(g.params.total * sizeof(float));
  float *logits = nn_gpt_forward(&g, tok, 2, 6);
  nn_token_ce_loss(dl, logits, tgt, mask, 2, 6, V);
  nn_params_zero_grad(&g.params);
  nn_gpt_backward(&g, dl);
  memcpy(ga, g.params.g, g.params.total * sizeof(float));
  for (int i = 0; i < g.params.np; i++) {
    nn_param_t *p = &g.params.p[i];
    gradcheck(p->name, g.params.w + p->off, ga + p->off, p->n, gpt_loss, &c);
  }
  /* sequence log-probabilities and their backward */
  float lp[2], dlp[2] = {0.8f, -1.1f};
  nn_gpt_logprobs(&g, lp, tok, mask, 2, 6);
  nn_params_zero_grad(&g.params);
  nn_gpt_logprobs_backward(&g, dlp, mask);
  memcpy(ga, g.params.g, g.params.total * sizeof(float));
  for (int i = 0; i < g.params.np; i++) {
    nn_param_t *p = &g.params.p[i];
    gradcheck(p->name, g.params.w + p->off, ga + p->off, p->n, gpt_lp_loss, &c);
  }
  free(dl), free(ga);
  gc_eps = 1e-3f;
  nn_gpt_free(&g);
}

/* A reward model end to end: Bradley-Terry soft-target loss on r1 - r2 and a
 * pairwise model's two orders, each through the scalar head at the last
 * non-pad position of right-padded sequences of different lengths. */
typedef struct {
  nn_rm_t *m;
  int *tok, *len;
} rm_ctx;
static const float rm_c[2] = {1.0f, 0.5f}; /* a win and a tie */
static double rm_loss(void *p) {
  rm_ctx *c = p;
  float out[4];
  nn_rm_forward(c->m, c->tok, c->len, 4, 7, out);
  double l = 0;
  for (int i = 0; i < 2; i++)
    l += c->m->kind == NN_RM_BT ? nn_rm_soft_ce((double)out[2 * i] - out[2 * i + 1], rm_c[i], NULL)
                                : nn_rm_soft_ce(out[2 * i], rm_c[i], NULL) +
                                      nn_rm_soft_ce(out[2 * i + 1], 1 - rm_c[i], NULL);
  return l;
}
TEST(grad_reward_model) {
  for (int kind = NN_RM_BT; kind <= NN_RM_PAIRWISE; kind++) {
    nn_rng_t r;
    nn_rng_seed(&r, 21 + kind);
    nn_tok_t t;
    ASSERT_EQ(nn_tok_init_bytes(&t), 0);
    nn_rm_t m;
    ASSERT_EQ(nn_rm_init(&m, kind, &t, (nn_gpt_config_t){0, 8, 2, 2, 8}, &r), 0);
    for (size_t i = 0; i < m.gpt.params.total; i++) m.gpt.params.w[i] += 0.2f * nn_rng_normal(&r);
    for (size_t i = 0; i < m.head.total; i++) m.head.w[i] += 0.5f * nn_rng_normal(&r);
    int tok[28], len[4] = {7, 4, 5, 2};
    for (int i = 0; i < 28; i++) tok[i] = i % 7 < len[i / 7] ? 2 + (int)nn_rng_below(&r, 20) : 1;
    rm_ctx c = {&m, tok, len};
    float out[4], dout[4];
    ASSERT_EQ(nn_rm_forward(&m, tok, len, 4, 7, out), 0);
    for (int i = 0; i < 2; i++) {
      double dz, dz2;
      if (kind == NN_RM_BT) {
        nn_rm_soft_ce((double)out[2 * i] - out[2 * i + 1], rm_c[i], &dz);
        dout[2 * i] = (float)dz, dout[2 * i + 1] = (float)-dz;
      } else {
        nn_rm_soft_ce(out[2 * i], rm_c[i], &dz), nn_rm_soft_ce(out[2 * i + 1], 1 - rm_c[i], &dz2);
        dout[2 * i] = (float)dz, dout[2 * i + 1] = (float)dz2;
      }
    }
    nn_params_zero_grad(&m.gpt.params), nn_params_zero_grad(&m.head);
    nn_rm_backward(&m, dout);
    gc_eps = 1e-2f;
    nn_params_t *sets[2] = {&m.gpt.params, &m.head};
    for (int k = 0; k < 2; k++) {
      float *ga = malloc(sets[k]->total * sizeof(float));
      memcpy(ga, sets[k]->g, sets[k]->total * sizeof(float));
      for (int i = 0; i < sets[k]->np; i++) {
        nn_param_t *p = &sets[k]->p[i];
        gradcheck(p->name, sets[k]->w + p->off, ga + p->off, p->n, rm_loss, &c);
      }
      free(ga);
    }
    gc_eps = 1e-3f;
    /* padding after a sequence's end changes nothing (causal attention) */
    float before = out[1];
    for (int k = 4; k < 7; k++) tok[7 + k] = 2 + k;
    ASSERT_EQ(nn_rm_forward(&m, tok, len, 4, 7, out), 0);
    ASSERT_NEAR(out[1], before, 1e-5);
    nn_rm_free(&m);
  }
}

/* DPO end to end: the pair loss on the two sequences' masked log-probabilities
 * (chosen and rejected stacked in one batch, as TRL does), through the GPT. */
static const nn_pref_t dpo_check = {NN_PREF_DPO, 0.5, 0, 0};
static double gpt_dpo_loss(void *p) {
  gpt_ctx *c = p;
  float lp[2];
  nn_gpt_logprobs(c->g, lp, c->tok, c->mask, 2, 6);
  return nn_pref_pair(&dpo_check, lp[0], lp[1], -9.0, -8.5, 4, 4, NULL, NULL);
}
TEST(grad_gpt_dpo) {
  nn_rng_t r;
  nn_rng_seed(&r, 21);
  nn_gpt_t g;
  ASSERT_EQ(nn_gpt_init(&g, (nn_gpt_config_t){9, 6, 1, 2, 8}, &r), 0);
  for (size_t i = 0; i < g.params.total; i++) g.params.w[i] += 0.2f * nn_rng_normal(&r);
  /* one prompt of 2 tokens, two completions of 4: the mask covers completions only */
  int tok[12] = {3, 5, 1, 7, 2, 8, 3, 5, 6, 0, 4, 4};
  float mask[12] = {0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1};
  gpt_ctx c = {&g, tok, NULL, mask};
  float lp[2], dlp[2], *ga = malloc(g.params.total * sizeof(float));
  nn_gpt_logprobs(&g, lp, tok, mask, 2, 6);
  double dw, dl;
  nn_pref_pair(&dpo_check, lp[0], lp[1], -9.0, -8.5, 4, 4, &dw, &dl);
  dlp[0] = (float)dw, dlp[1] = (float)dl;
  nn_params_zero_grad(&g.params);
  nn_gpt_logprobs_backward(&g, dlp, mask);
  memcpy(ga, g.params.g, g.params.total * sizeof(float));
  gc_eps = 1e-2f;
  for (int i = 0; i < g.params.np; i++) {
    nn_param_t *pp = &g.params.p[i];
    gradcheck(pp->name, g.params.w + pp->off, ga + pp->off, pp->n, gpt_dpo_loss, &c);
  }
  gc_eps = 1e-3f;
  free(ga);
  nn_gpt_free(&g);
}

TEST(gpt_kvcache_matches_forward) {
  nn_rng_t r;
  nn_rng_seed(&r, 13);
  nn_gpt_t g;
  ASSERT_EQ(nn_gpt_init(&g, (nn_gpt_config_t){17, 10, 2, 2, 16}, &r), 0);
  for (size_t i = 0; i < g.params.total; i++) g.params.w[i] += 0.1f * nn_rng_normal(&r);
  int tok[2 * 7];
  for (int i = 0; i < 14; i++) tok[i] = nn_rng_below(&r, 17);
  float *full = nn_gpt_forward(&g, tok, 2, 7);
  float *keep = malloc(14 * 17 * sizeof(float));
  memcpy(keep, full, 14 * 17 * sizeof(float));
  nn_kvcache_t kv;
  ASSERT_EQ(nn_kvcache_init(&kv, &g, 2), 0);
  float logits[2 * 17];
  for (int t = 0; t < 7; t++) {
    int step[2] = {tok[t], tok[7 + t]};
    ASSERT_EQ(nn_gpt_decode(&g, &kv, step, logits), 0);
    for (int b = 0; b < 2; b++)
      for (int v = 0; v < 17; v++)
        ASSERT_NEAR(logits[b * 17 + v], keep[(b * 7 + t) * 17 + v], 1e-4);
  }
  nn_kvcache_free(&kv);
  free(keep);
  nn_gpt_free(&g);
}

TEST(sample_rules) {
  nn_rng_t r;
  nn_rng_seed(&r, 14);
  float logits[6] = {0.1f, 2.0f, -1.0f, 1.5f, 0.0f, 1.9f}, scratch[12];
  ASSERT_EQ(nn_sample(logits, 6, 0.0f, 0, 1.0f, &r, scratch), 1); /* greedy */
  int counts[6] = {0};
  for (int i = 0; i < 2000; i++) counts[nn_sample(logits, 6, 1.0f, 2, 1.0f, &r, scratch)]++;
  ASSERT(counts[1] > 0 && counts[5] > 0); /* top-2 only */
  ASSERT_EQ(counts[0] + counts[2] + counts[3] + counts[4], 0);
  for (int i = 0; i < 200; i++) ASSERT_EQ(nn_sample(logits, 6, 1.0f, 0, 0.01f, &r, scratch), 1);
  /* the full distribution (no sort): frequencies within four standard errors
   * of softmax(z / T), for T = 1 and 0.5; a -inf logit never drawn */
  float z[6] = {0.1f, 2.0f, -INFINITY, 1.5f, 0.0f, 1.9f};
  for (float T = 1.0f; T > 0.4f; T -= 0.5f) {
    int n[6] = {0}, M = 40000;
    double p[6], tot = 0;
    for (int v = 0; v < 6; v++) tot += p[v] = exp(z[v] / T);
    for (int i = 0; i < M; i++) n[nn_sample(z, 6, T, 0, 1.0f, &r, scratch)]++;
    ASSERT_EQ(n[2], 0);
    for (int v = 0; v < 6; v++) {
      double q = p[v] / tot;
      ASSERT(fabs(n[v] / (double)M - q) <= 4 * sqrt(q * (1 - q) / M) + 1e-12);
    }
  }
}

/* ---- optimizer, params, rng ---- */

TEST(adamw_matches_hand_computation) {
  nn_params_t ps = {0};
  int a = nn_params_add(&ps, "w", 1, 1, (int[]){2}), b = nn_params_add(&ps, "b", 0, 1, (int[]){1});
  ASSERT_EQ(nn_params_alloc(&ps), 0);
  nn_w(&ps, a)[0] = 1.0f, nn_w(&ps, a)[1] = -2.0f, nn_w(&ps, b)[0] = 0.5f;
  nn_adamw_t o = {0.1f, 0.9f, 0.999f, 1e-8f, 0.01f};
  double w0 = 1.0, m = 0, v = 0;
  for (int t = 1; t <= 3; t++) {
    nn_g(&ps, a)[0] = 0.3f * t, nn_g(&ps, a)[1] = -0.2f, nn_g(&ps, b)[0] = 1.0f;
    ASSERT_EQ(nn_adamw_step(&ps, &o, o.lr), 0);
    double g = 0.3 * t;
    m = 0.9 * m + 0.1 * g, v = 0.999 * v + 0.001 * g * g;
    double mh = m / (1 - pow(0.9, t)), vh = v / (1 - pow(0.999, t));
    w0 -= 0.1 * (mh / (sqrt(vh) + 1e-8) + 0.01 * w0);
    ASSERT_NEAR(nn_w(&ps, a)[0], w0, 1e-5);
  }
  /* bias without decay: three Adam steps of constant gradient move it by 3 lr */
  ASSERT_NEAR(nn_w(&ps, b)[0], 0.5 - 0.3, 1e-5);
  nn_params_free(&ps);
}

TEST(params_polyak_clip_schedule) {
  nn_params_t a = {0}, b = {0};
  nn_params_add(&a, "x", 1, 1, (int[]){2});
  nn_params_add(&b, "x", 1, 1, (int[]){2});
  nn_params_alloc(&a), nn_params_alloc(&b);
  a.w[0] = 1, a.w[1] = 2, b.w[0] = 3, b.w[1] = 6;
  nn_params_polyak(&a, &b, 0.25f);
  ASSERT_NEAR(a.w[0], 1.5, 1e-6);
  ASSERT_NEAR(a.w[1], 3.0, 1e-6);
  a.g[0] = 3, a.g[1] = 4;
  ASSERT_NEAR(nn_clip_grad_norm(&a, 1.0f), 5.0, 1e-6);
  ASSERT_NEAR(a.g[0], 0.6, 1e-5);
  ASSERT_NEAR(a.g[1], 0.8, 1e-5);
  nn_params_copy(&a, &b);
  ASSERT(a.w[1] == 6.0f);
  ASSERT_NEAR(nn_lr_at(NN_SCHED_LINEAR, 1.0f, 0, 10, 110, 0.0f), 0.1, 1e-6);
  ASSERT_NEAR(nn_lr_at(NN_SCHED_LINEAR, 1.0f, 60, 10, 110, 0.0f), 0.5, 1e-6);
  ASSERT_NEAR(nn_lr_at(NN_SCHED_COSINE, 1.0f, 60, 10, 110, 0.1f), 0.55, 1e-6);
  ASSERT_NEAR(nn_lr_at(NN_SCHED_COSINE, 1.0f, 110, 10, 110, 0.1f), 0.1, 1e-6);
  ASSERT_NEAR(nn_lr_at(NN_SCHED_CONSTANT, 0.3f, 500, 0, 100, 0.0f), 0.3, 1e-7);
  nn_params_free(&a), nn_params_free(&b);
}

TEST(params_save_load_roundtrip) {
  nn_rng_t r;
  nn_rng_seed(&r, 15);
  nn_mlp_t m, m2;
  int w[3] = {2, 4, 1};
  nn_mlp_init(&m, "p", 2, w, NN_RELU, 0, &r);
  nn_mlp_init(&m2, "p", 2, w, NN_RELU, 0, &r);
  fill(m.params.g, m.params.total, 1, &r);
  nn_adamw_t o = nn_adamw_default();
  nn_adamw_step(&m.params, &o, o.lr);
  lathe_buf_t b = {0};
  nn_params_save(&m.params, &b, 1);
  ASSERT_EQ(b.err, 0);
  lathe_buf_t rd = {b.p, b.n, b.n, 0, 0};
  ASSERT_EQ(nn_params_load(&m2.params, &rd), 0);
  ASSERT(memcmp(m.params.w, m2.params.w, m.params.total * 4) == 0);
  ASSERT(memcmp(m.params.v, m2.params.v, m.params.total * 4) == 0);
  ASSERT_EQ(m2.params.t, 1);
  /* a different layout is refused, and so is a truncated buffer */
  nn_mlp_t m3;
  int w3[3] = {2, 5, 1};
  nn_mlp_init(&m3, "p", 2, w3, NN_RELU, 0, &r);
  lathe_buf_t rd3 = {b.p, b.n, b.n, 0, 0};
  ASSERT_EQ(nn_params_load(&m3.params, &rd3), LATHE_ESHAPE);
  lathe_buf_t rd4 = {b.p, b.n - 3, b.n, 0, 0};
  ASSERT_EQ(nn_params_load(&m2.params, &rd4), LATHE_ECKPT);
  lathe_buf_free(&b);
  nn_mlp_free(&m), nn_mlp_free(&m2), nn_mlp_free(&m3);
}

TEST(rng_reproducible_and_distributed) {
  nn_rng_t a, b;
  nn_rng_seed(&a, 42), nn_rng_seed(&b, 42);
  for (int i = 0; i < 100; i++) ASSERT(nn_rng_u64(&a) == nn_rng_u64(&b));
  nn_rng_t c = a; /* the state is the struct: copying it forks the stream */
  ASSERT(nn_rng_u64(&a) == nn_rng_u64(&c));
  double s = 0, s2 = 0;
  for (int i = 0; i < 20000; i++) {
    double x = nn_rng_normal(&a);
    s += x, s2 += x * x;
  }
  ASSERT_NEAR(s / 20000, 0.0, 0.03);
  ASSERT_NEAR(s2 / 20000, 1.0, 0.05);
  for (int i = 0; i < 1000; i++) {
    float u = nn_rng_uniform(&a);
    ASSERT(u >= 0.0f && u < 1.0f);
    ASSERT(nn_rng_below(&a, 7) < 7);
  }
}

/* ---- known-answer training ---- */

TEST(mlp_fits_regression) {
  /* y = sin(3 x0) + x1^2 on 256 fixed points; 2 -> 64 -> 64 -> 1 tanh MLP,
   * Adam lr 3e-3, full batch, 1500 steps from seed 7: MSE must fall below 5e-3. */
  nn_rng_t r;
  nn_rng_seed(&r, 7);
  enum { N = 256 };
  float x[N * 2], y[N], d[N];
  for (int i = 0; i < N; i++) {
    x[2 * i] = 2 * nn_rng_uniform(&r) - 1, x[2 * i + 1] = 2 * nn_rng_uniform(&r) - 1;
    y[i] = sinf(3 * x[2 * i]) + x[2 * i + 1] * x[2 * i + 1];
  }
  nn_mlp_t m;
  nn_mlp_init(&m, "f", 3, (int[]){2, 64, 64, 1}, NN_TANH, 0, &r);
  nn_adamw_t o = nn_adamw_default();
  o.lr = 3e-3f;
  float loss = 0;
  for (int s = 0; s < 1500; s++) {
    float *out = nn_mlp_forward(&m, x, N);
    loss = nn_mse_loss(d, out, y, N);
    nn_params_zero_grad(&m.params);
    nn_mlp_backward(&m, d, NULL);
    nn_adamw_step(&m.params, &o, o.lr);
  }
  if (!(loss < 5e-3f)) test_fail(__FILE__, __LINE__, "final MSE %g", loss);
  nn_mlp_free(&m);
}

TEST(gpt_learns_synthetic_corpus) {
  /* Corpus: sequences "a b c ... " counting up mod 13 from a random start, so the
   * next token is fully determined after the first. A 2-layer, width-32 GPT,
   * AdamW lr 1e-2, batch 8 x 16, 300 steps from seed 3: masked next-token loss
   * (first position excluded) must fall below 0.05 nats (ln 13 = 2.56 at start). */
  nn_rng_t r;
  nn_rng_seed(&r, 3);
  enum { V = 13, B = 8, T = 16 };
  nn_gpt_t g;
  ASSERT_EQ(nn_gpt_init(&g, (nn_gpt_config_t){V, T, 2, 2, 32}, &r), 0);
  nn_adamw_t o = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f};
  int tok[B * T], tgt[B * T];
  float mask[B * T], *dl = malloc(sizeof(float) * B * T * V), loss = 0;
  for (int s = 0; s < 300; s++) {
    for (int b = 0; b < B; b++) {
      int st = nn_rng_below(&r, V);
      for (int t = 0; t < T; t++) {
        tok[b * T + t] = (st + t) % V, tgt[b * T + t] = (st + t + 1) % V;
        mask[b * T + t] = 1.0f;
      }
    }
    float *logits = nn_gpt_forward(&g, tok, B, T);
    loss = nn_token_ce_loss(dl, logits, tgt, mask, B, T, V);
    nn_params_zero_grad(&g.params);
    nn_gpt_backward(&g, dl);
    nn_clip_grad_norm(&g.params, 1.0f);
    nn_adamw_step(&g.params, &o, o.lr);
  }
  if (!(loss < 0.05f)) test_fail(__FILE__, __LINE__, "final loss %g", loss);
  free(dl);
  nn_gpt_free(&g);
}

/* OpenBLAS's fallback to old kernels on a CPU model it does not know is
 * replaced by the newest kernels the CPU can run; its own good choices, and
 * CPUs without AVX2, are left alone. */
TEST(nn_blas_core_fallback) {
  ASSERT_STR(nn_blas_core_for("Prescott", 1, 1), "SkylakeX");
  ASSERT_STR(nn_blas_core_for("Prescott", 1, 0), "Haswell");
  ASSERT_STR(nn_blas_core_for("Sandybridge", 1, 0), "Haswell");
  ASSERT(nn_blas_core_for("Prescott", 0, 0) == NULL);
  ASSERT(nn_blas_core_for("Cooperlake", 1, 1) == NULL);
  ASSERT(nn_blas_core_for("Zen", 1, 0) == NULL);
  ASSERT(nn_blas_core_for("Haswell", 1, 1) == NULL);
  ASSERT(nn_blas_core_for(NULL, 1, 1) == NULL);
}

/* ---- thread-count independence ---- */
/* Two training steps of a GPT big enough that every parallel loop splits (the
 * token loss and the sequence log-probabilities, LayerNorm by rows and by
 * columns, GELU, attention's heads, embeddings, bias sums, AdamW): the
 * parameters, the second moments, the token loss and the sum of the sequence
 * log-probabilities must be the same bits at 1, 2 and 3 threads. */
static void threads_run(int threads, float *w, float *v, double *loss) {
  enum { V = 300, T = 64, B = 16, C = 64 };
  nn_set_threads(threads);
  nn_rng_t r;
  nn_rng_seed(&r, 11);
  nn_gpt_t g;
  ASSERT_EQ(nn_gpt_init(&g, (nn_gpt_config_t){V, T, 2, 4, C}, &r), 0);
  static int tok[B * T], tgt[B * T];
  static float mask[B * T], dl[(size_t)B * T * V], lp[B], dlp[B];
  for (int i = 0; i < B * T; i++) {
    tok[i] = (int)nn_rng_below(&r, V), tgt[i] = (int)nn_rng_below(&r, V);
    mask[i] = i % 7 ? 1.0f : 0.0f;
  }
  nn_adamw_t o = nn_adamw_default();
  for (int step = 0; step < 2; step++) {
    nn_params_zero_grad(&g.params);
    const float *logits = nn_gpt_forward(&g, tok, B, T);
    ASSERT(logits != NULL);
    loss[2 * step] = nn_token_ce_loss(dl, logits, tgt, mask, B, T, V);
    nn_gpt_backward(&g, dl);
    nn_gpt_logprobs(&g, lp, tok, mask, B, T); /* DPO's path: the sequence log-probabilities */
    loss[2 * step + 1] = 0;
    for (int b = 0; b < B; b++) dlp[b] = b % 2 ? 0.5f : -0.25f, loss[2 * step + 1] += lp[b];
    nn_gpt_logprobs_backward(&g, dlp, mask);
    nn_clip_grad_norm(&g.params, 1.0f);
    ASSERT_EQ(nn_adamw_step(&g.params, &o, 1e-3f), 0);
  }
  memcpy(w, g.params.w, g.params.total * sizeof(float));
  memcpy(v, g.params.v, g.params.total * sizeof(float));
  nn_gpt_free(&g);
}

TEST(gpt_steps_same_bits_at_1_2_3_threads) {
  int before = nn_get_threads();
  size_t n = 0;
  {
    nn_rng_t r;
    nn_rng_seed(&r, 11);
    nn_gpt_t g;
    ASSERT_EQ(nn_gpt_init(&g, (nn_gpt_config_t){300, 64, 2, 4, 64}, &r), 0);
    n = g.params.total;
    nn_gpt_free(&g);
  }
  float *w[3], *v[3];
  double loss[3][4];
  for (int k = 0; k < 3; k++) {
    w[k] = malloc(n * sizeof(float)), v[k] = malloc(n * sizeof(float));
    ASSERT(w[k] && v[k]);
    threads_run(k + 1, w[k], v[k], loss[k]);
  }
  nn_set_threads(before);
  for (int k = 1; k < 3; k++) {
    ASSERT(memcmp(w[0], w[k], n * sizeof(float)) == 0);
    ASSERT(memcmp(v[0], v[k], n * sizeof(float)) == 0);
    ASSERT(memcmp(loss[0], loss[k], sizeof loss[0]) == 0);
  }
  for (int k = 0; k < 3; k++) free(w[k]), free(v[k]);
}
