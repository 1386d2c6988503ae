/* gpt.c - GPT-2 style decoder: forward, backward, sequence log-probabilities,
 * incremental decoding with a KV cache, and sampling.
 *
 * Block l (pre-LayerNorm):  r2 = r + proj(attn(ln1(r)));  r3 = r2 + fcp(gelu(fc(ln2(r2))))
 * Logits use the token embedding transposed (tied). Activations for the last
 * forward's B x T live in one arena, laid out anew for each shape.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LN1W, LN1B, QKVW, QKVB, PROJW, PROJB, LN2W, LN2B, FCW, FCB, FCPW, FCPB };

int nn_gpt_init(nn_gpt_t *g, nn_gpt_config_t cfg, nn_rng_t *r) {
  memset(g, 0, sizeof *g);
  int V = cfg.vocab, T = cfg.ctx, L = cfg.layers, C = cfg.width;
  if (V < 2 || T < 1 || L < 1 || C < 1 || cfg.heads < 1 || C % cfg.heads) return LATHE_ESHAPE;
  g->cfg = cfg;
  g->il = calloc(L, sizeof *g->il);
  if (!g->il) return LATHE_ENOMEM;
  nn_params_t *ps = &g->params;
  g->iwte = nn_params_add(ps, "wte", 1, 2, (int[]){V, C});
  g->iwpe = nn_params_add(ps, "wpe", 1, 2, (int[]){T, C});
  static const char *names[12] = {"ln1.w",       "ln1.b",       "attn.qkv.w", "attn.qkv.b",
                                  "attn.proj.w", "attn.proj.b", "ln2.w",      "ln2.b",
                                  "mlp.fc.w",    "mlp.fc.b",    "mlp.proj.w", "mlp.proj.b"};
  int shapes[12][2] = {{C, 0}, {C, 0}, {3 * C, C}, {3 * C, 0}, {C, C},     {C, 0},
                       {C, 0}, {C, 0}, {4 * C, C}, {4 * C, 0}, {C, 4 * C}, {C, 0}};
  char name[NN_NAME_MAX];
  for (int l = 0; l < L; l++)
    for (int k = 0; k < 12; k++) {
      snprintf(name, sizeof name, "h.%d.%s", l, names[k]);
      int nd = shapes[k][1] ? 2 : 1, decay = nd == 2;
      g->il[l][k] = nn_params_add(ps, name, decay, nd, shapes[k]);
    }
  g->ilnfw = nn_params_add(ps, "lnf.w", 0, 1, (int[]){C});
  g->ilnfb = nn_params_add(ps, "lnf.b", 0, 1, (int[]){C});
  int rc = nn_params_alloc(ps);
  if (rc) return rc;
  float std = 0.02f, pstd = 0.02f / sqrtf(2.0f * L);
  nn_init_normal(ps, g->iwte, std, r);
  nn_init_normal(ps, g->iwpe, std, r);
  for (int l = 0; l < L; l++) {
    nn_init_const(ps, g->il[l][LN1W], 1.0f);
    nn_init_const(ps, g->il[l][LN2W], 1.0f);
    nn_init_normal(ps, g->il[l][QKVW], std, r);
    nn_init_normal(ps, g->il[l][PROJW], pstd, r);
    nn_init_normal(ps, g->il[l][FCW], std, r);
    nn_init_normal(ps, g->il[l][FCPW], pstd, r);
  }
  nn_init_const(ps, g->ilnfw, 1.0f);
  return 0;
}

void nn_gpt_free(nn_gpt_t *g) {
  nn_params_free(&g->params);
  free(g->il), free(g->acts), free(g->tok), free(g->grad_scratch);
  memset(g, 0, sizeof *g);
}

/* Lay the arena out for B x T; grow it if needed. */
static int gpt_layout(nn_gpt_t *g, int B, int T) {
  int C = g->cfg.width, L = g->cfg.layers, H = g->cfg.heads, V = g->cfg.vocab;
  size_t BT = (size_t)B * T, n = 0;
  size_t sz[] = {BT * C,                    /* encoded */
                 L * BT * C,                /* ln1 */
                 L * BT,                    /* ln1_mean */
                 L * BT,                    /* ln1_rstd */
                 L * BT * 3 * C,            /* qkv */
                 L * BT * C,                /* atty */
                 L * (size_t)B * H * T * T, /* att */
                 L * BT * C,                /* attproj */
                 L * BT * C,                /* residual2 */
                 L * BT * C,                /* ln2 */
                 L * BT,                    /* ln2_mean */
                 L * BT,                    /* ln2_rstd */
                 L * BT * 4 * C,            /* fch */
                 L * BT * 4 * C,            /* fch_gelu */
                 L * BT * C,                /* fcproj */
                 L * BT * C,                /* residual3 */
                 BT * C,                    /* lnf */
                 BT,                        /* lnf_mean */
                 BT,                        /* lnf_rstd */
                 BT * V};                   /* logits */
  for (size_t i = 0; i < sizeof sz / sizeof *sz; i++) n += sz[i];
  if (n > g->acts_n) {
    float *a = realloc(g->acts, n * sizeof(float));
    if (!a) return LATHE_ENOMEM;
    g->acts = a, g->acts_n = n;
  }
  if ((int)BT > g->maxBT) { /* tokens, then shifted targets */
    int *t = realloc(g->tok, BT * 2 * sizeof(int));
    if (!t) return LATHE_ENOMEM;
    g->tok = t, g->maxBT = (int)BT;
  }
  float **ptr[] = {&g->encoded,   &g->ln1,      &g->ln1_mean, &g->ln1_rstd,  &g->qkv,
                   &g->atty,      &g->att,      &g->attproj,  &g->residual2, &g->ln2,
                   &g->ln2_mean,  &g->ln2_rstd, &g->fch,      &g->fch_gelu,  &g->fcproj,
                   &g->residual3, &g->lnf,      &g->lnf_mean, &g->lnf_rstd,  &g->logits};
  float *p = g->acts;
  for (size_t i = 0; i < sizeof sz / sizeof *sz; i++) *ptr[i] = p, p += sz[i];
  g->B = B, g->T = T;
  return 0;
}

