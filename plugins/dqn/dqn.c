/* dqn.c - DQN with a choice of critic head (mse, huber, two_hot, hl_gauss, c51).
 *
 * Defaults are CleanRL's dqn.py for CartPole-v1 (Q-network 120-84 ReLU, Adam
 * 2.5e-4, buffer 10k, batch 128, gamma 0.99, learning starts 10k, train every
 * 10 steps, hard target copy every 500, epsilon 1 -> 0.05 over half the run).
 * With a categorical head the network emits K logits per action; actions and
 * bootstrap values use the decoded expectation, the loss is cross-entropy
 * against the transformed TD target (hl_gauss, two_hot) or the projected
 * next-state distribution (c51). Terminated transitions do not bootstrap;
 * truncated ones do (the buffer stores the real final observation).
 *
 * One step() is one environment step, plus an update, a target sync and an
 * evaluation when they fall due. The checkpoint holds everything: networks,
 * Adam moments, replay buffer, environment state, RNG and counters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workbench/lathe.h"
#include "../../workbench/nn/nn.h"

static const lathe_opt_t opts[] = {
    {"env", LATHE_STR, "cartpole", 0, -1, NULL, "environment plugin (discrete actions)"},
    {"reward_noise", LATHE_NUM, "0", 0, 1e6, NULL,
     "std of Gaussian noise on training rewards (evaluation is noise-free)"},
    {"total_timesteps", LATHE_INT, "500000", 1, 1e10, NULL, "environment steps"},
    {"learning_rate", LATHE_NUM, "2.5e-4", 0, 1, NULL, "Adam learning rate"},
    {"buffer_size", LATHE_INT, "10000", 1, 1e8, NULL, "replay buffer capacity"},
    {"gamma", LATHE_NUM, "0.99", 0, 1, NULL, "discount"},
    {"tau", LATHE_NUM, "1.0", 0, 1, NULL, "target update rate (1: hard copy)"},
    {"target_network_frequency", LATHE_INT, "500", 1, 1e9, NULL, "steps between target updates"},
    {"batch_size", LATHE_INT, "128", 1, 65536, NULL, "minibatch size"},
    {"start_e", LATHE_NUM, "1", 0, 1, NULL, "initial epsilon"},
    {"end_e", LATHE_NUM, "0.05", 0, 1, NULL, "final epsilon"},
    {"exploration_fraction", LATHE_NUM, "0.5", 0, 1, NULL,
     "fraction of total_timesteps over which epsilon decays"},
    {"learning_starts", LATHE_INT, "10000", 0, 1e10, NULL, "steps before the first update"},
    {"train_frequency", LATHE_INT, "10", 1, 1e6, NULL, "steps between updates"},
    {"double_q", LATHE_BOOL, "false", 0, -1, NULL, "double DQN: argmax by the online network"},
    {"max_grad_norm", LATHE_NUM, "0", 0, 1e6, NULL, "global gradient-norm clip (0: off)"},
    {"hidden", LATHE_STR, "120,84", 0, -1, NULL, "hidden widths, comma-separated"},
    {"critic_head", LATHE_STR, "mse", 0, -1, "mse|huber|two_hot|hl_gauss|c51", "value head"},
    {"bins", LATHE_INT, "51", 2, 512, NULL, "bins/atoms of a categorical head"},
    {"v_min", LATHE_NUM, "-10", -1e9, 1e9, NULL, "lower end of the value support"},
    {"v_max", LATHE_NUM, "110", -1e9, 1e9, NULL, "upper end of the value support"},
    {"sigma_ratio", LATHE_NUM, "0.75", 1e-6, 100, NULL, "hl_gauss: sigma / bin width"},
    {"eval_every", LATHE_INT, "10000", 1, 1e10, NULL, "steps between greedy evaluations"},
    {"eval_episodes", LATHE_INT, "10", 1, 10000, NULL, "episodes per evaluation"},
    {"log_every", LATHE_INT, "100", 1, 1e9, NULL, "steps between loss metrics (as CleanRL)"},
    {NULL}};

typedef struct {
  /* configuration */
  int64_t total, learning_starts, train_freq, target_freq, eval_every, log_every;
  int batch, nobs, nact, K, double_q, eval_episodes;
  float lr, gamma, tau, start_e, end_e, expl_frac, max_grad_norm;
  nn_head_t head;
  nn_adamw_t opt;
  /* networks */
  nn_mlp_t q, target;
  /* environments */
  const lathe_plugin_t *envp;
  void *env, *eval_env;
  /* replay buffer */
  nn_replay_t rb; /* capacity buffer_size; the action stored as one float */
  /* scratch */
  float *x, *xn, *y, *g, *dout, *probs, *obs, *next;
  /* counters and state */
  nn_rng_t rng;
  int64_t t, episodes, evals;
  double ep_return, ep_len, td_loss_acc, q_acc;
  int64_t acc_n;
} dqn_t;

