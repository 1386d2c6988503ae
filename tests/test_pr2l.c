/* test_pr2l.c - PR2L (specs/pr2l.md): the grid world's rules and answers on
 * hand-written scenes, the layouts, attention pooling (shape contract,
 * masking, backward by finite differences), GAE and the categorical
 * helper, the feature extractor (shape with no and with the most generated
 * tokens, layers, bit-identical cache, bad input), and one PPO minibatch of
 * the plugin's own code (pr2l.c included) on a hand-built batch against
 * the loss written out here, by finite differences. */
#include "../plugins/pr2l/features.c"
#include "../plugins/pr2l/pr2l.c"
#include "../plugins/pr2l/world.c"
#include "test.h"

static pw_state_t scene(void) {
  pw_state_t s = {{5, 3, {4, 0, 3}, {1, 0, 3}, {0, 1, 2}}, 2, 3, 0}; /* key, ball, box */
  return s;
}

static const char *answer(const pw_state_t *s, int q, int k) {
  static char buf[128];
  ASSERT(pw_answer(s, q, k, buf, sizeof buf) > 0);
  return buf;
}

TEST(pr2l_world_answers) {
  pw_state_t s = scene();
  char d[128];
  ASSERT(pw_describe(&s, d, sizeof d) > 0);
  ASSERT_STR(d, "you 2 3 . key 4 1 . ball 0 0 . box 3 3 .");
  ASSERT_STR(answer(&s, PW_Q_WHERE, 0), "south east");
  ASSERT_STR(answer(&s, PW_Q_WHERE, 1), "south west");
  ASSERT_STR(answer(&s, PW_Q_WHERE, 2), "east");
  ASSERT_STR(answer(&s, PW_Q_WHERE, 4), "none");
  ASSERT_STR(answer(&s, PW_Q_IS, 4), "no");
  ASSERT_STR(answer(&s, PW_Q_IS, 2), "yes");
  ASSERT_STR(answer(&s, PW_Q_FAR, 0), "4 steps");
  ASSERT_STR(answer(&s, PW_Q_HERE, 0), "nothing");
  ASSERT_STR(answer(&s, PW_Q_THINK, 0), "key at 4 1 , you at 2 3 , so south east");
  ASSERT_STR(answer(&s, PW_Q_THINK, 5), "no tree , so none");
  ASSERT_EQ(pw_direction(&s, 0), 2); /* dy < 0, dx > 0 */
  ASSERT_EQ(pw_direction(&s, 2), 5); /* dy = 0, dx > 0 */
  ASSERT_EQ(pw_direction(&s, 5), -1);
  s.ax = 3;
  ASSERT_STR(answer(&s, PW_Q_HERE, 0), "box");
  ASSERT_STR(answer(&s, PW_Q_WHERE, 2), "here");
  ASSERT_EQ(pw_direction(&s, 2), 4);
  char q[64];
  ASSERT(pw_question(PW_Q_THINK, 0, q, sizeof q) > 0);
  ASSERT_STR(q, "think : where is the key ?");
  ASSERT(pw_describe(&s, d, 8) == -1); /* too small a buffer is said, not overrun */
}