float *nn_gpt_hidden(nn_gpt_t *g, const int *tok, int B, int T) {
  if (T > g->cfg.ctx || gpt_layout(g, B, T)) return NULL;
  int C = g->cfg.width, L = g->cfg.layers, H = g->cfg.heads;
  size_t BT = (size_t)B * T;
  nn_params_t *ps = &g->params;
  memcpy(g->tok, tok, BT * sizeof(int));
  nn_embed_forward(g->encoded, tok, nn_w(ps, g->iwte), nn_w(ps, g->iwpe), B, T, C);
  const float *res = g->encoded;
  for (int l = 0; l < L; l++) {
    const int *ix = g->il[l];
    float *ln1 = g->ln1 + l * BT * C, *ln1m = g->ln1_mean + l * BT, *ln1r = g->ln1_rstd + l * BT;
    float *qkv = g->qkv + l * BT * 3 * C, *atty = g->atty + l * BT * C;
    float *att = g->att + l * (size_t)B * H * T * T, *attproj = g->attproj + l * BT * C;
    float *res2 = g->residual2 + l * BT * C, *ln2 = g->ln2 + l * BT * C;
    float *ln2m = g->ln2_mean + l * BT, *ln2r = g->ln2_rstd + l * BT;
    float *fch = g->fch + l * BT * 4 * C, *fchg = g->fch_gelu + l * BT * 4 * C;
    float *fcproj = g->fcproj + l * BT * C, *res3 = g->residual3 + l * BT * C;
    nn_layernorm_forward(ln1, ln1m, ln1r, res, nn_w(ps, ix[LN1W]), nn_w(ps, ix[LN1B]), BT, C);
    nn_linear_forward(qkv, ln1, nn_w(ps, ix[QKVW]), nn_w(ps, ix[QKVB]), BT, C, 3 * C);
    nn_attention_forward(atty, att, qkv, B, T, C, H);
    nn_linear_forward(attproj, atty, nn_w(ps, ix[PROJW]), nn_w(ps, ix[PROJB]), BT, C, C);
    nn_sum(res2, res, attproj, BT * C);
    nn_layernorm_forward(ln2, ln2m, ln2r, res2, nn_w(ps, ix[LN2W]), nn_w(ps, ix[LN2B]), BT, C);
    nn_linear_forward(fch, ln2, nn_w(ps, ix[FCW]), nn_w(ps, ix[FCB]), BT, C, 4 * C);
    nn_act_forward(NN_GELU, fchg, fch, BT * 4 * C);
    nn_linear_forward(fcproj, fchg, nn_w(ps, ix[FCPW]), nn_w(ps, ix[FCPB]), BT, 4 * C, C);
    nn_sum(res3, res2, fcproj, BT * C);
    res = res3;
  }
  nn_layernorm_forward(g->lnf, g->lnf_mean, g->lnf_rstd, res, nn_w(ps, g->ilnfw),
                       nn_w(ps, g->ilnfb), BT, C);
  return g->lnf;
}

