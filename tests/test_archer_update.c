/* test_archer_update.c - the archer plugin's own updates (archer.c
 * included) on a hand-built replay buffer of three twentyq transitions: the
 * critic minibatch's loss against L_Q + L_V recomputed here from the
 * networks (head-matched TD targets through the target critic, V against
 * the target Q at the same freshly sampled utterances; squared errors, or
 * with critic_head hl_gauss the cross-entropy against each target's
 * HL-Gauss projection), its gradient against central finite differences in
 * every critic set, and the actor's
 * gradient against the finite differences of -mean A log pi(a^|s) with the
 * advantage from the current critic. */
#include "../plugins/archer/archer.c"
#include "test.h"

/* The sampling streams: p's, or set from a saved copy. */
typedef struct {
  nn_rng_t s[AR_SHARDS];
} streams_t;
static streams_t get_streams(const ar_t *p) {
  streams_t t;
  memcpy(t.s, p->srng, sizeof t.s);
  return t;
}
static void set_streams(ar_t *p, streams_t t) {
  memcpy(p->srng, t.s, sizeof t.s);
}

static void setup_head(ar_t *p, nn_head_kind_t kind) {
  memset(p, 0, sizeof *p);
  ASSERT(nn_head_init(&p->hd, kind, 11, -3, 1, 0.75f) == 0);
  nn_rng_t r;
  nn_rng_seed(&r, 5);
  ASSERT(nn_tok_init_bytes(&p->tok) == 0);
  ASSERT(nn_gpt_init(&p->pol, (nn_gpt_config_t){p->tok.vocab, 64, 1, 2, 16}, &r) == 0);
  p->C = 8, p->B = 3, p->E = 3, p->max_new = 6, p->gamma = 0.95, p->cap = 8;
  nn_gpt_config_t ec = {p->tok.vocab, 64, 1, 4, p->C};
  ASSERT(critic_init(&p->cr, ec, p->hd.bins, &r) == 0);
  ASSERT(critic_init(&p->tg, ec, p->hd.bins, &r) == 0); /* a target unlike the critic */
  p->rb = calloc(8, sizeof *p->rb);
  p->ids = malloc(6 * 64 * sizeof *p->ids), p->len = malloc(6 * sizeof *p->len);
  p->out = malloc(6 * 6 * sizeof *p->out), p->olen = malloc(6 * sizeof *p->olen);
  p->lp = malloc(3 * sizeof *p->lp), p->dlp = malloc(3 * sizeof *p->dlp);
  ASSERT(push(p, "Questions:\n", "ask a0 1 ?", -1, "Questions:\nask a0 1 ? yes\n", 0, 0, 1) == 0);
  ASSERT(push(p, "Questions:\nask a0 1 ? yes\n", "guess o1 .", 0,
              "Questions:\nask a0 1 ? yes\nguess o1 . yes\n", 1, 0, 0) == 0);
  ASSERT(push(p, "Questions:\n", "hello", -1, "Questions:\nhello invalid\n", 0, 1, 1) == 0);
  nn_rng_seed(&p->rng, 17);
  for (int s = 0; s < AR_SHARDS; s++) nn_rng_seed(&p->srng[s], 17 + (uint64_t)s);
}

static void setup(ar_t *p) {
  setup_head(p, NN_HEAD_MSE);
}

static void teardown(ar_t *p) {
  for (int64_t i = 0; i < p->cap; i++) tr_free(&p->rb[i]);
  free(p->rb), nn_tok_free(&p->tok), nn_gpt_free(&p->pol), critic_free(&p->cr);
  critic_free(&p->tg);
  free(p->ids), free(p->len), free(p->out), free(p->olen), free(p->lp), free(p->dlp);
}

static const int64_t IX[3] = {0, 1, 2};

/* L_Q + L_V written out, with the sampled utterances drawn from rng0 as the
 * plugin draws them (the y targets first, then a^) */
