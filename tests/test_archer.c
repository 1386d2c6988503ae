/* test_archer.c - every numeric test vector of specs/archer.md against the
 * nn core's functions: TD targets (head-matched, terminal), L_Q of the
 * two-transition batch with its gradients against finite differences, the
 * V errors, the advantage and the actor's per-sample loss, the Monte-Carlo
 * returns the repo stores, Polyak averaging after one iteration's 10
 * target updates, and CHAI's first argmax. */
#include "../workbench/nn/nn.h"
#include "test.h"

TEST(archer_td_targets) {
  ASSERT_NEAR(nn_archer_target(-1, 0, 0.95, -5.0), -5.75, 1e-12);
  ASSERT_NEAR(nn_archer_target(-1, 0, 0.95, -4.5), -5.275, 1e-12);
  ASSERT_NEAR(nn_archer_target(0, 1, 0.95, -4.5), 0.0, 0); /* terminal: no bootstrap */
}

TEST(archer_q_and_v_losses) {
  float q1[2] = {-5, -0.5f}, q2[2] = {-6, 0.2f}, d1[2], d2[2];
  float y1[2] = {-5.75f, 0}, y2[2] = {-5.275f, 0};
  double l = nn_archer_pair_mse(q1, q2, y1, y2, 2, d1, d2);
  ASSERT_NEAR(nn_archer_pair_mse(q1, q1, y1, y1, 2, NULL, NULL) / 2, 0.40625, 1e-6);
  ASSERT_NEAR(nn_archer_pair_mse(q2, q2, y2, y2, 2, NULL, NULL) / 2, 0.2828125, 1e-6);
  ASSERT_NEAR(l, 0.6890625, 1e-6);
  for (int i = 0; i < 2; i++) { /* dL/dQ against central differences */
    float p[2], m[2];
    memcpy(p, q1, sizeof p), memcpy(m, q1, sizeof m);
    p[i] += 1e-3f, m[i] -= 1e-3f;
    double fd = (nn_archer_pair_mse(p, q2, y1, y2, 2, NULL, NULL) -
                 nn_archer_pair_mse(m, q2, y1, y2, 2, NULL, NULL)) /
                2e-3;
    ASSERT_NEAR(d1[i], fd, 1e-3);
    memcpy(p, q2, sizeof p), memcpy(m, q2, sizeof m);
    p[i] += 1e-3f, m[i] -= 1e-3f;
    fd = (nn_archer_pair_mse(q1, p, y1, y2, 2, NULL, NULL) -
          nn_archer_pair_mse(q1, m, y1, y2, 2, NULL, NULL)) /
         2e-3;
    ASSERT_NEAR(d2[i], fd, 1e-3);
  }
  /* V regressed onto the target Q at a fresh policy utterance */
  float v1[1] = {-4.2f}, v2[1] = {-4.0f}, z1[1] = {-4.0f}, z2[1] = {-4.4f};
  ASSERT_NEAR(nn_archer_pair_mse(v1, v1, z1, z1, 1, NULL, NULL) / 2, 0.04, 1e-6);
  ASSERT_NEAR(nn_archer_pair_mse(v2, v2, z2, z2, 1, NULL, NULL) / 2, 0.16, 1e-6);
}

TEST(archer_advantage_and_actor_loss) {
  double A = nn_archer_advantage(-3.8, -4.1, -4.2, -4.0);
  ASSERT_NEAR(A, 0.1, 1e-12);
  double lp[3] = {-0.5, -1.2, -0.3}, sum = 0, g;
  for (int i = 0; i < 3; i++) sum += lp[i];
  ASSERT_NEAR(sum, -2.0, 1e-12);
  /* one-step REINFORCE with the utterance's advantage as its reward */
  ASSERT_NEAR(nn_pg_reinforce_token(sum, 0, A, 0, &g), 0.2, 1e-12);
  ASSERT_NEAR(g, -A, 1e-12);
}

TEST(archer_mc_returns_polyak_chai) {
  float r[3] = {-1, -1, 0}, G[20];
  uint8_t term[20] = {0};
  nn_mc_returns(r, term, 3, 0.95, 0, 0, G);
  ASSERT_NEAR(G[0], -1.95, 1e-6);
  ASSERT_NEAR(G[1], -1.0, 0);
  ASSERT_NEAR(G[2], 0.0, 0);
  float fail[20];
  for (int i = 0; i < 20; i++) fail[i] = -1;
  nn_mc_returns(fail, term, 20, 0.95, 0, 0, G);
  ASSERT_NEAR(G[0], -12.830282, 1e-5);
  nn_params_t a = {0}, b = {0};
  ASSERT(nn_params_add(&a, "w", 0, 1, (int[]){1}) == 0 && nn_params_alloc(&a) == 0);
  ASSERT(nn_params_add(&b, "w", 0, 1, (int[]){1}) == 0 && nn_params_alloc(&b) == 0);
  a.w[0] = 0, b.w[0] = 1;
  for (int i = 0; i < 10; i++) nn_params_polyak(&a, &b, 0.1f);
  ASSERT_NEAR(a.w[0], 0.651322, 1e-6);
  nn_params_free(&a), nn_params_free(&b);
  double q[5] = {-3, -2.5, -4, -2.5, -6};
  ASSERT_EQ(nn_argmax_first(q, 5), 1);
  ASSERT_EQ(nn_argmax_first(q, 0), -1);
}
