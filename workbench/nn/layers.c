/* layers.c - forward/backward pairs of every layer and loss of the nn core.
 *
 * Each forward sits directly above its backward. Matrix products go through
 * cblas_sgemm; the elementwise loops are plain single-threaded C (measured: at
 * the sizes lathe trains, threading them costs more than it saves).
 * Shapes use the letters defined in nn.h.
 */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"

float nn_expf(float x) {
  return fexp(x);
}

/* ---- the one matrix-product entry point ---------------------------------- */

static nn_gemm_t *trace;
static int ntrace, captrace, tracing;

void nn_gemm_trace(int on) {
  tracing = on;
  if (on) ntrace = 0;
}

int nn_gemm_traced(const nn_gemm_t **out) {
  *out = trace;
  return ntrace;
}

void nn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  if (tracing) {
    if (ntrace == captrace) {
      int cap = captrace ? 2 * captrace : 256;
      nn_gemm_t *t = realloc(trace, cap * sizeof *t);
      if (t) trace = t, captrace = cap;
    }
    if (ntrace < captrace) trace[ntrace++] = (nn_gemm_t){ta, tb, M, N, K, lda, ldb, ldc, beta};
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- linear ------------------------------------------------------------- */

void nn_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int IC,
                       int OC) {
  float beta = 0.0f;
  if (b) {
    for (int n = 0; n < N; n++) /* a loop, not memcpy: OC is often tiny (a value head) */
      for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = b[o];
    beta = 1.0f;
  }
  nn_sgemm(0, 1, N, OC, IC, 1.0f, inp, IC, w, IC, beta, out, OC);
}

void nn_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int IC, int OC) {
  if (dinp) nn_sgemm(0, 0, N, IC, OC, 1.0f, dout, OC, w, IC, 1.0f, dinp, IC);
  if (dw) nn_sgemm(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
  if (db)
    for (int n = 0; n < N; n++) {
      const float *d = dout + (size_t)n * OC;
      for (int o = 0; o < OC; o++) db[o] += d[o];
    }
}

/* ---- activations -------------------------------------------------------- */

int nn_act_parse(const char *name) {
  static const char *names[] = {"relu", "gelu", "tanh", "silu", "identity"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(name, names[i])) return i;
  return -1;
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

NN_CLONES void nn_act_forward(nn_act_t a, float *out, const float *x, size_t n) {
  switch (a) {
  case NN_RELU:
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
    break;
  case NN_GELU: /* tanh approximation, as GPT-2: 0.5 v (1 + tanh u) = v sigmoid(2u) */
    for (size_t i = 0; i < n; i++) {
      float v = x[i], u = GELU_K * (v + 0.044715f * v * v * v);
      out[i] = v / (1.0f + fexp(-2.0f * u));
    }
    break;
  case NN_TANH:
    for (size_t i = 0; i < n; i++) out[i] = tanhf(x[i]);
    break;
  case NN_SILU:
    for (size_t i = 0; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i]));
    break;
  case NN_IDENTITY:
    if (out != x) memcpy(out, x, n * sizeof(float));
    break;
  }
}

NN_CLONES void nn_act_backward(nn_act_t a, float *dx, const float *dout, const float *x, size_t n) {
  switch (a) {
  case NN_RELU: /* unconditional loads, then a select: vectorises */
    for (size_t i = 0; i < n; i++) {
      float d = dout[i], g = x[i] > 0.0f ? d : 0.0f;
      dx[i] += g;
    }
    break;
  case NN_GELU:
    for (size_t i = 0; i < n; i++) {
      float v = x[i], u = GELU_K * (v + 0.044715f * v * v * v);
      float th = 2.0f / (1.0f + fexp(-2.0f * u)) - 1.0f, sech2 = 1.0f - th * th;
      float g = 0.5f * (1.0f + th) + 0.5f * v * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * v * v);
      dx[i] += g * dout[i];
    }
    break;
  case NN_TANH:
    for (size_t i = 0; i < n; i++) {
      float t = tanhf(x[i]);
      dx[i] += (1.0f - t * t) * dout[i];
    }
    break;
  case NN_SILU:
    for (size_t i = 0; i < n; i++) {
      float s = 1.0f / (1.0f + expf(-x[i]));
      dx[i] += s * (1.0f + x[i] * (1.0f - s)) * dout[i];
    }
    break;
  case NN_IDENTITY:
    for (size_t i = 0; i < n; i++) dx[i] += dout[i];
    break;
  }
}

