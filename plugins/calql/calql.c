/* calql.c - soft actor-critic, CQL and Cal-QL: one implementation, three
 * plugins (the design spec calql.md; official code nakamotoo/Cal-QL JaxCQL).
 *
 *   sac     tanh-Gaussian actor, twin critics with Polyak targets, automatic
 *           temperature; by default Haarnoja et al.'s entropy backup, or the
 *           max-backup over N sampled next actions (cql and calql's default);
 *   cql     + the conservative term: T logsumexp over uniform, current-policy
 *           and next-policy actions (all scored at s), minus Q(s, a_data),
 *           fixed weight or Lagrange form;
 *   calql   + Cal-QL's bound: policy-action values count as at least the
 *           transition's Monte-Carlo return-to-go G.
 *
 * A run has two phases: offline pre-training on a transitions dataset from
 * the store (offline_steps gradient steps), then online fine-tuning in the
 * environment (online_steps environment steps). Online, as the official
 * code does, each trajectory is rolled out with the stochastic policy, gets
 * its G by the same rules as the data (so calibration stays on), enters the
 * online buffer, and is followed by len(trajectory) x online_utd_ratio
 * gradient steps on batches mixing offline and online samples. Host steps
 * are gradient steps offline and environment steps online; the metric
 * "phase" (0, 1) and a log line mark the boundary.
 *
 * One gradient step computes every loss from the same parameters, then steps
 * the temperature, the actor, the critics (and alpha' for Lagrange CQL), then
 * Polyak-averages the targets. Critic heads: mse (the papers') or any
 * categorical head of the value-learning slice (hl_gauss...): decoded values
 * feed the actor, the targets and the CQL term; the TD loss is then the
 * cross-entropy against the transformed target. The CQL term stays in value
 * units while the cross-entropy is in nats, so a categorical head needs a far
 * smaller cql_min_q_weight (measured: 0.01 keeps Q at the Monte-Carlo returns
 * with a 700-wide support of 101 bins; 0.1 already lifts it above them).
 *
 * The checkpoint holds every network with its Adam moments, the temperature
 * and alpha', the online buffer and the trajectory being collected, both
 * environments, the RNG, counters and metric accumulators. The offline
 * dataset is re-read from the store (datasets are immutable).
 */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/lathe.h"
#include "../../workbench/nn/nn.h"

/* ---- options ------------------------------------------------------------------- */

#define SAC_OPTS(SCALE, BIAS, SPARSE, EVAL_EVERY, MAXB, BENT)                                      \
  {"env", LATHE_STR, "pointmaze", 0, -1, NULL, "environment plugin (box actions)"},                \
      {"env_config",                                                                               \
       LATHE_STR,                                                                                  \
       "",                                                                                         \
       0,                                                                                          \
       -1,                                                                                         \
       NULL,                                                                                       \
       "the environment's options, comma-separated key=value (maze=medium,reward=dense)"},         \
      {"dataset",                                                                                  \
       LATHE_STR,                                                                                  \
       "",                                                                                         \
       0,                                                                                          \
       -1,                                                                                         \
       NULL,                                                                                       \
       "transitions dataset for offline pre-training (empty: online only)"},                       \
      {"offline_steps", LATHE_INT, "1000000", 0, 1e10, NULL, "offline gradient steps"},            \
      {"online_steps", LATHE_INT, "1000000", 0, 1e10, NULL, "online environment steps"},           \
      {"learning_starts",                                                                          \
       LATHE_INT,                                                                                  \
       "0",                                                                                        \
       0,                                                                                          \
       1e10,                                                                                       \
       NULL,                                                                                       \
       "online steps with uniform random actions before the first update"},                        \
      {"batch_size", LATHE_INT, "256", 2, 65536, NULL, "minibatch size"},                          \
      {"discount", LATHE_NUM, "0.99", 0, 0.9999, NULL, "gamma"},                                   \
      {"policy_lr", LATHE_NUM, "1e-4", 0, 1, NULL, "actor and temperature Adam learning rate"},    \
      {"qf_lr", LATHE_NUM, "3e-4", 0, 1, NULL, "critic (and alpha') Adam learning rate"},          \
      {"soft_target_update_rate", LATHE_NUM, "5e-3", 0, 1, NULL, "Polyak tau"},                    \
      {"policy_arch", LATHE_STR, "256-256", 0, -1, NULL, "actor hidden widths"},                   \
      {"qf_arch", LATHE_STR, "256-256-256-256", 0, -1, NULL, "critic hidden widths"},              \
      {"orthogonal_init",                                                                          \
       LATHE_BOOL,                                                                                 \
       "true",                                                                                     \
       0,                                                                                          \
       -1,                                                                                         \
       NULL,                                                                                       \
       "orthogonal init, gain sqrt(2) hidden and 1e-2 output (false: PyTorch's default)"},         \
      {"policy_log_std_multiplier", LATHE_NUM, "1.0", -100, 100, NULL, "initial m"},               \
      {"policy_log_std_offset", LATHE_NUM, "-1.0", -100, 100, NULL, "initial o"},                  \
      {"use_automatic_entropy_tuning", LATHE_BOOL, "true", 0, -1, NULL, "learn alpha"},            \
      {"alpha_multiplier", LATHE_NUM, "1.0", 0, 1e6, NULL, "alpha = exp(log_alpha) * this"},       \
      {"target_entropy", LATHE_NUM, "0", -1e6, 1e6, NULL, ">= 0: -dim(A) (the default)"},          \
      {"backup_entropy", LATHE_BOOL, BENT, 0, -1, NULL, "subtract alpha log pi in the target"},    \
      {"max_target_backup",                                                                        \
       LATHE_BOOL,                                                                                 \
       MAXB,                                                                                       \
       0,                                                                                          \
       -1,                                                                                         \
       NULL,                                                                                       \
       "target: max over n_actions next actions of the twin minimum"},                             \
      {"n_actions",                                                                                \
       LATHE_INT,                                                                                  \
       "10",                                                                                       \
       1,                                                                                          \
       NN_CQL_MAX_N,                                                                               \
       NULL,                                                                                       \
       "sampled actions per source (CQL) and for the max backup"},                                 \
      {"reward_scale", LATHE_NUM, SCALE, -1e6, 1e6, NULL, "r' = scale r + bias"},                  \
      {"reward_bias", LATHE_NUM, BIAS, -1e6, 1e6, NULL, "r' = scale r + bias"},                    \
      {"reward_neg", LATHE_NUM, "0", -1e6, 1e6, NULL, "the raw failure reward of sparse tasks"},   \
      {"is_sparse_reward",                                                                         \
       LATHE_BOOL,                                                                                 \
       SPARSE,                                                                                     \
       0,                                                                                          \
       -1,                                                                                         \
       NULL,                                                                                       \
       "a trajectory of only failure rewards gets G = r_neg' / (1 - gamma)"},                      \
      {"action_clip", LATHE_NUM, "0.99999", 0.5, 1, NULL, "clip of dataset actions"},              \
      {"mixing_ratio",                                                                             \
       LATHE_NUM,                                                                                  \
       "0.5",                                                                                      \
       -1,                                                                                         \
       1,                                                                                          \
       NULL,                                                                                       \
       "offline share of online batches (-1: by buffer sizes)"},                                   \
      {"online_utd_ratio", LATHE_INT, "1", 1, 1000, NULL, "gradient steps per environment step"},  \
      {"replay_buffer_size", LATHE_INT, "1000000", 1, 1e9, NULL, "online buffer capacity"},        \
      {"critic_head", LATHE_STR, "mse", 0, -1, "mse|hl_gauss|two_hot", "value head"},              \
      {"bins", LATHE_INT, "101", 2, 512, NULL, "bins of a categorical head"},                      \
      {"v_min", LATHE_NUM, "-550", -1e9, 1e9, NULL, "lower end of the value support"},             \
      {"v_max", LATHE_NUM, "550", -1e9, 1e9, NULL, "upper end of the value support"},              \
      {"sigma_ratio", LATHE_NUM, "0.75", 1e-6, 100, NULL, "hl_gauss: sigma / bin width"},          \
      {"eval_every",                                                                               \
       LATHE_INT,                                                                                  \
       EVAL_EVERY,                                                                                 \
       1,                                                                                          \
       1e10,                                                                                       \
       NULL,                                                                                       \
       "gradient steps (offline) or environment steps (online) between evaluations"},              \
      {"eval_episodes", LATHE_INT, "20", 1, 10000, NULL, "deterministic episodes per evaluation"}, \
  {                                                                                                \
    "log_every", LATHE_INT, "1000", 1, 1e9, NULL, "gradient steps between training metrics"        \
  }

