/* heads.c - critic heads: how a network's outputs become a value and a loss
 * against a scalar target (mse, huber) or a categorical target (two_hot,
 * hl_gauss, c51). Used unchanged by every value-learning plugin.
 *
 * Bin conventions (stored with the model by nn_head_save):
 *   hl_gauss   "paper": m bins, edges e_k = v_min + k z (k = 0..m), z = (v_max - v_min)/m,
 *              centres c_k = v_min + (k + 1/2) z.
 *   two_hot,   "atoms": centres c_j = v_min + j D (j = 0..m-1), D = (v_max - v_min)/(m - 1).
 *   c51
 * Targets are clipped into [v_min, v_max] before any transform, so far-out
 * values never divide by zero; decoding is the expectation over centres.
 */
#include <math.h>
#include <string.h>

#include "fastmath.h"
#include "nn.h"

int nn_head_parse(const char *name) {
  static const char *names[] = {"mse", "huber", "two_hot", "hl_gauss", "c51"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(name, names[i])) return i;
  return -1;
}

int nn_head_init(nn_head_t *h, nn_head_kind_t kind, int bins, float v_min, float v_max,
                 float sigma_ratio) {
  memset(h, 0, sizeof *h);
  h->kind = kind, h->bins = bins, h->v_min = v_min, h->v_max = v_max;
  h->sigma_ratio = sigma_ratio;
  if (kind == NN_HEAD_MSE || kind == NN_HEAD_HUBER) {
    h->bins = 1;
    return 0;
  }
  if (bins < 2 || bins > NN_HEAD_MAX_BINS || !(v_max > v_min)) return LATHE_ESHAPE;
  if (kind == NN_HEAD_HL_GAUSS) {
    double z = ((double)v_max - v_min) / bins;
    for (int k = 0; k < bins; k++) h->centers[k] = (float)(v_min + (k + 0.5) * z);
    h->sigma = (float)(sigma_ratio * z);
  } else {
    double d = ((double)v_max - v_min) / (bins - 1);
    for (int k = 0; k < bins; k++) h->centers[k] = (float)(v_min + k * d);
  }
  return 0;
}

float nn_head_decode(const nn_head_t *h, const float *out) {
  if (h->bins == 1) return out[0];
  int K = h->bins;
  float mx = -INFINITY, sum = 0.0f, v = 0.0f, e[NN_HEAD_MAX_BINS];
  for (int k = 0; k < K; k++) mx = out[k] > mx ? out[k] : mx;
  for (int k = 0; k < K; k++) e[k] = fexp(out[k] - mx); /* vectorised */
  for (int k = 0; k < K; k++) sum += e[k], v += e[k] * h->centers[k];
  return v / sum;
}

void nn_head_decode_backward(const nn_head_t *h, const float *out, float dv, float *dout) {
  if (h->bins == 1) {
    dout[0] = dv;
    return;
  }
  int K = h->bins;
  float mx = -INFINITY, sum = 0.0f, v = 0.0f, e[NN_HEAD_MAX_BINS];
  for (int k = 0; k < K; k++) mx = out[k] > mx ? out[k] : mx;
  for (int k = 0; k < K; k++) e[k] = fexp(out[k] - mx);
  for (int k = 0; k < K; k++) sum += e[k], v += e[k] * h->centers[k];
  v /= sum;
  for (int k = 0; k < K; k++) dout[k] = dv * e[k] / sum * (h->centers[k] - v);
}

static float clip(const nn_head_t *h, float y) {
  return y < h->v_min ? h->v_min : (y > h->v_max ? h->v_max : y);
}

void nn_head_target(const nn_head_t *h, float y, float *p) {
  int K = h->bins;
  if (!isfinite(y)) { /* a diverged target: a NaN loss for the divergence guard, no index */
    for (int k = 0; k < K; k++) p[k] = NAN;
    return;
  }
  y = clip(h, y);
  memset(p, 0, sizeof(float) * K);
  if (h->kind == NN_HEAD_HL_GAUSS) {
    /* truncated Gaussian mass per bin: differences of erf at the edges (the 1/2
     * of Phi cancels in the ratio); the K+1 erfs in one vectorised loop */
    float z = (h->v_max - h->v_min) / K, inv = 1.0f / (1.41421356f * h->sigma),
          e[NN_HEAD_MAX_BINS + 1];
    e[0] = ferf((h->v_min - y) * inv);
    for (int k = 1; k <= K; k++) e[k] = ferf((h->v_min + k * z - y) * inv);
    float norm = e[K] - e[0];
    if (!(norm > 0.0f)) { /* sigma so small the mass underflows: one-hot on y's bin */
      int k = (int)((y - h->v_min) / z);
      p[k < K ? k : K - 1] = 1.0f;
      return;
    }
    float rn = 1.0f / norm;
    for (int k = 0; k < K; k++) p[k] = (e[k + 1] - e[k]) * rn;
    return;
  }
  /* two-hot on the atoms */
  double d = ((double)h->v_max - h->v_min) / (K - 1), b = (y - (double)h->v_min) / d;
  int l = (int)floor(b), u = (int)ceil(b);
  if (l < 0) l = 0;
  if (u > K - 1) u = K - 1;
  if (l == u)
    p[l] = 1.0f;
  else
    p[l] = (float)(u - b), p[u] = (float)(b - l);
}

void nn_head_c51_project(const nn_head_t *h, const float *next_p, float r, float discount,
                         float *p) {
  int K = h->bins;
  double d = ((double)h->v_max - h->v_min) / (K - 1);
  memset(p, 0, sizeof(float) * K);
  for (int j = 0; j < K; j++) {
    double tz = r + (double)discount * h->centers[j];
    if (!isfinite(tz) || !isfinite(next_p[j])) { /* diverged: NaN target, never an index */
      for (int k = 0; k < K; k++) p[k] = NAN;
      return;
    }
    tz = tz < h->v_min ? h->v_min : (tz > h->v_max ? h->v_max : tz);
    double b = (tz - h->v_min) / d;
    int l = (int)floor(b), u = (int)ceil(b);
    if (l < 0) l = 0;
    if (u > K - 1) u = K - 1;
    if (l == u)
      p[l] += next_p[j];
    else
      p[l] += (float)(next_p[j] * (u - b)), p[u] += (float)(next_p[j] * (b - l));
  }
}

float nn_head_loss(const nn_head_t *h, const float *out, const float *target, int N, float *dout) {
  switch (h->kind) {
  case NN_HEAD_MSE:
    return nn_mse_loss(dout, out, target, N);
  case NN_HEAD_HUBER:
    return nn_huber_loss(dout, out, target, N, 1.0f);
  default:
    return nn_soft_ce_loss(dout, out, target, N, h->bins);
  }
}

void nn_head_save(const nn_head_t *h, lathe_buf_t *b) {
  int32_t kind = h->kind, bins = h->bins;
  LATHE_PUT(b, kind), LATHE_PUT(b, bins), LATHE_PUT(b, h->v_min), LATHE_PUT(b, h->v_max);
  LATHE_PUT(b, h->sigma_ratio);
}

int nn_head_check(const nn_head_t *h, lathe_buf_t *b) {
  int32_t kind, bins;
  float vmin, vmax, sr;
  LATHE_GET(b, kind), LATHE_GET(b, bins), LATHE_GET(b, vmin), LATHE_GET(b, vmax), LATHE_GET(b, sr);
  if (b->err) return LATHE_ECKPT;
  return kind == (int32_t)h->kind && bins == h->bins && vmin == h->v_min && vmax == h->v_max &&
                 sr == h->sigma_ratio
             ? 0
             : LATHE_ESHAPE;
}
