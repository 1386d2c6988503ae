/* test_lm.c - generation (KV cache against full recomputation, the batched
 * prefill against one-position decodes, prompts of
 * different lengths, stop tokens, seeding) and the LM checkpoint block. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../workbench/nn/lm.h"
#include "test.h"

static void make(nn_gpt_t *g, uint64_t seed) {
  nn_rng_t r;
  nn_rng_seed(&r, seed);
  ASSERT_EQ(nn_gpt_init(g, (nn_gpt_config_t){270, 24, 2, 2, 16}, &r), 0);
  for (size_t i = 0; i < g->params.total; i++) g->params.w[i] += 0.3f * nn_rng_normal(&r);
}

TEST(lm_generate_cache_matches_recompute) {
  nn_gpt_t g;
  make(&g, 3);
  int prompt[3 * 5] = {10, 11, 12, 0, 0, 40, 0, 0, 0, 0, 7, 8, 9, 10, 11}, plen[3] = {3, 1, 5};
  int a[3 * 8], b[3 * 8], la[3], lb[3];
  nn_gen_t greedy = {0, 0, 1, NULL, 0, 0}, nocache = greedy;
  nocache.no_cache = 1;
  nn_rng_t r1, r2;
  nn_rng_seed(&r1, 1), nn_rng_seed(&r2, 1);
  ASSERT_EQ(nn_lm_generate(&g, prompt, plen, 3, 5, 8, &greedy, &r1, a, la, NULL), 0);
  ASSERT_EQ(nn_lm_generate(&g, prompt, plen, 3, 5, 8, &nocache, &r2, b, lb, NULL), 0);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(la[i], 8);
    ASSERT_EQ(lb[i], 8);
    for (int k = 0; k < 8; k++) ASSERT_EQ(a[i * 8 + k], b[i * 8 + k]);
  }
  /* batch independence: the second prompt alone continues the same way */
  int one[1] = {40}, p1[1] = {1}, c[8], lc;
  ASSERT_EQ(nn_lm_generate(&g, one, p1, 1, 1, 8, &greedy, &r1, c, &lc, NULL), 0);
  for (int k = 0; k < 8; k++) ASSERT_EQ(c[k], a[8 + k]);
  /* a stop token ends its sequence (and is kept) */
  int stop = a[2];
  nn_gen_t st = greedy;
  st.stop = &stop, st.nstop = 1;
  ASSERT_EQ(nn_lm_generate(&g, prompt, plen, 3, 5, 8, &st, &r1, b, lb, NULL), 0);
  int first = 0;
  while (a[first] != stop) first++;
  ASSERT_EQ(lb[0], first + 1);
  ASSERT_EQ(b[first], stop);
  /* sampling is seeded: the same seed, the same text */
  nn_gen_t hot = {1.0f, 20, 0.9f, NULL, 0, 0};
  nn_rng_seed(&r1, 9), nn_rng_seed(&r2, 9);
  nn_lm_generate(&g, prompt, plen, 3, 5, 8, &hot, &r1, a, la, NULL);
  nn_lm_generate(&g, prompt, plen, 3, 5, 8, &hot, &r2, b, lb, NULL);
  ASSERT(!memcmp(a, b, sizeof a));
  /* the context bounds the output */
  int big[1] = {5}, pb[1] = {1}, o[64], lo;
  ASSERT_EQ(nn_lm_generate(&g, big, pb, 1, 1, 64, &greedy, &r1, o, &lo, NULL), 0);
  ASSERT_EQ(lo, 23);
  nn_gpt_free(&g);
}

/* The log-probabilities the decode reports are those of a full forward over
 * the finished sequence (the KV cache's rounding aside), and a sampled token
 * is never given log-probability 0 or -inf. */
