/* layers.c - forward/backward pairs of every layer and loss of the nn core.
 *
 * Each forward sits directly above its backward. Matrix products go through
 * cblas_sgemm; the elementwise loops are plain C, split over the numeric
 * threads by nn_parallel (par.c) when they are large enough: by rows where
 * each row is computed alone, by columns where a gradient sums over rows (each
 * column then sums its rows in order, as one thread would), and a loss
 * summed in blocks fixed by the row count - so every result is the same bits
 * at any thread count. Each *_GRAIN is the least work worth a range of its own (a
 * few microseconds; a worker wakes in about as long). Shapes use the letters
 * defined in nn.h.
 */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fastmath.h"

#define EW_GRAIN 32768 /* cheap elementwise values per range (a copy, an add) */
#define FN_GRAIN 8192  /* values with an exp or a polynomial each (GELU, softmax) */

/* rows of C values per range */
static size_t rows_grain(size_t C, size_t grain) {
  return C >= grain ? 1 : grain / C;
}

float nn_expf(float x) {
  return fexp(x);
}

/* ---- the one matrix-product entry point ---------------------------------- */

static nn_gemm_t *trace;
static int ntrace, captrace;
static atomic_int tracing;
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER; /* parallel loops call sgemm */

void nn_gemm_trace(int on) {
  pthread_mutex_lock(&trace_mu);
  if (on) ntrace = 0;
  atomic_store(&tracing, on);
  pthread_mutex_unlock(&trace_mu);
}

int nn_gemm_traced(const nn_gemm_t **out) {
  *out = trace;
  return ntrace;
}

void nn_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  if (atomic_load_explicit(&tracing, memory_order_relaxed)) {
    pthread_mutex_lock(&trace_mu);
    if (ntrace == captrace) {
      int cap = captrace ? 2 * captrace : 256;
      nn_gemm_t *t = realloc(trace, cap * sizeof *t);
      if (t) trace = t, captrace = cap;
    }
    if (ntrace < captrace) trace[ntrace++] = (nn_gemm_t){ta, tb, M, N, K, lda, ldb, ldc, beta};
    pthread_mutex_unlock(&trace_mu);
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- linear ------------------------------------------------------------- */

typedef struct {
  float *out;
  const float *b;
  size_t N, C;
} cols_job;

static void bias_fill(void *c, size_t lo, size_t hi) {
  cols_job *j = c;
  for (size_t n = lo; n < hi; n++) /* a loop, not memcpy: C is often tiny (a value head) */
    for (size_t o = 0; o < j->C; o++) j->out[n * j->C + o] = j->b[o];
}

void nn_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int IC,
                       int OC) {
  float beta = 0.0f;
  if (b) {
    cols_job j = {out, b, N, OC};
    nn_parallel(N, rows_grain(OC, EW_GRAIN), 0, bias_fill, &j);
    beta = 1.0f;
  }
  nn_sgemm(0, 1, N, OC, IC, 1.0f, inp, IC, w, IC, beta, out, OC);
}

/* out[lo..hi) += the column sums of b(N, C), each column's rows in order */
static void col_sums(void *c, size_t lo, size_t hi) {
  cols_job *j = c;
  for (size_t n = 0; n < j->N; n++) {
    const float *d = j->b + n * j->C;
    for (size_t o = lo; o < hi; o++) j->out[o] += d[o];
  }
}

/* columns per range of a pass over all N rows */
static size_t cols_grain(size_t N, size_t grain) {
  size_t g = N >= grain ? 1 : grain / N;
  return g < 16 ? 16 : g; /* whole cache lines */
}

