/* mlp.c - multi-layer perceptron: Linear -> [LayerNorm] -> act, repeated, then
 * a final Linear. Used by every critic, actor and Q-network.
 *
 * The activation arena holds, for maxN rows, each layer's input, pre-activation
 * and (optionally) LayerNorm output; it grows when a larger batch arrives.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nn_mlp_init(nn_mlp_t *m, const char *prefix, int nlayers, const int *width, nn_act_t act,
                int layernorm, nn_rng_t *r) {
  memset(m, 0, sizeof *m);
  if (nlayers < 1 || nlayers > 8) return LATHE_ESHAPE;
  m->nlayers = nlayers, m->act = act, m->layernorm = layernorm;
  for (int l = 0; l <= nlayers; l++) {
    if (width[l] < 1) return LATHE_ESHAPE;
    m->width[l] = width[l];
  }
  char name[NN_NAME_MAX];
  for (int l = 0; l < nlayers; l++) {
    int ws[2] = {width[l + 1], width[l]}, bs[1] = {width[l + 1]};
    snprintf(name, sizeof name, "%s.%d.w", prefix, l);
    m->iw[l] = nn_params_add(&m->params, name, 1, 2, ws);
    snprintf(name, sizeof name, "%s.%d.b", prefix, l);
    m->ib[l] = nn_params_add(&m->params, name, 0, 1, bs);
    if (layernorm && l < nlayers - 1) {
      snprintf(name, sizeof name, "%s.%d.ln.w", prefix, l);
      m->ilnw[l] = nn_params_add(&m->params, name, 0, 1, bs);
      snprintf(name, sizeof name, "%s.%d.ln.b", prefix, l);
      m->ilnb[l] = nn_params_add(&m->params, name, 0, 1, bs);
    }
  }
  int rc = nn_params_alloc(&m->params);
  if (rc) return rc;
  /* PyTorch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for w and b */
  for (int l = 0; l < nlayers; l++) {
    float a = 1.0f / sqrtf((float)width[l]);
    nn_init_uniform(&m->params, m->iw[l], a, r);
    nn_init_uniform(&m->params, m->ib[l], a, r);
    if (layernorm && l < nlayers - 1) nn_init_const(&m->params, m->ilnw[l], 1.0f);
  }
  return 0;
}

int nn_parse_widths(const char *s, int *w, int max) {
  int n = 0;
  while (*s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 1 || v > 65536 || n == max) return -1;
    w[n++] = (int)v;
    s = end;
    if (*s == ',' || *s == '-')
      s++;
    else if (*s)
      return -1;
  }
  return n;
}

void nn_mlp_free(nn_mlp_t *m) {
  nn_params_free(&m->params);
  free(m->arena);
  memset(m, 0, sizeof *m);
}

static int mlp_reserve(nn_mlp_t *m, int N) {
  if (N <= m->maxN) return 0;
  int L = m->nlayers, maxw = 0;
  size_t per = m->width[0];
  for (int l = 0; l < L; l++) {
    int w = m->width[l + 1];
    per += w;                                    /* pre */
    if (l < L - 1) per += w;                     /* x[l+1] (post-activation) */
    if (m->layernorm && l < L - 1) per += w + 2; /* ln, mean, rstd */
  }
  for (int l = 0; l <= L; l++) maxw = m->width[l] > maxw ? m->width[l] : maxw;
  per += 2 * (size_t)maxw;
  float *a = realloc(m->arena, per * N * sizeof(float));
  if (!a) return LATHE_ENOMEM;
  m->arena = a, m->maxN = N;
  float *p = a;
#define TAKE(ptr, cnt) (ptr = p, p += (size_t)(cnt)*N)
  TAKE(m->x[0], m->width[0]);
  for (int l = 0; l < L; l++) {
    int w = m->width[l + 1];
    TAKE(m->pre[l], w);
    if (l < L - 1) TAKE(m->x[l + 1], w);
    if (m->layernorm && l < L - 1) {
      TAKE(m->ln[l], w);
      TAKE(m->mean[l], 1);
      TAKE(m->rstd[l], 1);
    }
  }
  TAKE(m->d0, maxw);
  TAKE(m->d1, maxw);
#undef TAKE
  return 0;
}

float *nn_mlp_forward(nn_mlp_t *m, const float *x, int N) {
  if (mlp_reserve(m, N)) return NULL;
  m->N = N;
  nn_params_t *ps = &m->params;
  int L = m->nlayers;
  memcpy(m->x[0], x, sizeof(float) * N * m->width[0]);
  for (int l = 0; l < L; l++) {
    int ic = m->width[l], oc = m->width[l + 1];
    nn_linear_forward(m->pre[l], m->x[l], nn_w(ps, m->iw[l]), nn_w(ps, m->ib[l]), N, ic, oc);
    if (l == L - 1) break;
    const float *h = m->pre[l];
    if (m->layernorm) {
      nn_layernorm_forward(m->ln[l], m->mean[l], m->rstd[l], h, nn_w(ps, m->ilnw[l]),
                           nn_w(ps, m->ilnb[l]), N, oc);
      h = m->ln[l];
    }
    nn_act_forward(m->act, m->x[l + 1], h, (size_t)N * oc);
  }
  return m->pre[L - 1];
}

void nn_mlp_backward(nn_mlp_t *m, const float *dout, float *dx) {
  nn_params_t *ps = &m->params;
  int L = m->nlayers, N = m->N;
  const float *d = dout;
  for (int l = L - 1; l >= 0; l--) {
    int ic = m->width[l], oc = m->width[l + 1];
    float *dprev = NULL;
    if (l > 0) {
      dprev = (d == m->d0) ? m->d1 : m->d0;
      memset(dprev, 0, sizeof(float) * N * ic);
    }
    nn_linear_backward(l > 0 ? dprev : dx, nn_g(ps, m->iw[l]), nn_g(ps, m->ib[l]), d, m->x[l],
                       nn_w(ps, m->iw[l]), N, ic, oc);
    if (l == 0) break;
    /* dprev is d(x[l]); back through act (and LayerNorm) of layer l-1 */
    int w = ic;
    float *dh = (dprev == m->d0) ? m->d1 : m->d0;
    memset(dh, 0, sizeof(float) * N * w);
    if (m->layernorm) {
      nn_act_backward(m->act, dh, dprev, m->ln[l - 1], (size_t)N * w);
      memset(dprev, 0, sizeof(float) * N * w);
      nn_layernorm_backward(dprev, nn_g(ps, m->ilnw[l - 1]), nn_g(ps, m->ilnb[l - 1]), dh,
                            m->pre[l - 1], nn_w(ps, m->ilnw[l - 1]), m->mean[l - 1], m->rstd[l - 1],
                            N, w);
      d = dprev;
    } else {
      nn_act_backward(m->act, dh, dprev, m->pre[l - 1], (size_t)N * w);
      d = dh;
    }
  }
}
