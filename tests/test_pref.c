/* test_pref.c - the preference and policy-gradient losses against the test
 * vectors of the design spec dpo.md and onpolicy_pref.md (computed there with
 * python3), and a finite-difference check of every pair loss. */
#include <math.h>

#include "../workbench/nn/nn.h"
#include "test.h"

/* logpi(y_w) = -10, logpi(y_l) = -12, ref -11 and -11: h = 2 */
static double pair(nn_pref_loss_t l, double beta, double eps, double *dw, double *dl) {
  nn_pref_t o = {l, beta, eps, 0};
  return nn_pref_pair(&o, -10, -12, -11, -11, 1, 1, dw, dl);
}

TEST(pref_dpo_vectors) {
  double dw, dl;
  ASSERT_NEAR(pair(NN_PREF_DPO, 0.1, 0, &dw, &dl), 0.598139, 1e-6);
  ASSERT_NEAR(dw, -0.0450166, 1e-7);
  ASSERT_NEAR(dl, 0.0450166, 1e-7);
  ASSERT_NEAR(pair(NN_PREF_DPO, 0.5, 0, &dw, &dl), 0.313262, 1e-6);
  ASSERT_NEAR(dw, -0.134471, 1e-6);
  nn_pref_t o = {NN_PREF_DPO, 0.1, 0, 0};
  ASSERT_NEAR(nn_pref_pair(&o, -15, -9, -14, -10, 1, 1, &dw, &dl), 0.798139, 1e-6); /* h = -2 */
  ASSERT_NEAR(dw, -0.0549834, 1e-7);
  ASSERT_NEAR(nn_pref_pair(&o, -20.5, -20.5, -20.5, -20.5, 1, 1, &dw, &dl), 0.693147, 1e-6);
  ASSERT_NEAR(dw, -0.05, 1e-9);
  /* TRL's metrics for the h = 2 pair: rewards/chosen 0.1, rejected -0.1, margin 0.2, accuracy 1 */
  nn_pref_stats_t st = {0};
  nn_pref_stats_add(&st, 0.1, -10, -12, -11, -11);
  ASSERT_NEAR(st.chosen, 0.1, 1e-12);
  ASSERT_NEAR(st.rejected, -0.1, 1e-12);
  ASSERT_NEAR(st.margins, 0.2, 1e-12);
  ASSERT_NEAR(st.accuracies, 1, 0);
  ASSERT_NEAR(st.logps_chosen, -10, 0);
  /* h = -2 and h = 0 (a tie): both count as wrong, accuracy stays 1 of 3 */
  nn_pref_stats_add(&st, 0.1, -15, -9, -14, -10);
  nn_pref_stats_add(&st, 0.1, -20.5, -20.5, -20.5, -20.5);
  ASSERT_EQ(st.pairs, 3);
  ASSERT_NEAR(st.accuracies, 1, 0);
}

TEST(pref_cdpo_robust_hinge_ipo_vectors) {
  double dw, dl;
  ASSERT_NEAR(pair(NN_PREF_CDPO, 0.1, 0.1, &dw, &dl), 0.618139, 1e-6);
  ASSERT_NEAR(dw, -0.0350166, 1e-7); /* dL/dh: h enters logpi(y_w) with weight 1 */
  /* cDPO's stationary point h* = log((1-eps)/eps) / beta */
  nn_pref_t c = {NN_PREF_CDPO, 0.1, 0.1, 0};
  double hs = log(0.9 / 0.1) / 0.1;
  ASSERT_NEAR(hs, 21.9722, 1e-4);
  nn_pref_pair(&c, hs, 0, 0, 0, 1, 1, &dw, &dl);
  ASSERT_NEAR(dw, 0, 1e-12);
  ASSERT_NEAR(pair(NN_PREF_ROBUST, 0.1, 0.1, &dw, &dl), 0.573139, 1e-6);
  ASSERT_NEAR(pair(NN_PREF_HINGE, 0.1, 0, &dw, &dl), 0.8, 1e-12);
  ASSERT_NEAR(dw, -0.1, 1e-12);
  ASSERT_NEAR(pair(NN_PREF_IPO, 0.1, 0, &dw, &dl), 9.0, 1e-9); /* summed */
  ASSERT_NEAR(dw, -6.0, 1e-9);
  nn_pref_t ipo = {NN_PREF_IPO, 0.1, 0, 1}; /* averaged, |y_w| = 4, |y_l| = 5 */
  ASSERT_NEAR(nn_pref_pair(&ipo, -10, -12, -11, -11, 4, 5, &dw, &dl), 20.7025, 1e-9);
  ASSERT_NEAR(dw, -2.275, 1e-9);
  ASSERT_NEAR(dl, 1.82, 1e-9);
  ASSERT(isfinite(nn_pref_pair(&ipo, -1, -1, 0, 0, 0, 0, &dw, &dl))); /* empty: count 1 */
  nn_pref_t code = {NN_PREF_IPO, 0.05, 0, 0}; /* the on-policy code's beta_ipo = 10 */
  ASSERT_NEAR(nn_pref_pair(&code, 2, 0, 0, 0, 1, 1, NULL, NULL), 64, 1e-9);
  ASSERT_EQ(nn_pref_parse("ipo"), NN_PREF_IPO);
  ASSERT_EQ(nn_pref_parse("sigmoid"), -1);
}

