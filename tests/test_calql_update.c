/* test_calql_update.c - calql's own update() (calql.c included, so the
 * plugin's code runs) on a hand-built online buffer: each critic's loss (the
 * TD error on the data rows plus alpha_cql times the mean per-state CQL
 * difference, with Cal-QL's bound from the stored returns-to-go) is computed
 * here again from the rows the update used, through the critic as it was
 * before the step, and compared with what the update reports; the TD targets
 * are recomputed from the target critics and the sampled next actions; the
 * gradient by central differences must match the direction each parameter
 * moved (Adam's first step: -lr sign(g)). */
#define lathe_plugin_entry calql_code_entry /* calql's code, included: this file is no plugin */
#include "../plugins/calql/calql.c"
#include "../lua/l_lathe.h"
#include "../workbench/runimpl.h" /* a context as the host makes one, and freeing its children */
#include "test.h"

typedef struct {
  lathe_cfg_t cfg;
  struct lathe_ctx ctx;
  sac_t *s;
} inst_t;

static void make_inst(inst_t *in, int cal, double G) {
  static const char *kv[][2] = {{"env", "pendulum"},      {"offline_steps", "0"},
                                {"online_steps", "1000"}, {"batch_size", "4"},
                                {"n_actions", "3"},       {"policy_arch", "8-8"},
                                {"qf_arch", "8-8"},       {"replay_buffer_size", "8"}};
  memset(in, 0, sizeof *in);
  ASSERT_EQ(lathe_declare_builtins(), 0); /* the pendulum environment */
  ASSERT_EQ(lathe_cfg_init(&in->cfg, "calql", cql_opts, NULL), 0);
  for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
    ASSERT_EQ(lathe_cfg_set(&in->cfg, kv[i][0], kv[i][1]), 0);
  in->ctx.cfg = &in->cfg;
  void *self = NULL;
  ASSERT_EQ((cal ? create_calql : create_cql)(lathe_host(), &in->ctx, &self), 0);
  in->s = self;
  nn_rng_t r;
  nn_rng_seed(&r, 3);
  for (int k = 0; k < 8; k++) { /* transitions with returns-to-go G (the bound) */
    float o[3], a[1] = {2.0f * nn_rng_uniform(&r) - 1.0f}, n[3];
    for (int j = 0; j < 3; j++) o[j] = nn_rng_normal(&r), n[j] = nn_rng_normal(&r);
    nn_replay_add(&in->s->on, o, a, nn_rng_normal(&r), n, k % 2, (float)G);
  }
}

static void free_inst(inst_t *in) {
  destroy(in->s);
  run_free_kids(&in->ctx);
  lathe_cfg_free(&in->cfg);
}

/* Critic i's loss on the rows xq with targets y, as the spec writes it:
 * TD + alpha_cql alpha' (gap - tau_gap), alpha' = exp(log alpha') under the
 * Lagrange form (the default; log alpha' as the update found it), else 1. */
static double critic_loss(sac_t *s, int i, double log_alpha_p, double *gap_out) {
  int B = s->B, N = s->N, R = B * (1 + 3 * N);
  const float *v = nn_mlp_forward(&s->q[i], s->xq, R);
  double td = 0, gap = 0;
  for (int b = 0; b < B; b++) td += (v[b] - s->y[b]) * (v[b] - s->y[b]) / B;
  for (int b = 0; b < B; b++) {
    float gr[8], gc[8], gn[8], gd;
    nn_cql_in_t in = {v + B + (size_t)b * N,
                      v + B + (size_t)(B + b) * N,
                      s->lp_c + b * N,
                      v + B + (size_t)(2 * B + b) * N,
                      s->lp_n + b * N,
                      v[b],
                      s->calql ? s->bG[b] : -INFINITY,
                      N,
                      s->A,
                      s->importance,
                      s->temp};
    gap += nn_cql_diff(&in, gr, gc, gn, &gd, NULL) / B;
  }
  *gap_out = gap;
  double ap = s->lagrange ? exp(log_alpha_p) : 1;
  return td + s->alpha_cql * ap * (gap - (s->lagrange ? s->gap_target : 0));
}

/* The TD targets the update used, again: r + gamma (1 - d) max_k min_i
 * Qbar_i(s', a'_k) (minus alpha log pi with backup_entropy), through the
 * target critics as they were before the step (Polyak moves them after). */