#define CQL_OPTS                                                                                   \
  {"cql_min_q_weight", LATHE_NUM, "5.0", 0, 1e6, NULL, "alpha_cql"},                               \
      {"cql_lagrange", LATHE_BOOL, "true", 0, -1, NULL, "tune alpha' toward the target gap"},      \
      {"cql_target_action_gap", LATHE_NUM, "0.8", -1e6, 1e6, NULL, "tau_gap (Lagrange)"},          \
      {"cql_importance_sample", LATHE_BOOL, "true", 0, -1, NULL, "importance-sampled logsumexp"},  \
      {"cql_temp", LATHE_NUM, "1.0", 1e-6, 1e6, NULL, "T"},                                        \
      {"cql_clip_diff_min", LATHE_NUM, "-inf", 1, 0, NULL, "clip of the per-state difference"}, {  \
    "cql_clip_diff_max", LATHE_NUM, "inf", 1, 0, NULL, "clip of the per-state difference"          \
  }

/* sac: Haarnoja et al.'s backup (one next action, with the entropy term); cql and calql: the
 * official conservative_sac defaults (max backup over n_actions, no entropy term) */
static const lathe_opt_t sac_opts[] = {SAC_OPTS("1", "0", "false", "5000", "false", "true"),
                                       {NULL}};
static const lathe_opt_t cql_opts[] = {
    SAC_OPTS("10", "-5", "true", "2000", "true", "false"), CQL_OPTS, {NULL}};

/* ---- state ---------------------------------------------------------------------- */

typedef struct { /* training metrics, averaged over log_every updates */
  double policy_loss, qf_loss[2], alpha, alpha_loss, log_pi, q_data[2], target_q, mc_return;
  double cql_diff[2], alpha_prime, q_rand, q_cur, q_next, bound_rate;
  int64_t n;
} acc_t;

typedef struct {
  /* configuration */
  int cql, calql; /* which of the three */
  int O, A, B, N, K, max_backup, auto_alpha, backup_entropy, lagrange, importance, sparse;
  int64_t offline_steps, online_steps, learning_starts, eval_every, eval_episodes, log_every;
  int64_t utd;
  float gamma, tau, target_entropy, alpha_mult, alpha_cql, gap_target, temp, clip_min, clip_max;
  float scale, bias, r_fail, mixing, max_action;
  nn_head_t head;
  nn_adamw_t popt, qopt;
  lathe_env_info_t info;
  int have_info;
  /* networks: actor, its log-std affine (m, o), twin critics and targets, log alpha, log alpha' */
  nn_mlp_t pi, q[2], tq[2];
  nn_params_t pis, la, lap;
  /* environments */
  const lathe_plugin_t *envp;
  void *env, *eval_env;
  /* data */
  nn_replay_t off, on;    /* transitions, rewards already transformed; G: returns-to-go */
  int64_t ep_cap, ep_len; /* the trajectory being collected */
  float *ep_obs, *ep_act, *ep_rew, *ep_next, *ep_G, *cur_obs;
  double *ev_raw;                     /* an evaluation episode's rewards, */
  float *ev_rew, *ev_G;               /* transformed, and its returns */
  uint8_t *ep_term, *ev_term, *which; /* which: the smaller critic per row (actor loss) */
  double ep_return;
  /* scratch */
  float *bs, *ba, *br, *bn, *bG, *bd, *xq, *xt, *dq, *qv, *g1, *eps_t, *eps_n, *eps_c, *eps_p;
  float *a_t, *lp_t, *a_n, *lp_n, *a_c, *lp_c, *a_p, *lp_p, *pout_n, *dpi, *y, *dx, *tgt;
  /* counters */
  nn_rng_t rng;
  int64_t t, env_steps, episodes;
  double regret_sum;
  acc_t acc;
} sac_t;

/* ---- set-up ---------------------------------------------------------------------- */

static int mlp(nn_mlp_t *m, const char *name, int in, const char *arch, int out, int ortho,
               nn_rng_t *r) {
  int w[9], n = nn_parse_widths(arch, w + 1, 7);
  if (n < 1) return -1;
  w[0] = in, w[n + 1] = out;
  int rc = nn_mlp_init(m, name, n + 1, w, NN_RELU, 0, r);
  if (rc || !ortho) return rc;
  for (int l = 0; l <= n; l++) {
    nn_init_orthogonal(&m->params, m->iw[l], l < n ? sqrtf(2.0f) : 1e-2f, r);
    nn_init_const(&m->params, m->ib[l], 0.0f);
  }
  return 0;
}

static int json_floats(json_object *v, float *out, int n) {
  if (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) {
    if (n != 1) return -1;
    out[0] = (float)json_object_get_double(v);
    return 0;
  }
  if (!json_object_is_type(v, json_type_array) || (int)json_object_array_length(v) != n) return -1;
  for (int k = 0; k < n; k++)
    out[k] = (float)json_object_get_double(json_object_array_get_idx(v, k));
  return 0;
}

/* Read the dataset, cut it into trajectories (terminal, timeout, or obs[t+1] !=
 * next_obs[t]), transform rewards and compute every G. */