static double critic_loss(ar_t *p, streams_t rng0) {
  int B = 3, C = p->C, K = p->hd.bins;
  float e[6 * 8], cat[3 * 16], vb1[3], vb2[3], z1[3], z2[3], q1[3], q2[3], v1[3], v2[3];
  char *txt[6], *ah[3] = {0};
  for (int i = 0; i < B; i++) txt[i] = p->rb[i].s2;
  ASSERT(enc_forward(p, &p->tg.enc, txt, B, e) == 0);
  heads(&p->hd, &p->tg, e, e, B, C, NULL, NULL, vb1, vb2, cat);
  for (int i = 0; i < B; i++) txt[i] = p->rb[i].s;
  set_streams(p, rng0);
  ASSERT(act(p, txt, B, 0, ah) == 0);
  for (int i = 0; i < B; i++) txt[B + i] = ah[i];
  ASSERT(enc_forward(p, &p->tg.enc, txt, 2 * B, e) == 0);
  heads(&p->hd, &p->tg, e, e + B * C, B, C, z1, z2, NULL, NULL, cat);
  for (int i = 0; i < B; i++) txt[B + i] = p->rb[i].a;
  ASSERT(enc_forward(p, &p->cr.enc, txt, 2 * B, e) == 0);
  heads(&p->hd, &p->cr, e, e + B * C, B, C, q1, q2, v1, v2, cat);
  double L = 0;
  for (int i = 0; i < B; i++) {
    double y1 = p->rb[i].r + (p->rb[i].d ? 0 : p->gamma * vb1[i]);
    double y2 = p->rb[i].r + (p->rb[i].d ? 0 : p->gamma * vb2[i]);
    if (K == 1)
      L += (pow(q1[i] - y1, 2) + pow(q2[i] - y2, 2) + pow(v1[i] - z1[i], 2) +
            pow(v2[i] - z2[i], 2)) /
           B;
    else { /* -sum_j target_j log softmax_j of each head's logits */
      double y[4] = {y1, y2, z1[i], z2[i]};
      for (int k = 0; k < 4; k++) {
        const float *o = p->cr.raw[k] + (size_t)i * K;
        float t[16];
        double mx = o[0], z = 0;
        nn_head_target(&p->hd, (float)y[k], t);
        for (int j = 1; j < K; j++) mx = fmax(mx, o[j]);
        for (int j = 0; j < K; j++) z += exp(o[j] - mx);
        for (int j = 0; j < K; j++) L -= t[j] * (o[j] - mx - log(z)) / B;
      }
    }
    free(ah[i]);
  }
  return L;
}

static void critic_update_check(nn_head_kind_t kind) {
  ar_t p;
  setup_head(&p, kind);
  streams_t rng0 = get_streams(&p);
  for (int k = 0; k < 5; k++) nn_params_zero_grad(cset(&p.cr, k));
  double loss = 0;
  ASSERT(critic_batch(&p, IX, 3, &loss) == 0);
  ASSERT_NEAR(loss, critic_loss(&p, rng0), 1e-5);
  double worst = 0;
  int checked = 0, kinks = 0;
  for (int k = 0; k < 5; k++) {
    nn_params_t *ps = cset(&p.cr, k);
    for (size_t i = 0; i < ps->total; i += ps->total / 23 + 1) {
      float keep = ps->w[i];
      double fd[2];
      for (int t = 0; t < 2; t++) { /* central differences at steps 1e-3 and 5e-4 */
        float hh = t ? 5e-4f : 1e-3f;
        ps->w[i] = keep + hh;
        double fp = critic_loss(&p, rng0);
        ps->w[i] = keep - hh;
        fd[t] = (fp - critic_loss(&p, rng0)) / (2.0 * hh);
        ps->w[i] = keep;
      }
      /* a ReLU kink within the step: the two estimates disagree; skipped, counted */
      if (fabs(fd[0] - fd[1]) > 1e-2 * (1e-2 + fabs(fd[1]))) {
        kinks++;
        continue;
      }
      double err = fabs(fd[1] - ps->g[i]) / (1e-2 + fabs(fd[1]));
      worst = err > worst ? err : worst, checked++;
    }
  }
  ASSERT(kinks * 10 < checked);
  ASSERT(checked > 50);
  ASSERT(worst < 3e-2);
  teardown(&p);
}

TEST(archer_critic_update_hand_batch) {
  critic_update_check(NN_HEAD_MSE);
}

TEST(archer_critic_update_hl_gauss_hand_batch) {
  critic_update_check(NN_HEAD_HL_GAUSS);
}

/* -mean A log pi(a^|s) with the utterances and advantages fixed */
static double actor_loss(ar_t *p, const int *tok, const float *mask, const double *A, int T) {
  float lp[3];
  nn_gpt_logprobs(&p->pol, lp, tok, mask, 3, T);
  return -(A[0] * lp[0] + A[1] * lp[1] + A[2] * lp[2]) / 3;
}