/* ---- layernorm ---------------------------------------------------------- */

NN_CLONES void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                    const float *w, const float *b, int N, int C) {
  const float eps = 1e-5f;
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C;
    float m = 0.0f, v = 0.0f;
    for (int i = 0; i < C; i++) m += x[i];
    m /= C;
    for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
    v /= C;
    float s = 1.0f / sqrtf(v + eps);
    float *o = out + (size_t)n * C;
    for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
    mean[n] = m, rstd[n] = s;
  }
}

NN_CLONES void nn_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                                     const float *inp, const float *w, const float *mean,
                                     const float *rstd, int N, int C) {
  for (int n = 0; n < N; n++) {
    const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
    float *dx = dinp + (size_t)n * C;
    float m = mean[n], s = rstd[n];
    /* mean of dnorm and of dnorm*norm, dnorm = w * dout */
    float dmean = 0.0f, dnmean = 0.0f;
    for (int i = 0; i < C; i++) {
      float norm = (x[i] - m) * s, dn = w[i] * d[i];
      dmean += dn, dnmean += dn * norm;
    }
    dmean /= C, dnmean /= C;
    for (int i = 0; i < C; i++) {
      float norm = (x[i] - m) * s, dn = w[i] * d[i];
      db[i] += d[i];
      dw[i] += norm * d[i];
      dx[i] += (dn - dmean - norm * dnmean) * s;
    }
  }
}

/* ---- embeddings --------------------------------------------------------- */

void nn_embed_forward(float *out, const int *tok, const float *wte, const float *wpe, int B, int T,
                      int C) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *o = out + ((size_t)b * T + t) * C;
      const float *e = wte + (size_t)tok[b * T + t] * C, *p = wpe + (size_t)t * C;
      for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
    }
}

void nn_embed_backward(float *dwte, float *dwpe, const float *dout, const int *tok, int B, int T,
                       int C) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *d = dout + ((size_t)b * T + t) * C;
      float *e = dwte + (size_t)tok[b * T + t] * C, *p = dwpe + (size_t)t * C;
      for (int i = 0; i < C; i++) e[i] += d[i], p[i] += d[i];
    }
}

/* ---- causal self-attention --------------------------------------------- */
/* Per (b, h): S = Q K^T / sqrt(hs), masked row softmax A, Y = A V. Q, K, V are
 * strided views into qkv (leading dimension 3C); Y a view into out (ld C). */

NN_CLONES void nn_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                                    int H) {
  int hs = C / H, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const float *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
      float *a = att + ((size_t)b * H + h) * T * T;
      nn_sgemm(0, 1, T, T, hs, scale, q, C3, k, C3, 0.0f, a, T);
      for (int t = 0; t < T; t++) {
        float *row = a + (size_t)t * T, mx = -INFINITY, sum = 0.0f;
        for (int u = 0; u <= t; u++) mx = row[u] > mx ? row[u] : mx;
        for (int u = 0; u <= t; u++) row[u] = fexp(row[u] - mx);
        for (int u = 0; u <= t; u++) sum += row[u];
        float inv = 1.0f / sum;
        for (int u = 0; u <= t; u++) row[u] *= inv;
        for (int u = t + 1; u < T; u++) row[u] = 0.0f;
      }
      nn_sgemm(0, 0, T, hs, T, 1.0f, a, T, v, C3, 0.0f, out + (size_t)b * T * C + h * hs, C);
    }
}

