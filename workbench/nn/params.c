/* params.c - random numbers, named parameter sets, AdamW, schedules and the
 * versioned parameter serialization of the nn core.
 *
 * A parameter set is declared first (names, shapes, decay flags) and then
 * allocated as one block of values and one of gradients ("malloc and point");
 * Adam's two moment blocks are allocated on the optimizer's first step.
 */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rng: xoshiro256** seeded by splitmix64 ----------------------------- */

int nn_abi_version(void) {
  return NN_ABI;
}

void nn_rng_seed(nn_rng_t *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = nn_splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t nn_rng_u64(nn_rng_t *r) {
  uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
  return res;
}

float nn_rng_uniform(nn_rng_t *r) {
  return (nn_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}
double nn_rng_uniform_d(nn_rng_t *r) {
  return (nn_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

float nn_rng_normal(nn_rng_t *r) {
  double u1 = nn_rng_uniform_d(r), u2 = nn_rng_uniform_d(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t nn_rng_below(nn_rng_t *r, uint32_t n) {
  return (uint32_t)(((nn_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- parameter sets ----------------------------------------------------- */

int nn_params_add(nn_params_t *ps, const char *name, int decay, int ndim, const int *shape) {
  if (ps->np == ps->cap) {
    int cap = ps->cap ? ps->cap * 2 : 16;
    nn_param_t *p = realloc(ps->p, sizeof *p * cap);
    if (!p) return LATHE_ENOMEM;
    ps->p = p, ps->cap = cap;
  }
  nn_param_t *p = &ps->p[ps->np];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->ndim = ndim, p->decay = decay, p->n = 1;
  for (int i = 0; i < ndim; i++) p->shape[i] = shape[i], p->n *= (size_t)shape[i];
  p->off = ps->total;
  ps->total += p->n;
  return ps->np++;
}

int nn_params_alloc(nn_params_t *ps) {
  ps->w = calloc(ps->total ? ps->total : 1, sizeof(float));
  ps->g = calloc(ps->total ? ps->total : 1, sizeof(float));
  return ps->w && ps->g ? 0 : LATHE_ENOMEM;
}

void nn_params_free(nn_params_t *ps) {
  free(ps->p), free(ps->w), free(ps->g), free(ps->m), free(ps->v);
  memset(ps, 0, sizeof *ps);
}

int nn_params_find(const nn_params_t *ps, const char *name) {
  for (int i = 0; i < ps->np; i++)
    if (!strcmp(ps->p[i].name, name)) return i;
  return -1;
}

void nn_params_reset_opt(nn_params_t *ps) {
  free(ps->m), free(ps->v);
  ps->m = ps->v = NULL, ps->t = 0;
}

void nn_params_zero_grad(nn_params_t *ps) {
  memset(ps->g, 0, ps->total * sizeof(float));
}

void nn_params_copy(nn_params_t *dst, const nn_params_t *src) {
  memcpy(dst->w, src->w, src->total * sizeof(float));
}

void nn_params_polyak(nn_params_t *dst, const nn_params_t *src, float tau) {
  for (size_t i = 0; i < src->total; i++) dst->w[i] += tau * (src->w[i] - dst->w[i]);
}

float nn_clip_grad_norm(nn_params_t *ps, float max_norm) {
  double ss = 0.0;
  for (size_t i = 0; i < ps->total; i++) ss += (double)ps->g[i] * ps->g[i];
  float norm = (float)sqrt(ss);
  if (max_norm > 0.0f && norm > max_norm) {
    float s = max_norm / (norm + 1e-6f);
    for (size_t i = 0; i < ps->total; i++) ps->g[i] *= s;
  }
  return norm;
}

double nn_clip_grad_norm_sets(nn_params_t *const *ps, int n, double max_norm) {
  double ss = 0.0;
  for (int k = 0; k < n; k++)
    for (size_t i = 0; i < ps[k]->total; i++) ss += (double)ps[k]->g[i] * ps[k]->g[i];
  double norm = sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    float s = (float)(max_norm / (norm + 1e-6));
    for (int k = 0; k < n; k++)
      for (size_t i = 0; i < ps[k]->total; i++) ps[k]->g[i] *= s;
  }
  return norm;
}

void nn_init_normal(nn_params_t *ps, int i, float std, nn_rng_t *r) {
  float *w = nn_w(ps, i);
  for (size_t k = 0; k < ps->p[i].n; k++) w[k] = std * nn_rng_normal(r);
}

void nn_init_uniform(nn_params_t *ps, int i, float a, nn_rng_t *r) {
  float *w = nn_w(ps, i);
  for (size_t k = 0; k < ps->p[i].n; k++) w[k] = a * (2.0f * nn_rng_uniform(r) - 1.0f);
}

void nn_init_const(nn_params_t *ps, int i, float c) {
  float *w = nn_w(ps, i);
  for (size_t k = 0; k < ps->p[i].n; k++) w[k] = c;
}

void nn_init_orthogonal(nn_params_t *ps, int i, float gain, nn_rng_t *r) {
  int rows = ps->p[i].shape[0], cols = (int)(ps->p[i].n / rows);
  int tall = rows >= cols, n = tall ? rows : cols, k = tall ? cols : rows;
  double *q = malloc(sizeof(double) * n * k); /* k columns of length n */
  if (!q) return;
  for (int j = 0; j < n * k; j++) q[j] = nn_rng_normal(r);
  for (int c = 0; c < k; c++) { /* modified Gram-Schmidt: R's diagonal comes out positive */
    double *v = q + (size_t)c * n;
    for (int p = 0; p < c; p++) {
      double d = 0.0, *u = q + (size_t)p * n;
      for (int j = 0; j < n; j++) d += u[j] * v[j];
      for (int j = 0; j < n; j++) v[j] -= d * u[j];
    }
    double nrm = 0.0;
    for (int j = 0; j < n; j++) nrm += v[j] * v[j];
    nrm = sqrt(nrm);
    for (int j = 0; j < n; j++) v[j] /= nrm;
  }
  float *w = nn_w(ps, i); /* w(rows, cols): tall -> w[j][c] = q_c[j]; wide -> w[c][j] = q_c[j] */
  for (int c = 0; c < k; c++)
    for (int j = 0; j < n; j++)
      w[tall ? (size_t)j * cols + c : (size_t)c * cols + j] = (float)(gain * q[(size_t)c * n + j]);
  free(q);
}

/* ---- serialization ------------------------------------------------------ */

#define NN_PARAMS_VERSION 1u

void nn_params_save(const nn_params_t *ps, lathe_buf_t *b, int with_opt) {
  uint32_t version = NN_PARAMS_VERSION, count = (uint32_t)ps->np;
  uint8_t opt = with_opt && ps->m ? 1 : 0;
  lathe_buf_put(b, "LNNP", 4);
  LATHE_PUT(b, version), LATHE_PUT(b, count), LATHE_PUT(b, opt), LATHE_PUT(b, ps->t);
  for (int i = 0; i < ps->np; i++) {
    const nn_param_t *p = &ps->p[i];
    uint16_t len = (uint16_t)strlen(p->name);
    uint8_t nd = (uint8_t)p->ndim;
    LATHE_PUT(b, len), lathe_buf_put(b, p->name, len), LATHE_PUT(b, nd);
    for (int d = 0; d < p->ndim; d++) LATHE_PUT(b, p->shape[d]);
    lathe_buf_put(b, ps->w + p->off, p->n * sizeof(float));
  }
  if (opt) {
    lathe_buf_put(b, ps->m, ps->total * sizeof(float));
    lathe_buf_put(b, ps->v, ps->total * sizeof(float));
  }
}

int nn_params_load(nn_params_t *ps, lathe_buf_t *b) {
  char magic[4];
  uint32_t version, count;
  uint8_t opt;
  int64_t t;
  lathe_buf_get(b, magic, 4);
  LATHE_GET(b, version), LATHE_GET(b, count), LATHE_GET(b, opt), LATHE_GET(b, t);
  if (b->err || memcmp(magic, "LNNP", 4) || version != NN_PARAMS_VERSION) return LATHE_ECKPT;
  if (count != (uint32_t)ps->np) return LATHE_ESHAPE;
  for (int i = 0; i < ps->np; i++) {
    const nn_param_t *p = &ps->p[i];
    uint16_t len;
    uint8_t nd;
    char name[NN_NAME_MAX + 1];
    LATHE_GET(b, len);
    if (len > NN_NAME_MAX) return LATHE_ECKPT;
    lathe_buf_get(b, name, len);
    name[len] = 0;
    LATHE_GET(b, nd);
    if (b->err) return LATHE_ECKPT;
    if (strcmp(name, p->name) || nd != p->ndim) return LATHE_ESHAPE;
    for (int d = 0; d < nd; d++) {
      int s;
      LATHE_GET(b, s);
      if (s != p->shape[d]) return LATHE_ESHAPE;
    }
    lathe_buf_get(b, ps->w + p->off, p->n * sizeof(float));
  }
  if (opt) {
    if (!ps->m) ps->m = calloc(ps->total, sizeof(float));
    if (!ps->v) ps->v = calloc(ps->total, sizeof(float));
    if (!ps->m || !ps->v) return LATHE_ENOMEM;
    lathe_buf_get(b, ps->m, ps->total * sizeof(float));
    lathe_buf_get(b, ps->v, ps->total * sizeof(float));
  }
  ps->t = t;
  return b->err ? LATHE_ECKPT : 0;
}

/* ---- AdamW and schedules ------------------------------------------------- */

nn_adamw_t nn_adamw_default(void) {
  return (nn_adamw_t){1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
}

typedef struct {
  nn_params_t *ps;
  const nn_adamw_t *o;
  float lr, bc1, bc2;
} adamw_job;

/* values [lo, hi) of the flat parameter block, each updated alone */
static void adamw_part(void *c, size_t lo, size_t hi) {
  const adamw_job *j = c;
  nn_params_t *ps = j->ps;
  float b1 = j->o->beta1, b2 = j->o->beta2, bc1 = j->bc1, bc2 = j->bc2, lr = j->lr, eps = j->o->eps;
  for (int i = 0; i < ps->np; i++) {
    const nn_param_t *p = &ps->p[i];
    size_t a = p->off > lo ? p->off : lo, e = p->off + p->n < hi ? p->off + p->n : hi;
    if (a >= e) continue;
    float *w = ps->w, *g = ps->g, *m = ps->m, *v = ps->v;
    float wd = p->decay ? j->o->weight_decay : 0.0f;
    for (size_t k = a; k < e; k++) {
      m[k] = b1 * m[k] + (1.0f - b1) * g[k];
      v[k] = b2 * v[k] + (1.0f - b2) * g[k] * g[k];
      float mh = m[k] / bc1, vh = v[k] / bc2;
      w[k] -= lr * (mh / (sqrtf(vh) + eps) + wd * w[k]);
    }
  }
}

int nn_adamw_step(nn_params_t *ps, const nn_adamw_t *o, float lr) {
  if (!ps->m) ps->m = calloc(ps->total ? ps->total : 1, sizeof(float));
  if (!ps->v) ps->v = calloc(ps->total ? ps->total : 1, sizeof(float));
  if (!ps->m || !ps->v) return LATHE_ENOMEM;
  ps->t++;
  float b1 = o->beta1, b2 = o->beta2;
  adamw_job j = {ps, o, lr, 1.0f - powf(b1, (float)ps->t), 1.0f - powf(b2, (float)ps->t)};
  nn_parallel(ps->total, 16384, 0, adamw_part, &j);
  return 0;
}

float nn_lr_at(nn_sched_t s, float lr, int64_t t, int64_t warmup, int64_t total, float min_ratio) {
  if (warmup > 0 && t < warmup) return lr * (float)(t + 1) / (float)warmup;
  if (s == NN_SCHED_CONSTANT || total <= warmup) return lr;
  float frac = (float)(t - warmup) / (float)(total - warmup);
  if (frac > 1.0f) frac = 1.0f;
  float lo = lr * min_ratio;
  if (s == NN_SCHED_LINEAR) return lr + (lo - lr) * frac;
  return lo + 0.5f * (lr - lo) * (1.0f + cosf(3.14159265358979f * frac));
}
