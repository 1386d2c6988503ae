/* test_rm.c - reward models and RRM (specs/rrm.md): the spec's test vectors
 * (soft-target losses and gradients, the symmetrised probability, the filter
 * decisions, the augmentation counts), the augmentation checked structurally,
 * encoding within the context, and the checkpoint block round trip. */
#include <stdlib.h>
#include <string.h>

#include "../workbench/nn/rm.h"
#include "test.h"

TEST(rm_soft_ce_vectors) {
  static const double v[][4] = {/* z, c, loss, dL/dz */
                                {1.0, 1, 0.313262, -0.268941},
                                {1.0, 0.5, 0.813262, 0.231059},
                                {0.0, 0.5, 0.693147, 0},
                                {-0.4, 1, 0.913015, -0.598688}};
  for (int i = 0; i < 4; i++) {
    double dz;
    ASSERT_NEAR(nn_rm_soft_ce(v[i][0], v[i][1], &dz), v[i][2], 1e-6);
    ASSERT_NEAR(dz, v[i][3], 1e-6);
  }
  /* Bradley-Terry: z = r1 - r2 */
  double dz, z = 1.2 - 0.3;
  ASSERT_NEAR(nn_rm_soft_ce(z, 1, &dz), 0.341154, 1e-6);
  ASSERT_NEAR(dz + 1, 0.71095, 1e-5); /* P = sigmoid(z) */
  ASSERT_NEAR(nn_rm_bt(z), 0.71095, 1e-5);
  ASSERT_NEAR(nn_rm_soft_ce(z, 0.5, &dz), 0.791154, 1e-6);
  ASSERT_NEAR(dz, 0.21095, 1e-5);
  /* stable far out */
  ASSERT_NEAR(nn_rm_soft_ce(800, 0, &dz), 800, 1e-9);
  ASSERT_NEAR(nn_rm_soft_ce(-800, 1, &dz), 800, 1e-9);
}

TEST(rm_symmetrised_probability_and_filter_vectors) {
  ASSERT_NEAR(nn_rm_sym(1.0, -0.6), 0.688357, 1e-6);
  static const double f[][3] = {/* delta, c, keep */
                                {0.9, 1, 1},
                                {2.0, 1, 0},
                                {0.1, 0.5, 0},
                                {1.0, 0.5, 1},
                                {-0.5, 1, 1}};
  static const double p[] = {0.71095, 0.880797, 0.524979, 0.731059, 0.377541};
  for (int i = 0; i < 5; i++) {
    double pr = nn_rm_bt(f[i][0]);
    ASSERT_NEAR(pr, p[i], 1e-6);
    ASSERT_EQ(nn_rrm_keep(pr, f[i][1], 0.2), (int)f[i][2]);
  }
}

TEST(rrm_augmentation_counts) {
  nn_rng_t r;
  nn_rng_seed(&r, 1);
  nn_rrm_triplet_t *t;
  int64_t gen;
  ASSERT_EQ(nn_rrm_augment(1000, NN_RRM_WINS | NN_RRM_TIES, 0.5, &r, &t, &gen), 7000);
  ASSERT_EQ(gen, 14000);
  int64_t ties = 0;
  for (int i = 0; i < 7000; i++) ties += t[i].label == 0.5f;
  ASSERT(ties > 2700 && ties < 3300); /* 6/14 of 7000 = 3000 */
  free(t);
  ASSERT_EQ(nn_rrm_augment(1000, NN_RRM_WINS, 0.5, &r, &t, &gen), 4000);
  ASSERT_EQ(gen, 8000);
  for (int i = 0; i < 4000; i++) ASSERT(t[i].label == 1.0f);
  free(t);
  ASSERT_EQ(nn_rrm_augment(1000, NN_RRM_TIES, 1.0, &r, &t, &gen), 6000);
  free(t);
  ASSERT_EQ(nn_rrm_augment(2, NN_RRM_WINS, 1.0, &r, &t, &gen), -1);
}

/* Every triplet follows the construction: prompt i; a win pairs one of i's
 * own responses against a member of the pool of two other examples; a tie
 * pairs two pool members; nothing of i's own is off-prompt. */