NN_CLONES void nn_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                     const float *att, int B, int T, int C, int H) {
  int hs = C / H, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      size_t base = (size_t)b * T * C3 + h * hs;
      const float *q = qkv + base, *k = q + C, *v = q + 2 * C;
      float *dq = dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
      const float *a = att + ((size_t)b * H + h) * T * T;
      const float *dy = dout + (size_t)b * T * C + h * hs;
      /* dA = dY V^T ; dV += A^T dY */
      nn_sgemm(0, 1, T, T, hs, 1.0f, dy, C, v, C3, 0.0f, datt, T);
      nn_sgemm(1, 0, T, hs, T, 1.0f, a, T, dy, C, 1.0f, dv, C3);
      /* softmax backward in place: dS = A * (dA - rowsum(A * dA)) * scale */
      for (int t = 0; t < T; t++) {
        const float *ar = a + (size_t)t * T;
        float *dr = datt + (size_t)t * T, dot = 0.0f;
        for (int u = 0; u <= t; u++) dot += ar[u] * dr[u];
        for (int u = 0; u <= t; u++) dr[u] = ar[u] * (dr[u] - dot) * scale;
        for (int u = t + 1; u < T; u++) dr[u] = 0.0f;
      }
      /* dQ += dS K ; dK += dS^T Q */
      nn_sgemm(0, 0, T, hs, T, 1.0f, datt, T, k, C3, 1.0f, dq, C3);
      nn_sgemm(1, 0, T, hs, T, 1.0f, datt, T, q, C3, 1.0f, dk, C3);
    }
}

/* ---- dropout, residual, softmax ----------------------------------------- */

void nn_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, nn_rng_t *r) {
  if (p <= 0.0f) {
    if (out != inp) memcpy(out, inp, n * sizeof(float));
    if (mask)
      for (size_t i = 0; i < n; i++) mask[i] = 1.0f;
    return;
  }
  float keep = 1.0f / (1.0f - p);
  for (size_t i = 0; i < n; i++) {
    mask[i] = nn_rng_uniform(r) >= p ? keep : 0.0f;
    out[i] = inp[i] * mask[i];
  }
}

void nn_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n, float p) {
  (void)p;
  for (size_t i = 0; i < n; i++) dinp[i] += mask ? dout[i] * mask[i] : dout[i];
}

