/* test_heads.c - critic heads against every test vector of specs/hl_gauss.md. */
#include <math.h>
#include <string.h>

#include "../workbench/nn/nn.h"
#include "test.h"

static void assert_probs(const float *p, const double *want, int K, double tol, int line) {
  double s = 0;
  for (int k = 0; k < K; k++) {
    s += p[k];
    if (fabs(p[k] - want[k]) > tol)
      test_fail(__FILE__, line, "p[%d] = %.6f, want %.6f", k, p[k], want[k]);
  }
  if (fabs(s - 1.0) > 1e-5) test_fail(__FILE__, line, "probabilities sum to %.7f", s);
}

static float decode_probs(const nn_head_t *h, const float *p) {
  float v = 0;
  for (int k = 0; k < h->bins; k++) v += p[k] * h->centers[k];
  return v;
}

TEST(hl_gauss_spec_vectors) {
  nn_head_t h;
  ASSERT_EQ(nn_head_init(&h, NN_HEAD_HL_GAUSS, 10, 0, 10, 0.75f), 0);
  ASSERT_NEAR(h.centers[0], 0.5, 1e-6);
  ASSERT_NEAR(h.centers[9], 9.5, 1e-6);
  float p[10];
  nn_head_target(&h, 3.3f, p);
  const double p33[] = {0.001077, 0.040436, 0.303062, 0.480100, 0.163620,
                        0.011546, 0.000159, 0,        0,        0};
  assert_probs(p, p33, 10, 2e-6, __LINE__);
  ASSERT_NEAR(decode_probs(&h, p), 3.300025, 2e-5);
  double ent = 0;
  for (int k = 0; k < 10; k++)
    if (p[k] > 0) ent -= p[k] * log(p[k]);
  ASSERT_NEAR(ent, 1.200252, 2e-5);
  nn_head_target(&h, 5.0f, p);
  const double p5[] = {0,        0.000032, 0.003799, 0.087381, 0.408789,
                       0.408789, 0.087381, 0.003799, 0.000032, 0};
  assert_probs(p, p5, 10, 2e-6, __LINE__);
  ASSERT_NEAR(decode_probs(&h, p), 5.0, 1e-5);
  /* the support edge: truncation pulls the decode inward */
  nn_head_target(&h, 0.0f, p);
  const double p0[] = {0.817578, 0.174762, 0.007597, 0.000063, 0, 0, 0, 0, 0, 0};
  assert_probs(p, p0, 10, 2e-6, __LINE__);
  ASSERT_NEAR(decode_probs(&h, p), 0.690147, 2e-5);
  nn_head_target(&h, 10.0f, p);
  ASSERT_NEAR(decode_probs(&h, p), 9.309853, 2e-5);
  /* far-out targets are clipped: no division by zero, same as the edge */
  nn_head_target(&h, 20.0f, p);
  for (int k = 0; k < 10; k++) ASSERT(isfinite(p[k]));
  ASSERT_NEAR(decode_probs(&h, p), 9.309853, 2e-5);
  nn_head_target(&h, -1e30f, p);
  ASSERT_NEAR(decode_probs(&h, p), 0.690147, 2e-5);
  /* decode(target(y)) ~ y within 1e-4 from 4.5 sigma inside */
  for (float y = 3.375f; y <= 6.625f; y += 0.25f) {
    nn_head_target(&h, y, p);
    ASSERT_NEAR(decode_probs(&h, p), y, 1e-4);
  }
}

TEST(hl_gauss_loss_and_gradient) {
  nn_head_t h;
  nn_head_init(&h, NN_HEAD_HL_GAUSS, 10, 0, 10, 0.75f);
  float p[10], logits[10] = {0}, d[10];
  nn_head_target(&h, 3.3f, p);
  ASSERT_NEAR(nn_head_loss(&h, logits, p, 1, d), 2.302585, 1e-5); /* ln 10 */
  const double g[] = {0.098923, 0.059564, -0.203062, -0.380100, -0.063620,
                      0.088454, 0.099841, 0.1,       0.1,       0.1};
  for (int k = 0; k < 10; k++) ASSERT_NEAR(d[k], g[k], 2e-6);
  float l2[10] = {0, 0, 1, 2, 1, 0, 0, 0, 0, 0};
  ASSERT_NEAR(nn_head_decode(&h, l2), 4.256597, 1e-5);
  ASSERT_NEAR(nn_head_loss(&h, l2, p, 1, d), 1.560093, 1e-5);
  float q[10];
  nn_softmax(q, l2, 1, 10);
  ASSERT_NEAR(q[3], 0.372702, 1e-6);
  for (int k = 0; k < 10; k++) ASSERT_NEAR(d[k], q[k] - p[k], 1e-6); /* gradient q - p */
}