TEST(pr2l_world_steps) {
  pw_state_t s = scene();
  int term, trunc, win;
  s.ax = 0, s.ay = 0; /* on the ball */
  ASSERT(pw_step(&s, PW_WEST, 0, 20, &term, &trunc, &win) == 0 && s.ax == 0 && !term);
  ASSERT(pw_step(&s, PW_SOUTH, 0, 20, &term, &trunc, &win) == 0 && s.ay == 0);
  ASSERT(pw_step(&s, PW_INTERACT, 0, 20, &term, &trunc, &win) == 0 && term && !win);
  s = scene(); /* (2, 3) -> (4, 1): east east south south, interact */
  int path[] = {PW_INTERACT, PW_EAST, PW_EAST, PW_SOUTH, PW_SOUTH};
  for (int i = 0; i < 5; i++) {
    ASSERT(pw_step(&s, path[i], 0, 20, &term, &trunc, &win) == 0);
    ASSERT(!term && !trunc); /* interacting on an empty cell does nothing */
  }
  ASSERT_EQ(s.ax, 4);
  ASSERT_EQ(s.ay, 1);
  ASSERT_NEAR(pw_step(&s, PW_INTERACT, 0, 20, &term, &trunc, &win), 1 - 0.9 * 6 / 20, 1e-12);
  ASSERT(term && win && !trunc);
  s = scene();
  for (int i = 0; i < 3; i++) pw_step(&s, PW_NORTH, 0, 3, &term, &trunc, &win);
  ASSERT(trunc && !term && s.ay == 4);
  float oh[5 * 5 * 7];
  pw_onehot(&s, oh);
  float sum = 0;
  for (int i = 0; i < 175; i++) sum += oh[i];
  ASSERT_NEAR(sum, 4, 0);
  ASSERT_NEAR(oh[(4 * 5 + 2) * 7], 1, 0);         /* the agent at (2, 4) */
  ASSERT_NEAR(oh[(1 * 5 + 4) * 7 + 1 + 0], 1, 0); /* the key at (4, 1) */
}

TEST(pr2l_layouts) {
  pw_layout_t a, b;
  int differ = 0;
  for (uint64_t i = 0; i < 200; i++) {
    pw_layout(&a, 5, 3, 0, 7, 0, i);
    pw_layout(&b, 5, 3, 0, 7, 0, i);
    ASSERT(!memcmp(&a, &b, sizeof a)); /* a pure function */
    int keys = 0;
    for (int k = 0; k < 3; k++) {
      keys += a.type[k] == 0;
      ASSERT(a.x[k] >= 0 && a.x[k] < 5 && a.y[k] >= 0 && a.y[k] < 5);
      for (int j = 0; j < k; j++)
        ASSERT(a.type[j] != a.type[k] && (a.x[j] != a.x[k] || a.y[j] != a.y[k]));
    }
    ASSERT_EQ(keys, 1);
    pw_layout(&b, 5, 3, 0, 7, 1, i); /* the held-out stream */
    differ += memcmp(&a, &b, sizeof a) != 0;
    nn_rng_t r;
    nn_rng_seed(&r, i);
    int x, y;
    pw_start(&a, &r, &x, &y);
    for (int k = 0; k < 3; k++) ASSERT(a.x[k] != x || a.y[k] != y);
  }
  ASSERT(differ > 190);
}

TEST(nn_gae_by_hand) {
  /* one environment, 3 steps, the episode ends after step 1 */
  float r[3] = {1, 2, 3}, v[3] = {0.5f, 0.25f, 1}, vl[1] = {2}, adv[3], ret[3];
  uint8_t done[3] = {0, 1, 0};
  double g = 0.9, l = 0.8;
  nn_gae(r, v, done, vl, 3, 1, g, l, adv, ret);
  double d2 = 3 + g * 2 - 1, d1 = 2 - 0.25, d0 = 1 + g * 0.25 - 0.5;
  ASSERT_NEAR(adv[2], d2, 1e-6);
  ASSERT_NEAR(adv[1], d1, 1e-6); /* no bootstrap across the end */
  ASSERT_NEAR(adv[0], d0 + g * l * d1, 1e-6);
  ASSERT_NEAR(ret[0], adv[0] + 0.5, 1e-6);
  /* two environments are independent columns */
  float r2[4] = {1, 0, 0, 1}, v2[4] = {0}, vl2[2] = {0, 0}, a2[4], t2[4];
  uint8_t d0s[4] = {0};
  nn_gae(r2, v2, d0s, vl2, 2, 2, 1, 1, a2, t2);
  ASSERT_NEAR(a2[0], 1, 1e-6);
  ASSERT_NEAR(a2[1], 1, 1e-6);
  ASSERT_NEAR(a2[2], 0, 1e-6);
  ASSERT_NEAR(a2[3], 1, 1e-6);
}