static void check_targets(sac_t *s, float *const tq0[2], double alpha) {
  int B = s->B, O = s->O, A = s->A, Nt = s->max_backup ? s->N : 1, terminal = 0;
  float *x = malloc(sizeof(float) * B * Nt * (O + A)), *qmin = malloc(sizeof(float) * B * Nt);
  size_t n = s->tq[0].params.total;
  for (int b = 0; b < B; b++)
    for (int k = 0; k < Nt; k++) {
      memcpy(x + (b * Nt + k) * (O + A), s->bn + b * O, sizeof(float) * O);
      memcpy(x + (b * Nt + k) * (O + A) + O, s->a_t + (b * Nt + k) * A, sizeof(float) * A);
    }
  for (int i = 0; i < 2; i++) {
    float *keep = malloc(n * sizeof(float));
    memcpy(keep, s->tq[i].params.w, n * sizeof(float));
    memcpy(s->tq[i].params.w, tq0[i], n * sizeof(float));
    const float *q = nn_mlp_forward(&s->tq[i], x, B * Nt);
    for (int r = 0; r < B * Nt; r++) qmin[r] = i == 0 || q[r] < qmin[r] ? q[r] : qmin[r];
    memcpy(s->tq[i].params.w, keep, n * sizeof(float));
    free(keep);
  }
  for (int b = 0; b < B; b++) {
    int best = 0;
    for (int k = 1; k < Nt; k++) best = qmin[b * Nt + k] > qmin[b * Nt + best] ? k : best;
    double v = qmin[b * Nt + best] - (s->backup_entropy ? alpha * s->lp_t[b * Nt + best] : 0);
    terminal += s->bd[b] != 0;
    ASSERT_NEAR(s->y[b], s->br[b] + (s->bd[b] ? 0 : s->gamma * v), 1e-5);
  }
  ASSERT(terminal > 0 && terminal < B); /* the batch holds both kinds of transition */
  free(x), free(qmin);
}

static void check_critics(int cal, double G) {
  inst_t in;
  make_inst(&in, cal, G);
  sac_t *s = in.s;
  size_t n = s->q[0].params.total;
  float *w0[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  for (int i = 0; i < 2; i++) memcpy(w0[i], s->q[i].params.w, n * sizeof(float));
  double lap = s->lap.w[0];
  double alpha = (s->auto_alpha ? exp(s->la.w[0]) : 1) * s->alpha_mult;
  float *tq0[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  for (int i = 0; i < 2; i++) memcpy(tq0[i], s->tq[i].params.w, n * sizeof(float));
  ASSERT(s->lagrange); /* the default: alpha' tuned toward the target gap */
  ASSERT_EQ(update(s), 0);
  check_targets(s, tq0, alpha);
  free(tq0[0]), free(tq0[1]);
  int checked = 0;
  for (int i = 0; i < 2; i++) {
    float *w1 = malloc(n * sizeof(float));
    memcpy(w1, s->q[i].params.w, n * sizeof(float));
    memcpy(s->q[i].params.w, w0[i], n * sizeof(float)); /* the critic the update started from */
    double gap, L = critic_loss(s, i, lap, &gap);
    ASSERT_NEAR(s->acc.qf_loss[i], L, 1e-4 * (1 + fabs(L)));
    for (size_t k = 0; k < n; k++) {
      const float h = 1e-3f;
      s->q[i].params.w[k] = w0[i][k] + h;
      double lp = critic_loss(s, i, lap, &gap);
      s->q[i].params.w[k] = w0[i][k] - h;
      double lm = critic_loss(s, i, lap, &gap);
      s->q[i].params.w[k] = w0[i][k];
      double g = (lp - lm) / (2.0 * h);
      if (fabs(g) > 1e-3) {
        ASSERT_NEAR((double)w1[k] - w0[i][k], g > 0 ? -s->qopt.lr : s->qopt.lr, 1e-6);
        checked++;
      }
    }
    free(w1);
  }
  ASSERT(checked > (int)(2 * n) / 4); /* measured: 108 and 116 of 242 */
  free(w0[0]), free(w0[1]);
  free_inst(&in);
}

TEST(cql_critic_update_hand_built_buffer) {
  check_critics(0, 0);
}

/* returns-to-go above every Q: Cal-QL's bound replaces the policy actions' values */
TEST(calql_critic_update_bound_active) {
  check_critics(1, 50);
}