static int load_dataset(sac_t *s, const lathe_host_t *h, lathe_ctx_t *c, const char *name) {
  int64_t n = h->dataset_count(c, name);
  if (n <= 0) return h->fail(c, LATHE_ENOTFOUND, "no dataset '%s' in the store", name);
  int rc = nn_replay_init(&s->off, n, s->O, s->A, 1);
  uint8_t *cut = calloc(n, 1);
  if (rc || !cut) {
    free(cut);
    return LATHE_ENOMEM;
  }
  static const char *fields[] = {"obs", "action", "reward", "next_obs", "terminated", "truncated"};
  float clip = (float)h->cfg_num(c, "action_clip");
  for (int64_t i = 0; i < n && !rc; i++) {
    char *txt = h->dataset_get(c, name, i);
    json_object *o = txt ? json_tokener_parse(txt) : NULL, *v[6];
    free(txt);
    int ok = o != NULL;
    for (int k = 0; k < 6 && ok; k++) ok = json_object_object_get_ex(o, fields[k], &v[k]);
    float *ob = s->off.obs + i * s->O, *nx = s->off.next + i * s->O, *ac = s->off.act + i * s->A;
    if (!ok || json_floats(v[0], ob, s->O) || json_floats(v[3], nx, s->O))
      rc = h->fail(c, LATHE_EDATA, "dataset '%s' record %lld: want obs and next_obs of %d numbers",
                   name, (long long)i + 1, s->O);
    else if (json_floats(v[1], ac, s->A))
      rc = h->fail(c, LATHE_EDATA, "dataset '%s' record %lld: want an action of %d numbers", name,
                   (long long)i + 1, s->A);
    if (!rc) {
      for (int k = 0; k < s->A; k++) {
        float a = ac[k] / s->max_action;
        ac[k] = a < -clip ? -clip : (a > clip ? clip : a);
      }
      s->off.rew[i] = (float)(s->scale * json_object_get_double(v[2]) + s->bias);
      s->off.term[i] = (uint8_t)json_object_get_boolean(v[4]);
      cut[i] = s->off.term[i] || json_object_get_boolean(v[5]);
    }
    json_object_put(o);
  }
  for (int64_t i = 0; i + 1 < n && !rc; i++) {
    double d = 0;
    for (int k = 0; k < s->O; k++) {
      double e = s->off.obs[(i + 1) * s->O + k] - s->off.next[i * s->O + k];
      d += e * e;
    }
    if (sqrt(d) > 1e-6) cut[i] = 1;
  }
  int64_t start = 0, trajs = 0, fails = 0;
  for (int64_t i = 0; i < n && !rc; i++)
    if (cut[i] || i == n - 1) {
      int T = (int)(i + 1 - start);
      nn_mc_returns(s->off.rew + start, s->off.term + start, T, s->gamma, s->sparse, s->r_fail,
                    s->off.G + start);
      fails += s->sparse && s->off.G[start] == (float)(s->r_fail / (1.0 - s->gamma));
      trajs++, start = i + 1;
    }
  free(cut);
  s->off.size = n;
  if (!rc)
    h->log(c, "dataset '%s': %lld transitions, %lld trajectories (%lld never succeed)", name,
           (long long)n, (long long)trajs, (long long)fails);
  return rc;
}

