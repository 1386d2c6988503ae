/* test_calql.c - the SAC / CQL / Cal-QL formulas of rl.c against the test
 * vectors of the design spec calql.md (computed there with python3), and
 * finite differences of every backward they have. */
#include <math.h>
#include <stdlib.h>

#include "../workbench/nn/nn.h"
#include "test.h"

/* |A| = 1, N = 2: the spec's CQL case, with G = -inf (CQL) or a bound (Cal-QL) */
static const float qr[2] = {1, 2}, qc[2] = {1.5f, 0.5f}, lc[2] = {-0.5f, -1.0f}, qn[2] = {1, 3},
                   ln_[2] = {0, -2};

static double cql(float G, int importance, float *gr, float *gc, float *gn, float *gd,
                  int *lifted) {
  nn_cql_in_t in = {qr, qc, lc, qn, ln_, 2.0f, G, 2, 1, importance, 1.0f};
  return nn_cql_diff(&in, gr, gc, gn, gd, lifted);
}

TEST(calql_cql_term_vectors) {
  float gr[2], gc[2], gn[2], gd;
  int lifted;
  /* X = [1.693147, 2.693147, 1.0, 5.0, 2.0, 1.5]: logsumexp 5.210670, gap 3.210670 */
  ASSERT_NEAR(cql(-INFINITY, 1, gr, gc, gn, &gd, &lifted), 3.210670, 1e-6);
  ASSERT_NEAR(gr[0], 0.029673, 1e-6);
  ASSERT_NEAR(gr[1], 0.080659, 1e-6);
  ASSERT_NEAR(gn[0], 0.014836, 1e-6);
  ASSERT_NEAR(gn[1], 0.810041, 1e-6);
  ASSERT_NEAR(gc[0], 0.040330, 1e-6);
  ASSERT_NEAR(gc[1], 0.024461, 1e-6);
  ASSERT_NEAR(gd, -1, 0);
  ASSERT_EQ(lifted, 0);
  /* Cal-QL, G = 2.5: X = [1.693147, 2.693147, 2.5, 5.0, 3.0, 3.5]; 3 of 4 values lifted */
  ASSERT_NEAR(cql(2.5f, 1, gr, gc, gn, &gd, &lifted), 3.455369, 1e-6);
  ASSERT_NEAR(gr[0], 0.023232, 1e-6);
  ASSERT_NEAR(gr[1], 0.063151, 1e-6);
  ASSERT_NEAR(gn[0], 0, 0);
  ASSERT_NEAR(gn[1], 0.634214, 1e-6);
  ASSERT_NEAR(gc[0], 0, 0);
  ASSERT_NEAR(gc[1], 0, 0);
  ASSERT_EQ(lifted, 3);
  /* without importance sampling: logsumexp over [1,2,2,1,3,1.5,0.5] = 3.837959 */
  ASSERT_NEAR(cql(-INFINITY, 0, gr, gc, gn, &gd, &lifted), 1.837959, 1e-6);
  ASSERT_NEAR(gd, exp(2.0 - 3.837959) - 1.0, 1e-6); /* the data value is inside the logsumexp */
}

/* d diff / dQ by central differences, for every raw value, with and without the bound */
TEST(calql_cql_term_gradients) {
  for (int mode = 0; mode < 3; mode++) {
    float G = mode == 1 ? 2.5f : -INFINITY;
    int imp = mode != 2;
    float q[7] = {1, 2, 1.5f, 0.5f, 1, 3, 2.0f}, g[7];
    nn_cql_in_t in = {q, q + 2, lc, q + 4, ln_, q[6], G, 2, 1, imp, 0.7f};
    nn_cql_diff(&in, g, g + 2, g + 4, g + 6, NULL);
    for (int k = 0; k < 7; k++) {
      float keep = q[k], h = 1e-3f, dummy[7];
      q[k] = keep + h, in.q_data = q[6];
      double up = nn_cql_diff(&in, dummy, dummy + 2, dummy + 4, dummy + 6, NULL);
      q[k] = keep - h, in.q_data = q[6];
      double dn = nn_cql_diff(&in, dummy, dummy + 2, dummy + 4, dummy + 6, NULL);
      q[k] = keep, in.q_data = q[6];
      ASSERT_NEAR(g[k], (up - dn) / (2 * h), 2e-3);
    }
  }
}

TEST(calql_mc_return_vectors) {
  float r[3] = {-5, -5, 5}, G[3];
  uint8_t term[3] = {0, 0, 1};
  nn_mc_returns(r, term, 3, 0.99, 1, -5, G);
  ASSERT_NEAR(G[0], -5.0495, 1e-5);
  ASSERT_NEAR(G[1], -0.05, 1e-6);
  ASSERT_NEAR(G[2], 5.0, 0);
  float f[4] = {-5, -5, -5, -5}, Gf[4];
  uint8_t none[4] = {0};
  nn_mc_returns(f, none, 4, 0.99, 1, -5, Gf); /* all failure: -5 / (1 - 0.99) */
  for (int t = 0; t < 4; t++) ASSERT_NEAR(Gf[t], -500, 1e-3);
  nn_mc_returns(f, none, 4, 0.99, 0, -5, Gf); /* dense: a timeout cuts the sum */
  ASSERT_NEAR(Gf[3], -5, 0);
  ASSERT_NEAR(Gf[0], -5 * (1 + 0.99 + 0.99 * 0.99 + 0.99 * 0.99 * 0.99), 1e-4);
}

