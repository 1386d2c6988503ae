/* test_pref_update.c - the pref plugin's own group_sums() and group_mean() (pref.c and
 * pairs.c included, so the plugin's code runs, not a copy) on a hand-built
 * group of four sampled responses: the all-pairs DPO loss against
 * specs/onpolicy_pref.md's vector, best-versus-worst and the reward gap
 * against -log sigmoid(beta (Delta_w - Delta_l)) computed here, and the
 * per-token weights against central finite differences of the loss. */
#define lathe_plugin_entry pref_code_entry /* pref's code, included: this file is no plugin */
#include "../plugins/pref/pref.c"
#include "../plugins/pref/pairs.c"
#include "test.h"

enum { N = 4, T = 3, V = 2 };
static const double rew[N] = {0.1, 0.7, 0.4, 0.9}, delta[N] = {0.2, -0.1, 0, 0.3};

typedef struct {
  pref_t p;
  set_t s;
  int tok[N * T], rlen[N];
  float mask[N * T], ref_tok[N * T], old_tok[N * T], lpt[N * T], w[N * T], logits[N * T * V];
  double reward[N];
} group_t;

/* One group: prompt token then two response tokens; log pi of a response is
 * delta_i - 1 and log pi_ref is -1, so each log-ratio is delta_i. */
static void make_group(group_t *g, int all_pairs, double gap, int neg) {
  memset(g, 0, sizeof *g);
  g->p.T = T, g->p.V = V, g->p.method = NN_PREF_DPO, g->p.all_pairs = all_pairs, g->p.gap = gap;
  g->p.neg = neg, g->p.pref = (nn_pref_t){NN_PREF_DPO, 0.1, 0, 0};
  g->p.pol.logits = g->logits; /* mean_logit reads the last forward's logits: zeros here */
  g->s = (set_t){N, N, T, g->tok, g->rlen, g->mask, g->reward, g->ref_tok, g->old_tok};
  for (int i = 0; i < N; i++) {
    g->reward[i] = rew[i], g->rlen[i] = 2;
    g->mask[i * T + 1] = g->mask[i * T + 2] = 1;
    g->lpt[i * T + 1] = (float)(delta[i] - 0.75), g->lpt[i * T + 2] = -0.25f;
    g->ref_tok[i * T + 1] = -0.5f, g->ref_tok[i * T + 2] = -0.5f;
  }
}

/* The plugin's loss of the group: its sums, then their mean. */
static void group_losses(pref_t *p, const set_t *s, const int *gidx, int G, const float *lpt,
                         float *w, stats_t *st) {
  double denom;
  group_sums(p, s, gidx, G, lpt, w, st, &denom);
  group_mean(p, st, denom, w, (size_t)G * s->n);
}

static double loss_of(group_t *g) {
  stats_t st;
  int gidx = 0;
  group_losses(&g->p, &g->s, &gidx, 1, g->lpt, g->w, &st);
  return st.loss;
}

static double nlsig(double x) { /* -log sigmoid(x) */
  return log1p(exp(-x));
}

/* The weights are d loss / d log pi(token): central differences through group_losses. */
static void check_weights(group_t *g) {
  double L = loss_of(g);
  float w[N * T];
  memcpy(w, g->w, sizeof w);
  for (int k = 0; k < N * T; k++) {
    if (!g->mask[k]) {
      ASSERT_NEAR(w[k], 0, 0);
      continue;
    }
    float keep = g->lpt[k];
    g->lpt[k] = keep + 1e-3f;
    double lp = loss_of(g);
    g->lpt[k] = keep - 1e-3f;
    double lm = loss_of(g);
    g->lpt[k] = keep;
    ASSERT_NEAR(w[k], (lp - lm) / 2e-3, 1e-4);
  }
  ASSERT_NEAR(loss_of(g), L, 0);
}

TEST(pref_group_losses_all_pairs_vector) {
  group_t g;
  make_group(&g, 1, 0, 1);
  ASSERT_NEAR(loss_of(&g), 0.691564, 1e-6); /* specs/onpolicy_pref.md: 6 ordered pairs */
  check_weights(&g);
}

TEST(pref_group_losses_best_worst_and_gap) {
  group_t g;
  make_group(&g, 0, 0, 1); /* best 0.9 (delta 0.3) over worst 0.1 (delta 0.2) */
  ASSERT_NEAR(loss_of(&g), nlsig(0.1 * (0.3 - 0.2)), 1e-6);
  check_weights(&g);
  make_group(&g, 1, 0.35, 1); /* only reward gaps above 0.35: (1,0), (3,0), (3,2) */
  double want = (nlsig(0.1 * (-0.1 - 0.2)) + nlsig(0.1 * (0.3 - 0.2)) + nlsig(0.1 * (0.3 - 0))) / 3;
  ASSERT_NEAR(loss_of(&g), want, 1e-6);
  check_weights(&g);
}

TEST(pref_group_losses_without_negative_gradient) {
  group_t g;
  make_group(&g, 0, 0, 0); /* negative_gradient = false: the worst response gets no push-down */
  loss_of(&g);
  ASSERT(g.w[3 * T + 1] < 0);        /* the best is pulled up (weight on d loss / d logp) */
  ASSERT_NEAR(g.w[0 * T + 1], 0, 0); /* the worst: nothing */
}

/* pairs.c's pair_losses on a hand-built batch of four stored pairs: the
 * weights of each shard's pairs, divided by the whole batch's count as a
 * data-parallel step divides them, are the whole batch's, and the shards'
 * loss and statistics add up to the batch's. */
TEST(pref_pairs_shards_sum_to_the_batch) {
  enum { G = 4 };
  struct pairs d;
  pair_t q[G];
  pref_t p;
  memset(&d, 0, sizeof d), memset(q, 0, sizeof q), memset(&p, 0, sizeof p);
  p.pairs = &d, d.p = q, p.neg = 1, p.method = NN_PREF_DPO;
  p.pref = (nn_pref_t){NN_PREF_DPO, 0.1, 0, 0};
  int idx[G] = {0, 1, 2, 3};
  float lp[2 * G], dlp[2 * G], part[2 * G];
  for (int g = 0; g < G; g++) {
    q[g].len[0] = 5 + g, q[g].plen[0] = 2, q[g].len[1] = 4, q[g].plen[1] = 2;
    q[g].ref[0] = -3 - 0.5 * g, q[g].ref[1] = -2.5 + 0.3 * g;
    lp[g] = (float)(-2.8 - 0.4 * g), lp[G + g] = (float)(-2.9 + 0.2 * g);
  }
  pstats_t whole = {0}, sum = {0};
  pair_losses(&p, idx, G, G, lp, dlp, &whole);
  for (int k = 0; k < 2; k++) { /* shard k: pairs 2k, 2k+1, stacked as its own batch */
    float lk[4] = {lp[2 * k], lp[2 * k + 1], lp[G + 2 * k], lp[G + 2 * k + 1]};
    pair_losses(&p, idx + 2 * k, 2, G, lk, part, &sum);
    for (int j = 0; j < 2; j++) {
      ASSERT_NEAR(part[j], dlp[2 * k + j], 0);
      ASSERT_NEAR(part[2 + j], dlp[G + 2 * k + j], 0);
    }
  }
  ASSERT_NEAR(sum.loss, whole.loss, 1e-12);
  ASSERT_NEAR(sum.ps.margins, whole.ps.margins, 1e-12);
  ASSERT_NEAR(sum.ps.accuracies, whole.ps.accuracies, 0);
  ASSERT_EQ(sum.ps.pairs, whole.ps.pairs);
}