static int create_common(const lathe_host_t *h, lathe_ctx_t *c, void **self, int cql, int calql) {
  sac_t *s = calloc(1, sizeof *s);
  if (!s) return LATHE_ENOMEM;
  *self = s;
  s->cql = cql, s->calql = calql;
  int rc;
  const char *env = h->cfg_str(c, "env"), *env_cfg = h->cfg_str(c, "env_config");
  if ((rc = lathe_plugin_create_list(h, c, env, env_cfg, &s->envp, &s->env)) ||
      (rc = lathe_plugin_create_list(h, c, env, env_cfg, &s->envp, &s->eval_env)))
    return rc;
  lathe_space_t os, as;
  if (s->envp->kind != LATHE_ENVIRONMENT || s->envp->env->spaces(s->env, &os, &as) || as.discrete ||
      os.discrete)
    return h->fail(c, LATHE_ECONFIG, "%s needs an environment with box observations and actions",
                   env);
  s->O = os.n, s->A = as.n, s->max_action = as.high[0];
  for (int k = 0; k < as.n; k++)
    if (as.high[k] != s->max_action || as.low[k] != -s->max_action)
      return h->fail(c, LATHE_ECONFIG, "%s: actions must share one symmetric bound [-m, m]", env);
  s->have_info = s->envp->env->info && !s->envp->env->info(s->env, &s->info);
  s->offline_steps = h->cfg_int(c, "offline_steps"),
  s->online_steps = h->cfg_int(c, "online_steps");
  s->learning_starts = h->cfg_int(c, "learning_starts");
  s->B = (int)h->cfg_int(c, "batch_size"), s->N = (int)h->cfg_int(c, "n_actions");
  s->gamma = (float)h->cfg_num(c, "discount"),
  s->tau = (float)h->cfg_num(c, "soft_target_update_rate");
  s->auto_alpha = (int)h->cfg_int(c, "use_automatic_entropy_tuning");
  s->alpha_mult = (float)h->cfg_num(c, "alpha_multiplier");
  double te = h->cfg_num(c, "target_entropy");
  s->target_entropy = te >= 0 ? (float)-s->A : (float)te;
  s->backup_entropy = (int)h->cfg_int(c, "backup_entropy");
  s->max_backup = (int)h->cfg_int(c, "max_target_backup");
  s->scale = (float)h->cfg_num(c, "reward_scale"), s->bias = (float)h->cfg_num(c, "reward_bias");
  s->r_fail = (float)(s->scale * h->cfg_num(c, "reward_neg") + s->bias);
  s->sparse = (int)h->cfg_int(c, "is_sparse_reward");
  s->mixing = (float)h->cfg_num(c, "mixing_ratio");
  s->utd = h->cfg_int(c, "online_utd_ratio");
  s->eval_every = h->cfg_int(c, "eval_every"), s->eval_episodes = h->cfg_int(c, "eval_episodes");
  s->log_every = h->cfg_int(c, "log_every");
  if (cql) {
    s->alpha_cql = (float)h->cfg_num(c, "cql_min_q_weight");
    s->lagrange = (int)h->cfg_int(c, "cql_lagrange");
    s->gap_target = (float)h->cfg_num(c, "cql_target_action_gap");
    s->importance = (int)h->cfg_int(c, "cql_importance_sample");
    s->temp = (float)h->cfg_num(c, "cql_temp");
    s->clip_min = (float)h->cfg_num(c, "cql_clip_diff_min");
    s->clip_max = (float)h->cfg_num(c, "cql_clip_diff_max");
  }
  int kind = nn_head_parse(h->cfg_str(c, "critic_head"));
  if ((rc = nn_head_init(&s->head, (nn_head_kind_t)kind, (int)h->cfg_int(c, "bins"),
                         (float)h->cfg_num(c, "v_min"), (float)h->cfg_num(c, "v_max"),
                         (float)h->cfg_num(c, "sigma_ratio"))))
    return h->fail(c, LATHE_ECONFIG, "critic_head: empty value support [v_min, v_max]");
  s->K = s->head.bins;
  s->popt = s->qopt = nn_adamw_default();
  s->popt.lr = (float)h->cfg_num(c, "policy_lr"), s->qopt.lr = (float)h->cfg_num(c, "qf_lr");

  nn_rng_seed(&s->rng, h->seed(c));
  int ortho = (int)h->cfg_int(c, "orthogonal_init"), O = s->O, A = s->A;
  const char *parch = h->cfg_str(c, "policy_arch"), *qarch = h->cfg_str(c, "qf_arch");
  if (mlp(&s->pi, "pi", O, parch, 2 * A, ortho, &s->rng))
    return h->fail(c, LATHE_ECONFIG, "policy_arch '%s': want widths like 256-256", parch);
  for (int i = 0; i < 2; i++) {
    if (mlp(&s->q[i], i ? "q2" : "q1", O + A, qarch, s->K, ortho, &s->rng))
      return h->fail(c, LATHE_ECONFIG, "qf_arch '%s': want widths like 256-256", qarch);
    mlp(&s->tq[i], i ? "q2" : "q1", O + A, qarch, s->K, 0, &s->rng);
    nn_params_copy(&s->tq[i].params, &s->q[i].params);
  }
  int one[1] = {1}, two[1] = {2};
  nn_params_add(&s->pis, "log_std_affine", 0, 1, two);
  nn_params_add(&s->la, "log_alpha", 0, 1, one);
  nn_params_add(&s->lap, "log_alpha_prime", 0, 1, one);
  if (nn_params_alloc(&s->pis) || nn_params_alloc(&s->la) || nn_params_alloc(&s->lap))
    return LATHE_ENOMEM;
  s->pis.w[0] = (float)h->cfg_num(c, "policy_log_std_multiplier");
  s->pis.w[1] = (float)h->cfg_num(c, "policy_log_std_offset");
  s->la.w[0] = 0.0f, s->lap.w[0] = 1.0f;

  const char *ds = h->cfg_str(c, "dataset");
  if (*ds && (rc = load_dataset(s, h, c, ds))) return rc;
  if (!*ds && s->offline_steps > 0)
    return h->fail(c, LATHE_ECONFIG, "offline_steps = %lld needs a dataset",
                   (long long)s->offline_steps);
  int64_t cap = h->cfg_int(c, "replay_buffer_size");
  if (s->online_steps < cap) cap = s->online_steps > 0 ? s->online_steps : 1;
  if ((rc = nn_replay_init(&s->on, cap, O, A, 1)))
    return h->fail(c, rc, "out of memory for a %lld-transition buffer", (long long)cap);

  /* scratch: critic rows are [data | uniform | current | next], B (1 + 3N) */
  int B = s->B, N = s->N, R = B * (1 + 3 * N), D = O + A;
  s->ep_cap = 1 << 12;
  float **f[] = {&s->bs,    &s->ba,    &s->br,    &s->bn,  &s->bG,     &s->bd,
                 &s->xq,    &s->xt,    &s->dq,    &s->qv,  &s->g1,     &s->eps_t,
                 &s->eps_n, &s->eps_c, &s->eps_p, &s->a_t, &s->lp_t,   &s->a_n,
                 &s->lp_n,  &s->a_c,   &s->lp_c,  &s->a_p, &s->lp_p,   &s->pout_n,
                 &s->dpi,   &s->y,     &s->dx,    &s->tgt, &s->cur_obs};
  size_t sz[] = {B * O,
                 B * A,
                 B,
                 B * O,
                 B,
                 B,
                 (size_t)R * D,
                 (size_t)B * N * D,
                 (size_t)R * s->K,
                 (size_t)R,
                 (size_t)R * s->K,
                 (size_t)B * N * A,
                 (size_t)B * N * A,
                 (size_t)B * N * A,
                 (size_t)B * A,
                 (size_t)B * N * A,
                 (size_t)B * N,
                 (size_t)B * N * A,
                 (size_t)B * N,
                 (size_t)B * N * A,
                 (size_t)B * N,
                 (size_t)B * A,
                 (size_t)B,
                 (size_t)B * 2 * A,
                 (size_t)B * 2 * A,
                 (size_t)B,
                 (size_t)B * D,
                 (size_t)B * s->K,
                 (size_t)O};
  for (size_t k = 0; k < sizeof f / sizeof *f; k++)
    if (!(*f[k] = calloc(sz[k], sizeof(float)))) return LATHE_ENOMEM;
  float **e[] = {&s->ep_obs, &s->ep_act, &s->ep_rew, &s->ep_next, &s->ep_G, &s->ev_rew, &s->ev_G};
  size_t esz[] = {(size_t)O, (size_t)A, 1, (size_t)O, 1, 1, 1};
  for (int k = 0; k < 7; k++)
    if (!(*e[k] = malloc(sizeof(float) * s->ep_cap * esz[k]))) return LATHE_ENOMEM;
  if (!(s->ep_term = malloc(s->ep_cap)) || !(s->ev_term = malloc(s->ep_cap)) ||
      !(s->ev_raw = malloc(sizeof(double) * s->ep_cap)) || !(s->which = malloc(B)))
    return LATHE_ENOMEM;

  float tmp[LATHE_SPACE_MAX];
  if ((rc = s->envp->env->reset(s->env, h, c, h->seed(c), s->cur_obs)) ||
      (rc = s->envp->env->reset(s->eval_env, h, c, h->seed(c) + 1000003, tmp)))
    return rc;
  h->set_total(c, s->offline_steps + s->online_steps);
  return 0;
}

static int create_sac(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  return create_common(h, c, self, 0, 0);
}
static int create_cql(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  return create_common(h, c, self, 1, 0);
}
static int create_calql(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  return create_common(h, c, self, 1, 1);
}

/* ---- one gradient step ------------------------------------------------------------ */

/* copies of a few floats: loops, which the compiler inlines, not memcpy calls */
static inline void copy(float *dst, const float *src, int n) {
  for (int k = 0; k < n; k++) dst[k] = src[k];
}

static void gather(sac_t *s, const nn_replay_t *b, int64_t i, int row) {
  int O = s->O, A = s->A;
  copy(s->bs + row * O, b->obs + i * O, O);
  copy(s->bn + row * O, b->next + i * O, O);
  copy(s->ba + row * A, b->act + i * A, A);
  s->br[row] = b->rew[i], s->bd[row] = b->term[i], s->bG[row] = b->G[i];
}

static void sample_batch(sac_t *s) {
  int n_off = s->B;
  if (s->on.size > 0) {
    double share =
        s->mixing >= 0 ? s->mixing : (double)s->off.size / (double)(s->off.size + s->on.size);
    n_off = s->off.size ? (int)lround(s->B * share) : 0;
  }
  for (int r = 0; r < s->B; r++)
    if (r < n_off)
      gather(s, &s->off, (int64_t)nn_rng_below(&s->rng, (uint32_t)s->off.size), r);
    else
      gather(s, &s->on, (int64_t)nn_rng_below(&s->rng, (uint32_t)s->on.size), r);
}

/* n tanh-Gaussian samples per row of actor outputs out(B, 2A) */
static void sample_actions(sac_t *s, const float *out, int n, float *eps, float *a, float *lp) {
  int A = s->A;
  for (int b = 0; b < s->B; b++)
    for (int k = 0; k < n; k++) {
      float *e = eps + ((size_t)b * n + k) * A;
      for (int j = 0; j < A; j++) e[j] = nn_rng_normal(&s->rng);
      lp[b * n + k] = (float)nn_tanh_gauss(out + b * 2 * A, out + b * 2 * A + A, s->pis.w[0],
                                           s->pis.w[1], e, A, a + ((size_t)b * n + k) * A);
    }
}

