/* steps.c - per-step credit from Monte-Carlo rollouts (specs/per_step_negatives.md):
 * step-prefix values from success counts (plain and best-of-K), advantages,
 * the first-pit critical step, and advantage-weighted regression's weights
 * and loss. Double precision: a handful of numbers per solution. */
#include <math.h>

#include "nn.h"

/* C(n, k) / C(m, k) as a product, stable for the small counts used here. */
static double choose_ratio(int n, int m, int k) {
  if (k > n) return 0;
  double r = 1;
  for (int j = 0; j < k; j++) r *= (double)(n - j) / (m - j);
  return r;
}

double nn_bok_plugin(double p, int K) {
  return 1 - pow(1 - p, K);
}

double nn_bok_value(int S, int M, int K) {
  if (M <= 0) return NAN;
  if (K <= 1) return (double)S / M;
  if (K > M) return nn_bok_plugin((double)S / M, K); /* no unbiased estimate */
  return 1 - choose_ratio(M - S, M, K);
}

void nn_step_values(const int *S, int T, int M, int K, double final, double *v, double *adv) {
  for (int i = 0; i < T; i++) v[i] = K > 1 ? nn_bok_value(S[i], M, K) : (double)S[i] / M;
  v[T] = final;
  for (int i = 1; i <= T; i++) adv[i - 1] = v[i] - v[i - 1];
}

int nn_first_pit(const double *v, const double *adv, int T) {
  for (int i = 1; i <= T; i++)
    if (v[i] <= 0) return i;
  int c = 1;
  for (int i = 2; i <= T; i++)
    if (adv[i - 1] < adv[c - 1]) c = i;
  return c;
}

double nn_awr_weight(double adv, double beta, double w_max) {
  double w = exp(adv / beta);
  return w > w_max ? w_max : w;
}

double nn_awr_loss(const double *lp, const double *w, int n, double *dlp) {
  if (n <= 0) return 0;
  double l = 0;
  for (int i = 0; i < n; i++) {
    l -= w[i] * lp[i];
    if (dlp) dlp[i] = -w[i] / n;
  }
  return l / n;
}