static int argmax_value(const dqn_t *d, const float *out, float *best_v) {
  int best = 0;
  float bv = -INFINITY;
  for (int a = 0; a < d->nact; a++) {
    float v = nn_head_decode(&d->head, out + a * d->K);
    if (v > bv) bv = v, best = a;
  }
  if (best_v) *best_v = bv;
  return best;
}

static void destroy(void *self);

static int build(dqn_t *d, const lathe_host_t *h, lathe_ctx_t *c) {
  d->total = h->cfg_int(c, "total_timesteps");
  d->learning_starts = h->cfg_int(c, "learning_starts");
  d->train_freq = h->cfg_int(c, "train_frequency");
  d->target_freq = h->cfg_int(c, "target_network_frequency");
  d->eval_every = h->cfg_int(c, "eval_every");
  d->log_every = h->cfg_int(c, "log_every");
  d->eval_episodes = (int)h->cfg_int(c, "eval_episodes");
  d->batch = (int)h->cfg_int(c, "batch_size");
  d->double_q = (int)h->cfg_int(c, "double_q");
  d->lr = (float)h->cfg_num(c, "learning_rate"), d->gamma = (float)h->cfg_num(c, "gamma");
  d->tau = (float)h->cfg_num(c, "tau");
  d->start_e = (float)h->cfg_num(c, "start_e"), d->end_e = (float)h->cfg_num(c, "end_e");
  d->expl_frac = (float)h->cfg_num(c, "exploration_fraction");
  d->max_grad_norm = (float)h->cfg_num(c, "max_grad_norm");
  nn_rng_seed(&d->rng, h->seed(c));

  int kind = nn_head_parse(h->cfg_str(c, "critic_head"));
  if (nn_head_init(&d->head, kind, (int)h->cfg_int(c, "bins"), (float)h->cfg_num(c, "v_min"),
                   (float)h->cfg_num(c, "v_max"), (float)h->cfg_num(c, "sigma_ratio")))
    return h->fail(c, LATHE_ECONFIG, "dqn: v_min must be below v_max");
  d->K = d->head.bins;

  /* the training environment (with reward noise) and a noise-free one for evaluation */
  char noise[64];
  snprintf(noise, sizeof noise, "reward_noise=%.17g", h->cfg_num(c, "reward_noise"));
  const char *kv[] = {noise};
  int rc = h->plugin_create(c, h->cfg_str(c, "env"), kv, 1, &d->envp, &d->env);
  if (rc) return rc;
  if (d->envp->kind != LATHE_ENVIRONMENT)
    return h->fail(c, LATHE_ECONFIG, "dqn: '%s' is not an environment", d->envp->name);
  const lathe_plugin_t *ep;
  if ((rc = h->plugin_create(c, h->cfg_str(c, "env"), NULL, 0, &ep, &d->eval_env))) return rc;
  lathe_space_t os, as;
  d->envp->env->spaces(d->env, &os, &as);
  if (!as.discrete)
    return h->fail(c, LATHE_ECONFIG, "dqn: %s has continuous actions; DQN needs discrete ones",
                   d->envp->name);
  d->nobs = os.n, d->nact = as.n;

  int width[9], nh = nn_parse_widths(h->cfg_str(c, "hidden"), width + 1, 7);
  if (nh < 0)
    return h->fail(c, LATHE_ECONFIG, "dqn: hidden = '%s' is not a list like 120,84",
                   h->cfg_str(c, "hidden"));
  width[0] = d->nobs, width[nh + 1] = d->nact * d->K;
  if ((rc = nn_mlp_init(&d->q, "q", nh + 1, width, NN_RELU, 0, &d->rng)) ||
      (rc = nn_mlp_init(&d->target, "q", nh + 1, width, NN_RELU, 0, &d->rng)))
    return h->fail(c, rc, "dqn: cannot build the Q-network");
  nn_params_copy(&d->target.params, &d->q.params);
  d->opt = nn_adamw_default();
  d->opt.lr = d->lr;

  size_t B = d->batch, O = d->nobs, AK = (size_t)d->nact * d->K;
  int64_t cap = h->cfg_int(c, "buffer_size");
  int nomem = nn_replay_init(&d->rb, cap, (int)O, 1, 0);
  d->x = malloc(sizeof(float) * B * O), d->xn = malloc(sizeof(float) * B * O);
  d->y = malloc(sizeof(float) * B * d->K), d->g = malloc(sizeof(float) * B * d->K);
  d->dout = malloc(sizeof(float) * B * AK), d->probs = malloc(sizeof(float) * d->K);
  d->obs = malloc(sizeof(float) * O), d->next = malloc(sizeof(float) * O);
  if (nomem || !d->x || !d->xn || !d->y || !d->g || !d->dout || !d->probs || !d->obs || !d->next)
    return h->fail(c, LATHE_ENOMEM, "dqn: out of memory for a %lld-transition buffer",
                   (long long)cap);
  if ((rc = d->envp->env->reset(d->env, h, c, h->seed(c), d->obs))) return rc;
  h->set_total(c, d->total);
  return 0;
}