/* rows of [obs | action]: obs row b repeated n times beside actions a(B n, A) */
static void fill_rows(sac_t *s, float *x, const float *obs, int n, const float *a) {
  int O = s->O, A = s->A, D = O + A;
  for (int b = 0; b < s->B; b++)
    for (int k = 0; k < n; k++) {
      float *row = x + ((size_t)b * n + k) * D;
      copy(row, obs + b * O, O);
      copy(row + O, a + ((size_t)b * n + k) * A, A);
    }
}

/* decoded values of outputs out(n, K) into v(n) */
static void decode(const sac_t *s, const float *out, int n, float *v) {
  for (int r = 0; r < n; r++) v[r] = nn_head_decode(&s->head, out + (size_t)r * s->K);
}

static int update(sac_t *s) {
  int B = s->B, N = s->N, A = s->A, O = s->O, D = O + A, K = s->K;
  int Nt = s->max_backup ? N : 1, R = s->cql ? B * (1 + 3 * N) : B;
  acc_t *acc = &s->acc;
  sample_batch(s);
  /* policy at s' (target actions and CQL's next actions), kept as a copy */
  memcpy(s->pout_n, nn_mlp_forward(&s->pi, s->bn, B), sizeof(float) * B * 2 * A);
  sample_actions(s, s->pout_n, Nt, s->eps_t, s->a_t, s->lp_t);
  if (s->cql) sample_actions(s, s->pout_n, N, s->eps_n, s->a_n, s->lp_n);
  /* policy at s: the actor's action and CQL's current actions; activations kept */
  float *po = nn_mlp_forward(&s->pi, s->bs, B);
  sample_actions(s, po, 1, s->eps_p, s->a_p, s->lp_p);
  if (s->cql) sample_actions(s, po, N, s->eps_c, s->a_c, s->lp_c);
  float alpha = s->auto_alpha ? expf(s->la.w[0]) * s->alpha_mult : s->alpha_mult;

  /* 1. temperature */
  double g_la = s->auto_alpha ? nn_sac_temperature_grad(s->lp_p, B, s->target_entropy) : 0.0;

  /* 2. TD target: r + gamma (1 - d) max_k min_i Qbar_i(s', a'_k) */
  fill_rows(s, s->xt, s->bn, Nt, s->a_t);
  float *tv = s->qv; /* B Nt values per target critic, min kept */
  for (int i = 0; i < 2; i++) {
    float *out = nn_mlp_forward(&s->tq[i], s->xt, B * Nt);
    for (int r = 0; r < B * Nt; r++) {
      float v = nn_head_decode(&s->head, out + (size_t)r * K);
      tv[r] = i == 0 || v < tv[r] ? v : tv[r];
    }
  }
  double tq_mean = 0.0;
  for (int b = 0; b < B; b++) {
    int best = 0;
    for (int k = 1; k < Nt; k++) best = tv[b * Nt + k] > tv[b * Nt + best] ? k : best;
    double v = tv[b * Nt + best];
    if (s->backup_entropy) v -= alpha * s->lp_t[b * Nt + best];
    s->y[b] = (float)(s->br[b] + s->gamma * (1.0f - s->bd[b]) * v);
    tq_mean += s->y[b];
  }

  /* 3. actor: mean(alpha logp - min_i Q_i(s, a~)); gradients into the actions via the critics */
  fill_rows(s, s->xq, s->bs, 1, s->a_p);
  float *qmin = s->g1, *qout[2]; /* each critic keeps its own activations for the backward */
  for (int i = 0; i < 2; i++) {
    float *out = qout[i] = nn_mlp_forward(&s->q[i], s->xq, B);
    for (int b = 0; b < B; b++) {
      float v = nn_head_decode(&s->head, out + (size_t)b * K);
      if (i == 0 || v < qmin[b]) qmin[b] = v, s->which[b] = (uint8_t)i;
    }
  }
  memset(s->dx, 0, sizeof(float) * B * D);
  double pl = 0.0;
  for (int i = 0; i < 2; i++) {
    float *out = qout[i];
    memset(s->dq, 0, sizeof(float) * B * K);
    for (int b = 0; b < B; b++)
      if (s->which[b] == i)
        nn_head_decode_backward(&s->head, out + (size_t)b * K, -1.0f / B, s->dq + (size_t)b * K);
    nn_params_zero_grad(&s->q[i].params);
    nn_mlp_backward(&s->q[i], s->dq, s->dx);
  }
  double lp_mean = 0.0;
  for (int b = 0; b < B; b++) pl += alpha * s->lp_p[b] - qmin[b], lp_mean += s->lp_p[b];
  acc->alpha_loss += -s->la.w[0] * (lp_mean / B + s->target_entropy);
  nn_params_zero_grad(&s->pi.params), nn_params_zero_grad(&s->pis);
  for (int b = 0; b < B; b++)
    nn_tanh_gauss_backward(po + b * 2 * A, po + b * 2 * A + A, s->pis.w[0], s->pis.w[1],
                           s->eps_p + b * A, A, s->dx + (size_t)b * D + O, alpha / B,
                           s->dpi + b * 2 * A, s->dpi + b * 2 * A + A, &s->pis.g[0], &s->pis.g[1]);
  nn_mlp_backward(&s->pi, s->dpi, NULL);

  /* 4. critics: TD on data rows, and for CQL the conservative term per state */
  for (int b = 0; b < B; b++) {
    copy(s->xq + (size_t)b * D, s->bs + b * O, O);
    copy(s->xq + (size_t)b * D + O, s->ba + b * A, A);
  }
  float *xr = s->xq + (size_t)B * D;
  if (s->cql) {
    float *ur = s->eps_t; /* uniform actions reuse the target-noise buffer (B N A floats) */
    for (size_t k = 0; k < (size_t)B * N * A; k++) ur[k] = 2.0f * nn_rng_uniform(&s->rng) - 1.0f;
    fill_rows(s, xr, s->bs, N, ur);
    fill_rows(s, xr + (size_t)B * N * D, s->bs, N, s->a_c);
    fill_rows(s, xr + (size_t)2 * B * N * D, s->bs, N, s->a_n);
  }
  float alpha_p = s->lagrange ? fminf(fmaxf(expf(s->lap.w[0]), 0.0f), 1e6f) : 1.0f;
  float w_cql = s->alpha_cql * alpha_p;
  double gap[2] = {0, 0}, qdata[2] = {0, 0}, qr_m = 0, qc_m = 0, qn_m = 0, G_m = 0;
  int64_t lifted = 0;
  for (int i = 0; i < 2; i++) {
    float *out = nn_mlp_forward(&s->q[i], s->xq, R), *v = s->qv;
    decode(s, out, R, v);
    float *dv = s->g1; /* dL/dvalue per row (decoded), converted below */
    memset(dv, 0, sizeof(float) * R);
    /* TD: mse on the value, or cross-entropy against the transformed target */
    double td;
    if (K == 1) {
      td = nn_mse_loss(dv, v, s->y, B);
    } else {
      for (int b = 0; b < B; b++) nn_head_target(&s->head, s->y[b], s->tgt + (size_t)b * K);
      td = nn_head_loss(&s->head, out, s->tgt, B, s->dq);
    }
    for (int b = 0; b < B; b++) qdata[i] += v[b];
    if (s->cql) {
      for (int b = 0; b < B; b++) {
        float *vr = v + B + (size_t)b * N, *vc = v + B + (size_t)(B + b) * N,
              *vn = v + B + (size_t)(2 * B + b) * N;
        float *gr = dv + B + (size_t)b * N, *gc = dv + B + (size_t)(B + b) * N,
              *gn = dv + B + (size_t)(2 * B + b) * N, gd;
        nn_cql_in_t in = {
            vr, vc, s->lp_c + b * N, vn,     s->lp_n + b * N, v[b], s->calql ? s->bG[b] : -INFINITY,
            N,  A,  s->importance,   s->temp};
        int nl;
        double diff = nn_cql_diff(&in, gr, gc, gn, &gd, &nl);
        lifted += nl;
        double cd = diff < s->clip_min ? s->clip_min : (diff > s->clip_max ? s->clip_max : diff);
        gap[i] += cd;
        float scale = diff > s->clip_min && diff < s->clip_max ? w_cql / B : 0.0f;
        for (int k = 0; k < N; k++) gr[k] *= scale, gc[k] *= scale, gn[k] *= scale;
        dv[b] += gd * scale;
        if (i == 0)
          for (int k = 0; k < N; k++) qr_m += vr[k], qc_m += vc[k], qn_m += vn[k];
      }
      gap[i] /= B;
    }
    /* dL/dvalue -> dL/doutputs; the TD part on data rows is already in outputs for K > 1 */
    if (K == 1) {
      memcpy(s->dq, dv, sizeof(float) * R);
    } else {
      for (int r = 0; r < R; r++) {
        float tmp[NN_HEAD_MAX_BINS];
        if (dv[r] == 0.0f) {
          if (r >= B) memset(s->dq + (size_t)r * K, 0, sizeof(float) * K);
          continue;
        }
        nn_head_decode_backward(&s->head, out + (size_t)r * K, dv[r], tmp);
        for (int k = 0; k < K; k++)
          s->dq[(size_t)r * K + k] = (r < B ? s->dq[(size_t)r * K + k] : 0.0f) + tmp[k];
      }
    }
    nn_params_zero_grad(&s->q[i].params);
    nn_mlp_backward(&s->q[i], s->dq, NULL);
    nn_adamw_step(&s->q[i].params, &s->qopt, s->qopt.lr);
    acc->qf_loss[i] += td + (s->cql ? w_cql * (gap[i] - (s->lagrange ? s->gap_target : 0)) : 0);
    acc->q_data[i] += qdata[i] / B;
  }
  for (int b = 0; b < B; b++) G_m += s->bG[b];

  /* 5. apply: temperature, actor, alpha'; then Polyak */
  if (s->auto_alpha) {
    s->la.g[0] = (float)g_la;
    nn_adamw_step(&s->la, &s->popt, s->popt.lr);
  }
  nn_adamw_step(&s->pi.params, &s->popt, s->popt.lr);
  nn_adamw_step(&s->pis, &s->popt, s->popt.lr);
  if (s->cql && s->lagrange) {
    float e = expf(s->lap.w[0]);
    s->lap.g[0] = e > 0.0f && e < 1e6f
                      ? (float)(-0.5 * s->alpha_cql * e *
                                ((gap[0] - s->gap_target) + (gap[1] - s->gap_target)))
                      : 0.0f;
    nn_adamw_step(&s->lap, &s->qopt, s->qopt.lr);
  }
  for (int i = 0; i < 2; i++) nn_params_polyak(&s->tq[i].params, &s->q[i].params, s->tau);

  acc->policy_loss += pl / B, acc->log_pi += lp_mean / B, acc->alpha += alpha;
  acc->target_q += tq_mean / B, acc->mc_return += G_m / B;
  if (s->cql) {
    acc->cql_diff[0] += gap[0], acc->cql_diff[1] += gap[1], acc->alpha_prime += alpha_p;
    acc->q_rand += qr_m / (B * N), acc->q_cur += qc_m / (B * N), acc->q_next += qn_m / (B * N);
    acc->bound_rate += (double)lifted / (2.0 * 2 * N * B);
  }
  acc->n++;
  for (int i = 0; i < 2; i++)
    if (!isfinite(acc->qf_loss[i])) return LATHE_ENAN;
  return 0;
}