TEST(archer_actor_update_hand_batch) {
  ar_t p;
  setup(&p);
  streams_t rng0 = get_streams(&p);
  nn_params_zero_grad(&p.pol.params);
  double adv = 0;
  ASSERT(actor_batch(&p, IX, 3, &adv) == 0);
  /* the same utterances again from the same stream, and A from the critic */
  set_streams(&p, rng0);
  char *txt[6], *ah[3] = {0};
  for (int i = 0; i < 3; i++) txt[i] = p.rb[i].s;
  ASSERT(act(&p, txt, 3, 0, ah) == 0);
  int T = 1, tok[3 * 64] = {0};
  float mask[3 * 64] = {0};
  for (int i = 0; i < 3; i++) T = p.len[i] + p.olen[i] > T ? p.len[i] + p.olen[i] : T;
  for (int i = 0; i < 3; i++)
    for (int t = 0; t < p.len[i] + p.olen[i]; t++) {
      tok[i * T + t] = t < p.len[i] ? p.ids[i * 64 + t] : p.out[i * 6 + t - p.len[i]];
      mask[i * T + t] = t >= p.len[i];
    }
  float e[6 * 8], cat[3 * 16], q1[3], q2[3], v1[3], v2[3];
  for (int i = 0; i < 3; i++) txt[3 + i] = ah[i];
  ASSERT(enc_forward(&p, &p.cr.enc, txt, 6, e) == 0);
  heads(&p.hd, &p.cr, e, e + 3 * 8, 3, 8, q1, q2, v1, v2, cat);
  double A[3], mean = 0;
  for (int i = 0; i < 3; i++) A[i] = fmin(q1[i], q2[i]) - fmin(v1[i], v2[i]), mean += A[i] / 3;
  ASSERT_NEAR(adv, mean, 1e-6);
  double worst = 0;
  nn_params_t *ps = &p.pol.params;
  for (size_t i = 0; i < ps->total; i += ps->total / 61 + 1) {
    float keep = ps->w[i];
    ps->w[i] = keep + 1e-2f;
    double fp = actor_loss(&p, tok, mask, A, T);
    ps->w[i] = keep - 1e-2f;
    double fm = actor_loss(&p, tok, mask, A, T);
    ps->w[i] = keep;
    double fd = (fp - fm) / 2e-2, err = fabs(fd - ps->g[i]) / (1e-3 + fabs(fd));
    worst = err > worst ? err : worst;
  }
  ASSERT(worst < 3e-2);
  for (int i = 0; i < 3; i++) free(ah[i]);
  teardown(&p);
}

TEST(archer_filtered_bc_hand_batch) {
  ar_t p;
  setup(&p);
  p.pct = 90, p.max_new = 16; /* room for the whole utterance and its <eos> */
  /* trajectory returns: 0 and 1 from setup (G 0), then -5, -3, -10, -1 */
  double G[4] = {-5, -3, -10, -1};
  for (int k = 0; k < 4; k++) {
    ASSERT(push(&p, "Questions:\n", "ask a1 0 ?", -1, "Questions:\nask a1 0 ? no\n", 0, 2 + k, 1) ==
           0);
    p.rb[p.head ? p.head - 1 : p.cap - 1].G = (float)G[k];
  }
  p.rb[0].G = p.rb[1].G = -20, p.rb[2].G = -20; /* setup's trajectories: 0 and 1 */
  int64_t idx[8], n;
  double thr;
  ASSERT(eligible(&p, idx, &n, &thr) == 0);
  /* returns -20 -20 -10 -5 -3 -1: numpy's 90th percentile at 4.5, -3 + 0.5 (-1 + 3) = -2 */
  ASSERT_NEAR(thr, -2.0, 1e-9);
  ASSERT_EQ(n, 1);
  ASSERT_EQ(idx[0], 6);
  /* the minibatch's loss is -mean log pi(a|s) of the utterance and its <eos> */
  int64_t ix[2] = {6, 3};
  double loss = 0;
  nn_params_zero_grad(&p.pol.params);
  ASSERT(bc_batch(&p, ix, 2, &loss) == 0);
  double want = 0;
  for (int i = 0; i < 2; i++) {
    int ids[64], m = nn_tok_encode(&p.tok, p.rb[ix[i]].s, strlen(p.rb[ix[i]].s), ids, 64);
    int k = nn_tok_encode(&p.tok, p.rb[ix[i]].a, strlen(p.rb[ix[i]].a), ids + m, 64 - m);
    ids[m + k] = NN_TOK_EOS;
    float lp[64];
    ASSERT(nn_gpt_token_logprobs(&p.pol, ids, 1, m + k + 1, lp) == 0);
    for (int t = m; t <= m + k; t++) want -= lp[t] / 2;
  }
  ASSERT_NEAR(loss, want, 1e-4);
  teardown(&p);
}

/* ppo: a hand-built rollout of two trajectories (2 turns, then 1) */
static void ppo_rollout(ar_t *p) {
  const char *s[3] = {"Questions:\n", "Questions:\nask a0 1 ? yes\n", "Questions:\n"};
  const char *a[3] = {"ask a0 1 ?", "guess o1 .", "hi"};
  float r[3] = {-1, 0, -1};
  int last[3] = {0, 1, 1};
  p->ro = calloc(3, sizeof *p->ro), p->nro = 3;
  for (int k = 0; k < 3; k++) {
    ro_t *u = &p->ro[k];
    u->ids = malloc(64 * sizeof *u->ids);
    u->plen = nn_tok_encode(&p->tok, s[k], strlen(s[k]), u->ids, 64);
    u->olen = nn_tok_encode(&p->tok, a[k], strlen(a[k]), u->ids + u->plen, 64 - u->plen);
    u->ids[u->plen + u->olen++] = NN_TOK_EOS;
    u->r = r[k], u->last = last[k];
  }
  p->lam = 0.9, p->ppo_clip = 0.2, p->vf = 0.5;
  nn_rng_t rr;
  nn_rng_seed(&rr, 3);
  ASSERT(nn_mlp_init(&p->vh, "vh", 2, (int[]){p->C, p->C, 1}, NN_TANH, 0, &rr) == 0);
}