float *nn_gpt_forward(nn_gpt_t *g, const int *tok, int B, int T) {
  if (!nn_gpt_hidden(g, tok, B, T)) return NULL;
  nn_linear_forward(g->logits, g->lnf, nn_w(&g->params, g->iwte), NULL, (size_t)B * T, g->cfg.width,
                    g->cfg.vocab);
  return g->logits;
}

static float *gpt_scratch(nn_gpt_t *g, size_t n) {
  if (n > g->scratch_n) {
    float *s = realloc(g->grad_scratch, n * sizeof(float));
    if (!s) return NULL;
    g->grad_scratch = s, g->scratch_n = n;
  }
  return g->grad_scratch;
}

/* The backward from d lnf, which lives at the scratch's second slot (dln). */
static void backward_from_lnf(nn_gpt_t *g) {
  int B = g->B, T = g->T, C = g->cfg.width, L = g->cfg.layers, H = g->cfg.heads;
  size_t BT = (size_t)B * T;
  nn_params_t *ps = &g->params;
  float *s = g->grad_scratch;
  float *dres = s, *dln = dres + BT * C, *dy = dln + BT * C, *dqkv = dy + BT * C;
  float *dh = dqkv + BT * 3 * C, *dhg = dh + BT * 4 * C, *datt = dhg + BT * 4 * C;
  const float *resL = L ? g->residual3 + (L - 1) * BT * C : g->encoded;
  memset(dres, 0, BT * C * sizeof(float));
  nn_layernorm_backward(dres, nn_g(ps, g->ilnfw), nn_g(ps, g->ilnfb), dln, resL, nn_w(ps, g->ilnfw),
                        g->lnf_mean, g->lnf_rstd, BT, C);
  for (int l = L - 1; l >= 0; l--) {
    const int *ix = g->il[l];
    const float *res = l ? g->residual3 + (l - 1) * BT * C : g->encoded;
    float *ln1 = g->ln1 + l * BT * C, *ln1m = g->ln1_mean + l * BT, *ln1r = g->ln1_rstd + l * BT;
    float *qkv = g->qkv + l * BT * 3 * C, *atty = g->atty + l * BT * C;
    float *att = g->att + l * (size_t)B * H * T * T;
    float *res2 = g->residual2 + l * BT * C, *ln2 = g->ln2 + l * BT * C;
    float *ln2m = g->ln2_mean + l * BT, *ln2r = g->ln2_rstd + l * BT;
    float *fch = g->fch + l * BT * 4 * C, *fchg = g->fch_gelu + l * BT * 4 * C;
    /* MLP branch: dres is d r3; the residual passes it to r2 unchanged */
    memset(dhg, 0, BT * 4 * C * sizeof(float));
    nn_linear_backward(dhg, nn_g(ps, ix[FCPW]), nn_g(ps, ix[FCPB]), dres, fchg, nn_w(ps, ix[FCPW]),
                       BT, 4 * C, C);
    memset(dh, 0, BT * 4 * C * sizeof(float));
    nn_act_backward(NN_GELU, dh, dhg, fch, BT * 4 * C);
    memset(dln, 0, BT * C * sizeof(float));
    nn_linear_backward(dln, nn_g(ps, ix[FCW]), nn_g(ps, ix[FCB]), dh, ln2, nn_w(ps, ix[FCW]), BT, C,
                       4 * C);
    nn_layernorm_backward(dres, nn_g(ps, ix[LN2W]), nn_g(ps, ix[LN2B]), dln, res2,
                          nn_w(ps, ix[LN2W]), ln2m, ln2r, BT, C);
    /* attention branch: dres is now d r2 */
    memset(dy, 0, BT * C * sizeof(float));
    nn_linear_backward(dy, nn_g(ps, ix[PROJW]), nn_g(ps, ix[PROJB]), dres, atty,
                       nn_w(ps, ix[PROJW]), BT, C, C);
    memset(dqkv, 0, BT * 3 * C * sizeof(float));
    nn_attention_backward(dqkv, datt, dy, qkv, att, B, T, C, H);
    memset(dln, 0, BT * C * sizeof(float));
    nn_linear_backward(dln, nn_g(ps, ix[QKVW]), nn_g(ps, ix[QKVB]), dqkv, ln1, nn_w(ps, ix[QKVW]),
                       BT, C, 3 * C);
    nn_layernorm_backward(dres, nn_g(ps, ix[LN1W]), nn_g(ps, ix[LN1B]), dln, res,
                          nn_w(ps, ix[LN1W]), ln1m, ln1r, BT, C);
  }
  nn_embed_backward(nn_g(ps, g->iwte), nn_g(ps, g->iwpe), dres, g->tok, B, T, C);
}