static int create(const lathe_host_t *h, lathe_ctx_t *c, void **self) {
  dqn_t *d = calloc(1, sizeof *d);
  if (!d) return h->fail(c, LATHE_ENOMEM, "dqn: out of memory");
  int rc = build(d, h, c);
  if (rc) {
    destroy(d);
    return rc;
  }
  *self = d;
  return 0;
}

static float epsilon(const dqn_t *d) {
  double duration = d->expl_frac * (double)d->total;
  if (duration <= 0) return d->end_e;
  double e = d->start_e + (d->end_e - d->start_e) / duration * (double)d->t;
  return (float)(e > d->end_e ? e : d->end_e);
}

static int act(dqn_t *d, const float *obs, float eps) {
  if (eps > 0 && nn_rng_uniform(&d->rng) < eps) return (int)nn_rng_below(&d->rng, d->nact);
  float *out = nn_mlp_forward(&d->q, obs, 1);
  return argmax_value(d, out, NULL);
}

/* One gradient step on a minibatch; returns the loss, adds mean Q to *qmean. */
static float update(dqn_t *d, float *qmean) {
  int B = d->batch, O = d->nobs, K = d->K, A = d->nact;
  int32_t idx[B];
  for (int b = 0; b < B; b++) {
    idx[b] = (int32_t)nn_rng_below(&d->rng, (uint32_t)d->rb.size);
    memcpy(d->x + b * O, d->rb.obs + (size_t)idx[b] * O, sizeof(float) * O);
    memcpy(d->xn + b * O, d->rb.next + (size_t)idx[b] * O, sizeof(float) * O);
  }
  /* targets (no gradient): a* by the online net when double_q, else by the target net */
  int astar[B];
  if (d->double_q) {
    float *on = nn_mlp_forward(&d->q, d->xn, B);
    for (int b = 0; b < B; b++) astar[b] = argmax_value(d, on + (size_t)b * A * K, NULL);
  }
  float *tn = nn_mlp_forward(&d->target, d->xn, B);
  for (int b = 0; b < B; b++) {
    const float *row = tn + (size_t)b * A * K;
    if (!d->double_q) astar[b] = argmax_value(d, row, NULL);
    float r = d->rb.rew[idx[b]], disc = d->gamma * (1.0f - (float)d->rb.term[idx[b]]);
    const float *blk = row + astar[b] * K;
    if (d->head.kind == NN_HEAD_C51) {
      nn_softmax(d->probs, blk, 1, K);
      nn_head_c51_project(&d->head, d->probs, r, disc, d->y + b * K);
    } else {
      float yv = r + disc * nn_head_decode(&d->head, blk);
      if (K == 1)
        d->y[b] = yv;
      else
        nn_head_target(&d->head, yv, d->y + b * K);
    }
  }
  /* online forward, gather the taken action's block, loss, scatter the gradient */
  float *out = nn_mlp_forward(&d->q, d->x, B);
  float *gath = d->dout; /* (B, K) view reused before dout is filled */
  double qs = 0;
  for (int b = 0; b < B; b++) {
    const float *blk = out + ((size_t)b * A + (size_t)d->rb.act[idx[b]]) * K;
    memcpy(gath + b * K, blk, sizeof(float) * K);
    qs += nn_head_decode(&d->head, blk);
  }
  float loss = nn_head_loss(&d->head, gath, d->y, B, d->g);
  memset(d->dout, 0, sizeof(float) * B * A * K);
  for (int b = 0; b < B; b++)
    memcpy(d->dout + ((size_t)b * A + (size_t)d->rb.act[idx[b]]) * K, d->g + b * K,
           sizeof(float) * K);
  nn_params_zero_grad(&d->q.params);
  nn_mlp_backward(&d->q, d->dout, NULL);
  if (d->max_grad_norm > 0) nn_clip_grad_norm(&d->q.params, d->max_grad_norm);
  nn_adamw_step(&d->q.params, &d->opt, d->lr);
  *qmean += (float)(qs / B);
  return loss;
}