TEST(lm_generate_logp_from_decode) {
  nn_gpt_t g;
  make(&g, 5);
  int prompt[2 * 4] = {10, 11, 12, 13, 40, 41, 0, 0}, plen[2] = {4, 2}, out[2 * 10], olen[2];
  float lp[2 * 10];
  nn_gen_t hot = {1.0f, 0, 1.0f, NULL, 0, 0};
  nn_rng_t r;
  nn_rng_seed(&r, 7);
  ASSERT_EQ(nn_lm_generate(&g, prompt, plen, 2, 4, 10, &hot, &r, out, olen, lp), 0);
  for (int b = 0; b < 2; b++) {
    int T = plen[b] + olen[b], seq[24];
    float full[24];
    for (int t = 0; t < T; t++)
      seq[t] = t < plen[b] ? prompt[b * 4 + t] : out[b * 10 + t - plen[b]];
    ASSERT_EQ(nn_gpt_token_logprobs(&g, seq, 1, T, full), 0);
    for (int j = 0; j < olen[b]; j++) {
      ASSERT(lp[b * 10 + j] < 0 && isfinite(lp[b * 10 + j]));
      ASSERT_NEAR(lp[b * 10 + j], full[plen[b] + j], 1e-4);
    }
  }
  nn_gpt_free(&g);
}

TEST(lm_block_round_trip) {
  nn_gpt_t g, h;
  make(&g, 4);
  const char *texts[] = {"abab abab abab", "ab ab ab"};
  nn_tok_t t, u;
  ASSERT_EQ(nn_tok_train_bpe(&t, texts, 2, 262), 0);
  lathe_buf_t b = {0};
  nn_lm_save(&t, &g, &b, 0);
  b.off = 0;
  int has;
  ASSERT_EQ(nn_lm_load(&u, &has, &h, &b), 0);
  ASSERT_EQ(has, 1);
  ASSERT_EQ(u.vocab, t.vocab);
  ASSERT_EQ(h.cfg.width, 16);
  ASSERT(!memcmp(h.params.w, g.params.w, g.params.total * sizeof(float)));
  b.p[0] ^= 1; /* a corrupt magic */
  b.off = 0;
  nn_tok_t v;
  nn_gpt_t k;
  ASSERT_EQ(nn_lm_load(&v, &has, &k, &b), LATHE_ECKPT);
  lathe_buf_free(&b);
  nn_tok_free(&t), nn_tok_free(&u), nn_gpt_free(&g), nn_gpt_free(&h);
}

TEST(lm_generate_sharded_is_thread_free) {
  nn_gpt_t g;
  make(&g, 4);
  enum { B = 7, P = 4, N = 10 };
  int prompt[B * P], plen[B], a[B * N], la[B], b[B * N], lb[B], c[B * N], lc[B];
  for (int i = 0; i < B * P; i++) prompt[i] = 2 + (i * 37) % 250;
  for (int k = 0; k < B; k++) plen[k] = 1 + k % P;
  int stop[1] = {5};
  nn_gen_t o = {1.0f, 0, 1.0f, stop, 1, 0};
  nn_rng_t r1[3], r2[3], r3[3];
  for (int s = 0; s < 3; s++) {
    nn_rng_seed(&r1[s], 10 + s);
    r2[s] = r1[s], r3[s] = r1[s];
  }
  ASSERT_EQ(nn_lm_generate_sharded(&g, prompt, plen, B, P, N, &o, r1, 3, 1, a, la, NULL), 0);
  ASSERT_EQ(nn_lm_generate_sharded(&g, prompt, plen, B, P, N, &o, r2, 3, 2, b, lb, NULL), 0);
  /* the shards by hand: sequences [0,2), [2,4), [4,7) with their own streams */
  const int lo[4] = {0, 2, 4, 7};
  for (int s = 0; s < 3; s++)
    ASSERT_EQ(nn_lm_generate(&g, prompt + lo[s] * P, plen + lo[s], lo[s + 1] - lo[s], P, N, &o,
                             &r3[s], c + lo[s] * N, lc + lo[s], NULL),
              0);
  for (int k = 0; k < B; k++) {
    ASSERT_EQ(la[k], lb[k]);
    ASSERT_EQ(la[k], lc[k]);
    for (int t = 0; t < la[k]; t++) {
      ASSERT_EQ(a[k * N + t], b[k * N + t]);
      ASSERT_EQ(a[k * N + t], c[k * N + t]);
    }
  }
  ASSERT(memcmp(&r1[2], &r2[2], sizeof r1[2]) == 0); /* the streams advanced alike */
  ASSERT_EQ(nn_lm_generate_sharded(&g, prompt, plen, B, P, N, &o, r1, 65, 2, a, la, NULL),
            LATHE_ESHAPE);
  nn_gpt_free(&g);
}