/* scratch: dres, dln, dy (C each), dqkv (3C), dh, dhg (4C each) per token,
 * datt (B*H*T*T) */
static size_t backward_scratch_n(const nn_gpt_t *g) {
  size_t BT = (size_t)g->B * g->T, C = g->cfg.width;
  return BT * 14 * C + (size_t)g->B * g->cfg.heads * g->T * g->T;
}

static float *backward_scratch(nn_gpt_t *g) {
  return gpt_scratch(g, backward_scratch_n(g));
}

void nn_gpt_backward(nn_gpt_t *g, float *dlogits) {
  size_t BT = (size_t)g->B * g->T;
  int C = g->cfg.width, V = g->cfg.vocab;
  float *s = backward_scratch(g);
  if (!s) return;
  float *dln = s + BT * C; /* logits = lnf @ wte^T */
  memset(dln, 0, BT * C * sizeof(float));
  nn_params_t *ps = &g->params;
  nn_linear_backward(dln, nn_g(ps, g->iwte), NULL, dlogits, g->lnf, nn_w(ps, g->iwte), BT, C, V);
  backward_from_lnf(g);
}

void nn_gpt_backward_hidden(nn_gpt_t *g, const float *dlnf) {
  size_t BT = (size_t)g->B * g->T;
  float *s = backward_scratch(g);
  if (!s) return;
  memcpy(s + BT * g->cfg.width, dlnf, BT * g->cfg.width * sizeof(float));
  backward_from_lnf(g);
}

/* Shifted targets and mask for log-probs: position t predicts tok[t+1]. */
static void shift_targets(nn_gpt_t *g, const int *tok, const float *mask, float *smask, int B,
                          int T) {
  int *tgt = g->tok + (size_t)B * T;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      int i = b * T + t, last = t == T - 1;
      tgt[i] = last ? 0 : tok[i + 1];
      smask[i] = last ? 0.0f : (mask ? mask[i + 1] : 1.0f);
    }
}

void nn_gpt_logprobs(nn_gpt_t *g, float *lp, const int *tok, const float *mask, int B, int T) {
  float *logits = nn_gpt_forward(g, tok, B, T);
  if (!logits) return;
  float *smask = gpt_scratch(g, (size_t)B * T);
  shift_targets(g, tok, mask, smask, B, T);
  nn_seq_logprob(lp, logits, g->tok + (size_t)B * T, smask, B, T, g->cfg.vocab);
}

float nn_logprob_of(const float *z, int V, int y) {
  float mx = z[0];
  for (int k = 1; k < V; k++) mx = z[k] > mx ? z[k] : mx;
  double s = 0;
  for (int k = 0; k < V; k++) s += exp((double)z[k] - mx);
  return (float)(z[y] - mx - log(s));
}