/* Greedy episodes on the noise-free environment, seeded per evaluation. */
static void greedy(void *ud, const float *obs, float *a) {
  a[0] = (float)act(ud, obs, 0.0f);
}

static int evaluate(dqn_t *d, const lathe_host_t *h, lathe_ctx_t *c) {
  double sum = 0, len = 0;
  for (int e = 0; e < d->eval_episodes; e++) {
    uint64_t seed = h->seed(c) * 1000003ULL + 1000000ULL + (uint64_t)d->evals * 1000 + e;
    nn_episode_t ep;
    int rc = nn_episode(d->envp, d->eval_env, h, c, seed, 0, greedy, d, NULL, &ep);
    if (rc) return rc;
    sum += ep.ret, len += (double)ep.len;
  }
  d->evals++;
  h->metric(c, "eval/episodic_return", sum / d->eval_episodes);
  h->metric(c, "eval/episodic_length", len / d->eval_episodes);
  return 0;
}

static int step(void *self, const lathe_host_t *h, lathe_ctx_t *c) {
  dqn_t *d = self;
  float eps = epsilon(d);
  int a = act(d, d->obs, eps);
  float af = (float)a;
  double r;
  int term, trunc;
  int rc = d->envp->env->step(d->env, h, c, &af, d->next, &r, &term, &trunc);
  if (rc) return h->fail(c, rc, "dqn: %s rejected action %d", d->envp->name, a);
  d->t++;
  /* store the transition; next is the real final observation on truncation too */
  nn_replay_add(&d->rb, d->obs, &af, (float)r, d->next, term, 0);
  d->ep_return += r, d->ep_len++;
  if (term || trunc) {
    h->metric(c, "charts/episodic_return", d->ep_return);
    h->metric(c, "charts/episodic_length", d->ep_len);
    d->ep_return = d->ep_len = 0;
    d->episodes++;
    d->envp->env->reset(d->env, h, c, LATHE_NO_SEED, d->obs);
  } else
    memcpy(d->obs, d->next, sizeof(float) * d->nobs);

  if (d->t > d->learning_starts && d->t % d->train_freq == 0) {
    float qm = 0;
    float loss = update(d, &qm);
    if (!isfinite(loss)) h->metric(c, "losses/td_loss", loss); /* diverged: said at once */
    d->td_loss_acc += loss;
    d->q_acc += qm, d->acc_n++;
  }
  if (d->t % d->target_freq == 0) {
    if (d->tau >= 1.0f)
      nn_params_copy(&d->target.params, &d->q.params);
    else
      nn_params_polyak(&d->target.params, &d->q.params, d->tau);
  }
  if (d->t % d->log_every == 0) {
    if (d->acc_n) {
      h->metric(c, "losses/td_loss", d->td_loss_acc / d->acc_n);
      h->metric(c, "losses/q_values", d->q_acc / d->acc_n);
      d->td_loss_acc = d->q_acc = 0, d->acc_n = 0;
    }
    h->metric(c, "charts/epsilon", eps);
  }
  if ((d->t % d->eval_every == 0 || d->t == d->total) && (rc = evaluate(d, h, c))) return rc;
  return d->t >= d->total ? LATHE_DONE : LATHE_CONTINUE;
}

#define DQN_STATE_VERSION 2u /* 2: the replay buffer as nn_replay_save writes it */

static int save(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  dqn_t *d = self;
  uint32_t v = DQN_STATE_VERSION;
  LATHE_PUT(b, v);
  nn_head_save(&d->head, b);
  LATHE_PUT(b, d->rng), LATHE_PUT(b, d->t), LATHE_PUT(b, d->episodes), LATHE_PUT(b, d->evals);
  LATHE_PUT(b, d->ep_return), LATHE_PUT(b, d->ep_len), LATHE_PUT(b, d->td_loss_acc);
  LATHE_PUT(b, d->q_acc), LATHE_PUT(b, d->acc_n);
  LATHE_PUT(b, d->rb.cap);
  nn_replay_save(&d->rb, b);
  lathe_buf_put(b, d->obs, sizeof(float) * d->nobs);
  nn_params_save(&d->q.params, b, 1);
  nn_params_save(&d->target.params, b, 0);
  return d->envp->save(d->env, h, c, b);
}