TEST(calql_tanh_gauss_vectors) {
  /* mu 0, std 1 (l' = m l + o = 1 * 1 - 1 = 0), eps = 0.5 so u = 0.5 */
  float mu = 0, l = 1, eps = 0.5f, a;
  double lp = nn_tanh_gauss(&mu, &l, 1.0f, -1.0f, &eps, 1, &a);
  ASSERT_NEAR(a, 0.462117, 1e-6);
  ASSERT_NEAR(lp, -0.803710, 1e-6); /* log N -1.043939 minus the correction -0.240229 */
  /* the stable correction holds far out, where 1 - tanh^2 underflows */
  float big = 30;
  lp = nn_tanh_gauss(&big, &l, 1.0f, -1.0f, &eps, 1, &a);
  ASSERT(isfinite(lp) && lp > 50);
}

/* d/dmu, d/dl, d/dm, d/do of L = sum_j c_j a_j + k logp, by central differences */
TEST(calql_tanh_gauss_gradients) {
  enum { A = 3 };
  float mu[A] = {0.3f, -1.2f, 0.8f}, l[A] = {0.2f, -0.7f, 1.9f}, eps[A] = {0.4f, -1.1f, 0.6f};
  float c[A] = {0.7f, -0.3f, 1.1f}, k = 0.37f, m = 1.1f, o = -0.9f;
  float a[A], dmu[A], dl[A], dm = 0, doff = 0;
  nn_tanh_gauss(mu, l, m, o, eps, A, a);
  nn_tanh_gauss_backward(mu, l, m, o, eps, A, c, k, dmu, dl, &dm, &doff);
  float *vars[2 * A + 2], grads[2 * A + 2];
  for (int j = 0; j < A; j++) vars[j] = &mu[j], grads[j] = dmu[j];
  for (int j = 0; j < A; j++) vars[A + j] = &l[j], grads[A + j] = dl[j];
  vars[2 * A] = &m, grads[2 * A] = dm, vars[2 * A + 1] = &o, grads[2 * A + 1] = doff;
  for (int v = 0; v < 2 * A + 2; v++) {
    double f[2];
    float keep = *vars[v], h = 1e-3f;
    for (int s = 0; s < 2; s++) {
      *vars[v] = keep + (s ? -h : h);
      double lp = nn_tanh_gauss(mu, l, m, o, eps, A, a);
      f[s] = k * lp;
      for (int j = 0; j < A; j++) f[s] += c[j] * a[j];
    }
    *vars[v] = keep;
    ASSERT_NEAR(grads[v], (f[0] - f[1]) / (2 * h), 3e-3);
  }
  /* l = 1.9 with m 1.1, o -0.9 gives 1.19 (inside); push it past 2: no gradient */
  float lo[1] = {5}, dmu1, dl1, dm1 = 0, do1 = 0;
  nn_tanh_gauss(mu, lo, m, o, eps, 1, a);
  nn_tanh_gauss_backward(mu, lo, m, o, eps, 1, NULL, 1, &dmu1, &dl1, &dm1, &do1);
  ASSERT_NEAR(dl1, 0, 0);
}

TEST(calql_temperature_and_polyak) {
  /* L_alpha = -log_alpha (mean log pi + Hbar): mean log pi -1, Hbar -2, gradient 3 > 0 */
  float lp[2] = {-0.5f, -1.5f};
  ASSERT_NEAR(nn_sac_temperature_grad(lp, 2, -2), 3, 0); /* alpha falls: entropy above target */
  nn_params_t p = {0}, t = {0};
  int shape[1] = {1};
  nn_params_add(&p, "x", 0, 1, shape), nn_params_add(&t, "x", 0, 1, shape);
  ASSERT_EQ(nn_params_alloc(&p), 0);
  ASSERT_EQ(nn_params_alloc(&t), 0);
  p.w[0] = 1, t.w[0] = 0;
  for (int i = 0; i < 1000; i++) nn_params_polyak(&t, &p, 0.005f);
  ASSERT_NEAR(t.w[0], 0.99335, 1e-4); /* 1 - 0.995^1000 */
  nn_params_free(&p), nn_params_free(&t);
}

TEST(calql_orthogonal_init) {
  nn_rng_t r;
  nn_rng_seed(&r, 7);
  for (int tall = 0; tall < 2; tall++) {
    nn_params_t p = {0};
    int shape[2] = {tall ? 12 : 5, tall ? 5 : 12};
    nn_params_add(&p, "w", 1, 2, shape);
    ASSERT_EQ(nn_params_alloc(&p), 0);
    nn_init_orthogonal(&p, 0, 1.5f, &r);
    /* the shorter side's vectors are orthogonal with norm = gain */
    int rows = shape[0], cols = shape[1], k = tall ? cols : rows, n = tall ? rows : cols;
    for (int a = 0; a < k; a++)
      for (int b = 0; b < k; b++) {
        double d = 0;
        for (int j = 0; j < n; j++)
          d += tall ? p.w[j * cols + a] * p.w[j * cols + b] : p.w[a * cols + j] * p.w[b * cols + j];
        ASSERT_NEAR(d, a == b ? 2.25 : 0, 1e-4);
      }
    nn_params_free(&p);
  }
}

/* the decoded value's gradient through an hl_gauss head */
TEST(calql_head_decode_backward) {
  nn_head_t h;
  ASSERT_EQ(nn_head_init(&h, NN_HEAD_HL_GAUSS, 11, -5, 5, 0.75f), 0);
  float out[11], d[11];
  for (int k = 0; k < 11; k++) out[k] = sinf(k * 0.9f);
  nn_head_decode_backward(&h, out, 0.6f, d);
  for (int k = 0; k < 11; k++) {
    float keep = out[k], e = 1e-2f;
    out[k] = keep + e;
    double up = nn_head_decode(&h, out);
    out[k] = keep - e;
    double dn = nn_head_decode(&h, out);
    out[k] = keep;
    ASSERT_NEAR(d[k], 0.6 * (up - dn) / (2 * e), 2e-3);
  }
}
