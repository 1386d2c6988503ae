/* test_dqn_update.c - dqn's own update() on a hand-built batch, against a
 * loss and gradient computed independently: the TD targets from the target
 * network (or the online network's argmax under double_q), terminals
 * masking the bootstrap, the taken action's block, and the gradient of the
 * head's loss by central finite differences through the online network.
 * After one Adam step (m^ = g, v^ = g^2) each parameter with a clear
 * gradient must have moved by -lr * sign(g). dqn.c is included, so the test
 * runs the plugin's code itself, not a copy. */
#define lathe_plugin_entry dqn_code_entry /* dqn's code, included: this file is no plugin */
#include "../plugins/dqn/dqn.c"
#include "test.h"

enum { B = 4, O = 3, A = 2 };

static void make_dqn(dqn_t *d, nn_head_kind_t kind, int K, int double_q) {
  memset(d, 0, sizeof *d);
  d->nobs = O, d->nact = A, d->K = K, d->batch = B, d->double_q = double_q;
  d->gamma = 0.9f, d->lr = 1e-3f, d->opt = nn_adamw_default();
  ASSERT_EQ(nn_head_init(&d->head, kind, K, -5, 5, 0.75f), 0);
  nn_rng_t r;
  nn_rng_seed(&r, 13); /* a batch where double DQN and DQN pick differently */
  int w[3] = {O, 16, A * K};
  ASSERT_EQ(nn_mlp_init(&d->q, "q", 2, w, NN_RELU, 0, &r), 0);
  ASSERT_EQ(nn_mlp_init(&d->target, "q", 2, w, NN_RELU, 0, &r), 0); /* differs from q */
  ASSERT_EQ(nn_replay_init(&d->rb, B, O, 1, 0), 0);
  const float act[B] = {0, 1, 1, 0}, rew[B] = {1, -0.5f, 0.25f, 2};
  const int term[B] = {0, 1, 0, 0};
  for (int b = 0; b < B; b++) {
    float o[O], n[O];
    for (int k = 0; k < O; k++) o[k] = nn_rng_normal(&r), n[k] = nn_rng_normal(&r);
    nn_replay_add(&d->rb, o, &act[b], rew[b], n, term[b], 0);
  }
  d->x = calloc(B * O, sizeof(float)), d->xn = calloc(B * O, sizeof(float));
  d->y = calloc(B * K, sizeof(float)), d->g = calloc(B * K, sizeof(float));
  d->dout = calloc(B * A * K, sizeof(float)), d->probs = calloc(K, sizeof(float));
  nn_rng_seed(&d->rng, 5);
}

static void free_dqn(dqn_t *d) {
  nn_mlp_free(&d->q), nn_mlp_free(&d->target), nn_replay_free(&d->rb);
  free(d->x), free(d->xn), free(d->y), free(d->g), free(d->dout), free(d->probs);
}

static int argmax_of(const dqn_t *d, const float *row) {
  int best = 0;
  for (int a = 1; a < A; a++)
    if (nn_head_decode(&d->head, row + a * d->K) > nn_head_decode(&d->head, row + best * d->K))
      best = a;
  return best;
}

/* The head's loss of the online network's taken-action blocks on rows idx
 * against fixed targets tgt(B, K). */
static double loss_of(dqn_t *d, const int *idx, const float *tgt) {
  int K = d->K;
  float X[B * O], gath[B * 64], scratch[B * 64];
  for (int b = 0; b < B; b++) memcpy(X + b * O, d->rb.obs + idx[b] * O, sizeof(float) * O);
  const float *out = nn_mlp_forward(&d->q, X, B);
  for (int b = 0; b < B; b++)
    memcpy(gath + b * K, out + ((size_t)b * A + (size_t)d->rb.act[idx[b]]) * K, sizeof(float) * K);
  return nn_head_loss(&d->head, gath, tgt, B, scratch);
}

static void check_update(nn_head_kind_t kind, int K, int double_q) {
  dqn_t d;
  make_dqn(&d, kind, K, double_q);
  /* the rows update() will draw, and the targets, independently */
  nn_rng_t copy = d.rng;
  int idx[B];
  for (int b = 0; b < B; b++) idx[b] = (int)nn_rng_below(&copy, (uint32_t)d.rb.size);
  float XN[B * O], tgt[B * 64];
  double qmean = 0;
  for (int b = 0; b < B; b++) memcpy(XN + b * O, d.rb.next + idx[b] * O, sizeof(float) * O);
  int astar[B];
  const float *on = nn_mlp_forward(&d.q, XN, B);
  for (int b = 0; b < B; b++) astar[b] = argmax_of(&d, on + (size_t)b * A * K);
  const float *tn = nn_mlp_forward(&d.target, XN, B);
  int disagree = 0; /* rows where double DQN's choice differs from the target net's */
  for (int b = 0; b < B; b++) {
    const float *row = tn + (size_t)b * A * K;
    disagree += astar[b] != argmax_of(&d, row) && !d.rb.term[idx[b]];
    int a = double_q ? astar[b] : argmax_of(&d, row);
    float y = d.rb.rew[idx[b]] +
              (d.rb.term[idx[b]] ? 0.0f : d.gamma * nn_head_decode(&d.head, row + a * K));
    if (K == 1)
      tgt[b] = y;
    else
      nn_head_target(&d.head, y, tgt + b * K);
  }
  ASSERT(disagree > 0); /* so the batch tells double DQN from DQN */
  double L0 = loss_of(&d, idx, tgt);
  {
    float X[B * O];
    for (int b = 0; b < B; b++) memcpy(X + b * O, d.rb.obs + idx[b] * O, sizeof(float) * O);
    const float *out = nn_mlp_forward(&d.q, X, B);
    for (int b = 0; b < B; b++)
      qmean += nn_head_decode(&d.head, out + ((size_t)b * A + (size_t)d.rb.act[idx[b]]) * K) / B;
  }
  /* gradient by central differences */
  size_t n = d.q.params.total;
  float *w0 = malloc(n * sizeof(float));
  double *gfd = malloc(n * sizeof(double));
  memcpy(w0, d.q.params.w, n * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    const float h = 1e-3f;
    d.q.params.w[i] = w0[i] + h;
    double lp = loss_of(&d, idx, tgt);
    d.q.params.w[i] = w0[i] - h;
    double lm = loss_of(&d, idx, tgt);
    d.q.params.w[i] = w0[i];
    gfd[i] = (lp - lm) / (2.0 * h);
  }
  /* the plugin's update, once */
  float qm = 0;
  float loss = update(&d, &qm);
  ASSERT_NEAR(loss, L0, 1e-5 * (1 + fabs(L0)));
  ASSERT_NEAR(qm, qmean, 1e-5 * (1 + fabs(qmean)));
  int checked = 0;
  for (size_t i = 0; i < n; i++) {
    double moved = (double)d.q.params.w[i] - w0[i];
    if (fabs(gfd[i]) > 1e-3) {
      ASSERT_NEAR(moved, gfd[i] > 0 ? -d.lr : d.lr, 2e-5); /* Adam's first step: -lr sign(g) */
      checked++;
    }
  }
  ASSERT(checked > (int)n / 4);
  free(w0), free(gfd);
  free_dqn(&d);
}

TEST(dqn_update_mse_hand_built_batch) {
  check_update(NN_HEAD_MSE, 1, 0);
}

TEST(dqn_update_hl_gauss_double_q_hand_built_batch) {
  check_update(NN_HEAD_HL_GAUSS, 21, 1);
}