TEST(rrm_augmentation_structure) {
  nn_rng_t r;
  nn_rng_seed(&r, 7);
  nn_rrm_triplet_t *t;
  int64_t gen, n = 6;
  ASSERT_EQ(nn_rrm_augment(n, NN_RRM_WINS | NN_RRM_TIES, 1.0, &r, &t, &gen), 14 * n);
  for (int64_t i = 0; i < n; i++) {
    const nn_rrm_triplet_t *e = t + 14 * i;
    int pool_ex[2] = {-1, -1}, wins = 0, ties = 0;
    for (int q = 0; q < 14; q++) {
      ASSERT_EQ(e[q].prompt, i);
      int off[2] = {e[q].first, e[q].second}, from = e[q].label == 1.0f ? 1 : 0;
      if (e[q].label == 1.0f) {
        ASSERT_EQ(e[q].first / 2, i); /* an on-prompt response first */
        wins++;
      } else {
        ASSERT(e[q].label == 0.5f);
        ASSERT(e[q].first != e[q].second);
        ties++;
      }
      for (int k = from; k < 2; k++) {
        int ex = off[k] / 2;
        ASSERT(ex != i); /* never its own response as off-prompt */
        if (pool_ex[0] < 0 || pool_ex[0] == ex)
          pool_ex[0] = ex;
        else if (pool_ex[1] < 0 || pool_ex[1] == ex)
          pool_ex[1] = ex;
        else
          test_fail(__FILE__, __LINE__, "example %lld: a third pool example", (long long)i);
      }
    }
    ASSERT_EQ(wins, 8);
    ASSERT_EQ(ties, 6);
    ASSERT(pool_ex[0] >= 0 && pool_ex[1] >= 0 && pool_ex[0] != pool_ex[1]);
    /* each own response beats each of the four pool members once */
    for (int own = 0; own < 2; own++)
      for (int q = 0; q < 4; q++) {
        int want = 2 * pool_ex[q / 2] + q % 2, seen = 0;
        for (int k = 0; k < 8; k++) seen += e[k].first == 2 * i + own && e[k].second == want;
        ASSERT_EQ(seen, 1);
      }
  }
  free(t);
  /* the subsample keeps construction order and is seeded */
  nn_rrm_triplet_t *a, *b;
  nn_rng_seed(&r, 3);
  int64_t ka = nn_rrm_augment(50, 3, 0.5, &r, &a, &gen);
  nn_rng_seed(&r, 3);
  int64_t kb = nn_rrm_augment(50, 3, 0.5, &r, &b, &gen);
  ASSERT_EQ(ka, 350);
  ASSERT_EQ(kb, 350);
  ASSERT(!memcmp(a, b, 350 * sizeof *a));
  for (int i = 1; i < 350; i++) ASSERT(a[i].prompt >= a[i - 1].prompt);
  free(a), free(b);
}

TEST(rm_encode_keeps_responses_and_prompt_end) {
  nn_rng_t r;
  nn_rng_seed(&r, 2);
  nn_tok_t tok;
  ASSERT_EQ(nn_tok_init_bytes(&tok), 0);
  nn_rm_t m;
  ASSERT_EQ(nn_rm_init(&m, NN_RM_PAIRWISE, &tok, (nn_gpt_config_t){0, 16, 1, 1, 4}, &r), 0);
  int ids[16];
  /* fits: prompt <eos> a <eos> b <eos> */
  ASSERT_EQ(nn_rm_encode(&m, "xy", "ab", "c", ids), 8);
  int want[8] = {2 + 'x', 2 + 'y', 0, 2 + 'a', 2 + 'b', 0, 2 + 'c', 0};
  for (int i = 0; i < 8; i++) ASSERT_EQ(ids[i], want[i]);
  /* too long: responses keep their start (3ctx/8 = 6 with <eos>), the prompt its end */
  ASSERT_EQ(nn_rm_encode(&m, "0123456789", "abcdefghij", "ABCDEFGHIJ", ids), 16);
  ASSERT_EQ(ids[0], 2 + (int)'7');
  ASSERT_EQ(ids[2], 2 + (int)'9');
  ASSERT_EQ(ids[3], 0);
  ASSERT_EQ(ids[4], 2 + (int)'a');
  ASSERT_EQ(ids[8], 2 + (int)'e');
  ASSERT_EQ(ids[9], 0);
  ASSERT_EQ(ids[10], 2 + (int)'A');
  ASSERT_EQ(ids[15], 0);
  /* the checkpoint block round-trips, and scoring agrees before and after */
  const char *p[2] = {"q", "qq"}, *a[2] = {"good", "x"}, *b[2] = {"bad", "yy"};
  double s1[2], s2[2];
  ASSERT_EQ(nn_rm_score(&m, p, a, b, 2, s1), 0);
  ASSERT(s1[0] > 0 && s1[0] < 1);
  lathe_buf_t buf = {0};
  nn_rm_save(&m, &buf, 1);
  nn_rm_t n;
  buf.off = 0;
  ASSERT_EQ(nn_rm_load(&n, &buf), 0);
  ASSERT_EQ(nn_rm_score(&n, p, a, b, 2, s2), 0);
  for (int i = 0; i < 2; i++) ASSERT_NEAR(s1[i], s2[i], 1e-12);
  /* an LM block alone is not a reward model */
  lathe_buf_t lm = {0};
  nn_lm_save(&m.tok, &m.gpt, &lm, 0);
  nn_rm_t x;
  ASSERT_EQ(nn_rm_load(&x, &lm), LATHE_ECKPT); /* and frees what it read */
  nn_rm_free(&m), nn_rm_free(&n), lathe_buf_free(&buf), lathe_buf_free(&lm);
}