TEST(hl_gauss_tiny_sigma_and_large_grid) {
  nn_head_t h;
  nn_head_init(&h, NN_HEAD_HL_GAUSS, 10, 0, 10, 0.01f);
  float p[51];
  nn_head_target(&h, 3.3f, p);
  ASSERT_NEAR(p[3], 1.0, 1e-6); /* one-hot on [3, 4] */
  ASSERT_NEAR(decode_probs(&h, p), 3.5, 1e-6);
  nn_head_init(&h, NN_HEAD_HL_GAUSS, 10, 0, 10, 1e-12f); /* mass underflows: still one-hot */
  nn_head_target(&h, 3.3f, p);
  ASSERT_NEAR(p[3], 1.0, 0);
  nn_head_init(&h, NN_HEAD_HL_GAUSS, 51, -10, 10, 0.75f);
  ASSERT_NEAR(h.sigma, 0.294118, 1e-6);
  nn_head_target(&h, 1.3f, p);
  const int idx[] = {26, 27, 28, 29, 30, 31};
  const double want[] = {0.007673, 0.130832, 0.458825, 0.345530, 0.055265, 0.001777};
  for (int i = 0; i < 6; i++) ASSERT_NEAR(p[idx[i]], want[i], 2e-6);
  ASSERT_NEAR(h.centers[28], 1.1765, 1e-4);
  ASSERT_NEAR(decode_probs(&h, p), 1.299998, 1e-5);
}

TEST(two_hot_and_atoms) {
  nn_head_t h;
  nn_head_init(&h, NN_HEAD_TWO_HOT, 51, -10, 10, 0);
  float p[51];
  nn_head_target(&h, 1.3f, p);
  ASSERT_NEAR(p[28], 0.75, 1e-5);
  ASSERT_NEAR(p[29], 0.25, 1e-5);
  ASSERT_NEAR(decode_probs(&h, p), 1.3, 1e-5); /* two-hot decodes exactly */
  nn_head_target(&h, 10.0f, p);                /* on the last atom */
  ASSERT_NEAR(p[50], 1.0, 0);
  nn_head_target(&h, -50.0f, p);
  ASSERT_NEAR(p[0], 1.0, 0);
  nn_head_target(&h, 1.2f, p); /* on an atom: l == u */
  ASSERT_NEAR(p[28], 1.0, 1e-5);
}

TEST(c51_projection) {
  nn_head_t h;
  nn_head_init(&h, NN_HEAD_C51, 3, -1, 1, 0);
  float next[3] = {0.2f, 0.5f, 0.3f}, p[3];
  nn_head_c51_project(&h, next, 0.5f, 0.5f, p);
  ASSERT_NEAR(p[0], 0, 1e-6);
  ASSERT_NEAR(p[1], 0.45, 1e-6);
  ASSERT_NEAR(p[2], 0.55, 1e-6);
  nn_head_c51_project(&h, next, 1.0f, 0.9f, p);
  ASSERT_NEAR(p[1], 0.18, 1e-6);
  ASSERT_NEAR(p[2], 0.82, 1e-6);
  nn_head_c51_project(&h, next, 0.25f, 0.0f, p); /* terminal: all mass on r */
  ASSERT_NEAR(p[1], 0.75, 1e-6);
  ASSERT_NEAR(p[2], 0.25, 1e-6);
}

TEST(head_checkpoint_convention) {
  nn_head_t a, b;
  nn_head_init(&a, NN_HEAD_HL_GAUSS, 51, -10, 110, 0.75f);
  nn_head_init(&b, NN_HEAD_HL_GAUSS, 51, -10, 100, 0.75f);
  lathe_buf_t buf = {0};
  nn_head_save(&a, &buf);
  lathe_buf_t r1 = {buf.p, buf.n, buf.n, 0, 0}, r2 = {buf.p, buf.n, buf.n, 0, 0};
  ASSERT_EQ(nn_head_check(&a, &r1), 0);
  ASSERT_EQ(nn_head_check(&b, &r2), LATHE_ESHAPE);
  lathe_buf_free(&buf);
  ASSERT_EQ(nn_head_parse("hl_gauss"), NN_HEAD_HL_GAUSS);
  ASSERT_EQ(nn_head_parse("gauss"), -1);
  ASSERT_EQ(nn_head_init(&a, NN_HEAD_C51, 1, 0, 1, 0), LATHE_ESHAPE);
  ASSERT_EQ(nn_head_init(&a, NN_HEAD_TWO_HOT, 5, 1, 1, 0), LATHE_ESHAPE);
}

/* A diverged critic gives non-finite targets: a categorical head turns them
 * into a NaN target (a NaN loss the divergence guard reports), never an index
 * (once p[(int)NaN]); the fast exp keeps NaN without converting it to int. */
TEST(heads_non_finite_target_is_nan_not_an_index) {
  nn_head_kind_t kinds[] = {NN_HEAD_HL_GAUSS, NN_HEAD_TWO_HOT, NN_HEAD_C51};
  float bad[] = {NAN, INFINITY, -INFINITY};
  for (int k = 0; k < 3; k++) {
    nn_head_t h;
    ASSERT(!nn_head_init(&h, kinds[k], 21, -10, 10, 0.75f));
    float p[21], out[21] = {0}, dout[21];
    for (int j = 0; j < 3; j++) {
      if (kinds[k] == NN_HEAD_C51) {
        float next[21];
        for (int i = 0; i < 21; i++) next[i] = 1.0f / 21;
        nn_head_c51_project(&h, next, bad[j], 0.99f, p);
      } else
        nn_head_target(&h, bad[j], p);
      for (int i = 0; i < 21; i++) ASSERT(isnan(p[i]));
      ASSERT(isnan(nn_head_loss(&h, out, p, 1, dout)));
    }
    float nanout[21]; /* a diverged network's logits: NaN through the fast exp */
    for (int i = 0; i < 21; i++) nanout[i] = NAN;
    nn_head_target(&h, 1.0f, p);
    ASSERT(isnan(nn_head_loss(&h, nanout, p, 1, dout)));
  }
}