/* The batched prefill fills the cache as P one-position decodes do (up to
 * float rounding: its products have B*P rows), the next decode's logits
 * agree, and generation with and without it picks the same greedy tokens. */
TEST(lm_prefill_matches_decode) {
  nn_gpt_t g;
  make(&g, 5);
  const int B = 3, P = 9, C = 16, L = 2, T = 24;
  int tok[3 * 9];
  nn_rng_t r;
  nn_rng_seed(&r, 4);
  for (int i = 0; i < B * P; i++) tok[i] = (int)nn_rng_below(&r, 270);
  nn_kvcache_t a, b;
  ASSERT_EQ(nn_kvcache_init(&a, &g, B), 0);
  ASSERT_EQ(nn_kvcache_init(&b, &g, B), 0);
  ASSERT_EQ(nn_gpt_prefill(&g, &a, tok, P), 0);
  ASSERT_EQ(a.pos, P);
  ASSERT_EQ(nn_gpt_prefill(&g, &a, tok, P), LATHE_ESHAPE); /* the cache is not empty */
  int col[3];
  for (int t = 0; t < P; t++) {
    for (int i = 0; i < B; i++) col[i] = tok[i * P + t];
    ASSERT_EQ(nn_gpt_decode(&g, &b, col, NULL), 0);
  }
  double worst = 0;
  for (int l = 0; l < L; l++)
    for (int i = 0; i < B; i++)
      for (int t = 0; t < P; t++)
        for (int c = 0; c < C; c++) {
          size_t at = (((size_t)l * B + i) * T + t) * C + c;
          worst = fmax(worst, fabs(a.k[at] - b.k[at]) / (1 + fabs(b.k[at])));
          worst = fmax(worst, fabs(a.v[at] - b.v[at]) / (1 + fabs(b.v[at])));
        }
  ASSERT(worst < 1e-5);
  float la[3 * 270], lb[3 * 270];
  int next[3] = {1, 2, 3};
  ASSERT_EQ(nn_gpt_decode(&g, &a, next, la), 0);
  ASSERT_EQ(nn_gpt_decode(&g, &b, next, lb), 0);
  for (int i = 0; i < B * 270; i++) ASSERT_NEAR(la[i], lb[i], 1e-4 * (1 + fabs(lb[i])));
  nn_kvcache_free(&a), nn_kvcache_free(&b);
  ASSERT_EQ(nn_kvcache_init(&a, &g, B), 0);
  ASSERT_EQ(nn_gpt_prefill(&g, &a, tok, T + 1), LATHE_ESHAPE);
  nn_kvcache_free(&a);
  /* generation: the same greedy continuations with and without the prefill */
  int plen[3] = {9, 6, 8}, oa[3 * 8], ob[3 * 8], na[3], nb[3];
  nn_gen_t greedy = {0, 0, 1, NULL, 0, 0}, plain = greedy;
  plain.no_prefill = 1;
  nn_rng_t r1, r2;
  nn_rng_seed(&r1, 1), nn_rng_seed(&r2, 1);
  ASSERT_EQ(nn_lm_generate(&g, tok, plen, B, P, 8, &greedy, &r1, oa, na, NULL), 0);
  ASSERT_EQ(nn_lm_generate(&g, tok, plen, B, P, 8, &plain, &r2, ob, nb, NULL), 0);
  for (int i = 0; i < B; i++) ASSERT_EQ(na[i], nb[i]);
  ASSERT(!memcmp(oa, ob, sizeof oa));
  nn_gpt_free(&g);
}