static void report_train(sac_t *s, const lathe_host_t *h, lathe_ctx_t *c) {
  acc_t *a = &s->acc;
  if (!a->n) return;
  double n = (double)a->n;
  h->metric(c, "sac/policy_loss", a->policy_loss / n);
  h->metric(c, "sac/qf1_loss", a->qf_loss[0] / n);
  h->metric(c, "sac/qf2_loss", a->qf_loss[1] / n);
  h->metric(c, "sac/alpha", a->alpha / n);
  h->metric(c, "sac/alpha_loss", a->alpha_loss / n);
  h->metric(c, "sac/log_pi", a->log_pi / n);
  h->metric(c, "sac/average_qf1", a->q_data[0] / n);
  h->metric(c, "sac/average_qf2", a->q_data[1] / n);
  h->metric(c, "sac/average_target_q", a->target_q / n);
  h->metric(c, "calql/mc_return", a->mc_return / n);
  if (s->cql) {
    h->metric(c, "cql/qf1_diff", a->cql_diff[0] / n);
    h->metric(c, "cql/qf2_diff", a->cql_diff[1] / n);
    h->metric(c, "cql/q_rand", a->q_rand / n);
    h->metric(c, "cql/q_current_actions", a->q_cur / n);
    h->metric(c, "cql/q_next_actions", a->q_next / n);
    if (s->lagrange) h->metric(c, "cql/alpha_prime", a->alpha_prime / n);
    if (s->calql) h->metric(c, "calql/bound_rate", a->bound_rate / n);
  }
  memset(a, 0, sizeof *a);
}

/* ---- acting and evaluating ------------------------------------------------------- */

/* the policy's action for one observation: tanh(mu) when deterministic */
static void act(sac_t *s, const float *obs, int deterministic, float *a) {
  float *out = nn_mlp_forward(&s->pi, obs, 1), eps[LATHE_SPACE_MAX];
  if (deterministic) {
    for (int j = 0; j < s->A; j++) a[j] = tanhf(out[j]);
    return;
  }
  for (int j = 0; j < s->A; j++) eps[j] = nn_rng_normal(&s->rng);
  nn_tanh_gauss(out, out + s->A, s->pis.w[0], s->pis.w[1], eps, s->A, a);
}

static double normalized(const sac_t *s, double ret) {
  return 100.0 * (ret - s->info.ref_random) / (s->info.ref_expert - s->info.ref_random);
}

/* The deterministic policy, scaled to the environment's action bound; on
 * an episode's first step it also records min(Q1, Q2) of that state and
 * action (decoded) in q0. */
typedef struct {
  sac_t *s;
  int first;
  double q0;
} eval_ud_t;

static void eval_policy(void *ud, const float *obs, float *a) {
  eval_ud_t *e = ud;
  sac_t *s = e->s;
  act(s, obs, 1, a);
  if (e->first) {
    float x[2 * LATHE_SPACE_MAX], v[2];
    copy(x, obs, s->O), copy(x + s->O, a, s->A);
    for (int i = 0; i < 2; i++) decode(s, nn_mlp_forward(&s->q[i], x, 1), 1, v + i);
    e->q0 = v[0] < v[1] ? v[0] : v[1], e->first = 0;
  }
  for (int j = 0; j < s->A; j++) a[j] *= s->max_action;
}