TEST(pref_all_pairs_and_policy_gradient_vectors) {
  /* all ordered pairs of N = 4 samples, log-ratios as Delta, beta 0.1 */
  double r[4] = {0.1, 0.7, 0.4, 0.9}, d[4] = {0.2, -0.1, 0, 0.3}, sum = 0;
  nn_pref_t o = {NN_PREF_DPO, 0.1, 0, 0};
  int n = 0;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (r[i] > r[j]) sum += nn_pref_pair(&o, d[i], d[j], 0, 0, 1, 1, NULL, NULL), n++;
  ASSERT_EQ(n, 6);
  ASSERT_NEAR(sum / n, 0.691564, 1e-6);
  /* best-of-N: -logpi(best) = 2, with the worst pushed down (lambda 0.1): 1.9 */
  double gb, gw;
  ASSERT_NEAR(nn_bon_loss(-2, -1, 0, &gb, &gw), 2.0, 1e-12);
  ASSERT_NEAR(nn_bon_loss(-2, -1, 0.1, &gb, &gw), 1.9, 1e-12);
  ASSERT_NEAR(gb, -1, 0);
  ASSERT_NEAR(gw, 0.1, 0);
  /* REINFORCE over two tokens */
  double lp[2] = {-1, -2}, ref[2] = {-1.2, -1.8}, loss = 0, g;
  for (int t = 0; t < 2; t++) loss += nn_pg_reinforce_token(lp[t], ref[t], 0.5, 0.1, &g);
  ASSERT_NEAR(loss, 1.5, 1e-9);
  ASSERT_NEAR(g, -0.4, 1e-12);
  /* PPO with rho = e^0.3, clip 0.2 */
  ASSERT_NEAR(nn_pg_ppo_token(0.3, 0, 0.3, 1, 0.2, 0, &g), -1.2, 1e-9);
  ASSERT_NEAR(g, 0, 0); /* clipped: no gradient */
  ASSERT_NEAR(nn_pg_ppo_token(0.3, 0, 0.3, -1, 0.2, 0, &g), 1.34986, 1e-5);
  ASSERT_NEAR(g, exp(0.3), 1e-9);
  /* RWR weights */
  ASSERT_NEAR(nn_rwr_weight(0.1, 1), 1.10517, 1e-5);
  ASSERT_NEAR(nn_rwr_weight(0.9, 1), 2.4596, 1e-4);
}

TEST(pref_masked_logprob_vector) {
  /* logits predict the next token: position k-1 scores token k; the mask is over targets */
  float logits[12] = {2, .5f, -1, 0, 1, 0, 1.5f, -.5f, .3f, .2f, .2f, 2.2f};
  int ids[5] = {0, 1, 2, 2, 1}, *tgt = ids + 1;
  float mask[4] = {0, 1, 1, 0}, lp;
  nn_seq_logprob(&lp, logits, tgt, mask, 1, 4, 3);
  ASSERT_NEAR(lp, -3.11367, 1e-5);
  float all[4] = {1, 1, 1, 1};
  nn_seq_logprob(&lp, logits, tgt, all, 1, 4, 3);
  ASSERT_NEAR(lp, -1.74131 - 1.55144 - 1.56223 - 2.23954, 1e-4);
}

TEST(pref_pair_gradients_match_differences) {
  nn_pref_loss_t ls[5] = {NN_PREF_DPO, NN_PREF_CDPO, NN_PREF_ROBUST, NN_PREF_HINGE, NN_PREF_IPO};
  for (int k = 0; k < 5; k++)
    for (int avg = 0; avg < 2; avg++) {
      nn_pref_t o = {ls[k], 0.3, 0.1, avg};
      double pw = -7.3, pl = -9.1, dw, dl, e = 1e-6;
      nn_pref_pair(&o, pw, pl, -8, -8.4, 3, 5, &dw, &dl);
      double nw = (nn_pref_pair(&o, pw + e, pl, -8, -8.4, 3, 5, 0, 0) -
                   nn_pref_pair(&o, pw - e, pl, -8, -8.4, 3, 5, 0, 0)) /
                  (2 * e);
      double nl = (nn_pref_pair(&o, pw, pl + e, -8, -8.4, 3, 5, 0, 0) -
                   nn_pref_pair(&o, pw, pl - e, -8, -8.4, 3, 5, 0, 0)) /
                  (2 * e);
      ASSERT_NEAR(dw, nw, 1e-5 * fmax(1, fabs(nw)));
      ASSERT_NEAR(dl, nl, 1e-5 * fmax(1, fabs(nl)));
    }
}