int nn_gpt_token_logprobs(nn_gpt_t *g, const int *tok, int B, int T, float *out) {
  int V = g->cfg.vocab;
  float *logits = nn_gpt_forward(g, tok, B, T);
  if (!logits) return LATHE_ENOMEM;
  for (int b = 0; b < B; b++) {
    out[(size_t)b * T] = 0;
    for (int t = 1; t < T; t++)
      out[(size_t)b * T + t] =
          nn_logprob_of(logits + ((size_t)b * T + t - 1) * V, V, tok[(size_t)b * T + t]);
  }
  return 0;
}

void nn_gpt_logprobs_backward(nn_gpt_t *g, const float *dlp, const float *mask) {
  int B = g->B, T = g->T, V = g->cfg.vocab;
  size_t BT = (size_t)B * T;
  /* dlogits lives after the backward scratch so nn_gpt_backward can use both */
  size_t need = backward_scratch_n(g);
  float *s = gpt_scratch(g, need + BT + BT * V);
  if (!s) return;
  float *smask = s + need, *dlogits = smask + BT;
  shift_targets(g, g->tok, mask, smask, B, T);
  memset(dlogits, 0, BT * V * sizeof(float));
  nn_seq_logprob_backward(dlogits, dlp, g->logits, g->tok + BT, smask, B, T, V);
  nn_gpt_backward(g, dlogits);
}

/* ---- KV cache decoding --------------------------------------------------- */

int nn_kvcache_init(nn_kvcache_t *kv, const nn_gpt_t *g, int B) {
  int C = g->cfg.width, L = g->cfg.layers, T = g->cfg.ctx;
  memset(kv, 0, sizeof *kv);
  kv->B = B, kv->ctx = T;
  size_t n = (size_t)L * B * T * C;
  kv->k = calloc(n, sizeof(float));
  kv->v = calloc(n, sizeof(float));
  /* decode's x, ln, y, tmp (C each), qkv (3C), h (4C), mean, rstd, scores (T) */
  kv->scratch = calloc((size_t)B * (11 * C + 2 + T), sizeof(float));
  if (!kv->k || !kv->v || !kv->scratch) {
    nn_kvcache_free(kv);
    return LATHE_ENOMEM;
  }
  return 0;
}

void nn_kvcache_free(nn_kvcache_t *kv) {
  free(kv->k), free(kv->v), free(kv->scratch);
  memset(kv, 0, sizeof *kv);
}

int nn_gpt_prefill(nn_gpt_t *g, nn_kvcache_t *kv, const int *tok, int P) {
  int B = kv->B, C = g->cfg.width, L = g->cfg.layers, H = g->cfg.heads, T = kv->ctx;
  if (kv->pos != 0 || P < 1 || P > T) return LATHE_ESHAPE;
  size_t BP = (size_t)B * P;
  float *x = malloc((BP * 11 * C + 2 * BP + (size_t)B * H * P * P) * sizeof(float));
  if (!x) return LATHE_ENOMEM;
  float *ln = x + BP * C, *qkv = ln + BP * C, *y = qkv + BP * 3 * C, *tmp = y + BP * C;
  float *h = tmp + BP * C, *mean = h + BP * 4 * C, *rstd = mean + BP, *att = rstd + BP;
  nn_params_t *ps = &g->params;
  nn_embed_forward(x, tok, nn_w(ps, g->iwte), nn_w(ps, g->iwpe), B, P, C);
  for (int l = 0; l < L; l++) {
    const int *ix = g->il[l];
    nn_layernorm_forward(ln, mean, rstd, x, nn_w(ps, ix[LN1W]), nn_w(ps, ix[LN1B]), BP, C);
    nn_linear_forward(qkv, ln, nn_w(ps, ix[QKVW]), nn_w(ps, ix[QKVB]), BP, C, 3 * C);
    for (int b = 0; b < B; b++)
      for (int t = 0; t < P; t++) {
        size_t at = (((size_t)l * B + b) * T + t) * C;
        const float *row = qkv + ((size_t)b * P + t) * 3 * C;
        memcpy(kv->k + at, row + C, C * sizeof(float));
        memcpy(kv->v + at, row + 2 * C, C * sizeof(float));
      }
    if (l == L - 1) break; /* the last layer's keys and values are all the cache needs */
    nn_attention_forward(y, att, qkv, B, P, C, H);
    nn_linear_forward(tmp, y, nn_w(ps, ix[PROJW]), nn_w(ps, ix[PROJB]), BP, C, C);
    nn_add(x, tmp, BP * C);
    nn_layernorm_forward(ln, mean, rstd, x, nn_w(ps, ix[LN2W]), nn_w(ps, ix[LN2B]), BP, C);
    nn_linear_forward(h, ln, nn_w(ps, ix[FCW]), nn_w(ps, ix[FCB]), BP, C, 4 * C);
    nn_act_forward(NN_GELU, h, h, BP * 4 * C);
    nn_linear_forward(tmp, h, nn_w(ps, ix[FCPW]), nn_w(ps, ix[FCPB]), BP, 4 * C, C);
    nn_add(x, tmp, BP * C);
  }
  free(x);
  kv->pos = P;
  return 0;
}