/* One deterministic episode of the evaluation environment: *ep as
 * nn_episode's; *q0 = the critics' value of its first state and action,
 * *g0 = its discounted Monte-Carlo return in the critics' units (transformed
 * rewards, the failure rule), so q0 - g0 is the learnt policy's calibration. */
static int eval_episode(sac_t *s, const lathe_host_t *h, lathe_ctx_t *c, nn_episode_t *ep,
                        double *q0, double *g0) {
  eval_ud_t e = {s, 1, 0};
  int rc = nn_episode(s->envp, s->eval_env, h, c, LATHE_NO_SEED, s->ep_cap, eval_policy, &e,
                      s->ev_raw, ep);
  if (rc) return rc;
  if (ep->cut)
    return h->fail(c, LATHE_ECONFIG,
                   "an evaluation episode ran to %lld steps: give %s a time limit",
                   (long long)s->ep_cap, h->cfg_str(c, "env"));
  for (int64_t k = 0; k < ep->len; k++) {
    s->ev_rew[k] = (float)(s->scale * s->ev_raw[k] + s->bias);
    s->ev_term[k] = (uint8_t)(ep->terminated && k == ep->len - 1);
  }
  nn_mc_returns(s->ev_rew, s->ev_term, (int)ep->len, s->gamma, s->sparse, s->r_fail, s->ev_G);
  *q0 = e.q0, *g0 = s->ev_G[0];
  return 0;
}

static int evaluate(sac_t *s, const lathe_host_t *h, lathe_ctx_t *c) {
  double ret = 0, len = 0, succ = 0, q = 0, g = 0;
  for (int64_t e = 0; e < s->eval_episodes; e++) {
    nn_episode_t ep;
    double q0 = 0, g0 = 0;
    int rc = eval_episode(s, h, c, &ep, &q0, &g0);
    if (rc) return rc;
    ret += ep.ret, len += (double)ep.len, q += q0, g += g0;
    succ += ep.terminated && s->have_info && s->info.goal;
  }
  double n = (double)s->eval_episodes;
  h->metric(c, "evaluation/average_return", ret / n);
  h->metric(c, "evaluation/average_traj_length", len / n);
  h->metric(c, "evaluation/q_policy", q / n);
  h->metric(c, "evaluation/mc_return", g / n);
  if (s->have_info && s->info.goal) h->metric(c, "evaluation/success", succ / n);
  if (s->have_info && s->info.ref_expert != s->info.ref_random)
    h->metric(c, "evaluation/normalized_score", normalized(s, ret / n));
  return 0;
}

/* One environment step online; at a trajectory's end: G, the buffer, the updates. */
static int online_step(sac_t *s, const lathe_host_t *h, lathe_ctx_t *c) {
  int O = s->O, A = s->A, rc = 0;
  float a[LATHE_SPACE_MAX], env_a[LATHE_SPACE_MAX], next[LATHE_SPACE_MAX];
  if (s->env_steps < s->learning_starts)
    for (int j = 0; j < A; j++) a[j] = 2.0f * nn_rng_uniform(&s->rng) - 1.0f;
  else
    act(s, s->cur_obs, 0, a);
  for (int j = 0; j < A; j++) env_a[j] = a[j] * s->max_action;
  double r;
  int term, trunc;
  if ((rc = s->envp->env->step(s->env, h, c, env_a, next, &r, &term, &trunc))) return rc;
  s->env_steps++;
  int64_t t = s->ep_len;
  if (t == s->ep_cap)
    return h->fail(c, LATHE_ECONFIG,
                   "an episode ran past %lld steps: give %s a time limit (max_episode_steps)",
                   (long long)t, h->cfg_str(c, "env"));
  memcpy(s->ep_obs + t * O, s->cur_obs, sizeof(float) * O);
  memcpy(s->ep_next + t * O, next, sizeof(float) * O);
  memcpy(s->ep_act + t * A, a, sizeof(float) * A);
  s->ep_rew[t] = (float)(s->scale * r + s->bias), s->ep_term[t] = (uint8_t)term;
  s->ep_len++, s->ep_return += r;
  memcpy(s->cur_obs, next, sizeof(float) * O);
  if (!term && !trunc && s->env_steps < s->online_steps) return 0;

  nn_mc_returns(s->ep_rew, s->ep_term, (int)s->ep_len, s->gamma, s->sparse, s->r_fail, s->ep_G);
  for (int64_t k = 0; k < s->ep_len; k++)
    nn_replay_add(&s->on, s->ep_obs + k * O, s->ep_act + k * A, s->ep_rew[k], s->ep_next + k * O,
                  s->ep_term[k], s->ep_G[k]);
  int success = term && s->have_info && s->info.goal;
  s->episodes++;
  h->metric(c, "online/episode_return", s->ep_return);
  if (s->have_info && s->info.goal) {
    s->regret_sum += 1.0 - success;
    h->metric(c, "online/success", success);
    h->metric(c, "online/cumulative_regret", s->regret_sum / (double)s->episodes);
  }
  int64_t n_upd = s->env_steps > s->learning_starts ? s->ep_len * s->utd : 0;
  s->ep_len = 0, s->ep_return = 0;
  s->envp->env->reset(s->env, h, c, LATHE_NO_SEED, s->cur_obs);
  for (int64_t k = 0; k < n_upd && !rc; k++) {
    rc = update(s);
    if (s->acc.n >= s->log_every) report_train(s, h, c);
  }
  return rc;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  sac_t *s = self;
  int rc = 0;
  if (s->t == 0) h->metric(c, "phase", s->offline_steps > 0 ? 0 : 1);
  if (s->t < s->offline_steps) {
    if ((rc = update(s))) return rc;
    s->t++;
    if (s->acc.n >= s->log_every) report_train(s, h, c);
    if ((s->t % s->eval_every == 0 || s->t == s->offline_steps) && (rc = evaluate(s, h, c)))
      return rc;
    if (s->t == s->offline_steps && s->online_steps > 0) {
      h->log(c, "offline pre-training done after %lld steps; online fine-tuning starts",
             (long long)s->t);
      report_train(s, h, c);
      h->metric(c, "phase", 1);
    }
  } else {
    if ((rc = online_step(s, h, c))) return rc;
    s->t++;
    if ((s->env_steps % s->eval_every == 0 || s->env_steps == s->online_steps) &&
        (rc = evaluate(s, h, c)))
      return rc;
  }
  return s->t >= s->offline_steps + s->online_steps ? LATHE_DONE : LATHE_CONTINUE;
}

/* ---- checkpoints ----------------------------------------------------------------- */

#define CKPT_MAGIC 0x32514c43u /* "CLQ2": 2, the online buffer as nn_replay_save writes it */

/* The networks with their Adam moments, in checkpoint order. */
static void param_sets(sac_t *s, nn_params_t *ps[8]) {
  nn_params_t *all[8] = {&s->pi.params,    &s->pis,          &s->q[0].params, &s->q[1].params,
                         &s->tq[0].params, &s->tq[1].params, &s->la,          &s->lap};
  memcpy(ps, all, sizeof all);
}