void nn_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int IC, int OC) {
  if (dinp) nn_sgemm(0, 0, N, IC, OC, 1.0f, dout, OC, w, IC, 1.0f, dinp, IC);
  if (dw) nn_sgemm(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
  if (db) {
    cols_job j = {db, dout, N, OC};
    nn_parallel(OC, cols_grain(N, EW_GRAIN), 0, col_sums, &j);
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

typedef struct {
  nn_act_t a;
  float *out;
  const float *x, *dout;
} act_job;

NN_CLONES static void act_forward(nn_act_t a, float *out, const float *x, size_t n) {
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

static void act_forward_part(void *c, size_t lo, size_t hi) {
  act_job *j = c;
  act_forward(j->a, j->out + lo, j->x + lo, hi - lo);
}

static size_t act_grain(nn_act_t a) {
  return a == NN_RELU || a == NN_IDENTITY ? EW_GRAIN : FN_GRAIN;
}

void nn_act_forward(nn_act_t a, float *out, const float *x, size_t n) {
  act_job j = {a, out, x, NULL};
  nn_parallel(n, act_grain(a), 0, act_forward_part, &j);
}

NN_CLONES static void act_backward(nn_act_t a, float *dx, const float *dout, const float *x,
                                   size_t n) {
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

static void act_backward_part(void *c, size_t lo, size_t hi) {
  act_job *j = c;
  act_backward(j->a, j->out + lo, j->dout + lo, j->x + lo, hi - lo);
}

void nn_act_backward(nn_act_t a, float *dx, const float *dout, const float *x, size_t n) {
  act_job j = {a, dx, x, dout};
  nn_parallel(n, act_grain(a), 0, act_backward_part, &j);
}

/* ---- layernorm ---------------------------------------------------------- */

typedef struct {
  float *out, *mean, *rstd, *dinp, *dw, *db;
  const float *inp, *w, *b, *dout, *cmean, *crstd;
  size_t N, C;
} ln_job;

NN_CLONES static void ln_forward(void *c, size_t lo, size_t hi) {
  const ln_job *j = c;
  const float eps = 1e-5f, *w = j->w, *b = j->b;
  int C = (int)j->C;
  for (size_t n = lo; n < hi; n++) {
    const float *x = j->inp + n * C;
    float m = 0.0f, v = 0.0f;
    for (int i = 0; i < C; i++) m += x[i];
    m /= C;
    for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
    v /= C;
    float s = 1.0f / sqrtf(v + eps);
    float *o = j->out + n * C;
    for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
    j->mean[n] = m, j->rstd[n] = s;
  }
}

void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int N, int C) {
  ln_job j = {out, mean, rstd, NULL, NULL, NULL, inp, w, b, NULL, NULL, NULL, N, (size_t)C};
  nn_parallel(N, rows_grain(C, FN_GRAIN), 0, ln_forward, &j);
}

/* dinp of rows [lo, hi), and with params dw, db too (one thread: a row order) */
NN_CLONES static void ln_backward(const ln_job *j, size_t lo, size_t hi, int params) {
  int C = (int)j->C;
  const float *w = j->w;
  for (size_t n = lo; n < hi; n++) {
    const float *x = j->inp + n * C, *d = j->dout + n * C;
    float *dx = j->dinp + n * C, *dw = j->dw, *db = j->db;
    float m = j->cmean[n], s = j->crstd[n];
    /* mean of dnorm and of dnorm*norm, dnorm = w * dout */
    float dmean = 0.0f, dnmean = 0.0f;
    for (int i = 0; i < C; i++) {
      float norm = (x[i] - m) * s, dn = w[i] * d[i];
      dmean += dn, dnmean += dn * norm;
    }
    dmean /= C, dnmean /= C;
    if (params)
      for (int i = 0; i < C; i++) {
        float norm = (x[i] - m) * s;
        db[i] += d[i];
        dw[i] += norm * d[i];
      }
    for (int i = 0; i < C; i++) {
      float norm = (x[i] - m) * s, dn = w[i] * d[i];
      dx[i] += (dn - dmean - norm * dnmean) * s;
    }
  }
}

static void ln_backward_rows(void *c, size_t lo, size_t hi) {
  ln_backward(c, lo, hi, 0);
}

/* dw, db of columns [lo, hi): every row in order, as ln_backward sums them */
NN_CLONES static void ln_backward_cols(void *c, size_t lo, size_t hi) {
  const ln_job *j = c;
  size_t C = j->C;
  for (size_t n = 0; n < j->N; n++) {
    const float *x = j->inp + n * C, *d = j->dout + n * C;
    float m = j->cmean[n], s = j->crstd[n];
    for (size_t i = lo; i < hi; i++) {
      float norm = (x[i] - m) * s;
      j->db[i] += d[i];
      j->dw[i] += norm * d[i];
    }
  }
}

void nn_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, const float *mean, const float *rstd, int N, int C) {
  ln_job j = {NULL, NULL, NULL, dinp, dw, db, inp, w, NULL, dout, mean, rstd, N, (size_t)C};
  if (nn_get_threads() < 2 || (size_t)N * C < 2 * FN_GRAIN) {
    ln_backward(&j, 0, N, 1); /* one pass; the same sums as the two below */
    return;
  }
  nn_parallel(N, rows_grain(C, FN_GRAIN), 0, ln_backward_rows, &j);
  nn_parallel(C, cols_grain(N, EW_GRAIN), 0, ln_backward_cols, &j);
}

/* ---- embeddings --------------------------------------------------------- */

typedef struct {
  float *out, *dwte, *dwpe;
  const float *wte, *wpe, *dout;
  const int *tok;
  size_t BT, T, C;
} embed_job;

static void embed_rows(void *c, size_t lo, size_t hi) {
  const embed_job *j = c;
  size_t C = j->C;
  for (size_t r = lo; r < hi; r++) {
    float *o = j->out + r * C;
    const float *e = j->wte + (size_t)j->tok[r] * C, *p = j->wpe + (r % j->T) * C;
    for (size_t i = 0; i < C; i++) o[i] = e[i] + p[i];
  }
}

void nn_embed_forward(float *out, const int *tok, const float *wte, const float *wpe, int B, int T,
                      int C) {
  embed_job j = {out, NULL, NULL, wte, wpe, NULL, tok, (size_t)B * T, T, C};
  nn_parallel(j.BT, rows_grain(C, EW_GRAIN), 0, embed_rows, &j);
}

/* columns [lo, hi) of every row in order: rows sharing a token add in order */
static void embed_grad_cols(void *c, size_t lo, size_t hi) {
  const embed_job *j = c;
  size_t C = j->C;
  for (size_t r = 0; r < j->BT; r++) {
    const float *d = j->dout + r * C;
    float *e = j->dwte + (size_t)j->tok[r] * C, *p = j->dwpe + (r % j->T) * C;
    for (size_t i = lo; i < hi; i++) e[i] += d[i], p[i] += d[i];
  }
}

void nn_embed_backward(float *dwte, float *dwpe, const float *dout, const int *tok, int B, int T,
                       int C) {
  embed_job j = {NULL, dwte, dwpe, NULL, NULL, dout, tok, (size_t)B * T, T, C};
  nn_parallel(C, cols_grain(j.BT, EW_GRAIN), 0, embed_grad_cols, &j);
}

/* ---- causal self-attention --------------------------------------------- */
/* Per (b, h): S = Q K^T / sqrt(hs), masked row softmax A, Y = A V. Q, K, V are
 * strided views into qkv (leading dimension 3C); Y a view into out (ld C).
 * The (b, h) pairs are the parallel items; each writes only its own head's
 * columns of out and dqkv, and its own A and dA. */

typedef struct {
  float *out, *att, *dqkv, *datt;
  const float *qkv, *dout, *catt;
  int H, T, C;
} attn_job;

NN_CLONES static void attn_forward(void *c, size_t lo, size_t hi) {
  const attn_job *j = c;
  int T = j->T, C = j->C, H = j->H, hs = C / H, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  for (size_t it = lo; it < hi; it++) {
    int b = (int)(it / H), h = (int)(it % H);
    const float *q = j->qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
    float *a = j->att + it * T * T;
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
    nn_sgemm(0, 0, T, hs, T, 1.0f, a, T, v, C3, 0.0f, j->out + (size_t)b * T * C + h * hs, C);
  }
}

/* (b, h) items per range: a few hundred thousand flops at least */
static size_t attn_grain(int T, int C, int H) {
  size_t work = (size_t)T * T * (C / H) * 4;
  return work >= (1u << 18) ? 1 : (1u << 18) / work;
}

void nn_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H) {
  attn_job j = {out, att, NULL, NULL, qkv, NULL, NULL, H, T, C};
  nn_parallel((size_t)B * H, attn_grain(T, C, H), NN_PAR_BLAS1, attn_forward, &j);
}

NN_CLONES static void attn_backward(void *c, size_t lo, size_t hi) {
  const attn_job *j = c;
  int T = j->T, C = j->C, H = j->H, hs = C / H, C3 = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  for (size_t it = lo; it < hi; it++) {
    int b = (int)(it / H), h = (int)(it % H);
    size_t base = (size_t)b * T * C3 + h * hs;
    const float *q = j->qkv + base, *k = q + C, *v = q + 2 * C;
    float *dq = j->dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
    const float *a = j->catt + it * T * T;
    const float *dy = j->dout + (size_t)b * T * C + h * hs;
    float *datt = j->datt + it * T * T;
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

void nn_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                           const float *att, int B, int T, int C, int H) {
  attn_job j = {NULL, NULL, dqkv, datt, qkv, dout, att, H, T, C};
  nn_parallel((size_t)B * H, attn_grain(T, C, H), NN_PAR_BLAS1, attn_backward, &j);
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

typedef struct {
  float *out;
  const float *a, *b;
} sum_job;

NN_CLONES static void sum_part(void *c, size_t lo, size_t hi) {
  const sum_job *j = c;
  float *out = j->out;
  const float *a = j->a, *b = j->b;
  for (size_t i = lo; i < hi; i++) out[i] = a[i] + b[i];
}

void nn_sum(float *out, const float *a, const float *b, size_t n) {
  sum_job j = {out, a, b};
  nn_parallel(n, EW_GRAIN, 0, sum_part, &j);
}

void nn_add(float *y, const float *x, size_t n) {
  nn_sum(y, y, x, n);
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

/* The largest of x[0..V) in *mx, and the sum of exp(x - mx): a row's
 * log-sum-exp is mx + log(sum). */
static inline float row_expsum(const float *x, size_t V, float *mx) {
  float m = -INFINITY, sum = 0.0f;
  for (size_t v = 0; v < V; v++) m = x[v] > m ? x[v] : m;
  for (size_t v = 0; v < V; v++) sum += expf(x[v] - m);
  *mx = m;
  return sum;
}

/* The rows of a token loss: rows [lo, hi) of logits(rows, V), each alone. */
typedef struct {
  float *d;     /* dlogits (NULL: none), overwritten or added to */
  double *loss; /* token CE: per block of rows */
  const float *x, *mask, *dlp;
  const int *tgt;
  size_t T, V;        /* positions per sequence, vocabulary */
  size_t rows, block; /* token CE: all rows, and rows per block */
  double count;
} tok_job;

/* The token loss's sum in blocks of rows fixed by the row count alone (not
 * by the threads): each block sums its rows in order, then the blocks add in
 * order. Only the reported loss depends on this order, not the gradient. */
#define CE_BLOCKS 256

NN_CLONES static void token_ce_blocks(void *c, size_t lo, size_t hi) {
  const tok_job *j = c;
  size_t V = j->V, N = j->rows;
  for (size_t k = lo; k < hi; k++) {
    double loss = 0.0;
    size_t end = (k + 1) * j->block < N ? (k + 1) * j->block : N;
    for (size_t i = k * j->block; i < end; i++) {
      const float *x = j->x + i * V;
      float *d = j->d ? j->d + i * V : NULL;
      float m = j->mask ? j->mask[i] : 1.0f;
      if (m == 0.0f) {
        if (d) memset(d, 0, sizeof(float) * V);
        continue;
      }
      float mx, sum = row_expsum(x, V, &mx), lse = mx + logf(sum);
      loss += m * (lse - x[j->tgt[i]]);
      if (d) {
        float s = (float)(m / j->count);
        for (size_t v = 0; v < V; v++) d[v] = expf(x[v] - lse) * s;
        d[j->tgt[i]] -= s;
      }
    }
    j->loss[k] = loss;
  }
}

float nn_token_ce_loss(float *dlogits, const float *logits, const int *tgt, const float *mask,
                       int B, int T, int V) {
  size_t N = (size_t)B * T;
  double count = 0.0;
  for (size_t i = 0; i < N; i++) count += mask ? mask[i] : 1.0f;
  if (count <= 0.0) {
    if (dlogits) memset(dlogits, 0, sizeof(float) * N * V);
    return 0.0f;
  }
  double part[CE_BLOCKS];
  size_t block = (N + CE_BLOCKS - 1) / CE_BLOCKS, blocks = (N + block - 1) / block;
  size_t grain = rows_grain(V, FN_GRAIN) / block;
  tok_job j = {dlogits, part, logits, mask, NULL, tgt, T, V, N, block, count};
  nn_parallel(blocks, grain ? grain : 1, 0, token_ce_blocks, &j);
  double loss = 0.0;
  for (size_t k = 0; k < blocks; k++) loss += part[k];
  return (float)(loss / count);
}

NN_CLONES static void seq_logprob_seqs(void *c, size_t lo, size_t hi) {
  const tok_job *j = c;
  size_t V = j->V, T = j->T;
  for (size_t b = lo; b < hi; b++) {
    double s = 0.0;
    for (size_t t = 0; t < T; t++) {
      size_t i = b * T + t;
      float m = j->mask ? j->mask[i] : 1.0f;
      if (m == 0.0f) continue;
      const float *x = j->x + i * V;
      float mx, sum = row_expsum(x, V, &mx);
      s += m * (x[j->tgt[i]] - mx - logf(sum));
    }
    j->d[b] = (float)s;
  }
}

void nn_seq_logprob(float *lp, const float *logits, const int *tgt, const float *mask, int B, int T,
                    int V) {
  tok_job j = {lp, NULL, logits, mask, NULL, tgt, T, V, 0, 0, 0};
  nn_parallel(B, rows_grain((size_t)T * V, FN_GRAIN), 0, seq_logprob_seqs, &j);
}

NN_CLONES static void seq_logprob_grad_rows(void *c, size_t lo, size_t hi) {
  const tok_job *j = c;
  size_t V = j->V, T = j->T;
  for (size_t i = lo; i < hi; i++) {
    float m = j->mask ? j->mask[i] : 1.0f, g = j->dlp[i / T];
    if (m == 0.0f || g == 0.0f) continue;
    const float *x = j->x + i * V;
    float *d = j->d + i * V, mx, sum = row_expsum(x, V, &mx);
    float lse = mx + logf(sum), s = m * g;
    for (size_t v = 0; v < V; v++) d[v] -= s * expf(x[v] - lse);
    d[j->tgt[i]] += s;
  }
}

void nn_seq_logprob_backward(float *dlogits, const float *dlp, const float *logits, const int *tgt,
                             const float *mask, int B, int T, int V) {
  tok_job j = {dlogits, NULL, logits, mask, dlp, tgt, T, V, 0, 0, 0};
  nn_parallel((size_t)B * T, rows_grain(V, FN_GRAIN), 0, seq_logprob_grad_rows, &j);
}