/* One position's attention over the cache, sequences [lo, hi) of layer l:
 * each writes its own cache rows, output row and scores (sc + b T). */
typedef struct {
  nn_kvcache_t *kv;
  const float *qkv;
  float *y, *sc;
  int l, pos, C, H;
} decode_job;

static void decode_attention(void *c, size_t lo, size_t hi) {
  const decode_job *j = c;
  nn_kvcache_t *kv = j->kv;
  int B = kv->B, T = kv->ctx, C = j->C, H = j->H, hs = C / H, pos = j->pos, l = j->l;
  float scale = 1.0f / sqrtf((float)hs);
  const float *qkv = j->qkv;
  for (size_t b = lo; b < hi; b++) {
    float *kc = kv->k + (((size_t)l * B + b) * T) * C, *vc = kv->v + (((size_t)l * B + b) * T) * C;
    float *sc = j->sc + b * T, *y = j->y;
    memcpy(kc + (size_t)pos * C, qkv + b * 3 * C + C, C * sizeof(float));
    memcpy(vc + (size_t)pos * C, qkv + b * 3 * C + 2 * C, C * sizeof(float));
    for (int hh = 0; hh < H; hh++) {
      const float *q = qkv + b * 3 * C + hh * hs;
      float mx = -INFINITY, sum = 0.0f;
      for (int u = 0; u <= pos; u++) {
        const float *k = kc + (size_t)u * C + hh * hs;
        float d = 0.0f;
        for (int i = 0; i < hs; i++) d += q[i] * k[i];
        sc[u] = d * scale;
        mx = sc[u] > mx ? sc[u] : mx;
      }
      for (int u = 0; u <= pos; u++) sc[u] = expf(sc[u] - mx), sum += sc[u];
      float *o = y + b * C + hh * hs;
      for (int i = 0; i < hs; i++) o[i] = 0.0f;
      for (int u = 0; u <= pos; u++) {
        const float *v = vc + (size_t)u * C + hh * hs;
        float a = sc[u] / sum;
        for (int i = 0; i < hs; i++) o[i] += a * v[i];
      }
    }
  }
}