/* Counters, metric accumulators, the online buffer and the trajectory being
 * collected: written (saving) or read back in the same order. -1 when what
 * is read is short or does not fit this config's buffers. */
static int state_io(sac_t *s, lathe_buf_t *b, int saving) {
#define IO(v, n) (saving ? lathe_buf_put(b, (v), (n)) : lathe_buf_get(b, (v), (n)))
  size_t O = (size_t)s->O, A = (size_t)s->A, f = sizeof(float);
  nn_replay_t *u = &s->on;
  IO(&s->rng, sizeof s->rng), IO(&s->t, sizeof s->t), IO(&s->env_steps, sizeof s->env_steps);
  IO(&s->episodes, sizeof s->episodes), IO(&s->regret_sum, sizeof s->regret_sum);
  IO(&s->acc, sizeof s->acc), IO(&s->ep_return, sizeof s->ep_return);
  IO(s->cur_obs, f * O);
  IO(&s->ep_len, sizeof s->ep_len);
  if (b->err || s->ep_len < 0 || s->ep_len > s->ep_cap || s->t < 0 || s->env_steps < 0 ||
      s->episodes < 0)
    return -1;
  if (saving)
    nn_replay_save(u, b);
  else if (nn_replay_load(u, b))
    return -1;
  size_t e = (size_t)s->ep_len;
  IO(s->ep_obs, f * e * O), IO(s->ep_next, f * e * O), IO(s->ep_act, f * e * A);
  IO(s->ep_rew, f * e), IO(s->ep_term, e);
  return b->err ? -1 : 0;
#undef IO
}

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sac_t *s = self;
  uint32_t magic = CKPT_MAGIC;
  nn_params_t *ps[8];
  LATHE_PUT(b, magic);
  nn_head_save(&s->head, b);
  param_sets(s, ps);
  for (int k = 0; k < 8; k++) nn_params_save(ps[k], b, 1);
  state_io(s, b, 1);
  int rc = s->envp->save(s->env, h, c, b);
  if (!rc) rc = s->envp->save(s->eval_env, h, c, b);
  return rc ? rc : b->err;
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  sac_t *s = self;
  uint32_t magic;
  nn_params_t *ps[8];
  LATHE_GET(b, magic);
  if (magic != CKPT_MAGIC)
    return h->fail(c, LATHE_ECKPT, "not a sac/cql/calql checkpoint (of this version)");
  if (nn_head_check(&s->head, b))
    return h->fail(c, LATHE_ECKPT, "checkpoint's critic head differs from the config's");
  param_sets(s, ps);
  for (int k = 0; k < 8; k++)
    if (nn_params_load(ps[k], b))
      return h->fail(c, LATHE_ECKPT, "checkpoint's networks differ from the config's");
  if (state_io(s, b, 0))
    return h->fail(c, LATHE_ECKPT,
                   "truncated checkpoint, or its online buffer exceeds replay_buffer_size");
  int rc = s->envp->load(s->env, h, c, b);
  if (!rc) rc = s->envp->load(s->eval_env, h, c, b);
  if (rc || b->err) return h->fail(c, LATHE_ECKPT, "truncated sac/cql/calql checkpoint");
  return 0;
}

static void destroy(void *self) {
  sac_t *s = self;
  if (!s) return;
  nn_mlp_free(&s->pi);
  for (int i = 0; i < 2; i++) nn_mlp_free(&s->q[i]), nn_mlp_free(&s->tq[i]);
  nn_params_free(&s->pis), nn_params_free(&s->la), nn_params_free(&s->lap);
  nn_replay_free(&s->off), nn_replay_free(&s->on);
  float *f[] = {s->bs,     s->ba,     s->br,      s->bn,   s->bG,      s->bd,
                s->xq,     s->xt,     s->dq,      s->qv,   s->g1,      s->eps_t,
                s->eps_n,  s->eps_c,  s->eps_p,   s->a_t,  s->lp_t,    s->a_n,
                s->lp_n,   s->a_c,    s->lp_c,    s->a_p,  s->lp_p,    s->pout_n,
                s->dpi,    s->y,      s->dx,      s->tgt,  s->cur_obs, s->ep_obs,
                s->ep_act, s->ep_rew, s->ep_next, s->ep_G, s->ev_rew,  s->ev_G};
  for (size_t k = 0; k < sizeof f / sizeof *f; k++) free(f[k]);
  free(s->ep_term), free(s->ev_term), free(s->ev_raw), free(s->which);
  free(s);
}

/* Rules across keys, checked before any run starts (sac has no dataset key). */
static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  int kind = nn_head_parse(h->cfg_str(c, "critic_head")), w[8];
  if (kind != NN_HEAD_MSE && kind != NN_HEAD_HUBER &&
      !(h->cfg_num(c, "v_min") < h->cfg_num(c, "v_max")))
    return h->fail(c, LATHE_ECONFIG, "critic_head %s: v_min = %.17g must be below v_max = %.17g",
                   h->cfg_str(c, "critic_head"), h->cfg_num(c, "v_min"), h->cfg_num(c, "v_max"));
  const char *parch = h->cfg_str(c, "policy_arch"), *qarch = h->cfg_str(c, "qf_arch");
  if (nn_parse_widths(parch, w, 8) < 0)
    return h->fail(c, LATHE_ECONFIG, "policy_arch '%s': want widths like 256-256", parch);
  if (nn_parse_widths(qarch, w, 8) < 0)
    return h->fail(c, LATHE_ECONFIG, "qf_arch '%s': want widths like 256-256", qarch);
  return 0;
}

#define DESCRIPTOR(VAR, NAME, DOC, OPTS, CREATE, MAIN)                                             \
  static const lathe_algorithm_t VAR##_if = {.step = step, .main_metric = MAIN};                   \
  static const lathe_plugin_t VAR = {.major = LATHE_API_MAJOR,                                     \
                                     .minor = LATHE_API_TARGET,                                    \
                                     .name = NAME,                                                 \
                                     .kind = LATHE_ALGORITHM,                                      \
                                     .version = "1.0.0",                                           \
                                     .doc = DOC,                                                   \
                                     .opts = OPTS,                                                 \
                                     .nn_abi = NN_ABI,                                             \
                                     .create = CREATE,                                             \
                                     .destroy = destroy,                                           \
                                     .save = save,                                                 \
                                     .load = load,                                                 \
                                     .validate = validate,                                         \
                                     .algorithm = &VAR##_if};                                      \
  LATHE_PLUGIN_ENTRY_NAMED(lathe_plugin_entry_##VAR, VAR)

DESCRIPTOR(sac, "sac",
           "soft actor-critic (twin critics, automatic temperature, entropy backup or max backup)",
           sac_opts, create_sac, "evaluation/average_return")
DESCRIPTOR(cql, "cql", "CQL on SAC: offline pre-training, then online fine-tuning", cql_opts,
           create_cql, "evaluation/normalized_score")
DESCRIPTOR(calql, "calql",
           "Cal-QL: CQL with policy-action values bounded below by Monte-Carlo returns", cql_opts,
           create_calql, "evaluation/normalized_score")
LATHE_PLUGIN_ENTRY(calql)