TEST(nn_categorical_fd) {
  float z[5] = {0.3f, -1.2f, 0.7f, 0.1f, 2.0f}, dz[5] = {0};
  double H;
  double lp = nn_categorical(z, 5, 2, 0.7, -0.3, dz, &H);
  ASSERT(lp < 0 && H > 0 && H < log(5.0));
  for (int k = 0; k < 5; k++) {
    float zp[5], zm[5];
    memcpy(zp, z, sizeof z), memcpy(zm, z, sizeof z);
    zp[k] += 1e-3f, zm[k] -= 1e-3f;
    double hp, hm, fp = 0.7 * nn_categorical(zp, 5, 2, 0, 0, NULL, &hp);
    double fm = 0.7 * nn_categorical(zm, 5, 2, 0, 0, NULL, &hm);
    fp -= 0.3 * hp, fm -= 0.3 * hm;
    ASSERT_NEAR(dz[k], (fp - fm) / 2e-3, 2e-3);
  }
}

/* sum_n,d w[n,d] out[n,d] of the pool, in double */
static double pool_obj(nn_pool_t *p, const float *x, const int *len, int N, int T, const float *w) {
  const float *o = nn_pool_forward(p, x, len, N, T);
  double s = 0;
  for (int i = 0; i < N * p->D; i++) s += (double)w[i] * o[i];
  return s;
}

TEST(pool_shape_and_masking) {
  nn_rng_t r;
  nn_rng_seed(&r, 5);
  nn_pool_t p;
  ASSERT(nn_pool_init(&p, "pool", 6, 8, 2, &r) == 0);
  ASSERT(nn_pool_init(&(nn_pool_t){0}, "x", 6, 7, 2, &r) == LATHE_ESHAPE); /* D % H */
  nn_init_normal(&p.params, p.iq, 0.5f, &r);
  float x[3 * 5 * 6], y[3 * 7 * 6];
  for (int i = 0; i < 90; i++) x[i] = nn_rng_normal(&r);
  int len[3] = {0, 3, 5};
  float out[24];
  memcpy(out, nn_pool_forward(&p, x, len, 3, 5), sizeof out);
  for (int d = 0; d < 8; d++) ASSERT(out[d] == 0.0f); /* no tokens: zeros */
  /* the same sequences padded to T = 7 with other values in the padding */
  for (int n = 0; n < 3; n++)
    for (int t = 0; t < 7; t++)
      for (int c = 0; c < 6; c++)
        y[(n * 7 + t) * 6 + c] = t < len[n] ? x[(n * 5 + t) * 6 + c] : 100.0f + t;
  const float *o2 = nn_pool_forward(&p, y, len, 3, 7);
  for (int i = 0; i < 24; i++) ASSERT_NEAR(o2[i], out[i], 1e-6);
  /* a sequence of one token pools to its own value projection */
  int one[1] = {1};
  const float *o1 = nn_pool_forward(&p, x + 5 * 6, one, 1, 1);
  for (int d = 0; d < 8; d++) {
    double v = nn_w(&p.params, p.ivb)[d];
    for (int c = 0; c < 6; c++) v += (double)nn_w(&p.params, p.iv)[d * 6 + c] * x[30 + c];
    ASSERT_NEAR(o1[d], v, 1e-5);
  }
  nn_pool_free(&p);
}

