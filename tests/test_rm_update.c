/* test_rm_update.c - the rm plugin's own row_loss() (rm.c included, so the
 * plugin's code runs): for a Bradley-Terry row the soft-target cross-entropy
 * of r_first - r_second, for a pairwise row the mean of both orders' with the
 * target flipped for the second, each against the formula written out here,
 * and the output gradients against central differences. */
#define lathe_plugin_entry rm_code_entry /* rm's code, included: this file is no plugin */
#include "../plugins/rm/rm.c"
#include "test.h"

static double sig(double z) {
  return 1 / (1 + exp(-z));
}

/* -[c log s(z) + (1 - c) log(1 - s(z))] */
static double xent(double z, double c) {
  return -(c * log(sig(z)) + (1 - c) * log(1 - sig(z)));
}

static void check_row(int pairwise, double c, float o0, float o1) {
  rm_t r;
  memset(&r, 0, sizeof r);
  r.pw = pairwise;
  row_t w;
  memset(&w, 0, sizeof w);
  w.c = (float)c;
  float o[2] = {o0, o1}, d[2], dd[2];
  double l = row_loss(&r, &w, o, d);
  double want = pairwise ? 0.5 * (xent(o0, w.c) + xent(o1, 1 - w.c)) : xent((double)o0 - o1, w.c);
  ASSERT_NEAR(l, want, 1e-9);
  for (int k = 0; k < 2; k++) { /* d loss / d output k */
    float keep = o[k];
    o[k] = keep + 1e-3f;
    double lp = row_loss(&r, &w, o, dd);
    o[k] = keep - 1e-3f;
    double lm = row_loss(&r, &w, o, dd);
    o[k] = keep;
    ASSERT_NEAR(d[k], (lp - lm) / ((double)(keep + 1e-3f) - (keep - 1e-3f)), 1e-5);
  }
}

TEST(rm_row_loss_bradley_terry) {
  check_row(0, 1.0, 1.2f, 0.3f); /* a win: loss 0.341154 (specs/rrm.md) */
  check_row(0, 0.5, 1.2f, 0.3f); /* a tie */
  check_row(0, 0.0, -0.4f, 2.0f);
}

TEST(rm_row_loss_pairwise_both_orders) {
  check_row(1, 1.0, 0.9f, -0.6f);
  check_row(1, 0.5, 0.2f, 0.7f);
  check_row(1, 0.0, -1.5f, 1.0f);
}
