/* test_sft_update.c - the sft plugin's own batch packing and its
 * data-parallel split (sft.c included, so the plugin's code runs): on a
 * hand-built batch, pack()'s mask scores exactly the tokens scored() counts,
 * and the shards' losses and logit gradients, each weighted by its share of
 * the batch's scored tokens as step() weights them, add up to the whole
 * batch's mean loss and gradient. */
#define lathe_plugin_entry sft_code_entry /* sft's code, included: this file is no plugin */
#include "../plugins/sft/sft.c"
#include "test.h"

enum { V = 7, NB = 4 };

/* A logit that depends on the example, position and id only, so a batch
 * packed to another width holds the same values. */
static float logit(int b, int t, int v) {
  return (float)sin(1.3 * b + 0.7 * t + 0.45 * v) * 2.0f;
}

static void fill(const sft_t *s, float *lg, int b0, int n, int T) {
  for (int b = 0; b < n; b++)
    for (int t = 0; t < T; t++)
      for (int v = 0; v < V; v++) lg[((size_t)b * T + t) * V + v] = logit(b0 + b, t, v);
}

TEST(sft_pack_scores_what_scored_counts) {
  int a[] = {1, 2, 3, 4, 5}, c[] = {3, 3}, d[] = {6, 5, 4, 3, 2, 1, 0};
  ex_t e[3] = {{a, 5, 2}, {c, 2, 0}, {d, 7, 7}}, *ex[3] = {&e[0], &e[1], &e[2]};
  sft_t s = {0};
  int tok[3 * 7], tgt[3 * 7];
  float mask[3 * 7];
  s.tok_buf = tok, s.tgt = tgt, s.mask = mask;
  int T = pack(&s, ex, 3);
  ASSERT_EQ(T, 7);
  for (int b = 0; b < 3; b++) {
    double m = 0;
    for (int t = 0; t < T; t++) m += mask[b * T + t];
    ASSERT_NEAR(m, scored(&s, &e[b]), 0);
  }
  /* example 0: targets 3, 4, 5 are scored (positions 1..3), the prompt's are not */
  ASSERT_EQ(tgt[1], 3);
  ASSERT_NEAR(mask[0], 0, 0);
  ASSERT_NEAR(mask[1] + mask[2] + mask[3], 3, 0);
}

TEST(sft_shards_sum_to_the_batch) {
  /* four examples of different lengths and prompts (response_only) */
  int i0[] = {1, 2, 3, 4, 5, 6}, i1[] = {2, 3}, i2[] = {4, 4, 4, 4, 4, 4, 4, 4, 4},
      i3[] = {5, 1, 0};
  ex_t e[NB] = {{i0, 6, 2}, {i1, 2, 1}, {i2, 9, 4}, {i3, 3, 0}};
  ex_t *ex[NB] = {&e[0], &e[1], &e[2], &e[3]};
  int tok[NB * 9], tgt[NB * 9];
  float mask[NB * 9], lg[NB * 9 * V], dl[NB * 9 * V], lg2[NB * 9 * V], dl2[NB * 9 * V];
  sft_t s = {0};
  s.tok_buf = tok, s.tgt = tgt, s.mask = mask;
  int T = pack(&s, ex, NB);
  fill(&s, lg, 0, NB, T);
  double whole = nn_token_ce_loss(dl, lg, tgt, mask, NB, T, V);
  double all = 0, sum = 0;
  for (int b = 0; b < NB; b++) all += scored(&s, &e[b]);
  for (int shards = 2; shards <= 4; shards += 2) {
    int nb = NB / shards;
    sum = 0;
    for (int k = 0; k < shards; k++) {
      int b0 = k * nb, Tk = pack(&s, ex + b0, nb);
      double mine = 0;
      for (int b = b0; b < b0 + nb; b++) mine += scored(&s, &e[b]);
      fill(&s, lg2, b0, nb, Tk);
      double w = mine / all, l = nn_token_ce_loss(dl2, lg2, tgt, mask, nb, Tk, V);
      sum += l * w;
      /* this shard's rows of the gradient, weighted, are the batch's rows */
      for (int b = 0; b < nb; b++)
        for (int t = 0; t < Tk; t++)
          for (int v = 0; v < V; v++)
            ASSERT_NEAR(dl2[((size_t)b * Tk + t) * V + v] * w,
                        dl[((size_t)(b0 + b) * T + t) * V + v], 1e-7);
    }
    ASSERT_NEAR(sum, whole, 1e-6);
  }
}