/* the PPO loss of utterances ix written out: token-mean clipped objective
 * with the minibatch's normalised advantages, plus vf times the halved
 * clipped value error */
static double ppo_loss(ar_t *p, const int *ix, int n) {
  int T, tot = 0;
  int *tok = ro_batch(p, ix, n, &T);
  float lp[3 * 64], v[64];
  ASSERT(nn_gpt_token_logprobs(&p->pol, tok, n, T, lp) == 0);
  ASSERT(ro_values(p, ix, n, tok, T, v) == 0);
  double am = 0, as = 0, L = 0;
  for (int i = 0; i < n; i++) tot += p->ro[ix[i]].olen;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p->ro[ix[i]].olen; j++) am += p->ro[ix[i]].adv[j] / tot;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < p->ro[ix[i]].olen; j++) as += pow(p->ro[ix[i]].adv[j] - am, 2) / (tot - 1);
  as = sqrt(as);
  for (int i = 0, r = 0; i < n; i++) {
    const ro_t *u = &p->ro[ix[i]];
    for (int j = 0; j < u->olen; j++, r++) {
      double A = (u->adv[j] - am) / (as + 1e-8), rho = exp(lp[i * T + u->plen + j] - u->lp[j]);
      L += fmax(-A * rho, -A * fmin(fmax(rho, 0.8), 1.2)) / tot;
      double vc = u->v[j] + fmin(fmax(v[r] - u->v[j], -0.2), 0.2);
      L += 0.5 * 0.5 * fmax(pow(v[r] - u->ret[j], 2), pow(vc - u->ret[j], 2)) / tot;
    }
  }
  free(tok);
  return L;
}

TEST(archer_ppo_gae_and_update_hand_batch) {
  ar_t p;
  setup(&p);
  ppo_rollout(&p);
  ASSERT(ppo_prepare(&p) == 0);
  /* GAE by hand over the tokens: discount 1 inside an utterance, gamma
   * between turns, nothing after a trajectory's last turn */
  double last = 0, vnext = 0;
  for (int k = 2; k >= 0; k--) {
    ro_t *u = &p.ro[k];
    if (u->last) last = 0, vnext = 0;
    for (int j = u->olen - 1; j >= 0; j--) {
      double g = j < u->olen - 1 ? 1.0 : u->last ? 0.0 : 0.95, r = j == u->olen - 1 ? u->r : 0;
      last = r + g * vnext - u->v[j] + g * 0.9 * last, vnext = u->v[j];
      ASSERT_NEAR(u->adv[j], last, 1e-5);
      ASSERT_NEAR(u->ret[j], last + u->v[j], 1e-5);
    }
  }
  /* old log-probabilities off the current ones: some ratios clipped */
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < p.ro[k].olen; j++) p.ro[k].lp[j] += (j % 3 - 1) * 0.3f;
  int ix[3] = {2, 0, 1};
  double pl = 0, vl = 0;
  nn_params_zero_grad(&p.pol.params), nn_params_zero_grad(&p.cr.enc.params);
  nn_params_zero_grad(&p.vh.params);
  ASSERT(ppo_batch(&p, ix, 3, &pl, &vl) == 0);
  ASSERT_NEAR(pl + 0.5 * vl, ppo_loss(&p, ix, 3), 1e-5);
  nn_params_t *sets[3] = {&p.pol.params, &p.cr.enc.params, &p.vh.params};
  double worst = 0;
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < sets[k]->total; i += sets[k]->total / 29 + 1) {
      float keep = sets[k]->w[i];
      sets[k]->w[i] = keep + 3e-3f;
      double fp = ppo_loss(&p, ix, 3);
      sets[k]->w[i] = keep - 3e-3f;
      double fm = ppo_loss(&p, ix, 3);
      sets[k]->w[i] = keep;
      double fd = (fp - fm) / 6e-3, err = fabs(fd - sets[k]->g[i]) / (1e-2 + fabs(fd));
      worst = err > worst ? err : worst;
    }
  ASSERT(worst < 3e-2);
  ro_clear(&p), nn_mlp_free(&p.vh);
  teardown(&p);
}