TEST(pool_backward_fd) {
  nn_rng_t r;
  nn_rng_seed(&r, 9);
  nn_pool_t p;
  int N = 3, T = 5, C = 6, D = 8;
  ASSERT(nn_pool_init(&p, "pool", C, D, 2, &r) == 0);
  nn_init_normal(&p.params, p.iq, 0.7f, &r);
  float x[90], w[24], dx[90] = {0};
  for (int i = 0; i < 90; i++) x[i] = nn_rng_normal(&r);
  for (int i = 0; i < 24; i++) w[i] = nn_rng_normal(&r);
  int len[3] = {2, 0, 5};
  nn_params_zero_grad(&p.params);
  pool_obj(&p, x, len, N, T, w);
  nn_pool_backward(&p, w, dx);
  float *pw = p.params.w, *pg = p.params.g;
  double worst = 0;
  for (size_t i = 0; i < p.params.total; i++) {
    float keep = pw[i];
    pw[i] = keep + 1e-2f;
    double fp = pool_obj(&p, x, len, N, T, w);
    pw[i] = keep - 1e-2f;
    double fm = pool_obj(&p, x, len, N, T, w);
    pw[i] = keep;
    double fd = (fp - fm) / 2e-2, err = fabs(fd - pg[i]) / (1 + fabs(fd));
    worst = err > worst ? err : worst;
  }
  ASSERT(worst < 2e-3);
  for (int i = 0; i < 90; i++) {
    int n = i / (T * C), t = (i / C) % T;
    float keep = x[i];
    x[i] = keep + 1e-2f;
    double fp = pool_obj(&p, x, len, N, T, w);
    x[i] = keep - 1e-2f;
    double fm = pool_obj(&p, x, len, N, T, w);
    x[i] = keep;
    if (t >= len[n]) ASSERT(dx[i] == 0.0f); /* padding gets no gradient */
    ASSERT_NEAR(dx[i], (fp - fm) / 2e-2, 2e-3 * (1 + fabs((fp - fm) / 2e-2)));
  }
  nn_pool_free(&p);
}

/* A one-layer byte-level model with an untrained GPT: its answers are
 * arbitrary, but deterministic, which is all the contract asks. */
static void tiny_model(pf_t *f, int ctx, int layers) {
  memset(f, 0, sizeof *f);
  nn_rng_t r;
  nn_rng_seed(&r, 11);
  ASSERT(nn_tok_init_bytes(&f->tok) == 0);
  ASSERT(nn_gpt_init(&f->gpt, (nn_gpt_config_t){f->tok.vocab, ctx, layers, 2, 16}, &r) == 0);
}

static const char *DESC = "you 2 3 . key 4 1 . ball 0 0 . box 3 3 .";

TEST(pr2l_features_contract) {
  pf_t f, g, k;
  const float *h1, *h2;
  const char *ans;
  int T1, T2, dl = (int)strlen(DESC) + 1, pl = (int)strlen("where is the key ?") + 1;
  /* no generated tokens: the prompt's states only */
  tiny_model(&f, 96, 2);
  ASSERT(pf_init(&f, "where is the key ?", 0, -1, 0, 1) == 0);
  ASSERT(pf_get(&f, DESC, &h1, &T1, &ans) == 0);
  ASSERT_EQ(T1, pl);
  ASSERT_STR(ans, "");
  pf_close(&f);
  /* the most generated tokens: prompt + answer (at most max_gen, fewer at <eos>) */
  tiny_model(&f, 96, 2);
  ASSERT(pf_init(&f, "where is the key ?", 0, -1, 8, 1) == 0);
  ASSERT(pf_get(&f, DESC, &h1, &T1, &ans) == 0);
  ASSERT(T1 > pl && T1 <= pl + 8);
  ASSERT_EQ(f.hits, 0);
  ASSERT_EQ(f.misses, 1);
  ASSERT(pf_get(&f, DESC, &h2, &T2, NULL) == 0); /* cached: the very same bytes */
  ASSERT(h1 == h2 && T1 == T2 && f.hits == 1);
  /* without the cache, recomputed: bit-identical */
  tiny_model(&g, 96, 2);
  ASSERT(pf_init(&g, "where is the key ?", 0, -1, 8, 0) == 0);
  ASSERT(pf_get(&g, "you 0 0 . key 1 1 .", &h2, &T2, NULL) == 0); /* another scene first */
  ASSERT(pf_get(&g, DESC, &h2, &T2, NULL) == 0);
  ASSERT(T1 == T2 && !memcmp(h1, h2, (size_t)T1 * 16 * sizeof *h1));
  /* the states are the final LayerNorm's of the whole sequence at those positions */
  int ids[96],
      n = nn_tok_encode(&g.tok, "you 2 3 . key 4 1 . ball 0 0 . box 3 3 .\nwhere is the key ?\n",
                        (size_t)dl + pl, ids, 96);
  ASSERT_EQ(n, dl + pl);
  const float *lnf = nn_gpt_hidden(&g.gpt, g.seq, 1, dl + T1); /* g.seq holds the last sequence */
  ASSERT(!memcmp(g.seq, ids, (size_t)n * sizeof *ids));
  ASSERT(!memcmp(lnf + (size_t)dl * 16, h1, (size_t)T1 * 16 * sizeof *h1));
  pf_close(&g);
  /* generic: the description's own states, no prompt, no answer */
  tiny_model(&g, 96, 2);
  ASSERT(pf_init(&g, "ignored", 1, -1, 8, 1) == 0);
  ASSERT(pf_get(&g, DESC, &h2, &T2, NULL) == 0);
  ASSERT_EQ(T2, dl);
  pf_close(&g);
  /* layer 1 of 2: the residual stream after block 1 */
  tiny_model(&k, 96, 2);
  ASSERT(pf_init(&k, "where is the key ?", 0, 1, 0, 1) == 0);
  ASSERT(pf_get(&k, DESC, &h2, &T2, NULL) == 0);
  ASSERT(!memcmp(h2, k.gpt.residual3 + (size_t)dl * 16, (size_t)T2 * 16 * sizeof *h2));
  pf_close(&k), pf_close(&f);
}

