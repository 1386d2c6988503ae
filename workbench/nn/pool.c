/* pool.c - attention pooling of a variable-length sequence (nn.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

int nn_pool_init(nn_pool_t *p, const char *prefix, int C, int D, int H, nn_rng_t *r) {
  memset(p, 0, sizeof *p);
  if (C < 1 || D < 1 || H < 1 || D % H) return LATHE_ESHAPE;
  p->C = C, p->D = D, p->H = H;
  char n[NN_NAME_MAX];
  snprintf(n, sizeof n, "%s.q", prefix);
  p->iq = nn_params_add(&p->params, n, 0, 2, (int[]){H, D / H});
  snprintf(n, sizeof n, "%s.k.w", prefix);
  p->ik = nn_params_add(&p->params, n, 1, 2, (int[]){D, C});
  snprintf(n, sizeof n, "%s.v.w", prefix);
  p->iv = nn_params_add(&p->params, n, 1, 2, (int[]){D, C});
  snprintf(n, sizeof n, "%s.v.b", prefix);
  p->ivb = nn_params_add(&p->params, n, 0, 1, (int[]){D});
  if (p->iq < 0 || p->ik < 0 || p->iv < 0 || p->ivb < 0 || nn_params_alloc(&p->params))
    return LATHE_ENOMEM;
  float a = 1.0f / sqrtf((float)C); /* PyTorch's Linear: kaiming-uniform(a=sqrt 5), bias alike */
  nn_init_uniform(&p->params, p->ik, a, r);
  nn_init_uniform(&p->params, p->iv, a, r);
  nn_init_uniform(&p->params, p->ivb, a, r);
  return 0;
}

void nn_pool_free(nn_pool_t *p) {
  nn_params_free(&p->params);
  free(p->k), free(p->v), free(p->a), free(p->out), free(p->dk), free(p->dv), free(p->da);
  memset(p, 0, sizeof *p);
}

static int pool_room(nn_pool_t *p, int N, int T) {
  size_t rows = (size_t)N * T;
  if ((int64_t)rows <= p->cap && N <= p->cap) return 0;
  size_t cap = rows > (size_t)N ? rows : (size_t)N, D = p->D, H = p->H;
  float *k = realloc(p->k, cap * D * sizeof *k), *v = realloc(p->v, cap * D * sizeof *v);
  if (k) p->k = k;
  if (v) p->v = v;
  float *a = realloc(p->a, cap * H * sizeof *a), *o = realloc(p->out, cap * D * sizeof *o);
  if (a) p->a = a;
  if (o) p->out = o;
  float *dk = realloc(p->dk, cap * D * sizeof *dk), *dv = realloc(p->dv, cap * D * sizeof *dv);
  if (dk) p->dk = dk;
  if (dv) p->dv = dv;
  double *da = realloc(p->da, cap * sizeof *da);
  if (da) p->da = da;
  if (!k || !v || !a || !o || !dk || !dv || !da) return LATHE_ENOMEM;
  p->cap = (int)cap;
  return 0;
}

float *nn_pool_forward(nn_pool_t *p, const float *x, const int *len, int N, int T) {
  if (pool_room(p, N, T)) return NULL;
  int C = p->C, D = p->D, H = p->H, dh = D / H;
  size_t rows = (size_t)N * T;
  p->N = N, p->T = T, p->x = x, p->len = len;
  nn_params_t *ps = &p->params;
  nn_linear_forward(p->k, x, nn_w(ps, p->ik), NULL, (int)rows, C, D);
  nn_linear_forward(p->v, x, nn_w(ps, p->iv), nn_w(ps, p->ivb), (int)rows, C, D);
  const float *q = nn_w(ps, p->iq);
  float scale = 1.0f / sqrtf((float)dh);
  for (int n = 0; n < N; n++)
    for (int h = 0; h < H; h++) {
      float *a = p->a + ((size_t)n * H + h) * T, *o = p->out + (size_t)n * D + h * dh;
      int L = len[n];
      memset(o, 0, dh * sizeof *o);
      if (L <= 0) continue;
      float m = -INFINITY;
      for (int t = 0; t < L; t++) {
        const float *k = p->k + ((size_t)n * T + t) * D + h * dh;
        float s = 0.0f;
        for (int j = 0; j < dh; j++) s += q[h * dh + j] * k[j];
        a[t] = s * scale;
        m = a[t] > m ? a[t] : m;
      }
      double sum = 0.0;
      for (int t = 0; t < L; t++) sum += a[t] = expf(a[t] - m);
      for (int t = 0; t < L; t++) {
        a[t] = (float)(a[t] / sum);
        const float *v = p->v + ((size_t)n * T + t) * D + h * dh;
        for (int j = 0; j < dh; j++) o[j] += a[t] * v[j];
      }
    }
  return p->out;
}

void nn_pool_backward(nn_pool_t *p, const float *dout, float *dx) {
  int N = p->N, T = p->T, C = p->C, D = p->D, H = p->H, dh = D / H;
  size_t rows = (size_t)N * T;
  nn_params_t *ps = &p->params;
  const float *q = nn_w(ps, p->iq);
  float *gq = nn_g(ps, p->iq), scale = 1.0f / sqrtf((float)dh);
  memset(p->dk, 0, rows * D * sizeof(float));
  memset(p->dv, 0, rows * D * sizeof(float));
  for (int n = 0; n < N; n++)
    for (int h = 0; h < H; h++) {
      const float *a = p->a + ((size_t)n * H + h) * T, *g = dout + (size_t)n * D + h * dh;
      int L = p->len[n];
      if (L <= 0) continue;
      double *da = p->da, dot = 0.0;
      for (int t = 0; t < L; t++) {
        const float *v = p->v + ((size_t)n * T + t) * D + h * dh;
        float *dv = p->dv + ((size_t)n * T + t) * D + h * dh;
        double s = 0.0;
        for (int j = 0; j < dh; j++) s += (double)g[j] * v[j], dv[j] = a[t] * g[j];
        da[t] = s, dot += a[t] * s;
      }
      for (int t = 0; t < L; t++) { /* softmax backward, then the score q . k / sqrt(dh) */
        float ds = (float)(a[t] * (da[t] - dot)) * scale;
        const float *k = p->k + ((size_t)n * T + t) * D + h * dh;
        float *dk = p->dk + ((size_t)n * T + t) * D + h * dh;
        for (int j = 0; j < dh; j++) gq[h * dh + j] += ds * k[j], dk[j] = ds * q[h * dh + j];
      }
    }
  nn_linear_backward(dx, nn_g(ps, p->ik), NULL, p->dk, p->x, nn_w(ps, p->ik), (int)rows, C, D);
  nn_linear_backward(dx, nn_g(ps, p->iv), nn_g(ps, p->ivb), p->dv, p->x, nn_w(ps, p->iv), (int)rows,
                     C, D);
}