static int load(void *self, const lathe_host_t *h, lathe_ctx_t *c, lathe_buf_t *b) {
  dqn_t *d = self;
  uint32_t v;
  int64_t cap;
  LATHE_GET(b, v);
  if (v != DQN_STATE_VERSION) return h->fail(c, LATHE_ECKPT, "dqn: checkpoint version %u", v);
  if (nn_head_check(&d->head, b))
    return h->fail(c, LATHE_ECKPT, "dqn: checkpoint was written with another critic head");
  LATHE_GET(b, d->rng), LATHE_GET(b, d->t), LATHE_GET(b, d->episodes), LATHE_GET(b, d->evals);
  LATHE_GET(b, d->ep_return), LATHE_GET(b, d->ep_len), LATHE_GET(b, d->td_loss_acc);
  LATHE_GET(b, d->q_acc), LATHE_GET(b, d->acc_n);
  LATHE_GET(b, cap);
  /* every count, index and stored action is checked against the config and the
   * bytes present before it is used */
  if (b->err) return h->fail(c, LATHE_ECKPT, "dqn: truncated checkpoint (counters)");
  if (cap != d->rb.cap)
    return h->fail(c, LATHE_ECKPT, "dqn: checkpoint field 'cap' = %lld, buffer_size is %lld",
                   (long long)cap, (long long)d->rb.cap);
  if (d->t < 0 || d->t > d->total || d->episodes < 0 || d->evals < 0 || d->ep_len < 0 ||
      d->acc_n < 0)
    return h->fail(c, LATHE_ECKPT, "dqn: checkpoint counters out of range (t = %lld)",
                   (long long)d->t);
  const char *why = nn_replay_load(&d->rb, b);
  if (why) return h->fail(c, LATHE_ECKPT, "dqn: checkpoint: %s", why);
  lathe_buf_get(b, d->obs, sizeof(float) * d->nobs);
  if (b->err) return h->fail(c, LATHE_ECKPT, "dqn: truncated checkpoint (observation)");
  for (int64_t i = 0; i < d->rb.size; i++)
    if (!(d->rb.act[i] >= 0 && d->rb.act[i] < d->nact && d->rb.act[i] == (int)d->rb.act[i]))
      return h->fail(c, LATHE_ECKPT, "dqn: checkpoint transition %lld: action %g is not in 0..%d",
                     (long long)i, d->rb.act[i], d->nact - 1);
  if (nn_params_load(&d->q.params, b) || nn_params_load(&d->target.params, b))
    return h->fail(c, LATHE_ECKPT, "dqn: checkpoint networks do not match this configuration");
  return d->envp->load(d->env, h, c, b);
}

static void destroy(void *self) {
  dqn_t *d = self;
  nn_mlp_free(&d->q), nn_mlp_free(&d->target);
  nn_replay_free(&d->rb);
  free(d->x), free(d->xn), free(d->y), free(d->g), free(d->dout), free(d->probs);
  free(d->obs), free(d->next);
  free(d); /* the environments are the host's: freed with the run */
}

/* Rules across keys, checked before any run starts. */
static int validate(const lathe_host_t *h, lathe_ctx_t *c) {
  int kind = nn_head_parse(h->cfg_str(c, "critic_head")), w[8];
  if (kind != NN_HEAD_MSE && kind != NN_HEAD_HUBER &&
      !(h->cfg_num(c, "v_min") < h->cfg_num(c, "v_max")))
    return h->fail(c, LATHE_ECONFIG, "dqn: v_min = %.17g must be below v_max = %.17g",
                   h->cfg_num(c, "v_min"), h->cfg_num(c, "v_max"));
  if (nn_parse_widths(h->cfg_str(c, "hidden"), w, 7) < 0)
    return h->fail(c, LATHE_ECONFIG, "dqn: hidden = '%s' is not a list like 120,84",
                   h->cfg_str(c, "hidden"));
  return 0;
}

static const lathe_algorithm_t algorithm = {.step = step, .main_metric = "eval/episodic_return"};

static const lathe_plugin_t plugin = {
    .major = LATHE_API_MAJOR,
    .minor = LATHE_API_TARGET,
    .name = "dqn",
    .kind = LATHE_ALGORITHM,
    .version = "1.0.0",
    .doc = "DQN with mse, huber, two_hot, hl_gauss or c51 critic heads (CleanRL defaults)",
    .opts = opts,
    .nn_abi = NN_ABI,
    .create = create,
    .destroy = destroy,
    .save = save,
    .load = load,
    .validate = validate,
    .algorithm = &algorithm,
};

LATHE_PLUGIN_ENTRY(plugin)