NN_CLONES void nn_add(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static void log_softmax_row(float *out, const float *x, int K) {
  float mx = -INFINITY, sum = 0.0f;
  for (int k = 0; k < K; k++) mx = x[k] > mx ? x[k] : mx;
  for (int k = 0; k < K; k++) out[k] = fexp(x[k] - mx); /* vectorised; out as scratch */
  for (int k = 0; k < K; k++) sum += out[k];
  float lse = mx + logf(sum);
  for (int k = 0; k < K; k++) out[k] = x[k] - lse;
}

void nn_log_softmax(float *out, const float *x, int N, int K) {
  for (int n = 0; n < N; n++) log_softmax_row(out + (size_t)n * K, x + (size_t)n * K, K);
}

void nn_softmax(float *out, const float *x, int N, int K) {
  nn_log_softmax(out, x, N, K);
  for (size_t i = 0; i < (size_t)N * K; i++) out[i] = expf(out[i]);
}

void nn_softmax_backward(float *dx, const float *dy, const float *y, int N, int K) {
  for (int n = 0; n < N; n++) {
    const float *yr = y + (size_t)n * K, *dr = dy + (size_t)n * K;
    float dot = 0.0f;
    for (int k = 0; k < K; k++) dot += yr[k] * dr[k];
    for (int k = 0; k < K; k++) dx[(size_t)n * K + k] += yr[k] * (dr[k] - dot);
  }
}

void nn_log_softmax_backward(float *dx, const float *dy, const float *y, int N, int K) {
  for (int n = 0; n < N; n++) {
    const float *yr = y + (size_t)n * K, *dr = dy + (size_t)n * K;
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum += dr[k];
    for (int k = 0; k < K; k++) dx[(size_t)n * K + k] += dr[k] - expf(yr[k]) * sum;
  }
}

/* ---- losses ------------------------------------------------------------- */

float nn_mse_loss(float *dpred, const float *pred, const float *target, int N) {
  double loss = 0.0;
  for (int n = 0; n < N; n++) {
    float d = pred[n] - target[n];
    loss += (double)d * d;
    if (dpred) dpred[n] = 2.0f * d / N;
  }
  return (float)(loss / N);
}

float nn_huber_loss(float *dpred, const float *pred, const float *target, int N, float delta) {
  double loss = 0.0;
  for (int n = 0; n < N; n++) {
    float d = pred[n] - target[n], a = fabsf(d);
    if (a <= delta) {
      loss += 0.5 * (double)d * d;
      if (dpred) dpred[n] = d / N;
    } else {
      loss += delta * (a - 0.5 * delta);
      if (dpred) dpred[n] = (d > 0 ? delta : -delta) / N;
    }
  }
  return (float)(loss / N);
}

float nn_soft_ce_loss(float *dlogits, const float *logits, const float *target, int N, int K) {
  double loss = 0.0;
  float lp[K];
  for (int n = 0; n < N; n++) {
    const float *x = logits + (size_t)n * K, *t = target + (size_t)n * K;
    log_softmax_row(lp, x, K);
    for (int k = 0; k < K; k++)
      if (t[k] != 0.0f) loss -= (double)t[k] * lp[k];
    if (dlogits)
      for (int k = 0; k < K; k++) dlogits[(size_t)n * K + k] = (fexp(lp[k]) - t[k]) / N;
  }
  return (float)(loss / N);
}

float nn_token_ce_loss(float *dlogits, const float *logits, const int *tgt, const float *mask,
                       int B, int T, int V) {
  double loss = 0.0, count = 0.0;
  for (int i = 0; i < B * T; i++) count += mask ? mask[i] : 1.0f;
  if (count <= 0.0) {
    if (dlogits) memset(dlogits, 0, sizeof(float) * (size_t)B * T * V);
    return 0.0f;
  }
  for (int i = 0; i < B * T; i++) {
    const float *x = logits + (size_t)i * V;
    float *d = dlogits ? dlogits + (size_t)i * V : NULL;
    float m = mask ? mask[i] : 1.0f;
    if (m == 0.0f) {
      if (d) memset(d, 0, sizeof(float) * V);
      continue;
    }
    float mx = -INFINITY, sum = 0.0f;
    for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    for (int v = 0; v < V; v++) sum += expf(x[v] - mx);
    float lse = mx + logf(sum);
    loss += m * (lse - x[tgt[i]]);
    if (d) {
      float s = (float)(m / count);
      for (int v = 0; v < V; v++) d[v] = expf(x[v] - lse) * s;
      d[tgt[i]] -= s;
    }
  }
  return (float)(loss / count);
}

void nn_seq_logprob(float *lp, const float *logits, const int *tgt, const float *mask, int B, int T,
                    int V) {
  for (int b = 0; b < B; b++) {
    double s = 0.0;
    for (int t = 0; t < T; t++) {
      int i = b * T + t;
      float m = mask ? mask[i] : 1.0f;
      if (m == 0.0f) continue;
      const float *x = logits + (size_t)i * V;
      float mx = -INFINITY, sum = 0.0f;
      for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
      for (int v = 0; v < V; v++) sum += expf(x[v] - mx);
      s += m * (x[tgt[i]] - mx - logf(sum));
    }
    lp[b] = (float)s;
  }
}

void nn_seq_logprob_backward(float *dlogits, const float *dlp, const float *logits, const int *tgt,
                             const float *mask, int B, int T, int V) {
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      int i = b * T + t;
      float m = mask ? mask[i] : 1.0f;
      if (m == 0.0f || dlp[b] == 0.0f) continue;
      const float *x = logits + (size_t)i * V;
      float *d = dlogits + (size_t)i * V, mx = -INFINITY, sum = 0.0f;
      for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
      for (int v = 0; v < V; v++) sum += expf(x[v] - mx);
      float lse = mx + logf(sum), s = m * dlp[b];
      for (int v = 0; v < V; v++) d[v] -= s * expf(x[v] - lse);
      d[tgt[i]] += s;
    }
}
