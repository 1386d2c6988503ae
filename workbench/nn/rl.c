/* rl.c - the pieces of soft actor-critic, CQL and Cal-QL that carry the math
 * (the design spec calql.md): the tanh-Gaussian policy with its stable
 * log-probability and its backward, the CQL log-sum-exp term with Cal-QL's
 * bound, and Monte-Carlo returns-to-go with the sparse-task failure rule.
 * Plugins own the networks; these functions own the formulas, so the spec's
 * test vectors check exactly the code that trains. */
#include <math.h>

#include "nn.h"

#define LN2    0.69314718055994530942
#define LN_2PI 1.83787706640934548356

/* log(1 - tanh(u)^2) = 2 (ln 2 - u - softplus(-2u)), exact for large |u|.
 * Single precision: these run for every sampled action of every update. */
static float log1m_tanh2(float u) {
  float x = -2.0f * u, sp = x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
  return 2.0f * ((float)LN2 - u - sp);
}

static float clip_ls(float l, float m, float o, int *inside) {
  float v = m * l + o;
  *inside = v > -20.0f && v < 2.0f;
  return v < -20.0f ? -20.0f : (v > 2.0f ? 2.0f : v);
}

double nn_tanh_gauss(const float *mu, const float *l, float m, float o, const float *eps, int A,
                     float *a) {
  float lp = 0.0f;
  for (int j = 0; j < A; j++) {
    int in;
    float ls = clip_ls(l[j], m, o, &in), u = mu[j] + expf(ls) * eps[j];
    a[j] = tanhf(u);
    lp += -0.5f * eps[j] * eps[j] - ls - (float)(0.5 * LN_2PI) - log1m_tanh2(u);
  }
  return lp;
}

void nn_tanh_gauss_backward(const float *mu, const float *l, float m, float o, const float *eps,
                            int A, const float *da, float dlogp, float *dmu, float *dl, float *dm,
                            float *doff) {
  for (int j = 0; j < A; j++) {
    int in;
    float ls = clip_ls(l[j], m, o, &in), s = expf(ls), u = mu[j] + s * eps[j], t = tanhf(u);
    /* d logp / du = 2 tanh(u) (from the correction); d logN / dl' = -1 with eps fixed */
    float gu = (da ? da[j] : 0.0f) * (1.0f - t * t) + dlogp * 2.0f * t;
    float gls = in ? gu * s * eps[j] - dlogp : 0.0f;
    dmu[j] = gu;
    dl[j] = gls * m;
    *dm += gls * l[j];
    *doff += gls;
  }
}

double nn_sac_temperature_grad(const float *logp, int B, double target_entropy) {
  double m = 0.0;
  for (int b = 0; b < B; b++) m += logp[b];
  return -(m / B + target_entropy);
}

double nn_cql_diff(const nn_cql_in_t *in, float *g_rand, float *g_cur, float *g_next, float *g_data,
                   int *lifted) {
  int N = in->N, n = 0, nl = 0;
  double x[4 * NN_CQL_MAX_N + 1], w[4 * NN_CQL_MAX_N + 1], T = in->temp, mx = -INFINITY;
  /* X in the order [random ; next ; current (; data)]; values of policy actions raised to G */
  for (int k = 0; k < N; k++) x[n++] = in->q_rand[k] + (in->importance ? in->A * LN2 : 0.0);
  const float *qs[2] = {in->q_next, in->q_cur}, *lps[2] = {in->lp_next, in->lp_cur};
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < N; k++) {
      double q = qs[s][k];
      if (q < in->G) q = in->G, nl++;
      x[n++] = q - (in->importance ? lps[s][k] : 0.0);
    }
  if (!in->importance) x[n++] = in->q_data;
  for (int k = 0; k < n; k++) mx = x[k] / T > mx ? x[k] / T : mx;
  double sum = 0.0;
  for (int k = 0; k < n; k++) sum += w[k] = exp(x[k] / T - mx);
  for (int k = 0; k < n; k++) w[k] /= sum;
  double ood = T * (mx + log(sum));
  float *gs[2] = {g_next, g_cur};
  for (int k = 0; k < N; k++) g_rand[k] = (float)w[k];
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < N; k++)
      gs[s][k] = qs[s][k] < in->G ? 0.0f : (float)w[N + s * N + k]; /* G picked: no gradient */
  *g_data = (float)(in->importance ? -1.0 : w[n - 1] - 1.0);
  if (lifted) *lifted = nl;
  return ood - in->q_data;
}

void nn_mc_returns(const float *r, const uint8_t *term, int T, double gamma, int sparse,
                   double r_fail, float *G) {
  int fail = sparse;
  for (int t = 0; t < T && fail; t++) fail = r[t] == (float)r_fail;
  if (fail) {
    for (int t = 0; t < T; t++) G[t] = (float)(r_fail / (1.0 - gamma));
    return;
  }
  double g = 0.0;
  for (int t = T - 1; t >= 0; t--) G[t] = (float)(g = r[t] + gamma * (term[t] ? 0.0 : g));
}

void nn_gae(const float *r, const float *v, const uint8_t *done, const float *v_last, int T, int E,
            double gamma, double lambda, float *adv, float *ret) {
  for (int e = 0; e < E; e++) {
    double last = 0.0;
    for (int t = T - 1; t >= 0; t--) {
      size_t i = (size_t)t * E + e;
      double next = t == T - 1 ? v_last[e] : v[i + E], live = done[i] ? 0.0 : 1.0;
      double delta = r[i] + gamma * next * live - v[i];
      last = delta + gamma * lambda * live * last;
      adv[i] = (float)last;
      ret[i] = (float)(last + v[i]);
    }
  }
}

double nn_categorical(const float *z, int K, int a, double g_lp, double g_h, float *dz, double *H) {
  double m = z[0], s = 0.0, h = 0.0;
  for (int k = 1; k < K; k++) m = z[k] > m ? z[k] : m;
  for (int k = 0; k < K; k++) s += exp(z[k] - m);
  double lse = m + log(s);
  for (int k = 0; k < K; k++) {
    double lp = z[k] - lse;
    h -= exp(lp) * lp;
  }
  if (dz) /* d lp_a/dz_k = [k=a] - p_k; dH/dz_k = -p_k (lp_k + H) */
    for (int k = 0; k < K; k++) {
      double lp = z[k] - lse, p = exp(lp);
      dz[k] += (float)(g_lp * ((k == a) - p) - g_h * p * (lp + h));
    }
  if (H) *H = h;
  return z[a] - lse;
}

double nn_archer_target(double r, int done, double gamma, double vbar) {
  return r + (done ? 0.0 : gamma * vbar);
}

double nn_archer_pair_mse(const float *p1, const float *p2, const float *y1, const float *y2, int B,
                          float *d1, float *d2) {
  double l = 0.0;
  for (int i = 0; i < B; i++) {
    double e1 = (double)p1[i] - y1[i], e2 = (double)p2[i] - y2[i];
    l += (e1 * e1 + e2 * e2) / B;
    if (d1) d1[i] = (float)(2.0 * e1 / B);
    if (d2) d2[i] = (float)(2.0 * e2 / B);
  }
  return l;
}

double nn_archer_advantage(double q1, double q2, double v1, double v2) {
  return fmin(q1, q2) - fmin(v1, v2);
}

int nn_argmax_first(const double *v, int n) {
  int best = n > 0 ? 0 : -1;
  for (int i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}