int nn_gpt_decode(nn_gpt_t *g, nn_kvcache_t *kv, const int *tok, float *logits) {
  int B = kv->B, C = g->cfg.width, L = g->cfg.layers, H = g->cfg.heads, V = g->cfg.vocab;
  int T = kv->ctx, pos = kv->pos;
  if (pos >= T) return LATHE_ESHAPE;
  nn_params_t *ps = &g->params;
  float *x = kv->scratch, *ln = x + B * C, *qkv = ln + B * C, *y = qkv + 3 * B * C;
  float *h = y + B * C, *tmp = h + 4 * B * C, *mean = tmp + B * C, *rstd = mean + B, *sc = rstd + B;
  const float *wte = nn_w(ps, g->iwte), *wpe = nn_w(ps, g->iwpe);
  for (int b = 0; b < B; b++)
    for (int i = 0; i < C; i++) x[b * C + i] = wte[(size_t)tok[b] * C + i] + wpe[pos * C + i];
  for (int l = 0; l < L; l++) {
    const int *ix = g->il[l];
    nn_layernorm_forward(ln, mean, rstd, x, nn_w(ps, ix[LN1W]), nn_w(ps, ix[LN1B]), B, C);
    nn_linear_forward(qkv, ln, nn_w(ps, ix[QKVW]), nn_w(ps, ix[QKVB]), B, C, 3 * C);
    decode_job j = {kv, qkv, y, sc, l, pos, C, H};
    size_t work = (size_t)(pos + 1) * C * 4; /* flops per sequence */
    nn_parallel(B, work >= 65536 ? 1 : 65536 / work, 0, decode_attention, &j);
    nn_linear_forward(tmp, y, nn_w(ps, ix[PROJW]), nn_w(ps, ix[PROJB]), B, C, C);
    nn_add(x, tmp, (size_t)B * C);
    nn_layernorm_forward(ln, mean, rstd, x, nn_w(ps, ix[LN2W]), nn_w(ps, ix[LN2B]), B, C);
    nn_linear_forward(h, ln, nn_w(ps, ix[FCW]), nn_w(ps, ix[FCB]), B, C, 4 * C);
    nn_act_forward(NN_GELU, h, h, (size_t)B * 4 * C);
    nn_linear_forward(tmp, h, nn_w(ps, ix[FCPW]), nn_w(ps, ix[FCPB]), B, 4 * C, C);
    nn_add(x, tmp, (size_t)B * C);
  }
  if (logits) {
    nn_layernorm_forward(ln, mean, rstd, x, nn_w(ps, g->ilnfw), nn_w(ps, g->ilnfb), B, C);
    nn_linear_forward(logits, ln, wte, NULL, B, C, V);
  }
  kv->pos++;
  return 0;
}

/* ---- sampling ------------------------------------------------------------ */

static int cmp_desc(const void *a, const void *b) {
  float x = ((const float *)a)[0], y = ((const float *)b)[0];
  if (x != y) return x < y ? 1 : -1;
  return ((const float *)a)[1] < ((const float *)b)[1] ? -1 : 1; /* stable by index */
}

int nn_sample(const float *logits, int V, float temperature, int top_k, float top_p, nn_rng_t *r,
              float *scratch) {
  if (temperature <= 0.0f) {
    int best = 0;
    for (int v = 1; v < V; v++)
      if (logits[v] > logits[best]) best = v;
    return best;
  }
  float mx = -INFINITY, sum = 0.0f;
  for (int v = 0; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
  if ((top_k <= 0 || top_k >= V) && top_p >= 1.0f) { /* the full distribution: no sort */
    for (int v = 0; v < V; v++)
      scratch[v] = expf((logits[v] - mx) / temperature), sum += scratch[v];
    float u = nn_rng_uniform(r) * sum, c = 0.0f;
    int last = 0;
    for (int v = 0; v < V; v++) { /* c adds as sum did: it reaches sum, above u */
      c += scratch[v];
      if (scratch[v] > 0.0f) last = v;
      if (u < c) return v;
    }
    return last; /* u rounded up to sum */
  }
  /* (prob, index) pairs sorted by probability, descending */
  for (int v = 0; v < V; v++) {
    scratch[2 * v] = expf((logits[v] - mx) / temperature);
    scratch[2 * v + 1] = (float)v;
    sum += scratch[2 * v];
  }
  qsort(scratch, V, 2 * sizeof(float), cmp_desc);
  int n = (top_k > 0 && top_k < V) ? top_k : V;
  float keep = 0.0f;
  for (int i = 0; i < n; i++) {
    keep += scratch[2 * i] / sum;
    if (top_p < 1.0f && keep >= top_p) {
      n = i + 1;
      break;
    }
  }
  float tot = 0.0f;
  for (int i = 0; i < n; i++) tot += scratch[2 * i];
  float u = nn_rng_uniform(r) * tot, c = 0.0f;
  for (int i = 0; i < n; i++) {
    c += scratch[2 * i];
    if (u < c) return (int)scratch[2 * i + 1];
  }
  return (int)scratch[2 * (n - 1) + 1];
}