TEST(pr2l_features_bad_input) {
  pf_t f;
  const float *hs;
  int T;
  tiny_model(&f, 96, 2);
  ASSERT(pf_init(&f, "", 0, -1, 4, 1) == LATHE_ECONFIG); /* an empty prompt */
  pf_close(&f);
  tiny_model(&f, 96, 2);
  ASSERT(pf_init(&f, "where ?", 0, 3, 4, 1) == LATHE_ESHAPE); /* layer 3 of 2 */
  pf_close(&f);
  tiny_model(&f, 48, 1); /* description + prompt + answer beyond the context */
  ASSERT(pf_init(&f, "where is the key ?", 0, -1, 4, 1) == 0);
  ASSERT(pf_get(&f, DESC, &hs, &T, NULL) == LATHE_ESHAPE);
  ASSERT(f.count == 0);
  pf_close(&f);
}

/* CleanRL's PPO loss of minibatch ix, written out again from the forward. */
static double ppo_loss(pp_t *p, const int *ix, int mb) {
  int Tb = gather(p, ix, mb);
  ASSERT(forward(p, p->x, p->xlen, mb, Tb) == 0);
  double am = 0, as = 0, pg = 0, ent = 0, vl = 0;
  for (int k = 0; k < mb; k++) am += p->adv[ix[k]] / mb;
  for (int k = 0; k < mb; k++) as += pow(p->adv[ix[k]] - am, 2) / (mb - 1);
  as = sqrt(as);
  for (int k = 0; k < mb; k++) {
    int i = ix[k];
    const float *z = p->logits + (size_t)k * p->A;
    double m = -1e30, s = 0, H = 0;
    for (int a = 0; a < p->A; a++) m = fmax(m, z[a]);
    for (int a = 0; a < p->A; a++) s += exp(z[a] - m);
    for (int a = 0; a < p->A; a++) H -= exp(z[a] - m) / s * (z[a] - m - log(s));
    double lp = z[p->act[i]] - m - log(s), ratio = exp(lp - p->logp[i]);
    double adv = (p->adv[i] - am) / (as + 1e-8);
    pg += fmax(-adv * ratio, -adv * fmin(fmax(ratio, 1 - p->clip), 1 + p->clip)) / mb;
    ent += H / mb;
    double v = p->values[k], vc = p->val[i] + fmin(fmax(v - p->val[i], -p->clip), p->clip);
    vl += 0.5 * fmax(pow(v - p->ret[i], 2), pow(vc - p->ret[i], 2)) / mb;
  }
  return pg - p->ent * ent + p->vfc * vl;
}

TEST(pr2l_update_hand_batch) {
  pp_t p = {0};
  nn_rng_t r;
  nn_rng_seed(&r, 21);
  p.repr = R_RAW, p.A = PW_ACTIONS, p.D = 4, p.F = pw_onehot_size(2), p.Tcap = 1;
  p.clip = 0.2, p.ent = 0.01, p.vfc = 0.5, p.norm_adv = 1, p.clip_vloss = 1;
  int N = 6, ix[6] = {5, 0, 3, 1, 4, 2};
  ASSERT(nn_mlp_init(&p.enc, "enc", 1, (int[]){p.F, p.D}, NN_TANH, 0, &r) == 0);
  ASSERT(nn_mlp_init(&p.pi, "pi", 2, (int[]){p.D, 8, p.A}, NN_TANH, 0, &r) == 0);
  ASSERT(nn_mlp_init(&p.vf, "vf", 2, (int[]){p.D, 8, 1}, NN_TANH, 0, &r) == 0);
  p.feat = calloc((size_t)N * p.F, sizeof(float)), p.flen = calloc(N, sizeof(int));
  p.x = calloc((size_t)N * p.F, sizeof(float)), p.xlen = calloc(N, sizeof(int));
  p.act = calloc(N, sizeof(int)), p.logp = calloc(N, sizeof(float));
  p.val = calloc(N, sizeof(float)), p.adv = calloc(N, sizeof(float));
  p.ret = calloc(N, sizeof(float)), p.logits = calloc((size_t)N * p.A, sizeof(float));
  p.values = calloc(N, sizeof(float)), p.dz = calloc((size_t)N * p.D, sizeof(float));
  p.dlogits = calloc((size_t)N * p.A, sizeof(float)), p.dvalues = calloc(N, sizeof(float));
  /* scenes of a 2x2 grid; old log-probabilities and values off the current
   * ones (some ratios clipped, some value errors clipped) */
  for (int i = 0; i < N; i++) {
    pw_state_t s = {{2, 1, {(int8_t)(i % 2)}, {(int8_t)(i / 2 % 2)}, {0}}, i / 3, i % 2, 0};
    pw_onehot(&s, p.feat + (size_t)i * p.F);
    p.flen[i] = 1;
  }
  ASSERT(forward(&p, p.feat, p.flen, N, 1) == 0);
  for (int i = 0; i < N; i++) {
    p.act[i] = i % p.A;
    double lp = nn_categorical(p.logits + (size_t)i * p.A, p.A, p.act[i], 0, 0, NULL, NULL);
    p.logp[i] = (float)(lp + (i % 3 == 0 ? 0.4 : i % 3 == 1 ? -0.05 : -0.5));
    p.val[i] = p.values[i] + (i % 2 ? 0.5f : 0.05f);
    p.adv[i] = (float)(i - 2.5) * 0.7f, p.ret[i] = p.val[i] + p.adv[i];
  }
  stats_t st = {0};
  for (int k = 0; k < 3; k++) nn_params_zero_grad(param_set(&p, k));
  ASSERT(minibatch(&p, ix, N, &st) == 0);
  ASSERT_NEAR(st.pg - p.ent * st.h + p.vfc * st.v, ppo_loss(&p, ix, N), 1e-5);
  double worst = 0;
  for (int k = 0; k < 3; k++) {
    nn_params_t *ps = param_set(&p, k);
    for (size_t i = 0; i < ps->total; i++) {
      float keep = ps->w[i];
      ps->w[i] = keep + 1e-3f;
      double fp = ppo_loss(&p, ix, N);
      ps->w[i] = keep - 1e-3f;
      double fm = ppo_loss(&p, ix, N);
      ps->w[i] = keep;
      double fd = (fp - fm) / 2e-3, err = fabs(fd - ps->g[i]) / (1e-2 + fabs(fd));
      worst = err > worst ? err : worst;
    }
  }
  ASSERT(worst < 2e-2);
  nn_mlp_free(&p.enc), nn_mlp_free(&p.pi), nn_mlp_free(&p.vf);
  free(p.feat), free(p.flen), free(p.x), free(p.xlen), free(p.act), free(p.logp), free(p.val);
  free(p.adv), free(p.ret), free(p.logits), free(p.values), free(p.dz), free(p.dlogits);
  free(p.dvalues);
}
